//! The `file_open` rules in the kernel program's forms (pure data).
//!
//! [`compile`] maps every glob of every file rule onto the key the BPF
//! program looks up for it (see `src/bpf/fileguard.bpf.c`) and refuses what
//! the program cannot hold, naming the rule and the glob. `assay policy
//! validate` runs it, so a policy that validates loads; the monitor's
//! `FileGuard` fills its maps from the result.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::model::{Action, GlobForm, Matcher, Rule};

/// Longest file or directory name (NAME_MAX).
pub const NAME_MAX: usize = 255;
/// Longest suffix of a `**/*<suffix>` glob.
pub const SUFFIX_MAX: usize = 32;
/// Distinct suffix lengths across all rules.
pub const MAX_SUFFIX_LENS: usize = 8;
/// `**/<dir>/<name>` pairs across all rules.
pub const MAX_PAIRS: usize = 64;
/// Ancestors a subtree rule looks at (directories, across mounts) on
/// kernels without `bpf_loop` (before 5.17); deeper files are undecided.
pub const MAX_DEPTH: usize = 32;
/// The same with `bpf_loop`: more than any path names (PATH_MAX / 2).
pub const MAX_WALK: usize = 65536;
/// Components of an anchored glob after its directory.
pub const MAX_PATTERN_DEPTH: usize = super::glob::MAX_ANCHORED_DEPTH;
/// Anchored globs (`/home/*/.aws/credentials`) across all rules.
pub const MAX_PATTERNS: usize = 64;
/// Rules with an `except` list.
pub const MAX_GATED: usize = 64;

/// A glob the kernel program cannot enforce exactly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rule `{rule}`: glob `{glob}` cannot be enforced in the kernel: {reason}")]
pub struct Unsupported {
    pub rule: String,
    pub glob: String,
    pub reason: KernelLimit,
}

/// What the kernel program cannot hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KernelLimit {
    #[error("more than {max} file rules with an `except` list", max = MAX_GATED)]
    TooManyGated,
    #[error("`{0}` is not a file name of 1 to {max} bytes", max = NAME_MAX)]
    BadName(String),
    #[error("more than {max} `**/dir/name` globs in all rules", max = MAX_PAIRS)]
    TooManyPairs,
    #[error("suffix must be 1 to {max} bytes without `/`", max = SUFFIX_MAX)]
    BadSuffix,
    #[error(
        "more than {max} distinct suffix lengths",
        max = MAX_SUFFIX_LENS
    )]
    TooManySuffixLengths,
    #[error(
        "an anchored glob has 1 to {max} components after its directory",
        max = MAX_PATTERN_DEPTH
    )]
    AnchoredDepth,
    #[error(
        "more than {max} globs with a `*` directory in all rules",
        max = MAX_PATTERNS
    )]
    TooManyAnchored,
    #[error("{} is not an absolute path", .0.display())]
    NotAbsolute(PathBuf),
    #[error("path contains NUL")]
    Nul,
}

/// What one matching rule asks for, as the kernel stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleRef {
    /// Index of the rule in the slice given to [`compile`].
    pub rule_idx: u32,
    pub action: Action,
}

impl RuleRef {
    /// Two rules on one key: the stronger action wins (the kernel does the
    /// same across keys), the earlier rule on a tie.
    pub fn merge(slot: &mut Option<RuleRef>, new: RuleRef) {
        match slot {
            Some(old) if strength(old.action) >= strength(new.action) => {}
            _ => *slot = Some(new),
        }
    }
}

/// What the rules say about one kernel key (`struct file_rule`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct KeyRules {
    /// The strongest rule without exemptions that matches.
    pub rule: Option<RuleRef>,
    /// Gated rules (bit = position in [`Plan::gated`]) whose globs match.
    pub gated: u64,
    /// Gated rules whose `except` globs match.
    pub exempt: u64,
}

/// What one glob contributes to its key.
#[derive(Debug, Clone, Copy)]
enum Contribution {
    Rule(RuleRef),
    Gated(u64),
    Exempt(u64),
}

