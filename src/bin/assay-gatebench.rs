//! Benchmark of the tool-call gate for `scripts/bench/gate.sh`. Not part of
//! the product surface. Every figure is a ratio or difference against a
//! direct pipe measured in the same run, interleaved to share the noise:
//!
//! - latency: a 1 KiB allowed `tools/call` (schema-checked) sent and echoed
//!   back by `cat`, through `assay monitor --gate-only` vs to `cat` directly;
//!   the added time per message at p50 and p99;
//! - throughput: a server writing large results (1 MiB lines) read to EOF
//!   through the gate vs directly;
//! - start-up: spawn to the first echoed message, gated vs direct.
//!
//! `gen` is the large-result server.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Write `lines` JSON-RPC results of about `size` bytes each, then exit.
    Gen {
        #[arg(long)]
        lines: usize,
        #[arg(long)]
        size: usize,
    },
    /// Run the benchmark and print its report.
    Bench {
        /// The assay binary to measure.
        #[arg(long)]
        assay: PathBuf,
        /// Messages per round and per path (latency).
        #[arg(long, default_value_t = 5000)]
        count: usize,
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// MiB per throughput run.
        #[arg(long, default_value_t = 256)]
        mib: usize,
    },
}

const POLICY: &str = r#"version: "2.0"
tools:
  allow: [echo, add]
  deny: [exec]
schemas:
  echo:
    type: object
    properties:
      text: {type: string, maxLength: 4096}
    required: [text]
"#;

fn main() -> io::Result<()> {
    match Cli::parse().cmd {
        Cmd::Gen { lines, size } => generate(lines, size),
        Cmd::Bench {
            assay,
            count,
            rounds,
            mib,
        } => bench(&assay, count, rounds, mib),
    }
}

fn generate(lines: usize, size: usize) -> io::Result<()> {
    let head = r#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":""#;
    let tail = "\"}],\"isError\":false}}\n";
    let mut line = Vec::with_capacity(size);
    line.extend_from_slice(head.as_bytes());
    line.resize(size.saturating_sub(tail.len()).max(head.len()), b'x');
    line.extend_from_slice(tail.as_bytes());
    let mut out = io::stdout().lock();
    for _ in 0..lines {
        out.write_all(&line)?;
    }
    out.flush()
}

struct Peer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Peer {
    fn spawn(argv: &[String]) -> io::Result<Peer> {
        let mut child = Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = BufReader::with_capacity(1 << 20, child.stdout.take().expect("piped"));
        Ok(Peer {
            child,
            stdin,
            stdout,
        })
    }

    /// Sends one line, waits for one line back; the round trip.
    fn round_trip(&mut self, msg: &[u8], buf: &mut Vec<u8>) -> io::Result<Duration> {
        let t = Instant::now();
        self.stdin.write_all(msg)?;
        buf.clear();
        self.stdout.read_until(b'\n', buf)?;
        let d = t.elapsed();
        if buf.len() != msg.len() {
            return Err(io::Error::other(format!(
                "expected the message back, got {} bytes",
                buf.len()
            )));
        }
        Ok(d)
    }

    fn end(mut self) {
        drop(self.stdin);
        let _ = self.child.wait();
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn message() -> Vec<u8> {
    let mut m = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"{}"}}}}}}"#,
        "a".repeat(940)
    )
    .into_bytes();
    m.push(b'\n');
    assert!((1000..1100).contains(&m.len()));
    m
}

