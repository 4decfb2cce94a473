//! Server ids (see the module docs of [`super`] for the scheme). Pure, and
//! kept apart because `assay kill --server-id` and policies name servers by
//! them: an id may only change when the configs themselves change.

use std::collections::{BTreeSet, HashMap};

use super::running::RunGroup;
use super::{Configured, fnv1a};

/// `<prefix>/<name>`, the name made path-safe: an id is one path segment
/// after the prefix.
pub(super) fn base_id(prefix: &str, name: &str) -> String {
    format!("{prefix}/{}", sanitize(name))
}

fn sanitize(s: &str) -> String {
    let t: String = s
        .chars()
        .map(|c| {
            if c.is_whitespace() || c == '/' || c == '\\' {
                '-'
            } else {
                c
            }
        })
        .collect();
    if t.is_empty() { "unnamed".into() } else { t }
}

/// Final ids from `(base id, launch fingerprint)` seeds: a base shared by
/// several seeds gets `~` and six hex digits of the fingerprint's FNV-1a
/// hash on every one of them, so no server's id depends on which other
/// server came first. Seeds are distinct servers, so their fingerprints
/// differ.
pub(super) fn assign_ids(seeds: &[(String, &str)]) -> Vec<String> {
    let mut count: HashMap<&str, usize> = HashMap::new();
    for (id, _) in seeds {
        *count.entry(id.as_str()).or_insert(0) += 1;
    }
    seeds
        .iter()
        .map(|(id, fp)| {
            if count[id.as_str()] > 1 {
                format!("{id}~{:06x}", fnv1a(fp) & 0xff_ffff)
            } else {
                id.clone()
            }
        })
        .collect()
}

/// Ids of the configured groups (`<client>/<name>` of the first location),
/// then of the process-only servers (`process/<short name>`), in that order.
pub(super) fn server_ids(groups: &[Vec<Configured>], run_groups: &[RunGroup]) -> Vec<String> {
    let mut seeds: Vec<(String, &str)> = groups
        .iter()
        .map(|g| {
            let l = &g[0].location;
            (base_id(l.client, &l.name), g[0].fingerprint.as_str())
        })
        .collect();
    seeds.extend(run_groups.iter().map(|r| {
        (
            base_id("process", &r.launch.short_name()),
            r.fingerprint.as_str(),
        )
    }));
    assign_ids(&seeds)
}

