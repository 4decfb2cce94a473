//! The kernel suite `make verify` runs inside QEMU on real distribution
//! kernels with the BPF LSM active (scripts/vm/verify.sh boots them).
//!
//! It has its own `main` (harness = false) because the host reads one line per
//! case from the serial console: `ASSAY-CASE <name> PASS|FAIL|SKIP <detail>`,
//! and `ASSAY-BENCH <name> <value>` for measurements.
//!
//! On a host it does nothing unless `ASSAY_VM_SUITE=1` is set (the guest's
//! init sets it): this machine's kernel refuses LSM programs, so running the
//! suite here could only fail. With `ASSAY_VM_SUITE=1` every case runs and
//! every failure counts. `ASSAY_VM_MODE=nobpf` runs the cases for a kernel
//! booted without `bpf` in `lsm=`.

mod common;

fn main() -> std::process::ExitCode {
    #[cfg(not(all(target_os = "linux", feature = "monitor")))]
    {
        println!("SKIP vm_lsm: built without the `monitor` feature (or not on Linux)");
        std::process::ExitCode::SUCCESS
    }
    #[cfg(all(target_os = "linux", feature = "monitor"))]
    suite::run()
}

#[cfg(all(target_os = "linux", feature = "monitor"))]
mod suite {
    use std::cell::RefCell;
    use std::ffi::CString;
    use std::fmt::Display;
    use std::os::unix::ffi::OsStrExt;
    use std::path::{Path, PathBuf};
    use std::process::ExitCode;
    use std::rc::Rc;
    use std::time::{Duration, Instant};

    use assay::monitor::cgroup::Scope;
    use assay::monitor::fileguard::FileGuard;
    use assay::monitor::ringbuf::{FileRecord, decode_file};
    use assay::policy::model::{Action, FileMatch, GlobForm, Matcher, PathGlob, Rule};
    use assay::severity::Severity;
    use libbpf_rs::RingBufferBuilder;

    use crate::common::TestCgroup;

    const BASE: &str = "/tmp/vm";
    const HOME: &str = "/root";

    pub fn run() -> ExitCode {
        // The offender of the end-to-end cases: this binary, re-executed.
        if let Ok(what) = std::env::var("ASSAY_VM_HELPER") {
            return e2e::helper(&what);
        }
        if std::env::var_os("ASSAY_VM_SUITE").is_none() {
            println!(
                "SKIP vm_lsm: the BPF LSM suite runs inside the VMs of `make verify` \
             (scripts/vm/verify.sh); set ASSAY_VM_SUITE=1 to run it on a kernel \
             booted with bpf in lsm="
            );
            return ExitCode::SUCCESS;
        }
        // libbpf's warnings carry the verifier's log when a program is
        // refused: on the console, where a failed case is read.
        fn libbpf_warning(_: libbpf_rs::PrintLevel, msg: String) {
            eprint!("libbpf: {msg}");
        }
        libbpf_rs::set_print(Some((libbpf_rs::PrintLevel::Warn, libbpf_warning)));
        let mut s = Suite::default();
        let mode = std::env::var("ASSAY_VM_MODE").unwrap_or_else(|_| "lsm".into());
        if mode == "nobpf" {
            nobpf(&mut s);
            e2e::exit_40_without_bpf(&mut s);
        } else {
            enforcement(&mut s);
            anchored_and_except(&mut s);
            e2e::egress_denied(&mut s);
            e2e::icmp_judged(&mut s);
            e2e::trigger_kill(&mut s);
            e2e::file_denied(&mut s);
            e2e::file_denied_descendants(&mut s);
            e2e::file_trigger_kill(&mut s);
            e2e::file_glob(&mut s);
            e2e::anchored_except(&mut s);
            e2e::attach_mode_file_rule(&mut s);
            e2e::self_protection_attach(&mut s);
            e2e::self_protection_wrapper(&mut s);
            e2e::self_protection_wrapper_default(&mut s);
            e2e::fail_closed_after_sigkill(&mut s);
            e2e::fail_closed_attach(&mut s);
            e2e::file_moves_wrapper(&mut s);
            e2e::file_moves_attach(&mut s);
            e2e::disconnected_dentry(&mut s);
            e2e::disconnected_dentry_wrapper(&mut s);
            e2e::file_mounts_attach(&mut s);
            e2e::file_mounts_wrapper(&mut s);
            e2e::verdict_cache_follows_changes(&mut s);
            e2e::verdict_cache_wrapper(&mut s);
            e2e::user_with_capabilities(&mut s);
            // Measurements only when asked (scripts/bench/lsm.sh): tests
            // check behaviour, benchmarks report figures.
            if std::env::var_os("ASSAY_VM_BENCH").is_some() {
                bench(&mut s);
            }
        }
        s.finish()
    }

    #[derive(Default)]
    struct Suite {
        failed: usize,
    }

    impl Suite {
        fn pass(&mut self, name: &str, detail: impl Display) {
            println!("ASSAY-CASE {name} PASS {detail}");
        }
        fn fail(&mut self, name: &str, detail: impl Display) {
            self.failed += 1;
            println!("ASSAY-CASE {name} FAIL {detail}");
        }
        fn skip(&mut self, name: &str, detail: impl Display) {
            println!("ASSAY-CASE {name} SKIP {detail}");
        }
        fn check(&mut self, name: &str, r: Result<String, String>) {
            match r {
                Ok(d) => self.pass(name, d),
                Err(d) => self.fail(name, d),
            }
        }
        fn finish(self) -> ExitCode {
            if self.failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }

    // ---- processes in and out of the scope ----

    /// A test cgroup (killed and removed on drop) and its scope.
    struct Cgroup {
        dir: TestCgroup,
        scope: Scope,
    }

    impl Cgroup {
        fn create(name: &str) -> Cgroup {
            let dir = TestCgroup::new(name);
            let scope = Scope::of(dir.path()).expect("cgroup scope");
            Cgroup { dir, scope }
        }
    }

    /// Runs `op` in a forked child (inside `cg` when given); returns the child's
    /// pid and `op`'s result (an errno, 0 for success). The suite is one thread,
    /// so forking is safe.
    fn in_child(cg: Option<&Cgroup>, op: impl FnOnce() -> i32) -> (u32, i32) {
        // SAFETY: single-threaded process; the child only runs `op` and _exits.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork");
        if pid == 0 {
            if let Some(cg) = cg
                && std::fs::write(cg.dir.path().join("cgroup.procs"), "0").is_err()
            {
                // SAFETY: leaving the forked child.
                unsafe { libc::_exit(250) };
            }
            let code = op();
            // SAFETY: leaving the forked child without running the parent's
            // destructors.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: pid is our child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        let code = if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            255
        };
        (pid as u32, code)
    }

    fn cstr(p: impl AsRef<Path>) -> CString {
        CString::new(p.as_ref().as_os_str().as_bytes()).expect("no NUL in test paths")
    }

    fn errno() -> i32 {
        std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(255)
    }

    /// open(O_RDONLY) + close; the errno, or 0.
    fn try_open(p: impl AsRef<Path>) -> i32 {
        let c = cstr(p);
        // SAFETY: c is a valid C string.
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        if fd < 0 {
            return errno();
        }
        // SAFETY: fd was just opened.
        unsafe { libc::close(fd) };
        0
    }

    // ---- the events ----

    struct Events {
        rb: libbpf_rs::RingBuffer<'static>,
        seen: Rc<RefCell<Vec<Result<FileRecord, String>>>>,
    }

    impl Events {
        fn new(guard: &FileGuard) -> Events {
            let seen = Rc::new(RefCell::new(Vec::new()));
            let sink = seen.clone();
            let mut b = RingBufferBuilder::new();
            b.add(guard.events_map(), move |data: &[u8]| {
                sink.borrow_mut()
                    .push(decode_file(data).map_err(|e| e.to_string()));
                0
            })
            .expect("ring buffer callback");
            Events {
                rb: b.build().expect("ring buffer"),
                seen,
            }
        }

        /// Everything submitted so far (the child has exited, so its events are
        /// in the buffer already).
        fn take(&self) -> Vec<Result<FileRecord, String>> {
            let _ = self.rb.poll(Duration::from_millis(20));
            self.seen.borrow_mut().drain(..).collect()
        }
    }

    use self::Expect::{Allowed, Denied, Logged};

    /// What a case expects of one open.
    #[derive(Clone, Copy)]
    enum Expect {
        /// EPERM, and an event of this rule from this process.
        Denied(u32),
        /// Success, and an event of this rule (log/alert rules).
        Logged(u32),
        /// Success, and no event.
        Allowed,
    }

    fn judge(
        expect: Expect,
        errno: i32,
        pid: Option<u32>,
        events: Vec<Result<FileRecord, String>>,
    ) -> Result<String, String> {
        let events: Vec<FileRecord> = events.into_iter().collect::<Result<_, _>>()?;
        let of_pid: Vec<&FileRecord> = events
            .iter()
            .filter(|e| pid.is_none_or(|p| e.tgid == p))
            .collect();
        let (want_errno, rule) = match expect {
            Denied(r) => (libc::EPERM, Some(r)),
            Logged(r) => (0, Some(r)),
            Allowed => (0, None),
        };
        if errno != want_errno {
            return Err(format!(
                "open errno {errno}, expected {want_errno}; events {events:?}"
            ));
        }
        match rule {
            None if of_pid.is_empty() => Ok("open allowed, no event".into()),
            None => Err(format!(
                "allowed as expected but events arrived: {of_pid:?}"
            )),
            Some(r) => match of_pid.iter().find(|e| e.rule_idx == r) {
                Some(e) => Ok(format!(
                    "errno {errno}, event rule {} action {:?} match {:?} name {} pid {}",
                    e.rule_idx, e.action, e.matched, e.name, e.tgid
                )),
                None => Err(format!(
                    "errno {errno} as expected but no event of rule {r}: {events:?}"
                )),
            },
        }
    }

    /// Runs `op` in a child (in `cg` when `inside`) and judges its errno and
    /// the events it caused against `expect`.
    fn open_case(
        s: &mut Suite,
        ev: &Events,
        cg: &Cgroup,
        (name, expect, inside): (&str, Expect, bool),
        op: &dyn Fn() -> i32,
    ) {
        let _ = ev.take();
        let (pid, code) = in_child(inside.then_some(cg), op);
        s.check(name, judge(expect, code, Some(pid), ev.take()));
    }

    // ---- rules ----

    fn rule(id: &str, action: Action, forms: Vec<GlobForm>) -> Rule {
        Rule {
            id: id.into(),
            severity: Severity::Critical,
            action,
            matcher: Matcher::FileOpen(FileMatch {
                path_globs: forms
                    .into_iter()
                    .map(|f| PathGlob {
                        text: format!("{f:?}"),
                        form: f,
                    })
                    .collect(),
                except: vec![],
            }),
        }
    }

    fn p(rel: &str) -> PathBuf {
        Path::new(BASE).join(rel)
    }

    fn write(path: impl AsRef<Path>) {
        let path = path.as_ref();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"data\n").unwrap();
    }

    fn mount_bind(src: &Path, dst: &Path) -> Result<(), String> {
        let (s, d) = (cstr(src), cstr(dst));
        // SAFETY: valid C strings; a bind mount with no data.
        let r = unsafe {
            libc::mount(
                s.as_ptr(),
                d.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND,
                std::ptr::null(),
            )
        };
        if r != 0 {
            return Err(format!(
                "mount --bind {} {}: {}",
                src.display(),
                dst.display(),
                std::io::Error::last_os_error()
            ));
        }
        Ok(())
    }

    fn mount_tmpfs(dst: &Path) -> Result<(), String> {
        let (s, d, t) = (cstr("tmpfs"), cstr(dst), cstr("tmpfs"));
        // SAFETY: valid C strings.
        let r = unsafe { libc::mount(s.as_ptr(), d.as_ptr(), t.as_ptr(), 0, std::ptr::null()) };
        if r != 0 {
            return Err(format!("mount tmpfs {}: {}", dst.display(), errno()));
        }
        Ok(())
    }

    // Rule indices (positions in the rules vector).
    const R_SECRET: u32 = 0;
    const R_RENAMED: u32 = 1;
    const R_LATER: u32 = 2;
    const R_REPLACED: u32 = 3;
    const R_SSH: u32 = 4;
    const R_ENV: u32 = 5;
    const R_DATA: u32 = 6;
    const R_AWS: u32 = 7;
    const R_PEM: u32 = 8;
    const R_LOG: u32 = 9;
    const R_KILL: u32 = 10;
    const R_NODIR: u32 = 11;

