//! Output at the edge: formats, colour, and the stdout writer.
//!
//! Logic modules return data. Each command's renderer (in this module's
//! children) takes that data and a value of the command's own format type,
//! which has only the formats the command renders, and returns the text;
//! the command line writes it with [`emit`] (or, for a document too large
//! to hold at once, has it written straight to stdout with [`emit_streamed`]).

use std::io::{self, IsTerminal, Write};

use clap::ValueEnum;

pub mod discovery;
#[cfg(target_os = "linux")]
pub mod doctor;
#[cfg(all(target_os = "linux", feature = "monitor"))]
pub mod event_sinks;
pub mod events_file;
pub mod gate;
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

/// `--color`: when to colour output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ColorChoice {
    /// On a terminal, unless `NO_COLOR` is set or `TERM` is `dumb`.
    #[default]
    Auto,
    Always,
    Never,
}

/// Whether to colour a stream that is (or is not) a terminal. `--no-color`
/// is `--color never`; with `auto`, `NO_COLOR` (https://no-color.org) and
/// `TERM=dumb` turn colour off.
pub fn color_for(choice: ColorChoice, no_color_flag: bool, is_terminal: bool) -> bool {
    let no_color = std::env::var_os("NO_COLOR");
    let term = std::env::var_os("TERM");
    decide_color(
        choice,
        no_color_flag,
        is_terminal,
        no_color.as_deref(),
        term.as_deref(),
    )
}

/// [`color_for`] with the environment passed in.
fn decide_color(
    choice: ColorChoice,
    no_color_flag: bool,
    is_terminal: bool,
    no_color_env: Option<&std::ffi::OsStr>,
    term: Option<&std::ffi::OsStr>,
) -> bool {
    match choice {
        _ if no_color_flag => false,
        ColorChoice::Never => false,
        ColorChoice::Always => true,
        ColorChoice::Auto => {
            is_terminal
                && no_color_env.is_none_or(|v| v.is_empty())
                && term != Some("dumb".as_ref())
        }
    }
}

/// Colour for stdout.
pub fn use_color(choice: ColorChoice, no_color_flag: bool) -> bool {
    color_for(choice, no_color_flag, io::stdout().is_terminal())
}

/// The width tables must fit: the terminal's, when stdout is one; `None`
/// (never cut) when it is not, so pipes and files get every character.
pub fn stdout_width() -> Option<usize> {
    if !io::stdout().is_terminal() {
        return None;
    }
    let from_env = std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok());
    #[cfg(unix)]
    {
        // SAFETY: TIOCGWINSZ fills a winsize we own.
        let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
        if unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0
            && ws.ws_col > 0
        {
            return Some(usize::from(ws.ws_col));
        }
    }
    from_env.or(Some(80))
}

/// Styles used in tables; empty strings when colour is off. `width`: the
/// columns a table must fit (`None`: never cut a cell).
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
    pub width: Option<usize>,
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

/// Stream a document to stdout through a buffer, then flush: for documents
/// too large to build in memory first (`discover --format json` on a
/// thousand homes). Broken pipes surface as in [`emit`].
pub fn emit_streamed<F>(write: F) -> io::Result<()>
where
    F: FnOnce(&mut io::BufWriter<io::StdoutLock<'static>>) -> io::Result<()>,
{
    let mut out = io::BufWriter::with_capacity(64 * 1024, io::stdout().lock());
    write(&mut out)?;
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
    fn color_choices() {
        use ColorChoice::*;
        let d = |c, flag, tty, nc: Option<&str>, term: Option<&str>| {
            decide_color(c, flag, tty, nc.map(AsRef::as_ref), term.map(AsRef::as_ref))
        };
        assert!(d(Auto, false, true, None, Some("xterm")));
        assert!(!d(Auto, false, false, None, Some("xterm")), "piped");
        assert!(!d(Auto, false, true, None, Some("dumb")), "TERM=dumb");
        assert!(!d(Auto, false, true, Some("1"), None), "NO_COLOR");
        assert!(d(Auto, false, true, Some(""), None), "empty NO_COLOR");
        assert!(d(Always, false, false, Some("1"), Some("dumb")));
        assert!(!d(Never, false, true, None, None));
        assert!(!d(Always, true, true, None, None), "--no-color wins");
    }

    #[test]
    fn style_without_color_is_plain() {
        let s = Style {
            color: false,
            width: None,
        };
        assert_eq!(s.red("x"), "x");
        let s = Style {
            color: true,
            width: None,
        };
        assert_eq!(s.red("x"), "\x1b[31mx\x1b[0m");
    }

    #[test]
    fn broken_pipe_is_detected_through_context() {
        let e = anyhow::Error::new(io::Error::from(io::ErrorKind::BrokenPipe)).context("writing");
        assert!(is_broken_pipe(&e));
        assert!(!is_broken_pipe(&anyhow::anyhow!("other")));
    }
}
