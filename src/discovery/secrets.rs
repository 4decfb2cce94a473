//! Credentials in configs: recognised by the name they are stored under and
//! by the shapes of well-known tokens, and redacted before anything leaves
//! this module's caller. Nothing here ever returns a secret in full.

/// What kind of credential a value looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SecretKind {
    GitHub,
    GitLab,
    Anthropic,
    OpenAi,
    Aws,
    Slack,
    Stripe,
    Google,
    Npm,
    HuggingFace,
    Jwt,
    /// `Bearer xyz` / `Basic xyz` with a literal credential.
    Bearer,
    /// `scheme://user:password@host`.
    UrlPassword,
    /// A literal value stored under a credential-like name (`*_TOKEN`, `api_key`, ...).
    Named,
}

impl SecretKind {
    pub fn label(self) -> &'static str {
        match self {
            SecretKind::GitHub => "GitHub token",
            SecretKind::GitLab => "GitLab token",
            SecretKind::Anthropic => "Anthropic API key",
            SecretKind::OpenAi => "OpenAI API key",
            SecretKind::Aws => "AWS access key id",
            SecretKind::Slack => "Slack token",
            SecretKind::Stripe => "Stripe secret key",
            SecretKind::Google => "Google API key",
            SecretKind::Npm => "npm token",
            SecretKind::HuggingFace => "Hugging Face token",
            SecretKind::Jwt => "JSON Web Token",
            SecretKind::Bearer => "literal bearer/basic credential",
            SecretKind::UrlPassword => "password in URL",
            SecretKind::Named => "literal credential",
        }
    }
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

fn all(s: &str, f: impl Fn(char) -> bool) -> bool {
    s.chars().all(f)
}

fn alnum(c: char) -> bool {
    c.is_ascii_alphanumeric()
}

/// The kind of a single token (a maximal run of `[A-Za-z0-9_.-]`), by shape.
pub fn token_kind(t: &str) -> Option<SecretKind> {
    let n = t.len();
    for p in ["ghp_", "gho_", "ghu_", "ghs_", "ghr_"] {
        if let Some(r) = t.strip_prefix(p) {
            if r.len() >= 30 && all(r, alnum) {
                return Some(SecretKind::GitHub);
            }
        }
    }
    if t.strip_prefix("github_pat_")
        .is_some_and(|r| r.len() >= 30 && all(r, |c| alnum(c) || c == '_'))
    {
        return Some(SecretKind::GitHub);
    }
    if t.strip_prefix("glpat-").is_some_and(|r| r.len() >= 20) {
        return Some(SecretKind::GitLab);
    }
    if t.starts_with("sk-ant-") && n >= 40 {
        return Some(SecretKind::Anthropic);
    }
    if let Some(r) = t.strip_prefix("sk-") {
        if n >= 32
            && all(r, |c| alnum(c) || c == '-' || c == '_')
            && r.chars().any(|c| c.is_ascii_digit())
        {
            return Some(SecretKind::OpenAi);
        }
    }
    for p in ["AKIA", "ASIA", "AGPA", "AIDA", "AROA", "ANPA"] {
        if let Some(r) = t.strip_prefix(p) {
            if r.len() == 16 && all(r, |c| c.is_ascii_uppercase() || c.is_ascii_digit()) {
                return Some(SecretKind::Aws);
            }
        }
    }
    for p in [
        "xoxb-", "xoxp-", "xoxa-", "xoxr-", "xoxs-", "xoxe-", "xapp-",
    ] {
        if t.starts_with(p) && n >= 20 {
            return Some(SecretKind::Slack);
        }
    }
    for p in ["sk_live_", "rk_live_", "sk_test_", "rk_test_"] {
        if t.strip_prefix(p)
            .is_some_and(|r| r.len() >= 16 && all(r, alnum))
        {
            return Some(SecretKind::Stripe);
        }
    }
    if t.strip_prefix("AIza").is_some_and(|r| r.len() == 35) {
        return Some(SecretKind::Google);
    }
    if t.strip_prefix("npm_")
        .is_some_and(|r| r.len() == 36 && all(r, alnum))
    {
        return Some(SecretKind::Npm);
    }
    if t.strip_prefix("hf_")
        .is_some_and(|r| r.len() >= 30 && all(r, alnum))
    {
        return Some(SecretKind::HuggingFace);
    }
    if t.starts_with("eyJ") {
        let parts: Vec<&str> = t.split('.').collect();
        if parts.len() == 3
            && parts[0].len() >= 10
            && parts[1].len() >= 10
            && parts[1].starts_with("eyJ")
        {
            return Some(SecretKind::Jwt);
        }
    }
    None
}