/// The other `<client>/<name>` ids a configured group is known by, sorted
/// and without duplicates.
pub(super) fn aliases(id: &str, group: &[Configured]) -> Vec<String> {
    group
        .iter()
        .map(|c| base_id(c.location.client, &c.location.name))
        .filter(|a| a != id)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::discovery::assemble::group_configured;
    use crate::discovery::launch;
    use crate::discovery::launch_fingerprint;
    use crate::discovery::testkit::{remote, stdio};

    /// A process-only server running `cmd`.
    fn run_group(cmd: &str) -> RunGroup {
        let l = launch::analyze(&launch::shell_split(cmd));
        RunGroup {
            fingerprint: launch_fingerprint(&l),
            launch: l,
            procs: vec![0],
        }
    }

    /// A machine's worth of configs: one server in three clients, two
    /// different `github` servers in one client, a remote one spelled two
    /// ways, an unnamed one.
    fn machine() -> Vec<Configured> {
        vec![
            stdio(
                "claude-desktop",
                "/h/Claude/claude_desktop_config.json",
                "filesystem",
                "npx -y @modelcontextprotocol/server-filesystem /tmp",
            ),
            stdio(
                "cursor",
                "/h/.cursor/mcp.json",
                "fs",
                "npx -y @modelcontextprotocol/server-filesystem /tmp",
            ),
            stdio(
                "vscode",
                "/h/.config/Code/User/mcp.json",
                "filesystem",
                "npx -y @modelcontextprotocol/server-filesystem /tmp",
            ),
            stdio(
                "claude-code",
                "/h/.claude.json",
                "github",
                "github-mcp-server stdio",
            ),
            stdio(
                "claude-code",
                "/h/p/.mcp.json",
                "github",
                "npx -y @acme/github-mcp",
            ),
            stdio(
                "cursor",
                "/h/.cursor/mcp.json",
                "github",
                "npx @acme/github-mcp",
            ),
            remote(
                "cursor",
                "/h/.cursor/mcp.json",
                "api",
                "https://API.example.com/mcp/",
            ),
            remote(
                "windsurf",
                "/h/w.json",
                "api",
                "https://api.example.com/mcp",
            ),
            stdio("zed", "/h/zed.json", "", "mcp-server-time"),
        ]
    }

    fn ids_of(configured: Vec<Configured>, run: &[RunGroup]) -> Vec<(String, Vec<String>)> {
        let groups = group_configured(configured);
        let ids = server_ids(&groups, run);
        let mut out: Vec<(String, Vec<String>)> = ids
            .iter()
            .zip(&groups)
            .map(|(id, g)| (id.clone(), aliases(id, g)))
            .collect();
        out.extend(
            ids[groups.len()..]
                .iter()
                .map(|id| (id.clone(), Vec::new())),
        );
        out
    }

    #[test]
    fn ids_have_the_documented_format() {
        let got = ids_of(
            machine(),
            &[run_group("node /opt/weather-mcp/build/index.js")],
        );
        let want: Vec<(String, Vec<String>)> = [
            (
                "claude-desktop/filesystem",
                &["cursor/fs", "vscode/filesystem"][..],
            ),
            // Both colliding servers keep the plain base as an alias.
            ("claude-code/github~093e24", &["claude-code/github"]),
            (
                "claude-code/github~f2af50",
                &["claude-code/github", "cursor/github"],
            ),
            ("cursor/api", &["windsurf/api"]),
            ("zed/unnamed", &[]),
            ("process/weather-mcp", &[]),
        ]
        .iter()
        .map(|(id, a)| (id.to_string(), a.iter().map(|s| s.to_string()).collect()))
        .collect();
        assert_eq!(got, want);
        // The suffix is FNV-1a of the launch fingerprint, low 24 bits.
        assert_eq!(
            format!("{:06x}", fnv1a("cmd\0github-mcp-server\0stdio") & 0xff_ffff),
            "093e24"
        );
    }

    #[test]
    fn ids_are_stable_unique_and_independent_of_read_order() {
        let run = [
            run_group("mcp-server-time --tz UTC"),
            run_group("mcp-server-time --tz CET"),
        ];
        let first = ids_of(machine(), &run);
        assert_eq!(first, ids_of(machine(), &run), "same input, same ids");
        let unique: BTreeSet<&String> = first.iter().map(|(id, _)| id).collect();
        assert_eq!(unique.len(), first.len(), "{first:?}");
        assert!(
            first
                .iter()
                .any(|(id, _)| id == "process/mcp-server-time~e82f95")
        );
        assert!(
            first
                .iter()
                .any(|(id, _)| id == "process/mcp-server-time~ad9feb")
        );

        let n = machine().len();
        for order in [
            (0..n).rev().collect::<Vec<_>>(),
            (0..n).map(|i| (i + 4) % n).collect(),
            (0..n).map(|i| (i * 4) % n).collect(),
        ] {
            let mut slots: Vec<Option<Configured>> = machine().into_iter().map(Some).collect();
            let shuffled: Vec<Configured> =
                order.iter().map(|&i| slots[i].take().unwrap()).collect();
            assert_eq!(ids_of(shuffled, &run), first, "order {order:?}");
        }
    }

    #[test]
    fn a_collision_hashes_every_colliding_id_and_nothing_else() {
        let seeds = [
            ("cursor/x".to_string(), "fp-a"),
            ("cursor/y".to_string(), "fp-b"),
            ("cursor/x".to_string(), "fp-c"),
            ("process/x".to_string(), "fp-d"),
            ("cursor/x".to_string(), "fp-e"),
        ];
        let h = |fp: &str| format!("{:06x}", fnv1a(fp) & 0xff_ffff);
        assert_eq!(
            assign_ids(&seeds),
            [
                format!("cursor/x~{}", h("fp-a")),
                "cursor/y".to_string(),
                format!("cursor/x~{}", h("fp-c")),
                "process/x".to_string(),
                format!("cursor/x~{}", h("fp-e")),
            ]
        );
        // Each id depends only on its own seed and the set of bases.
        let mut rev = seeds.to_vec();
        rev.reverse();
        let mut back = assign_ids(&rev);
        back.reverse();
        assert_eq!(back, assign_ids(&seeds));
        assert!(assign_ids(&[]).is_empty());
    }

    #[test]
    fn names_are_made_one_path_segment() {
        assert_eq!(base_id("cursor", "my server/v2"), "cursor/my-server-v2");
        assert_eq!(base_id("cursor", "a\tb\\c"), "cursor/a-b-c");
        assert_eq!(base_id("cursor", ""), "cursor/unnamed");
        assert_eq!(base_id("process", "héllo~1.x"), "process/héllo~1.x");
    }

    #[test]
    fn aliases_are_sorted_distinct_and_never_the_id() {
        let groups = group_configured(vec![
            stdio("cursor", "/h/b.json", "z", "mcp-a"),
            stdio("claude-code", "/h/.claude.json", "x", "mcp-a"),
            stdio("claude-code", "/h/p/.mcp.json", "x", "mcp-a"),
            stdio("cursor", "/h/a.json", "z", "mcp-a"),
            stdio("cline", "/h/c.json", "x y", "mcp-a"),
        ]);
        assert_eq!(groups.len(), 1);
        let ids = server_ids(&groups, &[]);
        assert_eq!(ids, ["claude-code/x"]);
        assert_eq!(aliases(&ids[0], &groups[0]), ["cline/x-y", "cursor/z"]);
    }
}
