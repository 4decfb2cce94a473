//! Event sinks for the local log daemons: syslog (RFC 5424 datagrams on the
//! local socket, the event's JSON as the message) and the systemd journal
//! (its native protocol, the event's members as structured fields). One
//! datagram per event; a failed send is the pipeline's sink error (counted
//! and reported, never silent).

use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

use crate::monitor::context::RunInfo;
use crate::monitor::events::{Event, Sink};
use crate::severity::Severity;

use super::monitor::EventWriter;

pub const DEV_LOG: &str = "/dev/log";
pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// syslog severity (RFC 5424 section 6.2.1) of an event: a decision's rule
/// severity; the monitor's own events by what they mean.
pub fn severity_of(ev: &Event) -> u8 {
    let rule = |s: Severity| match s {
        Severity::Critical => 2,
        Severity::High => 3,
        Severity::Medium => 4,
        Severity::Low => 5,
        Severity::Info => 6,
    };
    match ev {
        Event::Net(n) => rule(n.severity),
        Event::File(f) => rule(f.severity),
        // A guard refused an attempt to get around enforcement.
        Event::Tamper(_) => 2,
        Event::Kill(k) if !k.all_gone || k.error.is_some() => 2,
        Event::Kill(_) => 3,
        Event::Drops { .. } | Event::Unknown { .. } => 4,
        Event::ToolCall(t) if !t.call.allowed => 4,
        Event::ToolCall(_) => 6,
        Event::Start(s) if !s.degraded.is_empty() => 4,
        Event::Start(_) | Event::Stop(_) => 5,
    }
}

fn kind_of(json: &[u8]) -> &str {
    // Every event object has `"kind":"<name>"` with a plain name.
    let s = std::str::from_utf8(json).unwrap_or("");
    s.split_once("\"kind\":\"")
        .and_then(|(_, r)| r.split_once('"'))
        .map_or("-", |(k, _)| k)
}

fn connect(path: &Path, what: &str) -> io::Result<UnixDatagram> {
    let s = UnixDatagram::unbound()?;
    s.connect(path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("{what}: connecting to {}: {e}", path.display()),
        )
    })?;
    Ok(s)
}

/// Events as RFC 5424 messages on the local syslog socket.
pub struct Syslog {
    sock: UnixDatagram,
    path: PathBuf,
    ev: EventWriter,
    host: String,
    pid: u32,
    json: Vec<u8>,
    msg: Vec<u8>,
}

/// Facility `daemon` (3).
const FACILITY: u8 = 3;

impl Syslog {
    pub fn connect(path: &Path, run: &RunInfo) -> io::Result<Syslog> {
        Ok(Syslog {
            sock: connect(path, "--events syslog")?,
            path: path.to_path_buf(),
            ev: EventWriter::new(run),
            host: run
                .host
                .clone()
                .filter(|h| !h.is_empty() && h.is_ascii() && !h.contains(' '))
                .unwrap_or_else(|| "-".into()),
            pid: std::process::id(),
            json: Vec::with_capacity(2048),
            msg: Vec::with_capacity(2048),
        })
    }

    /// One RFC 5424 message: `<PRI>1 TIMESTAMP HOST assay PID KIND - JSON`.
    fn format(&mut self, ev: &Event) {
        self.json.clear();
        self.ev.write(&mut self.json, ev);
        let pri = FACILITY * 8 + severity_of(ev);
        // RFC 5424 allows six fractional digits.
        let t = crate::time::rfc3339(crate::monitor::events::now_ns());
        let ts = format!("{}Z", &t[..26]);
        self.msg.clear();
        self.msg.extend_from_slice(
            format!(
                "<{pri}>1 {ts} {} assay {} {} - ",
                self.host,
                self.pid,
                kind_of(&self.json)
            )
            .as_bytes(),
        );
        self.msg.extend_from_slice(&self.json);
    }
}

impl Sink for Syslog {
    fn event(&mut self, ev: &Event) -> io::Result<()> {
        self.format(ev);
        self.sock.send(&self.msg).map(drop).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("--events syslog: sending to {}: {e}", self.path.display()),
            )
        })
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Events on the systemd journal's native socket.
pub struct Journald {
    sock: UnixDatagram,
    path: PathBuf,
    ev: EventWriter,
    json: Vec<u8>,
    msg: Vec<u8>,
}

/// A journal field name for a JSON member path: upper case letters,
/// digits and `_`, starting with a letter.
fn field_name(prefix: &str, key: &str) -> String {
    let mut n = String::with_capacity(prefix.len() + key.len() + 1);
    n.push_str(prefix);
    n.push('_');
    for c in key.chars() {
        n.push(if c.is_ascii_alphanumeric() {
            c.to_ascii_uppercase()
        } else {
            '_'
        });
    }
    n
}

