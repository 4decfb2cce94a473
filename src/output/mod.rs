//! Output at the edge: formats, colour, and the stdout writer.
//!
//! Logic modules return data. Each command's renderer (in this module's
//! children) takes that data and a value of the command's own format type,
//! which has only the formats the command renders, and returns the text;
//! the command line writes it with [`emit`].

use std::io::{self, IsTerminal, Write};

use clap::ValueEnum;

pub mod discovery;
pub mod kill;
#[cfg(all(target_os = "linux", feature = "monitor"))]
pub mod monitor;
pub mod policy;

/// `--format` of the commands that print a table or JSON: `kill`,
/// `monitor`, `policy validate` and `policy check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    #[default]
    Table,
    Json,
}

/// `--format` of `discover`, the one command with findings, which also go
/// to SARIF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum DiscoverFormat {
    #[default]
    Table,
    Json,
    Sarif,
}

/// Colour on a terminal unless `NO_COLOR` is set (https://no-color.org) or
/// `--no-color` was given.
pub fn use_color(no_color_flag: bool) -> bool {
    if no_color_flag {
        return false;
    }
    if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
        return false;
    }
    io::stdout().is_terminal()
}

/// Styles used in tables; empty strings when colour is off.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
}

impl Style {
    pub fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
    pub fn bold(&self, t: &str) -> String {
        self.paint("1", t)
    }
    pub fn red(&self, t: &str) -> String {
        self.paint("31", t)
    }
    pub fn yellow(&self, t: &str) -> String {
        self.paint("33", t)
    }
    pub fn green(&self, t: &str) -> String {
        self.paint("32", t)
    }
    pub fn dim(&self, t: &str) -> String {
        self.paint("2", t)
    }
}

/// Write a whole rendered document to stdout and flush. Broken pipes surface as
/// `io::ErrorKind::BrokenPipe`, which `main` turns into a quiet exit.
pub fn emit(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// Serialize as pretty JSON with a trailing newline.
pub fn to_json_pretty<T: serde::Serialize>(value: &T) -> anyhow::Result<String> {
    let mut s = serde_json::to_string_pretty(value)?;
    s.push('\n');
    Ok(s)
}

/// True when the error is (or wraps) a broken pipe on output.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn style_without_color_is_plain() {
        let s = Style { color: false };
        assert_eq!(s.red("x"), "x");
        let s = Style { color: true };
        assert_eq!(s.red("x"), "\x1b[31mx\x1b[0m");
    }

    #[test]
    fn broken_pipe_is_detected_through_context() {
        let e = anyhow::Error::new(io::Error::from(io::ErrorKind::BrokenPipe)).context("writing");
        assert!(is_broken_pipe(&e));
        assert!(!is_broken_pipe(&anyhow::anyhow!("other")));
    }
}
