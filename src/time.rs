//! UTC timestamps: the one RFC 3339 formatter (incident records, monitor
//! events) and the compact form used in directory names.

use std::time::{SystemTime, UNIX_EPOCH};

/// A UTC civil time, from nanoseconds since the Unix epoch.
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    nanos: u32,
}

impl Civil {
    fn from_ns(ns: i128) -> Civil {
        let secs = ns.div_euclid(1_000_000_000) as i64;
        let nanos = ns.rem_euclid(1_000_000_000) as u32;
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400) as u32;
        // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        Civil {
            year: yoe + era * 400 + i64::from(month <= 2),
            month,
            day,
            hour: sod / 3600,
            minute: sod / 60 % 60,
            second: sod % 60,
            nanos,
        }
    }
}

/// Digits of the fraction of a second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Precision {
    Millis,
    Nanos,
}

/// The formatter: RFC 3339 in UTC with the fraction truncated (never
/// rounded up into the next second).
fn utc(ns: i128, precision: Precision) -> String {
    let c = Civil::from_ns(ns);
    let date_time = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    );
    match precision {
        Precision::Millis => format!("{date_time}.{:03}Z", c.nanos / 1_000_000),
        Precision::Nanos => format!("{date_time}.{:09}Z", c.nanos),
    }
}

/// Nanoseconds since the Unix epoch; a time before the epoch is the epoch.
fn unix_ns(t: SystemTime) -> i128 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

/// `2026-11-21T22:15:30.123456789Z`, from nanoseconds since the Unix epoch
/// (monitor events).
pub fn rfc3339(ns: i128) -> String {
    utc(ns, Precision::Nanos)
}

/// `2026-11-21T22:15:30.123Z` (incident records).
pub fn rfc3339_millis(t: SystemTime) -> String {
    utc(unix_ns(t), Precision::Millis)
}

/// `20261121T221530.123Z`: [`rfc3339_millis`] without `-` and `:`, for
/// directory names.
pub fn compact(t: SystemTime) -> String {
    rfc3339_millis(t).replace(['-', ':'], "")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn nanosecond_timestamps() {
        let ns = rfc3339;
        assert_eq!(ns(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            ns(1_795_305_600_123_456_789),
            "2026-11-22T00:00:00.123456789Z"
        );
        assert_eq!(
            ns(951_782_400_000_000_000),
            "2000-02-29T00:00:00.000000000Z"
        );
        assert_eq!(ns(-1), "1969-12-31T23:59:59.999999999Z");
    }

    #[test]
    fn millisecond_timestamps() {
        let ms = rfc3339_millis;
        assert_eq!(ms(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_709_210_096_789); // leap day
        assert_eq!(ms(t), "2024-02-29T12:34:56.789Z");
        assert_eq!(compact(t), "20240229T123456.789Z");
        let t = UNIX_EPOCH + Duration::from_secs(4_102_444_799);
        assert_eq!(ms(t), "2099-12-31T23:59:59.000Z");
        assert_eq!(
            ms(UNIX_EPOCH + Duration::from_nanos(1_999_999)),
            "1970-01-01T00:00:00.001Z",
            "truncated"
        );
        assert_eq!(ms(UNIX_EPOCH - Duration::from_secs(5)), ms(UNIX_EPOCH));
    }
}