fn bench(assay: &std::path::Path, count: usize, rounds: usize, mib: usize) -> io::Result<()> {
    let dir = std::env::temp_dir().join(format!("assay-gatebench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let policy = dir.join("policy.yaml");
    std::fs::write(&policy, POLICY)?;
    let me = std::env::current_exe()?.display().to_string();
    let gated = |server: &[String]| -> Vec<String> {
        let mut v = vec![
            assay.display().to_string(),
            "monitor".into(),
            "--gate-only".into(),
            "--policy".into(),
            policy.display().to_string(),
            "--events".into(),
            "/dev/null".into(),
            "--".into(),
        ];
        v.extend_from_slice(server);
        v
    };
    let cat = vec!["cat".to_string()];

    // Latency: both peers live for the whole run; blocks alternate.
    // Other work on the machine shows in every figure: say how much there was.
    if let Ok(l) = std::fs::read_to_string("/proc/loadavg") {
        println!("load average at start: {}", l.trim());
    }
    let msg = message();
    let mut direct = Peer::spawn(&cat)?;
    let mut gate = Peer::spawn(&gated(&cat))?;
    let mut buf = Vec::new();
    for _ in 0..500 {
        direct.round_trip(&msg, &mut buf)?;
        gate.round_trip(&msg, &mut buf)?;
    }
    // Message by message, alternating: a burst of load on the shared cores
    // hits both paths alike. Each round's percentiles are kept too: on a
    // shared machine one busy round can own the whole run's tail, and the
    // median round says what the gate itself adds.
    let (mut d_ns, mut g_ns) = (Vec::new(), Vec::new());
    let mut per_round: Vec<[f64; 2]> = Vec::new();
    for _ in 0..rounds {
        let (mut d_r, mut g_r) = (Vec::with_capacity(count), Vec::with_capacity(count));
        for _ in 0..count {
            d_r.push(direct.round_trip(&msg, &mut buf)?.as_nanos() as u64);
            g_r.push(gate.round_trip(&msg, &mut buf)?.as_nanos() as u64);
        }
        d_r.sort_unstable();
        g_r.sort_unstable();
        let added = |p| (percentile(&g_r, p) as f64 - percentile(&d_r, p) as f64) / 1e3;
        per_round.push([added(0.50), added(0.99)]);
        d_ns.extend(d_r);
        g_ns.extend(g_r);
    }
    direct.end();
    gate.end();
    d_ns.sort_unstable();
    g_ns.sort_unstable();
    println!(
        "latency, {} B tools/call echoed by cat, {} messages per path in {rounds} rounds:",
        msg.len(),
        d_ns.len()
    );
    for (i, (name, p)) in [("p50", 0.50), ("p99", 0.99)].into_iter().enumerate() {
        let (d, g) = (percentile(&d_ns, p), percentile(&g_ns, p));
        let mut rounds: Vec<f64> = per_round.iter().map(|r| r[i]).collect();
        rounds.sort_by(f64::total_cmp);
        println!(
            "  {name}: direct {:>6.1} us, gated {:>6.1} us, added {:>6.1} us (ratio {:.2}); \
             added per round: median {:.1} us, range {:.1} to {:.1}",
            d as f64 / 1e3,
            g as f64 / 1e3,
            (g as f64 - d as f64) / 1e3,
            g as f64 / d as f64,
            rounds[rounds.len() / 2],
            rounds[0],
            rounds[rounds.len() - 1]
        );
    }

    // Throughput: large results read to EOF, first byte to last.
    let size = 1 << 20;
    let generator = vec![
        me.clone(),
        "gen".into(),
        "--lines".into(),
        mib.to_string(),
        "--size".into(),
        size.to_string(),
    ];
    let (mut d_rate, mut g_rate) = (Vec::new(), Vec::new());
    for _ in 0..rounds.max(3) {
        d_rate.push(drain(&generator, mib * size)?);
        g_rate.push(drain(&gated(&generator), mib * size)?);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (d, g) = (median(&mut d_rate), median(&mut g_rate));
    println!(
        "throughput, {mib} x 1 MiB results read to EOF (median of {}):\n  direct {:.0} MiB/s, gated {:.0} MiB/s, ratio {:.2}",
        d_rate.len(),
        d,
        g,
        g / d
    );

    // Start-up: spawn to the first echoed message.
    let (mut d_start, mut g_start) = (Vec::new(), Vec::new());
    for _ in 0..10 {
        d_start.push(first_echo(&cat, &msg)?);
        g_start.push(first_echo(&gated(&cat), &msg)?);
    }
    let (d, g) = (median(&mut d_start), median(&mut g_start));
    println!(
        "start-up, spawn to the first echoed message (median of 10):\n  direct {d:.2} ms, gated {g:.2} ms, added {:.2} ms",
        g - d
    );
    // What the gate adds to the monitor's wrapper-mode start-up, where the
    // process and the policy load are there anyway: building the judge
    // (every schema compiled) and starting its two threads.
    let mut setup = Vec::new();
    for _ in 0..20 {
        let p = assay::policy::load(&policy).map_err(|e| io::Error::other(e.to_string()))?;
        let t = Instant::now();
        let judge = assay::gate::judge_for(&p, false).map_err(io::Error::other)?;
        let threads: Vec<_> = (0..2).map(|_| std::thread::spawn(|| ())).collect();
        for th in threads {
            let _ = th.join();
        }
        setup.push(t.elapsed().as_secs_f64() * 1e3);
        drop(judge);
    }
    println!(
        "gate set-up inside the monitor (judge with schemas compiled, two threads; median of 20): {:.2} ms",
        median(&mut setup)
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// MiB/s reading `bytes` from the command's stdout, first byte to EOF.
fn drain(argv: &[String], bytes: usize) -> io::Result<f64> {
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut out = child.stdout.take().expect("piped");
    let mut buf = vec![0u8; 1 << 20];
    let mut n = out.read(&mut buf)?;
    let t = Instant::now();
    let mut total = n;
    while n > 0 {
        n = out.read(&mut buf)?;
        total += n;
    }
    let secs = t.elapsed().as_secs_f64();
    drop(child.stdin.take());
    child.wait()?;
    if total != bytes {
        return Err(io::Error::other(format!("read {total} of {bytes} bytes")));
    }
    Ok(bytes as f64 / (1 << 20) as f64 / secs)
}

/// Milliseconds from spawn to the first message echoed back.
fn first_echo(argv: &[String], msg: &[u8]) -> io::Result<f64> {
    let t = Instant::now();
    let mut p = Peer::spawn(argv)?;
    let mut buf = Vec::new();
    p.round_trip(msg, &mut buf)?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    p.end();
    Ok(ms)
}