impl KeyRules {
    fn add(&mut self, c: Contribution) {
        match c {
            Contribution::Rule(r) => RuleRef::merge(&mut self.rule, r),
            Contribution::Gated(bit) => self.gated |= bit,
            Contribution::Exempt(bit) => self.exempt |= bit,
        }
    }

    pub fn merge(&mut self, o: KeyRules) {
        if let Some(r) = o.rule {
            RuleRef::merge(&mut self.rule, r);
        }
        self.gated |= o.gated;
        self.exempt |= o.exempt;
    }
}

/// The kernel's order of actions (`enum assay_action`).
pub fn strength(a: Action) -> u32 {
    match a {
        Action::Log => 0,
        Action::Alert => 1,
        Action::Deny => 2,
        Action::TriggerKill => 3,
    }
}

/// The file rules in kernel form, before any path is resolved.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Plan {
    pub exact: BTreeMap<PathBuf, KeyRules>,
    pub subtrees: BTreeMap<PathBuf, KeyRules>,
    pub basenames: BTreeMap<String, KeyRules>,
    pub dirnames: BTreeMap<String, KeyRules>,
    /// `(dir, name)`; the position is the pair's bit.
    pub pairs: BTreeMap<(String, String), KeyRules>,
    pub suffixes: BTreeMap<String, KeyRules>,
    /// `(dir, components)`; the position is the glob's bit.
    pub anchored: BTreeMap<(PathBuf, Vec<String>), KeyRules>,
    /// Rules with an `except` list; the position is the rule's bit, most
    /// severe action first, then policy order (the program takes the
    /// lowest bit left).
    pub gated: Vec<RuleRef>,
}

fn merge_into<K: Ord>(map: &mut BTreeMap<K, KeyRules>, k: K, c: Contribution) {
    map.entry(k).or_default().add(c);
}

/// Compiles the `file_open` rules of `rules` (others are skipped; indices
/// stay those of `rules`). Refuses what the kernel program cannot enforce
/// exactly, naming the rule and the glob.
pub fn compile(rules: &[Rule]) -> Result<Plan, Unsupported> {
    let mut plan = Plan::default();
    let file_rules = || {
        rules
            .iter()
            .enumerate()
            .filter_map(|(idx, rule)| match &rule.matcher {
                Matcher::FileOpen(m) => Some((
                    RuleRef {
                        rule_idx: u32::try_from(idx).expect("fewer than 2^32 rules"),
                        action: rule.action,
                    },
                    rule,
                    m,
                )),
                Matcher::NetConnect(_) => None,
            })
    };
    let unsupported = |rule: &Rule, glob: &str, reason: KernelLimit| Unsupported {
        rule: rule.id.clone(),
        glob: glob.to_string(),
        reason,
    };
    plan.gated = file_rules()
        .filter(|(_, _, m)| !m.except.is_empty())
        .map(|(r, _, _)| r)
        .collect();
    if let Some((_, rule, m)) = file_rules()
        .filter(|(_, _, m)| !m.except.is_empty())
        .nth(MAX_GATED)
    {
        return Err(unsupported(
            rule,
            &m.except[0].text,
            KernelLimit::TooManyGated,
        ));
    }
    // Stable: policy order among rules of one action.
    plan.gated
        .sort_by_key(|r| std::cmp::Reverse(strength(r.action)));
    for (r, rule, m) in file_rules() {
        let bit = plan
            .gated
            .iter()
            .position(|g| g.rule_idx == r.rule_idx)
            .map(|b| 1u64 << b);
        let matched = bit.map_or(Contribution::Rule(r), Contribution::Gated);
        let globs = m.path_globs.iter().map(|g| (g, matched));
        let exempt = m
            .except
            .iter()
            .map(|g| (g, Contribution::Exempt(bit.unwrap_or(0))));
        for (g, c) in globs.chain(exempt) {
            plan.add(&g.form, c)
                .map_err(|reason| unsupported(rule, &g.text, reason))?;
        }
    }
    Ok(plan)
}

