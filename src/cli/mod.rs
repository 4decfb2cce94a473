//! The command line: parsing, dispatch, and the one place errors become exit codes.

use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU8, Ordering};

use clap::builder::{EnumValueParser, TypedValueParser};
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::exit::{self, Coded, Outcome, Status};
use crate::output::{self, ColorChoice, DiscoverFormat, Format, Style};
use crate::policy::Policy;

pub mod discover;
#[cfg(target_os = "linux")]
pub mod doctor;
pub mod kill;
pub mod monitor;
pub mod policy;

#[derive(Debug, Parser)]
#[command(
    name = "assay",
    version,
    long_version = crate::build_info::long_version(),
    about = "Find, stop and confine the MCP tool servers that AI agents run",
    after_help = exit_help(),
    propagate_version = true
)]
pub struct Cli {
    /// Output format, as if given after the command (its --help lists the
    /// formats it has).
    #[arg(long = "format", id = "format_before_command", value_name = "FORMAT")]
    pub format: Option<String>,
    #[command(flatten)]
    pub flags: GlobalFlags,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand accepts, before or after its name.
#[derive(Debug, Clone, clap::Args)]
pub struct GlobalFlags {
    /// When to colour output: auto (on a terminal, unless NO_COLOR is set or
    /// TERM=dumb), always, never.
    #[arg(
        long,
        value_enum,
        value_name = "WHEN",
        default_value = "auto",
        global = true
    )]
    pub color: ColorChoice,
    /// Never colour output (same as --color never).
    #[arg(long, global = true)]
    pub no_color: bool,
    /// More detail on stderr; repeat for more.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

/// The format a command renders: its own `--format` (whose type `F` has
/// only the formats the command has, so clap refuses any other and `--help`
/// offers only these); else one given before the command (`assay --format
/// json discover`), parsed as the command's own so that clap refuses it
/// the same way; else the default. `cmd` is the command as clap built it.
fn resolve_format<F>(
    own: Option<F>,
    before: Option<&str>,
    cmd: &clap::Command,
) -> Result<F, clap::Error>
where
    F: ValueEnum + Clone + Default + Send + Sync + 'static,
{
    let before = match before {
        None => None,
        Some(text) => {
            let arg = cmd.get_arguments().find(|a| a.get_id() == "format");
            Some(EnumValueParser::<F>::new().parse_ref(cmd, arg, OsStr::new(text))?)
        }
    };
    Ok(own.or(before).unwrap_or_default())
}

/// What a command's output needs from the command line: its format, of the
/// command's own format type, colour and verbosity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Global<F = Format> {
    pub format: F,
    pub color: ColorChoice,
    pub no_color: bool,
    pub verbose: u8,
}

impl<F> Global<F> {
    /// Table styles for stdout: tables fit the terminal, and are never cut
    /// when piped or with -v.
    pub fn style(&self) -> Style {
        Style {
            color: output::use_color(self.color, self.no_color),
            width: if self.verbose > 0 {
                None
            } else {
                output::stdout_width()
            },
        }
    }
}

