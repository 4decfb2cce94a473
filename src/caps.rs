//! assay without root: the binary installed with file capabilities in its
//! PERMITTED set only (`setcap ...=p`, never `=ep`), so an ordinary user (an
//! MCP client launching `assay monitor -- server`) gets enforcement while
//! assay stays that user everywhere else.
//!
//! Capabilities are raised in the effective set only where assay itself
//! chooses what they act on, never on a path or id the user gave:
//! - for the whole monitor session, the ones that grant no file access:
//!   loading and attaching BPF ([`SESSION`]);
//! - around assay's own cgroup leaf and bpffs pins, the file-access ones
//!   ([`Raised`], dropped again when it goes out of scope).
//!
//! So the policy, `--events` and every other user-named file are opened with
//! the user's own rights. Root (euid 0) needs none of this: every call here
//! is then a no-op.

use std::io;
use std::marker::PhantomData;

/// A capability assay may use (the numbers of linux/capability.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Cap {
    Chown = 0,
    DacOverride = 1,
    Setpcap = 8,
    NetAdmin = 12,
    SysResource = 24,
    Perfmon = 38,
    Bpf = 39,
}

impl Cap {
    pub fn name(self) -> &'static str {
        match self {
            Cap::Chown => "cap_chown",
            Cap::DacOverride => "cap_dac_override",
            Cap::Setpcap => "cap_setpcap",
            Cap::NetAdmin => "cap_net_admin",
            Cap::SysResource => "cap_sys_resource",
            Cap::Perfmon => "cap_perfmon",
            Cap::Bpf => "cap_bpf",
        }
    }

    fn bit(self) -> u64 {
        1 << self as u32
    }
}

/// What a monitor run by a user needs (what `setcap` installs, with
/// [`MEMLOCK`]):
/// - `cap_bpf`, `cap_perfmon`: load the BPF programs (LSM ones are tracing
///   programs) and create their maps;
/// - `cap_net_admin`: load and attach the cgroup socket programs;
/// - `cap_dac_override`: create and remove assay's leaf cgroup in the
///   root-owned cgroup2 tree, move the command into it, and keep pins in
///   the root-only bpffs;
/// - `cap_chown`: hand the pin directories to root, so the user (and the
///   command, running as that user) cannot reach them;
/// - `cap_setpcap`: empty the command's bounding set before it runs.
pub const NEEDED: [Cap; 6] = [
    Cap::Bpf,
    Cap::Perfmon,
    Cap::NetAdmin,
    Cap::DacOverride,
    Cap::Chown,
    Cap::Setpcap,
];

/// Installed too, used when there: kernels before 5.11 charge BPF maps to
/// RLIMIT_MEMLOCK, which libbpf raises with it. Not required, since newer
/// kernels do not need it and some hosts' bounding sets lack it.
pub const MEMLOCK: Cap = Cap::SysResource;

/// Effective for a whole session: none of them opens a file.
pub const SESSION: [Cap; 4] = [Cap::Bpf, Cap::Perfmon, Cap::NetAdmin, Cap::SysResource];

/// The `setcap` argument that installs [`NEEDED`] and [`MEMLOCK`].
pub fn setcap_spec() -> String {
    let names: Vec<&str> = NEEDED.iter().chain([&MEMLOCK]).map(|c| c.name()).collect();
    format!("{}=p", names.join(","))
}

/// The capability bits of `caps`.
pub fn mask(caps: &[Cap]) -> u64 {
    caps.iter().fold(0, |m, c| m | c.bit())
}

/// Where assay's power comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authority {
    /// euid 0.
    Root,
    /// A user, with every capability of [`NEEDED`] permitted.
    Capabilities { uid: u32 },
    /// A user without (all of) them.
    Missing { uid: u32, missing: Vec<Cap> },
}

impl Authority {
    pub fn is_root(&self) -> bool {
        matches!(self, Authority::Root)
    }
}

/// The three capability sets of this thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sets {
    effective: u64,
    permitted: u64,
    inheritable: u64,
}