impl Plan {
    /// Adds one glob's contribution to the key of its form; the reason when
    /// the kernel program cannot hold it.
    fn add(&mut self, form: &GlobForm, c: Contribution) -> Result<(), KernelLimit> {
        let name_ok = |n: &str| -> Result<(), KernelLimit> {
            if n.is_empty() || n.len() > NAME_MAX || n.contains(['/', '\0']) {
                return Err(KernelLimit::BadName(n.to_string()));
            }
            Ok(())
        };
        match form {
            GlobForm::Exact(p) => {
                absolute(p)?;
                merge_into(&mut self.exact, p.clone(), c);
            }
            GlobForm::Subtree(p) => {
                absolute(p)?;
                merge_into(&mut self.subtrees, p.clone(), c);
            }
            GlobForm::Basename(n) => {
                name_ok(n)?;
                merge_into(&mut self.basenames, n.clone(), c);
            }
            GlobForm::InDirNamed(d) => {
                name_ok(d)?;
                merge_into(&mut self.dirnames, d.clone(), c);
            }
            GlobForm::DirAndBasename { dir, name } => {
                name_ok(dir)?;
                name_ok(name)?;
                merge_into(&mut self.pairs, (dir.clone(), name.clone()), c);
                if self.pairs.len() > MAX_PAIRS {
                    return Err(KernelLimit::TooManyPairs);
                }
            }
            GlobForm::Suffix(s) => {
                if s.is_empty() || s.len() > SUFFIX_MAX || s.contains(['/', '\0']) {
                    return Err(KernelLimit::BadSuffix);
                }
                merge_into(&mut self.suffixes, s.clone(), c);
                if self.suffix_lens().len() > MAX_SUFFIX_LENS {
                    return Err(KernelLimit::TooManySuffixLengths);
                }
            }
            GlobForm::Anchored { dir, components } => {
                absolute(dir)?;
                if components.is_empty() || components.len() > MAX_PATTERN_DEPTH {
                    return Err(KernelLimit::AnchoredDepth);
                }
                for n in components {
                    name_ok(n)?;
                }
                merge_into(&mut self.anchored, (dir.clone(), components.clone()), c);
                if self.anchored.len() > MAX_PATTERNS {
                    return Err(KernelLimit::TooManyAnchored);
                }
            }
        }
        Ok(())
    }
}

fn absolute(p: &Path) -> Result<(), KernelLimit> {
    if !p.is_absolute() {
        return Err(KernelLimit::NotAbsolute(p.to_path_buf()));
    }
    if p.as_os_str().as_encoded_bytes().contains(&0) {
        return Err(KernelLimit::Nul);
    }
    Ok(())
}

impl Plan {
    /// Distinct suffix lengths, longest first (the program's order).
    pub fn suffix_lens(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self.suffixes.keys().map(|s| s.len() as u32).collect();
        v.sort_unstable_by(|a, b| b.cmp(a));
        v.dedup();
        v
    }

    /// Each name's bitmask of the pairs it takes part in: (basenames, dirnames).
    pub fn pair_masks(&self) -> (BTreeMap<&str, u64>, BTreeMap<&str, u64>) {
        let (mut base, mut dir) = (BTreeMap::new(), BTreeMap::new());
        for (bit, (d, n)) in self.pairs.keys().enumerate() {
            *base.entry(n.as_str()).or_insert(0u64) |= 1 << bit;
            *dir.entry(d.as_str()).or_insert(0u64) |= 1 << bit;
        }
        (base, dir)
    }

    /// What decides a file the name- and ancestor-based forms cannot judge
    /// in the kernel (a disconnected dentry, ancestors deeper than the walk):
    /// the strongest rule with a key in those forms, so such a file fails
    /// closed under the rule it may fall under. None when every rule is an
    /// exact path (the inode form judges any file).
    pub fn undecided(&self) -> Option<RuleRef> {
        let mut best = None;
        let placed = self
            .subtrees
            .values()
            .chain(self.basenames.values())
            .chain(self.dirnames.values())
            .chain(self.pairs.values())
            .chain(self.suffixes.values())
            .chain(self.anchored.values());
        for k in placed {
            if let Some(r) = k.rule {
                RuleRef::merge(&mut best, r);
            }
            for (bit, r) in self.gated.iter().enumerate() {
                if (k.gated >> bit) & 1 == 1 {
                    RuleRef::merge(&mut best, *r);
                }
            }
        }
        best
    }