/// One field in the native protocol: `NAME=value\n`, or the binary form
/// when the value holds a newline.
fn push_field(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    if value.contains(&b'\n') {
        out.push(b'\n');
        out.extend_from_slice(&(value.len() as u64).to_le_bytes());
    } else {
        out.push(b'=');
    }
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// Every scalar member of `v` as `ASSAY_<PATH>` (objects flattened with
/// `_`, arrays as their JSON).
fn flatten(out: &mut Vec<u8>, prefix: &str, v: &serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                flatten(out, &field_name(prefix, k), v);
            }
        }
        Value::Null => {}
        Value::String(s) => push_field(out, prefix, s.as_bytes()),
        other => push_field(out, prefix, other.to_string().as_bytes()),
    }
}

impl Journald {
    pub fn connect(path: &Path, run: &RunInfo) -> io::Result<Journald> {
        Ok(Journald {
            sock: connect(path, "--events journald")?,
            path: path.to_path_buf(),
            ev: EventWriter::new(run),
            json: Vec::with_capacity(2048),
            msg: Vec::with_capacity(4096),
        })
    }

    fn format(&mut self, ev: &Event) -> io::Result<()> {
        self.json.clear();
        self.ev.write(&mut self.json, ev);
        self.msg.clear();
        push_field(&mut self.msg, "MESSAGE", &self.json);
        push_field(
            &mut self.msg,
            "PRIORITY",
            severity_of(ev).to_string().as_bytes(),
        );
        push_field(&mut self.msg, "SYSLOG_IDENTIFIER", b"assay");
        let v: serde_json::Value = serde_json::from_slice(&self.json)?;
        flatten(&mut self.msg, "ASSAY", &v);
        Ok(())
    }
}

impl Sink for Journald {
    fn event(&mut self, ev: &Event) -> io::Result<()> {
        self.format(ev)?;
        self.sock.send(&self.msg).map(drop).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("--events journald: sending to {}: {e}", self.path.display()),
            )
        })
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drops() -> Event {
        Event::Drops {
            time_ns: 0,
            new: 2,
            total: 5,
        }
    }

    #[test]
    fn syslog_messages_are_rfc5424_with_the_json() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let rx = UnixDatagram::bind(&path).unwrap();
        let run = RunInfo {
            host: Some("h1".into()),
            ..RunInfo::default()
        };
        let mut s = Syslog::connect(&path, &run).unwrap();
        s.event(&drops()).unwrap();
        let mut buf = vec![0u8; 65536];
        let n = rx.recv(&mut buf).unwrap();
        let m = String::from_utf8_lossy(&buf[..n]).into_owned();
        // daemon.warning = 3 * 8 + 4.
        assert!(m.starts_with("<28>1 "), "{m}");
        let parts: Vec<&str> = m.splitn(8, ' ').collect();
        assert_eq!(parts[1].len(), "2026-01-01T00:00:00.000000Z".len(), "{m}");
        assert_eq!(
            &parts[2..7],
            ["h1", "assay", &std::process::id().to_string(), "drops", "-"]
        );
        let j: serde_json::Value = serde_json::from_str(parts[7]).unwrap();
        assert_eq!(j["dropped"], 2);
        drop(rx);
        assert!(s.event(&drops()).is_err(), "a gone daemon is an error");
    }

    #[test]
    fn journal_fields_flatten_the_event() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("socket");
        let rx = UnixDatagram::bind(&path).unwrap();
        let mut s = Journald::connect(&path, &RunInfo::default()).unwrap();
        s.event(&drops()).unwrap();
        let mut buf = vec![0u8; 65536];
        let n = rx.recv(&mut buf).unwrap();
        let m = String::from_utf8_lossy(&buf[..n]).into_owned();
        for f in [
            "PRIORITY=4\n",
            "SYSLOG_IDENTIFIER=assay\n",
            "ASSAY_KIND=drops\n",
            "ASSAY_DROPPED=2\n",
            "ASSAY_TOTAL_DROPPED=5\n",
            "ASSAY_SEQ=0\n",
        ] {
            assert!(m.contains(f), "{f:?} in {m}");
        }
        assert!(m.starts_with("MESSAGE={"), "{m}");
        let mut bin = Vec::new();
        push_field(&mut bin, "A", b"x\ny");
        assert_eq!(bin, b"A\n\x03\0\0\0\0\0\0\0x\ny\n");
    }
}
