//! Renderers for `assay discover`: one module per format.

pub mod json;
pub mod sarif;
pub mod table;

use crate::discovery::Report;
use crate::output::{Format, Style};

/// Render a report. `show_absent` lists absent files in the table too.
pub fn render(
    report: &Report,
    format: Format,
    style: &Style,
    show_absent: bool,
) -> anyhow::Result<String> {
    match format {
        Format::Table => Ok(table::render(report, style, show_absent)),
        Format::Json => json::render(report),
        Format::Sarif => sarif::render(report),
    }
}