impl GlobalFlags {
    fn with<F>(&self, format: F) -> Global<F> {
        Global {
            format,
            color: self.color,
            no_color: self.no_color,
            verbose: self.verbose,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Find every MCP server configured or running on this machine.
    Discover {
        /// Output format: table (for people), json (stable, versioned), sarif
        /// (findings) [default: table].
        #[arg(long, value_enum, value_name = "FORMAT")]
        format: Option<DiscoverFormat>,
        #[command(flatten)]
        args: discover::Args,
    },
    /// Stop an MCP server and its whole process tree, capturing evidence first.
    Kill {
        /// Output format: table (for people) or json (the incident record)
        /// [default: table].
        #[arg(long, value_enum, value_name = "FORMAT")]
        format: Option<Format>,
        #[command(flatten)]
        args: kill::Args,
    },
    /// Enforce a policy's runtime rules in the kernel (Linux, BPF).
    Monitor {
        /// Format of the exit summary on stderr: table (for people) or json
        /// [default: table].
        #[arg(long, value_enum, value_name = "FORMAT")]
        format: Option<Format>,
        #[command(flatten)]
        args: monitor::Args,
    },
    /// Validate policies and check tool calls against them.
    Policy(policy::Args),
    /// Say what this host can enforce (kernel, BTF, BPF LSM, cgroup v2,
    /// capabilities) and where assay's files are; with --policy, whether
    /// everything that policy needs is available.
    #[cfg(target_os = "linux")]
    Doctor {
        /// Output format: table (for people) or json (`assay.doctor/v1`)
        /// [default: table].
        #[arg(long, value_enum, value_name = "FORMAT")]
        format: Option<Format>,
        #[command(flatten)]
        args: doctor::Args,
    },
    /// Print the shell completion script for bash, zsh, fish, elvish or
    /// powershell.
    ///
    /// bash: `assay completions bash > /etc/bash_completion.d/assay` (the
    /// package installs it); zsh: into a directory of $fpath as `_assay`;
    /// fish: `~/.config/fish/completions/assay.fish`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the man pages (assay.1 and one per subcommand) into DIR (used
    /// by `make install` and the package).
    #[command(hide = true)]
    Manpages {
        #[arg(value_name = "DIR")]
        dir: std::path::PathBuf,
    },
}

/// A command line checked to the end: each command with its arguments and
/// output settings, in a format the command renders.
#[derive(Debug)]
enum Run {
    Discover(discover::Args, Global<DiscoverFormat>),
    Kill(kill::Args, Global),
    Monitor(monitor::Args, Global),
    Validate(policy::ValidateArgs, Global),
    Check(policy::CheckArgs, Global),
    #[cfg(target_os = "linux")]
    Doctor(doctor::Args, Global),
    Completions(clap_complete::Shell),
    Manpages(std::path::PathBuf),
}

impl Run {
    fn verbose(&self) -> u8 {
        match self {
            Run::Discover(_, g) => g.verbose,
            Run::Kill(_, g) | Run::Monitor(_, g) | Run::Validate(_, g) | Run::Check(_, g) => {
                g.verbose
            }
            #[cfg(target_os = "linux")]
            Run::Doctor(_, g) => g.verbose,
            Run::Completions(_) | Run::Manpages(_) => 0,
        }
    }
}

impl Cli {
    /// `cmd` is the command clap ran: the one whose `--format` applies.
    fn into_run(self, cmd: &clap::Command) -> Result<Run, clap::Error> {
        let before = self.format.as_deref();
        let flags = self.flags;
        Ok(match self.command {
            Command::Discover { format, args } => {
                Run::Discover(args, flags.with(resolve_format(format, before, cmd)?))
            }
            Command::Kill { format, args } => {
                Run::Kill(args, flags.with(resolve_format(format, before, cmd)?))
            }
            Command::Monitor { format, args } => {
                Run::Monitor(args, flags.with(resolve_format(format, before, cmd)?))
            }
            Command::Policy(policy::Args { command }) => match command {
                policy::Command::Validate { format, args } => {
                    Run::Validate(args, flags.with(resolve_format(format, before, cmd)?))
                }
                policy::Command::Check { format, args } => {
                    Run::Check(args, flags.with(resolve_format(format, before, cmd)?))
                }
            },
            #[cfg(target_os = "linux")]
            Command::Doctor { format, args } => {
                Run::Doctor(args, flags.with(resolve_format(format, before, cmd)?))
            }
            Command::Completions { shell } => Run::Completions(shell),
            Command::Manpages { dir } => Run::Manpages(dir),
        })
    }
}

/// Parse a command line (program name first) into what to run. Every
/// refusal is clap's, including a `--format` given before a command that
/// does not have it.
fn parse<I, T>(argv: I) -> Result<Run, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let mut root = Cli::command();
    let mut matches = root.try_get_matches_from_mut(argv)?;
    let path = command_path(&matches);
    let cli = Cli::from_arg_matches_mut(&mut matches).map_err(|e| e.format(&mut root))?;
    let leaf = path
        .iter()
        .try_fold(&root, |cmd, name| cmd.find_subcommand(name))
        .unwrap_or(&root);
    cli.into_run(leaf)
}

/// The names of the (sub)commands the matches ran, outermost first.
fn command_path(mut m: &ArgMatches) -> Vec<String> {
    let mut path = Vec::new();
    while let Some((name, sub)) = m.subcommand() {
        path.push(name.to_string());
        m = sub;
    }
    path
}

/// Load a policy for a command. An invalid policy ends the process with
/// exit code 2; its diagnostics are the error's message.
pub fn load_policy(path: &Path) -> anyhow::Result<Policy> {
    crate::policy::load(path).map_err(|e| Coded::new(Status::ConfigInvalid, e).into())
}

fn exit_help() -> String {
    exit::help_table()
}

static VERBOSITY: AtomicU8 = AtomicU8::new(0);

/// How many `-v` were given.
pub fn verbosity() -> u8 {
    VERBOSITY.load(Ordering::Relaxed)
}

/// Print a diagnostic on stderr when at least `level` `-v` were given.
#[macro_export]
macro_rules! debug {
    ($level:expr, $($arg:tt)*) => {
        if $crate::cli::verbosity() >= $level {
            eprintln!("assay: {}", format_args!($($arg)*));
        }
    };
}

pub fn main() -> ExitCode {
    // Before anything reads a path: see `caps::lower_all`.
    #[cfg(target_os = "linux")]
    if let Err(e) = crate::caps::lower_all() {
        eprintln!("assay: error: lowering the effective capabilities: {e}");
        return ExitCode::from(exit::Status::Error.code());
    }
    let run = match parse(std::env::args_os()) {
        Ok(run) => run,
        Err(e) => {
            // --help and --version print to stdout; a closed pipe is not an error.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::Status::ConfigInvalid.code()
            } else {
                exit::Status::Ok.code()
            });
        }
    };
    VERBOSITY.store(run.verbose(), Ordering::Relaxed);
    match execute(run) {
        Ok(outcome) => ExitCode::from(exit::exit_status(&outcome)),
        Err(err) if output::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("assay: error: {}", exit::describe(err.as_ref()));
            ExitCode::from(exit::error_status(&err))
        }
    }
}

