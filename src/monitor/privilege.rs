//! Who the wrapped command runs as, and with what: wrapper mode gives the
//! command the least privilege that still runs it. By default it runs as the
//! user who invoked assay (`SUDO_UID`/`SUDO_GID` and that user's groups under
//! sudo; the real ids when assay itself is not running as root), with every
//! capability set empty (the bounding set included), `no_new_privs`, and no
//! inherited descriptor above 2 but those passed on purpose. Root without
//! sudo (a unit, a container entrypoint, CI) keeps uid 0 but no capability:
//! root's power over the scope (leaving its cgroup, detaching BPF, raw
//! sockets, block devices) comes from capabilities, not from the uid.
//!
//! [`run_as`] decides (pure, unit-tested); [`RunAs::apply`] is what the child
//! does between fork and exec (async-signal-safe calls only).

use std::ffi::{CStr, CString};
use std::io;

/// The capability bits this build knows (CAP_LAST_CAP of Linux 6.x is 40);
/// dropping an unknown one from the bounding set fails with EINVAL, which
/// ends the loop.
const CAP_MAX: u32 = 63;

/// What the invoking process is, as far as choosing the command's user goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoker {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups of assay itself.
    pub groups: Vec<u32>,
    /// `SUDO_UID`, `SUDO_GID`, `SUDO_USER` (only believed when `uid` is 0:
    /// anyone may set them).
    pub sudo: Option<(u32, u32, String)>,
}

impl Invoker {
    pub fn current() -> Invoker {
        // SAFETY: plain syscalls without arguments.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        let var = |k| std::env::var(k).ok();
        let sudo = match (var("SUDO_UID"), var("SUDO_GID"), var("SUDO_USER")) {
            (Some(u), Some(g), Some(name)) => match (u.parse(), g.parse()) {
                (Ok(u), Ok(g)) => Some((u, g, name)),
                _ => None,
            },
            _ => None,
        };
        Invoker {
            uid,
            gid,
            groups: own_groups(),
            sudo,
        }
    }
}

fn own_groups() -> Vec<u32> {
    // SAFETY: a null list asks for the count.
    let n = unsafe { libc::getgroups(0, std::ptr::null_mut()) };
    if n <= 0 {
        return Vec::new();
    }
    let mut v = vec![0 as libc::gid_t; n as usize];
    // SAFETY: v has room for n groups.
    let n = unsafe { libc::getgroups(n, v.as_mut_ptr()) };
    v.truncate(n.max(0) as usize);
    v
}

/// `--user USER[:GROUP]`: names or numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSpec {
    pub user: String,
    pub group: Option<String>,
}

impl std::str::FromStr for UserSpec {
    type Err = PrivilegeError;
    fn from_str(s: &str) -> Result<UserSpec, PrivilegeError> {
        let (user, group) = match s.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (s, None),
        };
        if user.is_empty() || group.is_some_and(str::is_empty) {
            return Err(PrivilegeError::Spec(s.to_string()));
        }
        Ok(UserSpec {
            user: user.to_string(),
            group: group.map(str::to_string),
        })
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PrivilegeError {
    #[error("`{0}` is not USER or USER:GROUP")]
    Spec(String),
    #[error("no user `{0}` on this system")]
    NoUser(String),
    #[error("no group `{0}` on this system")]
    NoGroup(String),
    #[error(
        "--user {0}: only root may run the command as another user (assay runs it as you, uid \
         {1})"
    )]
    NotYours(String, u32),
}

/// How the command is started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    /// Keep the capabilities the command would have as this user (only
    /// meaningful for uid 0): `--keep-capabilities`.
    pub keep_capabilities: bool,
    /// Descriptors above 2 the command inherits (`--pass-fd`).
    pub pass_fds: Vec<i32>,
}

/// A user as the system names it: (uid, primary gid, name).
pub trait Users {
    fn user(&self, name_or_id: &str) -> Option<(u32, u32, String)>;
    fn group(&self, name_or_id: &str) -> Option<u32>;
    /// Every group of `name`, `gid` included.
    fn groups_of(&self, name: &str, gid: u32) -> Vec<u32>;
}

/// The system's user database (NSS).
pub struct System;

