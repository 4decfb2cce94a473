//! Resolving the client table into concrete files, and reading each one into
//! a JSON value with a status that says exactly what happened.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::clients::{Base, Format};
use super::jsonc;

/// Files larger than this are not parsed (`too_large`). Real `~/.claude.json`
/// files reach a few MiB with history; nothing legitimate is near this.
pub const MAX_FILE_SIZE: u64 = 32 * 1024 * 1024;

/// `**` descends at most this many directories (plugin caches are shallow).
const MAX_GLOB_DEPTH: usize = 6;
/// A glob stops after this many matches, so a huge cache cannot stall a run.
const MAX_GLOB_MATCHES: usize = 2000;

/// The directories one user's configs are resolved against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    pub dir: PathBuf,
    /// Login name when known (`--all-users`).
    pub user: Option<String>,
    pub xdg_config: PathBuf,
    pub appdata: PathBuf,
    pub local_appdata: PathBuf,
    pub claude_config_dir: Option<PathBuf>,
    pub codex_home: PathBuf,
    pub opencode_config: Option<PathBuf>,
}

impl Home {
    /// Every location derived from the home directory alone, ignoring the
    /// environment (used for `--home` and `--all-users`).
    pub fn from_dir(dir: &Path) -> Home {
        Home {
            dir: dir.to_path_buf(),
            user: None,
            xdg_config: dir.join(".config"),
            appdata: dir.join("AppData").join("Roaming"),
            local_appdata: dir.join("AppData").join("Local"),
            claude_config_dir: None,
            codex_home: dir.join(".codex"),
            opencode_config: None,
        }
    }

    /// This user's locations, honouring `XDG_CONFIG_HOME`, `APPDATA`,
    /// `LOCALAPPDATA`, `CLAUDE_CONFIG_DIR`, `CODEX_HOME`, `OPENCODE_CONFIG`.
    /// `get` reads a variable (the process environment in production).
    pub fn from_env(get: &dyn Fn(&str) -> Option<String>) -> Option<Home> {
        let nonempty = |k: &str| get(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        let dir = nonempty("HOME")
            .or_else(|| nonempty("USERPROFILE"))
            .or_else(passwd_home)?;
        let mut h = Home::from_dir(&dir);
        if let Some(x) = nonempty("XDG_CONFIG_HOME") {
            h.xdg_config = x;
        }
        if let Some(x) = nonempty("APPDATA") {
            h.appdata = x;
        }
        if let Some(x) = nonempty("LOCALAPPDATA") {
            h.local_appdata = x;
        }
        if let Some(x) = nonempty("CODEX_HOME") {
            h.codex_home = x;
        }
        h.claude_config_dir = nonempty("CLAUDE_CONFIG_DIR");
        h.opencode_config = nonempty("OPENCODE_CONFIG");
        h.user = get("USER").or_else(|| get("USERNAME"));
        Some(h)
    }

    /// The directory a table entry's `rel` is joined to (`None`: not set).
    pub fn base(&self, base: Base) -> Option<PathBuf> {
        Some(match base {
            Base::Home => self.dir.clone(),
            Base::XdgConfig => self.xdg_config.clone(),
            Base::MacAppSupport => self.dir.join("Library").join("Application Support"),
            Base::AppData => self.appdata.clone(),
            Base::LocalAppData => self.local_appdata.clone(),
            Base::ClaudeConfigDir => self.claude_config_dir.clone()?,
            Base::CodexHome => self.codex_home.clone(),
            Base::OpencodeConfig => self.opencode_config.clone()?,
            Base::System | Base::ProjectRoot => return None,
        })
    }
}

#[cfg(unix)]
fn passwd_home() -> Option<PathBuf> {
    let uid = unsafe { libc::getuid() };
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd_entries(&passwd)
        .into_iter()
        .find(|e| e.uid == uid)
        .map(|e| e.home)
}

#[cfg(not(unix))]
fn passwd_home() -> Option<PathBuf> {
    None
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    pub name: String,
    pub uid: u32,
    pub home: PathBuf,
    pub shell: String,
}

/// Parse `/etc/passwd` text.
pub fn passwd_entries(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 7 {
                return None;
            }
            Some(PasswdEntry {
                name: f[0].to_string(),
                uid: f[2].parse().ok()?,
                home: PathBuf::from(f[5]),
                shell: f[6].to_string(),
            })
        })
        .collect()
}

