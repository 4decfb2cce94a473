//! Shared helpers for integration tests.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Tests that need root call this first. Unprivileged on a laptop they skip
/// with a printed reason; in CI (`CI` set) a missing privilege is a failure,
/// because a skip there would hide an untested tier.
pub fn require_root(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{test}: needs root, and CI must run every tier");
    }
    eprintln!("SKIP {test}: needs root");
    false
}

/// The cgroup v2 mount point, read from /proc/self/mountinfo.
pub fn cgroup2_mount() -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        if post.split_whitespace().next()? != "cgroup2" {
            return None;
        }
        pre.split_whitespace().nth(4).map(PathBuf::from)
    })
}

/// A scratch directory, `assay-test-<name>-<pid>` in the temp directory:
/// empty when made, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let d = std::env::temp_dir().join(format!("assay-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }

    /// `p` inside the directory.
    pub fn path(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }

    /// Writes `text` to `name` inside the directory; its path.
    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The built `assay` binary.
pub fn assay_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_assay"))
}

/// `assay` as a user runs it: the built binary with a scrubbed environment
/// (a standard `PATH` and `NO_COLOR=1`, nothing else) and stdin from
/// /dev/null. Add arguments, `HOME` or other stdio to taste.
pub fn assay() -> Command {
    assay_at(assay_bin())
}

/// As [`assay`], for the binary at `bin` (the VM suite runs the static one
/// in its initramfs).
pub fn assay_at(bin: impl AsRef<OsStr>) -> Command {
    let mut c = Command::new(bin);
    c.env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    c
}

/// Runs `cmd` to completion, capturing stdout and stderr.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("assay runs")
}

/// `assay ARGS`, run to completion.
pub fn run_assay(args: &[&str]) -> Output {
    run(assay().args(args))
}

/// The command exited with `code`; its stderr says why otherwise.
#[track_caller]
pub fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A cgroup made for one test: `<name>-<pid>` directly under the cgroup2
/// mount. On drop the processes still in it are killed (`cgroup.kill`) and
/// it is removed, retrying briefly while the kernel reaps them.
pub struct TestCgroup(PathBuf);

impl TestCgroup {
    pub fn new(name: &str) -> TestCgroup {
        let root = cgroup2_mount().expect("a cgroup2 mount");
        let path = root.join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir(&path)
            .unwrap_or_else(|e| panic!("create cgroup {}: {e}", path.display()));
        TestCgroup(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = std::fs::write(self.0.join("cgroup.kill"), "1");
        for _ in 0..100 {
            if std::fs::remove_dir(&self.0).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// `bin` copied into `dir` (mode 0755) with `permitted` as its file
/// capabilities (permitted only, never effective), as `setcap CAPS=p` would
/// install it: the security.capability xattr, revision 2, written directly
/// so no libcap tools are needed (the VM has none).
#[cfg(target_os = "linux")]
pub fn install_with_capabilities(bin: &Path, dir: &Path, permitted: u64) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let to = dir.join("assay");
    std::fs::copy(bin, &to).unwrap();
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).unwrap();
    const VFS_CAP_REVISION_2: u32 = 0x0200_0000;
    let mut v = Vec::with_capacity(20);
    for word in [
        VFS_CAP_REVISION_2,
        permitted as u32,
        0,
        (permitted >> 32) as u32,
        0,
    ] {
        v.extend_from_slice(&word.to_le_bytes());
    }
    let path = std::ffi::CString::new(to.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: valid C strings and a buffer of the stated length.
    let rc = unsafe {
        libc::setxattr(
            path.as_ptr(),
            c"security.capability".as_ptr(),
            v.as_ptr().cast(),
            v.len(),
            0,
        )
    };
    assert_eq!(rc, 0, "setxattr: {}", std::io::Error::last_os_error());
    to
}

/// A network namespace of the test's own, `<name>-<pid>`, with `lo` up and
/// ping sockets allowed to every group; removed on drop. Nothing else sends
/// there, so its counters count the test's packets.
pub struct Netns(String);

impl Netns {
    pub fn new(name: &str) -> Netns {
        let ns = Netns(format!("{name}-{}", std::process::id()));
        let st = Command::new("ip")
            .args(["netns", "add", &ns.0])
            .status()
            .unwrap();
        assert!(st.success(), "ip netns add {}", ns.0);
        ns.ip(&["link", "set", "lo", "up"]);
        let st = ns
            .exec(Command::new("sysctl").args([
                "-q",
                "-w",
                "net.ipv4.ping_group_range=0 2147483647",
            ]))
            .status()
            .unwrap();
        assert!(st.success(), "sysctl in {}", ns.0);
        ns
    }

    /// `ip -n NAME ARGS`, which must succeed.
    pub fn ip(&self, args: &[&str]) {
        let st = Command::new("ip")
            .args(["-n", &self.0])
            .args(args)
            .status()
            .unwrap();
        assert!(st.success(), "ip -n {} {args:?}", self.0);
    }

    /// The namespace as `nsenter --net=` names it.
    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.0)
    }

    /// `cmd` run inside the namespace. Only the network namespace changes
    /// (`ip netns exec` would remount /sys, hiding the cgroup2 mount).
    pub fn exec(&self, cmd: &mut Command) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", self.path()))
            .arg("--")
            .arg(cmd.get_program());
        c.args(cmd.get_args());
        c.env_clear().env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        c
    }

    /// A counter of the namespace's IP stack: `Group:Name` from
    /// /proc/net/snmp (`Icmp:InEchos`, `Ip:InReceives`) or a name from
    /// /proc/net/snmp6 (`Icmp6InEchos`), read from outside any scope.
    pub fn counter(&self, key: &str) -> u64 {
        let file = if key.contains(':') {
            "/proc/net/snmp"
        } else {
            "/proc/net/snmp6"
        };
        let out = self.exec(Command::new("cat").arg(file)).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let found = match key.split_once(':') {
            // Pairs of lines: `Group: names...` then `Group: values...`.
            Some((group, name)) => {
                let prefix = format!("{group}:");
                let mut rows = text.lines().filter(|l| l.starts_with(&prefix));
                let names = rows.next().unwrap_or_default();
                let values = rows.next().unwrap_or_default();
                names
                    .split_whitespace()
                    .zip(values.split_whitespace())
                    .find(|(n, _)| *n == name)
                    .and_then(|(_, v)| v.parse().ok())
            }
            None => text.lines().find_map(|l| {
                let mut it = l.split_whitespace();
                (it.next()? == key).then(|| it.next()?.parse().ok())?
            }),
        };
        found.unwrap_or_else(|| panic!("no {key} in {file}:\n{text}"))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// The netbench helper binary (connect probes, floods).
pub fn netbench() -> &'static str {
    env!("CARGO_BIN_EXE_assay-netbench")
}

/// Polls `f` every 100 ms until it gives a value; fails after `secs`.
pub fn wait_for<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A child process stopped and reaped on drop: SIGTERM (a monitor then
/// detaches and removes its pins), SIGKILL after 5 s.
pub struct Daemon(pub std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            // SAFETY: plain syscall on our own child, not yet reaped.
            unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(self.0.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `n` connects to 127.0.0.1:`port` from inside `cg`: the probe's report.
pub fn probe_in(cg: &Path, port: u16, n: u64) -> serde_json::Value {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "echo $$ > {}/cgroup.procs && exec {} probe --addr 127.0.0.1:{port} --count {n}",
            cg.display(),
            netbench()
        ))
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}
