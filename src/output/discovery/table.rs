//! `assay discover --format table`: aligned sections for people.

use std::fmt::Write as _;

use crate::discovery::{
    ProcessInfo, Processes, Report, Server, Source, SourceStatus, describe_status,
};
use crate::output::Style;
use crate::severity::Severity;

/// Columns are never narrowed below this to fit a terminal.
const MIN_FIT: usize = 12;

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// Narrow the widest columns until a line (2 indent, 2 between columns)
/// fits `width`, none below [`MIN_FIT`].
fn fit(w: &mut [usize], width: usize) {
    let line = |w: &[usize]| 2 + w.iter().sum::<usize>() + 2 * w.len().saturating_sub(1);
    while line(w) > width {
        let Some((i, &widest)) = w.iter().enumerate().max_by_key(|(i, x)| (**x, *i)) else {
            return;
        };
        if widest <= MIN_FIT {
            return;
        }
        w[i] -= 1;
    }
}

/// Rows of plain cells; `paint` colours a cell after padding so escape
/// codes never disturb alignment. With a `width` (a terminal), cells are
/// cut to fit it; without, nothing is cut.
fn table(
    out: &mut String,
    header: &[&str],
    rows: &[Vec<String>],
    width: Option<usize>,
    paint: &dyn Fn(usize, &str, &str) -> String,
) {
    let n = header.len();
    let mut w: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(n) {
            w[i] = w[i].max(c.chars().count());
        }
    }
    if let Some(width) = width {
        fit(&mut w, width);
    }
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().zip(&w).map(|(c, &max)| truncate(c, max)).collect())
        .collect();
    let line = |cells: Vec<String>| {
        let mut l = String::from("  ");
        for (i, c) in cells.iter().enumerate() {
            l.push_str(c);
            if i + 1 < n {
                l.push_str(&" ".repeat(2));
            }
        }
        l.trim_end().to_string()
    };
    let head: Vec<String> = header
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let padded = format!("{h:<width$}", width = w[i]);
            paint(usize::MAX, h, &padded)
        })
        .collect();
    let _ = writeln!(out, "{}", line(head));
    for r in &rows {
        let cells: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let pad = w[i].saturating_sub(c.chars().count());
                let padded = if i + 1 < n {
                    format!("{c}{}", " ".repeat(pad))
                } else {
                    c.clone()
                };
                paint(i, c, &padded)
            })
            .collect();
        let _ = writeln!(out, "{}", line(cells));
    }
}

fn sev_paint(style: &Style, sev: &str, text: &str) -> String {
    match Severity::parse(sev) {
        Some(Severity::Critical | Severity::High) => style.red(text),
        Some(Severity::Medium) => style.yellow(text),
        _ => style.dim(text),
    }
}

/// One section per part of the report, in this fixed order; each helper
/// appends its own heading and (if non-empty) table to `out`.
pub fn render(r: &Report, style: &Style, show_absent: bool) -> String {
    let mut out = String::new();
    scan_line(&mut out, r, style);
    servers_section(&mut out, r, style);
    findings_section(&mut out, r, style);
    sources_section(&mut out, r, style, show_absent);
    processes_section(&mut out, r, style);
    out
}

/// The dimmed first line: what was scanned, so an empty report is explained.
fn scan_line(out: &mut String, r: &Report, style: &Style) {
    let homes: Vec<String> = r
        .scan
        .homes
        .iter()
        .map(|(p, _)| p.display().to_string())
        .collect();
    let _ = writeln!(
        out,
        "{}",
        style.dim(&format!(
            "scanned {} {} ({} path conventions, {} clients){}",
            if homes.len() == 1 { "home" } else { "homes" },
            homes.join(", "),
            r.scan.os.join("+"),
            crate::discovery::clients::CLIENTS.len(),
            r.scan
                .system_root
                .as_ref()
                .map(|p| format!(", managed files under {}", p.display()))
                .unwrap_or_default()
        ))
    );
}

