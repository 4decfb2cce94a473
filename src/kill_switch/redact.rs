//! Redaction of secret-looking values in captured environments and command
//! lines. Incidents are shared with people who must not receive the tokens of
//! the server that was killed; `--no-redact` keeps everything for forensics.

/// What replaces a redacted value.
pub const REDACTED: &str = "<redacted>";

/// Name fragments that mark a variable or flag as secret (case-insensitive).
const SECRET_NAME_PARTS: &[&str] = &[
    "SECRET",
    "TOKEN",
    "PASSWORD",
    "PASSWD",
    "PASSPHRASE",
    "PWD_",
    "APIKEY",
    "API_KEY",
    "ACCESS_KEY",
    "PRIVATE_KEY",
    "CREDENTIAL",
    "AUTH",
    "COOKIE",
    "SESSION",
    "SIGNING",
    "DSN",
    "DATABASE_URL",
    "CONNECTION_STRING",
];

/// Value prefixes of well-known credential formats.
const SECRET_VALUE_PREFIXES: &[&str] = &[
    "sk-",
    "sk_live_",
    "rk_live_",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "glpat-",
    "xoxb-",
    "xoxp-",
    "xoxa-",
    "xapp-",
    "AKIA",
    "ASIA",
    "AIza",
    "ya29.",
    "npm_",
    "hf_",
    "eyJ",
];

/// True when a variable or flag name looks like it holds a secret.
pub fn is_secret_name(name: &str) -> bool {
    let up = name
        .trim_start_matches('-')
        .to_ascii_uppercase()
        .replace('-', "_");
    SECRET_NAME_PARTS.iter().any(|p| up.contains(p))
}

/// True when a value looks like a credential whatever its name.
pub fn is_secret_value(value: &str) -> bool {
    let v = value.trim();
    if v.len() >= 12 && SECRET_VALUE_PREFIXES.iter().any(|p| v.starts_with(p)) {
        return true;
    }
    v.starts_with("-----BEGIN") && v.contains("PRIVATE KEY")
}

/// `scheme://user:password@host` → `scheme://user:<redacted>@host`; other
/// values unchanged.
pub fn redact_url_password(value: &str) -> String {
    let Some(scheme_end) = value.find("://") else {
        return value.to_string();
    };
    let rest = &value[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return value.to_string();
    };
    let Some(colon) = rest[..at].find(':') else {
        return value.to_string();
    };
    format!(
        "{}{}:{}{}",
        &value[..scheme_end + 3],
        &rest[..colon],
        REDACTED,
        &rest[at..]
    )
}

/// Redact one `NAME=value` environment entry.
pub fn redact_env_entry(entry: &str) -> String {
    let Some((name, value)) = entry.split_once('=') else {
        return entry.to_string();
    };
    if value.is_empty() {
        return entry.to_string();
    }
    if is_secret_name(name) || is_secret_value(value) {
        return format!("{name}={REDACTED}");
    }
    format!("{name}={}", redact_url_password(value))
}

/// Redact a command line: values of secret-looking flags (`--token X`,
/// `--api-key=X`), credential-shaped arguments, and URL passwords.
pub fn redact_argv(argv: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(argv.len());
    let mut hide_next = false;
    for arg in argv {
        if arg.is_empty() {
            out.push(String::new());
            continue;
        }
        if hide_next {
            hide_next = false;
            out.push(REDACTED.to_string());
            continue;
        }
        if arg.starts_with('-') {
            if let Some((flag, value)) = arg.split_once('=') {
                if is_secret_name(flag) || is_secret_value(value) {
                    out.push(format!("{flag}={REDACTED}"));
                } else {
                    out.push(format!("{flag}={}", redact_url_password(value)));
                }
                continue;
            }
            hide_next = is_secret_name(arg);
            out.push(arg.clone());
            continue;
        }
        if arg.contains(' ') {
            // A script (`sh -c "... --token x ..."`): redact word by word.
            // Splitting and joining on single spaces keeps the text intact
            // wherever nothing is redacted.
            let words: Vec<String> = arg.split(' ').map(str::to_string).collect();
            out.push(redact_argv(&words).join(" "));
        } else if is_secret_value(arg) {
            out.push(REDACTED.to_string());
        } else if arg.contains('=') && !arg.contains('/') {
            // `TOKEN=x` passed through `env` or a shell.
            out.push(redact_env_entry(arg));
        } else {
            out.push(redact_url_password(arg));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_secrets_by_name() {
        assert_eq!(
            redact_env_entry("GITHUB_TOKEN=abc"),
            "GITHUB_TOKEN=<redacted>"
        );
        assert_eq!(
            redact_env_entry("OPENAI_API_KEY=x"),
            "OPENAI_API_KEY=<redacted>"
        );
        assert_eq!(
            redact_env_entry("db_password=hunter2"),
            "db_password=<redacted>"
        );
        assert_eq!(
            redact_env_entry("AWS_SECRET_ACCESS_KEY=q"),
            "AWS_SECRET_ACCESS_KEY=<redacted>"
        );
        assert_eq!(redact_env_entry("HOME=/root"), "HOME=/root");
        assert_eq!(redact_env_entry("PATH=/usr/bin:/bin"), "PATH=/usr/bin:/bin");
        assert_eq!(redact_env_entry("EMPTY_TOKEN="), "EMPTY_TOKEN=");
        assert_eq!(redact_env_entry("NOEQUALS"), "NOEQUALS");
    }

    #[test]
    fn env_secrets_by_value() {
        assert_eq!(
            redact_env_entry("UPSTREAM=ghp_0123456789abcdefghij"),
            "UPSTREAM=<redacted>"
        );
        assert_eq!(redact_env_entry("X=sk-proj-aaaaaaaaaaaa"), "X=<redacted>");
        assert_eq!(redact_env_entry("SHORT=sk-1"), "SHORT=sk-1");
        assert_eq!(
            redact_env_entry("PG=postgres://app:s3cret@db:5432/x"),
            "PG=postgres://app:<redacted>@db:5432/x"
        );
        assert_eq!(
            redact_env_entry("SITE=https://example.com/a@b:c"),
            "SITE=https://example.com/a@b:c"
        );
    }

    #[test]
    fn argv_secrets() {
        let argv: Vec<String> = [
            "node",
            "server.js",
            "--token",
            "abc",
            "--api-key=xyz",
            "--port",
            "8080",
            "ghp_0123456789abcdefghij",
            "redis://u:pw@h/0",
            "SLACK_TOKEN=t",
            "run --password  pw; echo  ok",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            redact_argv(&argv),
            [
                "node",
                "server.js",
                "--token",
                REDACTED,
                "--api-key=<redacted>",
                "--port",
                "8080",
                REDACTED,
                "redis://u:<redacted>@h/0",
                "SLACK_TOKEN=<redacted>",
                "run --password  <redacted> echo  ok",
            ]
        );
    }
}
