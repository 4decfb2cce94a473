//! Renderers for `assay discover`: one module per format.

pub mod json;
pub mod position;
pub mod sarif;
pub mod table;

use crate::discovery::Report;
use crate::output::{DiscoverFormat, Style};

/// Render a report. `show_absent` lists absent files in the table too.
pub fn render(
    report: &Report,
    format: DiscoverFormat,
    style: Style,
    show_absent: bool,
) -> anyhow::Result<String> {
    match format {
        DiscoverFormat::Table => Ok(table::render(report, &style, show_absent)),
        DiscoverFormat::Json => json::render(report),
        DiscoverFormat::Sarif => sarif::render(report),
    }
}
