//! The kernel suite `make verify` runs inside QEMU on real distribution
//! kernels with the BPF LSM active (scripts/vm/verify.sh boots them).
//!
//! It has its own `main` (harness = false) because the host reads one line per
//! case from the serial console: `ASSAY-CASE <name> PASS|FAIL|SKIP <detail>`.
//!
//! On a host it does nothing unless `ASSAY_VM_SUITE=1` is set (the guest's
//! init sets it): this machine's kernel refuses LSM programs, so running the
//! suite here could only fail. With `ASSAY_VM_SUITE=1` every case runs and
//! every failure counts.

fn main() -> std::process::ExitCode {
    if std::env::var_os("ASSAY_VM_SUITE").is_none() {
        println!(
            "SKIP vm_lsm: the BPF LSM suite runs inside the VMs of `make verify` \
             (scripts/vm/verify.sh); set ASSAY_VM_SUITE=1 to run it on a kernel \
             booted with bpf in lsm="
        );
        return std::process::ExitCode::SUCCESS;
    }
    let mut s = Suite::default();
    let out = std::process::Command::new(std::env::var("ASSAY_BIN").unwrap_or("assay".into()))
        .arg("--version")
        .output();
    match out {
        Ok(o) if o.status.success() => {
            s.pass("assay/version", String::from_utf8_lossy(&o.stdout).trim())
        }
        Ok(o) => s.fail("assay/version", format!("exit {:?}", o.status.code())),
        Err(e) => s.fail("assay/version", e),
    }
    s.finish()
}

#[derive(Default)]
struct Suite {
    failed: usize,
}

impl Suite {
    fn pass(&mut self, name: &str, detail: impl std::fmt::Display) {
        println!("ASSAY-CASE {name} PASS {detail}");
    }
    fn fail(&mut self, name: &str, detail: impl std::fmt::Display) {
        self.failed += 1;
        println!("ASSAY-CASE {name} FAIL {detail}");
    }
    fn finish(self) -> std::process::ExitCode {
        if self.failed == 0 {
            std::process::ExitCode::SUCCESS
        } else {
            std::process::ExitCode::FAILURE
        }
    }
}
