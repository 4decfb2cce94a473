//! Kills a policy rule asks for (`action: trigger_kill`): the mode of the
//! rule's `kill_switch.triggers` entry (immediate when it has none), the
//! policy's defaults otherwise, and always a capture first: a kill the
//! monitor decided on leaves evidence.

use std::path::PathBuf;

use super::{CaptureOptions, DEFAULT_CAPTURE_BUDGET, Defaults, KillReport, Reason, Target};
use crate::policy::model::{KillMode, Policy};

/// The policy turns the kill switch off.
#[derive(Debug, thiserror::Error)]
#[error("kill_switch.enabled is false in {}", source_file.display())]
pub struct Disabled {
    pub source_file: PathBuf,
}

/// The kill switch as a policy configures it for its rules.
#[derive(Debug, Clone)]
pub struct RuleKills {
    defaults: Defaults,
    /// (rule id, mode) of each trigger.
    triggers: Vec<(String, KillMode)>,
}

impl RuleKills {
    pub fn from_policy(policy: &Policy) -> Result<RuleKills, Disabled> {
        let cfg = policy.kill_switch.as_ref();
        if cfg.is_some_and(|c| !c.enabled) {
            return Err(Disabled {
                source_file: policy.source.clone(),
            });
        }
        let triggers = cfg
            .map(|c| {
                c.triggers
                    .iter()
                    .map(|t| (t.on_rule.clone(), t.mode))
                    .collect()
            })
            .unwrap_or_default();
        Ok(RuleKills {
            defaults: Defaults::from_config(cfg),
            triggers,
        })
    }

    /// The mode a kill for `rule` runs in.
    pub fn mode_for(&self, rule: &str) -> KillMode {
        self.triggers
            .iter()
            .find(|(r, _)| r == rule)
            .map_or(KillMode::Immediate, |(_, m)| *m)
    }

    /// Stops `target` because `rule` matched what it did (`detail`).
    pub fn kill(&self, rule: &str, target: Target, detail: &str) -> KillReport {
        self.kill_in(rule, self.mode_for(rule), target, detail)
    }

    /// As [`RuleKills::kill`], in `mode`: for a trigger that names no rule
    /// (the tool-call gate's `on_tool_denials`).
    pub fn kill_in(&self, rule: &str, mode: KillMode, target: Target, detail: &str) -> KillReport {
        let mut req = self.defaults.request(
            vec![target],
            mode,
            Reason::Rule {
                rule_id: rule.to_string(),
                detail: detail.to_string(),
            },
        );
        req.capture.get_or_insert_with(|| CaptureOptions {
            output_dir: self.defaults.output_dir.clone(),
            redact: true,
            budget: DEFAULT_CAPTURE_BUDGET,
        });
        super::execute(&req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::model::{KillSwitchConfig, KillTrigger};

    fn policy(ks: Option<KillSwitchConfig>) -> Policy {
        let mut p = crate::policy::load_str(
            "version: \"2.0\"\nmetadata:\n  name: t\ntools:\n  allow: []\n",
            std::path::Path::new("p.yaml"),
        )
        .expect("minimal policy");
        p.kill_switch = ks;
        p
    }

    fn config(enabled: bool) -> KillSwitchConfig {
        KillSwitchConfig {
            enabled,
            mode: KillMode::Graceful,
            grace_period_ms: 100,
            kill_children: true,
            capture_state: false,
            output_dir: "/tmp/x".into(),
            triggers: vec![KillTrigger {
                on_rule: "slow".into(),
                mode: KillMode::Graceful,
            }],
            tool_denials: None,
        }
    }

    #[test]
    fn a_trigger_sets_the_mode_and_other_rules_kill_at_once() {
        let k = RuleKills::from_policy(&policy(Some(config(true)))).unwrap();
        assert_eq!(k.mode_for("slow"), KillMode::Graceful);
        assert_eq!(k.mode_for("other"), KillMode::Immediate);
        let k = RuleKills::from_policy(&policy(None)).unwrap();
        assert_eq!(k.mode_for("slow"), KillMode::Immediate);
    }

    #[test]
    fn a_disabled_kill_switch_is_refused_with_the_file() {
        let e = RuleKills::from_policy(&policy(Some(config(false)))).unwrap_err();
        assert_eq!(e.to_string(), "kill_switch.enabled is false in p.yaml");
    }
}