/// Whether a user database entry is a person (or root) whose home is worth
/// scanning: uid 0, or a regular uid with a login shell.
fn is_login_user(e: &PasswdEntry) -> bool {
    let login = !e.shell.ends_with("nologin") && !e.shell.ends_with("false");
    e.uid == 0 || (1000..65534).contains(&e.uid) && login
}

/// Every user's home under `root` (`/` on this machine), for
/// `--all-users`: the login users of `<root>/etc/passwd`; on the machine
/// itself also every user the system's user database enumerates (NSS:
/// LDAP, SSSD, NIS users that are not in `/etc/passwd`); then every
/// directory in `<root>/home` and in the other directories holding those
/// homes, named through the user database by its owner (which finds a
/// directory user whose database does not enumerate, like SSSD's default).
pub fn user_homes(root: &Path) -> Vec<Home> {
    let on_host = root == Path::new("/");
    let mut entries: Vec<PasswdEntry> = fs::read_to_string(root.join("etc/passwd"))
        .map(|t| passwd_entries(&t))
        .unwrap_or_default();
    if on_host {
        entries.extend(nss::all_users());
    }
    let under_root = |p: &Path| -> PathBuf {
        if on_host {
            p.to_path_buf()
        } else {
            root.join(p.strip_prefix("/").unwrap_or(p))
        }
    };
    let mut homes: Vec<Home> = Vec::new();
    let mut seen: std::collections::HashSet<PathBuf> = std::collections::HashSet::new();
    let mut add = |dir: PathBuf, user: Option<String>, homes: &mut Vec<Home>| {
        if dir != root && !seen.contains(&dir) && dir.is_dir() {
            seen.insert(dir.clone());
            let mut h = Home::from_dir(&dir);
            h.user = user;
            homes.push(h);
        }
    };
    let mut home_parents: Vec<PathBuf> = vec![root.join("home")];
    for e in entries.iter().filter(|e| is_login_user(e)) {
        let dir = under_root(&e.home);
        if e.uid != 0 {
            if let Some(parent) = dir.parent() {
                if parent != root && !home_parents.iter().any(|p| p == parent) {
                    home_parents.push(parent.to_path_buf());
                }
            }
        }
        add(dir, Some(e.name.clone()), &mut homes);
    }
    let by_uid: std::collections::HashMap<u32, &str> =
        entries.iter().map(|e| (e.uid, e.name.as_str())).collect();
    for parent in &home_parents {
        let Ok(rd) = fs::read_dir(parent) else {
            continue;
        };
        let mut dirs: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
        dirs.sort();
        for d in dirs {
            let name = owner_name(&d, on_host, &by_uid)
                .or_else(|| d.file_name().and_then(|n| n.to_str()).map(str::to_string));
            add(d, name, &mut homes);
        }
    }
    homes
}

/// The login name of a directory's owner: from the user database on the
/// host (a lookup by uid works even where listing is off), else from the
/// root's passwd file.
#[cfg(unix)]
fn owner_name(
    dir: &Path,
    on_host: bool,
    by_uid: &std::collections::HashMap<u32, &str>,
) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let uid = fs::symlink_metadata(dir).ok()?.uid();
    if uid == 0 {
        // A root-owned directory in /home is shared, not root's home.
        return None;
    }
    by_uid
        .get(&uid)
        .map(|n| n.to_string())
        .or_else(|| if on_host { nss::name_of(uid) } else { None })
}

