//! What this binary is: version, git revision, features, libbpf. Shown by
//! `assay --version` and `assay doctor`.

use std::sync::OnceLock;

/// The crate version (`Cargo.toml`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The git commit built (`-dirty`: with uncommitted changes), or `unknown`
/// when built outside a git checkout (see `build.rs`).
pub const REVISION: &str = env!("ASSAY_GIT_REVISION");

/// The cargo features compiled in.
pub fn features() -> Vec<&'static str> {
    let mut f = Vec::new();
    if cfg!(feature = "monitor") {
        f.push("monitor");
    }
    if cfg!(feature = "static") {
        f.push("static");
    }
    f
}

/// The libbpf linked in (e.g. `v1.7`), None in a build without the monitor.
pub fn libbpf() -> Option<String> {
    #[cfg(all(target_os = "linux", feature = "monitor"))]
    {
        // SAFETY: returns a pointer to a static NUL-terminated string.
        let v = unsafe { std::ffi::CStr::from_ptr(libbpf_rs::libbpf_sys::libbpf_version_string()) };
        Some(v.to_string_lossy().into_owned())
    }
    #[cfg(not(all(target_os = "linux", feature = "monitor")))]
    None
}

/// `assay --version`'s text after the program name.
pub fn long_version() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        let features = features();
        format!(
            "{VERSION}\nrevision: {REVISION}\nfeatures: {}\nlibbpf: {}",
            if features.is_empty() {
                "none".to_string()
            } else {
                features.join(",")
            },
            libbpf().unwrap_or_else(|| "none (built without the monitor feature)".to_string())
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_long_version_names_revision_features_and_libbpf() {
        let v = long_version();
        let lines: Vec<&str> = v.lines().collect();
        assert_eq!(lines[0], VERSION);
        assert_eq!(lines[1], format!("revision: {REVISION}"));
        assert!(!REVISION.is_empty());
        let features = lines[2].strip_prefix("features: ").unwrap();
        assert_eq!(
            features.split(',').any(|f| f == "monitor"),
            cfg!(feature = "monitor"),
            "{features}"
        );
        let libbpf = lines[3].strip_prefix("libbpf: ").unwrap();
        if cfg!(feature = "monitor") {
            assert!(libbpf.starts_with("v1."), "{libbpf}");
        } else {
            assert!(libbpf.starts_with("none"), "{libbpf}");
        }
    }
}