fn execute(run: Run) -> anyhow::Result<Outcome> {
    match run {
        Run::Discover(args, g) => discover::run(args, &g),
        Run::Kill(args, g) => kill::run(args, &g),
        Run::Monitor(args, g) => monitor::run(args, &g),
        Run::Validate(args, g) => policy::validate(args, &g),
        Run::Check(args, g) => policy::check(args, &g),
        #[cfg(target_os = "linux")]
        Run::Doctor(args, g) => doctor::run(args, &g),
        Run::Completions(shell) => {
            output::emit(&completions(shell))?;
            Ok(Outcome::Success)
        }
        Run::Manpages(dir) => {
            std::fs::create_dir_all(&dir)?;
            clap_mangen::generate_to(Cli::command(), &dir)
                .map_err(|e| anyhow::anyhow!("writing man pages into {}: {e}", dir.display()))?;
            Ok(Outcome::Success)
        }
    }
}

/// The completion script for `shell`, from the command line's definition.
pub fn completions(shell: clap_complete::Shell) -> String {
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "assay", &mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    fn run(argv: &[&str]) -> Result<Run, clap::Error> {
        parse(std::iter::once("assay").chain(argv.iter().copied()))
    }

    #[test]
    fn format_is_taken_before_or_after_the_command() {
        let Ok(Run::Discover(_, g)) = run(&["--format", "sarif", "discover"]) else {
            panic!()
        };
        assert_eq!(g.format, DiscoverFormat::Sarif);
        let Ok(Run::Discover(_, g)) = run(&["discover", "--format", "json"]) else {
            panic!()
        };
        assert_eq!(g.format, DiscoverFormat::Json);
        let Ok(Run::Discover(_, g)) = run(&["discover"]) else {
            panic!()
        };
        assert_eq!(g.format, DiscoverFormat::Table);
        // After the command wins, as when --format was one global option.
        let Ok(Run::Validate(_, g)) = run(&[
            "--format", "table", "policy", "validate", "--format", "json", "p.yaml",
        ]) else {
            panic!()
        };
        assert_eq!(g.format, Format::Json);
        let Ok(Run::Validate(_, g)) = run(&["--format", "json", "policy", "validate", "p.yaml"])
        else {
            panic!()
        };
        assert_eq!(g.format, Format::Json);
        let Ok(Run::Kill(_, g)) = run(&["-v", "kill", "--pid", "1", "--no-color"]) else {
            panic!()
        };
        assert_eq!((g.format, g.no_color, g.verbose), (Format::Table, true, 1));
        let Ok(Run::Kill(_, g)) = run(&["kill", "--pid", "1", "-vv", "--format", "json"]) else {
            panic!()
        };
        assert_eq!((g.format, g.no_color, g.verbose), (Format::Json, false, 2));
        assert_eq!(g.color, ColorChoice::Auto);
        let Ok(Run::Discover(_, g)) = run(&["--color", "always", "discover"]) else {
            panic!()
        };
        assert_eq!(g.color, ColorChoice::Always);
        let Ok(Run::Discover(_, g)) = run(&["discover", "--color=never"]) else {
            panic!()
        };
        assert_eq!(g.color, ColorChoice::Never);
        assert!(run(&["discover", "--color", "sometimes"]).is_err());
    }

    #[test]
    fn clap_refuses_sarif_where_there_is_none() {
        for argv in [
            &["kill", "--pid", "1", "--format", "sarif"][..],
            &["--format", "sarif", "kill", "--pid", "1"],
            &[
                "monitor", "--format", "sarif", "--policy", "p.yaml", "--", "true",
            ],
            &["--format", "sarif", "policy", "validate", "p.yaml"],
            &["policy", "check", "--format", "sarif", "--policy", "p.yaml"],
            &["--format", "xml", "discover"],
        ] {
            let e = run(argv).expect_err(&argv.join(" "));
            assert_eq!(e.kind(), ErrorKind::InvalidValue, "{argv:?}");
            assert!(e.use_stderr());
            let text = e.render().to_string();
            assert!(text.contains("'--format <FORMAT>'"), "{text}");
        }
        let text = run(&["--format", "sarif", "kill", "--pid", "1"])
            .unwrap_err()
            .render()
            .to_string();
        assert!(text.contains("[possible values: table, json]"), "{text}");
    }

    #[test]
    fn help_offers_only_the_formats_a_command_has() {
        let mut root = Cli::command();
        root.build();
        let help = |path: &[&str]| {
            let mut cmd = path
                .iter()
                .fold(root.clone(), |c, n| c.find_subcommand(n).unwrap().clone());
            cmd.render_long_help().to_string()
        };
        for path in [
            &["kill"][..],
            &["monitor"],
            &["policy", "validate"],
            &["policy", "check"],
        ] {
            let h = help(path);
            assert!(h.contains("--format <FORMAT>"), "{path:?}: {h}");
            assert!(!h.contains("sarif"), "{path:?}: {h}");
        }
        assert!(help(&["discover"]).contains("sarif"));
    }

    #[test]
    fn an_invalid_policy_is_exit_2() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("p.yaml");
        std::fs::write(&p, "version: \"2.0\"\nbogus: 1\n").unwrap();
        let e = load_policy(&p).unwrap_err();
        assert_eq!(exit::error_status(&e), Status::ConfigInvalid.code());
        assert!(e.to_string().contains("unknown key `bogus`"), "{e}");
    }
}
