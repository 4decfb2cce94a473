//! Parsers for the procfs files the kill switch reads. The parsers are pure
//! (text in, data out) so they are unit-tested on any platform; the readers
//! that touch `/proc` are Linux-only.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

/// `PF_KTHREAD` in `/proc/<pid>/stat` flags: kernel threads are never targets.
const PF_KTHREAD: u64 = 0x0020_0000;

/// The fields of `/proc/<pid>/stat` the kill switch needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub pid: i32,
    pub comm: String,
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
    pub session: i32,
    pub flags: u64,
    /// Clock ticks after boot: with the pid, identifies one process for its
    /// whole life (pids are reused, (pid, start time) pairs are not).
    pub start_time: u64,
}

impl Stat {
    pub fn is_kernel_thread(&self) -> bool {
        self.flags & PF_KTHREAD != 0
    }
    /// Exited (zombie or dead): holds no resources, cannot be signalled usefully.
    pub fn is_dead(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Parse `/proc/<pid>/stat`. `comm` may hold spaces and parentheses, so the
/// fields are split after the *last* `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let pid = text[..open].trim().parse().ok()?;
    let comm = text.get(open + 1..close)?.to_string();
    let rest: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    // rest[0] is field 3 (state); field N is rest[N - 3].
    let field = |n: usize| rest.get(n - 3).copied();
    Some(Stat {
        pid,
        comm,
        state: field(3)?.chars().next()?,
        ppid: field(4)?.parse().ok()?,
        pgrp: field(5)?.parse().ok()?,
        session: field(6)?.parse().ok()?,
        flags: field(9)?.parse().ok()?,
        start_time: field(22)?.parse().ok()?,
    })
}

/// The cgroup v2 path (`0::/path`) from `/proc/<pid>/cgroup`.
pub fn parse_cgroup_v2(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(|p| p.trim_end().to_string())
}

/// The mount point of the cgroup2 filesystem from `/proc/self/mountinfo`.
/// Mount points with spaces are octal-escaped (`\040`) in mountinfo.
pub fn parse_cgroup2_mount(mountinfo: &str) -> Option<String> {
    mountinfo.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        if post.split_whitespace().next()? != "cgroup2" {
            return None;
        }
        pre.split_whitespace().nth(4).map(unescape_octal)
    })
}

/// Every mount point in `/proc/self/mountinfo` text, in the file's order
/// (parents before the mounts on them).
pub fn parse_mount_points(mountinfo: &str) -> Vec<String> {
    mountinfo
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4).map(unescape_octal))
        .collect()
}

fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Selected fields of `/proc/<pid>/status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub name: Option<String>,
    pub state: Option<String>,
    pub ppid: Option<i32>,
    /// Real, effective, saved, filesystem.
    pub uid: Vec<u32>,
    pub gid: Vec<u32>,
    pub threads: Option<u32>,
    /// Capabilities as the kernel prints them (hex).
    pub cap_eff: Option<String>,
    pub no_new_privs: Option<bool>,
    pub seccomp: Option<u8>,
}

pub fn parse_status(text: &str) -> Status {
    let mut s = Status::default();
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        let ids = || {
            v.split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect()
        };
        match k {
            "Name" => s.name = Some(v.to_string()),
            "State" => s.state = Some(v.to_string()),
            "PPid" => s.ppid = v.parse().ok(),
            "Uid" => s.uid = ids(),
            "Gid" => s.gid = ids(),
            "Threads" => s.threads = v.parse().ok(),
            "CapEff" => s.cap_eff = Some(v.to_string()),
            "NoNewPrivs" => s.no_new_privs = v.parse::<u8>().ok().map(|n| n != 0),
            "Seccomp" => s.seccomp = v.parse().ok(),
            _ => {}
        }
    }
    s
}

/// A NUL-separated list (`cmdline`, `environ`).
pub fn split_nul(bytes: &[u8]) -> Vec<String> {
    bytes
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

/// One socket from the procfs net tables, keyed by inode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SocketInfo {
    /// tcp, tcp6, udp, udp6, unix.
    pub proto: String,
    pub local: Option<String>,
    pub remote: Option<String>,
    pub state: String,
    /// Unix sockets: the bound path (abstract names start with `@`).
    pub path: Option<String>,
}

fn tcp_state(code: u8) -> &'static str {
    match code {
        0x01 => "ESTABLISHED",
        0x02 => "SYN_SENT",
        0x03 => "SYN_RECV",
        0x04 => "FIN_WAIT1",
        0x05 => "FIN_WAIT2",
        0x06 => "TIME_WAIT",
        0x07 => "CLOSE",
        0x08 => "CLOSE_WAIT",
        0x09 => "LAST_ACK",
        0x0A => "LISTEN",
        0x0B => "CLOSING",
        0x0C => "NEW_SYN_RECV",
        _ => "UNKNOWN",
    }
}

/// `0100007F:1F90` → `127.0.0.1:8080`. Addresses are the kernel's in-memory
/// words printed as hex: each 32-bit word is in host byte order.
pub fn parse_inet_addr(field: &str) -> Option<String> {
    let (addr, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |s: &str| u32::from_str_radix(s, 16).ok();
    let ip: IpAddr = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(addr)?.to_ne_bytes())),
        32 => {
            let mut bytes = [0u8; 16];
            for i in 0..4 {
                let w = word(&addr[i * 8..i * 8 + 8])?;
                bytes[i * 4..i * 4 + 4].copy_from_slice(&w.to_ne_bytes());
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(match ip {
        IpAddr::V4(v4) => format!("{v4}:{port}"),
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
    })
}

/// Parse `/proc/net/{tcp,tcp6,udp,udp6}` into (inode, socket) pairs.
pub fn parse_inet_table(proto: &str, text: &str) -> Vec<(u64, SocketInfo)> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let inode: u64 = f.get(9)?.parse().ok()?;
            let st = u8::from_str_radix(f.get(3)?, 16).ok()?;
            let state = if proto.starts_with("udp") {
                // UDP reuses the TCP codes: 07 is unconnected, 01 connected.
                if st == 0x01 {
                    "CONNECTED"
                } else {
                    "UNCONNECTED"
                }
            } else {
                tcp_state(st)
            };
            Some((
                inode,
                SocketInfo {
                    proto: proto.to_string(),
                    local: parse_inet_addr(f.get(1)?),
                    remote: parse_inet_addr(f.get(2)?),
                    state: state.to_string(),
                    path: None,
                },
            ))
        })
        .collect()
}

/// Parse `/proc/net/unix` into (inode, socket) pairs.
pub fn parse_unix_table(text: &str) -> Vec<(u64, SocketInfo)> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let inode: u64 = f.get(6)?.parse().ok()?;
            let kind = match *f.get(4)? {
                "0001" => "STREAM",
                "0002" => "DGRAM",
                "0005" => "SEQPACKET",
                _ => "OTHER",
            };
            let state = match *f.get(5)? {
                "01" => "UNCONNECTED",
                "02" => "CONNECTING",
                "03" => "CONNECTED",
                "04" => "DISCONNECTING",
                _ => "UNKNOWN",
            };
            Some((
                inode,
                SocketInfo {
                    proto: "unix".to_string(),
                    local: None,
                    remote: None,
                    state: format!("{kind} {state}"),
                    path: f.get(7).map(|p| p.to_string()),
                },
            ))
        })
        .collect()
}

/// `socket:[12345]` → 12345.
pub fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// A summary of `/proc/<pid>/maps`: enough to see what code a process ran
/// (mapped files, deleted binaries) without copying the whole table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapsSummary {
    pub regions: usize,
    pub total_kib: u64,
    pub anonymous_kib: u64,
    pub executable_regions: usize,
    /// Distinct mapped files, in first-seen order (capped at [`MAX_MAPPED_FILES`]).
    pub files: Vec<String>,
    pub files_truncated: bool,
    /// Mapped files that were deleted on disk (a classic sign of a replaced binary).
    pub deleted_files: Vec<String>,
}

pub const MAX_MAPPED_FILES: usize = 200;

pub fn summarize_maps(text: &str) -> MapsSummary {
    let mut s = MapsSummary::default();
    for line in text.lines() {
        let f: Vec<&str> = line.splitn(6, char::is_whitespace).collect();
        let Some((lo, hi)) = f.first().and_then(|r| r.split_once('-')) else {
            continue;
        };
        let (Ok(lo), Ok(hi)) = (u64::from_str_radix(lo, 16), u64::from_str_radix(hi, 16)) else {
            continue;
        };
        let kib = hi.saturating_sub(lo) / 1024;
        s.regions += 1;
        s.total_kib += kib;
        if f.get(1).is_some_and(|p| p.contains('x')) {
            s.executable_regions += 1;
        }
        let path = f.get(5).map(|p| p.trim()).unwrap_or("");
        if path.is_empty() || (path.starts_with('[') && path.ends_with(']')) {
            if path.is_empty() {
                s.anonymous_kib += kib;
            }
            continue;
        }
        if let Some(p) = path.strip_suffix(" (deleted)") {
            if !s.deleted_files.iter().any(|d| d == p) {
                s.deleted_files.push(p.to_string());
            }
        }
        if !s.files.iter().any(|x| x == path) {
            if s.files.len() < MAX_MAPPED_FILES {
                s.files.push(path.to_string());
            } else {
                s.files_truncated = true;
            }
        }
    }
    s
}

#[cfg(target_os = "linux")]
pub use linux::*;

#[cfg(target_os = "linux")]
mod linux {
    use super::*;
    use std::path::PathBuf;

    pub fn read_stat(pid: i32) -> Option<Stat> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        parse_stat(&text)
    }

    /// Every process in this pid namespace (threads excluded), one pass.
    /// Processes that vanish mid-scan are simply absent.
    pub fn scan() -> Vec<Stat> {
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter_map(read_stat)
            .collect()
    }

    pub fn cgroup_v2_of(pid: i32) -> Option<String> {
        parse_cgroup_v2(&std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?)
    }

    pub fn cgroup2_mount() -> Option<PathBuf> {
        let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
        parse_cgroup2_mount(&info).map(PathBuf::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_hostile_comm() {
        let t = "4242 (a) b (c) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        let s = parse_stat(t).unwrap();
        assert_eq!(s.pid, 4242);
        assert_eq!(s.comm, "a) b (c");
        assert_eq!(s.state, 'S');
        assert_eq!((s.ppid, s.pgrp, s.session), (1, 4242, 4242));
        assert_eq!(s.start_time, 987654);
        assert!(!s.is_kernel_thread());
        let k = "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0";
        assert!(parse_stat(k).unwrap().is_kernel_thread());
        assert!(parse_stat("garbage").is_none());
        assert!(parse_stat("12 (x) S 1").is_none());
    }

    #[test]
    fn cgroup_v2_line() {
        let t = "9:name=systemd:/\n4:memory:/x\n0::/user.slice/app.scope\n";
        assert_eq!(parse_cgroup_v2(t).as_deref(), Some("/user.slice/app.scope"));
        assert_eq!(parse_cgroup_v2("4:memory:/x\n"), None);
    }

    #[test]
    fn mount_points_from_mountinfo() {
        let m = "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n\
                 31 22 0:28 / /data/my\\040m rw,relatime - tmpfs tmpfs rw\n\
                 32 22 0:29 /sub /tmp/b rw - tmpfs tmpfs rw\n";
        assert_eq!(parse_mount_points(m), ["/", "/data/my m", "/tmp/b"]);
        assert!(parse_mount_points("").is_empty());
    }

    #[test]
    fn cgroup2_mount_from_mountinfo() {
        let m = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw\n\
                 41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        assert_eq!(
            parse_cgroup2_mount(m).as_deref(),
            Some("/sys/fs/cgroup/unified")
        );
        let spaced = "41 31 0:38 / /mnt/my\\040cg rw - cgroup2 cgroup2 rw\n";
        assert_eq!(parse_cgroup2_mount(spaced).as_deref(), Some("/mnt/my cg"));
        assert_eq!(
            parse_cgroup2_mount("1 2 0:1 / / rw - ext4 /dev/x rw\n"),
            None
        );
    }

    #[test]
    fn status_fields() {
        let t = "Name:\tnode\nState:\tS (sleeping)\nPPid:\t17\nUid:\t1000\t1000\t1000\t1000\n\
                 Gid:\t100\t100\t100\t100\nThreads:\t11\nCapEff:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t2\n";
        let s = parse_status(t);
        assert_eq!(s.name.as_deref(), Some("node"));
        assert_eq!(s.ppid, Some(17));
        assert_eq!(s.uid, vec![1000; 4]);
        assert_eq!(s.gid, vec![100; 4]);
        assert_eq!(s.threads, Some(11));
        assert_eq!(s.no_new_privs, Some(true));
        assert_eq!(s.seccomp, Some(2));
    }

    #[test]
    fn nul_lists() {
        assert_eq!(
            split_nul(b"node\0server.js\0--port\0\0"),
            ["node", "server.js", "--port"]
        );
        assert!(split_nul(b"").is_empty());
    }

    #[test]
    fn inet_addresses() {
        assert_eq!(
            parse_inet_addr("0100007F:1F90").as_deref(),
            Some("127.0.0.1:8080")
        );
        assert_eq!(
            parse_inet_addr("00000000:0016").as_deref(),
            Some("0.0.0.0:22")
        );
        assert_eq!(
            parse_inet_addr("00000000000000000000000001000000:0050").as_deref(),
            Some("[::1]:80")
        );
        assert_eq!(
            parse_inet_addr("0000000000000000FFFF00000100007F:1F90").as_deref(),
            Some("[::ffff:127.0.0.1]:8080")
        );
        assert_eq!(parse_inet_addr("zz:1"), None);
    }

    #[test]
    fn tcp_and_unix_tables() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 31337 1 0000000000000000 100 0 0 10 0\n\
   1: 0100007F:C350 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 31338 1 0000000000000000 20 4 30 10 -1\n";
        let t = parse_inet_table("tcp", tcp);
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].0, 31337);
        assert_eq!(t[0].1.state, "LISTEN");
        assert_eq!(t[1].1.remote.as_deref(), Some("127.0.0.1:8080"));
        assert_eq!(t[1].1.state, "ESTABLISHED");
        let udp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
  5: 00000000:0044 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 777 2 0000000000000000 0\n";
        assert_eq!(parse_inet_table("udp", udp)[0].1.state, "UNCONNECTED");
        let unix = "Num       RefCount Protocol Flags    Type St Inode Path\n\
0000000000000000: 00000002 00000000 00010000 0001 01 4242 /run/app.sock\n\
0000000000000000: 00000003 00000000 00000000 0001 03 4243\n";
        let u = parse_unix_table(unix);
        assert_eq!(
            u[0],
            (
                4242,
                SocketInfo {
                    proto: "unix".into(),
                    local: None,
                    remote: None,
                    state: "STREAM UNCONNECTED".into(),
                    path: Some("/run/app.sock".into())
                }
            )
        );
        assert_eq!(u[1].1.path, None);
        assert_eq!(u[1].1.state, "STREAM CONNECTED");
        assert_eq!(socket_inode("socket:[4242]"), Some(4242));
        assert_eq!(socket_inode("pipe:[1]"), None);
    }

    #[test]
    fn maps_summary() {
        let m = "55d0c0000000-55d0c0002000 r-xp 00000000 08:01 123 /usr/bin/node\n\
55d0c0002000-55d0c0003000 r--p 00002000 08:01 123 /usr/bin/node\n\
7f0000000000-7f0000100000 rw-p 00000000 00:00 0 \n\
7f0000100000-7f0000101000 r-xp 00000000 08:01 9 /tmp/evil.so (deleted)\n\
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]\n";
        let s = summarize_maps(m);
        assert_eq!(s.regions, 5);
        assert_eq!(s.executable_regions, 2);
        assert_eq!(s.anonymous_kib, 1024);
        assert_eq!(s.files, ["/usr/bin/node", "/tmp/evil.so (deleted)"]);
        assert_eq!(s.deleted_files, ["/tmp/evil.so"]);
        assert!(!s.files_truncated);
    }
}
