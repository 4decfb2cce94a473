//! Compiles every `src/bpf/*.bpf.c` into a libbpf-rs skeleton in `OUT_DIR`
//! (only with the `monitor` feature, the default: without it the crate is
//! plain Rust and builds on machines that have no clang), and tells the
//! binary its git revision for `assay --version`.

use std::process::Command;

fn main() {
    git_revision();
    #[cfg(feature = "monitor")]
    bpf::build();
}

/// `ASSAY_GIT_REVISION`: the commit this build is from (`-dirty` when the
/// tree had changes), or `unknown` outside a git checkout (a source
/// tarball). `ASSAY_GIT_REVISION` in the environment wins, for packagers
/// building from an exported tree.
fn git_revision() {
    println!("cargo:rerun-if-env-changed=ASSAY_GIT_REVISION");
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let rev = match std::env::var("ASSAY_GIT_REVISION") {
        Ok(r) if !r.is_empty() => r,
        _ => match git(&["rev-parse", "--short=12", "HEAD"]) {
            Some(rev) => {
                // Rebuild when HEAD moves or the index changes (a commit, a
                // checkout, `git add`).
                for f in ["HEAD", "index"] {
                    if let Some(p) = git(&["rev-parse", "--git-path", f]) {
                        println!("cargo:rerun-if-changed={p}");
                    }
                }
                if let Some(p) = git(&["rev-parse", "--git-common-dir"]) {
                    println!("cargo:rerun-if-changed={p}/refs/heads");
                }
                let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                    .is_some_and(|s| !s.is_empty());
                if dirty { format!("{rev}-dirty") } else { rev }
            }
            None => "unknown".to_string(),
        },
    };
    println!("cargo:rustc-env=ASSAY_GIT_REVISION={rev}");
}

#[cfg(feature = "monitor")]
mod bpf {
    use std::env;
    use std::ffi::OsStr;
    use std::path::{Path, PathBuf};

    use libbpf_cargo::SkeletonBuilder;

    const BPF_DIR: &str = "src/bpf";
    const VMLINUX_DIR: &str = "vmlinux";

    pub fn build() {
        println!("cargo:rerun-if-changed={BPF_DIR}");
        println!("cargo:rerun-if-changed={VMLINUX_DIR}/vmlinux.h");
        if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
            return;
        }
        let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
        let arch = match env::var("CARGO_CFG_TARGET_ARCH").as_deref() {
            Ok("x86_64") => "x86",
            Ok("aarch64") => "arm64",
            Ok(other) => panic!("no vendored vmlinux.h for target arch {other}"),
            Err(e) => panic!("CARGO_CFG_TARGET_ARCH: {e}"),
        };

        let mut sources: Vec<PathBuf> = std::fs::read_dir(BPF_DIR)
            .expect("src/bpf exists")
            .map(|e| e.expect("readable src/bpf entry").path())
            .collect();
        sources.sort();
        for path in &sources {
            println!("cargo:rerun-if-changed={}", path.display());
        }
        for src in sources.iter().filter(|p| is_bpf_source(p)) {
            let stem = src
                .file_name()
                .and_then(OsStr::to_str)
                .and_then(|n| n.strip_suffix(".bpf.c"))
                .expect("name ends in .bpf.c");
            let skel = out.join(format!("{stem}.skel.rs"));
            SkeletonBuilder::new()
                .source(src)
                .clang_args([
                    "-I".to_string(),
                    VMLINUX_DIR.to_string(),
                    format!("-D__TARGET_ARCH_{arch}"),
                    "-Wall".to_string(),
                    "-Wextra".to_string(),
                    "-Werror".to_string(),
                    "-Wno-unused-parameter".to_string(),
                ])
                .build_and_generate(&skel)
                .unwrap_or_else(|e| panic!("building BPF skeleton for {}: {e:#}", src.display()));
        }
    }

    fn is_bpf_source(p: &Path) -> bool {
        p.file_name()
            .and_then(OsStr::to_str)
            .is_some_and(|n| n.ends_with(".bpf.c"))
    }
}