    fn enforcement(s: &mut Suite) {
        let _ = std::fs::remove_dir_all(BASE);
        write(p("secret.txt"));
        write(p("rename-me.txt"));
        write(p("replaced.txt"));
        write(p("public.txt"));
        write(p("data/sub/deep/file"));
        write(p("data-other/file"));
        write(p("logged.txt"));
        write(p("kill.txt"));
        write(Path::new(HOME).join(".sshx/a"));
        std::fs::create_dir_all(Path::new(HOME).join(".ssh")).unwrap();
        std::fs::create_dir_all(p("app")).unwrap();
        std::fs::create_dir_all(p("x")).unwrap();

        let rules = vec![
            rule(
                "secret",
                Action::Deny,
                vec![GlobForm::Exact(p("secret.txt"))],
            ),
            rule(
                "renamed",
                Action::Deny,
                vec![GlobForm::Exact(p("rename-me.txt"))],
            ),
            rule("later", Action::Deny, vec![GlobForm::Exact(p("later.txt"))]),
            rule(
                "replaced",
                Action::Deny,
                vec![GlobForm::Exact(p("replaced.txt"))],
            ),
            rule(
                "ssh",
                Action::Deny,
                vec![GlobForm::InDirNamed(".ssh".into())],
            ),
            rule("env", Action::Deny, vec![GlobForm::Basename(".env".into())]),
            rule("data", Action::Deny, vec![GlobForm::Subtree(p("data"))]),
            rule(
                "aws",
                Action::Deny,
                vec![GlobForm::DirAndBasename {
                    dir: ".aws".into(),
                    name: "credentials".into(),
                }],
            ),
            rule("pem", Action::Deny, vec![GlobForm::Suffix(".pem".into())]),
            rule("log", Action::Log, vec![GlobForm::Exact(p("logged.txt"))]),
            rule(
                "kill",
                Action::TriggerKill,
                vec![GlobForm::Exact(p("kill.txt"))],
            ),
            rule(
                "nodir",
                Action::Deny,
                vec![GlobForm::Exact(p("nodir/deeper/secret"))],
            ),
        ];

        let cg = Cgroup::create("assay-vm-suite");
        let t0 = Instant::now();
        let mut guard = match FileGuard::load(&rules, &cg.scope, None) {
            Ok(g) => g,
            Err(e) => {
                s.fail("fileguard/load", format!("{e:#}"));
                return;
            }
        };
        s.pass(
            "fileguard/load",
            format!(
                "scope cgroup {} level {}, loaded+attached in {} ms, unresolved {:?}",
                cg.scope.cgroup_id,
                cg.scope.level,
                t0.elapsed().as_millis(),
                guard.unresolved()
            ),
        );
        match guard.verified_insns() {
            Ok(n) => println!("ASSAY-BENCH verifier/assay_file_open/verified_insns {n}"),
            Err(e) => s.fail("fileguard/verified-insns", e),
        }
        let ev = Events::new(&guard);

        let case =
            |s: &mut Suite, name: &str, expect: Expect, inside: bool, op: &dyn Fn() -> i32| {
                open_case(s, &ev, &cg, (name, expect, inside), op)
            };
        // Rows of (case, expected, in scope, file opened).
        let rows = |s: &mut Suite, rows: &[(&str, Expect, bool, PathBuf)]| {
            for (name, expect, inside, path) in rows {
                case(s, name, *expect, *inside, &|| try_open(path));
            }
        };

        // Exact file, in and out of scope.
        rows(
            s,
            &[
                (
                    "exact/denied-in-scope",
                    Denied(R_SECRET),
                    true,
                    p("secret.txt"),
                ),
                (
                    "exact/allowed-out-of-scope",
                    Allowed,
                    false,
                    p("secret.txt"),
                ),
                ("exact/other-file-allowed", Allowed, true, p("public.txt")),
            ],
        );
        // The event names the file's full path (from 5.11), whatever path
        // the opener used.
        {
            let _ = ev.take();
            let (_, code) = in_child(Some(&cg), || {
                try_open(format!("/proc/self/root{BASE}/./secret.txt"))
            });
            let want = guard
                .reports_paths()
                .then(|| p("secret.txt").display().to_string());
            let evs = ev.take();
            let got: Vec<Option<String>> = evs
                .iter()
                .filter_map(|e| e.as_ref().ok())
                .map(|e| e.path.clone())
                .collect();
            let ok = code == libc::EPERM && got.len() == 1 && got[0] == want;
            s.check(
                "event/full-path",
                if ok {
                    Ok(format!(
                        "path {:?} (kernel provides paths: {})",
                        got[0],
                        guard.reports_paths()
                    ))
                } else {
                    Err(format!("errno {code}, paths {got:?}, expected {want:?}"))
                },
            );
        }

        // Children and grandchildren of a process in scope are in scope.
        // The event comes from the (grand)child, whose pid the parent does not
        // know: any event of the rule counts, and there is only this process.
        {
            let _ = ev.take();
            let (_, code) = in_child(Some(&cg), || in_child(None, || try_open(p("secret.txt"))).1);
            s.check(
                "scope/child-denied",
                judge(Denied(R_SECRET), code, None, ev.take()),
            );
        }
        {
            let _ = ev.take();
            let (_, code) = in_child(Some(&cg), || {
                in_child(None, || in_child(None, || try_open(p("secret.txt"))).1).1
            });
            s.check(
                "scope/grandchild-denied",
                judge(Denied(R_SECRET), code, None, ev.take()),
            );
        }

        // Bypass attempts.
        std::os::unix::fs::symlink(p("secret.txt"), p("link")).unwrap();
        std::os::unix::fs::symlink(p("link"), p("link2")).unwrap();
        std::os::unix::fs::symlink("link2", p("link3")).unwrap();
        case(s, "bypass/symlink", Denied(R_SECRET), true, &|| {
            try_open(p("link"))
        });
        case(s, "bypass/symlink-chain", Denied(R_SECRET), true, &|| {
            try_open(p("link3"))
        });
        std::fs::create_dir_all(p("elsewhere")).unwrap();
        std::fs::hard_link(p("secret.txt"), p("elsewhere/hard")).unwrap();
        case(s, "bypass/hardlink", Denied(R_SECRET), true, &|| {
            try_open(p("elsewhere/hard"))
        });
        std::fs::rename(p("rename-me.txt"), p("elsewhere/renamed.txt")).unwrap();
        case(
            s,
            "bypass/rename-after-start",
            Denied(R_RENAMED),
            true,
            &|| try_open(p("elsewhere/renamed.txt")),
        );
        write(p("bindfile"));
        match mount_bind(&p("secret.txt"), &p("bindfile")) {
            Ok(()) => case(s, "bypass/bind-mount-file", Denied(R_SECRET), true, &|| {
                try_open(p("bindfile"))
            }),
            Err(e) => s.fail("bypass/bind-mount-file", e),
        }
        std::fs::create_dir_all("/mnt/binddir").unwrap();
        match mount_bind(Path::new(BASE), Path::new("/mnt/binddir")) {
            Ok(()) => case(s, "bypass/bind-mount-dir", Denied(R_SECRET), true, &|| {
                try_open("/mnt/binddir/secret.txt")
            }),
            Err(e) => s.fail("bypass/bind-mount-dir", e),
        }
        case(s, "bypass/proc-self-root", Denied(R_SECRET), true, &|| {
            try_open(format!("/proc/self/root{BASE}/secret.txt"))
        });
        case(s, "bypass/openat-dirfd", Denied(R_SECRET), true, &|| {
            let dir = cstr(BASE);
            // SAFETY: valid C strings; fds closed by _exit.
            unsafe {
                let d = libc::open(dir.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY);
                if d < 0 {
                    return 200;
                }
                let f = libc::openat(d, c"secret.txt".as_ptr(), libc::O_RDONLY);
                if f < 0 { errno() } else { 0 }
            }
        });
        case(
            s,
            "bypass/proc-fd-reopen-of-o-path",
            Denied(R_SECRET),
            true,
            &|| {
                let c = cstr(p("secret.txt"));
                // SAFETY: valid C string.
                let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH) };
                if fd < 0 {
                    // O_PATH does not open the file: file_open must not see it.
                    return 201;
                }
                // SAFETY: getpid has no preconditions.
                let pid = unsafe { libc::getpid() };
                try_open(format!("/proc/{pid}/fd/{fd}"))
            },
        );
        write(p("app/.env"));
        std::fs::create_dir_all(p("app/sub")).unwrap();
        write(p("later.txt"));
        case(
            s,
            "bypass/file-created-after-start-glob",
            Denied(R_ENV),
            true,
            &|| try_open(p("app/.env")),
        );
        // Creating such a file from inside the scope is an open too: refused.
        case(
            s,
            "bypass/create-in-scope-denied",
            Denied(R_ENV),
            true,
            &|| {
                let c = cstr(p("app/sub/.env"));
                // SAFETY: valid C string.
                let fd = unsafe { libc::open(c.as_ptr(), libc::O_WRONLY | libc::O_CREAT, 0o600) };
                if fd < 0 { errno() } else { 0 }
            },
        );
        case(
            s,
            "bypass/exact-created-after-start",
            Denied(R_LATER),
            true,
            &|| try_open(p("later.txt")),
        );
        {
            write(p("replacement.tmp"));
            std::fs::rename(p("replacement.tmp"), p("replaced.txt")).unwrap();
            case(
                s,
                "bypass/atomic-rename-replacement",
                Denied(R_REPLACED),
                true,
                &|| try_open(p("replaced.txt")),
            );
            // The new inode under another name: caught once refreshed.
            std::fs::hard_link(p("replaced.txt"), p("elsewhere/replaced-alias")).unwrap();
            match guard.refresh() {
                Ok(n) if n >= 1 => case(
                    s,
                    "bypass/replacement-hardlink-after-refresh",
                    Denied(R_REPLACED),
                    true,
                    &|| try_open(p("elsewhere/replaced-alias")),
                ),
                Ok(n) => s.fail(
                    "bypass/replacement-hardlink-after-refresh",
                    format!("refresh added {n} keys"),
                ),
                Err(e) => s.fail("bypass/replacement-hardlink-after-refresh", e),
            }
        }

        // A path whose directories do not exist at start: reported as
        // unresolved, then followed by the inotify watch and refresh().
        {
            let name = "bypass/exact-whose-directory-appears-later";
            let before: Vec<_> = guard.unresolved().iter().map(|u| u.path.clone()).collect();
            let mut w = guard.watch().expect("inotify watch");
            std::fs::create_dir_all(p("nodir/deeper")).unwrap();
            write(p("nodir/deeper/secret"));
            let mut rounds = 0;
            while !guard.unresolved().is_empty() && rounds < 10 {
                rounds += 1;
                if w.wait(Duration::from_secs(1)).expect("inotify") {
                    w = guard.watch().expect("inotify watch");
                }
                guard.refresh().expect("refresh");
            }
            if before.is_empty() || !guard.unresolved().is_empty() {
                s.fail(
                    name,
                    format!(
                        "unresolved before {before:?}, after {:?}",
                        guard.unresolved()
                    ),
                );
            } else {
                case(s, name, Denied(R_NODIR), true, &|| {
                    try_open(p("nodir/deeper/secret"))
                });
            }
        }

        // Globs.
        write(Path::new(HOME).join(".ssh/id_ed25519"));
        case(s, "glob/ssh-key-denied", Denied(R_SSH), true, &|| {
            try_open(Path::new(HOME).join(".ssh/id_ed25519"))
        });
        case(s, "glob/sshx-allowed", Allowed, true, &|| {
            try_open(Path::new(HOME).join(".sshx/a"))
        });
        write(p("app/.env.example"));
        rows(
            s,
            &[
                (
                    "glob/env-example-allowed",
                    Allowed,
                    true,
                    p("app/.env.example"),
                ),
                (
                    "glob/subtree-denied",
                    Denied(R_DATA),
                    true,
                    p("data/sub/deep/file"),
                ),
                (
                    "glob/subtree-sibling-allowed",
                    Allowed,
                    true,
                    p("data-other/file"),
                ),
                ("glob/subtree-root-itself-allowed", Allowed, true, p("data")),
            ],
        );
        std::fs::create_dir_all(p("data/mnt")).unwrap();
        match mount_tmpfs(&p("data/mnt")) {
            Ok(()) => {
                write(p("data/mnt/inner"));
                case(
                    s,
                    "glob/subtree-across-mount",
                    Denied(R_DATA),
                    true,
                    &|| try_open(p("data/mnt/inner")),
                );
            }
            Err(e) => s.fail("glob/subtree-across-mount", e),
        }
        write(Path::new(HOME).join(".aws/credentials"));
        write(Path::new(HOME).join(".aws/config"));
        write(Path::new(HOME).join("credentials"));
        rows(
            s,
            &[
                (
                    "glob/dir-and-name-denied",
                    Denied(R_AWS),
                    true,
                    Path::new(HOME).join(".aws/credentials"),
                ),
                (
                    "glob/dir-other-name-allowed",
                    Allowed,
                    true,
                    Path::new(HOME).join(".aws/config"),
                ),
                (
                    "glob/name-other-dir-allowed",
                    Allowed,
                    true,
                    Path::new(HOME).join("credentials"),
                ),
            ],
        );
        write(p("x/server.pem"));
        write(p("x/server.pem.bak"));
        rows(
            s,
            &[
                ("glob/suffix-denied", Denied(R_PEM), true, p("x/server.pem")),
                (
                    "glob/suffix-longer-allowed",
                    Allowed,
                    true,
                    p("x/server.pem.bak"),
                ),
            ],
        );

        // Actions.
        case(
            s,
            "action/log-allows-with-event",
            Logged(R_LOG),
            true,
            &|| try_open(p("logged.txt")),
        );
        {
            let _ = ev.take();
            let (pid, code) = in_child(Some(&cg), || try_open(p("kill.txt")));
            let r = judge(Denied(R_KILL), code, Some(pid), ev.take());
            // The kill itself is the monitor's job; the kernel's part is the
            // denial and an event that says trigger_kill.
            s.check(
                "action/trigger-kill-denies-and-reports",
                r.and_then(|d| {
                    if d.contains("TriggerKill") {
                        Ok(d)
                    } else {
                        Err(format!("event action is not trigger_kill: {d}"))
                    }
                }),
            );
        }

        // Detach: the same open succeeds once the guard is dropped.
        drop(ev);
        drop(guard);
        let (_, code) = in_child(Some(&cg), || try_open(p("secret.txt")));
        if code == 0 {
            s.pass("fileguard/drop-detaches", "open allowed after drop");
        } else {
            s.fail(
                "fileguard/drop-detaches",
                format!("errno {code} after drop"),
            );
        }
        // SAFETY: valid C strings; best effort cleanup of the suite's mounts.
        unsafe {
            libc::umount2(cstr(p("data/mnt")).as_ptr(), libc::MNT_DETACH);
            libc::umount2(cstr("/mnt/binddir").as_ptr(), libc::MNT_DETACH);
            libc::umount2(cstr(p("bindfile")).as_ptr(), libc::MNT_DETACH);
        }
    }

    fn anchored(dir: &Path, comps: &[&str]) -> GlobForm {
        GlobForm::Anchored {
            dir: dir.to_path_buf(),
            components: comps.iter().map(|c| c.to_string()).collect(),
        }
    }

    fn except(mut r: Rule, forms: Vec<GlobForm>) -> Rule {
        if let Matcher::FileOpen(m) = &mut r.matcher {
            m.except = forms
                .into_iter()
                .map(|f| PathGlob {
                    text: format!("{f:?}"),
                    form: f,
                })
                .collect();
        }
        r
    }

    /// `/home/*/.aws/credentials`-style globs and `except` lists.
    fn anchored_and_except(s: &mut Suite) {
        let q = |rel: &str| Path::new(BASE).join("anch").join(rel);
        let _ = std::fs::remove_dir_all(q(""));
        for f in [
            "homes/alice/.aws/credentials",
            "homes/alice/.aws/config",
            "homes/alice/x/.aws/credentials",
            "homes/bob/.aws/credentials",
            "other/alice/.aws/credentials",
            "elsewhere-eve/.aws/credentials",
            "priv/key",
            "priv/public.txt",
            "priv/id.pub",
            "priv/sub/key",
            "gdata/secret",
            "gdata/public/x",
            "gdata/deep/README",
        ] {
            write(q(f));
        }
        // A home that is a symlink when the rules load: resolved to inodes.
        std::os::unix::fs::symlink(q("elsewhere-eve"), q("homes/eve")).unwrap();
        // The glob's directory is the root of a mounted filesystem.
        std::fs::create_dir_all(q("mhomes")).unwrap();
        let mounted = mount_tmpfs(&q("mhomes"));
        if mounted.is_ok() {
            write(q("mhomes/u/key"));
        }
        const A: u32 = 0;
        const B: u32 = 1;
        const C: u32 = 2;
        const D: u32 = 3;
        const E: u32 = 4;
        let rules = vec![
            rule(
                "aws",
                Action::Deny,
                vec![anchored(&q("homes"), &["*", ".aws", "credentials"])],
            ),
            except(
                rule("priv", Action::Deny, vec![anchored(&q("priv"), &["*"])]),
                vec![
                    GlobForm::Exact(q("priv/public.txt")),
                    GlobForm::Suffix(".pub".into()),
                ],
            ),
            except(
                rule("gdata", Action::Deny, vec![GlobForm::Subtree(q("gdata"))]),
                vec![
                    GlobForm::Subtree(q("gdata/public")),
                    GlobForm::Basename("README".into()),
                ],
            ),
            rule(
                "gdata-log",
                Action::Log,
                vec![GlobForm::Subtree(q("gdata"))],
            ),
            rule(
                "mhomes",
                Action::Deny,
                vec![anchored(&q("mhomes"), &["*", "key"])],
            ),
        ];
        let cg = Cgroup::create("assay-vm-anchored");
        let guard = match FileGuard::load(&rules, &cg.scope, None) {
            Ok(g) => g,
            Err(e) => return s.fail("anchored/load", format!("{e:#}")),
        };
        match guard.verified_insns() {
            Ok(n) => println!("ASSAY-BENCH verifier/assay_file_open/anchored_except {n}"),
            Err(e) => s.fail("anchored/verified-insns", e),
        }
        let ev = Events::new(&guard);
        let case =
            |s: &mut Suite, name: &str, expect: Expect, inside: bool, op: &dyn Fn() -> i32| {
                open_case(s, &ev, &cg, (name, expect, inside), op)
            };
        // Rows: (case, expected, in scope, file under anch/). A file written
        // `+path` is created just before it is opened (after the load).
        let table = |s: &mut Suite, rows: &[(&str, Expect, bool, &str)]| {
            for &(name, expect, inside, rel) in rows {
                let rel = match rel.strip_prefix('+') {
                    Some(r) => {
                        write(q(r));
                        r
                    }
                    None => rel,
                };
                case(s, name, expect, inside, &|| try_open(q(rel)));
            }
        };
        let aws = "homes/alice/.aws/credentials";
        table(
            s,
            &[
                ("anchored/denied", Denied(A), true, aws),
                (
                    "anchored/second-match",
                    Denied(A),
                    true,
                    "homes/bob/.aws/credentials",
                ),
                ("anchored/out-of-scope-allowed", Allowed, false, aws),
                (
                    "anchored/other-name-allowed",
                    Allowed,
                    true,
                    "homes/alice/.aws/config",
                ),
                (
                    "anchored/deeper-allowed",
                    Allowed,
                    true,
                    "homes/alice/x/.aws/credentials",
                ),
                (
                    "anchored/other-directory-allowed",
                    Allowed,
                    true,
                    "other/alice/.aws/credentials",
                ),
                (
                    "anchored/home-created-after-start",
                    Denied(A),
                    true,
                    "+homes/carol/.aws/credentials",
                ),
                (
                    "anchored/symlinked-home-at-start",
                    Denied(A),
                    true,
                    "elsewhere-eve/.aws/credentials",
                ),
            ],
        );
        std::os::unix::fs::symlink(q(aws), q("link")).unwrap();
        table(s, &[("anchored/symlink-to-file", Denied(A), true, "link")]);
        std::fs::create_dir_all("/mnt/awsbind").unwrap();
        match mount_bind(&q("homes/alice/.aws"), Path::new("/mnt/awsbind")) {
            Ok(()) => case(s, "anchored/bind-mount-dir", Denied(A), true, &|| {
                try_open("/mnt/awsbind/credentials")
            }),
            Err(e) => s.fail("anchored/bind-mount-dir", e),
        }
        std::fs::create_dir_all(q("homes/dan")).unwrap();
        match mount_tmpfs(&q("homes/dan")) {
            Ok(()) => table(
                s,
                &[(
                    "anchored/home-is-a-mount",
                    Denied(A),
                    true,
                    "+homes/dan/.aws/credentials",
                )],
            ),
            Err(e) => s.fail("anchored/home-is-a-mount", e),
        }
        match mounted {
            Ok(()) => table(
                s,
                &[
                    (
                        "anchored/directory-is-a-mount-root",
                        Denied(E),
                        true,
                        "+mhomes/v/key",
                    ),
                    (
                        "anchored/mount-root-resolved-at-start",
                        Denied(E),
                        true,
                        "mhomes/u/key",
                    ),
                ],
            ),
            Err(e) => s.fail("anchored/directory-is-a-mount-root", e),
        }
        table(
            s,
            &[
                ("anchored/trailing-star-denied", Denied(B), true, "priv/key"),
                (
                    "anchored/trailing-star-created-after-start",
                    Denied(B),
                    true,
                    "+priv/created-later",
                ),
                (
                    "anchored/trailing-star-not-deeper",
                    Allowed,
                    true,
                    "priv/sub/key",
                ),
                ("except/exact-exempt", Allowed, true, "priv/public.txt"),
                ("except/suffix-exempt", Allowed, true, "priv/id.pub"),
                (
                    "except/created-after-start-exempt",
                    Allowed,
                    true,
                    "+priv/new.pub",
                ),
                ("except/gated-rule-denies", Denied(C), true, "gdata/secret"),
                (
                    "except/exempt-subtree-weaker-rule-applies",
                    Logged(D),
                    true,
                    "gdata/public/x",
                ),
                (
                    "except/exempt-basename-weaker-rule-applies",
                    Logged(D),
                    true,
                    "gdata/deep/README",
                ),
            ],
        );
        drop(ev);
        drop(guard);
        // SAFETY: valid C strings; best effort cleanup of this group's mounts.
        unsafe {
            libc::umount2(cstr("/mnt/awsbind").as_ptr(), libc::MNT_DETACH);
            libc::umount2(cstr(q("homes/dan")).as_ptr(), libc::MNT_DETACH);
            libc::umount2(cstr(q("mhomes")).as_ptr(), libc::MNT_DETACH);
        }
    }

    fn nobpf(s: &mut Suite) {
        let cg = Cgroup::create("assay-vm-nobpf");
        write(p("secret.txt"));
        let rules = vec![rule(
            "secret",
            Action::Deny,
            vec![GlobForm::Exact(p("secret.txt"))],
        )];
        match FileGuard::load(&rules, &cg.scope, None) {
            Ok(_) => s.fail(
                "nobpf/fileguard-refuses",
                "FileGuard loaded although bpf is not an active LSM",
            ),
            Err(e @ assay::monitor::fileguard::FileGuardError::LsmInactive(_)) => {
                s.pass("nobpf/fileguard-refuses", format!("{e}"))
            }
            Err(e) => s.fail("nobpf/fileguard-refuses", format!("wrong error: {e:#}")),
        }
        // What the kernel itself does without the preflight, for the record:
        // the reason FileGuard checks the active LSM list first.
        {
            use assay::monitor::fileguard_skel::FileguardSkelBuilder;
            use libbpf_rs::skel::{OpenSkel, SkelBuilder};
            let mut obj = std::mem::MaybeUninit::uninit();
            let r = FileguardSkelBuilder::default()
                .open(&mut obj)
                .and_then(|o| o.load())
                .map(|sk| sk.progs.assay_file_open.attach_lsm().map(|_| ()));
            let what = match r {
                Err(e) => format!("load refused: {e}"),
                Ok(Err(e)) => format!("loaded, attach refused: {e}"),
                Ok(Ok(())) => "loaded and attached (hooks would never run)".to_string(),
            };
            println!("ASSAY-INFO nobpf/kernel-without-preflight {what}");
        }
    }

    // ---- benchmark ----

    fn time_opens(cg: Option<&Cgroup>, paths: &[PathBuf], n: u32) -> f64 {
        let mut fds = [0; 2];
        // SAFETY: fds has room for two descriptors.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        let cs: Vec<CString> = paths.iter().map(cstr).collect();
        in_child(cg, move || {
            let t = Instant::now();
            for i in 0..n as usize {
                // SAFETY: valid C string; fd closed right away.
                unsafe {
                    let fd = libc::open(cs[i % cs.len()].as_ptr(), libc::O_RDONLY);
                    if fd < 0 {
                        return 1;
                    }
                    libc::close(fd);
                }
            }
            let ns = t.elapsed().as_nanos() as f64 / f64::from(n);
            let b = ns.to_ne_bytes();
            // SAFETY: writing 8 bytes from a live buffer to our pipe.
            unsafe { libc::write(fds[1], b.as_ptr().cast(), b.len()) };
            0
        });
        let mut b = [0u8; 8];
        // SAFETY: reading 8 bytes into a live buffer; closing our pipe ends.
        unsafe {
            libc::read(fds[0], b.as_mut_ptr().cast(), b.len());
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
        f64::from_ne_bytes(b)
    }

    /// Median of timings (ns per open+close).
    fn median(mut v: Vec<f64>) -> f64 {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    }

    fn bench(s: &mut Suite) {
        const N: u32 = 2_000;
        const ROUNDS: usize = 9;
        let dir = p("bench");
        // Repeated opens of a shallow and a 6-deep file (the monitor's
        // verdict cache answers them after the first), and first opens of
        // N different 6-deep files (every one judged).
        let hot = [dir.join("shallow.txt"), dir.join("a/b/c/d/e/target.txt")];
        hot.iter().for_each(write);
        let cold: Vec<PathBuf> = (0..N)
            .map(|i| dir.join(format!("cold/a/b/c/d/e/f{i}")))
            .collect();
        cold.iter().for_each(write);
        let mut rules = Vec::new();
        // 1,000 exact files.
        let forms: Vec<GlobForm> = (0..1000)
            .map(|i| {
                let f = dir.join(format!("rules/f{i}"));
                write(&f);
                GlobForm::Exact(f)
            })
            .collect();
        rules.push(rule("inodes", Action::Deny, forms));
        // 50 globs of every kernel form.
        let mut globs = Vec::new();
        for i in 0..15 {
            globs.push(GlobForm::Basename(format!(".secret{i}")));
        }
        for i in 0..10 {
            globs.push(GlobForm::InDirNamed(format!(".vault{i}")));
        }
        for i in 0..10 {
            globs.push(GlobForm::DirAndBasename {
                dir: format!(".cloud{i}"),
                name: "credentials".into(),
            });
        }
        for ext in [".pem", ".key", ".p12", ".kdbx", ".gpg"] {
            globs.push(GlobForm::Suffix(ext.into()));
        }
        for i in 0..5 {
            let d = dir.join(format!("protected{i}"));
            std::fs::create_dir_all(&d).unwrap();
            globs.push(GlobForm::Subtree(d));
        }
        for i in 0..4 {
            let d = dir.join(format!("homes{i}"));
            std::fs::create_dir_all(&d).unwrap();
            globs.push(anchored(&d, &["*", ".aws", "credentials"]));
        }
        // The deepest anchored glob, all `*`: every open reads 8 levels.
        std::fs::create_dir_all(dir.join("deep")).unwrap();
        globs.push(anchored(&dir.join("deep"), &["*"; 8]));
        assert_eq!(globs.len(), 50);
        // With an except list the rule is gated: every key's masks count.
        rules.push(except(
            rule("globs", Action::Deny, globs),
            vec![GlobForm::Basename(".secret0.example".into())],
        ));

        let cg = Cgroup::create("assay-vm-bench");
        // Rounds alternate "no program" and "loaded" so drift of the emulated
        // machine hits both sides alike.
        let (mut base_in, mut base_out, mut in_scope, mut out_scope) =
            (vec![], vec![], vec![], vec![]);
        let (mut base_cold, mut in_cold) = (vec![], vec![]);
        for round in 0..ROUNDS {
            base_in.push(time_opens(Some(&cg), &hot, N));
            base_out.push(time_opens(None, &hot, N));
            base_cold.push(time_opens(Some(&cg), &cold, N));
            let guard = match FileGuard::load(&rules, &cg.scope, None) {
                Ok(g) => g,
                Err(e) => {
                    s.fail("bench/load", format!("{e:#}"));
                    return;
                }
            };
            // Sanity: the rules are live (a rule file is denied in scope).
            let (_, code) = in_child(Some(&cg), || try_open(dir.join("rules/f999")));
            if code != libc::EPERM {
                s.fail("bench/rules-live", format!("errno {code}"));
                return;
            }
            if round == 0
                && let Ok(n) = guard.verified_insns()
            {
                println!(
                    "ASSAY-BENCH verifier/assay_file_open-1000-inodes-50-globs-except/verified_insns {n}"
                );
            }
            // First: this load has judged none of them yet.
            in_cold.push(time_opens(Some(&cg), &cold, N));
            in_scope.push(time_opens(Some(&cg), &hot, N));
            out_scope.push(time_opens(None, &hot, N));
        }
        let (base_cold, in_cold) = (median(base_cold), median(in_cold));
        println!("ASSAY-BENCH open-close/first-open-no-program-in-cgroup-ns {base_cold:.0}");
        println!("ASSAY-BENCH open-close/first-open-in-scope-ns {in_cold:.0}");
        println!(
            "ASSAY-BENCH open-close/first-open-in-scope-ratio {:.2}",
            in_cold / base_cold
        );
        let (base_in, base_out) = (median(base_in), median(base_out));
        let (in_scope, out_scope) = (median(in_scope), median(out_scope));
        println!("ASSAY-BENCH open-close/no-program-in-cgroup-ns {base_in:.0}");
        println!("ASSAY-BENCH open-close/no-program-outside-ns {base_out:.0}");
        println!("ASSAY-BENCH open-close/in-scope-ns {in_scope:.0}");
        println!("ASSAY-BENCH open-close/out-of-scope-ns {out_scope:.0}");
        println!(
            "ASSAY-BENCH open-close/in-scope-ratio {:.2}",
            in_scope / base_in
        );
        println!(
            "ASSAY-BENCH open-close/out-of-scope-ratio {:.2}",
            out_scope / base_out
        );
        s.pass(
            "bench/ran",
            format!("median of {ROUNDS} interleaved rounds of {N} open+close (TCG-emulated CPU)"),
        );
    }

    /// Cases through the `assay monitor` binary (the static one in the
    /// initramfs). They need the monitor: on a build without it they are
    /// reported as SKIP with the reason.
    mod e2e {
        use super::*;
        use std::net::TcpListener;
        use std::process::{Command, Stdio};

        fn assay() -> Command {
            crate::common::assay_at(std::env::var("ASSAY_BIN").unwrap_or_else(|_| "assay".into()))
        }

        /// Why `assay monitor` cannot be used, if it cannot.
        fn monitor_missing() -> Option<String> {
            match assay().args(["monitor", "--help"]).output() {
                Ok(o)
                    if o.status.success()
                        && String::from_utf8_lossy(&o.stdout).contains("--policy") =>
                {
                    None
                }
                Ok(o) if o.status.success() => {
                    Some("`assay monitor` has no --policy option: not built on this branch".into())
                }
                Ok(o) => Some(format!(
                    "`assay monitor --help` failed (exit {:?}: {})",
                    o.status.code(),
                    String::from_utf8_lossy(&o.stderr).trim()
                )),
                Err(e) => Some(format!("cannot run assay: {e}")),
            }
        }

        /// The offender processes, run as `ASSAY_VM_HELPER=<what> vm_lsm`.
        pub fn helper(what: &str) -> ExitCode {
            let (verb, arg) = what.split_once(':').unwrap_or((what, ""));
            match verb {
                // Connect (denied), then linger: only a kill ends it early.
                "connect-then-sleep" => {
                    let r = std::net::TcpStream::connect((
                        "127.0.0.1",
                        arg.parse::<u16>().unwrap_or(1),
                    ));
                    eprintln!("helper: connect: {r:?}");
                    std::thread::sleep(Duration::from_secs(300));
                    println!("survived");
                    ExitCode::SUCCESS
                }
                "connect" => {
                    match std::net::TcpStream::connect((
                        "127.0.0.1",
                        arg.parse::<u16>().unwrap_or(1),
                    )) {
                        Ok(_) => ExitCode::SUCCESS,
                        Err(e) => {
                            println!("{}", e.raw_os_error().unwrap_or(0));
                            ExitCode::from(3)
                        }
                    }
                }
                // One ping (ping socket) to each comma-separated address:
                // `address replied|noreply|errno N` lines.
                "ping" => {
                    for a in arg.split(',').filter_map(|a| a.parse().ok()) {
                        println!("{a} {}", ping_once(a));
                    }
                    ExitCode::SUCCESS
                }
                // The self-protection attempts, against the monitor (our
                // parent: wrapper mode), one `name errno` line each.
                "tamper" => {
                    // SAFETY: plain syscall.
                    let monitor = unsafe { libc::getppid() };
                    for (name, e) in tamper_ops(monitor, Path::new(arg)) {
                        println!("{name} {e}");
                    }
                    ExitCode::SUCCESS
                }
                // The link and rename attempts on protected files, one
                // `name errno` line each (see MOVE_OPS).
                "moves" => {
                    for op in MOVE_OPS {
                        println!("{op} {}", move_op(op, Path::new(arg)));
                    }
                    ExitCode::SUCCESS
                }
                "handle" => {
                    handle_attempts(Path::new(arg));
                    ExitCode::SUCCESS
                }
                "cache" => {
                    for (op, e) in e2e::cache_steps(Path::new(arg)) {
                        println!("{op} {e}");
                    }
                    ExitCode::SUCCESS
                }
                "mounts" => {
                    for op in e2e::MOUNT_OPS {
                        println!("{op} {}", e2e::mount_op(op, Path::new(arg)));
                    }
                    ExitCode::SUCCESS
                }
                _ => ExitCode::from(99),
            }
        }

        /// Links and renames that would take a protected file out of its
        /// rule (or replace one), by rule form, and what each does.
        pub const MOVE_OPS: [&str; 16] = [
            "link-subtree",
            "rename-subtree",
            "rename-subtree-dir",
            "rename-within-subtree",
            "link-created-after-start",
            "link-basename",
            "rename-basename",
            "rename-dirname-dir",
            "link-dirname",
            "rename-anchored-star-dir",
            "rename-anchored-literal-dir",
            "link-anchored",
            "rename-onto-protected",
            "exchange-with-protected",
            "open-deeper-than-the-walk",
            "open-as-deep-as-a-path-reaches",
        ];

        /// Levels of the deepest file: its path, under /tmp/e2e/<case>/,
        /// stays within PATH_MAX (4096).
        pub const DEEPEST: usize = 1900;

        /// Whether the kernel has bpf_loop (5.17), so assay walks any depth
        /// instead of [`MAX_DEPTH`] levels.
        pub fn walk_is_looped() -> bool {
            let r = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
            let mut v = r
                .split(|c: char| !c.is_ascii_digit())
                .filter_map(|x| x.parse::<u32>().ok());
            (v.next().unwrap_or(0), v.next().unwrap_or(0)) >= (5, 17)
        }

        /// The files `move_op` works on, under `d`; `late` and `deep` are
        /// made by the caller after the monitor started.
        pub fn move_tree(d: &Path) {
            for (f, text) in [
                ("data/x", "s3cret-x\n"),
                ("data/sub/y", "s3cret-y\n"),
                ("proj/.env", "s3cret-env\n"),
                ("home/u/.ssh/id_ed25519", "s3cret-key\n"),
                ("home/u/.aws/credentials", "s3cret-aws\n"),
                ("out/free", "free\n"),
            ] {
                let p = d.join(f);
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(p, text).unwrap();
            }
        }

        /// A file 40 directories below `data` (deeper than the unrolled walk
        /// of kernels before 5.17), returned, and one [`DEEPEST`] below.
        pub fn deep_file(d: &Path) -> PathBuf {
            let mut p = d.join("data/deep");
            let mut shallow = None;
            for level in 1..=DEEPEST {
                p.push("a");
                if level == 40 {
                    shallow = Some(p.join("f"));
                }
            }
            std::fs::create_dir_all(&p).unwrap();
            std::fs::write(p.join("f"), "s3cret-deepest\n").unwrap();
            let shallow = shallow.unwrap();
            std::fs::write(&shallow, "s3cret-deep\n").unwrap();
            shallow
        }

        /// One attempt of [`MOVE_OPS`] under `d`: its errno, 0 when it
        /// worked.
        pub fn move_op(op: &str, d: &Path) -> i32 {
            let p = |s: &str| cstr(d.join(s));
            let link = |a: &str, b: &str| {
                // SAFETY: valid C strings.
                if unsafe { libc::link(p(a).as_ptr(), p(b).as_ptr()) } == 0 {
                    0
                } else {
                    errno()
                }
            };
            let rename = |a: &str, b: &str, flags: u32| {
                // SAFETY: valid C strings; renameat2 with AT_FDCWD.
                let rc = unsafe {
                    libc::syscall(
                        libc::SYS_renameat2,
                        libc::AT_FDCWD,
                        p(a).as_ptr(),
                        libc::AT_FDCWD,
                        p(b).as_ptr(),
                        flags,
                    )
                };
                if rc == 0 { 0 } else { errno() }
            };
            match op {
                "link-subtree" => link("data/x", "out/x"),
                "rename-subtree" => rename("data/x", "out/x", 0),
                "rename-subtree-dir" => rename("data/sub", "out/sub", 0),
                "rename-within-subtree" => rename("data/x", "data/x2", 0),
                "link-created-after-start" => link("data/late", "out/late"),
                "link-basename" => link("proj/.env", "proj/e"),
                "rename-basename" => rename("proj/.env", "proj/e", 0),
                "rename-dirname-dir" => rename("home/u/.ssh", "home/u/s", 0),
                "link-dirname" => link("home/u/.ssh/id_ed25519", "out/k"),
                "rename-anchored-star-dir" => rename("home/u", "out/u", 0),
                "rename-anchored-literal-dir" => rename("home/u/.aws", "home/u/a", 0),
                "link-anchored" => link("home/u/.aws/credentials", "out/c"),
                "rename-onto-protected" => rename("out/free", "data/x", 0),
                "exchange-with-protected" => rename("out/free", "proj/.env", libc::RENAME_EXCHANGE),
                "open-deeper-than-the-walk" | "open-as-deep-as-a-path-reaches" => {
                    let levels = if op.starts_with("open-deeper") {
                        40
                    } else {
                        DEEPEST
                    };
                    let mut f = String::from("data/deep");
                    for _ in 0..levels {
                        f.push_str("/a");
                    }
                    f.push_str("/f");
                    match std::fs::read_to_string(d.join(f)) {
                        Ok(_) => 0,
                        Err(e) => e.raw_os_error().unwrap_or(255),
                    }
                }
                _ => 255,
            }
        }

        /// The ways around the monitor an in-scope root process would try.
        pub const TAMPER_OPS: [&str; 11] = [
            "bpf",
            "signal",
            "ptrace",
            "pidfd_getfd",
            "cgroup_write",
            "mount",
            "umount",
            "packet_socket",
            "raw_socket",
            "ping_socket",
            "block_device",
        ];

        /// Each of [`TAMPER_OPS`] and its errno (0: it worked).
        pub fn tamper_ops(monitor: i32, dir: &Path) -> Vec<(&'static str, i32)> {
            TAMPER_OPS
                .iter()
                .map(|op| (*op, tamper_op(op, monitor, dir)))
                .collect()
        }

        /// One attempt (`monitor`: the monitor's pid; `dir`: where the test
        /// put a block device node `blk`, a mount point `mnt` and a tmpfs
        /// mounted at `umnt`): its errno, 0 when it worked (then undone).
        pub fn tamper_op(op: &str, monitor: i32, dir: &Path) -> i32 {
            let e = |rc: i64| if rc < 0 { errno() } else { 0 };
            let close = |fd: i64| {
                if fd >= 0 {
                    // SAFETY: a descriptor this function opened.
                    unsafe { libc::close(fd as i32) };
                }
            };
            match op {
                // bpf(BPF_PROG_GET_NEXT_ID): the first step of detaching links.
                "bpf" => {
                    let mut attr = [0u8; 128];
                    // SAFETY: a zeroed attribute buffer of its stated size.
                    let rc =
                        unsafe { libc::syscall(libc::SYS_bpf, 11, attr.as_mut_ptr(), attr.len()) };
                    if rc < 0 && errno() == libc::ENOENT {
                        0
                    } else {
                        e(rc)
                    }
                }
                // SAFETY: plain syscall on the monitor's pid.
                "signal" => e(unsafe { libc::kill(monitor, libc::SIGUSR2) } as i64),
                "ptrace" => {
                    // SAFETY: plain syscalls; detach what was attached.
                    let rc = unsafe { libc::ptrace(libc::PTRACE_ATTACH, monitor, 0, 0) };
                    if rc == 0 {
                        unsafe {
                            libc::waitpid(monitor, std::ptr::null_mut(), libc::__WALL);
                            libc::ptrace(libc::PTRACE_DETACH, monitor, 0, 0);
                        }
                    }
                    e(rc)
                }
                "pidfd_getfd" => {
                    // SAFETY: plain syscalls; the descriptors are closed.
                    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, monitor, 0) };
                    if pidfd < 0 {
                        return errno();
                    }
                    let fd = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd, 0, 0) };
                    let r = e(fd);
                    close(fd);
                    close(pidfd);
                    r
                }
                "cgroup_write" => {
                    let c = cstr(cgroup2_root().join("cgroup.procs"));
                    // SAFETY: valid C string.
                    let fd = unsafe { libc::open(c.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
                    close(fd as i64);
                    e(fd as i64)
                }
                "mount" => {
                    let (mnt, tmpfs) = (cstr(dir.join("mnt")), cstr("tmpfs"));
                    // SAFETY: valid C strings.
                    let rc = unsafe {
                        libc::mount(
                            tmpfs.as_ptr(),
                            mnt.as_ptr(),
                            tmpfs.as_ptr(),
                            0,
                            std::ptr::null(),
                        )
                    };
                    if rc == 0 {
                        unsafe { libc::umount(mnt.as_ptr()) };
                    }
                    e(rc as i64)
                }
                "umount" => {
                    let umnt = cstr(dir.join("umnt"));
                    // SAFETY: valid C string.
                    e(unsafe { libc::umount(umnt.as_ptr()) } as i64)
                }
                "packet_socket" => {
                    // SAFETY: plain syscall.
                    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0x0300) };
                    close(fd as i64);
                    e(fd as i64)
                }
                // Past the connect/sendmsg hooks: a raw UDP socket, and a
                // ping socket (tamper_dir lets every group open those).
                "raw_socket" | "ping_socket" => {
                    let (ty, proto) = if op == "raw_socket" {
                        (libc::SOCK_RAW, libc::IPPROTO_UDP)
                    } else {
                        (libc::SOCK_DGRAM, libc::IPPROTO_ICMP)
                    };
                    // SAFETY: plain syscall.
                    let fd = unsafe { libc::socket(libc::AF_INET, ty, proto) };
                    close(fd as i64);
                    e(fd as i64)
                }
                "block_device" => {
                    let blk = cstr(dir.join("blk"));
                    // SAFETY: valid C string.
                    let fd = unsafe { libc::open(blk.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
                    close(fd as i64);
                    e(fd as i64)
                }
                _ => -1,
            }
        }

        /// One ICMP(v6) echo from a ping socket, its reply awaited for a
        /// second: `replied`, `noreply`, or `errno N` when the socket or
        /// the send failed.
        pub fn ping_once(to: std::net::IpAddr) -> String {
            let v6 = to.is_ipv6();
            let (family, proto) = if v6 {
                (libc::AF_INET6, libc::IPPROTO_ICMPV6)
            } else {
                (libc::AF_INET, libc::IPPROTO_ICMP)
            };
            // SAFETY: plain syscall.
            let fd = unsafe { libc::socket(family, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, proto) };
            if fd < 0 {
                return format!("errno {}", errno());
            }
            // SAFETY: zeroed sockaddr_storage is valid; each address is
            // written within it at its family's size.
            let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
            let len = match to {
                std::net::IpAddr::V4(a) => {
                    let sin = libc::sockaddr_in {
                        sin_family: libc::AF_INET as _,
                        sin_port: 0,
                        sin_addr: libc::in_addr {
                            s_addr: u32::from_ne_bytes(a.octets()),
                        },
                        sin_zero: [0; 8],
                    };
                    unsafe { std::ptr::write((&raw mut ss).cast(), sin) };
                    size_of::<libc::sockaddr_in>()
                }
                std::net::IpAddr::V6(a) => {
                    let sin6 = libc::sockaddr_in6 {
                        sin6_family: libc::AF_INET6 as _,
                        sin6_port: 0,
                        sin6_flowinfo: 0,
                        sin6_addr: libc::in6_addr {
                            s6_addr: a.octets(),
                        },
                        sin6_scope_id: 0,
                    };
                    unsafe { std::ptr::write((&raw mut ss).cast(), sin6) };
                    size_of::<libc::sockaddr_in6>()
                }
            };
            // Echo request; the kernel fills the id and checksum.
            let echo = [if v6 { 128u8 } else { 8 }, 0, 0, 0, 0, 0, 0, 1, b'x'];
            // SAFETY: our descriptor, buffers of their stated sizes.
            let n = unsafe {
                libc::sendto(
                    fd,
                    echo.as_ptr().cast(),
                    echo.len(),
                    0,
                    (&raw const ss).cast(),
                    len as libc::socklen_t,
                )
            };
            let r = if n < 0 {
                format!("errno {}", errno())
            } else {
                let want = if v6 { 129u8 } else { 0 };
                let deadline = Instant::now() + Duration::from_secs(1);
                let mut replied = false;
                while !replied && Instant::now() < deadline {
                    let mut p = libc::pollfd {
                        fd,
                        events: libc::POLLIN,
                        revents: 0,
                    };
                    // SAFETY: one valid pollfd; our descriptor and buffer.
                    if unsafe { libc::poll(&mut p, 1, 100) } > 0 {
                        let mut buf = [0u8; 128];
                        let got = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
                        replied = got > 0 && buf[0] == want;
                    }
                }
                if replied { "replied" } else { "noreply" }.to_string()
            };
            // SAFETY: our descriptor.
            unsafe { libc::close(fd) };
            r
        }

        /// A counter of /proc/net/snmp (`Icmp`, `InEchos`) or, with an
        /// empty group, of /proc/net/snmp6 (`Icmp6InEchos`).
        fn snmp(group: &str, name: &str) -> Option<u64> {
            if group.is_empty() {
                let t = std::fs::read_to_string("/proc/net/snmp6").ok()?;
                return t.lines().find_map(|l| {
                    let mut it = l.split_whitespace();
                    (it.next()? == name).then(|| it.next()?.parse().ok())?
                });
            }
            let t = std::fs::read_to_string("/proc/net/snmp").ok()?;
            let prefix = format!("{group}:");
            let mut rows = t.lines().filter(|l| l.starts_with(&prefix));
            let (names, values) = (rows.next()?, rows.next()?);
            names
                .split_whitespace()
                .zip(values.split_whitespace())
                .find(|(n, _)| *n == name)
                .and_then(|(_, v)| v.parse().ok())
        }

        /// An allowlist rule without ports covers ICMP: in scope a ping to
        /// the allowed 127.0.0.1 is answered, pings to 127.0.0.2 and ::1
        /// never leave (the echo counters say so) and each has a deny event
        /// whose sender is named from Linux 6.0 (the program variant the
        /// probe chose) and unnamed before. Outside the scope 127.0.0.2 is
        /// answered.
        pub fn icmp_judged(s: &mut Suite) {
            const NAME: &str = "e2e/monitor-icmp-judged";
            if let Some(why) = monitor_missing() {
                return s.skip(NAME, why);
            }
            let d = scratch("icmp");
            std::fs::write("/proc/sys/net/ipv4/ping_group_range", "0 2147483647").unwrap();
            let pol = d.join("p.yaml");
            std::fs::write(&pol, "version: \"2.0\"\nruntime_monitor:\n  enabled: true\n  rules:\n    - id: egress\n      type: net_connect\n      match: {outside_cidrs: [127.0.0.1/32]}\n      severity: high\n      action: deny\n").unwrap();
            let outside = ping_once("127.0.0.2".parse().unwrap());
            let echos = || (snmp("Icmp", "InEchos"), snmp("", "Icmp6InEchos"));
            let before = echos();
            let ev = d.join("events.jsonl");
            let out = assay()
                .args(["monitor", "--policy"])
                .arg(&pol)
                .arg("--events")
                .arg(&ev)
                .arg("--")
                .arg(std::env::current_exe().unwrap())
                .env("ASSAY_VM_HELPER", "ping:127.0.0.1,127.0.0.2,::1")
                .stdin(Stdio::null())
                .output()
                .unwrap();
            let after = echos();
            let stdout = String::from_utf8_lossy(&out.stdout);
            let lines: Vec<&str> = stdout.lines().collect();
            let evs = events(&ev);
            // Which variant a kernel takes is its own (the probe and the
            // verifier decide): a sender is either named right or not named.
            // The helper is this binary: its name, as the kernel keeps it.
            let me = std::env::current_exe().unwrap();
            let comm: String = me
                .file_name()
                .unwrap()
                .to_string_lossy()
                .chars()
                .take(15)
                .collect();
            let sender_ok = |e: &serde_json::Value| {
                (e["comm"] == comm.as_str() && e["tgid"].as_u64().is_some_and(|t| t > 0))
                    || (e["comm"].is_null() && e["tgid"] == 0 && e["pid"] == 0)
            };
            let named = evs.iter().any(|e| !e["comm"].is_null());
            let denied = |addr: &str, proto: &str| {
                evs.iter().any(|e| {
                    e["kind"] == "net_sendmsg"
                        && e["action"] == "deny"
                        && e["object"]["address"] == addr
                        && e["object"]["protocol"] == proto
                        && e["object"]["port"] == 0
                        && sender_ok(e)
                })
            };
            let v4_sent = after.0.zip(before.0).map(|(a, b)| a - b);
            let v6_sent = after.1.zip(before.1).map(|(a, b)| a - b);
            let ok = out.status.code() == Some(0)
                && outside == "replied"
                && lines.first() == Some(&"127.0.0.1 replied")
                && lines
                    .get(1)
                    .is_some_and(|l| l.starts_with("127.0.0.2 ") && !l.ends_with("replied"))
                && lines
                    .get(2)
                    .is_some_and(|l| l.starts_with("::1 ") && !l.ends_with("replied"))
                && v4_sent == Some(1)
                && v6_sent == Some(0)
                && denied("127.0.0.2", "icmp")
                && denied("::1", "icmpv6")
                && !evs.iter().any(|e| e["kind"] == "tamper");
            let detail = format!(
                "pings {lines:?}, outside {outside}, echos received v4 {v4_sent:?} v6 {v6_sent:?}, \
                 sender named {named}, exit {:?}, events {evs:?}, stderr {}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            );
            if ok {
                s.pass(NAME, detail);
            } else {
                s.fail(NAME, detail);
            }
        }

        /// Whether the running kernel is at least `major.minor`.
        fn kernel_at_least(major: u32, minor: u32) -> bool {
            let r = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
            let mut v = r
                .split(|c: char| !c.is_ascii_digit())
                .map(|n| n.parse::<u32>().unwrap_or(0));
            (v.next().unwrap_or(0), v.next().unwrap_or(0)) >= (major, minor)
        }

        fn scratch(name: &str) -> PathBuf {
            let d = Path::new("/tmp/e2e").join(name);
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).unwrap();
            d
        }

        fn events(path: &Path) -> Vec<serde_json::Value> {
            std::fs::read_to_string(path)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect()
        }

        fn time_ns(v: &serde_json::Value) -> Option<i128> {
            // RFC 3339 UTC with nanoseconds: compare within one day.
            let t = v["time"].as_str()?;
            let clock = t.split('T').nth(1)?.trim_end_matches('Z');
            let (hms, frac) = clock.split_once('.').unwrap_or((clock, "0"));
            let mut it = hms.split(':').map(|x| x.parse::<i128>().ok());
            let (h, m, sec) = (it.next()??, it.next()??, it.next()??);
            let frac: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
            Some(((h * 60 + m) * 60 + sec) * 1_000_000_000 + frac.parse::<i128>().ok()?)
        }

        pub fn egress_denied(s: &mut Suite) {
            const NAME: &str = "e2e/monitor-egress-denied";
            if let Some(why) = monitor_missing() {
                return s.skip(NAME, why);
            }
            let d = scratch("egress");
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.set_nonblocking(true).unwrap();
            let port = l.local_addr().unwrap().port();
            let pol = d.join("p.yaml");
            std::fs::write(&pol, format!(
                "version: \"2.0\"\nruntime_monitor:\n  enabled: true\n  rules:\n    - id: no-port\n      type: net_connect\n      match: {{ports: [{port}]}}\n      severity: high\n      action: deny\n"
            )).unwrap();
            let ev = d.join("events.jsonl");
            let me = std::env::current_exe().unwrap();
            let out = assay()
                .arg("monitor")
                .arg("--policy")
                .arg(&pol)
                .arg("--events")
                .arg(&ev)
                .arg("--")
                .arg(&me)
                .env("ASSAY_VM_HELPER", format!("connect:{port}"))
                .stdin(Stdio::null())
                .output()
                .unwrap();
            let evs = events(&ev);
            let accepted = l.accept().is_ok();
            let stdout = String::from_utf8_lossy(&out.stdout);
            let denied = evs.iter().find(|e| {
                e["kind"] == "net_connect" && e["action"] == "deny" && e["object"]["port"] == port
            });
            match (out.status.code(), stdout.trim(), accepted, denied) {
                (Some(3), "1", false, Some(e)) => s.pass(NAME, format!("EPERM, event {e}")),
                _ => s.fail(NAME, format!(
                    "exit {:?}, errno {stdout:?}, accepted {accepted}, events {evs:?}, stderr {}",
                    out.status.code(),
                    String::from_utf8_lossy(&out.stderr)
                )),
            }
        }

        pub fn trigger_kill(s: &mut Suite) {
            const NAME: &str = "e2e/monitor-trigger-kill";
            if let Some(why) = monitor_missing() {
                return s.skip(NAME, why);
            }
            let d = scratch("kill");
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let port = l.local_addr().unwrap().port();
            let incidents = d.join("incidents");
            let pol = d.join("p.yaml");
            std::fs::write(&pol, format!(
                "version: \"2.0\"\nkill_switch:\n  enabled: true\n  mode: immediate\n  output_dir: {}\nruntime_monitor:\n  enabled: true\n  rules:\n    - id: exfil\n      type: net_connect\n      match: {{ports: [{port}]}}\n      severity: critical\n      action: trigger_kill\n",
                incidents.display()
            )).unwrap();
            let ev = d.join("events.jsonl");
            let me = std::env::current_exe().unwrap();
            let t0 = Instant::now();
            let out = assay()
                .arg("monitor")
                .arg("--policy")
                .arg(&pol)
                .arg("--events")
                .arg(&ev)
                .arg("--")
                .arg(&me)
                .env("ASSAY_VM_HELPER", format!("connect-then-sleep:{port}"))
                .stdin(Stdio::null())
                .output()
                .unwrap();
            let took = t0.elapsed();
            let evs = events(&ev);
            let net = evs
                .iter()
                .find(|e| e["kind"] == "net_connect" && e["action"] == "trigger_kill");
            let kill = evs.iter().find(|e| e["kind"] == "kill");
            let detail = format!(
                "exit {:?} after {} ms, events {evs:?}, stderr {}",
                out.status.code(),
                took.as_millis(),
                String::from_utf8_lossy(&out.stderr)
            );
            let (Some(net), Some(kill)) = (net, kill) else {
                return s.fail(NAME, detail);
            };
            let incident = kill["incident"].as_str().map(PathBuf::from);
            let latency_ms = time_ns(kill)
                .zip(time_ns(net))
                .map(|(k, n)| (k - n) as f64 / 1e6);
            let ok = out.status.code() == Some(137)
                && !String::from_utf8_lossy(&out.stdout).contains("survived")
                && kill["all_gone"] == true
                && kill["pid"] == net["tgid"]
                && incident
                    .as_ref()
                    .is_some_and(|i| i.starts_with(&incidents) && i.join("incident.json").exists());
            if !ok {
                return s.fail(NAME, detail);
            }
            // Behaviour is asserted; the latency is a measurement (the CPU is
            // emulated, so it is many times the native figure): reported.
            match latency_ms {
                Some(ms) => {
                    println!("ASSAY-BENCH e2e/trigger-kill-event-to-kill-done-ms {ms:.1}");
                    s.pass(
                        NAME,
                        format!(
                            "offender killed, kill event {ms:.1} ms after the denied connect \
                             (TCG-emulated CPU), incident {}",
                            incident.unwrap().display()
                        ),
                    )
                }
                None => s.fail(NAME, format!("no timestamps to compare: {detail}")),
            }
        }

        /// A policy with one `file_open` rule (and a kill switch writing
        /// incidents under `incidents`, when given).
        fn file_policy(
            dir: &Path,
            id: &str,
            glob: &str,
            action: &str,
            incidents: Option<&Path>,
        ) -> PathBuf {
            let pol = dir.join("p.yaml");
            let kill = incidents.map_or(String::new(), |i| {
                format!(
                    "kill_switch:\n  enabled: true\n  mode: immediate\n  output_dir: {}\n",
                    i.display()
                )
            });
            std::fs::write(
                &pol,
                format!(
                    "version: \"2.0\"\n{kill}runtime_monitor:\n  enabled: true\n  rules:\n    - id: {id}\n      type: file_open\n      match:\n        path_globs: [\"{glob}\"]\n      severity: critical\n      action: {action}\n"
                ),
            )
            .unwrap();
            pol
        }

        /// `assay monitor --policy P --events E -- sh -c SCRIPT`, run in `dir`.
        fn monitor_sh(dir: &Path, pol: &Path, ev: &Path, script: &str) -> Command {
            let mut c = assay();
            c.arg("monitor")
                .arg("--policy")
                .arg(pol)
                .arg("--events")
                .arg(ev)
                .args(["--", "/bin/sh", "-c", script])
                .current_dir(dir)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            c
        }

        /// The pids a script printed as `<tag> <pid>` lines.
        fn printed_pid(stdout: &str, tag: &str) -> Option<u64> {
            stdout.lines().find_map(|l| {
                let (t, pid) = l.split_once(' ')?;
                (t == tag).then(|| pid.trim().parse().ok()).flatten()
            })
        }

        fn file_denials<'a>(
            evs: &'a [serde_json::Value],
            rule: &str,
            name: &str,
        ) -> Vec<&'a serde_json::Value> {
            evs.iter()
                .filter(|e| {
                    e["kind"] == "file_open"
                        && e["rule"] == rule
                        && e["action"] == "deny"
                        && e["object"]["name"] == name
                })
                .collect()
        }

        /// A `deny` file rule: the wrapped `cat` gets EPERM and a `file_open`
        /// event names it; the suite itself (not in the wrapped cgroup) reads
        /// the same file while the monitor runs.
        pub fn file_denied(s: &mut Suite) {
            const NAME: &str = "e2e/monitor-file-denied";
            if let Some(why) = monitor_missing() {
                return s.skip(NAME, why);
            }
            let d = scratch("file-deny");
            let secret = d.join("secret.txt");
            std::fs::write(&secret, "s3cret\n").unwrap();
            let pol = file_policy(&d, "secret", &secret.display().to_string(), "deny", None);
            let ev = d.join("events.jsonl");
            // The wrapped shell prints the pid that `exec cat` keeps, then
            // waits (bounded) for the suite's go-ahead so that the outside
            // read happens while the monitor enforces.
            let script = format!(
                "sh -c 'echo cat $$; exec cat {0}'; echo rc $?; touch ready; \
                 i=0; while [ ! -e go ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done",
                secret.display()
            );
            let child = monitor_sh(&d, &pol, &ev, &script).spawn().unwrap();
            let t0 = Instant::now();
            while !d.join("ready").exists() && t0.elapsed() < Duration::from_secs(60) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let outside = std::fs::read_to_string(&secret);
            std::fs::write(d.join("go"), "").unwrap();
            let out = child.wait_with_output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            let evs = events(&ev);
            let pid = printed_pid(&stdout, "cat");
            let hits = file_denials(&evs, "secret", "secret.txt");
            // The full path, where the kernel lets the program have it.
            let want_path = kernel_at_least(5, 11);
            let ev_ok = hits.iter().any(|e| {
                e["comm"] == "cat"
                    && pid.is_some()
                    && e["tgid"].as_u64() == pid
                    && (e["object"]["path"] == secret.display().to_string()
                        || (!want_path && e["object"]["path"].is_null()))
            });
            let detail = format!(
                "exit {:?}, outside read {outside:?}, stdout {stdout:?}, events {evs:?}, stderr {stderr}",
                out.status.code()
            );
            let ok = out.status.code() == Some(0)
                && stderr.contains("Operation not permitted")
                && stdout.lines().any(|l| l == "rc 1")
                && !stdout.contains("s3cret")
                && outside.as_deref().ok() == Some("s3cret\n")
                && ev_ok;
            if ok {
                s.pass(
                    NAME,
                    format!("cat EPERM, event {}, outside read ok", hits[0]),
                );
            } else {
                s.fail(NAME, detail);
            }
        }

        /// A child and a grandchild of the wrapped command are denied too.
        pub fn file_denied_descendants(s: &mut Suite) {
            const NAME: &str = "e2e/monitor-file-denied-child-grandchild";
            if let Some(why) = monitor_missing() {
                return s.skip(NAME, why);
            }
            let d = scratch("file-tree");
            let secret = d.join("secret.txt");
            std::fs::write(&secret, "s3cret\n").unwrap();
            let pol = file_policy(&d, "secret", &secret.display().to_string(), "deny", None);
            let ev = d.join("events.jsonl");
            std::fs::write(
                d.join("gc.sh"),
                format!("echo grandchild $$\nexec cat {}\n", secret.display()),
            )
            .unwrap();
            std::fs::write(
                d.join("child.sh"),
                format!(
                    "echo child $$\nsh ./gc.sh\necho gcrc $?\nexec cat {}\n",
                    secret.display()
                ),
            )
            .unwrap();
            let out = monitor_sh(&d, &pol, &ev, "echo top $$; sh ./child.sh; echo childrc $?")
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            let evs = events(&ev);
            let hits = file_denials(&evs, "secret", "secret.txt");
            let denied = |tag: &str| {
                let pid = printed_pid(&stdout, tag);
                pid.is_some()
                    && hits
                        .iter()
                        .any(|e| e["comm"] == "cat" && e["tgid"].as_u64() == pid)
            };
            let ok = out.status.code() == Some(0)
                && denied("child")
                && denied("grandchild")
                && printed_pid(&stdout, "child") != printed_pid(&stdout, "grandchild")
                && stdout.lines().any(|l| l == "gcrc 1")
                && stdout.lines().any(|l| l == "childrc 1")
                && stderr.matches("Operation not permitted").count() == 2
                && !stdout.contains("s3cret");
            if ok {
                s.pass(
                    NAME,
                    format!("child and grandchild EPERM, {} deny events", hits.len()),
                );
            } else {
                s.fail(
                    NAME,
                    format!(
                        "exit {:?}, stdout {stdout:?}, events {evs:?}, stderr {stderr}",
                        out.status.code()
                    ),
                );
            }
        }

        /// `trigger_kill` on a file rule: the wrapped command is killed, a
        /// kill event and an incident record exist.
        pub fn file_trigger_kill(s: &mut Suite) {
            const NAME: &str = "e2e/monitor-file-trigger-kill";
            if let Some(why) = monitor_missing() {
                return s.skip(NAME, why);
            }
            let d = scratch("file-kill");
            let secret = d.join("id_rsa");
            std::fs::write(&secret, "key\n").unwrap();
            let incidents = d.join("incidents");
            let pol = file_policy(
                &d,
                "ssh-key",
                &secret.display().to_string(),
                "trigger_kill",
                Some(&incidents),
            );
            let ev = d.join("events.jsonl");
            let t0 = Instant::now();
            let out = monitor_sh(
                &d,
                &pol,
                &ev,
                &format!("cat {}; sleep 300; echo survived", secret.display()),
            )
            .output()
            .unwrap();
            let took = t0.elapsed();
            let evs = events(&ev);
            let open = evs
                .iter()
                .find(|e| e["kind"] == "file_open" && e["rule"] == "ssh-key");
            let kill = evs.iter().find(|e| e["kind"] == "kill");
            let detail = format!(
                "exit {:?} after {} ms, events {evs:?}, stderr {}",
                out.status.code(),
                took.as_millis(),
                String::from_utf8_lossy(&out.stderr)
            );
            let (Some(open), Some(kill)) = (open, kill) else {
                return s.fail(NAME, detail);
            };
            let incident = kill["incident"].as_str().map(PathBuf::from);
            let ok = out.status.code() == Some(137)
                && open["action"] == "trigger_kill"
                && open["object"]["name"] == "id_rsa"
                && kill["rule"] == "ssh-key"
                && kill["all_gone"] == true
                && !String::from_utf8_lossy(&out.stdout).contains("survived")
                && incident
                    .as_ref()
                    .is_some_and(|i| i.starts_with(&incidents) && i.join("incident.json").exists());
            if !ok {
                return s.fail(NAME, detail);
            }
            // From the file_open event's timestamp to the kill event (written
            // when the kill has completed). The target is 100 ms on real
            // hardware; here the CPU is emulated (TCG, many times slower),
            // so the bound is a generous 2 s that only catches a kill that
            // waits on something (a poll interval, a timeout) and the figure
            // is reported.
            let Some(ms) = time_ns(kill)
                .zip(time_ns(open))
                .map(|(k, o)| (k - o) as f64 / 1e6)
            else {
                return s.fail(NAME, format!("no timestamps to compare: {detail}"));
            };
            println!("ASSAY-BENCH e2e/file-trigger-kill-event-to-kill-done-ms {ms:.1}");
            if (0.0..2000.0).contains(&ms) {
                s.pass(
                    NAME,
                    format!(
                        "killed (exit 137), kill done {ms:.1} ms after the file_open event \
                         (TCG-emulated CPU), incident {}",
                        incident.unwrap().display()
                    ),
                );
            } else {
                s.fail(
                    NAME,
                    format!("kill done {ms:.1} ms after the open (bound 2000 ms): {detail}"),
                );
            }
        }

        /// A glob through the monitor: `**/.env` denies `app/.env` and
        /// leaves `app/.env.example` readable.
        pub fn file_glob(s: &mut Suite) {
            const NAME: &str = "e2e/monitor-file-glob-dotenv";
            if let Some(why) = monitor_missing() {
                return s.skip(NAME, why);
            }
            let d = scratch("file-glob");
            std::fs::create_dir_all(d.join("app")).unwrap();
            std::fs::write(d.join("app/.env"), "TOKEN=secret\n").unwrap();
            std::fs::write(d.join("app/.env.example"), "TOKEN=changeme\n").unwrap();
            let pol = file_policy(&d, "dotenv", "**/.env", "deny", None);
            let ev = d.join("events.jsonl");
            let out = monitor_sh(
                &d,
                &pol,
                &ev,
                "cat app/.env; echo env $?; cat app/.env.example; echo example $?",
            )
            .output()
            .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            let evs = events(&ev);
            let hits = file_denials(&evs, "dotenv", ".env");
            let example_events = evs
                .iter()
                .filter(|e| e["object"]["name"] == ".env.example")
                .count();
            let ok = out.status.code() == Some(0)
                && stdout.lines().any(|l| l == "env 1")
                && stdout.lines().any(|l| l == "example 0")
                && stdout.contains("TOKEN=changeme")
                && !stdout.contains("TOKEN=secret")
                && stderr.contains("Operation not permitted")
                && hits.iter().any(|e| e["comm"] == "cat")
                && example_events == 0;
            if ok {
                s.pass(
                    NAME,
                    format!("app/.env EPERM (event {}), app/.env.example read", hits[0]),
                );
            } else {
                s.fail(
                    NAME,
                    format!(
                        "exit {:?}, stdout {stdout:?}, events {evs:?}, stderr {stderr}",
                        out.status.code()
                    ),
                );
            }
        }

        /// A policy file with `/dir/*/.aws/credentials` and an `except`
        /// list, validated and enforced by the real binary.
        pub fn anchored_except(s: &mut Suite) {
            const NAME: &str = "e2e/monitor-anchored-glob-and-except";
            if let Some(why) = monitor_missing() {
                return s.skip(NAME, why);
            }
            let d = scratch("anchored");
            for f in [
                "homes/u/.aws/credentials",
                "ssh/.ssh/id_ed25519",
                "ssh/.ssh/known_hosts",
            ] {
                std::fs::create_dir_all(d.join(f).parent().unwrap()).unwrap();
                std::fs::write(d.join(f), "SECRET\n").unwrap();
            }
            let pol = d.join("p.yaml");
            std::fs::write(
                &pol,
                format!(
                    "version: \"2.0\"\nruntime_monitor:\n  enabled: true\n  rules:\n    - id: aws\n      type: file_open\n      match:\n        path_globs: [\"{}/homes/*/.aws/credentials\"]\n      severity: critical\n      action: deny\n    - id: ssh\n      type: file_open\n      match:\n        path_globs: [\"**/.ssh/*\"]\n        except: [\"**/.ssh/known_hosts\"]\n      severity: high\n      action: deny\n    - id: later\n      type: file_open\n      match:\n        path_globs: [\"{}/missing/*/key\"]\n      severity: high\n      action: deny\n",
                    d.display(),
                    d.display()
                ),
            )
            .unwrap();
            let valid = assay()
                .args(["policy", "validate"])
                .arg(&pol)
                .output()
                .unwrap();
            let ev = d.join("events.jsonl");
            let out = monitor_sh(
                &d,
                &pol,
                &ev,
                "cat homes/u/.aws/credentials; echo aws $?; cat ssh/.ssh/id_ed25519; echo id $?; \
                 cat ssh/.ssh/known_hosts >/dev/null; echo known $?",
            )
            .output()
            .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            let evs = events(&ev);
            let aws = file_denials(&evs, "aws", "credentials");
            let ssh = file_denials(&evs, "ssh", "id_ed25519");
            let known = evs
                .iter()
                .filter(|e| e["object"]["name"] == "known_hosts")
                .count();
            let ok = valid.status.code() == Some(0)
                && out.status.code() == Some(0)
                && ["aws 1", "id 1", "known 0"]
                    .iter()
                    .all(|l| stdout.lines().any(|x| x == *l))
                && !stdout.contains("SECRET")
                && !aws.is_empty()
                && !ssh.is_empty()
                && known == 0
                && String::from_utf8_lossy(&out.stderr).contains("note: rule `later`");
            if ok {
                s.pass(
                    NAME,
                    format!(
                        "anchored glob denied (event {}), except honoured (event {})",
                        aws[0], ssh[0]
                    ),
                );
            } else {
                s.fail(
                    NAME,
                    format!(
                        "validate exit {:?} {}, monitor exit {:?}, stdout {stdout:?}, events {evs:?}, stderr {}",
                        valid.status.code(),
                        String::from_utf8_lossy(&valid.stderr),
                        out.status.code(),
                        String::from_utf8_lossy(&out.stderr)
                    ),
                );
            }
        }

        /// Attach mode: `assay monitor --cgroup` enforces a file rule on
        /// processes placed in an existing cgroup while it runs, and the
        /// open succeeds again once it has stopped.
        pub fn attach_mode_file_rule(s: &mut Suite) {
            const NAME: &str = "e2e/monitor-attach-mode-file-denied";
            if let Some(why) = monitor_missing() {
                return s.skip(NAME, why);
            }
            let d = scratch("attach");
            let secret = d.join("secret.txt");
            std::fs::write(&secret, "s3cret\n").unwrap();
            let pol = file_policy(&d, "secret", &secret.display().to_string(), "deny", None);
            let ev = d.join("events.jsonl");
            let cg = Cgroup::create("assay-e2e-attach");
            let mut mon = attach_monitor(&pol, &cg, Some(&ev), None);
            // Enforcing once an open from the cgroup fails.
            let t0 = Instant::now();
            let (mut pid, mut code) = (0, 0);
            while t0.elapsed() < Duration::from_secs(60) {
                (pid, code) = in_child(Some(&cg), || try_open(&secret));
                if code == libc::EPERM {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let (_, outside) = in_child(None, || try_open(&secret));
            // SAFETY: plain syscall on our child.
            unsafe { libc::kill(mon.id() as i32, libc::SIGTERM) };
            let status = mon.wait().unwrap();
            let mut err = String::new();
            let _ = std::io::Read::read_to_string(&mut mon.stderr.take().unwrap(), &mut err);
            // The pins the monitor removed drop their hold on the program
            // after an RCU grace period (bpffs frees inodes that way): the
            // open is allowed again within moments, not at once.
            let mut after = libc::EPERM;
            let t1 = Instant::now();
            while after == libc::EPERM && t1.elapsed() < Duration::from_secs(5) {
                after = in_child(Some(&cg), || try_open(&secret)).1;
                if after == libc::EPERM {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            let evs = events(&ev);
            let hits = file_denials(&evs, "secret", "secret.txt");
            let ok = code == libc::EPERM
                && outside == 0
                && after == 0
                && status.code() == Some(0)
                && hits
                    .iter()
                    .any(|e| e["tgid"].as_u64() == Some(u64::from(pid)));
            let detail = format!(
                "in cgroup errno {code}, outside {outside}, after stop {after}, exit {:?}, \
                 events {evs:?}, stderr {err}",
                status.code()
            );
            if ok {
                s.pass(
                    NAME,
                    format!("EPERM with event {}; allowed after stop", hits[0]),
                );
            } else {
                s.fail(NAME, detail);
            }
        }

        /// A directory with what `tamper_ops` needs: a block device node
        /// (loop0: opening it without the guard fails otherwise, with
        /// ENXIO or succeeds), a mount point, and a tmpfs to unmount.
        fn tamper_dir(name: &str) -> PathBuf {
            let d = scratch(name);
            std::fs::create_dir_all(d.join("mnt")).unwrap();
            std::fs::create_dir_all(d.join("umnt")).unwrap();
            let blk = cstr(d.join("blk"));
            // SAFETY: valid C string; loop device 7:0.
            unsafe { libc::mknod(blk.as_ptr(), libc::S_IFBLK | 0o600, libc::makedev(7, 0)) };
            mount_tmpfs(&d.join("umnt")).unwrap();
            std::fs::write("/proc/sys/net/ipv4/ping_group_range", "0 2147483647").unwrap();
            d
        }

        /// A policy with a network rule and a file rule: every guard on.
        fn guarded_policy(d: &Path) -> PathBuf {
            let pol = d.join("p.yaml");
            std::fs::write(
                &pol,
                format!(
                    "version: \"2.0\"\nruntime_monitor:\n  enabled: true\n  rules:\n    - id: no-telnet\n      type: net_connect\n      match: {{ports: [23]}}\n      severity: high\n      action: deny\n    - id: secret\n      type: file_open\n      match:\n        path_globs: [\"{}\"]\n      severity: high\n      action: deny\n",
                    d.join("secret.txt").display()
                ),
            )
            .unwrap();
            std::fs::write(d.join("secret.txt"), "s3cret\n").unwrap();
            pol
        }

        /// The tamper event of each guarded operation.
        const TAMPER_EVENTS: [&str; 9] = [
            "bpf",
            "signal",
            "ptrace",
            "cgroup_write",
            "mount",
            "packet_socket",
            "raw_socket",
            "ping_socket",
            "block_device",
        ];

        /// Every attempt refused with EPERM, and a tamper event for each
        /// operation of `want`.
        fn judge_tamper(
            results: &[(String, i32)],
            evs: &[serde_json::Value],
            want: &[&str],
        ) -> Result<String, String> {
            let refused = results.iter().all(|(_, e)| *e == libc::EPERM);
            let ops: std::collections::BTreeSet<&str> = evs
                .iter()
                .filter(|e| e["kind"] == "tamper")
                .filter_map(|e| e["operation"].as_str())
                .collect();
            let missing: Vec<&str> = want.iter().copied().filter(|w| !ops.contains(w)).collect();
            if refused && missing.is_empty() && results.len() == TAMPER_OPS.len() {
                Ok(format!("all refused with EPERM; tamper events {ops:?}"))
            } else {
                Err(format!(
                    "results {results:?}; tamper events missing {missing:?}; events {evs:?}"
                ))
            }
        }

        /// Attach mode: a root process with every capability, placed in the
        /// scope, tries each way around the monitor; outside the scope the
        /// same attempts are not refused (so the guards made the difference).
        pub fn self_protection_attach(s: &mut Suite) {
            const NAME: &str = "e2e/self-protection-attach-root";
            if let Some(why) = monitor_missing() {
                return s.skip(NAME, why);
            }
            let d = tamper_dir("tamper-attach");
            let pol = guarded_policy(&d);
            let ev = d.join("events.jsonl");
            let cg = Cgroup::create("assay-e2e-tamper");
            let mut mon = attach_monitor(&pol, &cg, Some(&ev), Some("assay_guard_open"));
            let monitor = mon.id() as i32;
            let results: Vec<(String, i32)> = TAMPER_OPS
                .iter()
                .map(|op| {
                    let (_, e) = in_child(Some(&cg), || tamper_op(op, monitor, &d));
                    (op.to_string(), e)
                })
                .collect();
            // Outside the scope (no ptrace or signal of the monitor there).
            let outside: Vec<(String, i32)> = [
                "bpf",
                "cgroup_write",
                "mount",
                "packet_socket",
                "raw_socket",
                "ping_socket",
                "block_device",
            ]
            .iter()
            .map(|op| {
                let (_, e) = in_child(None, || tamper_op(op, 0, &d));
                (op.to_string(), e)
            })
            .collect();
            // Not every raw socket is a way out: netlink (glibc's resolver
            // opens one) stays allowed in scope.
            let (_, netlink) = in_child(Some(&cg), || {
                // SAFETY: plain syscalls.
                let fd = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW, 0) };
                if fd < 0 {
                    return errno();
                }
                unsafe { libc::close(fd) };
                0
            });
            let alive = mon.try_wait().unwrap().is_none();
            // SAFETY: plain syscall on our child.
            unsafe { libc::kill(monitor, libc::SIGTERM) };
            let status = mon.wait().unwrap();
            let mut err = String::new();
            let _ = std::io::Read::read_to_string(&mut mon.stderr.take().unwrap(), &mut err);
            let evs = events(&ev);
            let outside_ok = outside.iter().all(|(_, e)| *e != libc::EPERM) && netlink == 0;
            match judge_tamper(&results, &evs, &TAMPER_EVENTS) {
                Ok(msg) if alive && outside_ok && status.code() == Some(0) => s.pass(
                    NAME,
                    format!("{msg}; outside the scope {outside:?}; netlink in scope {netlink}"),
                ),
                Ok(msg) => s.fail(
                    NAME,
                    format!("{msg}, but monitor alive {alive}, exit {:?}, outside {outside:?}, netlink in scope {netlink}, stderr {err}", status.code()),
                ),
                Err(why) => s.fail(NAME, format!("{why}; stderr {err}")),
            }
        }

        /// Wrapper mode, the command kept as root with every capability
        /// (--keep-capabilities): the same attempts, from the command.
        pub fn self_protection_wrapper(s: &mut Suite) {
            tamper_wrapped(
                s,
                "e2e/self-protection-wrapper-keep-capabilities",
                &["--keep-capabilities"],
                &TAMPER_EVENTS,
            );
        }

        /// Wrapper mode as root types it (no sudo): the command is root
        /// without capabilities. Every attempt is refused; where the kernel
        /// checks a capability before the LSM or cgroup hook (ptrace of the
        /// more capable assay, raw sockets, and on 5.10 `bpf()`) that check
        /// refuses it first, so the tamper events expected are those of the
        /// hooks every kernel reaches with the uid alone.
        pub fn self_protection_wrapper_default(s: &mut Suite) {
            tamper_wrapped(
                s,
                "e2e/self-protection-wrapper-root-no-capabilities",
                &[],
                &[
                    "signal",
                    "cgroup_write",
                    "mount",
                    "packet_socket",
                    "ping_socket",
                    "block_device",
                ],
            );
        }

        fn tamper_wrapped(s: &mut Suite, name: &str, extra: &[&str], want: &[&str]) {
            if let Some(why) = monitor_missing() {
                return s.skip(name, why);
            }
            let d = tamper_dir(&format!("tamper-wrap{}", extra.len()));
            let pol = guarded_policy(&d);
            let ev = d.join("events.jsonl");
            let out = assay()
                .arg("monitor")
                .args(extra)
                .arg("--policy")
                .arg(&pol)
                .arg("--events")
                .arg(&ev)
                .arg("--")
                .arg(std::env::current_exe().unwrap())
                .env("ASSAY_VM_HELPER", format!("tamper:{}", d.display()))
                .stdin(Stdio::null())
                .output()
                .unwrap();
            let results = op_results(&out.stdout);
            let evs = events(&ev);
            let err = String::from_utf8_lossy(&out.stderr);
            match judge_tamper(&results, &evs, want) {
                Ok(msg) if out.status.code() == Some(0) => s.pass(name, msg),
                Ok(msg) => s.fail(name, format!("{msg}, exit {:?}: {err}", out.status.code())),
                Err(why) => s.fail(name, format!("{why}; stderr {err}")),
            }
        }

        /// The unprivileged path where the BPF LSM runs: a user (uid 65534)
        /// runs assay installed with its file capabilities (permitted only,
        /// as `setcap` would install them). The file rule holds with its
        /// event, the command runs as that user with every capability set
        /// empty, and its signal to assay (same uid) is refused with a
        /// tamper event.
        pub fn user_with_capabilities(s: &mut Suite) {
            const NAME: &str = "e2e/user-with-capabilities";
            if let Some(why) = monitor_missing() {
                return s.skip(NAME, why);
            }
            use std::os::unix::fs::PermissionsExt;
            use std::os::unix::process::CommandExt;
            let d = scratch("usercaps");
            for p in [Path::new("/tmp/e2e"), d.as_path()] {
                std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
            let secret = d.join("secret.txt");
            std::fs::write(&secret, "s3cret\n").unwrap();
            std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
            let pol = file_policy(&d, "secret", &secret.display().to_string(), "deny", None);
            std::fs::set_permissions(&pol, std::fs::Permissions::from_mode(0o644)).unwrap();
            let out_dir = d.join("out");
            std::fs::create_dir(&out_dir).unwrap();
            std::os::unix::fs::chown(&out_dir, Some(65534), Some(65534)).unwrap();
            let ev = out_dir.join("events.jsonl");
            let src = std::env::var("ASSAY_BIN").unwrap_or_else(|_| "/bin/assay".into());
            let bin = crate::common::install_with_capabilities(
                Path::new(&src),
                &d,
                assay::caps::mask(&assay::caps::NEEDED)
                    | assay::caps::mask(&[assay::caps::MEMLOCK]),
            );
            let script = format!(
                "grep -E '^(Uid|Cap(Prm|Eff|Bnd|Amb)):' /proc/self/status; cat {}; echo rc $?; \
                 kill -CONT $PPID; echo kill $?",
                secret.display()
            );
            let out = crate::common::assay_at(&bin)
                .uid(65534)
                .gid(65534)
                .args(["monitor", "--policy"])
                .arg(&pol)
                .arg("--events")
                .arg(&ev)
                .args(["--", "sh", "-c", &script])
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            let evs = events(&ev);
            let caps_empty = ["CapPrm", "CapEff", "CapBnd", "CapAmb"].iter().all(|k| {
                stdout
                    .lines()
                    .any(|l| l.starts_with(&format!("{k}:")) && l.ends_with("0000000000000000"))
            });
            let as_user = stdout
                .lines()
                .any(|l| l == "Uid:\t65534\t65534\t65534\t65534");
            let denied = !file_denials(&evs, "secret", "secret.txt").is_empty();
            let signal_refused = evs.iter().any(|e| e["kind"] == "tamper")
                && stdout
                    .lines()
                    .any(|l| l.starts_with("kill ") && l != "kill 0");
            let ok = out.status.code() == Some(0)
                && caps_empty
                && as_user
                && stdout.lines().any(|l| l == "rc 1")
                && !stdout.contains("s3cret")
                && denied
                && signal_refused;
            let detail = format!(
                "exit {:?}, caps empty {caps_empty}, as user {as_user}, denied {denied}, signal \
                 refused {signal_refused}, stdout {stdout:?}, events {evs:?}, stderr {stderr}",
                out.status.code()
            );
            if ok {
                s.pass(
                    NAME,
                    "cat EPERM as uid 65534, kill of assay refused, caps empty",
                );
            } else {
                s.fail(NAME, detail);
            }
        }

        /// SIGKILL of assay leaves the file rules enforced on its scope: a
        /// `setsid` grandchild that reads the secret after the monitor died
        /// is refused; `--cleanup` then reports and tidies.
        pub fn fail_closed_after_sigkill(s: &mut Suite) {
            const NAME: &str = "e2e/fail-closed-after-sigkill";
            if let Some(why) = monitor_missing() {
                return s.skip(NAME, why);
            }
            let d = scratch("failclosed");
            let secret = d.join("secret.txt");
            std::fs::write(&secret, "s3cret\n").unwrap();
            let pol = file_policy(&d, "secret", &secret.display().to_string(), "deny", None);
            let (out, err) = (d.join("out"), d.join("err"));
            let script = format!(
                "setsid sh -c 'sleep 3; cat {} > {} 2> {}' & sleep 300",
                secret.display(),
                out.display(),
                err.display()
            );
            let mut mon = assay()
                .args(["monitor", "--policy"])
                .arg(&pol)
                .args(["--", "sh", "-c", &script])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let pid = mon.id();
            let pins = Path::new("/sys/fs/bpf/assay").join(format!("leaf-{pid}"));
            let leaf = cgroup2_root().join(format!("assay-monitor-{pid}"));
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(120)
                && std::fs::read_to_string(leaf.join("cgroup.procs"))
                    .unwrap_or_default()
                    .lines()
                    .count()
                    < 3
            {
                std::thread::sleep(Duration::from_millis(50));
            }
            let pinned = pins.join("assay_file_open").exists();
            let _ = mon.kill();
            let _ = mon.wait();
            // The grandchild reads after the monitor is gone.
            let t1 = Instant::now();
            while !err.exists() && t1.elapsed() < Duration::from_secs(60) {
                std::thread::sleep(Duration::from_millis(100));
            }
            std::thread::sleep(Duration::from_millis(500));
            let read = std::fs::read_to_string(&out).unwrap_or_default();
            let why = std::fs::read_to_string(&err).unwrap_or_default();
            let cleanup = assay().args(["monitor", "--cleanup"]).output().unwrap();
            let tidy = String::from_utf8_lossy(&cleanup.stderr).into_owned();
            let ok = pinned
                && read.is_empty()
                && why.contains("Operation not permitted")
                && cleanup.status.code() == Some(0)
                && tidy.contains(&format!("pid {pid}"))
                && !leaf.exists()
                && !pins.exists();
            let detail = format!(
                "pinned {pinned}, read {read:?}, cat said {why:?}, cleanup exit {:?}: {tidy}, \
                 leaf left {}, pins left {}",
                cleanup.status.code(),
                leaf.exists(),
                pins.exists()
            );
            if ok {
                s.pass(NAME, detail);
            } else {
                s.fail(NAME, detail);
            }
        }

        /// Attach mode: SIGKILL of the monitor leaves the file rule enforced
        /// on the attached cgroup (a root process with every capability
        /// inside reads the secret after the death and is refused); a new
        /// monitor on the same cgroup takes over and tidies the pins.
        pub fn fail_closed_attach(s: &mut Suite) {
            const NAME: &str = "e2e/fail-closed-attach";
            if let Some(why) = monitor_missing() {
                return s.skip(NAME, why);
            }
            let d = scratch("failclosed-attach");
            let secret = d.join("secret.txt");
            std::fs::write(&secret, "s3cret\n").unwrap();
            let pol = file_policy(&d, "secret", &secret.display().to_string(), "deny", None);
            let cg = Cgroup::create("assay-e2e-failclosed-attach");
            use std::os::unix::fs::MetadataExt;
            let id = std::fs::metadata(cg.dir.path()).unwrap().ino();
            let pins = |pid: u32| Path::new("/sys/fs/bpf/assay").join(format!("cgroup-{id}-{pid}"));
            let mut mon = attach_monitor(&pol, &cg, None, Some("assay_file_open"));
            let first = mon.id();
            let pinned = pins(first).join("assay_file_open").exists();
            let _ = mon.kill();
            let _ = mon.wait();
            let read = |cg: &Cgroup| {
                in_child(Some(cg), || match std::fs::read_to_string(&secret) {
                    Ok(_) => 0,
                    Err(e) => e.raw_os_error().unwrap_or(-1),
                })
                .1
            };
            let after_death = read(&cg);
            let next = attach_monitor(&pol, &cg, None, Some("assay_file_open"));
            let taken_over = pins(next.id()).join("assay_file_open").exists();
            let old_pins = pins(first);
            let t0 = Instant::now();
            while old_pins.exists() && t0.elapsed() < Duration::from_secs(30) {
                std::thread::sleep(Duration::from_millis(100));
            }
            let under_next = read(&cg);
            // SAFETY: plain syscall on our child.
            unsafe { libc::kill(next.id() as i32, libc::SIGTERM) };
            let out = next.wait_with_output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            let outside = std::fs::read_to_string(&secret).is_ok();
            let ok = pinned
                && after_death == libc::EPERM
                && taken_over
                && !old_pins.exists()
                && under_next == libc::EPERM
                && err.contains(&format!("pid {first}"))
                && outside;
            let detail = format!(
                "pinned {pinned}, read after death errno {after_death}, taken over {taken_over}, \
                 old pins left {}, read under the next errno {under_next}, outside read \
                 {outside}, next said {err}",
                old_pins.exists()
            );
            if ok {
                s.pass(NAME, detail);
            } else {
                s.fail(NAME, detail);
            }
        }

        /// The file handle of `target` (struct file_handle: handle_bytes,
        /// handle_type, then the handle), or None with errno set.
        fn handle_of(target: &Path) -> Option<Vec<u8>> {
            let mut fh = vec![0u8; 8 + 128];
            fh[..4].copy_from_slice(&128u32.to_ne_bytes());
            let mut mount_id: libc::c_int = 0;
            let t = cstr(target);
            // SAFETY: a buffer with room for the 128 bytes it says.
            let rc = unsafe {
                libc::syscall(
                    libc::SYS_name_to_handle_at,
                    libc::AT_FDCWD,
                    t.as_ptr(),
                    fh.as_mut_ptr(),
                    &mut mount_id,
                    0,
                )
            };
            (rc == 0).then_some(fh)
        }

        /// open_by_handle_at on the cgroup2 filesystem: errno, 0 when it
        /// opened.
        fn by_handle(fh: &[u8]) -> i32 {
            let root = cstr(cgroup2_root());
            // SAFETY: valid C string and handle buffer; fds closed by exit.
            unsafe {
                let m = libc::open(root.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY);
                let fd = libc::syscall(libc::SYS_open_by_handle_at, m, fh.as_ptr(), libc::O_RDONLY);
                if fd < 0 { errno() } else { 0 }
            }
        }

        /// What the wrapped helper of [`disconnected_dentry_wrapper`] does:
        /// the handle of `target`, the dentry cache dropped, then opens by
        /// handle and by name; `dropped`, `by-handle` and `by-name` lines
        /// with an errno each.
        pub fn handle_attempts(target: &Path) {
            let Some(fh) = handle_of(target) else {
                println!("by-handle {}", 200 + errno().min(50));
                return;
            };
            let dropped = std::fs::write("/proc/sys/vm/drop_caches", "2").is_ok();
            println!("dropped {}", i32::from(!dropped));
            println!("by-handle {}", by_handle(&fh));
            println!("by-name {}", try_open(target));
        }

        /// Row 6 in wrapper mode: a wrapped command keeping every
        /// capability (`--keep-capabilities`: CAP_DAC_READ_SEARCH for
        /// open_by_handle_at, CAP_SYS_ADMIN for drop_caches) opens a
        /// protected cgroupfs file by handle after dropping the dentry
        /// cache, and by name. Both are denied with events (by handle:
        /// `undecided` where the kernel hands back a disconnected dentry,
        /// `subtree` where it reconnected it).
        pub fn disconnected_dentry_wrapper(s: &mut Suite) {
            const NAME: &str = "e2e/disconnected-dentry-wrapper";
            if let Some(why) = monitor_missing() {
                return s.skip(NAME, why);
            }
            let d = scratch("handle-wrap");
            let cg = Cgroup::create("assay-e2e-handle-wrap");
            let victim = cg.dir.path().join("victim");
            std::fs::create_dir(&victim).unwrap();
            let target = victim.join("cgroup.procs");
            let glob = format!("{}/**", victim.display());
            let pol = file_policy(&d, "cgroup-secrets", &glob, "deny", None);
            let ev = d.join("events.jsonl");
            let out = assay()
                .args(["monitor", "--keep-capabilities", "--policy"])
                .arg(&pol)
                .arg("--events")
                .arg(&ev)
                .arg("--")
                .arg(std::env::current_exe().unwrap())
                .env("ASSAY_VM_HELPER", format!("handle:{}", target.display()))
                .stdin(Stdio::null())
                .output()
                .unwrap();
            let results = op_results(&out.stdout);
            let got = |k: &str| results.iter().find(|(n, _)| n == k).map(|(_, e)| *e);
            let evs = events(&ev);
            let matched = |m: &str| {
                evs.iter().any(|e| {
                    e["kind"] == "file_open"
                        && e["rule"] == "cgroup-secrets"
                        && e["action"] == "deny"
                        && e["object"]["match"] == m
                })
            };
            let detail = format!(
                "results {results:?}; undecided event {}, subtree event {}; events {evs:?}; \
                 stderr {}",
                matched("undecided"),
                matched("subtree"),
                String::from_utf8_lossy(&out.stderr)
            );
            if got("dropped") == Some(0)
                && got("by-handle") == Some(libc::EPERM)
                && got("by-name") == Some(libc::EPERM)
                && matched("subtree")
            {
                s.pass(NAME, detail);
            } else {
                s.fail(NAME, detail);
            }
        }

        /// A file reached through `open_by_handle_at` after the dentry cache
        /// dropped it comes back as a disconnected dentry (its own parent,
        /// named "/"): the subtree form cannot judge it, so it is denied as
        /// `undecided`. cgroupfs serves as the filesystem: it exports file
        /// handles and its dentries can be dropped (tmpfs keeps them). A root
        /// process with every capability (CAP_DAC_READ_SEARCH) tries it in
        /// attach mode; by name the same file is denied as `subtree`; outside
        /// the scope the handle opens.
        pub fn disconnected_dentry(s: &mut Suite) {
            const NAME: &str = "e2e/disconnected-dentry-fails-closed";
            if let Some(why) = monitor_missing() {
                return s.skip(NAME, why);
            }
            let d = scratch("handle");
            let cg = Cgroup::create("assay-e2e-handle");
            let victim = cg.dir.path().join("victim");
            std::fs::create_dir(&victim).unwrap();
            let target = victim.join("cgroup.procs");
            let Some(fh) = handle_of(&target) else {
                return s.fail(NAME, format!("name_to_handle_at: errno {}", errno()));
            };
            let glob = format!("{}/**", victim.display());
            let pol = file_policy(&d, "cgroup-secrets", &glob, "deny", None);
            let ev = d.join("events.jsonl");
            let mon = attach_monitor(&pol, &cg, Some(&ev), Some("assay_file_open"));
            std::fs::write("/proc/sys/vm/drop_caches", "2").unwrap();
            let (_, handle) = in_child(Some(&cg), || by_handle(&fh));
            let (_, by_name) = in_child(Some(&cg), || try_open(&target));
            // Outside the scope the handle opens. The path of its descriptor
            // is a hint of whether the dentry is still disconnected (by then
            // it may have been reconnected: 6.1 and 6.12 showed the full path
            // although the in-scope open was judged undecided; 5.10 keeps it
            // connected, so the walk judges it and the event says `subtree`).
            // 0: full path, 1: another, 2: the open failed.
            let (_, outside) = in_child(None, || {
                let root = cstr(cgroup2_root());
                // SAFETY: valid C string and handle buffer; fds closed by exit.
                let fd = unsafe {
                    let m = libc::open(root.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY);
                    libc::syscall(libc::SYS_open_by_handle_at, m, fh.as_ptr(), libc::O_RDONLY)
                };
                if fd < 0 {
                    return 2;
                }
                match std::fs::read_link(format!("/proc/self/fd/{fd}")) {
                    Ok(p) if p == target => 0,
                    _ => 1,
                }
            });
            // SAFETY: plain syscall on our child.
            unsafe { libc::kill(mon.id() as i32, libc::SIGTERM) };
            let out = mon.wait_with_output().unwrap();
            let evs = events(&ev);
            let matched = |m: &str| {
                evs.iter().any(|e| {
                    e["kind"] == "file_open"
                        && e["rule"] == "cgroup-secrets"
                        && e["action"] == "deny"
                        && e["object"]["match"] == m
                })
            };
            let (undecided, subtree) = (matched("undecided"), matched("subtree"));
            let disconnected = outside == 1;
            let detail = format!(
                "by handle errno {handle}, by name errno {by_name}, outside the handle opened \
                 {} (disconnected {disconnected}), undecided event {undecided}, subtree event \
                 {subtree}, events {evs:?}, stderr {}",
                outside != 2,
                String::from_utf8_lossy(&out.stderr)
            );
            // A disconnected dentry must be denied as undecided; one the
            // kernel handed back connected is judged by the walk.
            if handle == libc::EPERM
                && by_name == libc::EPERM
                && outside != 2
                && subtree
                && (undecided || !disconnected)
            {
                s.pass(NAME, detail);
            } else {
                s.fail(NAME, detail);
            }
        }

        /// The tree of the mount cases: `data` holds a secret and two
        /// tmpfs mounts (`m`, mounted before the start, and `late`, mounted
        /// by the caller after it), each with secrets; `free` holds a file
        /// no rule covers; `out` is where the in-scope process mounts.
        fn mount_tree(d: &Path) {
            for dir in ["data/m", "data/late", "free", "out", "ovl"] {
                std::fs::create_dir_all(d.join(dir)).unwrap();
            }
            std::fs::write(d.join("data/secret"), "s3cret-plain\n").unwrap();
            std::fs::write(d.join("free/f"), "free\n").unwrap();
            mount_tmpfs(&d.join("data/m")).unwrap();
            std::fs::create_dir_all(d.join("data/m/sub")).unwrap();
            std::fs::write(d.join("data/m/secret"), "s3cret-nested\n").unwrap();
            std::fs::write(d.join("data/m/sub/s2"), "s3cret-nested-sub\n").unwrap();
        }

        /// Every mount under `d`, deepest first.
        fn unmount_all(d: &Path) {
            let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
            let mut points: Vec<PathBuf> = info
                .lines()
                .filter_map(|l| l.split_whitespace().nth(4).map(PathBuf::from))
                .filter(|m| m.starts_with(d))
                .collect();
            points.reverse();
            for m in points {
                let c = cstr(&m);
                // SAFETY: valid C string.
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
        }

        /// The attempts of the mount cases, each an in-scope process's
        /// errno (0: it read the file). Rows 4 and 5 of the file-rule issue:
        /// reading a protected file through a bind mount of a filesystem
        /// mounted inside the protected directory (before or after the
        /// start, whole or a subdirectory of it) and through an overlay whose
        /// lower layer is the protected directory or such a mount, for
        /// reading and for writing (a copy-up reads the file).
        pub const MOUNT_OPS: [&str; 7] = [
            "bind-of-nested-mount",
            "bind-of-nested-mount-subdir",
            "bind-of-mount-made-after-start",
            "overlay-over-protected-dir",
            "overlay-copy-up",
            "overlay-over-nested-mount",
            "overlay-free-file",
        ];

        /// One attempt of [`MOUNT_OPS`] under `d` (the mounts go to
        /// `d/out/<op>`).
        pub fn mount_op(op: &str, d: &Path) -> i32 {
            let at = d.join("out").join(op);
            if std::fs::create_dir_all(&at).is_err() {
                return 254;
            }
            let bind = |from: &str| {
                let (f, t) = (cstr(d.join(from)), cstr(&at));
                // SAFETY: valid C strings.
                let rc = unsafe {
                    libc::mount(
                        f.as_ptr(),
                        t.as_ptr(),
                        std::ptr::null(),
                        libc::MS_BIND,
                        std::ptr::null(),
                    )
                };
                if rc == 0 { 0 } else { 200 + errno().min(50) }
            };
            let overlay = |lower: &str| {
                let (u, w) = (
                    d.join("ovl").join(op).join("u"),
                    d.join("ovl").join(op).join("w"),
                );
                std::fs::create_dir_all(&u).unwrap();
                std::fs::create_dir_all(&w).unwrap();
                let opts = cstr(format!(
                    "lowerdir={},upperdir={},workdir={}",
                    d.join(lower).display(),
                    u.display(),
                    w.display()
                ));
                let (ty, t) = (cstr("overlay"), cstr(&at));
                // SAFETY: valid C strings.
                let rc = unsafe {
                    libc::mount(
                        ty.as_ptr(),
                        t.as_ptr(),
                        ty.as_ptr(),
                        0,
                        opts.as_ptr().cast(),
                    )
                };
                if rc == 0 { 0 } else { 200 + errno().min(50) }
            };
            let rc = match op {
                "bind-of-nested-mount" | "bind-of-nested-mount-subdir" => {
                    bind(if op.ends_with("subdir") {
                        "data/m/sub"
                    } else {
                        "data/m"
                    })
                }
                "bind-of-mount-made-after-start" => bind("data/late"),
                "overlay-over-protected-dir" | "overlay-copy-up" => overlay("data"),
                "overlay-over-nested-mount" => overlay("data/m"),
                "overlay-free-file" => overlay("free"),
                _ => return 99,
            };
            if rc != 0 {
                return rc;
            }
            let file = match op {
                "bind-of-nested-mount-subdir" => "s2",
                "overlay-free-file" => "f",
                _ => "secret",
            };
            if op == "overlay-copy-up" {
                let c = cstr(at.join(file));
                // SAFETY: valid C string; the descriptor is closed by exit.
                let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDWR) };
                return if fd < 0 { errno() } else { 0 };
            }
            try_open(at.join(file))
        }

        /// Mounts in scope, then each attempt refused with EPERM and a
        /// `data` event, and nothing copied up; the free file reads; outside
        /// the scope the same mounts read (so the refusals are the rule's).
        fn judge_mounts(
            d: &Path,
            results: &[(String, i32)],
            evs: &[serde_json::Value],
        ) -> Result<String, String> {
            let ok = results.len() == MOUNT_OPS.len()
                && results.iter().all(|(op, e)| {
                    if op == "overlay-free-file" {
                        *e == 0
                    } else {
                        *e == libc::EPERM
                    }
                });
            let denials = evs
                .iter()
                .filter(|e| {
                    e["kind"] == "file_open" && e["rule"] == "data" && e["action"] == "deny"
                })
                .count();
            let undecided = evs.iter().any(|e| e["object"]["match"] == "undecided");
            let copied = d.join("ovl/overlay-copy-up/u/secret").exists();
            let outside: Vec<(&str, bool)> = [
                ("out/bind-of-nested-mount/secret", "s3cret-nested"),
                ("out/bind-of-nested-mount-subdir/s2", "s3cret-nested-sub"),
                ("out/bind-of-mount-made-after-start/secret", "s3cret-late"),
                ("out/overlay-over-protected-dir/secret", "s3cret-plain"),
                ("out/overlay-over-nested-mount/secret", "s3cret-nested"),
            ]
            .into_iter()
            .map(|(f, t)| {
                (
                    f,
                    std::fs::read_to_string(d.join(f)).is_ok_and(|s| s.starts_with(t)),
                )
            })
            .collect();
            let outside_ok = outside.iter().all(|(_, ok)| *ok);
            if ok && denials >= MOUNT_OPS.len() - 1 && !undecided && !copied && outside_ok {
                Ok(format!(
                    "{} attempts: {results:?}; {denials} deny events",
                    results.len()
                ))
            } else {
                Err(format!(
                    "results {results:?}; deny events {denials}; undecided {undecided}; copied up \
                     {copied}; read outside the scope {outside:?}; events {evs:?}"
                ))
            }
        }

        /// The mount policy: `data/**` denied, the mount guard off (this
        /// case is about the rules, whatever the privilege).
        fn mount_policy(d: &Path) -> PathBuf {
            let pol = d.join("p.yaml");
            std::fs::write(
                &pol,
                format!(
                    "version: \"2.0\"\nruntime_monitor:\n  enabled: true\n  self_protection:\n    mounts: false\n  rules:\n    - id: data\n      type: file_open\n      match:\n        path_globs: [\"{}/data/**\"]\n      severity: high\n      action: deny\n",
                    d.display()
                ),
            )
            .unwrap();
            pol
        }

        /// Rows 4 and 5 in attach mode, from a root process with every
        /// capability (the mount guard off).
        pub fn file_mounts_attach(s: &mut Suite) {
            const NAME: &str = "e2e/file-mounts-attach-root";
            if let Some(why) = monitor_missing() {
                return s.skip(NAME, why);
            }
            let d = scratch("mounts-attach");
            mount_tree(&d);
            let pol = mount_policy(&d);
            let ev = d.join("events.jsonl");
            let cg = Cgroup::create("assay-e2e-mounts");
            let mon = attach_monitor(&pol, &cg, Some(&ev), Some("assay_path_rename"));
            late_mount(&d);
            let results: Vec<(String, i32)> = MOUNT_OPS
                .iter()
                .map(|op| (op.to_string(), in_child(Some(&cg), || mount_op(op, &d)).1))
                .collect();
            // SAFETY: plain syscall on our child.
            unsafe { libc::kill(mon.id() as i32, libc::SIGTERM) };
            let out = mon.wait_with_output().unwrap();
            let verdict = judge_mounts(&d, &results, &events(&ev));
            unmount_all(&d);
            match verdict {
                Ok(msg) => s.pass(NAME, msg),
                Err(why) => s.fail(
                    NAME,
                    format!("{why}; stderr {}", String::from_utf8_lossy(&out.stderr)),
                ),
            }
        }

        /// A tmpfs mounted inside `data` after the monitor started (outside
        /// the scope), with a secret; then time for the monitor to see the
        /// mount table change.
        fn late_mount(d: &Path) {
            mount_tmpfs(&d.join("data/late")).unwrap();
            std::fs::write(d.join("data/late/secret"), "s3cret-late\n").unwrap();
            std::thread::sleep(Duration::from_secs(2));
        }

        /// `assay monitor [flags] --policy pol --events ev -- sh -c ...` in
        /// wrapper mode, its output piped: the command waits (bounded) until
        /// `go` exists, then runs this suite as `ASSAY_VM_HELPER=helper`.
        /// Returns once the command is in assay's cgroup (so the caller may
        /// change things "after the start" and then create `go`).
        fn gated_wrapper(
            pol: &Path,
            ev: &Path,
            go: &Path,
            flags: &[&str],
            helper: &str,
        ) -> std::process::Child {
            let script = format!(
                "i=0; while [ ! -e {} ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; exec {} ",
                go.display(),
                std::env::current_exe().unwrap().display()
            );
            let child = assay()
                .arg("monitor")
                .args(flags)
                .arg("--policy")
                .arg(pol)
                .arg("--events")
                .arg(ev)
                .args(["--", "sh", "-c", &script])
                .env("ASSAY_VM_HELPER", helper)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let leaf = cgroup2_root().join(format!("assay-monitor-{}", child.id()));
            let t0 = Instant::now();
            while std::fs::read_to_string(leaf.join("cgroup.procs"))
                .unwrap_or_default()
                .trim()
                .is_empty()
                && t0.elapsed() < Duration::from_secs(120)
            {
                std::thread::sleep(Duration::from_millis(50));
            }
            child
        }

        /// The same in wrapper mode: the wrapped command keeps
        /// CAP_SYS_ADMIN (`--keep-capabilities`) so it can mount at all.
        pub fn file_mounts_wrapper(s: &mut Suite) {
            const NAME: &str = "e2e/file-mounts-wrapper";
            if let Some(why) = monitor_missing() {
                return s.skip(NAME, why);
            }
            let d = scratch("mounts-wrap");
            mount_tree(&d);
            let pol = mount_policy(&d);
            let ev = d.join("events.jsonl");
            let go = d.join("go");
            let child = gated_wrapper(
                &pol,
                &ev,
                &go,
                &["--keep-capabilities"],
                &format!("mounts:{}", d.display()),
            );
            late_mount(&d);
            std::fs::write(&go, "").unwrap();
            let out = child.wait_with_output().unwrap();
            let verdict = judge_mounts(&d, &op_results(&out.stdout), &events(&ev));
            unmount_all(&d);
            match verdict {
                Ok(msg) => s.pass(NAME, msg),
                Err(why) => s.fail(
                    NAME,
                    format!("{why}; stderr {}", String::from_utf8_lossy(&out.stderr)),
                ),
            }
        }

        /// The verdict cache (fileguard.bpf.c, `verdicts`) against what
        /// changes a verdict without touching the file: renames outside the
        /// scope moving a file (or its directory) into and out of a
        /// protected directory after the file was opened in scope, a second
        /// name of the same inode, and repeated opens of a denied file
        /// (each denial its own event). Attach mode, root in scope.
        pub fn verdict_cache_follows_changes(s: &mut Suite) {
            const NAME: &str = "e2e/verdict-cache-follows-changes";
            if let Some(why) = monitor_missing() {
                return s.skip(NAME, why);
            }
            let d = scratch("cache");
            cache_tree(&d);
            let glob = format!("{}/data/**", d.display());
            let pol = file_policy(&d, "data", &glob, "deny", None);
            let ev = d.join("events.jsonl");
            let cg = Cgroup::create("assay-e2e-cache");
            let mon = attach_monitor(&pol, &cg, Some(&ev), Some("assay_d_instantiate"));
            let open_in = |f: &str| in_child(Some(&cg), || try_open(d.join(f))).1;
            let mv = |a: &str, b: &str| std::fs::rename(d.join(a), d.join(b)).unwrap();
            let mut steps: Vec<(&str, i32, i32)> = Vec::new();
            let mut step = |what: &'static str, f: &str, want: i32| {
                // Twice: the second open is the one a cache would answer.
                for _ in 0..2 {
                    steps.push((what, open_in(f), want));
                }
            };
            step("free file, before its move", "out/f", 0);
            step("free dir's file, before its move", "out/dir/g", 0);
            mv("out/f", "data/f");
            mv("out/dir", "data/dir");
            step("file moved in by a rename outside", "data/f", libc::EPERM);
            step("file whose directory moved in", "data/dir/g", libc::EPERM);
            mv("data/f", "out/f");
            step("file moved back out", "out/f", 0);
            step("second name outside the subtree", "out/h2", 0);
            step(
                "the same inode by its protected name",
                "data/h",
                libc::EPERM,
            );
            step("the outside name again", "out/h2", 0);
            // SAFETY: plain syscall on our child.
            unsafe { libc::kill(mon.id() as i32, libc::SIGTERM) };
            let out = mon.wait_with_output().unwrap();
            let evs = events(&ev);
            let denials = |name: &str| {
                evs.iter()
                    .filter(|e| {
                        e["kind"] == "file_open"
                            && e["rule"] == "data"
                            && e["action"] == "deny"
                            && e["object"]["name"] == name
                    })
                    .count()
            };
            let wrong: Vec<_> = steps.iter().filter(|(_, got, want)| got != want).collect();
            // Two opens each of f, g and h were denied: six events.
            let counts = (denials("f"), denials("g"), denials("h"));
            let detail = format!(
                "{} opens, wrong {wrong:?}; deny events f/g/h {counts:?}; stderr {}",
                steps.len(),
                String::from_utf8_lossy(&out.stderr)
            );
            if wrong.is_empty() && counts == (2, 2, 2) {
                s.pass(NAME, detail);
            } else {
                s.fail(NAME, detail);
            }
        }

        /// The cache files: `out/f`, `out/dir/g` free, `data/h` protected
        /// with a second name `out/h2`.
        fn cache_tree(d: &Path) {
            for (f, t) in [
                ("out/f", "s3cret-f\n"),
                ("out/dir/g", "s3cret-g\n"),
                ("data/h", "s3cret-h\n"),
            ] {
                std::fs::create_dir_all(d.join(f).parent().unwrap()).unwrap();
                std::fs::write(d.join(f), t).unwrap();
            }
            std::fs::hard_link(d.join("data/h"), d.join("out/h2")).unwrap();
        }

        /// What the wrapped process does in `e2e/verdict-cache-wrapper`, and
        /// the errno each step must give: opens twice (the second is the
        /// one a cache would answer) around renames it makes itself.
        const CACHE_STEPS: [(&str, &str, i32); 11] = [
            ("open", "out/f", 0),
            ("open", "out/dir/g", 0),
            // Free where they are: moving them in is allowed...
            ("rename", "out/f>data/f", 0),
            ("rename", "out/dir>data/dir", 0),
            // ...and the cached "free" verdicts must not answer now.
            ("open", "data/f", libc::EPERM),
            ("open", "data/dir/g", libc::EPERM),
            ("open", "out/h2", 0),
            ("open", "data/h", libc::EPERM),
            ("open", "out/h2", 0),
            // Covered where it is now: it may not leave.
            ("rename", "data/f>out/f", libc::EPERM),
            ("open", "data/f", libc::EPERM),
        ];

        /// Runs [`CACHE_STEPS`] under `d`: `(step, errno)` per attempt.
        pub fn cache_steps(d: &Path) -> Vec<(String, i32)> {
            let mut out = Vec::new();
            for (i, (verb, arg, _)) in CACHE_STEPS.iter().enumerate() {
                match *verb {
                    "open" => {
                        for n in 0..2 {
                            out.push((format!("{i}-open-{arg}-{n}"), try_open(d.join(arg))));
                        }
                    }
                    _ => {
                        let (a, b) = arg.split_once('>').unwrap();
                        let e = match std::fs::rename(d.join(a), d.join(b)) {
                            Ok(()) => 0,
                            Err(e) => e.raw_os_error().unwrap_or(255),
                        };
                        out.push((format!("{i}-rename-{arg}"), e));
                    }
                }
            }
            out
        }

        /// The verdict cache in wrapper mode (root as typed, no
        /// capabilities): the confined process itself moves free files and
        /// a directory into the protected subtree after opening them, then
        /// opens them again, and opens one inode by two names.
        pub fn verdict_cache_wrapper(s: &mut Suite) {
            const NAME: &str = "e2e/verdict-cache-wrapper";
            if let Some(why) = monitor_missing() {
                return s.skip(NAME, why);
            }
            let d = scratch("cache-wrap");
            cache_tree(&d);
            let glob = format!("{}/data/**", d.display());
            let pol = file_policy(&d, "data", &glob, "deny", None);
            let ev = d.join("events.jsonl");
            let go = d.join("go");
            let child = gated_wrapper(&pol, &ev, &go, &[], &format!("cache:{}", d.display()));
            std::fs::write(&go, "").unwrap();
            let out = child.wait_with_output().unwrap();
            let got = op_results(&out.stdout);
            let want: Vec<i32> = CACHE_STEPS
                .iter()
                .flat_map(|(verb, _, e)| vec![*e; if *verb == "open" { 2 } else { 1 }])
                .collect();
            let wrong: Vec<_> = got
                .iter()
                .zip(&want)
                .filter(|((_, g), w)| g != *w)
                .collect();
            let evs = events(&ev);
            let count = |kind: &str, name: &str| {
                evs.iter()
                    .filter(|e| {
                        e["kind"] == kind
                            && e["rule"] == "data"
                            && e["action"] == "deny"
                            && e["object"]["name"] == name
                    })
                    .count()
            };
            // Denied opens (each step opens twice): f four times, g and h
            // twice; f's way out once.
            let counts = (
                count("file_open", "f"),
                count("file_open", "g"),
                count("file_open", "h"),
                count("file_rename", "f"),
            );
            let detail = format!(
                "{} steps, wrong {wrong:?}; deny events f/g/h/rename {counts:?}; stderr {}",
                got.len(),
                String::from_utf8_lossy(&out.stderr)
            );
            let moved = d.join("data/f").exists() && d.join("data/dir/g").exists();
            if got.len() == want.len() && wrong.is_empty() && counts == (4, 2, 2, 1) && moved {
                s.pass(NAME, detail);
            } else {
                s.fail(NAME, format!("{detail}; files where moved: {moved}"));
            }
        }

        /// The policy of the move cases: one deny rule per form.
        fn move_policy(d: &Path) -> PathBuf {
            let pol = d.join("p.yaml");
            let rule = |id: &str, glob: String| {
                format!(
                    "    - id: {id}\n      type: file_open\n      match:\n        path_globs: [\"{glob}\"]\n      severity: high\n      action: deny\n"
                )
            };
            let text = format!(
                "version: \"2.0\"\nruntime_monitor:\n  enabled: true\n  rules:\n{}{}{}{}",
                rule("data", format!("{}/data/**", d.display())),
                rule("dotenv", "**/.env".into()),
                rule("ssh", "**/.ssh/*".into()),
                rule("aws", format!("{}/home/*/.aws/credentials", d.display())),
            );
            std::fs::write(&pol, text).unwrap();
            pol
        }

        /// Every attempt refused with EPERM, its event there (by kind and
        /// rule), no new name made, every protected file where it was; and
        /// the same moves of an unprotected file work (so the refusals are
        /// the rules', not the directory's).
        fn judge_moves(
            d: &Path,
            results: &[(String, i32)],
            evs: &[serde_json::Value],
        ) -> Result<String, String> {
            let refused =
                results.len() == MOVE_OPS.len() && results.iter().all(|(_, e)| *e == libc::EPERM);
            let seen: std::collections::BTreeSet<(String, String)> = evs
                .iter()
                .filter_map(|e| {
                    Some((
                        e["kind"].as_str()?.to_string(),
                        e["rule"].as_str()?.to_string(),
                    ))
                })
                .collect();
            let want = [
                ("file_link", "data"),
                ("file_rename", "data"),
                ("file_link", "dotenv"),
                ("file_rename", "dotenv"),
                ("file_rename", "ssh"),
                ("file_link", "ssh"),
                ("file_rename", "aws"),
                ("file_link", "aws"),
                ("file_open", "data"),
            ];
            let missing: Vec<_> = want
                .iter()
                .filter(|(k, r)| !seen.contains(&(k.to_string(), r.to_string())))
                .collect();
            // The deep opens: judged by the subtree rule at any depth where
            // the walk loops, denied as undecided where it cannot.
            let deep_match = |m: &str| {
                evs.iter()
                    .filter(|e| e["kind"] == "file_open" && e["object"]["match"] == m)
                    .count()
            };
            let undecided = if walk_is_looped() {
                deep_match("undecided") == 0
                    && evs
                        .iter()
                        .filter(|e| {
                            e["kind"] == "file_open"
                                && e["rule"] == "data"
                                && e["object"]["match"] == "subtree"
                                && e["object"]["name"] == "f"
                        })
                        .count()
                        >= 2
            } else {
                deep_match("undecided") >= 2
            };
            let made: Vec<&str> = [
                "out/x", "out/sub", "data/x2", "out/late", "proj/e", "home/u/s", "out/k", "out/u",
                "home/u/a", "out/c",
            ]
            .into_iter()
            .filter(|f| d.join(f).exists())
            .collect();
            let kept = [
                "data/x",
                "proj/.env",
                "home/u/.ssh/id_ed25519",
                "home/u/.aws/credentials",
            ]
            .iter()
            .all(|f| std::fs::read_to_string(d.join(f)).is_ok_and(|t| t.starts_with("s3cret")))
                && std::fs::read_to_string(d.join("out/free")).is_ok_and(|t| t == "free\n");
            if refused && missing.is_empty() && undecided && made.is_empty() && kept {
                Ok(format!(
                    "{} moves refused with EPERM and events {seen:?}",
                    results.len()
                ))
            } else {
                Err(format!(
                    "results {results:?}; events missing {missing:?}; deep opens judged as \
                     expected (looped walk {}) {undecided}; names made {made:?}; protected files kept {kept}; events {evs:?}",
                    walk_is_looped()
                ))
            }
        }

        /// Allowed in scope: moves of a file no rule covers.
        fn free_moves_work(d: &Path) -> bool {
            let a = d.join("out/free");
            let b = d.join("out/free2");
            std::fs::rename(&a, &b).is_ok()
                && std::fs::hard_link(&b, d.join("out/free3")).is_ok()
                && std::fs::remove_file(d.join("out/free3")).is_ok()
                && std::fs::rename(&b, &a).is_ok()
        }

        /// Rows 1-3 of the file-rule issue in wrapper mode (root as typed,
        /// no capabilities): links and renames out of a rule, onto and
        /// exchanged with a protected file, of directories a rule depends
        /// on, and an open deeper than the walk.
        pub fn file_moves_wrapper(s: &mut Suite) {
            const NAME: &str = "e2e/file-moves-wrapper";
            if let Some(why) = monitor_missing() {
                return s.skip(NAME, why);
            }
            let d = scratch("moves-wrap");
            move_tree(&d);
            let pol = move_policy(&d);
            let ev = d.join("events.jsonl");
            let go = d.join("go");
            // The command waits for the files made after the start.
            let child = gated_wrapper(&pol, &ev, &go, &[], &format!("moves:{}", d.display()));
            std::fs::write(d.join("data/late"), "s3cret-late\n").unwrap();
            deep_file(&d);
            std::fs::write(&go, "").unwrap();
            let out = child.wait_with_output().unwrap();
            let results = op_results(&out.stdout);
            let evs = events(&ev);
            let err = String::from_utf8_lossy(&out.stderr);
            let free = free_moves_work(&d);
            // Outside the scope the same move of a protected file works.
            let outside = std::fs::rename(d.join("data/x"), d.join("out/x")).is_ok()
                && std::fs::rename(d.join("out/x"), d.join("data/x")).is_ok();
            match judge_moves(&d, &results, &evs) {
                Ok(msg) if out.status.code() == Some(0) && free && outside => s.pass(NAME, msg),
                Ok(msg) => s.fail(
                    NAME,
                    format!(
                        "{msg}, exit {:?}, free moves {free}, outside {outside}: {err}",
                        out.status.code()
                    ),
                ),
                Err(why) => s.fail(NAME, format!("{why}; stderr {err}")),
            }
        }

        /// The same in attach mode, from a root process with every
        /// capability placed in the scope.
        pub fn file_moves_attach(s: &mut Suite) {
            const NAME: &str = "e2e/file-moves-attach-root";
            if let Some(why) = monitor_missing() {
                return s.skip(NAME, why);
            }
            let d = scratch("moves-attach");
            move_tree(&d);
            let pol = move_policy(&d);
            let ev = d.join("events.jsonl");
            let cg = Cgroup::create("assay-e2e-moves");
            let mon = attach_monitor(&pol, &cg, Some(&ev), Some("assay_path_rename"));
            std::fs::write(d.join("data/late"), "s3cret-late\n").unwrap();
            let deep = deep_file(&d);
            let results: Vec<(String, i32)> = MOVE_OPS
                .iter()
                .map(|op| (op.to_string(), in_child(Some(&cg), || move_op(op, &d)).1))
                .collect();
            // linkat(AT_EMPTY_PATH) of an O_PATH descriptor needs
            // CAP_DAC_READ_SEARCH, which this process has.
            let (_, empty_path) = in_child(Some(&cg), || {
                let src = cstr(&deep);
                let dst = cstr(d.join("out/deep"));
                // SAFETY: valid C strings; the descriptor is closed by exit.
                let fd = unsafe { libc::open(src.as_ptr(), libc::O_PATH) };
                if fd < 0 {
                    return errno();
                }
                // SAFETY: as above.
                let rc = unsafe {
                    libc::linkat(
                        fd,
                        c"".as_ptr(),
                        libc::AT_FDCWD,
                        dst.as_ptr(),
                        libc::AT_EMPTY_PATH,
                    )
                };
                if rc == 0 { 0 } else { errno() }
            });
            let free = in_child(Some(&cg), || i32::from(!free_moves_work(&d))).1 == 0;
            // SAFETY: plain syscall on our child.
            unsafe { libc::kill(mon.id() as i32, libc::SIGTERM) };
            let out = mon.wait_with_output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            let evs = events(&ev);
            let outside = std::fs::rename(d.join("data/x"), d.join("out/x")).is_ok()
                && std::fs::rename(d.join("out/x"), d.join("data/x")).is_ok();
            match judge_moves(&d, &results, &evs) {
                Ok(msg) if empty_path == libc::EPERM && free && outside => s.pass(NAME, msg),
                Ok(msg) => s.fail(
                    NAME,
                    format!(
                        "{msg}; linkat(AT_EMPTY_PATH) errno {empty_path}, free moves {free}, \
                         outside {outside}: {err}"
                    ),
                ),
                Err(why) => s.fail(NAME, format!("{why}; stderr {err}")),
            }
        }

        /// `assay monitor --policy pol --cgroup cg --events ev` in attach
        /// mode, its stderr piped. `ready`: a link pin name to wait for
        /// (bounded) under its fail-closed pins, which are made once every
        /// program is attached.
        fn attach_monitor(
            pol: &Path,
            cg: &Cgroup,
            ev: Option<&Path>,
            ready: Option<&str>,
        ) -> std::process::Child {
            let mut c = assay();
            c.args(["monitor", "--policy"])
                .arg(pol)
                .arg("--cgroup")
                .arg(cg.dir.path());
            if let Some(ev) = ev {
                c.arg("--events").arg(ev);
            }
            let mon = c
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            if let Some(name) = ready {
                use std::os::unix::fs::MetadataExt;
                let id = std::fs::metadata(cg.dir.path()).unwrap().ino();
                let pin = Path::new("/sys/fs/bpf/assay")
                    .join(format!("cgroup-{id}-{}", mon.id()))
                    .join(name);
                let t0 = Instant::now();
                while !pin.exists() && t0.elapsed() < Duration::from_secs(120) {
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            mon
        }

        /// The `name errno` lines a helper printed, one per attempt.
        fn op_results(stdout: &[u8]) -> Vec<(String, i32)> {
            String::from_utf8_lossy(stdout)
                .lines()
                .filter_map(|l| {
                    let (n, e) = l.split_once(' ')?;
                    Some((n.to_string(), e.parse().ok()?))
                })
                .collect()
        }

        fn cgroup2_root() -> PathBuf {
            std::fs::read_to_string("/proc/self/mountinfo")
                .ok()
                .and_then(|m| {
                    m.lines()
                        .find(|l| l.contains(" - cgroup2 "))
                        .and_then(|l| l.split_whitespace().nth(4).map(PathBuf::from))
                })
                .unwrap_or_else(|| PathBuf::from("/sys/fs/cgroup"))
        }

        pub fn exit_40_without_bpf(s: &mut Suite) {
            const NAME: &str = "e2e/monitor-exit-40-without-bpf-lsm";
            if let Some(why) = monitor_missing() {
                return s.skip(NAME, why);
            }
            let d = scratch("nobpf");
            let pol = d.join("p.yaml");
            std::fs::write(&pol, "version: \"2.0\"\nruntime_monitor:\n  enabled: true\n  rules:\n    - id: shadow\n      type: file_open\n      match:\n        path_globs: [\"/etc/shadow\"]\n      severity: critical\n      action: deny\n").unwrap();
            let out = assay()
                .arg("monitor")
                .arg("--policy")
                .arg(&pol)
                .args(["--", "/bin/true"])
                .stdin(Stdio::null())
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            if out.status.code() == Some(40) {
                s.pass(
                    NAME,
                    format!("exit 40: {}", err.lines().next().unwrap_or("")),
                );
            } else {
                s.fail(NAME, format!("exit {:?}: {err}", out.status.code()));
            }
        }
    }
}
