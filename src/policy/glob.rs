//! Path globs: each accepted shape compiles into a [`GlobForm`] the kernel
//! can match exactly. Every other shape is refused with the reason, because a
//! glob enforced approximately would be a weaker rule than the one written.

use std::path::PathBuf;

use super::model::GlobForm;

/// Longest glob accepted (Linux PATH_MAX).
const MAX_LEN: usize = 4096;
/// Components from the first `*` of an absolute glob to its end: the kernel
/// program walks that many ancestors of every opened file.
pub const MAX_ANCHORED_DEPTH: usize = 8;

/// Why a glob is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GlobError {
    #[error("empty glob")]
    Empty,
    #[error("glob longer than {max} bytes", max = MAX_LEN)]
    TooLong,
    #[error("glob contains a NUL byte")]
    Nul,
    #[error("`?` (single-character wildcard) is not supported")]
    QuestionMark,
    #[error("`[...]` character classes are not supported")]
    CharacterClass,
    #[error("`{{a,b}}` alternatives are not supported; write one glob per alternative")]
    Alternatives,
    #[error("`\\` escapes are not supported")]
    Escape,
    #[error("`~` is not expanded; use an absolute path or `**/...`")]
    Tilde,
    #[error("`**` alone matches every file; name a directory (`/dir/**`)")]
    DoubleStarAlone,
    #[error("relative path: a glob starts with `/` (absolute) or `**/` (anywhere)")]
    Relative,
    #[error("empty path component (`//` or a trailing `/`)")]
    EmptyComponent,
    /// `.` or `..`.
    #[error("`{0}` components are not allowed; write the normalised path")]
    DotComponent(String),
    #[error(
        "`**` is only supported at the start (`**/...`) or at the end of an absolute path \
         (`/dir/**`)"
    )]
    DoubleStarInside,
    #[error("`**/*` matches every file; name a directory or a suffix")]
    EveryFile,
    #[error("only one `*` is supported in a name: `**/*.suffix`")]
    TwoStarsInName,
    #[error("`*` inside a name is only supported as a prefix: `**/*.suffix`")]
    StarInsideName,
    #[error("the directory in `**/dir/...` must be a literal name")]
    StarInDirName,
    #[error(
        "in `**/dir/name`, name is a literal or a whole `*`; partial wildcards are not supported"
    )]
    PartialWildcard,
    #[error(
        "after `**/` at most two components are supported (`**/name`, `**/dir/*`, \
         `**/dir/name`); use an absolute path for deeper shapes"
    )]
    TooDeepAfterDoubleStar,
    #[error("a subtree glob `/dir/**` needs a literal directory (no `*` before `/**`)")]
    StarBeforeSubtree,
    /// The component mixing `*` with text.
    #[error(
        "`*` must be a whole path component in an absolute glob (`{0}` mixes it with text); \
         use `**/*.suffix` for suffixes"
    )]
    PartialComponent(String),
    /// How many components follow the first `*`.
    #[error(
        "at most {max} components may follow the first `*` of an absolute glob ({0} do)",
        max = MAX_ANCHORED_DEPTH
    )]
    TooDeep(usize),
}

pub fn compile(text: &str) -> Result<GlobForm, GlobError> {
    if text.is_empty() {
        return Err(GlobError::Empty);
    }
    if text.len() > MAX_LEN {
        return Err(GlobError::TooLong);
    }
    if text.contains('\0') {
        return Err(GlobError::Nul);
    }
    for (c, why) in [
        ('?', GlobError::QuestionMark),
        ('[', GlobError::CharacterClass),
        (']', GlobError::CharacterClass),
        ('{', GlobError::Alternatives),
        ('}', GlobError::Alternatives),
        ('\\', GlobError::Escape),
    ] {
        if text.contains(c) {
            return Err(why);
        }
    }
    if text.starts_with('~') {
        return Err(GlobError::Tilde);
    }
    if let Some(rest) = text.strip_prefix("**/") {
        return anywhere(rest);
    }
    if text == "**" {
        return Err(GlobError::DoubleStarAlone);
    }
    if !text.starts_with('/') {
        return Err(GlobError::Relative);
    }
    absolute(text)
}

fn check_component(c: &str) -> Result<(), GlobError> {
    match c {
        "" => Err(GlobError::EmptyComponent),
        "." | ".." => Err(GlobError::DotComponent(c.to_string())),
        _ => Ok(()),
    }
}

