//! What a command line really runs: launchers (`npx -y`, `uvx --from`,
//! `cmd /c`, `sh -c`, `node path`, `python -m`, `docker run`, `assay monitor
//! --`) are unwrapped down to the server itself, which yields a *key* used to
//! recognise MCP servers and to match running processes to configs.

/// The result of unwrapping a command line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Launch {
    /// What identifies the server: an npm/PyPI package name without version,
    /// a docker image without tag, a module, a script path, or the program's
    /// basename.
    pub key: String,
    /// Arguments given to the server itself.
    pub args: Vec<String>,
    /// Launchers peeled off, outermost first (e.g. `["cmd", "npx"]`).
    pub launchers: Vec<&'static str>,
    /// Wrapped by `assay monitor ... --`.
    pub monitor_wrapped: bool,
    /// The package/image as written, with its version or tag, when launched
    /// through a package runner (for the pinning check).
    pub package_spec: Option<String>,
    /// The key is a script path as written (relative ones can be resolved).
    pub script: bool,
    /// A working directory named on the command line (`uv --directory D`).
    pub workdir: Option<String>,
}

impl Launch {
    /// Make a relative script key absolute against `base` (the entry's
    /// `cwd`, or a process's working directory), so `python server.py` in
    /// two directories are two servers and match their own configs.
    pub fn resolve_relative(&mut self, base: &str) {
        if !self.script
            || is_absolute(&self.key)
            || base.is_empty()
            || self.key.contains("node_modules")
        {
            return;
        }
        let joined = format!("{}/{}", base.trim_end_matches(['/', '\\']), self.key);
        self.key = normalize_path(&joined);
    }

    /// Whether the key looks like an MCP server.
    pub fn looks_like_mcp(&self) -> bool {
        looks_like_mcp(&self.key)
    }

    /// The display name a running server gets when no config names it.
    pub fn short_name(&self) -> String {
        let k = self.key.trim_end_matches('/');
        let last = k.rsplit(['/', '\\']).next().unwrap_or(k);
        let last = strip_ext(last);
        if matches!(last, "index" | "main" | "server" | "cli" | "__main__") {
            // `/x/weather-mcp/build/index.js` -> `weather-mcp`
            let mut comps = k.rsplit(['/', '\\']).skip(1);
            if let Some(dir) =
                comps.find(|c| !matches!(*c, "build" | "dist" | "src" | "lib" | "bin" | "out"))
            {
                return dir.to_string();
            }
        }
        last.to_string()
    }
}

/// `mcp` as a word in any part of the key: `mcp-server-x`, `x-mcp`,
/// `@modelcontextprotocol/server-x`, docker `mcp/x`, `fastmcp`, `mcp_x`.
pub fn looks_like_mcp(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    if k.contains("@modelcontextprotocol/") || k.contains("modelcontextprotocol") {
        return true;
    }
    k.split(|c: char| !c.is_ascii_alphanumeric()).any(|seg| {
        seg == "mcp" || seg.starts_with("mcp") && seg.len() <= 10 || seg.ends_with("mcp")
    })
}

fn basename(s: &str) -> &str {
    s.rsplit(['/', '\\']).next().unwrap_or(s)
}

fn strip_ext(s: &str) -> &str {
    for ext in [
        ".exe", ".cmd", ".bat", ".ps1", ".js", ".mjs", ".cjs", ".ts", ".py", ".sh",
    ] {
        // `get`: the cut may fall inside a multi-byte character.
        if s.len() > ext.len()
            && s.get(s.len() - ext.len()..)
                .is_some_and(|t| t.eq_ignore_ascii_case(ext))
        {
            return &s[..s.len() - ext.len()];
        }
    }
    s
}

/// The program name as a launcher sees it: basename, lower case, no `.exe`.
pub fn program_name(s: &str) -> String {
    let b = basename(s).to_ascii_lowercase();
    for ext in [".exe", ".cmd", ".bat"] {
        if let Some(x) = b.strip_suffix(ext) {
            return x.to_string();
        }
    }
    b
}