#[cfg(not(unix))]
fn owner_name(
    _dir: &Path,
    _on_host: bool,
    _by_uid: &std::collections::HashMap<u32, &str>,
) -> Option<String> {
    None
}

/// The system's user database through libc (NSS), not the files behind it.
#[cfg(unix)]
mod nss {
    use std::ffi::CStr;
    use std::path::PathBuf;

    use super::PasswdEntry;

    fn field(p: *const libc::c_char) -> String {
        if p.is_null() {
            return String::new();
        }
        // SAFETY: libc returns NUL-terminated strings valid until the next call.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }

    /// Every user the database enumerates. `getpwent` is not reentrant:
    /// discovery calls it from one thread, once.
    pub fn all_users() -> Vec<PasswdEntry> {
        let mut out = Vec::new();
        // SAFETY: setpwent/getpwent/endpwent iterate libc's static cursor;
        // each entry is copied out before the next call.
        unsafe {
            libc::setpwent();
            loop {
                let pw = libc::getpwent();
                if pw.is_null() || out.len() >= 1_000_000 {
                    break;
                }
                let pw = &*pw;
                out.push(PasswdEntry {
                    name: field(pw.pw_name),
                    uid: pw.pw_uid,
                    home: PathBuf::from(field(pw.pw_dir)),
                    shell: field(pw.pw_shell),
                });
            }
            libc::endpwent();
        }
        out
    }

    /// The login name of a uid.
    pub fn name_of(uid: u32) -> Option<String> {
        let mut buf = vec![0 as libc::c_char; 16 * 1024];
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: getpwuid_r writes into our buffers only.
        let rc =
            unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
        (rc == 0 && !result.is_null()).then(|| field(pwd.pw_name))
    }
}

#[cfg(not(unix))]
mod nss {
    pub fn all_users() -> Vec<super::PasswdEntry> {
        Vec::new()
    }
    pub fn name_of(_uid: u32) -> Option<String> {
        None
    }
}

/// Expand a table path (`*`, `**`, `{a,b}`) below `root` into existing paths.
/// A pattern without wildcards yields its single path whether or not it
/// exists (so absent files get an `absent` status).
pub fn expand(root: &Path, rel: &str) -> Vec<PathBuf> {
    if rel.is_empty() {
        return vec![root.to_path_buf()];
    }
    let comps: Vec<&str> = rel.split('/').collect();
    let literal = !rel.contains('*');
    let mut out = Vec::new();
    walk(root, &comps, literal, 0, &mut out);
    out.sort();
    out.dedup();
    out
}

fn alternatives(comp: &str) -> Vec<String> {
    match (comp.find('{'), comp.rfind('}')) {
        (Some(a), Some(b)) if a < b => comp[a + 1..b]
            .split(',')
            .map(|alt| format!("{}{}{}", &comp[..a], alt, &comp[b + 1..]))
            .collect(),
        _ => vec![comp.to_string()],
    }
}

fn walk(dir: &Path, comps: &[&str], literal: bool, depth: usize, out: &mut Vec<PathBuf>) {
    if out.len() >= MAX_GLOB_MATCHES {
        return;
    }
    let Some((first, rest)) = comps.split_first() else {
        out.push(dir.to_path_buf());
        return;
    };
    if *first == "**" {
        // Zero directories...
        walk(dir, rest, false, depth, out);
        // ...or one more, up to the depth bound.
        if depth < MAX_GLOB_DEPTH {
            for sub in list_dir(dir).into_iter().filter(|p| is_real_dir(p)) {
                walk(&sub, comps, false, depth + 1, out);
            }
        }
        return;
    }
    for alt in alternatives(first) {
        if alt.contains('*') {
            for entry in list_dir(dir) {
                let name = entry.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if glob_component(&alt, name) && (rest.is_empty() || is_real_dir(&entry)) {
                    walk(&entry, rest, false, depth, out);
                }
            }
        } else {
            let next = dir.join(&alt);
            // Literal paths are reported even when absent; under a wildcard
            // only what exists counts.
            if literal || rest.is_empty() && next.symlink_metadata().is_ok() || next.is_dir() {
                walk(&next, rest, literal, depth, out);
            }
        }
    }
}

/// Directories only, never following symlinks (no loops through caches).
fn is_real_dir(p: &Path) -> bool {
    p.symlink_metadata().is_ok_and(|m| m.is_dir())
}

fn list_dir(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    v.sort();
    v
}

/// `*` in one path component: any run of characters.
fn glob_component(pat: &str, name: &str) -> bool {
    let parts: Vec<&str> = pat.split('*').collect();
    if parts.len() == 1 {
        return pat == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || !name[first.len()..].ends_with(last) {
        return false;
    }
    if name.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

/// What reading a config file produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Found,
    Absent,
    Unreadable {
        reason: String,
    },
    ParseError {
        message: String,
        line: usize,
        column: usize,
    },
    TooLarge {
        size: u64,
        limit: u64,
    },
}

impl Status {
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Found => "found",
            Status::Absent => "absent",
            Status::Unreadable { .. } => "unreadable",
            Status::ParseError { .. } => "parse_error",
            Status::TooLarge { .. } => "too_large",
        }
    }
}

