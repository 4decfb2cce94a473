//! `assay doctor`: what this host can enforce, and where assay's files are.

use std::path::PathBuf;

use crate::cli::Global;
use crate::exit::Outcome;
use crate::output::{self, Format};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit codes: 0 the report was made and, with --policy, everything the \
policy's runtime rules need is available here; 2 the policy is invalid; 40 with --policy, \
something it needs is missing (each rule is named with the fix)."
)]
pub struct Args {
    /// Also judge this policy: exit 40 unless this host (and this user)
    /// can enforce every one of its runtime rules.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
}

pub fn run(args: Args, g: &Global) -> anyhow::Result<Outcome> {
    let policy = match &args.policy {
        Some(p) => Some((p.as_path(), crate::cli::load_policy(p)?)),
        None => None,
    };
    let report = crate::doctor::examine(policy.as_ref().map(|(p, pol)| (*p, pol)));
    let text = match g.format {
        Format::Json => output::to_json_pretty(&report)?,
        Format::Table => output::doctor::table(&report, &g.style()),
    };
    output::emit(&text)?;
    Ok(Outcome::Doctor {
        ready: report.policy.as_ref().is_none_or(|p| p.ready),
    })
}
