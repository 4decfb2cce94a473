//! Root tier: proves the BPF build pipeline end to end on the host kernel. The
//! skeleton built by build.rs loads, its connect4 program attaches to a fresh
//! cgroup, denies a blocked port to a process inside that cgroup only, and the
//! ring buffer delivers the event.
#![cfg(all(target_os = "linux", feature = "monitor"))]

mod common;

use std::mem::MaybeUninit;
use std::net::TcpListener;
use std::os::fd::AsFd;
use std::process::Command;
use std::time::Duration;

use assay::monitor::netguard_skel::{NetguardSkelBuilder, types};
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags, RingBufferBuilder};

use common::TestCgroup;

/// Run bash inside the cgroup and try a TCP connect: bash's exit code (0
/// connected, 1 the connect failed) and its stderr.
fn connect_from(cg: Option<&TestCgroup>, port: u16) -> (Option<i32>, String) {
    let join = cg
        .map(|c| format!("echo $$ > {}/cgroup.procs && ", c.path().display()))
        .unwrap_or_default();
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("{join}exec 3<>/dev/tcp/127.0.0.1/{port}"))
        .output()
        .expect("bash runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn connect4_denies_blocked_port_inside_cgroup_only() {
    if !common::require_root("connect4_denies_blocked_port_inside_cgroup_only") {
        return;
    }
    let cg = TestCgroup::new("assay-test-pipeline");

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();

    let mut storage = MaybeUninit::uninit();
    let mut open = NetguardSkelBuilder::default()
        .open(&mut storage)
        .expect("open");
    // One rule in bit 7: deny (ASSAY_ACT_DENY) TCP to `port`.
    let ro = open.maps.rodata_data.as_deref_mut().unwrap();
    ro.tcp_mask = 1 << 7;
    ro.rule_action[7] = 2;
    ro.have_ports = 1;
    let skel = open.load().expect("load connect4 into the host kernel");
    skel.maps
        .port_rules
        .update(
            &port.to_ne_bytes(),
            &(1u64 << 7).to_ne_bytes(),
            MapFlags::ANY,
        )
        .unwrap();
    let cg_fd = std::fs::File::open(cg.path()).unwrap();
    let _link = skel
        .progs
        .assay_connect4
        .attach_cgroup(std::os::fd::AsRawFd::as_raw_fd(&cg_fd.as_fd()))
        .expect("attach to cgroup");

    let (events, rb) = collect_net_events(&skel.maps.events);

    let (code, err) = connect_from(Some(&cg), port);
    assert_eq!(code, Some(1), "connect inside the cgroup must be denied");
    assert!(err.contains("Operation not permitted"), "stderr: {err}");
    let (code, err) = connect_from(None, port);
    assert_eq!(
        code,
        Some(0),
        "connect outside the cgroup must succeed: {err}"
    );

    rb.poll(Duration::from_millis(500)).unwrap();
    let evs = events.borrow();
    assert_eq!(evs.len(), 1, "exactly one event for the one denied connect");
    let ev = &evs[0];
    assert_eq!(ev.port, port);
    assert_eq!(ev.hdr.rule_idx, 7);
    assert_eq!(ev.hdr.action, 2);
    assert_eq!(ev.family, libc::AF_INET as u16);
    assert_eq!(&ev.addr[..4], &[127, 0, 0, 1]);
    let comm: Vec<u8> = ev
        .hdr
        .comm
        .iter()
        .take_while(|c| **c != 0)
        .map(|c| *c as u8)
        .collect();
    assert_eq!(comm, b"bash");
}

/// Start time of a process in clock ticks (field 22 of /proc/PID/stat).
fn start_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 1..];
    after.split_whitespace().nth(19).unwrap().parse().unwrap()
}

fn boottime_ns() -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut t) };
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// With `task_identity` (set where the kernel lets cgroup programs read the
/// current task), the event names the sender as the kernel knew it: its
/// uid and gid, its parent (this test) and both start times, on the boot
/// clock /proc/PID/stat shows in ticks.
#[test]
fn connect_event_carries_the_kernels_identity_of_the_sender() {
    if !common::require_root("connect_event_carries_the_kernels_identity_of_the_sender") {
        return;
    }
    assert!(
        assay::monitor::netguard::task_identity_allowed(),
        "this host's kernel lets cgroup programs call bpf_get_current_task"
    );
    let cg = TestCgroup::new("assay-test-identity");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut storage = MaybeUninit::uninit();
    let mut open = NetguardSkelBuilder::default()
        .open(&mut storage)
        .expect("open");
    let ro = open.maps.rodata_data.as_deref_mut().unwrap();
    ro.tcp_mask = 1 << 2;
    ro.rule_action[2] = 2;
    ro.have_ports = 1;
    ro.task_identity = 1;
    let skel = open.load().expect("load with task identity");
    skel.maps
        .port_rules
        .update(
            &port.to_ne_bytes(),
            &(1u64 << 2).to_ne_bytes(),
            MapFlags::ANY,
        )
        .unwrap();
    let cg_fd = std::fs::File::open(cg.path()).unwrap();
    let _link = skel
        .progs
        .assay_connect4
        .attach_cgroup(std::os::fd::AsRawFd::as_raw_fd(&cg_fd.as_fd()))
        .expect("attach to cgroup");
    let (events, rb) = collect_net_events(&skel.maps.events);
    let before = boottime_ns();
    let (code, _) = connect_from(Some(&cg), port);
    assert_eq!(code, Some(1));
    rb.poll(Duration::from_millis(500)).unwrap();
    let evs = events.borrow();
    assert_eq!(evs.len(), 1);
    let h = &evs[0].hdr;
    // SAFETY: getuid/getgid cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    assert_eq!((h.uid, h.gid), (uid, gid));
    assert_eq!(h.ppid, std::process::id(), "the parent is this test");
    assert_eq!(
        h.parent_start_ns / 10_000_000,
        start_ticks(std::process::id()),
        "the parent's start time is what /proc shows for it"
    );
    assert!(
        h.start_ns >= before - 10_000_000 && h.start_ns <= boottime_ns(),
        "bash started during the test: {} not in [{before}, now]",
        h.start_ns
    );
    assert_ne!(h.tgid, std::process::id());
}

