//! What the kernel and this process must provide before anything is loaded.
//! Every problem says exactly what is missing and how to fix it.

use std::fs;
use std::path::Path;

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

/// Check the host. `file_rules`: the policy has `file_open` rules, so the BPF
/// LSM must be active (securityfs is mounted if it is not).
pub fn check(file_rules: bool) -> Vec<Missing> {
    let mut out = Vec::new();
    if !Path::new(BTF).exists() {
        out.push(Missing {
            what: format!("kernel BTF ({BTF} does not exist)"),
            fix: "run a kernel built with CONFIG_DEBUG_INFO_BTF=y (every major distribution \
                  kernel since 2021 is)"
                .into(),
            affects: Affects::Everything,
        });
    }
    if super::cgroup::cgroup2_mount().is_err() {
        out.push(Missing {
            what: "a cgroup v2 file system (no cgroup2 entry in /proc/self/mountinfo)".into(),
            fix: "mount it: `mount -t cgroup2 none /sys/fs/cgroup/unified`, or boot with \
                  systemd.unified_cgroup_hierarchy=1"
                .into(),
            affects: Affects::Everything,
        });
    }
    match effective_caps() {
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
        if let Some(m) = bpf_lsm() {
            out.push(m);
        }
    }
    out
}

fn effective_caps() -> Option<u64> {
    let s = fs::read_to_string("/proc/self/status").ok()?;
    let hex = s.lines().find_map(|l| l.strip_prefix("CapEff:"))?.trim();
    u64::from_str_radix(hex, 16).ok()
}

/// Is `bpf` in the active LSM list? Mounts securityfs when it is not mounted.
fn bpf_lsm() -> Option<Missing> {
    if !Path::new(LSM_LIST).exists() {
        mount_securityfs();
    }
    let list = match fs::read_to_string(LSM_LIST) {
        Ok(l) => l,
        Err(e) => {
            return Some(Missing {
                what: format!("the active LSM list ({LSM_LIST}: {e})"),
                fix: format!(
                    "mount securityfs (`mount -t securityfs securityfs {SECURITYFS}`) on a \
                     kernel built with CONFIG_SECURITY=y and CONFIG_BPF_LSM=y"
                ),
                affects: Affects::FileRules,
            });
        }
    };
    lsm_problem(list.trim())
}

/// The problem, if any, with an active LSM list such as `lockdown,capability,bpf`.
pub fn lsm_problem(list: &str) -> Option<Missing> {
    if list.split(',').any(|l| l == "bpf") {
        return None;
    }
    Some(Missing {
        what: format!("the BPF LSM is not active (active LSMs: {list})"),
        fix: format!(
            "add bpf to the kernel command line and reboot: lsm={list},bpf (e.g. in \
             GRUB_CMDLINE_LINUX in /etc/default/grub, then update-grub); the kernel needs \
             CONFIG_BPF_LSM=y"
        ),
        affects: Affects::FileRules,
    })
}

fn mount_securityfs() {
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