#[repr(C)]
struct Header {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Data {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const VERSION_3: u32 = 0x2008_0522;

fn get() -> io::Result<Sets> {
    let mut hdr = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut d = [Data::default(); 2];
    // SAFETY: header and room for two data words, as capget v3 expects.
    if unsafe { libc::syscall(libc::SYS_capget, &mut hdr, d.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let join = |lo: u32, hi: u32| u64::from(lo) | (u64::from(hi) << 32);
    Ok(Sets {
        effective: join(d[0].effective, d[1].effective),
        permitted: join(d[0].permitted, d[1].permitted),
        inheritable: join(d[0].inheritable, d[1].inheritable),
    })
}

fn set(s: Sets) -> io::Result<()> {
    let mut hdr = Header {
        version: VERSION_3,
        pid: 0,
    };
    let split = |v: u64| (v as u32, (v >> 32) as u32);
    let (e0, e1) = split(s.effective);
    let (p0, p1) = split(s.permitted);
    let (i0, i1) = split(s.inheritable);
    let d = [
        Data {
            effective: e0,
            permitted: p0,
            inheritable: i0,
        },
        Data {
            effective: e1,
            permitted: p1,
            inheritable: i1,
        },
    ];
    // SAFETY: header and two data words, as capset v3 expects.
    if unsafe { libc::syscall(libc::SYS_capset, &mut hdr, d.as_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn euid() -> u32 {
    // SAFETY: plain syscall.
    unsafe { libc::geteuid() }
}

/// What this process may do, from its ids and permitted set.
pub fn authority() -> Authority {
    let uid = euid();
    if uid == 0 {
        return Authority::Root;
    }
    let permitted = get().map_or(0, |s| s.permitted);
    let missing: Vec<Cap> = NEEDED
        .iter()
        .copied()
        .filter(|c| permitted & c.bit() == 0)
        .collect();
    if missing.is_empty() {
        Authority::Capabilities { uid }
    } else {
        Authority::Missing { uid, missing }
    }
}

/// For every command, first thing: a user's effective set is emptied, so a
/// binary installed `=ep` by mistake still acts with the user's rights
/// until something here raises a capability on purpose.
pub fn lower_all() -> io::Result<()> {
    if euid() == 0 {
        return Ok(());
    }
    let s = get()?;
    if s.effective == 0 {
        return Ok(());
    }
    set(Sets { effective: 0, ..s })
}

/// Empties every set of this thread: the command, between fork and exec
/// (async-signal-safe: one syscall on stack data).
pub fn clear() -> io::Result<()> {
    set(Sets {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    })
}

/// A monitor session run by a user: [`SESSION`] effective on this thread
/// (threads started later inherit it).
pub fn enter_session() -> io::Result<()> {
    if euid() == 0 {
        return Ok(());
    }
    let s = get()?;
    set(Sets {
        effective: mask(&SESSION) & s.permitted,
        ..s
    })
}

/// Capabilities raised on this thread until dropped (on the same thread:
/// the sets are per thread, hence not `Send`).
#[must_use = "the capabilities are lowered again when this is dropped"]
pub struct Raised {
    before: Option<Sets>,
    _thread: PhantomData<*const ()>,
}

/// Raises `caps` in the effective set, where the permitted set has them.
/// Root, or a user without them: nothing changes (the operation then fails
/// on its own, with the kernel's error).
pub fn raise(caps: &[Cap]) -> Raised {
    let before = (euid() != 0)
        .then(get)
        .and_then(Result::ok)
        .filter(|s| mask(caps) & s.permitted & !s.effective != 0);
    if let Some(s) = before {
        let _ = set(Sets {
            effective: s.effective | (mask(caps) & s.permitted),
            ..s
        });
    }
    Raised {
        before,
        _thread: PhantomData,
    }
}

impl Drop for Raised {
    fn drop(&mut self) {
        if let Some(s) = self.before {
            let _ = set(s);
        }
    }
}

/// The names of the capabilities in `mask`, lowest bit first (`cap_<n>`
/// for bits this table does not know).
pub fn names(mask: u64) -> Vec<String> {
    const NAMES: [&str; 41] = [
        "cap_chown",
        "cap_dac_override",
        "cap_dac_read_search",
        "cap_fowner",
        "cap_fsetid",
        "cap_kill",
        "cap_setgid",
        "cap_setuid",
        "cap_setpcap",
        "cap_linux_immutable",
        "cap_net_bind_service",
        "cap_net_broadcast",
        "cap_net_admin",
        "cap_net_raw",
        "cap_ipc_lock",
        "cap_ipc_owner",
        "cap_sys_module",
        "cap_sys_rawio",
        "cap_sys_chroot",
        "cap_sys_ptrace",
        "cap_sys_pacct",
        "cap_sys_admin",
        "cap_sys_boot",
        "cap_sys_nice",
        "cap_sys_resource",
        "cap_sys_time",
        "cap_sys_tty_config",
        "cap_mknod",
        "cap_lease",
        "cap_audit_write",
        "cap_audit_control",
        "cap_setfcap",
        "cap_mac_override",
        "cap_mac_admin",
        "cap_syslog",
        "cap_wake_alarm",
        "cap_block_suspend",
        "cap_audit_read",
        "cap_perfmon",
        "cap_bpf",
        "cap_checkpoint_restore",
    ];
    (0..64)
        .filter(|b| mask & (1u64 << b) != 0)
        .map(|b| {
            NAMES
                .get(b)
                .map_or_else(|| format!("cap_{b}"), |n| (*n).to_string())
        })
        .collect()
}

/// `CAP_KILL`: signal processes of other users.
pub const CAP_KILL_BIT: u64 = 1 << 5;

/// This thread's effective and permitted sets.
pub fn current() -> io::Result<(u64, u64)> {
    get().map(|s| (s.effective, s.permitted))
}

/// File capabilities of an executable (its `security.capability` xattr).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileCaps {
    pub permitted: u64,
    pub inheritable: u64,
    /// The effective bit (`=ep`): assay expects it off.
    pub effective: bool,
}

impl FileCaps {
    /// Decodes a `vfs_cap_data` (revision 2 or 3) attribute value.
    pub fn decode(b: &[u8]) -> Option<FileCaps> {
        let word = |i: usize| -> Option<u32> {
            Some(u32::from_le_bytes(
                b.get(i * 4..i * 4 + 4)?.try_into().ok()?,
            ))
        };
        let magic = word(0)?;
        let words = match magic & 0xff00_0000 {
            0x0200_0000 => 5,
            0x0300_0000 => 6,
            _ => return None,
        };
        if b.len() < words * 4 {
            return None;
        }
        let join = |lo: u32, hi: u32| u64::from(lo) | (u64::from(hi) << 32);
        Some(FileCaps {
            permitted: join(word(1)?, word(3)?),
            inheritable: join(word(2)?, word(4)?),
            effective: magic & 1 != 0,
        })
    }

    /// Whether they are what `setcap_spec` installs at least: every
    /// [`NEEDED`] capability permitted, effective off.
    pub fn complete(&self) -> bool {
        self.permitted & mask(&NEEDED) == mask(&NEEDED) && !self.effective
    }
}

/// The file capabilities of `path`; None when it has none.
pub fn file_caps(path: &std::path::Path) -> io::Result<Option<FileCaps>> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())?;
    let mut buf = [0u8; 64];
    // SAFETY: valid C strings and a buffer of the stated length.
    let n = unsafe {
        libc::getxattr(
            c.as_ptr(),
            c"security.capability".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENODATA) | Some(libc::ENOTSUP) => Ok(None),
            _ => Err(e),
        };
    }
    FileCaps::decode(&buf[..n as usize])
        .map(Some)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unknown vfs_cap_data revision"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setcap_spec_names_every_needed_capability_permitted_only() {
        assert_eq!(
            setcap_spec(),
            "cap_bpf,cap_perfmon,cap_net_admin,cap_dac_override,cap_chown,cap_setpcap,\
             cap_sys_resource=p"
        );
    }

    #[test]
    fn make_install_sets_the_same_capabilities() {
        let makefile = include_str!("../Makefile");
        assert!(
            makefile.contains(&format!("CAPS := {}\n", setcap_spec())),
            "Makefile's CAPS differs from {}",
            setcap_spec()
        );
    }

    #[test]
    fn session_capabilities_open_no_files() {
        for c in SESSION {
            assert!(!matches!(c, Cap::DacOverride | Cap::Chown), "{c:?}");
        }
        assert_eq!(mask(&SESSION) & !mask(&NEEDED) & !MEMLOCK.bit(), 0);
    }

    #[test]
    fn this_thread_reads_its_sets_and_raising_restores_them() {
        let before = get().unwrap();
        {
            let _r = raise(&[Cap::DacOverride]);
            let during = get().unwrap();
            assert_eq!(during.permitted, before.permitted);
            if euid() != 0 && before.permitted & Cap::DacOverride.bit() != 0 {
                assert_ne!(during.effective & Cap::DacOverride.bit(), 0);
            }
        }
        assert_eq!(get().unwrap(), before);
    }

    #[test]
    fn file_capabilities_decode_as_setcap_writes_them() {
        // `setcap cap_bpf,...=p` (revision 2): permitted words only.
        let p = mask(&NEEDED) | MEMLOCK.bit();
        let mut v2 = Vec::new();
        for w in [0x0200_0000u32, p as u32, 0, (p >> 32) as u32, 0] {
            v2.extend_from_slice(&w.to_le_bytes());
        }
        let fc = FileCaps::decode(&v2).unwrap();
        assert_eq!(fc.permitted, p);
        assert!(!fc.effective);
        assert!(fc.complete());
        // `=ep` sets the effective bit: not what assay installs.
        v2[0] = 1;
        assert!(!FileCaps::decode(&v2).unwrap().complete());
        // Revision 3 carries a root uid after the sets.
        let mut v3 = Vec::new();
        for w in [0x0300_0000u32, 0, 0, (Cap::Bpf.bit() >> 32) as u32, 0, 0] {
            v3.extend_from_slice(&w.to_le_bytes());
        }
        let fc = FileCaps::decode(&v3).unwrap();
        assert!(!fc.complete());
        assert_eq!(names(fc.permitted), ["cap_bpf"]);
        assert!(FileCaps::decode(&v3[..8]).is_none());
        assert!(FileCaps::decode(&[0, 0, 0, 9]).is_none());
    }

    #[test]
    fn names_follow_linux_numbers() {
        assert_eq!(names(CAP_KILL_BIT), ["cap_kill"]);
        for c in NEEDED {
            assert_eq!(names(c.bit()), [c.name()]);
        }
        assert_eq!(names(1 << 63), ["cap_63"]);
    }
}