    /// Deepest anchored glob: how many levels the program reads.
    pub fn pattern_depth(&self) -> usize {
        self.anchored
            .keys()
            .map(|(_, c)| c.len())
            .max()
            .unwrap_or(0)
    }

    /// Per level (0: the opened file), the anchored globs that accept any
    /// name there: a `*`, or a glob that ends below that level.
    pub fn pattern_any(&self) -> [u64; MAX_PATTERN_DEPTH] {
        let mut any = [0u64; MAX_PATTERN_DEPTH];
        for (bit, (_, comps)) in self.anchored.keys().enumerate() {
            for (level, slot) in any.iter_mut().enumerate() {
                let wild = level >= comps.len() || comps[comps.len() - 1 - level] == GlobForm::ANY;
                if wild {
                    *slot |= 1 << bit;
                }
            }
        }
        any
    }

    /// Per level, the anchored globs whose directory is above that level
    /// (more components than the level number): the walk goes on for them.
    pub fn pattern_deeper(&self) -> [u64; MAX_PATTERN_DEPTH] {
        let mut deeper = [0u64; MAX_PATTERN_DEPTH];
        for (bit, (_, comps)) in self.anchored.keys().enumerate() {
            for slot in deeper.iter_mut().take(comps.len()) {
                *slot |= 1 << bit;
            }
        }
        deeper
    }

    /// Per level i, the anchored globs whose directory is i + 1 levels
    /// above the opened file.
    pub fn pattern_at(&self) -> [u64; MAX_PATTERN_DEPTH] {
        let mut at = [0u64; MAX_PATTERN_DEPTH];
        for (bit, (_, comps)) in self.anchored.keys().enumerate() {
            at[comps.len() - 1] |= 1 << bit;
        }
        at
    }

    /// `(level, literal) -> globs` with that literal component at that level.
    pub fn pattern_levels(&self) -> BTreeMap<(u32, &str), u64> {
        let mut m = BTreeMap::new();
        for (bit, (_, comps)) in self.anchored.keys().enumerate() {
            for (level, c) in comps.iter().rev().enumerate() {
                if c != GlobForm::ANY {
                    *m.entry((level as u32, c.as_str())).or_insert(0) |= 1u64 << bit;
                }
            }
        }
        m
    }
}