fn servers_section(out: &mut String, r: &Report, style: &Style) {
    let running = r.servers.iter().filter(|s| !s.pids.is_empty()).count();
    let unmanaged = r
        .servers
        .iter()
        .filter(|s| !s.managed && !s.disabled)
        .count();
    let _ = writeln!(
        out,
        "{} ({} running, {} unmanaged)",
        style.bold(&format!("MCP SERVERS: {}", r.servers.len())),
        running,
        unmanaged
    );
    if r.servers.is_empty() {
        return;
    }
    let rows: Vec<Vec<String>> = r.servers.iter().map(server_row).collect();
    table(
        out,
        &[
            "ID",
            "TRANSPORT",
            "MANAGED",
            "STATE",
            "CLIENTS",
            "COMMAND / URL",
        ],
        &rows,
        style.width,
        &|col, raw, padded| match col {
            usize::MAX => style.dim(padded),
            0 => style.bold(padded),
            2 if raw == "no" => style.yellow(padded),
            2 => style.green(padded),
            3 if raw.starts_with("running") => style.green(padded),
            3 if raw == "disabled" => style.dim(padded),
            _ => padded.to_string(),
        },
    );
}

fn server_row(s: &Server) -> Vec<String> {
    let mut clients: Vec<&str> = s.locations.iter().map(|l| l.client).collect();
    clients.dedup();
    let state = if !s.pids.is_empty() {
        format!(
            "running ({})",
            s.pids
                .iter()
                .map(i32::to_string)
                .collect::<Vec<_>>()
                .join(",")
        )
    } else if s.disabled {
        "disabled".into()
    } else {
        "configured".into()
    };
    vec![
        s.id.clone(),
        s.transport.kind().to_string(),
        if s.managed { "yes".into() } else { "no".into() },
        state,
        if clients.is_empty() {
            "-".into()
        } else {
            clients.join(",")
        },
        s.command_line.clone(),
    ]
}

fn findings_section(out: &mut String, r: &Report, style: &Style) {
    let counts = r.count_by_severity();
    let summary: Vec<String> = counts
        .iter()
        .rev()
        .map(|(s, n)| format!("{n} {s}"))
        .collect();
    let _ = writeln!(
        out,
        "\n{}{}",
        style.bold(&format!("FINDINGS: {}", r.findings.len())),
        if summary.is_empty() {
            String::new()
        } else {
            format!(" ({})", summary.join(", "))
        }
    );
    if r.findings.is_empty() {
        return;
    }
    let rows: Vec<Vec<String>> = r
        .findings
        .iter()
        .map(|f| {
            let mut detail = f.message.clone();
            if let Some(e) = &f.evidence {
                detail.push_str(&format!(" [{e}]"));
            }
            vec![
                f.severity.as_str().to_string(),
                f.rule.id().to_string(),
                f.server_id.clone().unwrap_or_else(|| "-".into()),
                detail,
            ]
        })
        .collect();
    table(
        out,
        &["SEVERITY", "RULE", "SERVER", "DETAIL"],
        &rows,
        style.width,
        &|col, raw, padded| match col {
            usize::MAX => style.dim(padded),
            0 => sev_paint(style, raw, padded),
            _ => padded.to_string(),
        },
    );
}

/// Config sources, then the notes on what the table leaves out (absent
/// files, project roots).
fn sources_section(out: &mut String, r: &Report, style: &Style, show_absent: bool) {
    let mut by_status: std::collections::BTreeMap<&str, usize> = Default::default();
    for s in &r.sources {
        *by_status.entry(s.status.as_str()).or_insert(0) += 1;
    }
    let counts: Vec<String> = by_status.iter().map(|(k, v)| format!("{v} {k}")).collect();
    let _ = writeln!(
        out,
        "\n{} ({})",
        style.bold(&format!("CONFIG SOURCES: {}", r.sources.len())),
        counts.join(", ")
    );
    let shown: Vec<_> = r
        .sources
        .iter()
        .filter(|s| show_absent || s.status != SourceStatus::Absent)
        .collect();
    if !shown.is_empty() {
        let rows: Vec<Vec<String>> = shown.iter().copied().map(source_row).collect();
        table(
            out,
            &["STATUS", "CLIENT", "SCOPE", "PATH", "DETAIL"],
            &rows,
            style.width,
            &|col, raw, padded| match col {
                usize::MAX => style.dim(padded),
                0 if raw == "found" => style.green(padded),
                0 if raw == "absent" => style.dim(padded),
                0 => style.red(padded),
                _ => padded.to_string(),
            },
        );
    }
    if !show_absent && by_status.get("absent").is_some_and(|n| *n > 0) {
        let _ = writeln!(
            out,
            "  {}",
            style.dim("(absent files hidden; -v or --format json lists every path checked)")
        );
    }
    let followed = r.project_roots.iter().filter(|p| p.scanned).count();
    if !r.project_roots.is_empty() {
        let _ = writeln!(
            out,
            "  {}",
            style.dim(&format!(
                "{} project roots ({} read, {} skipped), {} absent project files not listed",
                r.project_roots.len(),
                followed,
                r.project_roots.len() - followed,
                r.absent_project_files
            ))
        );
    }
}

