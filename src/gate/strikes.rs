//! Repeated refusals as a kill trigger: the policy's
//! `kill_switch.triggers` entry `{on_tool_denials: N}` stops the server at
//! the N-th refused tool call (an agent that keeps trying what the policy
//! forbids is steered, not mistaken).

/// Counts refusals; says once when the limit is reached.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Strikes {
    limit: Option<u32>,
    denied: u32,
}

impl Strikes {
    /// `limit`: refusals that trigger the kill (None: never).
    pub fn new(limit: Option<u32>) -> Strikes {
        Strikes { limit, denied: 0 }
    }

    /// Records one decision; true exactly when this refusal reaches the
    /// limit (later ones do not trigger again: the kill is under way).
    pub fn record(&mut self, allowed: bool) -> bool {
        if allowed {
            return false;
        }
        self.denied = self.denied.saturating_add(1);
        self.limit == Some(self.denied)
    }

    pub fn denied(&self) -> u32 {
        self.denied
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trips_once_at_the_limit_and_allowed_calls_do_not_count() {
        let mut s = Strikes::new(Some(3));
        let trips: Vec<bool> = [false, true, false, true, false, false, false]
            .into_iter()
            .map(|allowed| s.record(allowed))
            .collect();
        assert_eq!(trips, [false, false, false, false, true, false, false]);
        assert_eq!(s.denied(), 5);
        let mut never = Strikes::new(None);
        assert!((0..100).all(|_| !never.record(false)));
    }
}