impl Users for System {
    fn user(&self, s: &str) -> Option<(u32, u32, String)> {
        let mut buf = vec![0 as libc::c_char; 16 * 1024];
        // SAFETY: passwd is plain data filled by getpw*_r.
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut out: *mut libc::passwd = std::ptr::null_mut();
        let rc = match s.parse::<u32>() {
            // SAFETY: valid out pointers and buffer of its stated length.
            Ok(uid) => unsafe {
                libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut out)
            },
            Err(_) => {
                let c = CString::new(s).ok()?;
                // SAFETY: as above, with a valid C string.
                unsafe {
                    libc::getpwnam_r(c.as_ptr(), &mut pw, buf.as_mut_ptr(), buf.len(), &mut out)
                }
            }
        };
        if rc != 0 || out.is_null() {
            // A number with no passwd entry is still a user id.
            return s.parse::<u32>().ok().map(|u| (u, u, s.to_string()));
        }
        // SAFETY: getpw*_r succeeded, so pw_name points into buf.
        let name = unsafe { CStr::from_ptr(pw.pw_name) }
            .to_string_lossy()
            .into_owned();
        Some((pw.pw_uid, pw.pw_gid, name))
    }

    fn group(&self, s: &str) -> Option<u32> {
        if let Ok(g) = s.parse::<u32>() {
            return Some(g);
        }
        let c = CString::new(s).ok()?;
        let mut buf = vec![0 as libc::c_char; 16 * 1024];
        // SAFETY: group is plain data filled by getgrnam_r.
        let mut gr: libc::group = unsafe { std::mem::zeroed() };
        let mut out: *mut libc::group = std::ptr::null_mut();
        // SAFETY: valid pointers and buffer of its stated length.
        let rc =
            unsafe { libc::getgrnam_r(c.as_ptr(), &mut gr, buf.as_mut_ptr(), buf.len(), &mut out) };
        (rc == 0 && !out.is_null()).then_some(gr.gr_gid)
    }

    fn groups_of(&self, name: &str, gid: u32) -> Vec<u32> {
        let Ok(c) = CString::new(name) else {
            return vec![gid];
        };
        let mut n: libc::c_int = 64;
        loop {
            let mut v = vec![0 as libc::gid_t; n as usize];
            let want = n;
            // SAFETY: v has room for `want` groups; n is updated in place.
            let rc = unsafe { libc::getgrouplist(c.as_ptr(), gid, v.as_mut_ptr(), &mut n) };
            if rc >= 0 {
                v.truncate(n.max(0) as usize);
                return v;
            }
            if n <= want {
                return vec![gid];
            }
        }
    }
}

/// Who runs the command. `user`: `--user`; `keep_capabilities`:
/// `--keep-capabilities`. Only root may choose another user.
pub fn run_as(
    inv: &Invoker,
    users: &dyn Users,
    user: Option<&UserSpec>,
    keep_capabilities: bool,
    pass_fds: Vec<i32>,
) -> Result<RunAs, PrivilegeError> {
    let (uid, gid, groups) = match user {
        Some(spec) => {
            let (uid, primary, name) = users
                .user(&spec.user)
                .ok_or_else(|| PrivilegeError::NoUser(spec.user.clone()))?;
            let gid = match &spec.group {
                Some(g) => users
                    .group(g)
                    .ok_or_else(|| PrivilegeError::NoGroup(g.clone()))?,
                None => primary,
            };
            // A user (file capabilities) has no CAP_SETGID: their own ids only.
            if inv.uid != 0 && (uid != inv.uid || gid != inv.gid) {
                return Err(PrivilegeError::NotYours(
                    match &spec.group {
                        Some(g) => format!("{}:{g}", spec.user),
                        None => spec.user.clone(),
                    },
                    inv.uid,
                ));
            }
            let mut groups = if inv.uid == 0 {
                users.groups_of(&name, gid)
            } else {
                inv.groups.clone()
            };
            if !groups.contains(&gid) {
                groups.insert(0, gid);
            }
            (uid, gid, groups)
        }
        None => match (&inv.sudo, inv.uid) {
            (Some((uid, gid, name)), 0) => (*uid, *gid, users.groups_of(name, *gid)),
            _ => (inv.uid, inv.gid, inv.groups.clone()),
        },
    };
    let mut pass_fds: Vec<i32> = pass_fds.into_iter().filter(|fd| *fd > 2).collect();
    pass_fds.sort_unstable();
    pass_fds.dedup();
    Ok(RunAs {
        uid,
        gid,
        groups,
        keep_capabilities,
        pass_fds,
    })
}

