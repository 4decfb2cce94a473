//! Policy rules -> the kernel's rule forms (pure data, no BPF, no privileges).
//!
//! Network rules become bits of a `u64`. Bits are ordered by decision
//! priority: the most severe action first (`trigger_kill`, `deny`, `alert`,
//! `log`), then policy order. When several rules match one connection the
//! kernel takes the lowest set bit, so the most severe matching rule decides
//! and, among equally severe ones, the first in the policy.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use crate::policy::model::{Action, Cidr, Loopback, Matcher, NetMatch, Protocol, Rule};
use crate::severity::Severity;

/// Most network rules one monitor enforces (bits of the kernel's rule mask).
pub const MAX_NET_RULES: usize = limit::ASSAY_MAX_NET_RULES.0 as usize;

use super::netguard_skel::types::{assay_action as kernel_action, assay_limit as limit};

/// The kernel's action codes (`enum assay_action` in assay.h).
pub fn action_code(a: Action) -> u32 {
    match a {
        Action::Log => kernel_action::ASSAY_ACT_LOG.0,
        Action::Alert => kernel_action::ASSAY_ACT_ALERT.0,
        Action::Deny => kernel_action::ASSAY_ACT_DENY.0,
        Action::TriggerKill => kernel_action::ASSAY_ACT_TRIGGER_KILL.0,
    }
}

/// Decision priority: lower decides first.
fn priority(a: Action) -> u8 {
    match a {
        Action::TriggerKill => 0,
        Action::Deny => 1,
        Action::Alert => 2,
        Action::Log => 3,
    }
}

/// One network rule as the kernel knows it (by its bit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetSlot {
    pub id: String,
    pub action: Action,
    pub severity: Severity,
    /// Position of the rule in the policy.
    pub index: usize,
}

/// Everything the netguard object needs, ready to write into rodata and maps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetPlan {
    /// Indexed by bit.
    pub slots: Vec<NetSlot>,
    pub any_port_mask: u64,
    pub cidr_mask: u64,
    pub tcp_mask: u64,
    pub udp_mask: u64,
    /// Rules covering ICMP and ICMPv6 (ping sockets, judged per packet by
    /// destination). Only rules without ports: validation refuses the rest.
    pub icmp_mask: u64,
    pub loopback_ignore_mask: u64,
    /// Port (host order) -> rules that list it.
    pub ports: BTreeMap<u16, u64>,
    /// (prefix length, address, rules whose allowlist contains the prefix).
    pub v4: Vec<(u8, [u8; 4], u64)>,
    pub v6: Vec<(u8, [u8; 16], u64)>,
}

impl NetPlan {
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn actions(&self) -> [u32; MAX_NET_RULES] {
        let mut a = [0u32; MAX_NET_RULES];
        for (i, s) in self.slots.iter().enumerate() {
            a[i] = action_code(s.action);
        }
        a
    }

    /// Rule ids for the bits set in `mask`, in bit order.
    pub fn ids_in(&self, mask: u64) -> Vec<&str> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1u64 << i) != 0)
            .map(|(_, s)| s.id.as_str())
            .collect()
    }
}

/// A rule (or part of one) this monitor cannot enforce, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unenforceable {
    pub rule_id: String,
    /// What is missing.
    pub reason: String,
    /// How to fix it.
    pub fix: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CompileError {
    #[error(
        "{count} net_connect rules, but one monitor enforces at most {MAX_NET_RULES}: merge rules with the same action"
    )]
    TooManyNetRules { count: usize },
}

/// Build the network plan from the policy's rules (file rules are ignored).
pub fn net_plan(rules: &[Rule]) -> Result<NetPlan, CompileError> {
    let mut net: Vec<(usize, &Rule, &NetMatch)> = rules
        .iter()
        .enumerate()
        .filter_map(|(i, r)| match &r.matcher {
            Matcher::NetConnect(m) => Some((i, r, m)),
            Matcher::FileOpen(_) => None,
        })
        .collect();
    if net.len() > MAX_NET_RULES {
        return Err(CompileError::TooManyNetRules { count: net.len() });
    }
    // Stable: equal priorities keep policy order.
    net.sort_by_key(|(_, r, _)| priority(r.action));

    let mut plan = NetPlan::default();
    let mut v4: HashMap<(u8, [u8; 4]), u64> = HashMap::new();
    let mut v6: HashMap<(u8, [u8; 16]), u64> = HashMap::new();
    for (bit, (index, rule, m)) in net.iter().enumerate() {
        let b = 1u64 << bit;
        plan.slots.push(NetSlot {
            id: rule.id.clone(),
            action: rule.action,
            severity: rule.severity,
            index: *index,
        });
        if m.ports.is_empty() {
            plan.any_port_mask |= b;
        }
        for p in &m.ports {
            *plan.ports.entry(*p).or_default() |= b;
        }
        if !m.outside_cidrs.is_empty() {
            plan.cidr_mask |= b;
        }
        for c in &m.outside_cidrs {
            match normalise(c) {
                Net::V4(p, a) => *v4.entry((p, a)).or_default() |= b,
                Net::V6(p, a) => *v6.entry((p, a)).or_default() |= b,
            }
        }
        // An empty protocol list means the default (see Protocol::defaults).
        let covers = |p| {
            if m.protocols.is_empty() {
                Protocol::defaults(!m.ports.is_empty()).contains(&p)
            } else {
                m.protocols.contains(&p)
            }
        };
        if covers(Protocol::Tcp) {
            plan.tcp_mask |= b;
        }
        if covers(Protocol::Udp) {
            plan.udp_mask |= b;
        }
        // ICMP has no port: a rule listing ports never matches it (the
        // policy refuses `icmp` with `ports`; a hand-built rule is held to
        // the same).
        if covers(Protocol::Icmp) && m.ports.is_empty() {
            plan.icmp_mask |= b;
        }
        if m.loopback == Loopback::Ignore {
            plan.loopback_ignore_mask |= b;
        }
    }
    plan.v4 = fold(&v4, 32);
    plan.v6 = fold(&v6, 128);
    Ok(plan)
}

