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
    /// A PEM private key block (`-----BEGIN ... PRIVATE KEY-----`).
    PrivateKey,
    /// A token with a vendor's well-known prefix (the label names the vendor).
    Vendor(&'static str),
    /// A literal value stored under a credential-like name (`*_TOKEN`, `api_key`, ...).
    Named,
    /// A long random-looking value, whatever it is stored under.
    HighEntropy,
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
            SecretKind::PrivateKey => "PEM private key",
            SecretKind::Vendor(label) => label,
            SecretKind::Named => "literal credential",
            SecretKind::HighEntropy => "high-entropy literal",
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
    for &(prefix, min, label) in VENDOR_PREFIXES {
        if let Some(r) = t.strip_prefix(prefix) {
            if r.len() >= min && looks_random(r) {
                return Some(SecretKind::Vendor(label));
            }
        }
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

/// More vendors' token prefixes: (prefix, shortest body, label). The
/// bodies of real tokens are random, so a body must also look random.
const VENDOR_PREFIXES: &[(&str, usize, &str)] = &[
    ("glrt-", 20, "GitLab runner token"),
    ("glsa_", 32, "Grafana service account token"),
    ("glc_", 32, "Grafana Cloud token"),
    ("SG.", 60, "SendGrid API key"),
    ("dop_v1_", 60, "DigitalOcean token"),
    ("doo_v1_", 60, "DigitalOcean token"),
    ("shpat_", 32, "Shopify access token"),
    ("shpss_", 32, "Shopify shared secret"),
    ("pypi-", 50, "PyPI token"),
    ("dckr_pat_", 20, "Docker Hub token"),
    ("lin_api_", 30, "Linear API key"),
    ("r8_", 30, "Replicate token"),
    ("gsk_", 40, "Groq API key"),
    ("xai-", 40, "xAI API key"),
    ("pplx-", 40, "Perplexity API key"),
    ("tvly-", 20, "Tavily API key"),
    ("ntn_", 30, "Notion token"),
    ("secret_", 40, "Notion token"),
    ("figd_", 30, "Figma token"),
    ("lsv2_", 30, "LangSmith API key"),
    ("ATATT", 50, "Atlassian API token"),
    ("whsec_", 24, "webhook signing secret"),
    ("ya29.", 30, "Google OAuth access token"),
    ("sq0atp-", 22, "Square access token"),
    ("sntrys_", 40, "Sentry token"),
    ("sntryu_", 40, "Sentry token"),
    ("ops_", 50, "1Password service account token"),
    ("hvs.", 20, "HashiCorp Vault token"),
    ("pscale_tkn_", 32, "PlanetScale token"),
    ("pscale_pw_", 32, "PlanetScale password"),
    ("sbp_", 40, "Supabase token"),
    ("nfp_", 36, "Netlify token"),
    ("phx_", 40, "PostHog personal API key"),
    ("apify_api_", 30, "Apify token"),
];

/// Every PEM private key block in `text`: (start, end). A block runs from
/// its `-----BEGIN <label>-----` line to the matching END line, or to the
/// end of the text when cut short (a truncated key is still a key). A body
/// that is a placeholder (`<your key>`) or too short to be key material is
/// not one.
fn pem_blocks(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(p) = text[from..].find("-----BEGIN ") {
        let s = from + p;
        let label_start = s + "-----BEGIN ".len();
        let Some(label_len) = text[label_start..].find("-----") else {
            break;
        };
        let label = &text[label_start..label_start + label_len];
        let body_start = label_start + label_len + 5;
        let end_marker = format!("-----END {label}-----");
        let (body_end, e) = match text[body_start..].find(&end_marker) {
            Some(x) => (body_start + x, body_start + x + end_marker.len()),
            None => (text.len(), text.len()),
        };
        let body = &text[body_start..body_end];
        let material = body
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '='))
            .count();
        // Certificates and public keys are public; only private keys count.
        if label.contains("PRIVATE KEY") && material >= 32 && !is_placeholder(body) {
            out.push((s, e));
        }
        from = e.max(body_start);
    }
    out
}

