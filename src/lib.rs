//! assay: find, stop and confine MCP tool servers.
//!
//! `policy`, `discovery` and `kill_switch` are plain Rust and never depend on
//! `monitor`, which is Linux-only and needs the BPF skeletons.

pub mod build_info;
#[cfg(target_os = "linux")]
pub mod caps;
pub mod child;
pub mod cli;
pub mod discovery;
#[cfg(target_os = "linux")]
pub mod doctor;
pub mod exit;
pub mod gate;
pub mod kill_switch;
pub mod output;
pub mod policy;
pub mod severity;
pub mod sha256;
pub mod time;

#[cfg(all(target_os = "linux", feature = "monitor"))]
pub mod monitor;