enum Net {
    V4(u8, [u8; 4]),
    V6(u8, [u8; 16]),
}

/// IPv4-mapped IPv6 prefixes (`::ffff:a.b.c.d/n`, n >= 96) are IPv4 networks:
/// the kernel judges mapped destinations as IPv4, so store them there.
fn normalise(c: &Cidr) -> Net {
    match c.addr {
        IpAddr::V4(a) => Net::V4(c.prefix, mask_bytes(a.octets(), c.prefix)),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) if c.prefix >= 96 => {
                Net::V4(c.prefix - 96, mask_bytes(v4.octets(), c.prefix - 96))
            }
            _ => Net::V6(c.prefix, mask_bytes(a.octets(), c.prefix)),
        },
    }
}

fn mask_bytes<const N: usize>(mut a: [u8; N], prefix: u8) -> [u8; N] {
    for (i, byte) in a.iter_mut().enumerate() {
        let keep = (prefix as usize).saturating_sub(i * 8).min(8);
        *byte &= if keep == 0 { 0 } else { 0xffu8 << (8 - keep) };
    }
    a
}

/// The kernel's LPM lookup returns only the longest matching prefix, so each
/// prefix's value must also carry the rules of every shorter prefix that
/// contains it. Then one lookup yields every rule whose allowlist holds the
/// address.
fn fold<const N: usize>(entries: &HashMap<(u8, [u8; N]), u64>, max: u8) -> Vec<(u8, [u8; N], u64)> {
    let mut out: Vec<(u8, [u8; N], u64)> = entries
        .iter()
        .map(|(&(p, a), &own)| {
            let mut m = own;
            for shorter in 0..p.min(max) {
                if let Some(v) = entries.get(&(shorter, mask_bytes(a, shorter))) {
                    m |= v;
                }
            }
            (p, a, m)
        })
        .collect();
    out.sort();
    out
}