/// How an I/O error on a config file is reported: a missing file (or a
/// missing parent directory) is simply absent; anything else (permission, a
/// directory where a file should be, I/O failure) is unreadable, with why.
pub fn status_for_io_error(e: &io::Error) -> Status {
    match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => Status::Absent,
        io::ErrorKind::PermissionDenied => Status::Unreadable {
            reason: "permission denied".into(),
        },
        io::ErrorKind::IsADirectory => Status::Unreadable {
            reason: "is a directory".into(),
        },
        _ => Status::Unreadable {
            reason: e.to_string(),
        },
    }
}

/// Read and parse one file. Never panics, never fails: the outcome is data.
pub fn read(path: &Path, format: Format, limit: u64) -> (Status, Option<Value>) {
    // A FIFO or device planted at a config path must not hang or flood the
    // scan: only regular files are opened, and without blocking.
    match fs::metadata(path) {
        Err(e) => return (status_for_io_error(&e), None),
        Ok(m) if m.is_dir() => {
            return (
                Status::Unreadable {
                    reason: "is a directory".into(),
                },
                None,
            );
        }
        Ok(m) if !m.is_file() => {
            return (
                Status::Unreadable {
                    reason: "not a regular file".into(),
                },
                None,
            );
        }
        Ok(_) => {}
    }
    let mut oo = fs::OpenOptions::new();
    oo.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        oo.custom_flags(libc::O_NONBLOCK);
    }
    let file = match oo.open(path) {
        Ok(f) => f,
        Err(e) => return (status_for_io_error(&e), None),
    };
    let meta = match file.metadata() {
        Ok(m) => m,
        Err(e) => return (status_for_io_error(&e), None),
    };
    if meta.is_dir() {
        return (
            Status::Unreadable {
                reason: "is a directory".into(),
            },
            None,
        );
    }
    if meta.len() > limit {
        return (
            Status::TooLarge {
                size: meta.len(),
                limit,
            },
            None,
        );
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // `take` guards files that grow (or lie about their size, like /proc).
    if let Err(e) = file.take(limit + 1).read_to_end(&mut bytes) {
        return (status_for_io_error(&e), None);
    }
    if bytes.len() as u64 > limit {
        return (
            Status::TooLarge {
                size: bytes.len() as u64,
                limit,
            },
            None,
        );
    }
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let (line, column) = line_col(&e.as_bytes()[..e.utf8_error().valid_up_to()]);
            return (
                Status::ParseError {
                    message: "not valid UTF-8".into(),
                    line,
                    column,
                },
                None,
            );
        }
    };
    match parse(&text, format) {
        Ok(v) => (Status::Found, Some(v)),
        Err(st) => (st, None),
    }
}

