//! Compiles every `src/bpf/*.bpf.c` into a libbpf-rs skeleton in `OUT_DIR`.
//!
//! Only with the `monitor` feature (the default): without it the crate is plain
//! Rust and builds on machines that have no clang.

fn main() {
    #[cfg(feature = "monitor")]
    bpf::build();
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
