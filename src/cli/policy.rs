//! `assay policy`: validate policy files, and check tool calls against one.

use std::io::{self, BufRead};
use std::path::PathBuf;

use anyhow::Context;

use crate::cli::Global;
use crate::exit::{Coded, Outcome, Status};
use crate::output::policy as render;
use crate::output::{self, Format};
use crate::policy::{self, Gate, ToolCall};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Validate policy files; every problem is reported as file:line:column.
    ///
    /// Exit codes: 0 every file is valid, 1 runtime error, 2 any file is
    /// invalid (or the command line is).
    Validate {
        /// Output format: table (a line per file) or json (one document)
        /// [default: table].
        #[arg(long, value_enum, value_name = "FORMAT")]
        format: Option<Format>,
        #[command(flatten)]
        args: ValidateArgs,
    },
    /// Decide tool calls (JSON lines on stdin) against a policy's tools and schemas.
    ///
    /// Each input line is {"tool": "...", "arguments": {...}} (optional "id",
    /// echoed back). One JSON decision per line goes to stdout.
    ///
    /// Exit codes: 0 every call is allowed, 1 runtime error, 2 a malformed
    /// line or an invalid policy, 3 a call was denied.
    Check {
        /// Output format: decisions are JSON lines either way (table or
        /// json) [default: table].
        #[arg(long, value_enum, value_name = "FORMAT")]
        format: Option<Format>,
        #[command(flatten)]
        args: CheckArgs,
    },
}

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Policy files (YAML).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The policy to judge calls against.
    #[arg(long, short, value_name = "FILE")]
    pub policy: PathBuf,
}

pub fn validate(args: ValidateArgs, g: &Global) -> anyhow::Result<Outcome> {
    let results: Vec<render::FileResult> = args
        .files
        .iter()
        .map(|f| render::FileResult::new(f, policy::load(f)))
        .collect();
    // Diagnostics always go to stderr, whatever the stdout format.
    let diagnostics = render::diagnostics_text(&results);
    if !diagnostics.is_empty() {
        eprint!("{diagnostics}");
    }
    output::emit(&render::render_validate(&results, g.format, g.style())?)?;
    Ok(if results.iter().all(|r| r.valid) {
        Outcome::Success
    } else {
        Outcome::ConfigInvalid
    })
}

/// Decisions are JSON lines whatever `--format` says.
pub fn check(args: CheckArgs, _g: &Global) -> anyhow::Result<Outcome> {
    let policy = match policy::load(&args.policy) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return Ok(Outcome::ConfigInvalid);
        }
    };
    let gate = Gate::new(&policy).map_err(|e| Coded::new(Status::ConfigInvalid, e))?;
    let stdin = io::stdin().lock();
    let mut denied = false;
    for (i, line) in stdin.lines().enumerate() {
        let n = i + 1;
        let line = line
            .map_err(|e| Coded::new(Status::ConfigInvalid, e))
            .with_context(|| format!("stdin line {n}: cannot read a line of UTF-8 text"))?;
        if line.trim().is_empty() {
            continue;
        }
        let call = ToolCall::parse_line(&line)
            .map_err(|e| Coded::new(Status::ConfigInvalid, e))
            .with_context(|| format!("stdin line {n}"))?;
        let decision = gate.decide(&call.tool, &call.arguments);
        denied |= !decision.allowed;
        output::emit(&render::decision_line(n, call.id.as_ref(), &decision)?)?;
    }
    Ok(if denied {
        Outcome::CallsDenied
    } else {
        Outcome::Success
    })
}