fn line_col(prefix: &[u8]) -> (usize, usize) {
    let text = String::from_utf8_lossy(prefix);
    let line = text.matches('\n').count() + 1;
    let col = text.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Parse text in a format. An empty (or whitespace-only) document is a
/// valid, empty config: clients create such files and treat them as empty.
pub fn parse(text: &str, format: Format) -> Result<Value, Status> {
    if text.trim_start_matches('\u{feff}').trim().is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    match format {
        Format::Json => jsonc::parse(text).map_err(|e| Status::ParseError {
            message: e.message,
            line: e.line,
            column: e.column,
        }),
        Format::Yaml => serde_yaml::from_str::<Value>(text).map_err(|e| {
            let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
            Status::ParseError {
                message: strip_position(&e.to_string()),
                line,
                column,
            }
        }),
        Format::Toml => toml::from_str::<Value>(text).map_err(|e| {
            let (line, column) = e
                .span()
                .map_or((0, 0), |s| line_col(&text.as_bytes()[..s.start]));
            Status::ParseError {
                message: e.message().to_string(),
                line,
                column,
            }
        }),
    }
}

/// serde_yaml appends " at line L column C"; we report those separately.
fn strip_position(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn user_homes_under_a_root() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        for d in ["home/alice", "home/bob", "srv/people/carol", "var/svc"] {
            fs::create_dir_all(r.join(d)).unwrap();
        }
        fs::create_dir_all(r.join("etc")).unwrap();
        fs::write(
            r.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/bash\n\
             alice:x:4242:4242::/home/alice:/bin/bash\n\
             carol:x:4243:4243::/srv/people/carol:/bin/zsh\n\
             svc:x:999:999::/var/svc:/usr/sbin/nologin\n\
             gone:x:4244:4244::/home/gone:/bin/bash\n",
        )
        .unwrap();
        let got: Vec<(String, Option<String>)> = user_homes(r)
            .into_iter()
            .map(|h| {
                let rel = h.dir.strip_prefix(r).unwrap().display().to_string();
                (rel, h.user)
            })
            .collect();
        let s = |x: &str| x.to_string();
        assert_eq!(
            got,
            [
                (s("home/alice"), Some(s("alice"))),
                (s("srv/people/carol"), Some(s("carol"))),
                // Not in passwd: a directory in /home, named by itself (its
                // owner is not a user of this root).
                (s("home/bob"), Some(s("bob"))),
            ],
            "root's /root is absent, svc has no login shell, gone has no home"
        );
    }

    use super::*;

    #[test]
    fn io_errors_map_to_statuses() {
        let st = |k| status_for_io_error(&io::Error::from(k));
        assert_eq!(st(io::ErrorKind::NotFound), Status::Absent);
        assert_eq!(st(io::ErrorKind::NotADirectory), Status::Absent);
        assert_eq!(
            st(io::ErrorKind::PermissionDenied),
            Status::Unreadable {
                reason: "permission denied".into()
            }
        );
        assert_eq!(st(io::ErrorKind::PermissionDenied).as_str(), "unreadable");
    }

    #[test]
    fn glob_components() {
        assert!(glob_component("*.json", "a.json"));
        assert!(glob_component("*.config.toml", "work.config.toml"));
        assert!(!glob_component("*.config.toml", "config.toml"));
        assert!(glob_component("*", "x"));
        assert!(!glob_component("a*b", "ab-"));
        assert!(glob_component("a*b*c", "a1b2c"));
    }

    #[test]
    fn expand_globs_and_alternatives() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        fs::create_dir_all(r.join("p/cache/x/y")).unwrap();
        fs::write(r.join("p/cache/x/y/.mcp.json"), "{}").unwrap();
        fs::write(r.join("p/cache/.mcp.json"), "{}").unwrap();
        fs::create_dir_all(r.join("p/local")).unwrap();
        fs::write(r.join("p/local/mcp.json"), "{}").unwrap();
        let got = expand(r, "p/{cache,local}/**/{mcp.json,.mcp.json}");
        let rel: Vec<_> = got
            .iter()
            .map(|p| p.strip_prefix(r).unwrap().to_str().unwrap().to_string())
            .collect();
        assert_eq!(
            rel,
            [
                "p/cache/.mcp.json",
                "p/cache/x/y/.mcp.json",
                "p/local/mcp.json"
            ]
        );
        // A literal path is returned even if absent.
        assert_eq!(expand(r, "no/such.json"), vec![r.join("no/such.json")]);
        // A literal alternative list returns every candidate.
        assert_eq!(expand(r, "{a,b}.json").len(), 2);
        assert!(expand(r, "*.json").is_empty());
    }

    #[test]
    fn parse_errors_have_positions_in_every_format() {
        match parse("a: [1\nb: 2", Format::Yaml) {
            Err(Status::ParseError { line, .. }) => assert!(line >= 1),
            other => panic!("{other:?}"),
        }
        match parse("[x]\ny = \n", Format::Toml) {
            Err(Status::ParseError { line, column, .. }) => assert_eq!((line, column), (2, 5)),
            other => panic!("{other:?}"),
        }
        match parse("{\n  \"a\": ,\n}", Format::Json) {
            Err(Status::ParseError { line, column, .. }) => assert_eq!((line, column), (2, 8)),
            other => panic!("{other:?}"),
        }
        assert_eq!(parse("  \n", Format::Json), Ok(serde_json::json!({})));
    }

    #[test]
    fn read_reports_size_and_directories() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("big.json");
        fs::write(&f, "{\"a\": 1}").unwrap();
        assert_eq!(read(&f, Format::Json, 4).0.as_str(), "too_large");
        assert_eq!(read(&f, Format::Json, 100).0, Status::Found);
        assert_eq!(read(t.path(), Format::Json, 100).0.as_str(), "unreadable");
        assert_eq!(
            read(&t.path().join("nope"), Format::Json, 100).0,
            Status::Absent
        );
        fs::write(&f, [b'{', 0xff, b'}']).unwrap();
        assert_eq!(read(&f, Format::Json, 100).0.as_str(), "parse_error");
    }

    #[cfg(unix)]
    #[test]
    fn fifos_and_devices_do_not_hang() {
        let t = tempfile::tempdir().unwrap();
        let fifo = t.path().join("mcp.json");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        assert_eq!(
            read(&fifo, Format::Json, 100).0,
            Status::Unreadable {
                reason: "not a regular file".into()
            }
        );
        let link = t.path().join("zero.json");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        assert_eq!(read(&link, Format::Json, 100).0.as_str(), "unreadable");
    }

    #[test]
    fn env_overrides_and_defaults() {
        let env = |k: &str| match k {
            "HOME" => Some("/h".to_string()),
            "XDG_CONFIG_HOME" => Some("/x".to_string()),
            "CODEX_HOME" => Some("/c".to_string()),
            "CLAUDE_CONFIG_DIR" => Some(String::new()),
            _ => None,
        };
        let h = Home::from_env(&env).unwrap();
        assert_eq!(h.xdg_config, PathBuf::from("/x"));
        assert_eq!(h.codex_home, PathBuf::from("/c"));
        assert_eq!(h.claude_config_dir, None, "empty means unset");
        assert_eq!(h.appdata, PathBuf::from("/h/AppData/Roaming"));
        let d = Home::from_dir(Path::new("/h"));
        assert_eq!(
            d.base(Base::MacAppSupport).unwrap(),
            PathBuf::from("/h/Library/Application Support")
        );
    }

    #[test]
    fn passwd_parsing() {
        let e = passwd_entries(
            "root:x:0:0:root:/root:/bin/bash\n# c\nbad\nal:x:1000:1000::/home/al:/bin/sh\n",
        );
        assert_eq!(e.len(), 2);
        assert_eq!(e[1].name, "al");
        assert_eq!(e[1].home, PathBuf::from("/home/al"));
    }
}