impl RunAs {
    /// Whether the command keeps root's capabilities.
    pub fn privileged(&self) -> bool {
        self.uid == 0 && self.keep_capabilities
    }

    /// In the child, between fork and exec: descriptors, ids, capabilities,
    /// no_new_privs. Only async-signal-safe calls; the groups were computed
    /// before the fork.
    ///
    /// # Safety
    /// Call only in a freshly forked child (`pre_exec`).
    pub unsafe fn apply(&self) -> io::Result<()> {
        // SAFETY: the caller is a forked child; every call below is a plain
        // syscall on values prepared before the fork.
        unsafe {
            close_inherited(&self.pass_fds)?;
            let drop_caps = !self.privileged();
            if drop_caps {
                // While assay's capabilities are still there (CAP_SETPCAP):
                // nothing the command execs can regain a dropped one.
                for cap in 0..=CAP_MAX {
                    if libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 {
                        if io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
                            break;
                        }
                        return Err(io::Error::last_os_error());
                    }
                }
            }
            // A user running assay with file capabilities already has these
            // ids (see `run_as`), and no CAP_SETGID to set the groups.
            if libc::geteuid() == 0 {
                if libc::setgroups(self.groups.len(), self.groups.as_ptr()) != 0 {
                    return Err(io::Error::last_os_error());
                }
                if libc::setresgid(self.gid, self.gid, self.gid) != 0 {
                    return Err(io::Error::last_os_error());
                }
                if libc::setresuid(self.uid, self.uid, self.uid) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            if drop_caps {
                if libc::prctl(
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_CLEAR_ALL,
                    0,
                    0,
                    0,
                ) != 0
                {
                    return Err(io::Error::last_os_error());
                }
                crate::caps::clear()?;
            }
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }
}

/// Every descriptor above 2 is closed at exec, but those in `keep` (sorted,
/// above 2), which stay open (close-on-exec cleared). Marking instead of
/// closing keeps the pipe the standard library uses to report a failed exec.
unsafe fn close_inherited(keep: &[i32]) -> io::Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    let mut from: u32 = 3;
    for to in keep
        .iter()
        .map(|fd| *fd as u32)
        .chain(std::iter::once(u32::MAX))
    {
        if to > from {
            // SAFETY: plain syscall.
            let rc =
                unsafe { libc::syscall(libc::SYS_close_range, from, to - 1, CLOSE_RANGE_CLOEXEC) };
            if rc != 0 {
                // Before Linux 5.11: mark them one by one.
                for f in from..to.min(1 << 16) {
                    // SAFETY: plain syscall on a number that may not be open.
                    unsafe { libc::fcntl(f as i32, libc::F_SETFD, libc::FD_CLOEXEC) };
                }
            }
        }
        if to != u32::MAX {
            // SAFETY: plain syscall.
            if unsafe { libc::fcntl(to as i32, libc::F_SETFD, 0) } != 0 {
                return Err(io::Error::last_os_error());
            }
            from = to + 1;
        }
    }
    Ok(())
}

