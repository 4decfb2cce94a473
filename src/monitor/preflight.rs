//! What the kernel and this process must provide before anything is loaded.
//! Every problem says exactly what is missing and how to fix it.

use std::fs;
use std::path::{Path, PathBuf};

const BTF: &str = "/sys/kernel/btf/vmlinux";
const SECURITYFS: &str = "/sys/kernel/security";
const LSM_LIST: &str = "/sys/kernel/security/lsm";

const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Which rules a missing piece makes unenforceable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Affects {
    /// Nothing can be enforced.
    Everything,
    /// Only `file_open` rules (the BPF LSM).
    FileRules,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    pub what: String,
    pub fix: String,
    pub affects: Affects,
}

/// What the host provides, read once: the facts [`missing`] judges (and
/// `assay doctor` reports). Plain data, so tests can describe any host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// `/sys/kernel/btf/vmlinux` exists.
    pub btf: bool,
    /// Where cgroup v2 is mounted.
    pub cgroup2: Option<PathBuf>,
    /// This process's effective capabilities (None: unreadable).
    pub effective: Option<u64>,
    /// The active LSM list, or why it could not be read.
    pub lsm: Result<String, String>,
}

impl Host {
    /// Reads the facts. `mount_securityfs`: mount securityfs first when the
    /// LSM list is not there (the monitor does; `assay doctor`, which
    /// changes nothing, does not).
    pub fn probe(mount_securityfs: bool) -> Host {
        if mount_securityfs && !Path::new(LSM_LIST).exists() {
            mount_securityfs_now();
        }
        Host {
            btf: Path::new(BTF).exists(),
            cgroup2: super::cgroup::cgroup2_mount().ok(),
            effective: effective_caps(),
            lsm: fs::read_to_string(LSM_LIST)
                .map(|l| l.trim().to_string())
                .map_err(|e| format!("{LSM_LIST}: {e}")),
        }
    }

    /// Whether `bpf` is in the active LSM list (None: the list is unreadable).
    pub fn bpf_lsm_active(&self) -> Option<bool> {
        self.lsm
            .as_ref()
            .ok()
            .map(|l| l.split(',').any(|x| x == "bpf"))
    }
}

/// Check the host. `file_rules`: the policy has `file_open` rules, so the BPF
/// LSM must be active (securityfs is mounted if it is not).
pub fn check(file_rules: bool) -> Vec<Missing> {
    missing(&Host::probe(file_rules), file_rules)
}

/// What `host` lacks for a policy (with `file_rules` or not), each with its fix.
pub fn missing(host: &Host, file_rules: bool) -> Vec<Missing> {
    let mut out = Vec::new();
    if !host.btf {
        out.push(Missing {
            what: format!("kernel BTF ({BTF} does not exist)"),
            fix: "run a kernel built with CONFIG_DEBUG_INFO_BTF=y (every major distribution \
                  kernel since 2021 is)"
                .into(),
            affects: Affects::Everything,
        });
    }
    if host.cgroup2.is_none() {
        out.push(Missing {
            what: "a cgroup v2 file system (no cgroup2 entry in /proc/self/mountinfo)".into(),
            fix: "mount it: `mount -t cgroup2 none /sys/fs/cgroup/unified`, or boot with \
                  systemd.unified_cgroup_hierarchy=1"
                .into(),
            affects: Affects::Everything,
        });
    }
    match host.effective {
        Some(caps) => {
            let has = |c: u32| caps & (1u64 << c) != 0;
            let net_ok = has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_NET_ADMIN));
            if !net_ok {
                out.push(Missing {
                    what: "privileges to load and attach BPF programs (CAP_BPF and \
                           CAP_NET_ADMIN, or CAP_SYS_ADMIN)"
                        .into(),
                    fix: format!(
                        "run as root with them (a container: --cap-add BPF,PERFMON,NET_ADMIN), \
                         or install assay for ordinary users: `setcap {} assay` (as root)",
                        crate::caps::setcap_spec()
                    ),
                    affects: Affects::Everything,
                });
            } else if file_rules && !(has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON))) {
                out.push(Missing {
                    what: "CAP_PERFMON (or CAP_SYS_ADMIN) for the LSM program".into(),
                    fix: "run as root, or add cap_perfmon".into(),
                    affects: Affects::FileRules,
                });
            }
        }
        None => out.push(Missing {
            what: "the process's capabilities (CapEff unreadable in /proc/self/status)".into(),
            fix: "mount /proc".into(),
            affects: Affects::Everything,
        }),
    }
    if file_rules {
        let problem = match &host.lsm {
            Ok(list) => lsm_problem(list),
            Err(e) => Some(Missing {
                what: format!("the active LSM list ({e})"),
                fix: format!(
                    "mount securityfs (`mount -t securityfs securityfs {SECURITYFS}`) on a \
                     kernel built with CONFIG_SECURITY=y and CONFIG_BPF_LSM=y"
                ),
                affects: Affects::FileRules,
            }),
        };
        out.extend(problem);
    }
    out
}

fn effective_caps() -> Option<u64> {
    let s = fs::read_to_string("/proc/self/status").ok()?;
    let hex = s.lines().find_map(|l| l.strip_prefix("CapEff:"))?.trim();
    u64::from_str_radix(hex, 16).ok()
}

/// The kernel command line parameter that adds `bpf` to the active LSM
/// list `list` (the order is kept: `bpf` goes last).
pub fn lsm_boot_parameter(list: &str) -> String {
    if list.is_empty() {
        "lsm=bpf".to_string()
    } else {
        format!("lsm={list},bpf")
    }
}

/// The problem, if any, with an active LSM list such as `lockdown,capability,bpf`.
pub fn lsm_problem(list: &str) -> Option<Missing> {
    if list.split(',').any(|l| l == "bpf") {
        return None;
    }
    Some(Missing {
        what: format!("the BPF LSM is not active (active LSMs: {list})"),
        fix: format!(
            "add bpf to the kernel command line and reboot: {} (e.g. in \
             GRUB_CMDLINE_LINUX in /etc/default/grub, then update-grub); the kernel needs \
             CONFIG_BPF_LSM=y",
            lsm_boot_parameter(list)
        ),
        affects: Affects::FileRules,
    })
}

fn mount_securityfs_now() {
    let src = c"securityfs";
    let target = c"/sys/kernel/security";
    // SAFETY: valid NUL-terminated strings; a failure only leaves the list
    // unreadable, which the caller reports.
    unsafe {
        libc::mount(
            src.as_ptr(),
            target.as_ptr(),
            src.as_ptr(),
            0,
            std::ptr::null(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsm_list_without_bpf_names_the_boot_parameter() {
        let m = lsm_problem("lockdown,capability,landlock").unwrap();
        assert!(
            m.fix.contains("lsm=lockdown,capability,landlock,bpf"),
            "{}",
            m.fix
        );
        assert_eq!(m.affects, Affects::FileRules);
        assert!(lsm_problem("lockdown,capability,bpf").is_none());
        assert!(lsm_problem("bpfx").is_some());
    }
}