/// A file rule with `globs` (their text is their debug form), for tests.
#[cfg(test)]
pub(crate) fn test_rule(id: &str, action: Action, globs: &[GlobForm]) -> Rule {
    use super::model::{FileMatch, PathGlob};
    Rule {
        id: id.into(),
        severity: crate::severity::Severity::High,
        action,
        matcher: Matcher::FileOpen(FileMatch {
            path_globs: globs
                .iter()
                .map(|f| PathGlob {
                    text: format!("{f:?}"),
                    form: f.clone(),
                })
                .collect(),
            except: vec![],
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::model::PathGlob;
    use crate::severity::Severity;

    use super::test_rule as rule;

    #[test]
    fn an_undecided_file_falls_under_the_strongest_placed_rule() {
        let exact = rule(
            "exact",
            Action::TriggerKill,
            &[GlobForm::Exact("/etc/shadow".into())],
        );
        // Only exact paths: the inode form judges every file.
        assert_eq!(
            compile(std::slice::from_ref(&exact)).unwrap().undecided(),
            None
        );
        let rules = [
            exact,
            rule("env", Action::Alert, &[GlobForm::Basename(".env".into())]),
            rule("data", Action::Deny, &[GlobForm::Subtree("/data".into())]),
            rule("keys", Action::Log, &[GlobForm::Suffix(".pem".into())]),
        ];
        let u = compile(&rules).unwrap().undecided().unwrap();
        assert_eq!((u.rule_idx, u.action), (2, Action::Deny));
    }

    #[test]
    fn each_form_lands_in_its_table_and_the_stronger_action_wins() {
        let rules = [
            rule(
                "log",
                Action::Log,
                &[
                    GlobForm::Exact("/etc/shadow".into()),
                    GlobForm::Basename(".env".into()),
                ],
            ),
            rule(
                "deny",
                Action::Deny,
                &[
                    GlobForm::Exact("/etc/shadow".into()),
                    GlobForm::Subtree("/data".into()),
                    GlobForm::InDirNamed(".ssh".into()),
                    GlobForm::DirAndBasename {
                        dir: ".aws".into(),
                        name: "credentials".into(),
                    },
                    GlobForm::Suffix(".pem".into()),
                    GlobForm::Suffix(".key".into()),
                    GlobForm::Suffix(".p12x".into()),
                ],
            ),
        ];
        let p = compile(&rules).unwrap();
        let deny = KeyRules {
            rule: Some(RuleRef {
                rule_idx: 1,
                action: Action::Deny,
            }),
            ..KeyRules::default()
        };
        assert_eq!(p.exact[Path::new("/etc/shadow")], deny);
        assert_eq!(p.basenames[".env"].rule.unwrap().rule_idx, 0);
        assert_eq!(p.subtrees[Path::new("/data")], deny);
        assert_eq!(p.dirnames[".ssh"], deny);
        assert_eq!(p.pairs[&(".aws".into(), "credentials".into())], deny);
        assert_eq!(p.suffix_lens(), vec![5, 4]);
        let (b, d) = p.pair_masks();
        assert_eq!(b["credentials"] & d[".aws"], 1);
    }

    #[test]
    fn non_file_rules_keep_their_index() {
        let mut rules = vec![Rule {
            id: "net".into(),
            severity: Severity::Low,
            action: Action::Deny,
            matcher: Matcher::NetConnect(crate::policy::model::NetMatch {
                ports: vec![22],
                outside_cidrs: vec![],
                protocols: vec![],
                loopback: crate::policy::model::Loopback::Match,
            }),
        }];
        rules.push(rule(
            "f",
            Action::TriggerKill,
            &[GlobForm::Basename("x".into())],
        ));
        let p = compile(&rules).unwrap();
        assert_eq!(p.basenames["x"].rule.unwrap().rule_idx, 1);
    }

    #[test]
    fn unenforceable_globs_are_refused_with_the_rule_named() {
        let cases = [
            GlobForm::Suffix("x".repeat(SUFFIX_MAX + 1)),
            GlobForm::Basename("a/b".into()),
            GlobForm::Basename("n".repeat(NAME_MAX + 1)),
            GlobForm::Exact("relative/path".into()),
        ];
        for form in cases {
            let err =
                compile(&[rule("r1", Action::Deny, std::slice::from_ref(&form))]).unwrap_err();
            assert!(err.to_string().contains("rule `r1`"), "{form:?}: {err}");
        }
        let many: Vec<GlobForm> = (1..=MAX_SUFFIX_LENS + 1)
            .map(|n| GlobForm::Suffix("s".repeat(n)))
            .collect();
        assert!(compile(&[rule("r", Action::Deny, &many)]).is_err());
        let pairs: Vec<GlobForm> = (0..=MAX_PAIRS)
            .map(|n| GlobForm::DirAndBasename {
                dir: format!("d{n}"),
                name: "n".into(),
            })
            .collect();
        assert!(compile(&[rule("r", Action::Deny, &pairs)]).is_err());
    }

    fn with_except(mut r: Rule, except: &[GlobForm]) -> Rule {
        if let Matcher::FileOpen(m) = &mut r.matcher {
            m.except = except
                .iter()
                .map(|f| PathGlob {
                    text: format!("{f:?}"),
                    form: f.clone(),
                })
                .collect();
        }
        r
    }

    #[test]
    fn rules_with_except_are_gated_by_bits_in_priority_order() {
        let ssh = GlobForm::InDirNamed(".ssh".into());
        let known = GlobForm::DirAndBasename {
            dir: ".ssh".into(),
            name: "known_hosts".into(),
        };
        let rules = [
            with_except(
                rule("log-ssh", Action::Log, std::slice::from_ref(&ssh)),
                std::slice::from_ref(&known),
            ),
            rule("env", Action::Deny, &[GlobForm::Basename(".env".into())]),
            with_except(
                rule("kill-ssh", Action::TriggerKill, std::slice::from_ref(&ssh)),
                &[GlobForm::Suffix(".pub".into())],
            ),
        ];
        let p = compile(&rules).unwrap();
        // Most severe first: kill-ssh is bit 0, log-ssh bit 1.
        let idx: Vec<u32> = p.gated.iter().map(|r| r.rule_idx).collect();
        assert_eq!(idx, vec![2, 0]);
        let dir = p.dirnames[".ssh"];
        assert_eq!((dir.rule, dir.gated, dir.exempt), (None, 0b11, 0));
        let pair = p.pairs[&(".ssh".into(), "known_hosts".into())];
        assert_eq!((pair.rule, pair.gated, pair.exempt), (None, 0, 0b10));
        assert_eq!(p.suffixes[".pub"].exempt, 0b01);
        // Ungated rules are untouched.
        assert_eq!(p.basenames[".env"].rule.unwrap().rule_idx, 1);
        assert_eq!(p.basenames[".env"].gated, 0);
    }

    #[test]
    fn too_many_gated_rules_are_refused() {
        let rules: Vec<Rule> = (0..=MAX_GATED)
            .map(|i| {
                with_except(
                    rule(
                        &format!("r{i}"),
                        Action::Deny,
                        &[GlobForm::Basename(format!("f{i}"))],
                    ),
                    &[GlobForm::Basename("x".into())],
                )
            })
            .collect();
        let e = compile(&rules).unwrap_err().to_string();
        assert!(
            e.contains("rule `r64`") && e.contains("more than 64"),
            "{e}"
        );
    }

    #[test]
    fn anchored_globs_compile_to_levels_and_anchors() {
        let anchored = |d: &str, c: &[&str]| GlobForm::Anchored {
            dir: d.into(),
            components: c.iter().map(|s| s.to_string()).collect(),
        };
        let rules = [rule(
            "a",
            Action::Deny,
            &[
                anchored("/home", &["*", ".aws", "credentials"]),
                anchored("/etc/ssl/private", &["*"]),
            ],
        )];
        let p = compile(&rules).unwrap();
        assert_eq!(p.pattern_depth(), 3);
        // Bits in key order: /etc/ssl/private is 0, /home is 1.
        let any = p.pattern_any();
        assert_eq!(
            any[0], 0b01,
            "level 0: only the trailing `*` takes any name"
        );
        assert_eq!(any[1], 0b01, "level 1: /etc/ssl/private/* has ended");
        assert_eq!(any[2], 0b11, "level 2: /home/* is a `*`");
        assert_eq!(any[3], 0b11);
        let deeper = p.pattern_deeper();
        assert_eq!(deeper[0], 0b11);
        assert_eq!(deeper[1], 0b10);
        assert_eq!(deeper[2], 0b10);
        assert_eq!(deeper[3], 0);
        let at = p.pattern_at();
        assert_eq!((at[0], at[1], at[2], at[3]), (0b01, 0, 0b10, 0));
        let levels = p.pattern_levels();
        assert_eq!(levels[&(0, "credentials")], 0b10);
        assert_eq!(levels[&(1, ".aws")], 0b10);
        assert_eq!(levels.len(), 2);
        let deep: Vec<String> = vec!["x".into(); MAX_PATTERN_DEPTH + 1];
        let e = compile(&[rule(
            "d",
            Action::Deny,
            &[GlobForm::Anchored {
                dir: "/a".into(),
                components: deep,
            }],
        )]);
        assert!(e.is_err());
        let many: Vec<GlobForm> = (0..=MAX_PATTERNS)
            .map(|i| anchored(&format!("/d{i}"), &["*"]))
            .collect();
        assert!(compile(&[rule("m", Action::Deny, &many)]).is_err());
    }
}