/// Rules (or parts) that cannot be enforced whatever the kernel.
/// `kill_unavailable`: why `trigger_kill` cannot kill (None: it can).
pub fn unenforceable_here(rules: &[Rule], kill_unavailable: Option<&str>) -> Vec<Unenforceable> {
    let mut out = Vec::new();
    for r in rules {
        if let (Action::TriggerKill, Some(why)) = (r.action, kill_unavailable) {
            out.push(Unenforceable {
                rule_id: r.id.clone(),
                reason: format!(
                    "action trigger_kill cannot kill: {why} (the operation would still be denied)"
                ),
                fix: "enable the kill switch, use action: deny, or run with --allow-degraded to \
                      deny without killing"
                    .into(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn net_rule(id: &str, action: Action, m: NetMatch) -> Rule {
        Rule {
            id: id.into(),
            severity: Severity::High,
            action,
            matcher: Matcher::NetConnect(m),
        }
    }

    fn ports(p: &[u16]) -> NetMatch {
        NetMatch {
            ports: p.to_vec(),
            outside_cidrs: vec![],
            protocols: vec![Protocol::Tcp, Protocol::Udp],
            loopback: Loopback::Match,
        }
    }

    fn cidr(s: &str) -> Cidr {
        let (a, p) = s.split_once('/').unwrap();
        Cidr {
            addr: a.parse().unwrap(),
            prefix: p.parse().unwrap(),
        }
    }

    #[test]
    fn bits_are_ordered_by_severity_then_policy_order() {
        let rules = vec![
            net_rule("log-a", Action::Log, ports(&[1])),
            net_rule("deny-a", Action::Deny, ports(&[2])),
            net_rule("kill", Action::TriggerKill, ports(&[3])),
            net_rule("deny-b", Action::Deny, ports(&[2])),
            net_rule("alert", Action::Alert, ports(&[4])),
        ];
        let p = net_plan(&rules).unwrap();
        let ids: Vec<&str> = p.slots.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["kill", "deny-a", "deny-b", "alert", "log-a"]);
        assert_eq!(p.ports[&2], 0b110);
        assert_eq!(p.ports[&1], 0b10000);
        assert_eq!(p.actions()[..5], [3, 2, 2, 1, 0]);
        assert_eq!(p.ids_in(0b10110), ["deny-a", "deny-b", "log-a"]);
    }

    #[test]
    fn masks_follow_the_match_fields() {
        let mut m = ports(&[]);
        m.protocols = vec![Protocol::Udp];
        m.loopback = Loopback::Ignore;
        m.outside_cidrs = vec![cidr("10.0.0.0/8")];
        let p = net_plan(&[net_rule("r", Action::Deny, m)]).unwrap();
        assert_eq!(p.any_port_mask, 1);
        assert_eq!(p.cidr_mask, 1);
        assert_eq!(p.tcp_mask, 0);
        assert_eq!(p.udp_mask, 1);
        assert_eq!(p.icmp_mask, 0);
        assert_eq!(p.loopback_ignore_mask, 1);
        assert_eq!(p.v4, vec![(8, [10, 0, 0, 0], 1)]);
    }

    #[test]
    fn icmp_is_covered_by_rules_without_ports_only() {
        let mut allow = ports(&[]);
        allow.outside_cidrs = vec![cidr("10.0.0.0/8")];
        allow.protocols = Protocol::ALL.to_vec();
        let mut icmp_only = allow.clone();
        icmp_only.protocols = vec![Protocol::Icmp];
        // Listing ports, a rule never covers ICMP, whatever it says.
        let mut with_ports = ports(&[22]);
        with_ports.protocols = Protocol::ALL.to_vec();
        // Empty: the default for its shape.
        let mut default_allow = allow.clone();
        default_allow.protocols = vec![];
        let mut default_ports = ports(&[22]);
        default_ports.protocols = vec![];
        let p = net_plan(&[
            net_rule("allow", Action::Deny, allow),
            net_rule("icmp", Action::Deny, icmp_only),
            net_rule("ports", Action::Deny, with_ports),
            net_rule("default-allow", Action::Deny, default_allow),
            net_rule("default-ports", Action::Deny, default_ports),
        ])
        .unwrap();
        assert_eq!(p.icmp_mask, 0b01011);
        assert_eq!(p.tcp_mask, 0b11101);
        assert_eq!(p.udp_mask, 0b11101);
    }

    #[test]
    fn nested_prefixes_carry_the_rules_of_their_parents() {
        let mut a = ports(&[]);
        a.outside_cidrs = vec![cidr("10.0.0.0/8"), cidr("::/0")];
        let mut b = ports(&[]);
        b.outside_cidrs = vec![cidr("10.1.0.0/16"), cidr("2001:db8::/32")];
        let p = net_plan(&[
            net_rule("a", Action::Deny, a),
            net_rule("b", Action::Deny, b),
        ])
        .unwrap();
        assert_eq!(
            p.v4,
            vec![(8, [10, 0, 0, 0], 0b01), (16, [10, 1, 0, 0], 0b11)]
        );
        let db8 = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0).octets();
        assert_eq!(p.v6, vec![(0, [0; 16], 0b01), (32, db8, 0b11)]);
    }

    #[test]
    fn mapped_v6_prefixes_become_v4() {
        let mut m = ports(&[]);
        m.outside_cidrs = vec![Cidr {
            addr: IpAddr::V6(Ipv4Addr::new(127, 0, 0, 0).to_ipv6_mapped()),
            prefix: 104,
        }];
        let p = net_plan(&[net_rule("r", Action::Deny, m)]).unwrap();
        assert_eq!(p.v4, vec![(8, [127, 0, 0, 0], 1)]);
        assert!(p.v6.is_empty());
    }

    #[test]
    fn too_many_rules_is_an_error() {
        let rules: Vec<Rule> = (0..65)
            .map(|i| net_rule(&format!("r{i}"), Action::Deny, ports(&[1])))
            .collect();
        assert_eq!(
            net_plan(&rules),
            Err(CompileError::TooManyNetRules { count: 65 })
        );
    }

    #[test]
    fn host_bits_are_cleared() {
        assert_eq!(mask_bytes([10, 1, 2, 3], 12), [10, 0, 0, 0]);
        assert_eq!(mask_bytes([255, 255, 255, 255], 20), [255, 255, 240, 0]);
        assert_eq!(mask_bytes([1, 2], 0), [0, 0]);
    }
}