/// Split a shell command string into words (quotes and backslashes, no
/// expansion). Good enough to see what `sh -c '...'` runs.
pub fn shell_split(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            // Outside quotes a backslash escapes only what a shell would
            // need escaped; elsewhere it is a Windows path separator.
            (None, '\\') => {
                in_word = true;
                match chars.clone().next() {
                    Some(n) if n.is_whitespace() || matches!(n, '\'' | '"' | '\\') => {
                        cur.push(n);
                        chars.next();
                    }
                    _ => cur.push('\\'),
                }
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, ';' | '&' | '|') => break, // only the first command matters
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

/// Strip a version from a package spec: `@scope/x@1.2` -> `@scope/x`,
/// `pkg==1.0` / `pkg[extra]>=2` -> `pkg`, `img:tag` / `img@sha256:..` -> `img`.
fn package_name(spec: &str, kind: PkgKind) -> String {
    match kind {
        PkgKind::Npm => {
            let (scope, rest) = if let Some(r) = spec.strip_prefix('@') {
                match r.split_once('/') {
                    Some((s, n)) => (format!("@{s}/"), n),
                    None => (String::new(), spec),
                }
            } else {
                (String::new(), spec)
            };
            let name = rest.split('@').next().unwrap_or(rest);
            format!("{scope}{name}")
        }
        PkgKind::Python => {
            let end = spec
                .find(['=', '<', '>', '~', '!', '[', '@', ';', ' '])
                .unwrap_or(spec.len());
            spec[..end].to_string()
        }
        PkgKind::Image => {
            let no_digest = spec.split('@').next().unwrap_or(spec);
            // A ':' after the last '/' is a tag; before it, a registry port.
            match no_digest.rfind(':') {
                Some(i) if !no_digest[i..].contains('/') => no_digest[..i].to_string(),
                _ => no_digest.to_string(),
            }
        }
    }
}

#[derive(Clone, Copy)]
enum PkgKind {
    Npm,
    Python,
    Image,
}

/// Whether a package spec as written pins a version.
pub fn is_pinned(spec: &str, launcher: &str) -> bool {
    match launcher {
        "npx" | "npm" | "pnpm" | "yarn" | "bunx" => {
            let rest = spec
                .strip_prefix('@')
                .map_or(spec, |r| r.split_once('/').map_or(r, |x| x.1));
            match rest.split_once('@') {
                Some((_, v)) => {
                    !v.is_empty()
                        && v != "latest"
                        && v.chars().next().is_some_and(|c| c.is_ascii_digit())
                }
                None => false,
            }
        }
        "uvx" | "uv" | "pipx" => {
            spec.contains("==") || spec.contains('@') && !spec.ends_with("@latest")
        }
        "docker" | "podman" => {
            if spec.contains("@sha256:") {
                return true;
            }
            let last = spec.rsplit('/').next().unwrap_or(spec);
            match last.split_once(':') {
                Some((_, tag)) => tag != "latest",
                None => false,
            }
        }
        _ => true,
    }
}

/// Skip flags of a launcher; `with_value` lists flags that take a separate
/// value. Returns the index of the first positional argument.
fn skip_flags(argv: &[String], mut i: usize, with_value: &[&str]) -> usize {
    while i < argv.len() {
        let a = argv[i].as_str();
        if a == "--" {
            return i + 1;
        }
        if !a.starts_with('-') || a == "-" {
            return i;
        }
        if !a.contains('=') && with_value.contains(&a) {
            i += 2;
        } else {
            i += 1;
        }
    }
    i
}

/// Value of `--flag X` or `--flag=X` in argv[from..to].
fn flag_value(argv: &[String], from: usize, to: usize, names: &[&str]) -> Option<String> {
    let mut i = from;
    while i < to.min(argv.len()) {
        let a = &argv[i];
        for n in names {
            if a == n {
                return argv.get(i + 1).cloned();
            }
            if let Some(v) = a.strip_prefix(n).and_then(|r| r.strip_prefix('=')) {
                return Some(v.to_string());
            }
        }
        i += 1;
    }
    None
}

const UV_VALUE_FLAGS: &[&str] = &[
    "--with",
    "--directory",
    "--project",
    "--python",
    "-p",
    "--env-file",
    "--package",
    "--extra",
    "--group",
    "--cache-dir",
    "--config-file",
];

fn has_script_ext(s: &str) -> bool {
    let l = s.to_ascii_lowercase();
    [".py", ".js", ".mjs", ".cjs", ".ts"]
        .iter()
        .any(|e| l.ends_with(e))
}

const DOCKER_VALUE_FLAGS: &[&str] = &[
    "-e",
    "--env",
    "--env-file",
    "-v",
    "--volume",
    "--mount",
    "--name",
    "-p",
    "--publish",
    "--network",
    "--net",
    "-w",
    "--workdir",
    "-u",
    "--user",
    "--entrypoint",
    "-l",
    "--label",
    "--platform",
    "--pull",
    "--cpus",
    "-m",
    "--memory",
    "--add-host",
    "--cap-add",
    "--cap-drop",
    "--security-opt",
    "--tmpfs",
    "--device",
    "-h",
    "--hostname",
    "--restart",
    "--runtime",
    "--ipc",
    "--pid",
    "--uts",
    "--log-driver",
    "--log-opt",
    "--ulimit",
    "--dns",
    "--gpus",
    "--init-path",
    "--shm-size",
    "--stop-signal",
    "--label-file",
    "--cidfile",
];

/// Unwrap a command line (command followed by its arguments).
pub fn analyze(argv: &[String]) -> Launch {
    let mut l = analyze_depth(argv, 0);
    if let Some(w) = l.workdir.clone() {
        l.resolve_relative(&w);
    }
    l
}

fn is_absolute(p: &str) -> bool {
    p.starts_with('/') || p.starts_with('\\') || p.as_bytes().get(1) == Some(&b':')
}

/// Lexical `.`/`..` removal (no filesystem access: the path may not exist here).
fn normalize_path(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in p.split(['/', '\\']) {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    let body = out.join("/");
    if p.starts_with('/') {
        format!("/{body}")
    } else {
        body
    }
}

fn analyze_depth(argv: &[String], depth: usize) -> Launch {
    let mut l = Launch::default();
    // A process that rewrote its title (node's process.title) shows as one
    // string with spaces: split it back into words.
    let split;
    let argv =
        if argv.len() == 1 && argv[0].contains(' ') && !std::path::Path::new(&argv[0]).exists() {
            split = shell_split(&argv[0]);
            &split[..]
        } else {
            argv
        };
    let mut i = 0;
    while i < argv.len() {
        let prog = program_name(&argv[i]);
        let rest = |j: usize| argv.get(j..).map(<[String]>::to_vec).unwrap_or_default();
        match prog.as_str() {
            "exec" | "nohup" | "time" | "nice" | "setsid" => {
                i = skip_flags(argv, i + 1, &["-n", "-a"]);
                continue;
            }
            "env" => {
                i += 1;
                while i < argv.len() && (argv[i].contains('=') || argv[i].starts_with('-')) {
                    if argv[i] == "-u" {
                        i += 1;
                    }
                    i += 1;
                }
                continue;
            }
            "cmd"
                if argv.get(i + 1).is_some_and(|a| {
                    a.eq_ignore_ascii_case("/c") || a.eq_ignore_ascii_case("/k")
                }) =>
            {
                l.launchers.push("cmd");
                i += 2;
                if argv.len() == i + 1 && argv[i].contains(' ') {
                    return merge(l, analyze_depth(&shell_split(&argv[i]), depth + 1));
                }
                continue;
            }
            "sh" | "bash" | "zsh" | "dash" | "fish" | "powershell" | "pwsh" if depth < 4 => {
                let c = argv[i + 1..].iter().position(|a| {
                    a == "-c" || a == "-lc" || a == "-ic" || a.eq_ignore_ascii_case("-command")
                });
                if let Some(c) = c {
                    if let Some(script) = argv.get(i + 1 + c + 1) {
                        l.launchers.push("sh");
                        return merge(l, analyze_depth(&shell_split(script), depth + 1));
                    }
                }
                // `bash script.sh`: the script is the server.
                let j = skip_flags(argv, i + 1, &[]);
                if j < argv.len() {
                    l.launchers.push("sh");
                    l.key = argv[j].clone();
                    l.args = rest(j + 1);
                    return l;
                }
            }
            "assay" if argv.get(i + 1).is_some_and(|a| a == "monitor") => {
                if let Some(d) = argv[i + 2..].iter().position(|a| a == "--") {
                    l.monitor_wrapped = true;
                    l.launchers.push("assay-monitor");
                    i += 2 + d + 1;
                    continue;
                }
            }
            "npx" | "bunx" | "pnpx" => {
                l.launchers.push("npx");
                return npm_like(l, argv, i + 1);
            }
            "npm" | "pnpm" | "yarn" | "bun"
                if argv
                    .get(i + 1)
                    .is_some_and(|a| matches!(a.as_str(), "exec" | "x" | "dlx")) =>
            {
                l.launchers.push("npx");
                return npm_like(l, argv, i + 2);
            }
            "uvx" => {
                l.launchers.push("uvx");
                return uv_like(l, argv, i + 1);
            }
            "uv" => {
                let j = skip_flags(argv, i + 1, UV_VALUE_FLAGS);
                match argv.get(j).map(String::as_str) {
                    Some("tool") if argv.get(j + 1).is_some_and(|a| a == "run") => {
                        l.launchers.push("uvx");
                        return uv_like(l, argv, j + 2);
                    }
                    Some("run") => {
                        l.launchers.push("uv");
                        let end = skip_flags(argv, j + 1, UV_VALUE_FLAGS);
                        l.workdir = flag_value(argv, i + 1, end, &["--directory", "--project"]);
                        i = end;
                        continue;
                    }
                    _ => {}
                }
            }
            "pipx" if argv.get(i + 1).is_some_and(|a| a == "run") => {
                l.launchers.push("pipx");
                let j = skip_flags(
                    argv,
                    i + 2,
                    &["--spec", "--python", "--pip-args", "--index-url"],
                );
                let spec = flag_value(argv, i + 2, j, &["--spec"]).or_else(|| argv.get(j).cloned());
                if let Some(spec) = spec {
                    l.key = package_name(&spec, PkgKind::Python);
                    l.package_spec = Some(spec);
                }
                l.args = rest(j + 1);
                return l;
            }
            p if is_runtime(p) => {
                if let Some(done) = runtime(&l, argv, i, p) {
                    return done;
                }
            }
            _ => {}
        }
        if has_script_ext(&argv[i]) {
            set_script(&mut l, &argv[i]);
        } else {
            l.key = strip_ext(basename(&argv[i])).to_string();
        }
        l.args = rest(i + 1);
        return l;
    }
    l
}

/// Programs whose first operand is the server: interpreters (`node x.js`,
/// `python -m x`), `docker run IMAGE`, `java -jar X`.
fn is_runtime(prog: &str) -> bool {
    matches!(
        prog,
        "node" | "nodejs" | "bun" | "deno" | "tsx" | "ts-node" | "docker" | "podman" | "java"
    ) || prog.starts_with("python")
        || prog == "py"
}

/// The launch of a runtime at `argv[i]` (see [`is_runtime`]); `None` when
/// it is not running a server that way (`docker ps`, `java` without
/// `-jar`): the caller then takes the program itself as the key.
fn runtime(l: &Launch, argv: &[String], i: usize, prog: &str) -> Option<Launch> {
    let mut l = l.clone();
    let rest = |j: usize| argv.get(j..).map(<[String]>::to_vec).unwrap_or_default();
    match prog {
        "node" | "nodejs" | "bun" | "deno" | "tsx" | "ts-node" => {
            l.launchers.push("node");
            let mut j = i + 1;
            if matches!(prog, "deno" | "bun") && argv.get(j).is_some_and(|a| a == "run") {
                j += 1;
            }
            j = skip_flags(
                argv,
                j,
                &[
                    "-r",
                    "--require",
                    "--import",
                    "--loader",
                    "--experimental-loader",
                    "--env-file",
                    "--inspect-port",
                    "--title",
                    "--conditions",
                    "-C",
                ],
            );
            if let Some(script) = argv.get(j) {
                set_script(&mut l, script);
                l.args = rest(j + 1);
            }
            return Some(l);
        }
        p if p.starts_with("python") || p == "py" => {
            l.launchers.push("python");
            let j = skip_flags(argv, i + 1, &["-X", "-W", "-m", "-c"]);
            if let Some(m) = flag_value(argv, i + 1, j, &["-m"]) {
                let pos = argv
                    .iter()
                    .skip(i + 1)
                    .position(|a| a == "-m")
                    .map_or(j, |p| i + 1 + p + 2);
                l.key = m;
                l.args = rest(pos);
            } else if let Some(script) = argv.get(j) {
                set_script(&mut l, script);
                l.args = rest(j + 1);
            }
            return Some(l);
        }
        "docker" | "podman" => {
            if argv.get(i + 1).is_some_and(|a| a == "mcp") {
                l.launchers.push("docker");
                l.key = "docker-mcp-gateway".into();
                l.args = rest(i + 2);
                return Some(l);
            }
            if argv.get(i + 1).is_some_and(|a| a == "run") {
                l.launchers.push("docker");
                let j = skip_flags(argv, i + 2, DOCKER_VALUE_FLAGS);
                if let Some(image) = argv.get(j) {
                    l.key = package_name(image, PkgKind::Image);
                    l.package_spec = Some(image.clone());
                    l.args = rest(j + 1);
                }
                return Some(l);
            }
        }
        "java" => {
            if let Some(jar) = flag_value(argv, i + 1, argv.len(), &["-jar"]) {
                l.launchers.push("java");
                l.key = strip_ext(basename(&jar))
                    .trim_end_matches(".jar")
                    .to_string();
                let pos = argv
                    .iter()
                    .position(|a| a == "-jar")
                    .map_or(argv.len(), |p| p + 2);
                l.args = rest(pos);
                return Some(l);
            }
        }
        _ => {}
    }
    None
}

fn merge(mut outer: Launch, inner: Launch) -> Launch {
    outer.launchers.extend(inner.launchers);
    outer.monitor_wrapped |= inner.monitor_wrapped;
    outer.key = inner.key;
    outer.args = inner.args;
    outer.package_spec = inner.package_spec;
    outer.script = inner.script;
    outer.workdir = inner.workdir.or(outer.workdir);
    outer
}

fn npm_like(mut l: Launch, argv: &[String], from: usize) -> Launch {
    let j = skip_flags(
        argv,
        from,
        &[
            "-p",
            "--package",
            "-c",
            "--call",
            "--cache",
            "--registry",
            "--userconfig",
        ],
    );
    let pkg = flag_value(argv, from, j, &["-p", "--package"]);
    let spec = pkg.or_else(|| argv.get(j).cloned());
    if let Some(spec) = spec {
        l.key = package_name(&spec, PkgKind::Npm);
        l.package_spec = Some(spec);
    }
    l.args = argv
        .get(j + 1..)
        .map(<[String]>::to_vec)
        .unwrap_or_default();
    l
}

fn uv_like(mut l: Launch, argv: &[String], from: usize) -> Launch {
    let j = skip_flags(
        argv,
        from,
        &[
            "--from",
            "--with",
            "--python",
            "-p",
            "--index-url",
            "--index",
            "--extra-index-url",
            "--with-requirements",
            "--constraint",
            "-c",
        ],
    );
    let spec = flag_value(argv, from, j, &["--from"]).or_else(|| argv.get(j).cloned());
    if let Some(spec) = spec {
        l.key = if spec.starts_with("git+") || spec.contains("://") {
            // `--from git+https://.../x.git` names the repo; the command is clearer.
            argv.get(j).cloned().unwrap_or(spec.clone())
        } else {
            package_name(&spec, PkgKind::Python)
        };
        l.package_spec = Some(spec);
    }
    l.args = argv
        .get(j + 1..)
        .map(<[String]>::to_vec)
        .unwrap_or_default();
    l
}

/// Key a launch by the script it runs. A script inside `node_modules` is
/// keyed by its package, which is a name, not a path: it is never resolved
/// against a working directory (`node .../node_modules/@s/x/dist/index.js`
/// run from `/tmp` is `@s/x`, not `/tmp/@s/x`).
fn set_script(l: &mut Launch, script: &str) {
    l.key = script_key(script);
    l.script = !script.replace('\\', "/").contains("node_modules/");
}

/// A script path's key: the npm package it lives in (`.../node_modules/@s/x/...`
/// -> `@s/x`; `.../node_modules/.bin/x` -> `x`), else the path as written.
pub fn script_key(script: &str) -> String {
    let norm = script.replace('\\', "/");
    if let Some(i) = norm.rfind("node_modules/") {
        let after = &norm[i + "node_modules/".len()..];
        let mut parts = after.split('/');
        let first = parts.next().unwrap_or("");
        if first == ".bin" {
            return strip_ext(parts.next().unwrap_or("")).to_string();
        }
        if first.starts_with('@') {
            if let Some(second) = parts.next() {
                return format!("{first}/{second}");
            }
        }
        return first.to_string();
    }
    norm
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(cmd: &str) -> Launch {
        analyze(&shell_split(cmd))
    }

    #[test]
    fn command_line_vectors() {
        let cases: &[(&str, &str, &[&str], bool)] = &[
            (
                "npx -y @modelcontextprotocol/server-filesystem /tmp",
                "@modelcontextprotocol/server-filesystem",
                &["/tmp"],
                true,
            ),
            (
                "npx --yes @modelcontextprotocol/server-github@2025.1.0",
                "@modelcontextprotocol/server-github",
                &[],
                true,
            ),
            (
                "npx -p @playwright/mcp@0.0.30 playwright-mcp --headless",
                "@playwright/mcp",
                &["--headless"],
                true,
            ),
            (
                "npm exec @modelcontextprotocol/server-memory",
                "@modelcontextprotocol/server-memory",
                &[],
                true,
            ),
            (
                "pnpm dlx mcp-remote https://x.example/sse",
                "mcp-remote",
                &["https://x.example/sse"],
                true,
            ),
            ("bunx some-mcp", "some-mcp", &[], true),
            ("uvx mcp-server-fetch", "mcp-server-fetch", &[], true),
            (
                "uvx --from mcp-server-git==0.6.2 mcp-server-git --repository .",
                "mcp-server-git",
                &["--repository", "."],
                true,
            ),
            (
                "uv tool run --python 3.12 mcp-server-time",
                "mcp-server-time",
                &[],
                true,
            ),
            (
                "uv run --with fastmcp fastmcp run server.py",
                "fastmcp",
                &["run", "server.py"],
                true,
            ),
            (
                "uv --directory /srv/weather run weather.py",
                "/srv/weather/weather.py",
                &[],
                false,
            ),
            (
                "uv --directory /srv/mcp-weather run server.py --v",
                "/srv/mcp-weather/server.py",
                &["--v"],
                true,
            ),
            (
                "pipx run --spec mcp-obsidian==1.0 mcp-obsidian",
                "mcp-obsidian",
                &[],
                true,
            ),
            (
                "cmd /c npx -y @modelcontextprotocol/server-everything",
                "@modelcontextprotocol/server-everything",
                &[],
                true,
            ),
            (
                "C:\\Windows\\System32\\cmd.exe /C \"npx -y tavily-mcp@0.1.4\"",
                "tavily-mcp",
                &[],
                true,
            ),
            (
                "node /home/u/.npm/_npx/1a2b/node_modules/.bin/mcp-server-filesystem /tmp",
                "mcp-server-filesystem",
                &["/tmp"],
                true,
            ),
            (
                "node --enable-source-maps /usr/lib/node_modules/@modelcontextprotocol/server-github/dist/index.js",
                "@modelcontextprotocol/server-github",
                &[],
                true,
            ),
            (
                "/usr/bin/node /opt/mcp/weather/build/index.js --port 3",
                "/opt/mcp/weather/build/index.js",
                &["--port", "3"],
                true,
            ),
            (
                "python3 -u -m mcp_server_sqlite --db x.db",
                "mcp_server_sqlite",
                &["--db", "x.db"],
                true,
            ),
            ("python -m http.server", "http.server", &[], false),
            (
                "/usr/bin/python3.12 /opt/tools/server.py",
                "/opt/tools/server.py",
                &[],
                false,
            ),
            (
                "docker run -i --rm -e GITHUB_TOKEN mcp/github",
                "mcp/github",
                &[],
                true,
            ),
            (
                "docker run --rm -i -v /data:/data --name x ghcr.io/github/github-mcp-server:v1.2 stdio",
                "ghcr.io/github/github-mcp-server",
                &["stdio"],
                true,
            ),
            (
                "docker run -i localhost:5000/acme/tools",
                "localhost:5000/acme/tools",
                &[],
                false,
            ),
            (
                "docker mcp gateway run",
                "docker-mcp-gateway",
                &["gateway", "run"],
                true,
            ),
            (
                "sh -c 'exec mcp-server-test --x 1'",
                "mcp-server-test",
                &["--x", "1"],
                true,
            ),
            (
                "bash -lc \"npx -y figma-mcp && echo done\"",
                "figma-mcp",
                &[],
                true,
            ),
            (
                "env FOO=1 BAR=2 mcp-server-kubernetes",
                "mcp-server-kubernetes",
                &[],
                true,
            ),
            (
                "/usr/local/bin/mcp-server-fetch",
                "mcp-server-fetch",
                &[],
                true,
            ),
            (
                "assay monitor --policy p.yaml -- npx -y @modelcontextprotocol/server-filesystem /",
                "@modelcontextprotocol/server-filesystem",
                &["/"],
                true,
            ),
            (
                "java -Xmx1g -jar /opt/x/jira-mcp.jar --debug",
                "jira-mcp",
                &["--debug"],
                true,
            ),
            (
                "deno run -A jsr:@x/mcp-tools",
                "jsr:@x/mcp-tools",
                &[],
                true,
            ),
            (
                "npm exec @modelcontextprotocol/server-filesystem /tmp/x",
                "@modelcontextprotocol/server-filesystem",
                &["/tmp/x"],
                true,
            ),
            ("claude mcp list", "claude", &["mcp", "list"], false),
            ("vim mcp.json", "vim", &["mcp.json"], false),
        ];
        for (cmd, key, args, mcp) in cases {
            let l = a(cmd);
            assert_eq!(l.key, *key, "key of {cmd}");
            assert_eq!(
                l.args,
                args.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                "args of {cmd}"
            );
            assert_eq!(l.looks_like_mcp(), *mcp, "mcp? {cmd}");
        }
    }

    #[test]
    fn retitled_processes_are_split_back() {
        let l = analyze(&["npm exec @modelcontextprotocol/server-filesystem /tmp".to_string()]);
        assert_eq!(l.key, "@modelcontextprotocol/server-filesystem");
        assert_eq!(l.args, ["/tmp"]);
    }

    #[test]
    fn relative_scripts_resolve_against_their_directory() {
        let l = a("uv --directory /srv/weather run weather.py");
        assert_eq!(l.key, "/srv/weather/weather.py");
        let l = a("uv --directory=/srv/x/ run ./sub/../server.py --v");
        assert_eq!((l.key.as_str(), l.args.len()), ("/srv/x/server.py", 1));
        let mut l = a("python server.py");
        assert_eq!(l.key, "server.py");
        l.resolve_relative("/opt/a");
        assert_eq!(l.key, "/opt/a/server.py");
        let mut l = a("node /abs/index.js");
        l.resolve_relative("/elsewhere");
        assert_eq!(l.key, "/abs/index.js");
        let mut l = a("npx -y @x/mcp");
        l.resolve_relative("/elsewhere");
        assert_eq!(l.key, "@x/mcp", "packages are not paths");
        // A script inside node_modules is its package, wherever it runs from.
        for cmd in [
            "node /usr/lib/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js /data",
            "node node_modules/@modelcontextprotocol/server-filesystem/dist/index.js /data",
            "node ../x/node_modules/.pnpm/@modelcontextprotocol+server-filesystem@1.0.0/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js /data",
        ] {
            let mut l = a(cmd);
            l.resolve_relative("/tmp");
            assert_eq!(l.key, "@modelcontextprotocol/server-filesystem", "{cmd}");
            assert!(!l.script, "{cmd}");
        }
        let win = [
            "C:\\nodejs\\node.exe",
            "C:\\npm\\node_modules\\@modelcontextprotocol\\server-filesystem\\dist\\index.js",
        ];
        let mut l = analyze(&win.map(String::from));
        l.resolve_relative("C:\\tmp");
        assert_eq!(l.key, "@modelcontextprotocol/server-filesystem");
        let mut l = a("node_modules/.bin/mcp-server-time.js");
        l.resolve_relative("/tmp");
        assert_eq!(l.key, "mcp-server-time");
    }

    #[test]
    fn monitor_wrapper_is_detected() {
        let l = a("/usr/local/bin/assay monitor --policy p.yaml -- mcp-server-x");
        assert!(l.monitor_wrapped);
        assert_eq!(l.key, "mcp-server-x");
        let l = a("assay monitor --policy p.yaml");
        assert!(!l.monitor_wrapped);
        assert_eq!(l.key, "assay");
    }

    #[test]
    fn pinning() {
        assert!(!is_pinned("@modelcontextprotocol/server-github", "npx"));
        assert!(is_pinned(
            "@modelcontextprotocol/server-github@2025.1.0",
            "npx"
        ));
        assert!(!is_pinned("tavily-mcp@latest", "npx"));
        assert!(is_pinned("mcp-server-git==0.6.2", "uvx"));
        assert!(!is_pinned("mcp-server-git", "uvx"));
        assert!(!is_pinned("mcp/github", "docker"));
        assert!(!is_pinned("mcp/github:latest", "docker"));
        assert!(is_pinned("ghcr.io/x/y:v1", "docker"));
        assert!(is_pinned("mcp/github@sha256:abcd", "docker"));
        assert!(!is_pinned("localhost:5000/x", "docker"));
    }

    #[test]
    fn short_names() {
        assert_eq!(
            a("node /opt/weather-mcp/build/index.js").short_name(),
            "weather-mcp"
        );
        assert_eq!(
            a("npx -y @modelcontextprotocol/server-filesystem").short_name(),
            "server-filesystem"
        );
        assert_eq!(a("mcp-server-test").short_name(), "mcp-server-test");
    }

    #[test]
    fn mcp_words() {
        assert!(looks_like_mcp("fastmcp"));
        assert!(looks_like_mcp("mcp_server_sqlite"));
        assert!(looks_like_mcp("mcpo"));
        assert!(!looks_like_mcp("npm"));
        assert!(!looks_like_mcp("compact"));
    }
}
