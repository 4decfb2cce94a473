//! Ports and CIDRs for `net_connect` rules.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::model::Cidr;

/// Why a CIDR is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    #[error("`{text}` is not a CIDR (ADDRESS/PREFIX){}", host_hint(.text))]
    NoPrefix { text: String },
    #[error("`{addr}` in `{text}` is not an IPv4 or IPv6 address")]
    BadAddress { addr: String, text: String },
    /// `max` is 32 or 128 for IP version `family` 4 or 6.
    #[error("prefix `/{prefix}` in `{text}` is out of range (0..={max} for IPv{family})")]
    BadPrefix {
        prefix: String,
        text: String,
        max: u8,
        family: u8,
    },
    /// `as_ipv4` is the IPv4 network to write instead.
    #[error(
        "`{text}` is an IPv4-mapped IPv6 network; IPv4-mapped destinations are judged as \
         IPv4, so write `{as_ipv4}`"
    )]
    Ipv4Mapped { text: String, as_ipv4: Cidr },
    /// `network` is `text` with the host bits cleared.
    #[error("`{text}` has host bits set; did you mean `{network}`?")]
    HostBits { text: String, network: Cidr },
}

/// `; did you mean `ADDRESS/32`?` when `text` is a bare address.
fn host_hint(text: &str) -> String {
    match text.parse::<IpAddr>() {
        Ok(IpAddr::V4(_)) => format!("; did you mean `{text}/32`?"),
        Ok(IpAddr::V6(_)) => format!("; did you mean `{text}/128`?"),
        Err(_) => String::new(),
    }
}

/// Parse `10.0.0.0/8` or `2001:db8::/32`. Host bits must be zero, so a typo
/// like `10.1.2.3/8` (which most tools silently widen) is caught.
pub fn parse_cidr(text: &str) -> Result<Cidr, CidrError> {
    let Some((addr, prefix)) = text.split_once('/') else {
        return Err(CidrError::NoPrefix {
            text: text.to_string(),
        });
    };
    let addr: IpAddr = addr.parse().map_err(|_| CidrError::BadAddress {
        addr: addr.to_string(),
        text: text.to_string(),
    })?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix: u8 = match prefix.parse::<u8>() {
        Ok(p) if p <= max && prefix.bytes().all(|b| b.is_ascii_digit()) => p,
        _ => {
            return Err(CidrError::BadPrefix {
                prefix: prefix.to_string(),
                text: text.to_string(),
                max,
                family: if addr.is_ipv4() { 4 } else { 6 },
            });
        }
    };
    if let IpAddr::V6(v6) = addr {
        if let Some(v4) = v6.to_ipv4_mapped() {
            if prefix >= 96 {
                return Err(CidrError::Ipv4Mapped {
                    text: text.to_string(),
                    as_ipv4: Cidr {
                        addr: IpAddr::V4(v4),
                        prefix: prefix - 96,
                    },
                });
            }
        }
    }
    let net = mask(addr, prefix);
    if net != addr {
        return Err(CidrError::HostBits {
            text: text.to_string(),
            network: Cidr { addr: net, prefix },
        });
    }
    Ok(Cidr { addr, prefix })
}

fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let m = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(prefix))
            };
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & m))
        }
        IpAddr::V6(a) => {
            let m = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(prefix))
            };
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & m))
        }
    }
}

/// Whether `ip` lies in `cidr` (families must match).
pub fn contains(cidr: &Cidr, ip: IpAddr) -> bool {
    match (cidr.addr, ip) {
        (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
            mask(ip, cidr.prefix) == cidr.addr
        }
        _ => false,
    }
}

/// Why a port range is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortRangeError {
    #[error("`{0}` is not a port or port range (an integer 1..=65535 or \"LOW-HIGH\")")]
    Malformed(String),
    #[error("port range `{text}` is reversed; did you mean \"{hi}-{lo}\"?")]
    Reversed { text: String, lo: u16, hi: u16 },
}

/// A port range `"8000-8100"` (inclusive). Single ports are plain integers.
pub fn parse_port_range(text: &str) -> Result<(u16, u16), PortRangeError> {
    let bad = || PortRangeError::Malformed(text.to_string());
    let (lo, hi) = text.split_once('-').ok_or_else(bad)?;
    let lo = port(lo.trim()).ok_or_else(bad)?;
    let hi = port(hi.trim()).ok_or_else(bad)?;
    if lo > hi {
        return Err(PortRangeError::Reversed {
            text: text.to_string(),
            lo,
            hi,
        });
    }
    Ok((lo, hi))
}

fn port(t: &str) -> Option<u16> {
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match t.parse::<u32>() {
        Ok(p) if (1..=65535).contains(&p) => Some(p as u16),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs() {
        let c = parse_cidr("10.20.0.0/16").unwrap();
        assert_eq!(c.to_string(), "10.20.0.0/16");
        assert!(contains(&c, "10.20.3.4".parse().unwrap()));
        assert!(!contains(&c, "10.21.0.1".parse().unwrap()));
        assert!(!contains(&c, "::1".parse().unwrap()));
        let c6 = parse_cidr("2001:db8::/32").unwrap();
        assert!(contains(&c6, "2001:db8:1::1".parse().unwrap()));
        assert!(parse_cidr("0.0.0.0/0").is_ok());
        assert!(parse_cidr("::/0").is_ok());
        assert!(parse_cidr("::1/128").is_ok());
    }

    #[test]
    fn cidr_errors() {
        let e = parse_cidr("10.1.2.3/8").unwrap_err().to_string();
        assert!(e.contains("did you mean `10.0.0.0/8`"), "{e}");
        let e = parse_cidr("2001:db8::1/32").unwrap_err().to_string();
        assert!(e.contains("did you mean `2001:db8::/32`"), "{e}");
        assert!(
            parse_cidr("10.0.0.0/33")
                .unwrap_err()
                .to_string()
                .contains("out of range")
        );
        assert!(
            parse_cidr("::/129")
                .unwrap_err()
                .to_string()
                .contains("out of range")
        );
        assert!(
            parse_cidr("10.0.0.0/+8")
                .unwrap_err()
                .to_string()
                .contains("out of range")
        );
        assert!(
            parse_cidr("300.0.0.0/8")
                .unwrap_err()
                .to_string()
                .contains("not an IPv4")
        );
        assert!(
            parse_cidr("10.0.0.1")
                .unwrap_err()
                .to_string()
                .contains("`10.0.0.1/32`")
        );
        assert!(
            parse_cidr("::ffff:10.0.0.0/104")
                .unwrap_err()
                .to_string()
                .contains("10.0.0.0/8")
        );
    }

    #[test]
    fn port_ranges() {
        assert_eq!(parse_port_range("8000-8100"), Ok((8000, 8100)));
        assert!(parse_port_range("0-10").is_err());
        assert!(parse_port_range("10-70000").is_err());
        assert!(
            parse_port_range("100-10")
                .unwrap_err()
                .to_string()
                .contains("reversed")
        );
        assert!(parse_port_range("http").is_err());
    }
}
