//! `assay doctor` for people.

use std::fmt::Write;
use std::path::Path;

use super::Style;
use crate::doctor::{Ability, Report};

fn yes_no(s: &Style, v: Option<bool>, yes: &str, no: &str) -> String {
    match v {
        Some(true) => s.green(yes),
        Some(false) => s.red(no),
        None => s.yellow("unknown"),
    }
}

fn path_or(p: Option<&Path>, none: &str) -> String {
    p.map_or_else(|| none.to_string(), |p| p.display().to_string())
}

fn list(v: &[String]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.join(",")
    }
}

fn ability_line(out: &mut String, s: &Style, a: &Ability) {
    let _ = writeln!(
        out,
        "  {:<17} {:<6} {}{}",
        a.name,
        a.kind,
        yes_no(s, a.available, "yes", "no"),
        a.reason
            .as_deref()
            .map_or_else(String::new, |r| format!(" ({r})"))
    );
    if a.available != Some(true) {
        if let Some(f) = &a.fix {
            let _ = writeln!(out, "  {:<24} fix: {f}", "");
        }
    }
}

/// The report as sections of `key: value` lines.
pub fn table(r: &Report, s: &Style) -> String {
    let mut o = String::new();
    let b = &r.assay;
    let _ = writeln!(o, "{}", s.bold("assay"));
    let _ = writeln!(
        o,
        "  version: {} (revision {}, features {}, libbpf {})",
        b.version,
        b.revision,
        if b.features.is_empty() {
            "none".to_string()
        } else {
            b.features.join(",")
        },
        b.libbpf.as_deref().unwrap_or("none")
    );
    let _ = writeln!(o, "  binary: {}", path_or(b.binary.as_deref(), "unknown"));

    let k = &r.kernel;
    let _ = writeln!(o, "{}", s.bold("kernel"));
    let _ = writeln!(o, "  release: {}", k.release);
    let _ = writeln!(o, "  BTF: {}", yes_no(s, k.btf, "yes", "no"));
    let l = &k.bpf_lsm;
    let _ = writeln!(
        o,
        "  BPF LSM: {}{}{}",
        yes_no(s, l.active, "active", "not active"),
        match (&l.lsms, &l.error) {
            (Some(list), _) => format!(" (active LSMs: {list})"),
            (None, Some(e)) => format!(" ({e})"),
            _ => String::new(),
        },
        match (l.in_lsm_list, l.programs_load) {
            (Some(true), Some(false)) => {
                ", but the kernel refuses BPF LSM programs (no CONFIG_BPF_LSM, or a sandbox)"
            }
            (Some(true), None) => ", not probed: loading a probe program needs privileges",
            _ => "",
        }
    );
    if let Some(p) = &l.boot_parameter {
        let _ = writeln!(
            o,
            "    to enable: boot with {p} (a kernel built with CONFIG_BPF_LSM=y)"
        );
    }
    let _ = writeln!(
        o,
        "  cgroup v2: {}",
        path_or(k.cgroup2.as_deref(), &s.red("not mounted"))
    );
    let _ = writeln!(
        o,
        "  file_open walk depth: {}",
        k.file_walk_depth
            .map_or_else(|| "not probed".to_string(), |d| d.to_string())
    );

    let p = &r.privileges;
    let _ = writeln!(o, "{}", s.bold("privileges"));
    let _ = writeln!(o, "  euid {}, mode {}", p.euid, p.mode);
    if p.effective == p.permitted {
        let _ = writeln!(o, "  effective and permitted: {}", list(&p.effective));
    } else {
        let _ = writeln!(o, "  effective (monitor session): {}", list(&p.effective));
        let _ = writeln!(o, "  permitted: {}", list(&p.permitted));
    }
    if !p.missing.is_empty() {
        let _ = writeln!(
            o,
            "  missing for the unprivileged mode: {}",
            p.missing.join(",")
        );
    }

    let _ = writeln!(o, "{}", s.bold("can enforce"));
    for a in &r.can_enforce {
        ability_line(&mut o, s, a);
    }

    let i = &r.installed;
    let _ = writeln!(o, "{}", s.bold("installed"));
    let _ = writeln!(
        o,
        "  package: {}",
        i.package
            .as_deref()
            .unwrap_or("not installed from a package")
    );
    match &i.file_capabilities {
        Some(fc) => {
            let _ = writeln!(
                o,
                "  file capabilities: {}{} ({})",
                fc.permitted.join(","),
                if fc.effective { "=ep" } else { "=p" },
                if fc.complete {
                    s.green("users can run assay monitor")
                } else {
                    s.red("not what the unprivileged mode needs")
                }
            );
        }
        None => {
            let _ = writeln!(
                o,
                "  file capabilities: none (users cannot run assay monitor; as root: setcap {} {})",
                crate::caps::setcap_spec(),
                path_or(b.binary.as_deref(), "assay")
            );
        }
    }
    if i.units.is_empty() {
        let _ = writeln!(o, "  units: none installed");
    }
    for u in &i.units {
        let _ = writeln!(o, "  unit: {} ({})", u.name, u.path.display());
    }

    let pa = &r.paths;
    let _ = writeln!(o, "{}", s.bold("paths"));
    let _ = writeln!(
        o,
        "  configuration: {}{}",
        pa.config.display(),
        if pa.config_exists { "" } else { " (absent)" }
    );
    let _ = writeln!(o, "  incidents: {}", pa.incidents.display());
    let _ = writeln!(o, "  events (service): {}", pa.events.display());
    let _ = writeln!(
        o,
        "  schemas: {}",
        path_or(pa.schemas.as_deref(), "unknown")
    );
    let _ = writeln!(
        o,
        "  example policies: {}",
        path_or(pa.examples.as_deref(), "unknown")
    );

    if let Some(pc) = &r.policy {
        let _ = writeln!(o, "{}", s.bold("policy"));
        let _ = writeln!(
            o,
            "  {}: {} runtime rule(s){}: {}",
            pc.file.display(),
            pc.rules,
            if pc.runtime_monitor_enabled {
                ""
            } else {
                " (runtime_monitor disabled)"
            },
            if pc.ready {
                s.green("everything it needs is available")
            } else {
                s.red("cannot be enforced here")
            }
        );
        for u in &pc.unenforceable {
            let _ = writeln!(o, "  rule {}: {}", u.rule_id, u.reason);
            let _ = writeln!(o, "    fix: {}", u.fix);
        }
    }
    o
}
