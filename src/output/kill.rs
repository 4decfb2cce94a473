//! Renderers for `assay kill`: a table for people, the incident record as
//! JSON for pipelines.

use crate::kill_switch::report::{Fate, KillReport, Via};
use crate::output::{self, Format, Style};

/// The report as a table, or as the incident record (JSON).
pub fn render(r: &KillReport, format: Format, style: Style) -> anyhow::Result<String> {
    match format {
        Format::Json => output::to_json_pretty(r),
        Format::Table => Ok(table(r, style)),
    }
}

/// The report's errors, one line each, for stderr (`errors` and
/// `warnings` are printed there by the command line, in every format).
pub fn errors(r: &KillReport) -> Vec<String> {
    let mut out: Vec<String> = r
        .processes
        .iter()
        .filter(|p| p.fate != Fate::Gone)
        .filter_map(|p| p.message.clone())
        .collect();
    out.extend(r.errors.iter().cloned());
    if let Some(e) = &r.incident_error {
        out.push(format!("incident not written: {e}"));
    }
    out
}

/// Things worth knowing that did not make the kill fail.
pub fn warnings(r: &KillReport) -> Vec<String> {
    r.notes.clone()
}

fn via(v: Via) -> &'static str {
    match v {
        Via::Target => "target",
        Via::Child => "child",
        Via::Session => "session",
        Via::ProcessGroup => "process group",
        Via::Cgroup => "cgroup",
    }
}

pub fn table(r: &KillReport, s: Style) -> String {
    let mut out = String::new();
    if !r.processes.is_empty() {
        let w_comm = r
            .processes
            .iter()
            .map(|p| p.comm.len())
            .max()
            .unwrap_or(4)
            .clamp(7, 24);
        out.push_str(&s.bold(&format!(
            "{:>8}  {:>8}  {:<w_comm$}  {:<13}  {:<13}  {}",
            "PID", "PPID", "COMMAND", "FOUND VIA", "OUTCOME", "SIGNALS"
        )));
        out.push('\n');
        for p in &r.processes {
            let fate = match p.fate {
                Fate::Gone => s.green(&format!("{:<13}", "gone")),
                Fate::Survived => s.red(&format!("{:<13}", "SURVIVED")),
                Fate::NotPermitted => s.red(&format!("{:<13}", "NOT PERMITTED")),
            };
            let sigs: Vec<String> = p
                .signals
                .iter()
                .filter(|x| x.signal != "SIGCONT")
                .map(|x| {
                    if x.result == "delivered" {
                        x.signal.clone()
                    } else {
                        format!("{}({})", x.signal, x.result)
                    }
                })
                .collect();
            let comm: String = p.comm.chars().take(w_comm).collect();
            out.push_str(&format!(
                "{:>8}  {:>8}  {:<w_comm$}  {:<13}  {}  {}\n",
                p.pid,
                p.ppid,
                comm,
                via(p.via),
                fate,
                sigs.join(" ")
            ));
        }
    }
    if let (Some(d), None) = (&r.incident_dir, &r.incident_error) {
        out.push_str(&format!("incident: {}\n", d.display()));
    }
    let gone = r.processes.iter().filter(|p| p.fate == Fate::Gone).count();
    let summary = format!(
        "{gone}/{} processes gone in {:.1} ms",
        r.processes.len(),
        r.timings.total_ms
    );
    if r.all_gone {
        out.push_str(&s.green(&summary));
    } else {
        out.push_str(&s.red(&format!("{summary}; kill incomplete")));
    }
    out.push('\n');
    out
}
