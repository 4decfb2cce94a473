//! `assay doctor`: what this host and this invocation can enforce, and where
//! assay's files are. Changes nothing (it mounts nothing, loads only the
//! probe programs the monitor itself loads, and only where it could load
//! the monitor), needs no root and no policy.
//!
//! The host facts and what they allow come from the monitor's own code
//! (`monitor::preflight`, `monitor::plan_on`, `fileguard::Walk::probe`,
//! `selfguard::lsm_programs_load`, `caps`): doctor says what `assay
//! monitor` would decide, not a second opinion. [`examine`] returns data;
//! `output::doctor` renders it.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::policy::model::Policy;

/// Where the package and `make install` put the configuration.
pub const CONFIG: &str = "/etc/assay/policy.yaml";
/// The service's state directory (`StateDirectory=assay`).
pub const STATE_DIR: &str = "/var/lib/assay";
/// Where the service's kill switch writes incidents (set in [`CONFIG`]).
pub const INCIDENTS: &str = "/var/lib/assay/incidents";
/// Where the service writes events (`LogsDirectory=assay`, `--events`).
pub const EVENTS: &str = "/var/log/assay/events.jsonl";
/// The units assay ships, by name.
pub const UNITS: [&str; 2] = ["assay-monitor.service", "assay-monitor@.service"];
/// Where systemd looks for system units (the first found is reported).
const UNIT_DIRS: [&str; 5] = [
    "/etc/systemd/system",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
    "/run/systemd/system",
];

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema: &'static str,
    pub assay: Build,
    pub kernel: Kernel,
    pub privileges: Privileges,
    /// Each rule kind, action and guard, and whether this invocation could
    /// enforce it here.
    pub can_enforce: Vec<Ability>,
    pub installed: Installed,
    pub paths: Paths,
    /// With `--policy`: what that policy needs, and what is missing.
    pub policy: Option<PolicyCheck>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Build {
    pub version: &'static str,
    pub revision: &'static str,
    pub features: Vec<&'static str>,
    pub libbpf: Option<String>,
    /// This binary (`/proc/self/exe`).
    pub binary: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Kernel {
    /// `uname -r`.
    pub release: String,
    /// `/sys/kernel/btf/vmlinux` exists (None: this build has no monitor
    /// and did not look).
    pub btf: Option<bool>,
    pub bpf_lsm: BpfLsm,
    /// Where cgroup v2 is mounted.
    pub cgroup2: Option<PathBuf>,
    /// How many ancestors a `file_open` glob's walk reaches (None: not
    /// probed, for want of privileges to load a probe program).
    pub file_walk_depth: Option<usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BpfLsm {
    /// `bpf` is in the active LSM list and the kernel accepts BPF LSM
    /// programs. None: the list could not be read, or loading a probe
    /// program needs privileges this process does not have.
    pub active: Option<bool>,
    /// `bpf` is in the active LSM list (None: unreadable).
    pub in_lsm_list: Option<bool>,
    /// The kernel accepted a BPF LSM probe program (None: not probed).
    pub programs_load: Option<bool>,
    /// The active LSM list (`/sys/kernel/security/lsm`).
    pub lsms: Option<String>,
    /// Why the list could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The kernel command line parameter that turns it on (when it is off).
    pub boot_parameter: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Privileges {
    pub euid: u32,
    /// `root`, `file_capabilities` (a user with what `setcap` installs) or
    /// `unprivileged`.
    pub mode: &'static str,
    /// Effective while a monitor session runs (what the checks used).
    pub effective: Vec<String>,
    pub permitted: Vec<String>,
    /// For a user: the capabilities the unprivileged mode needs and this
    /// process is not permitted.
    pub missing: Vec<String>,
}

/// Whether something can be enforced here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ability {
    pub name: &'static str,
    /// `rule` (a rule type), `action`, `guard` (self-protection).
    pub kind: &'static str,
    /// None: could not be told without privileges.
    pub available: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Installed {
    /// The file capabilities of this binary.
    pub file_capabilities: Option<FileCapabilities>,
    /// The assay units systemd would find.
    pub units: Vec<Unit>,
    /// The installed Debian package's version.
    pub package: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileCapabilities {
    pub permitted: Vec<String>,
    pub effective: bool,
    /// What the unprivileged mode needs is there (and effective is off).
    pub complete: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Unit {
    pub name: &'static str,
    pub path: PathBuf,
}

#[derive(Debug, Clone, Serialize)]
pub struct Paths {
    pub config: PathBuf,
    pub config_exists: bool,
    /// Where incidents go: the `kill_switch.output_dir` of `--policy`, else
    /// of the configuration, else the service's default.
    pub incidents: PathBuf,
    /// Where the service writes events.
    pub events: PathBuf,
    /// Installed JSON Schemas and example policies (under the binary's
    /// prefix; None: not there).
    pub schemas: Option<PathBuf>,
    pub examples: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PolicyCheck {
    pub file: PathBuf,
    /// Everything it needs is available: `assay doctor` exits 0.
    pub ready: bool,
    pub rules: usize,
    pub runtime_monitor_enabled: bool,
    /// Rules (or parts) that would not be enforced, with the fix.
    pub unenforceable: Vec<Unenforceable>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unenforceable {
    pub rule_id: String,
    pub reason: String,
    pub fix: String,
}

/// Examine this host and process; with `policy`, judge it (`path` is the
/// file it came from).
pub fn examine(policy: Option<(&Path, &Policy)>) -> Report {
    let exe = std::fs::read_link("/proc/self/exe").ok();
    let host = host::probe();
    let privileges = privileges(host.session_effective());
    let prefix = exe
        .as_deref()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .map(Path::to_path_buf);
    let shared = prefix.as_ref().map(|p| p.join("share/assay"));
    // The policy's output_dir: --policy, else the service's configuration
    // (when it loads), else where the shipped one puts them.
    let config = match policy {
        Some(_) => None,
        None => crate::policy::load(Path::new(CONFIG)).ok(),
    };
    let incidents = policy
        .map(|(_, p)| p)
        .or(config.as_ref())
        .and_then(|p| p.kill_switch.as_ref())
        .map(|k| absolute(&k.output_dir))
        .unwrap_or_else(|| PathBuf::from(INCIDENTS));
    Report {
        schema: "assay.doctor/v1",
        assay: Build {
            version: crate::build_info::VERSION,
            revision: crate::build_info::REVISION,
            features: crate::build_info::features(),
            libbpf: crate::build_info::libbpf(),
            binary: exe.clone(),
        },
        kernel: host.kernel(),
        privileges,
        can_enforce: host.abilities(),
        installed: Installed {
            file_capabilities: exe.as_deref().and_then(file_capabilities),
            units: units(),
            package: package_version(),
        },
        paths: Paths {
            config: PathBuf::from(CONFIG),
            config_exists: Path::new(CONFIG).exists(),
            incidents,
            events: PathBuf::from(EVENTS),
            schemas: shared
                .as_ref()
                .map(|s| s.join("schemas"))
                .filter(|p| p.is_dir()),
            examples: shared
                .as_ref()
                .map(|s| s.join("policies"))
                .filter(|p| p.is_dir()),
        },
        policy: policy.map(|(path, p)| host.judge(path, p)),
    }
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        return p.to_path_buf();
    }
    std::env::current_dir().map_or_else(|_| p.to_path_buf(), |d| d.join(p))
}

/// `session_effective`: the effective set while a monitor session would
/// run (None: now's).
fn privileges(session_effective: Option<u64>) -> Privileges {
    // SAFETY: plain syscall.
    let euid = unsafe { libc::geteuid() };
    let (effective, permitted) = crate::caps::current().unwrap_or((0, 0));
    let effective = session_effective.unwrap_or(effective);
    let (mode, missing) = match crate::caps::authority() {
        crate::caps::Authority::Root => ("root", Vec::new()),
        crate::caps::Authority::Capabilities { .. } => ("file_capabilities", Vec::new()),
        crate::caps::Authority::Missing { missing, .. } => (
            "unprivileged",
            missing.iter().map(|c| c.name().to_string()).collect(),
        ),
    };
    Privileges {
        euid,
        mode,
        effective: crate::caps::names(effective),
        permitted: crate::caps::names(permitted),
        missing,
    }
}

fn file_capabilities(exe: &Path) -> Option<FileCapabilities> {
    let fc = crate::caps::file_caps(exe).ok()??;
    Some(FileCapabilities {
        permitted: crate::caps::names(fc.permitted),
        effective: fc.effective,
        complete: fc.complete(),
    })
}

fn units() -> Vec<Unit> {
    UNITS
        .iter()
        .filter_map(|name| {
            UNIT_DIRS
                .iter()
                .map(|d| Path::new(d).join(name))
                .find(|p| p.exists())
                .map(|path| Unit { name, path })
        })
        .collect()
}

/// The version of the assay package installed, as dpkg says (None: not
/// installed from a package, or no dpkg).
fn package_version() -> Option<String> {
    let out = std::process::Command::new("dpkg-query")
        .args(["-W", "-f", "${Status}\t${Version}", "assay"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    installed_version(&String::from_utf8_lossy(&out.stdout))
}

/// `dpkg-query -W -f '${Status}\t${Version}'`'s answer: the version when
/// the package is installed (not merely configured-files or removed).
fn installed_version(answer: &str) -> Option<String> {
    let (status, version) = answer.trim().split_once('\t')?;
    (status.ends_with(" installed") && !version.is_empty()).then(|| version.to_string())
}

fn uname_release() -> String {
    // SAFETY: utsname is plain data filled by uname.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: a valid out pointer.
    if unsafe { libc::uname(&mut u) } != 0 {
        return "unknown".into();
    }
    // SAFETY: uname NUL-terminates release.
    unsafe { std::ffi::CStr::from_ptr(u.release.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// Abilities from host facts, without the monitor's code: a build without
/// it can enforce nothing in the kernel.
#[cfg(not(all(target_os = "linux", feature = "monitor")))]
mod host {
    use super::*;

    pub struct Probed;

    pub fn probe() -> Probed {
        Probed
    }

    impl Probed {
        pub fn session_effective(&self) -> Option<u64> {
            None
        }
    }

    const WHY: &str = "this build of assay has no runtime monitor (built without the `monitor` \
                       feature)";
    const FIX: &str = "install a build with the monitor (the default features)";

    impl Probed {
        pub fn kernel(&self) -> Kernel {
            Kernel {
                release: uname_release(),
                btf: None,
                bpf_lsm: BpfLsm {
                    active: None,
                    in_lsm_list: None,
                    programs_load: None,
                    lsms: None,
                    error: Some(WHY.into()),
                    boot_parameter: None,
                },
                cgroup2: None,
                file_walk_depth: None,
            }
        }

        pub fn abilities(&self) -> Vec<Ability> {
            super::NAMES
                .iter()
                .map(|(name, kind)| Ability {
                    name,
                    kind,
                    available: Some(false),
                    reason: Some(WHY.into()),
                    fix: Some(FIX.into()),
                })
                .collect()
        }

        pub fn judge(&self, path: &Path, p: &Policy) -> PolicyCheck {
            let (rules, enabled) = rules_of(p);
            let unenforceable: Vec<Unenforceable> = rules
                .iter()
                .map(|r| Unenforceable {
                    rule_id: r.id.clone(),
                    reason: WHY.into(),
                    fix: FIX.into(),
                })
                .collect();
            PolicyCheck {
                file: path.to_path_buf(),
                ready: unenforceable.is_empty(),
                rules: rules.len(),
                runtime_monitor_enabled: enabled,
                unenforceable,
            }
        }
    }
}

/// Every ability doctor reports, in order: (name, kind).
const NAMES: [(&str, &str); 11] = [
    ("net_connect", "rule"),
    ("file_open", "rule"),
    ("trigger_kill", "action"),
    ("kill_other_users", "action"),
    ("bpf", "guard"),
    ("signals", "guard"),
    ("ptrace", "guard"),
    ("cgroup_writes", "guard"),
    ("mounts", "guard"),
    ("raw_sockets", "guard"),
    ("block_devices", "guard"),
];

fn rules_of(p: &Policy) -> (&[crate::policy::model::Rule], bool) {
    p.runtime_monitor
        .as_ref()
        .map_or((&[][..], false), |m| (&m.rules[..], m.enabled))
}

#[cfg(all(target_os = "linux", feature = "monitor"))]
mod host {
    use super::*;
    use crate::monitor::preflight::{self, Host};
    use crate::policy::model::Matcher;

    /// The host as the monitor sees it, and what probing the kernel told.
    pub struct Probed {
        pub host: Host,
        /// None: not probed (no privileges to load a probe program).
        pub lsm_programs_load: Option<bool>,
        pub walk_depth: Option<usize>,
        pub cap_kill: bool,
        pub session_effective: Option<u64>,
    }

    /// Reads the host with the capabilities a monitor session would have
    /// (a user's file capabilities raised as `assay monitor` raises them;
    /// none of them opens a file), probes the kernel where that can work,
    /// and lowers them again.
    pub fn probe() -> Probed {
        let _ = crate::caps::enter_session();
        let host = Host::probe(false);
        let can_load = preflight::missing(&host, false).is_empty();
        let lsm = host.bpf_lsm_active() == Some(true);
        let probed = Probed {
            lsm_programs_load: (can_load && lsm).then(crate::monitor::selfguard::lsm_programs_load),
            walk_depth: can_load.then(|| crate::monitor::fileguard::Walk::probe().depth()),
            cap_kill: crate::caps::current().is_ok_and(|(e, _)| e & crate::caps::CAP_KILL_BIT != 0),
            session_effective: host.effective,
            host,
        };
        let _ = crate::caps::lower_all();
        probed
    }

    impl Probed {
        pub fn session_effective(&self) -> Option<u64> {
            self.session_effective
        }

        pub fn kernel(&self) -> Kernel {
            let (lsms, error) = match &self.host.lsm {
                Ok(l) => (Some(l.clone()), None),
                Err(e) => (None, Some(e.clone())),
            };
            let listed = self.host.bpf_lsm_active();
            let active = match (listed, self.lsm_programs_load) {
                (Some(false), _) | (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            };
            Kernel {
                release: uname_release(),
                btf: Some(self.host.btf),
                bpf_lsm: BpfLsm {
                    active,
                    in_lsm_list: listed,
                    programs_load: self.lsm_programs_load,
                    boot_parameter: match (listed, &lsms) {
                        (Some(false), Some(l)) => Some(preflight::lsm_boot_parameter(l)),
                        (None, _) => Some("lsm=<the current list>,bpf".into()),
                        _ => None,
                    },
                    lsms,
                    error,
                },
                cgroup2: self.host.cgroup2.clone(),
                file_walk_depth: self.walk_depth,
            }
        }

        pub fn abilities(&self) -> Vec<Ability> {
            abilities(
                &self.host,
                self.lsm_programs_load,
                self.cap_kill,
                // SAFETY: plain syscall.
                unsafe { libc::geteuid() } == 0,
            )
        }

        pub fn judge(&self, path: &Path, p: &Policy) -> PolicyCheck {
            let (rules, enabled) = rules_of(p);
            let unenforceable = judge(&self.host, self.lsm_programs_load, p);
            PolicyCheck {
                file: path.to_path_buf(),
                ready: unenforceable.is_empty(),
                rules: rules.len(),
                runtime_monitor_enabled: enabled,
                unenforceable,
            }
        }
    }

    fn ability(name: &'static str, kind: &'static str, missing: &[preflight::Missing]) -> Ability {
        Ability {
            name,
            kind,
            available: Some(missing.is_empty()),
            reason: missing.first().map(|m| format!("missing {}", m.what)),
            fix: missing.first().map(|m| m.fix.clone()),
        }
    }

    /// What `host` allows. `lsm_loads`: the kernel accepted a BPF LSM
    /// program (None: not probed). `cap_kill`, `root`: this process.
    pub fn abilities(
        host: &Host,
        lsm_loads: Option<bool>,
        cap_kill: bool,
        root: bool,
    ) -> Vec<Ability> {
        let base = preflight::missing(host, false);
        let files = preflight::missing(host, true);
        let mut out = vec![
            ability("net_connect", "rule", &base),
            file_ability(&files, lsm_loads),
        ];
        // The kill switch runs in user space once a rule fires.
        let mut kill = ability("trigger_kill", "action", &base);
        kill.reason = kill.reason.map(|r| format!("no rule can fire: {r}"));
        out.push(kill);
        out.push(Ability {
            name: "kill_other_users",
            kind: "action",
            available: Some(cap_kill),
            reason: (!cap_kill).then(|| {
                if root {
                    "CAP_KILL is not in this process's effective set".to_string()
                } else {
                    "a user's monitor signals only that user's processes (its own command)"
                        .to_string()
                }
            }),
            fix: (!cap_kill).then(|| {
                "run as root with CAP_KILL (the assay-monitor unit grants it) to kill servers of \
                 other users"
                    .to_string()
            }),
        });
        // Self-protection: every guard is a BPF LSM program, which needs
        // what file rules need.
        for (name, _) in &NAMES[4..] {
            let mut g = lsm_gated(ability(name, "guard", &files), lsm_loads);
            if g.available == Some(true) && *name == "block_devices" {
                g.reason = Some("with file_open rules".into());
            }
            if g.available == Some(true) && *name == "raw_sockets" {
                g.reason = Some("with net_connect rules".into());
            }
            out.push(g);
        }
        out
    }

    fn file_ability(files: &[preflight::Missing], lsm_loads: Option<bool>) -> Ability {
        lsm_gated(ability("file_open", "rule", files), lsm_loads)
    }

    /// An ability that also needs the kernel to accept BPF LSM programs.
    fn lsm_gated(mut a: Ability, lsm_loads: Option<bool>) -> Ability {
        if a.available == Some(true) {
            match lsm_loads {
                Some(true) => {}
                Some(false) => {
                    a.available = Some(false);
                    a.reason = Some(
                        "the kernel refused a BPF LSM program though bpf is in the LSM list".into(),
                    );
                    a.fix = Some(crate::monitor::LSM_FIX.into());
                }
                None => {
                    a.available = None;
                    a.reason = Some("not probed: loading a probe program needs privileges".into());
                }
            }
        }
        a
    }

    /// What `host` cannot enforce of `p`'s runtime rules, as the monitor
    /// would decide it (its own plan).
    pub fn judge(host: &Host, lsm_loads: Option<bool>, p: &Policy) -> Vec<Unenforceable> {
        let (rules, _) = rules_of(p);
        let kill_unavailable = crate::kill_switch::rule::RuleKills::from_policy(p)
            .err()
            .map(|e| e.to_string());
        let mut out: Vec<Unenforceable> =
            match crate::monitor::plan_on(host, rules, kill_unavailable.as_deref()) {
                Ok(plan) => plan
                    .unenforced
                    .into_iter()
                    .map(|u| Unenforceable {
                        rule_id: u.rule_id,
                        reason: u.reason,
                        fix: u.fix,
                    })
                    .collect(),
                Err(e) => vec![Unenforceable {
                    rule_id: "(policy)".into(),
                    reason: e.to_string(),
                    fix: "fix the policy (assay policy validate)".into(),
                }],
            };
        // The monitor learns this only when it loads (exit 40 then).
        if lsm_loads == Some(false) {
            for r in rules {
                if matches!(r.matcher, Matcher::FileOpen(_))
                    && !out.iter().any(|u| u.rule_id == r.id)
                {
                    out.push(Unenforceable {
                        rule_id: r.id.clone(),
                        reason: "the kernel refuses BPF LSM programs".into(),
                        fix: crate::monitor::LSM_FIX.into(),
                    });
                }
            }
        }
        out
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        const ALL_CAPS: u64 = u64::MAX >> 23;

        fn host(lsm: &str, caps: u64) -> Host {
            Host {
                btf: true,
                cgroup2: Some("/sys/fs/cgroup".into()),
                effective: Some(caps),
                lsm: Ok(lsm.into()),
            }
        }

        fn get<'a>(a: &'a [Ability], name: &str) -> &'a Ability {
            a.iter().find(|x| x.name == name).unwrap()
        }

        #[test]
        fn without_the_bpf_lsm_network_rules_work_and_file_rules_do_not() {
            let a = abilities(
                &host("lockdown,capability,landlock", ALL_CAPS),
                None,
                true,
                true,
            );
            assert_eq!(get(&a, "net_connect").available, Some(true));
            let f = get(&a, "file_open");
            assert_eq!(f.available, Some(false));
            assert!(
                f.fix
                    .as_deref()
                    .unwrap()
                    .contains("lsm=lockdown,capability,landlock,bpf"),
                "{f:?}"
            );
            assert_eq!(get(&a, "signals").available, Some(false));
            assert_eq!(get(&a, "trigger_kill").available, Some(true));
            assert_eq!(get(&a, "kill_other_users").available, Some(true));
            assert_eq!(a.len(), NAMES.len());
        }

        #[test]
        fn with_the_bpf_lsm_everything_is_enforceable_where_lsm_programs_load() {
            let h = host("lockdown,capability,bpf", ALL_CAPS);
            let a = abilities(&h, Some(true), true, true);
            assert!(a.iter().all(|x| x.available == Some(true)), "{a:#?}");
            // A sandbox that refuses LSM programs despite the list.
            let a = abilities(&h, Some(false), true, true);
            assert_eq!(get(&a, "file_open").available, Some(false));
            assert_eq!(get(&a, "ptrace").available, Some(false));
            assert_eq!(get(&a, "net_connect").available, Some(true));
        }

        #[test]
        fn a_user_without_capabilities_can_enforce_nothing() {
            let a = abilities(&host("capability,bpf", 0), None, false, false);
            for x in &a {
                assert_eq!(x.available, Some(false), "{x:?}");
                assert!(x.fix.is_some(), "{x:?}");
            }
            assert!(
                get(&a, "net_connect")
                    .fix
                    .as_deref()
                    .unwrap()
                    .contains("setcap")
            );
        }

        fn policy(yaml: &str) -> Policy {
            crate::policy::load_str(yaml, Path::new("p.yaml")).expect("valid test policy")
        }

        const NET: &str = "version: \"2.0\"\nruntime_monitor:\n  enabled: true\n  rules:\n    - id: no-ssh\n      type: net_connect\n      match: {ports: [22]}\n      severity: high\n      action: deny\n";

        #[test]
        fn a_policy_is_judged_by_the_monitors_own_plan() {
            let net = policy(NET);
            let no_lsm = host("capability,landlock", ALL_CAPS);
            assert!(judge(&no_lsm, None, &net).is_empty());
            let file = policy(&format!(
                "{NET}    - id: no-keys\n      type: file_open\n      match: {{path_globs: [\"/root/.ssh/**\"]}}\n      severity: high\n      action: deny\n"
            ));
            let u = judge(&no_lsm, None, &file);
            assert_eq!(u.len(), 1, "{u:?}");
            assert_eq!(u[0].rule_id, "no-keys");
            assert!(u[0].fix.contains("lsm=capability,landlock,bpf"), "{u:?}");
            let lsm = host("capability,bpf", ALL_CAPS);
            assert!(judge(&lsm, Some(true), &file).is_empty());
            let u = judge(&lsm, Some(false), &file);
            assert_eq!(u.len(), 1, "{u:?}");
            // No privileges: every rule.
            assert_eq!(judge(&host("capability,bpf", 0), None, &file).len(), 2);
            // The gate alone needs nothing from the kernel.
            let gate = policy("version: \"2.0\"\ntools:\n  deny: [exec]\n");
            assert!(judge(&host("", 0), None, &gate).is_empty());
        }

        #[test]
        fn trigger_kill_is_judged_with_the_kill_switch() {
            let p = policy(&format!(
                "{}kill_switch:\n  enabled: true\n",
                NET.replace("action: deny", "action: trigger_kill")
            ));
            assert!(judge(&host("capability", ALL_CAPS), None, &p).is_empty());
            let u = judge(&host("capability", 0), None, &p);
            assert_eq!(u.len(), 1, "{u:?}");
            assert_eq!(u[0].rule_id, "no-ssh");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_installed_package_has_a_version() {
        assert_eq!(
            installed_version("install ok installed\t0.1.0\n").as_deref(),
            Some("0.1.0")
        );
        assert_eq!(installed_version("deinstall ok config-files\t0.1.0"), None);
        assert_eq!(installed_version("unknown ok not-installed\t"), None);
        assert_eq!(installed_version(""), None);
    }

    #[test]
    fn the_service_and_the_default_policy_use_the_paths_doctor_names() {
        let unit = [
            include_str!("../packaging/assay-monitor.service.in"),
            include_str!("../packaging/hardening.conf"),
        ]
        .concat();
        assert!(unit.contains(&format!("--policy {CONFIG}")), "{unit}");
        assert!(unit.contains(&format!("--events {EVENTS}")), "{unit}");
        assert!(unit.contains("StateDirectory=assay"), "{unit}");
        assert!(unit.contains("LogsDirectory=assay"), "{unit}");
        assert!(EVENTS.starts_with("/var/log/assay/"));
        assert!(INCIDENTS.starts_with(STATE_DIR));
        let policy = include_str!("../packaging/policy.yaml");
        assert!(
            policy.contains(&format!("output_dir: {INCIDENTS}")),
            "{policy}"
        );
        let p = crate::policy::load_str(policy, Path::new("policy.yaml")).expect("valid");
        assert_eq!(
            p.kill_switch.as_ref().map(|k| k.output_dir.clone()),
            Some(PathBuf::from(INCIDENTS))
        );
    }
}