/// Whether `fd` is an open descriptor of this process.
pub fn is_open(fd: i32) -> bool {
    // SAFETY: plain syscall.
    fd >= 0 && unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// alice 1000:1000 (groups 1000, 27), bob 1001:1001, root 0:0.
    struct Fake;

    impl Users for Fake {
        fn user(&self, s: &str) -> Option<(u32, u32, String)> {
            match s {
                "alice" | "1000" => Some((1000, 1000, "alice".into())),
                "bob" | "1001" => Some((1001, 1001, "bob".into())),
                "root" | "0" => Some((0, 0, "root".into())),
                _ => None,
            }
        }
        fn group(&self, s: &str) -> Option<u32> {
            match s {
                "alice" | "1000" => Some(1000),
                "sudo" | "27" => Some(27),
                "bob" => Some(1001),
                _ => None,
            }
        }
        fn groups_of(&self, name: &str, gid: u32) -> Vec<u32> {
            match name {
                "alice" => vec![gid, 27],
                _ => vec![gid],
            }
        }
    }

    fn root(sudo: Option<(u32, u32, &str)>) -> Invoker {
        Invoker {
            uid: 0,
            gid: 0,
            groups: vec![0],
            sudo: sudo.map(|(u, g, n)| (u, g, n.to_string())),
        }
    }

    fn alice() -> Invoker {
        Invoker {
            uid: 1000,
            gid: 1000,
            groups: vec![1000, 27],
            // Set by alice herself: not believed.
            sudo: Some((0, 0, "root".into())),
        }
    }

    fn spec(s: &str) -> UserSpec {
        s.parse().unwrap()
    }

    #[test]
    fn under_sudo_the_command_runs_as_the_invoking_user() {
        let r = run_as(
            &root(Some((1000, 1000, "alice"))),
            &Fake,
            None,
            false,
            vec![],
        )
        .unwrap();
        assert_eq!(
            (r.uid, r.gid, r.groups.as_slice()),
            (1000, 1000, &[1000, 27][..])
        );
        assert!(!r.privileged());
    }

    #[test]
    fn root_without_sudo_stays_root_without_capabilities() {
        let r = run_as(&root(None), &Fake, None, false, vec![]).unwrap();
        assert_eq!((r.uid, r.gid), (0, 0));
        assert!(!r.privileged());
        let r = run_as(&root(None), &Fake, None, true, vec![]).unwrap();
        assert!(r.privileged(), "--keep-capabilities");
    }

    #[test]
    fn a_user_with_file_capabilities_runs_the_command_as_themselves() {
        let r = run_as(&alice(), &Fake, None, false, vec![]).unwrap();
        assert_eq!(
            (r.uid, r.gid),
            (1000, 1000),
            "SUDO_* of a non-root is ignored"
        );
        // Their own name is fine; another group, even one of theirs, needs
        // CAP_SETGID, which assay does not have then.
        assert!(run_as(&alice(), &Fake, Some(&spec("alice")), false, vec![]).is_ok());
        assert!(run_as(&alice(), &Fake, Some(&spec("alice:alice")), false, vec![]).is_ok());
        let e = run_as(&alice(), &Fake, Some(&spec("alice:sudo")), false, vec![]).unwrap_err();
        assert!(matches!(e, PrivilegeError::NotYours(..)), "{e}");
    }

    #[test]
    fn only_root_may_choose_another_user() {
        for s in ["root", "0", "bob", "alice:bob", "1001"] {
            let e = run_as(&alice(), &Fake, Some(&spec(s)), false, vec![]).unwrap_err();
            assert!(matches!(e, PrivilegeError::NotYours(..)), "{s}: {e}");
        }
        let r = run_as(&root(None), &Fake, Some(&spec("bob")), false, vec![]).unwrap();
        assert_eq!(
            (r.uid, r.gid, r.groups.as_slice()),
            (1001, 1001, &[1001][..])
        );
        let r = run_as(&root(None), &Fake, Some(&spec("alice:sudo")), false, vec![]).unwrap();
        assert_eq!((r.gid, r.groups.as_slice()), (27, &[27, 27][..]));
    }

    #[test]
    fn unknown_users_and_bad_specs_are_named() {
        let e = run_as(&root(None), &Fake, Some(&spec("mallory")), false, vec![]).unwrap_err();
        assert_eq!(e.to_string(), "no user `mallory` on this system");
        let e = run_as(&root(None), &Fake, Some(&spec("alice:nope")), false, vec![]).unwrap_err();
        assert_eq!(e.to_string(), "no group `nope` on this system");
        for bad in ["", ":x", "alice:"] {
            assert!(bad.parse::<UserSpec>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_system_database_knows_root() {
        assert_eq!(System.user("root").map(|u| (u.0, u.1)), Some((0, 0)));
        assert_eq!(System.user("0").map(|u| u.0), Some(0));
        assert_eq!(System.group("0"), Some(0));
        assert!(System.groups_of("root", 0).contains(&0));
    }
}