/// The part after a leading `**/`.
fn anywhere(rest: &str) -> Result<GlobForm, GlobError> {
    let parts: Vec<&str> = rest.split('/').collect();
    for p in &parts {
        check_component(p)?;
        if *p == "**" {
            return Err(GlobError::DoubleStarInside);
        }
    }
    match parts.as_slice() {
        [name] => {
            if *name == "*" {
                return Err(GlobError::EveryFile);
            }
            if let Some(suffix) = name.strip_prefix('*') {
                if suffix.contains('*') {
                    return Err(GlobError::TwoStarsInName);
                }
                return Ok(GlobForm::Suffix(suffix.to_string()));
            }
            if name.contains('*') {
                return Err(GlobError::StarInsideName);
            }
            Ok(GlobForm::Basename(name.to_string()))
        }
        [dir, name] => {
            if dir.contains('*') {
                return Err(GlobError::StarInDirName);
            }
            if *name == "*" {
                return Ok(GlobForm::InDirNamed(dir.to_string()));
            }
            if name.contains('*') {
                return Err(GlobError::PartialWildcard);
            }
            Ok(GlobForm::DirAndBasename {
                dir: dir.to_string(),
                name: name.to_string(),
            })
        }
        _ => Err(GlobError::TooDeepAfterDoubleStar),
    }
}

fn absolute(text: &str) -> Result<GlobForm, GlobError> {
    if let Some(prefix) = text.strip_suffix("/**") {
        if prefix.is_empty() {
            return Ok(GlobForm::Subtree(PathBuf::from("/")));
        }
        let comps: Vec<&str> = prefix[1..].split('/').collect();
        for c in &comps {
            check_component(c)?;
            if c.contains('*') {
                return Err(GlobError::StarBeforeSubtree);
            }
        }
        return Ok(GlobForm::Subtree(PathBuf::from(prefix)));
    }
    let comps: Vec<&str> = text[1..].split('/').collect();
    for c in &comps {
        check_component(c)?;
        if *c == "**" {
            return Err(GlobError::DoubleStarInside);
        }
        if c.contains('*') && *c != GlobForm::ANY {
            return Err(GlobError::PartialComponent(c.to_string()));
        }
    }
    let Some(first) = comps.iter().position(|c| *c == GlobForm::ANY) else {
        return Ok(GlobForm::Exact(PathBuf::from(text)));
    };
    let tail = &comps[first..];
    if tail.len() > MAX_ANCHORED_DEPTH {
        return Err(GlobError::TooDeep(tail.len()));
    }
    Ok(GlobForm::Anchored {
        dir: PathBuf::from(format!("/{}", comps[..first].join("/"))),
        components: tail.iter().map(|c| c.to_string()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(t: &str) -> GlobForm {
        compile(t).unwrap_or_else(|e| panic!("{t}: {e}"))
    }

    #[test]
    fn accepted_shapes() {
        assert_eq!(ok("/etc/shadow"), GlobForm::Exact("/etc/shadow".into()));
        assert_eq!(ok("/data/**"), GlobForm::Subtree("/data".into()));
        assert_eq!(ok("/**"), GlobForm::Subtree("/".into()));
        assert_eq!(ok("**/.env"), GlobForm::Basename(".env".into()));
        assert_eq!(ok("**/.ssh/*"), GlobForm::InDirNamed(".ssh".into()));
        assert_eq!(
            ok("**/.aws/credentials"),
            GlobForm::DirAndBasename {
                dir: ".aws".into(),
                name: "credentials".into()
            }
        );
        assert_eq!(ok("**/*.pem"), GlobForm::Suffix(".pem".into()));
        let anchored = |dir: &str, c: &[&str]| GlobForm::Anchored {
            dir: dir.into(),
            components: c.iter().map(|s| s.to_string()).collect(),
        };
        assert_eq!(
            ok("/home/*/.aws/credentials"),
            anchored("/home", &["*", ".aws", "credentials"])
        );
        assert_eq!(
            ok("/etc/ssl/private/*"),
            anchored("/etc/ssl/private", &["*"])
        );
        assert_eq!(ok("/*/x"), anchored("/", &["*", "x"]));
        assert_eq!(ok("/srv/*/*/key"), anchored("/srv", &["*", "*", "key"]));
        assert_eq!(ok("/a/*/b/c/d/e/f/g/h"), {
            anchored("/a", &["*", "b", "c", "d", "e", "f", "g", "h"])
        });
    }

    #[test]
    fn refused_shapes() {
        for (t, why) in [
            ("", "empty"),
            ("etc/shadow", "relative"),
            ("~/.ssh/id_rsa", "~"),
            ("/etc/shado?", "?"),
            ("/etc/[ab]", "character classes"),
            ("**/{a,b}", "alternatives"),
            ("/etc/*.conf", "whole path component"),
            ("/data/**/x", "only supported at the start"),
            ("**/a/**", "only supported"),
            ("/etc/../shadow", "`..`"),
            ("/etc//shadow", "empty path component"),
            ("/etc/", "empty path component"),
            ("**/*", "every file"),
            ("**", "every file"),
            ("**/a/b/c", "at most two"),
            ("**/*.p*", "only one"),
            ("**/a*b", "prefix"),
            ("**/*/x", "literal name"),
            ("**/d/x*", "partial"),
            ("/da*/**", "literal directory"),
            ("/home/*/.ssh/**", "literal directory"),
            ("/home/*/id_*", "whole path component"),
            ("/a/*/b/c/d/e/f/g/h/i", "at most 8"),
        ] {
            let e = compile(t).expect_err(t).to_string();
            assert!(e.contains(why), "{t}: {e}");
        }
    }
}