fn shannon_entropy(s: &str) -> f64 {
    let mut counts = [0u32; 128];
    let mut n = 0u32;
    for b in s.bytes().filter(u8::is_ascii) {
        counts[b as usize] += 1;
        n += 1;
    }
    let n = f64::from(n.max(1));
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

/// A long run of base64/base62 characters that reads as random: at least
/// 20 characters with upper case, lower case and digits mixed, and close to
/// the highest entropy a string of its length can have. Hex digests (one
/// case), UUIDs, words, paths and package names fail one of the tests.
pub fn is_high_entropy(t: &str) -> bool {
    let n = t.len();
    if !(20..=1024).contains(&n) || t.starts_with(['/', '.', '-', '~']) {
        return false;
    }
    let count = |f: fn(&char) -> bool| t.chars().filter(f).count();
    let (upper, lower, digit) = (
        count(char::is_ascii_uppercase),
        count(char::is_ascii_lowercase),
        count(char::is_ascii_digit),
    );
    let slashes = count(|c| *c == '/');
    if upper < 2 || lower < 2 || digit < 2 || slashes * 8 > n {
        return false;
    }
    // The most a string of n characters over ~64 symbols can reach.
    let max = (n.min(64) as f64).log2();
    shannon_entropy(t) >= 0.85 * max
}

/// The spans of `text[s..e]` to judge for entropy: the whole run, or,
/// when it reads as a path (a `/`-separated part is a word of four letters
/// or more, like `Library` in `tmp2x7Q/Library/Application`), each part
/// on its own.
fn entropy_candidates(text: &str, s: usize, e: usize) -> Vec<(usize, usize)> {
    let run = &text[s..e];
    let is_word = |p: &str| p.len() >= 4 && p.chars().all(|c| c.is_ascii_alphabetic());
    if !run.contains('/') || !run.split('/').any(is_word) {
        return vec![(s, e)];
    }
    let mut out = Vec::new();
    let mut at = s;
    for part in run.split('/') {
        out.push((at, at + part.len()));
        at += part.len() + 1;
    }
    out
}

fn is_b64_char(c: char) -> bool {
    // `=` is left out: it separates `key=value`, and padding adds nothing.
    c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '_' | '-')
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
    // PEM private keys, wherever they sit.
    if text.contains("-----BEGIN ") {
        hits.extend(
            pem_blocks(text)
                .into_iter()
                .map(|(s, e)| (s, e, SecretKind::PrivateKey)),
        );
    }
    // Random-looking runs (base64 may hold `/`, `+`, `=`), unless a known
    // shape already covers them.
    let mut start = None;
    for (i, c) in text
        .char_indices()
        .chain(std::iter::once((text.len(), ' ')))
    {
        if is_b64_char(c) && i < text.len() {
            start.get_or_insert(i);
        } else if let Some(s) = start.take() {
            let covered = hits.iter().any(|h| h.0 <= s && i <= h.1);
            if !covered {
                for (rs, re) in entropy_candidates(text, s, i) {
                    let run = &text[rs..re];
                    if is_high_entropy(run) && !is_placeholder(run) {
                        hits.push((rs, re, SecretKind::HighEntropy));
                    }
                }
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
    // Keep a PEM block's header line: it says what kind of key it was.
    if let Some(rest) = secret.strip_prefix("-----BEGIN ") {
        if let Some(end) = rest.find("-----") {
            return format!("-----BEGIN {}-----****", &rest[..end]);
        }
    }
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

/// What the report shows of an env or header value. Values are withheld:
/// a report is shipped off the host, and no content test can promise that
/// a literal is not a credential (an 8-character password looks like any
/// word). A reference (`${env:X}`, `${input:x}`, `Bearer ${X}`) is shown as
/// written, because where a value comes from is what an auditor needs;
/// any literal becomes `****`, keeping at most a scheme or a vendor prefix
/// (`Bearer ****`, `ghp_****`).
pub fn shown_value(value: &str) -> String {
    if value.trim().is_empty() || is_reference(value) && scan_text(value).is_empty() {
        return value.to_string();
    }
    redact(value)
}

/// Stricter than [`is_placeholder`]: the value names where its content comes
/// from (`${...}`, `{env:X}`, `{{x}}`, a whole `$NAME` / `%NAME%`, `<...>`),
/// so a literal that merely starts with `$` is not mistaken for one.
fn is_reference(value: &str) -> bool {
    let mut t = value.trim();
    for scheme in ["Bearer ", "bearer ", "Basic ", "basic ", "token ", "Token "] {
        if let Some(rest) = t.strip_prefix(scheme) {
            t = rest.trim();
        }
    }
    let var_name = |n: &str| {
        !n.is_empty()
            // Variables are upper case by convention; `$ecret1` is a literal.
            && n.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            && !n.starts_with(|c: char| c.is_ascii_digit())
    };
    t.contains("${")
        || t.contains("{env:")
        || t.contains("{{")
        || t.strip_prefix('$').is_some_and(var_name)
        || t.len() > 2 && t.starts_with('%') && t.ends_with('%') && var_name(&t[1..t.len() - 1])
        || t.starts_with('<') && t.ends_with('>')
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

    /// A fake PEM key: real shape, random body (not a key).
    fn pem(label: &str) -> String {
        let body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7fAk3".repeat(3);
        format!("-----BEGIN {label}-----\n{body}\n{body}\n-----END {label}-----\n")
    }

    #[test]
    fn pem_private_keys_are_secrets_under_any_name() {
        for label in ["PRIVATE KEY", "RSA PRIVATE KEY", "OPENSSH PRIVATE KEY"] {
            let k = pem(label);
            assert_eq!(
                classify(Some("SIGNING_CERT_BUNDLE"), &k),
                Some(SecretKind::PrivateKey)
            );
            assert_eq!(classify(None, &k), Some(SecretKind::PrivateKey));
            assert_eq!(
                classify(Some("PRIVATE_KEY"), &k),
                Some(SecretKind::PrivateKey),
                "a secret name and a PEM value: still a finding"
            );
            let r = redact_text(&format!("key: {k} trailing"));
            assert_eq!(r, format!("key: -----BEGIN {label}-----****\n trailing"));
            assert_eq!(shown_value(&k), format!("-----BEGIN {label}-----****"));
        }
        // Cut short (no END line): still a key, redacted to the end.
        let k = pem("PRIVATE KEY");
        let cut = &k[..k.len() / 2];
        assert_eq!(redact_text(cut), "-----BEGIN PRIVATE KEY-----****");
        // Certificates are public; placeholder bodies are not keys.
        assert_eq!(classify(Some("CERT"), &pem("CERTIFICATE")), None);
        let ph = "-----BEGIN PRIVATE KEY-----\n<your private key here>\n-----END PRIVATE KEY-----";
        assert_eq!(classify(Some("X"), ph), None);
    }

    #[test]
    fn high_entropy_values_are_secrets_and_words_are_not() {
        for v in [
            "Zx9Qw2Lk8Vn4Rt6Yp1Bm3Hc5Jd7Fg0",
            "aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dF3hJ5",
            "q8Y/vR2+kLm9Zp4TnW6xB1cD3eF5gH7jK9mN=",
        ] {
            assert!(is_high_entropy(v.trim_end_matches('=')), "{v}");
            assert_eq!(
                classify(Some("DEPLOY_CONFIG"), v),
                Some(SecretKind::HighEntropy),
                "{v}"
            );
        }
        for v in [
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "123e4567-e89b-12d3-a456-426614174000",
            "ThisIsMyServerNameConfig",
            "/usr/local/lib/node_modules/Foo2/Bar3/index.js",
            "@modelcontextprotocol/server-filesystem",
            "mcp-server-git==0.6.2",
            "https://api.example.com/v1/mcp",
        ] {
            assert!(!is_high_entropy(v), "{v}");
            assert_eq!(classify(Some("DEPLOY_CONFIG"), v), None, "{v}");
        }
        // Paths through random-named directories are paths: judged part by
        // part once a part is a word.
        for v in [
            "/tmp/.tmp247S7j/Library/Application Support/Claude/x",
            "C9x/tmpZ2k8Q4vRw7/Library/Application/Ext9Jq2",
        ] {
            assert_eq!(redact_text(v), v);
            assert_eq!(classify(Some("DEPLOY_CONFIG"), v), None, "{v}");
        }
        let leaked = "/srv/Library/aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dF3hJ5/x";
        assert_eq!(redact_text(leaked), "/srv/Library/****/x");
        let url = "https://mcp.example.com/mcp?sig=Zx9Qw2Lk8Vn4Rt6Yp1Bm3Hc5Jd7Fg0&page=2";
        assert_eq!(
            redact_text(url),
            "https://mcp.example.com/mcp?sig=****&page=2"
        );
    }

    #[test]
    fn vendor_prefixes() {
        let body = "a1B2c3D4e5".repeat(7);
        for (p, label) in [
            ("glsa_", "Grafana service account token"),
            ("dop_v1_", "DigitalOcean token"),
            ("lin_api_", "Linear API key"),
            ("xai-", "xAI API key"),
        ] {
            let t = format!("{p}{body}");
            assert_eq!(token_kind(&t), Some(SecretKind::Vendor(label)), "{t}");
            assert_eq!(classify(Some("X"), &t).map(SecretKind::label), Some(label));
        }
        assert_eq!(
            token_kind("secret_santa_mode_is_enabled_for_everyone"),
            None
        );
    }

    #[test]
    fn shown_values_are_references_or_withheld() {
        for v in [
            "${env:GITHUB_TOKEN}",
            "${input:token}",
            "Bearer ${input:tok}",
            "$GITHUB_TOKEN",
            "%TOKEN%",
            "<your-token>",
            "",
        ] {
            assert_eq!(shown_value(v), v);
        }
        assert_eq!(shown_value("info"), "****", "literals are withheld");
        assert_eq!(shown_value("$ecretPassw0rd"), "****");
        assert_eq!(shown_value("Bearer abcdefgh12345"), "Bearer ****");
        assert_eq!(shown_value(&gh()), "ghp_****");
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
