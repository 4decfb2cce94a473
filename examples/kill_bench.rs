//! Helper for `scripts/bench/kill.sh`: builds a process tree, kills it with a
//! given method, and prints the milliseconds from the start of the kill until
//! every process of the tree has exited.
//!
//! Usage:
//!   kill_bench run ASSAY N METHOD [ARGS...]  one measurement, prints ms
//!     METHOD: assay  -> ASSAY kill --pid ROOT ARGS...
//!             assay-ignoring-term -> the same on a tree that ignores SIGTERM
//!             library-capture -> kill_switch::execute in-process, immediate,
//!                       capture on with the monitor's 50 ms budget
//!             naive  -> kill(2) SIGKILL to each known pid (the baseline: no
//!                       snapshot, no freeze, no pidfds, no capture)

#[cfg(target_os = "linux")]
fn main() {
    linux::main()
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("kill_bench: Linux only");
    std::process::exit(2);
}

#[cfg(target_os = "linux")]
mod linux {
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use assay::kill_switch::procfs;

    /// Every live process in the session led by `sid`: (pid, start time).
    fn session(sid: i32) -> Vec<(i32, u64)> {
        procfs::scan()
            .into_iter()
            .filter(|s| s.session == sid && !s.is_dead())
            .map(|s| (s.pid, s.start_time))
            .collect()
    }

    fn running(p: (i32, u64)) -> bool {
        procfs::read_stat(p.0).is_some_and(|s| s.start_time == p.1 && !s.is_dead())
    }

    /// A tree of `n` processes: a root bash, `n/8` subshells (that fork
    /// again, so grandchildren exist) and sleeps filling the rest.
    fn script(n: usize, ignore_term: bool) -> String {
        assert!(n >= 3);
        let branches = (n / 8).max(1);
        let leaves = n - 1 - branches;
        let mut s = String::new();
        if ignore_term {
            s.push_str("trap '' TERM; ");
        }
        for b in 0..branches {
            let k = leaves / branches + usize::from(b < leaves % branches);
            s.push_str("( ");
            for _ in 0..k {
                s.push_str("sleep 1000 & ");
            }
            s.push_str("wait ) & ");
        }
        s.push_str("wait");
        s
    }

    pub fn main() {
        let args: Vec<String> = std::env::args().collect();
        let n: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(50);
        if args.get(1).map(String::as_str) != Some("run") || args.len() < 5 {
            eprintln!("usage: kill_bench run ASSAY N assay|naive [ASSAY ARGS...]");
            std::process::exit(2);
        }
        let assay = &args[2];
        let method = args[4].as_str();
        let extra = &args[5..];
        // The tree ignores SIGTERM (graceful mode must escalate to SIGKILL).
        let ignore_term = method == "assay-ignoring-term";
        let mut cmd = Command::new("bash");
        cmd.arg("-c")
            .arg(script(n, ignore_term))
            .stdin(Stdio::null());
        // SAFETY: setsid is async-signal-safe; the tree gets its own session
        // so this helper can count it.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let mut root = cmd.spawn().expect("bash");
        let sid = root.id() as i32;
        let deadline = Instant::now() + Duration::from_secs(20);
        let tree = loop {
            let t = session(sid);
            // Subshells fork their sleeps; wait until all are sleeping.
            let sleeping = t
                .iter()
                .filter(|p| procfs::read_stat(p.0).is_some_and(|s| s.comm == "sleep"))
                .count();
            if t.len() == n && sleeping == n - 1 - (n / 8).max(1) {
                break t;
            }
            assert!(
                Instant::now() < deadline,
                "tree of {n} did not start ({} so far)",
                t.len()
            );
            std::thread::sleep(Duration::from_millis(5));
        };

        let t0 = Instant::now();
        // A poller observes the exits while the kill runs: the figure is the
        // time until the last process exited, not until the killer returned
        // (assay writes the incident after the kill).
        let watched = tree.clone();
        let poller = std::thread::spawn(move || {
            while watched.iter().any(|p| running(*p)) {
                assert!(t0.elapsed() < Duration::from_secs(30), "tree survived");
                std::thread::sleep(Duration::from_micros(200));
            }
            t0.elapsed()
        });
        let mut killer = match method {
            "assay" | "assay-ignoring-term" => Some(
                Command::new(assay)
                    .args(["kill", "--pid", &sid.to_string()])
                    .args(extra)
                    .stdout(Stdio::null())
                    .spawn()
                    .expect("assay runs"),
            ),
            // The monitor's path: the library call in-process, immediate,
            // with the policy-style bounded capture (50 ms budget).
            "library-capture" => {
                use assay::kill_switch::{self, Defaults, KillMode, Reason, Target};
                let out = std::env::temp_dir().join(format!("assay-bench-{}", std::process::id()));
                let mut d = Defaults::from_config(None);
                d.capture_state = true;
                d.output_dir = out.clone();
                let req = d.request(
                    vec![Target::Pid(sid)],
                    KillMode::Immediate,
                    Reason::Rule {
                        rule_id: "bench".into(),
                        detail: String::new(),
                    },
                );
                let r = kill_switch::execute(&req);
                assert!(r.all_gone(), "library kill failed: {:?}", r.errors);
                let _ = std::fs::remove_dir_all(out);
                None
            }
            "naive" => {
                for (pid, _) in &tree {
                    // SAFETY: plain kill of processes this helper started.
                    unsafe { libc::kill(*pid, libc::SIGKILL) };
                }
                None
            }
            m => panic!("unknown method {m}"),
        };
        let took = poller.join().expect("tree exited");
        if let Some(k) = killer.as_mut() {
            let st = k.wait().expect("assay exits");
            assert_eq!(st.code(), Some(0), "assay kill failed");
        }
        root.wait().ok();
        println!("{:.3}", took.as_secs_f64() * 1000.0);
    }
}
