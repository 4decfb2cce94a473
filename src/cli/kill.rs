//! `assay kill`.

use crate::cli::Global;
use crate::exit::Outcome;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args, _g: &Global) -> anyhow::Result<Outcome> {
    anyhow::bail!("`assay kill` is not built yet")
}
