//! The command line: parsing, dispatch, and the one place errors become exit codes.

use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU8, Ordering};

use clap::{Parser, Subcommand};

use crate::exit::{self, Coded, Outcome, Status};
use crate::output::{self, Format};
use crate::policy::Policy;

pub mod discover;
pub mod kill;
pub mod monitor;
pub mod policy;

#[derive(Debug, Parser)]
#[command(
    name = "assay",
    version,
    about = "Find, stop and confine the MCP tool servers that AI agents run",
    after_help = exit_help(),
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand accepts.
#[derive(Debug, Clone, clap::Args)]
pub struct Global {
    /// Output format: table (for people), json (stable, versioned), sarif (findings).
    #[arg(long, value_enum, global = true, default_value_t = Format::Table)]
    pub format: Format,
    /// Never colour output (also: the NO_COLOR environment variable).
    #[arg(long, global = true)]
    pub no_color: bool,
    /// More detail on stderr; repeat for more.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Find every MCP server configured or running on this machine.
    Discover(discover::Args),
    /// Stop an MCP server and its whole process tree, capturing evidence first.
    Kill(kill::Args),
    /// Enforce a policy's runtime rules in the kernel (Linux, BPF).
    Monitor(monitor::Args),
    /// Validate policies and check tool calls against them.
    Policy(policy::Args),
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
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
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
    VERBOSITY.store(cli.global.verbose, Ordering::Relaxed);
    match run(cli) {
        Ok(outcome) => ExitCode::from(exit::exit_status(&outcome)),
        Err(err) if output::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("assay: error: {}", exit::describe(err.as_ref()));
            ExitCode::from(exit::error_status(&err))
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<Outcome> {
    let g = cli.global;
    match cli.command {
        Command::Discover(args) => discover::run(args, &g),
        Command::Kill(args) => kill::run(args, &g),
        Command::Monitor(args) => monitor::run(args, &g),
        Command::Policy(args) => policy::run(args, &g),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
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
