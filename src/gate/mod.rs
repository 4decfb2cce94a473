//! The MCP tool-call gate: a stdio relay between an MCP client and the
//! server it launched, which judges every `tools/call` against the policy's
//! `tools` and `schemas` before the server sees it.
//!
//! - [`judge`]: the decisions, as data (forward, rewrite, refuse; filter a
//!   `tools/list` answer);
//! - [`relay`]: the two directions' I/O, generic over readers and writers;
//! - [`run`]: `assay monitor --gate-only`, the gate without the kernel part
//!   (no privileges, no BPF).
//!
//! Plain Rust: no BPF, builds without the `monitor` feature. With it, the
//! monitor's wrapper mode runs the same relay around its confined command.

pub mod args;
pub mod judge;
pub mod relay;
#[cfg(unix)]
pub mod run;
#[cfg(target_os = "linux")]
pub mod splice;
pub mod strikes;

use std::sync::Arc;

use crate::policy::model::Policy;
use crate::policy::{Gate, GateError};

pub use judge::{CallVerdict, Judge};

/// One decision on a `tools/call`, for the event stream (`tool_call`).
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCallEvent {
    /// Wall-clock time, ns since the Unix epoch.
    pub time_ns: i128,
    pub call: CallVerdict,
}

impl ToolCallEvent {
    pub fn now(call: CallVerdict) -> ToolCallEvent {
        ToolCallEvent {
            time_ns: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as i128),
            call,
        }
    }
}

/// Whether a policy asks for the gate: it has tool rules or schemas.
pub fn wanted(policy: &Policy) -> bool {
    policy.tools.allow.is_some() || !policy.tools.deny.is_empty() || !policy.schemas.is_empty()
}

/// The name the kill trigger goes by where a rule id would be (kill events,
/// incident records).
pub const TRIGGER: &str = "on_tool_denials";

/// Refusals after which the policy has the server killed
/// (`kill_switch.triggers: [{on_tool_denials: N}]`); None: never.
pub fn kill_after(policy: &Policy) -> Option<u32> {
    let ks = policy.kill_switch.as_ref()?;
    if !ks.enabled {
        return None;
    }
    ks.tool_denials.as_ref().map(|t| t.count)
}

/// What the monitor's wrapper mode needs to run the gate.
#[derive(Clone)]
pub struct Setup {
    pub judge: Arc<Judge>,
    pub kill_after: Option<u32>,
}

impl std::fmt::Debug for Setup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Setup")
            .field("kill_after", &self.kill_after)
            .finish_non_exhaustive()
    }
}

/// The judge for a policy; `show_denied`: leave `tools/list` answers whole.
pub fn judge_for(policy: &Policy, show_denied: bool) -> Result<Arc<Judge>, GateError> {
    Ok(Arc::new(Judge::new(Gate::new(policy)?, !show_denied)))
}