fn source_row(s: &Source) -> Vec<String> {
    let detail = match &s.status {
        SourceStatus::Found => {
            let mut d = format!(
                "{} server{}",
                s.servers,
                if s.servers == 1 { "" } else { "s" }
            );
            if !s.warnings.is_empty() {
                d.push_str(&format!("; skipped: {}", s.warnings.join("; ")));
            }
            d
        }
        SourceStatus::Absent => String::new(),
        other => describe_status(other),
    };
    vec![
        s.status.as_str().to_string(),
        s.client.to_string(),
        s.scope.as_str().to_string(),
        s.path.display().to_string(),
        detail,
    ]
}

fn processes_section(out: &mut String, r: &Report, style: &Style) {
    match &r.processes {
        Processes::Scanned { total, servers } => {
            let _ = writeln!(
                out,
                "\n{} ({} processes examined)",
                style.bold(&format!("MCP SERVER PROCESSES: {}", servers.len())),
                total
            );
            if servers.is_empty() {
                return;
            }
            let rows: Vec<Vec<String>> = servers.iter().map(process_row).collect();
            table(
                out,
                &["PID", "PARENT", "CLIENT", "SERVER", "MANAGED", "COMMAND"],
                &rows,
                style.width,
                &|col, raw, padded| match col {
                    usize::MAX => style.dim(padded),
                    4 if raw == "no" => style.yellow(padded),
                    4 => style.green(padded),
                    _ => padded.to_string(),
                },
            );
        }
        Processes::Unsupported { reason } => {
            let _ = writeln!(
                out,
                "\n{} {}",
                style.bold("MCP SERVER PROCESSES:"),
                style.yellow(&format!("unsupported: {reason}"))
            );
        }
        Processes::NotScanned { reason } => {
            let _ = writeln!(
                out,
                "\n{} {}",
                style.bold("MCP SERVER PROCESSES:"),
                style.dim(&format!("not scanned: {reason}"))
            );
        }
    }
}

fn process_row(p: &ProcessInfo) -> Vec<String> {
    vec![
        p.pid.to_string(),
        p.parent
            .as_ref()
            .map_or_else(|| p.ppid.to_string(), |(pp, n)| format!("{pp} ({n})")),
        p.client.unwrap_or("-").to_string(),
        p.server_id.clone(),
        p.managed_by
            .as_ref()
            .map_or("no", |m| m.as_str())
            .to_string(),
        p.command_line.clone(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(width: Option<usize>) -> String {
        let mut out = String::new();
        let long = format!("npx -y {}", "x".repeat(200));
        let rows = vec![
            vec!["a".to_string(), long],
            vec!["bb".into(), "short".into()],
        ];
        table(&mut out, &["ID", "COMMAND"], &rows, width, &|_, _, p| {
            p.to_string()
        });
        out
    }

    #[test]
    fn tables_fit_a_terminal_and_are_never_cut_otherwise() {
        let piped = render(None);
        assert!(piped.contains(&"x".repeat(200)), "{piped}");
        let fitted = render(Some(60));
        for l in fitted.lines() {
            assert!(l.chars().count() <= 60, "{l}");
        }
        assert!(fitted.contains('…'));
        assert!(fitted.contains("short"));
        // Narrow terminals keep every column readable.
        let mut w = vec![30, 30, 5];
        fit(&mut w, 40);
        assert_eq!(w, [15, 14, 5], "2 + 34 + 2 * 2 = 40");
        let mut w = vec![30, 30, 5];
        fit(&mut w, 20);
        assert_eq!(w, [12, 12, 5], "never below MIN_FIT");
    }
}