/// A value that stands for a secret rather than being one: `${env:X}`,
/// `${input:x}`, `$X`, `{env:X}`, `%X%`, `<your key>`, `your-api-key`...
pub fn is_placeholder(v: &str) -> bool {
    let mut t = v.trim();
    // `Bearer ${X}`: judge what follows the scheme.
    for scheme in ["Bearer ", "bearer ", "Basic ", "basic ", "token ", "Token "] {
        if let Some(rest) = t.strip_prefix(scheme) {
            t = rest.trim();
        }
    }
    let l = t.to_ascii_lowercase();
    t.contains("${")
        || t.starts_with('$')
            && t[1..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        || t.contains("{env:")
        || t.contains("{{")
        || t.starts_with('%') && t.ends_with('%') && t.len() > 2
        || t.starts_with('<') && t.ends_with('>')
        || l.starts_with("your")
        || l.contains("placeholder")
        || l.contains("changeme")
        || l.contains("xxxx")
        || l.contains("****")
        || l.starts_with("env:")
}

/// Whether a name (env var, header, flag, query parameter) says its value is
/// a credential.
pub fn is_secret_name(name: &str) -> bool {
    let n = name
        .trim_start_matches('-')
        .to_ascii_lowercase()
        .replace('-', "_");
    // Names that hold *where* a credential is, not the credential.
    for suffix in [
        "_path", "_file", "_url", "_uri", "_env", "_env_var", "_var", "_dir", "_id", "_name",
        "_type", "_header",
    ] {
        if n.ends_with(suffix) && !n.ends_with("_key_id") {
            return false;
        }
    }
    if n == "authorization" || n == "proxy_authorization" || n == "cookie" {
        return true;
    }
    let words = [
        "token",
        "secret",
        "password",
        "passwd",
        "apikey",
        "api_key",
        "access_key",
        "private_key",
        "credential",
        "bearer",
        "session_key",
        "client_secret",
    ];
    n.split('_').any(|w| {
        matches!(
            w,
            "token"
                | "secret"
                | "password"
                | "passwd"
                | "pwd"
                | "apikey"
                | "pat"
                | "credentials"
                | "credential"
                | "auth"
                | "bearer"
        )
    }) || words.iter().any(|w| n.contains(w))
        || n.ends_with("_key")
        || n == "key"
}

/// Classify a literal value stored under `name` (if any).
pub fn classify(name: Option<&str>, value: &str) -> Option<SecretKind> {
    if value.trim().is_empty() || is_placeholder(value) {
        return None;
    }
    if let Some(k) = scan_text(value).into_iter().next().map(|(_, _, k)| k) {
        return Some(k);
    }
    if let Some(name) = name {
        if is_secret_name(name)
            && looks_like_credential_value(value)
            && (is_strong_secret_name(name) || looks_random(value))
        {
            return Some(SecretKind::Named);
        }
    }
    None
}

/// Names that always hold a credential (`*PASSWORD*`, `*TOKEN*`, `*SECRET*`,
/// `*API_KEY*`, `Authorization`...), as opposed to weaker hints (`auth`,
/// `*_KEY`, `pat`) where the value must also look random.
fn is_strong_secret_name(name: &str) -> bool {
    let n = name
        .trim_start_matches('-')
        .to_ascii_lowercase()
        .replace('-', "_");
    n == "authorization"
        || [
            "password",
            "passwd",
            "token",
            "secret",
            "api_key",
            "apikey",
            "access_key",
            "private_key",
            "credential",
            "bearer",
        ]
        .iter()
        .any(|w| n.contains(w))
}

/// Has a digit, or mixes upper and lower case: unlike words such as
/// `oauth-device` or `enabled`.
fn looks_random(v: &str) -> bool {
    v.chars().any(|c| c.is_ascii_digit())
        || v.chars().any(|c| c.is_ascii_uppercase()) && v.chars().any(|c| c.is_ascii_lowercase())
}

/// Plausibly a credential: long enough, not a path, URL, boolean or number.
fn looks_like_credential_value(v: &str) -> bool {
    let t = v.trim();
    let l = t.to_ascii_lowercase();
    t.len() >= 8 && !t.contains(' ')
        || l.starts_with("bearer ")
        || l.starts_with("basic ")
        || l.starts_with("token ")
}

/// Every secret inside free text: (byte start, byte end, kind). Covers token
/// shapes, `Bearer x`/`Basic x`, URL passwords and secret-named `k=v` /
/// `k: v` pairs.
pub fn scan_text(text: &str) -> Vec<(usize, usize, SecretKind)> {
    let mut hits: Vec<(usize, usize, SecretKind)> = Vec::new();
    // Token shapes.
    let mut start = None;
    for (i, c) in text
        .char_indices()
        .chain(std::iter::once((text.len(), ' ')))
    {
        if is_token_char(c) && i < text.len() {
            start.get_or_insert(i);
        } else if let Some(s) = start.take() {
            if let Some(k) = token_kind(&text[s..i]) {
                hits.push((s, i, k));
            }
        }
    }
    // Cheap guards first: most strings (paths, package names) need none of
    // the scans below.
    let has_space = text.contains(' ');
    let has_url = text.contains("://");
    let has_pair = text.contains('=') || text.contains(':');
    if !has_space && !has_url && !has_pair {
        return finish(hits);
    }
    let lower = if has_space {
        text.to_ascii_lowercase()
    } else {
        String::new()
    };
    // `Bearer xyz`, `Basic xyz`.
    for scheme in ["bearer ", "basic ", "token "]
        .into_iter()
        .filter(|_| has_space)
    {
        let mut from = 0;
        while let Some(p) = lower[from..].find(scheme) {
            let s = from + p + scheme.len();
            let e = text[s..]
                .find(|c: char| c.is_whitespace() || c == '"' || c == '\'')
                .map_or(text.len(), |x| s + x);
            let v = &text[s..e];
            let word_start =
                from + p == 0 || !text.as_bytes()[from + p - 1].is_ascii_alphanumeric();
            if word_start && v.len() >= 8 && !is_placeholder(v) {
                hits.push((s, e, SecretKind::Bearer));
            }
            from = s;
        }
    }
    // URL userinfo passwords: scheme://user:pass@
    let mut from = 0;
    while let Some(p) = text[from..].find("://").filter(|_| has_url) {
        let s = from + p + 3;
        let auth_end = text[s..]
            .find(['/', '?', '#', ' ', '"'])
            .map_or(text.len(), |x| s + x);
        if let Some(at) = text[s..auth_end].rfind('@') {
            let userinfo = &text[s..s + at];
            if let Some(colon) = userinfo.find(':') {
                let ps = s + colon + 1;
                let pe = s + at;
                if pe > ps && !is_placeholder(&text[ps..pe]) {
                    hits.push((ps, pe, SecretKind::UrlPassword));
                }
            }
        }
        from = s;
    }
    // name=value / name: value pairs (query strings, `-e NAME=value`, headers in args).
    for (sep, min) in [('=', 8), (':', 8)].into_iter().filter(|_| has_pair) {
        let mut from = 0;
        while let Some(p) = text[from..].find(sep) {
            let at = from + p;
            let name_start = text[..at]
                .char_indices()
                .rev()
                .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
                .map_or(0, |(x, c)| x + c.len_utf8());
            let name = &text[name_start..at];
            let mut vs = at + 1;
            if sep == ':' {
                // `Authorization: Bearer x` is handled above; skip URL schemes.
                if text[vs..].starts_with("//") {
                    from = vs;
                    continue;
                }
                while text[vs..].starts_with(' ') {
                    vs += 1;
                }
            }
            let ve = text[vs..]
                .find(['&', ' ', '"', '\'', ',', ';', '#'])
                .map_or(text.len(), |x| vs + x);
            let v = &text[vs..ve];
            if !name.is_empty()
                && is_secret_name(name)
                && v.len() >= min
                && !is_placeholder(v)
                && !v.contains("://")
            {
                let lv = v.to_ascii_lowercase();
                if !matches!(lv.as_str(), "bearer" | "basic" | "token") {
                    hits.push((vs, ve, SecretKind::Named));
                }
            }
            from = at + 1;
        }
    }
    finish(hits)
}

/// Sort hits and merge overlaps.
fn finish(mut hits: Vec<(usize, usize, SecretKind)>) -> Vec<(usize, usize, SecretKind)> {
    if hits.len() < 2 {
        return hits;
    }
    hits.sort();
    // Merge overlaps, keeping the more specific kind (the earliest-sorted).
    let mut merged: Vec<(usize, usize, SecretKind)> = Vec::new();
    for h in hits {
        match merged.last_mut() {
            Some(last) if h.0 < last.1 => {
                last.1 = last.1.max(h.1);
                if h.2 < last.2 {
                    last.2 = h.2;
                }
            }
            _ => merged.push(h),
        }
    }
    merged
}

/// The redacted form of a secret: a short known prefix at most, never the
/// secret's body. `ghp_abc...` -> `ghp_****`; `Bearer x` -> `Bearer ****`.
pub fn redact(secret: &str) -> String {
    let l = secret.to_ascii_lowercase();
    for scheme in ["bearer ", "basic ", "token "] {
        if l.starts_with(scheme) {
            return format!("{}****", &secret[..scheme.len()]);
        }
    }
    for p in [
        "github_pat_",
        "ghp_",
        "gho_",
        "ghu_",
        "ghs_",
        "ghr_",
        "glpat-",
        "sk-ant-",
        "sk-proj-",
        "sk-",
        "xoxb-",
        "xoxp-",
        "xapp-",
        "sk_live_",
        "sk_test_",
        "rk_live_",
        "npm_",
        "hf_",
        "AKIA",
        "ASIA",
        "AIza",
        "eyJ",
    ] {
        if secret.starts_with(p) && secret.len() > p.len() + 8 {
            return format!("{p}****");
        }
    }
    "****".to_string()
}

/// `text` with every secret found by [`scan_text`] replaced by its redaction.
pub fn redact_text(text: &str) -> String {
    let hits = scan_text(text);
    if hits.is_empty() {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    for (s, e, _) in hits {
        out.push_str(&text[pos..s]);
        out.push_str(&redact(&text[s..e]));
        pos = e;
    }
    out.push_str(&text[pos..]);
    out
}

/// A value stored under `name`, made safe to show: fully redacted when it is
/// a credential (keeping a `Bearer ` scheme), else with embedded secrets
/// redacted.
pub fn redact_value(name: Option<&str>, value: &str) -> String {
    if !is_placeholder(value) && name.is_some_and(is_secret_name) && !value.trim().is_empty() {
        return redact(value);
    }
    redact_text(value)
}

/// Redact an argument vector: values following a secret-named flag
/// (`--api-key X`) and every embedded secret.
pub fn redact_args(args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut prev_secret_flag = false;
    for a in args {
        if prev_secret_flag && !a.starts_with('-') && !is_placeholder(a) {
            out.push(redact(a));
        } else {
            out.push(redact_text(a));
        }
        prev_secret_flag = a.starts_with('-') && !a.contains('=') && is_secret_name(a);
    }
    out
}

/// Secrets in an argument vector: (index, kind).
pub fn scan_args(args: &[String]) -> Vec<(usize, SecretKind)> {
    let mut out = Vec::new();
    for (i, a) in args.iter().enumerate() {
        if let Some(k) = scan_text(a).first().map(|h| h.2) {
            out.push((i, k));
        } else if i > 0 {
            let prev = &args[i - 1];
            if prev.starts_with('-') && !prev.contains('=') && is_secret_name(prev) {
                if let Some(k) = classify(Some(prev), a) {
                    out.push((i, k));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // Assembled at run time so this file holds no token-shaped literal.
    fn gh() -> String {
        format!("ghp_{}", "a1B2c3D4e5".repeat(4))
    }

    #[test]
    fn shapes() {
        let cases = [
            (gh(), SecretKind::GitHub),
            (
                format!("github_pat_{}", "11ABCDEFG0".repeat(4)),
                SecretKind::GitHub,
            ),
            (format!("glpat-{}", "x1y2z3".repeat(4)), SecretKind::GitLab),
            (
                format!("sk-ant-api03-{}", "Ab1".repeat(20)),
                SecretKind::Anthropic,
            ),
            (format!("sk-proj-{}", "Ab1".repeat(16)), SecretKind::OpenAi),
            (format!("AKIA{}", "ABCDEFGH12345678"), SecretKind::Aws),
            (format!("xoxb-{}", "1234-5678-abcdefgh"), SecretKind::Slack),
            (format!("sk_live_{}", "a1".repeat(12)), SecretKind::Stripe),
            (format!("AIza{}", "S".repeat(35)), SecretKind::Google),
            (format!("npm_{}", "a1".repeat(18)), SecretKind::Npm),
            (
                format!("hf_{}", "abcdef".repeat(6)),
                SecretKind::HuggingFace,
            ),
            (
                format!("eyJhbGciOiJI.eyJzdWIiOiIx.{}", "sig0123456"),
                SecretKind::Jwt,
            ),
        ];
        for (t, k) in cases {
            assert_eq!(token_kind(&t), Some(k), "{t}");
        }
        for t in [
            "ghp_short",
            "sk-abc",
            "AKIA123",
            "eyJhbGciOiJI",
            "hello",
            "sk-this-is-not-a-key-at-all-really",
        ] {
            assert_eq!(token_kind(t), None, "{t}");
        }
    }

    #[test]
    fn names_and_placeholders() {
        for n in [
            "GITHUB_TOKEN",
            "GITHUB_PERSONAL_ACCESS_TOKEN",
            "api_key",
            "X-API-Key",
            "Authorization",
            "OPENAI_API_KEY",
            "DB_PASSWORD",
            "--api-key",
            "BRAVE_API_KEY",
            "secret",
        ] {
            assert!(is_secret_name(n), "{n}");
        }
        for n in [
            "TOKEN_FILE",
            "PATH",
            "GITHUB_TOKEN_PATH",
            "bearer_token_env_var",
            "HOME",
            "DEBUG",
            "AWS_ACCESS_KEY_ID_URL",
            "keyboard",
        ] {
            assert!(!is_secret_name(n), "{n}");
        }
        for v in [
            "${env:GITHUB_TOKEN}",
            "${input:token}",
            "$GITHUB_TOKEN",
            "{env:X}",
            "%TOKEN%",
            "<your-token>",
            "YOUR_API_KEY_HERE",
            "xxxxxxxx",
        ] {
            assert!(is_placeholder(v), "{v}");
            assert_eq!(classify(Some("GITHUB_TOKEN"), v), None, "{v}");
        }
        assert_eq!(
            classify(Some("DB_PASSWORD"), "hunter2hunter2"),
            Some(SecretKind::Named)
        );
        assert_eq!(classify(Some("DB_PASSWORD"), "short"), None);
        assert_eq!(classify(Some("LOG_LEVEL"), "debug-verbose"), None);
        assert_eq!(
            classify(Some("AUTH_MODE"), "oauth-device"),
            None,
            "weak name, word value"
        );
        assert_eq!(
            classify(Some("STRIPE_KEY"), "a8f3k2m9q1w7"),
            Some(SecretKind::Named)
        );
        assert_eq!(
            classify(Some("DB_PASSWORD"), "correcthorsebattery"),
            Some(SecretKind::Named)
        );
        assert_eq!(classify(Some("ANYTHING"), &gh()), Some(SecretKind::GitHub));
        assert_eq!(
            classify(Some("Authorization"), "Bearer abcdefgh12345"),
            Some(SecretKind::Bearer)
        );
    }

    #[test]
    fn text_scanning_and_redaction_never_leak() {
        let t = gh();
        let texts = [
            format!("--token={t}"),
            format!("Authorization: Bearer {t}"),
            format!("https://user:{t}@example.com/x"),
            format!("https://api.example.com/mcp?api_key={t}&x=1"),
            format!("GITHUB_TOKEN={t}"),
            format!("prefix {t} suffix"),
        ];
        for text in &texts {
            let r = redact_text(text);
            assert!(!r.contains(&t), "{text} -> {r}");
            assert!(!r.contains(&t[4..12]), "{r}");
        }
        assert_eq!(
            redact_text("https://example.com/a?page=2"),
            "https://example.com/a?page=2"
        );
        assert_eq!(
            redact_text("npx -y @modelcontextprotocol/server-github"),
            "npx -y @modelcontextprotocol/server-github"
        );
        assert_eq!(
            redact_text("Authorization: Bearer ${input:tok}"),
            "Authorization: Bearer ${input:tok}"
        );
        let pw = "s3cretPassw0rd";
        let r = redact_text(&format!("postgres://app:{pw}@db:5432/x"));
        assert_eq!(r, "postgres://app:****@db:5432/x");
        assert_eq!(redact(&t), "ghp_****");
        assert_eq!(redact("Bearer abc"), "Bearer ****");
        assert_eq!(redact("hunter2"), "****");
    }

    #[test]
    fn args() {
        let t = gh();
        let args: Vec<String> = [
            "--api-key",
            "plainsecretvalue1",
            "--verbose",
            &format!("--token={t}"),
            "-e",
            "X=1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let hits = scan_args(&args);
        assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), [1, 3]);
        let r = redact_args(&args);
        assert_eq!(r[1], "****");
        assert_eq!(r[3], "--token=ghp_****");
        assert_eq!(r[5], "X=1");
    }
}