/// The ICMP egress program kernels before 6.0 get (no current-task helpers),
/// loaded on this host as they would load it: in the cgroup, a ping to an
/// address outside the allowlist never leaves and its event names no
/// sender (pid 0, no comm) but the socket's cgroup; an allowed one is
/// answered. Outside the cgroup the same ping is answered.
#[test]
fn icmp_egress_without_the_current_task_judges_and_names_no_sender() {
    if !common::require_root("icmp_egress_without_the_current_task_judges_and_names_no_sender") {
        return;
    }
    let cg = TestCgroup::new("assay-test-icmp-unnamed");
    let ns = common::Netns::new("assay-unnamed");

    let mut storage = MaybeUninit::uninit();
    let mut open = NetguardSkelBuilder::default()
        .open(&mut storage)
        .expect("open");
    // One rule in bit 3: an allowlist of 127.0.0.1/32 covering ICMP, deny.
    let ro = open.maps.rodata_data.as_deref_mut().unwrap();
    ro.icmp_mask = 1 << 3;
    ro.cidr_mask = 1 << 3;
    ro.any_port_mask = 1 << 3;
    ro.rule_action[3] = 2;
    open.progs.assay_icmp_egress.set_autoload(false);
    let skel = open.load().expect("load the unnamed ICMP egress program");
    let key = types::lpm_v4_key {
        prefixlen: 32,
        addr: [127, 0, 0, 1],
    };
    // SAFETY: generated plain C struct (assay.h).
    let k = unsafe { plain::as_bytes(&key) };
    skel.maps
        .allow_v4
        .update(k, &(1u64 << 3).to_ne_bytes(), MapFlags::ANY)
        .unwrap();
    let cg_fd = std::fs::File::open(cg.path()).unwrap();
    let _link = skel
        .progs
        .assay_icmp_egress_unnamed
        .attach_cgroup(std::os::fd::AsRawFd::as_raw_fd(&cg_fd.as_fd()))
        .expect("attach to cgroup");

    let (events, rb) = collect_net_events(&skel.maps.events);

    let ping = |inside: bool, to: &str| -> serde_json::Value {
        let join = if inside {
            format!("echo $$ > {}/cgroup.procs && ", cg.path().display())
        } else {
            String::new()
        };
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "{join}exec nsenter --net={} {} socket --kind ping --to {to} --reply-ms 1000",
                ns.path(),
                env!("CARGO_BIN_EXE_assay-netbench")
            ))
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"))
    };
    let echos = ns.counter("Icmp:InEchos");
    assert_eq!(ping(true, "127.0.0.1:0")["replied"], true, "allowed");
    assert_eq!(ping(true, "127.0.0.2:0")["replied"], false, "denied");
    assert_eq!(
        ns.counter("Icmp:InEchos"),
        echos + 1,
        "only the allowed echo left"
    );
    assert_eq!(
        ping(false, "127.0.0.2:0")["replied"],
        true,
        "outside the cgroup"
    );

    rb.poll(Duration::from_millis(500)).unwrap();
    let evs = events.borrow();
    assert_eq!(evs.len(), 1, "one event, for the denied ping");
    let ev = &evs[0];
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        ev.hdr.cgroup_id,
        std::fs::metadata(cg.path()).unwrap().ino()
    );
    assert_eq!((ev.hdr.pid, ev.hdr.tgid), (0, 0));
    assert!(ev.hdr.comm.iter().all(|c| *c == 0));
    assert_eq!((ev.hdr.rule_idx, ev.hdr.action), (3, 2));
    assert_eq!(
        (ev.family, ev.port, ev.protocol),
        (libc::AF_INET as u16, 0, 1)
    );
    assert_eq!(&ev.addr[..4], &[127, 0, 0, 2]);
}

/// The net events `map` (a skeleton's ring buffer) delivers, as polled.
fn collect_net_events<M: libbpf_rs::MapCore>(
    map: &M,
) -> (
    std::rc::Rc<std::cell::RefCell<Vec<types::net_event>>>,
    libbpf_rs::RingBuffer<'static>,
) {
    let events = std::rc::Rc::new(std::cell::RefCell::new(Vec::<types::net_event>::new()));
    let sink = events.clone();
    let mut rb = RingBufferBuilder::new();
    rb.add(map, move |data: &[u8]| {
        let mut ev = types::net_event::default();
        plain::copy_from_bytes(&mut ev, data).expect("event size");
        sink.borrow_mut().push(ev);
        0
    })
    .unwrap();
    (events, rb.build().unwrap())
}
