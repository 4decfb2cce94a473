//! The netguard loader (cgroup connect4/6, sendmsg4/6, sock_create, and
//! cgroup_skb egress for ICMP) and its pins.

use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags};

use super::cgroup::Scope;
use super::compile::NetPlan;
use super::netguard_skel::{NetguardSkelBuilder, types};
use super::ringbuf::{MAP_PINS, SharedMaps};

/// Default ring buffer size: 4 MiB holds ~50,000 net events.
pub const DEFAULT_RINGBUF_BYTES: u32 = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("ring buffer size {0} must be a power of two and at least 4096 bytes")]
    RingbufSize(u32),
    #[error("creating the shared {map} map: {source}")]
    SharedMap {
        map: &'static str,
        #[source]
        source: libbpf_rs::Error,
    },
    #[error("{step}: {source}")]
    Bpf {
        step: String,
        #[source]
        source: libbpf_rs::Error,
    },
    #[error("{0}")]
    Refused(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub(super) fn bpf(step: impl Into<String>) -> impl FnOnce(libbpf_rs::Error) -> LoadError {
    let step = step.into();
    move |source| LoadError::Bpf { step, source }
}

/// The netguard programs, attached to the scope. Dropping it detaches them
/// (unless pinned).
pub struct NetGuard {
    links: Links,
}

/// Links by pin name: what a loader keeps once its skeleton is gone (they
/// hold the programs, and through them the maps, in the kernel).
pub(super) struct Links(pub(super) Vec<(&'static str, Link)>);

impl Links {
    /// Detach every link now, whoever else holds it (a pin drops its hold
    /// only after an RCU grace period). Best effort: a kernel without
    /// BPF_LINK_DETACH for a link type detaches when the last hold goes.
    pub(super) fn detach(&self) {
        for (_, link) in &self.0 {
            let _ = link.detach();
        }
    }

    /// Pins each link as `dir/<name>`; on failure, the path and the error.
    pub(super) fn pin(
        &mut self,
        dir: &Path,
        pins: &mut NewPins,
    ) -> Result<(), (PathBuf, libbpf_rs::Error)> {
        for (name, link) in &mut self.0 {
            let p = dir.join(*name);
            link.pin(&p).map_err(|e| (p.clone(), e))?;
            pins.made(p);
        }
        Ok(())
    }
}

/// Link pin names: the programs' names (the ICMP program under one name
/// whichever variant is loaded).
pub const PROGRAMS: [&str; 6] = [
    "assay_connect4",
    "assay_connect6",
    "assay_sendmsg4",
    "assay_sendmsg6",
    "assay_sock_create",
    "assay_icmp_egress",
];

/// Which variant of the ICMP egress program to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpSender {
    /// Events name the sending task (where the kernel lets cgroup_skb ask:
    /// the host's 6.18 does; 6.12 refuses the program that asks).
    Named,
    /// Events leave pid and comm empty (older kernels).
    Unnamed,
}

impl IcmpSender {
    /// Asks the kernel whether cgroup_skb programs may call
    /// `bpf_get_current_pid_tgid` (newer kernels gave them the current task's
    /// helpers). Any doubt: [`IcmpSender::Unnamed`], which loads everywhere.
    pub fn probe() -> IcmpSender {
        use libbpf_rs::libbpf_sys as sys;
        // SAFETY: a probe with no options; it loads and closes a tiny program.
        let r = unsafe {
            sys::libbpf_probe_bpf_helper(
                sys::BPF_PROG_TYPE_CGROUP_SKB,
                sys::BPF_FUNC_get_current_pid_tgid,
                std::ptr::null(),
            )
        };
        if r == 1 {
            IcmpSender::Named
        } else {
            IcmpSender::Unnamed
        }
    }
}

/// Whether the kernel lets cgroup programs call `bpf_get_current_task`
/// (Linux 5.11 and later, for a loader with CAP_PERFMON), so that their
/// events carry the sender's uid, gid, parent and start times.
pub fn task_identity_allowed() -> bool {
    use libbpf_rs::libbpf_sys as sys;
    // SAFETY: a probe with no options; it loads and closes a tiny program.
    let r = unsafe {
        sys::libbpf_probe_bpf_helper(
            sys::BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
            sys::BPF_FUNC_get_current_task,
            std::ptr::null(),
        )
    };
    r == 1
}

impl NetGuard {
    /// Open, configure, load, fill the maps and attach to `scope`.
    /// `sockets`: also refuse raw sockets in scope, and ping sockets unless a
    /// rule covers ICMP (the `raw_sockets` guard). Where a rule covers ICMP,
    /// ping sockets' packets are judged by destination (the variant the
    /// kernel takes, see [`IcmpSender::probe`]).
    pub fn load(
        plan: &NetPlan,
        scope: &Scope,
        shared: &SharedMaps,
        sockets: bool,
    ) -> Result<NetGuard, LoadError> {
        let sender = if plan.icmp_mask != 0 {
            IcmpSender::probe()
        } else {
            IcmpSender::Unnamed
        };
        // The probe asks about one helper; a kernel may still refuse the
        // named program (6.12 does): the unnamed one then, which judges alike.
        match Self::load_with(plan, scope, shared, sockets, sender) {
            Err(e) if sender == IcmpSender::Named => {
                Self::load_with(plan, scope, shared, sockets, IcmpSender::Unnamed).map_err(|_| e)
            }
            r => r,
        }
    }

    /// [`NetGuard::load`] with the ICMP program's variant chosen by the
    /// caller (tests load the one the host would not pick).
    pub fn load_with(
        plan: &NetPlan,
        scope: &Scope,
        shared: &SharedMaps,
        sockets: bool,
        sender: IcmpSender,
    ) -> Result<NetGuard, LoadError> {
        let mut storage = MaybeUninit::uninit();
        let mut open = NetguardSkelBuilder::default()
            .open(&mut storage)
            .map_err(bpf("opening netguard"))?;

        {
            let ro = open
                .maps
                .rodata_data
                .as_deref_mut()
                .expect("netguard has rodata");
            ro.any_port_mask = plan.any_port_mask;
            ro.cidr_mask = plan.cidr_mask;
            ro.tcp_mask = plan.tcp_mask;
            ro.udp_mask = plan.udp_mask;
            ro.icmp_mask = plan.icmp_mask;
            ro.loopback_ignore_mask = plan.loopback_ignore_mask;
            ro.have_ports = u8::from(!plan.ports.is_empty());
            ro.rule_action = plan.actions();
            ro.task_identity = u8::from(task_identity_allowed());
        }
        let sizes = [
            (&mut open.maps.port_rules, plan.ports.len()),
            (&mut open.maps.allow_v4, plan.v4.len()),
            (&mut open.maps.allow_v6, plan.v6.len()),
        ];
        for (map, n) in sizes {
            map.set_max_entries(n.max(1) as u32)
                .map_err(bpf("sizing netguard maps"))?;
        }
        // Ping sockets are judged per packet only where a rule covers ICMP
        // (else sock_create refuses them): one of the two variants, or none.
        let icmp = plan.icmp_mask != 0;
        let named = sender == IcmpSender::Named;
        open.progs.assay_sock_create.set_autoload(sockets);
        open.progs.assay_icmp_egress.set_autoload(icmp && named);
        open.progs
            .assay_icmp_egress_unnamed
            .set_autoload(icmp && !named);
        shared.reuse(&mut open.maps.events, &mut open.maps.dropped)?;
        let skel = open
            .load()
            .map_err(bpf("loading netguard into the kernel"))?;

        for (port, mask) in &plan.ports {
            skel.maps
                .port_rules
                .update(&port.to_ne_bytes(), &mask.to_ne_bytes(), MapFlags::ANY)
                .map_err(bpf("filling port_rules"))?;
        }
        for (prefix, addr, mask) in &plan.v4 {
            let key = types::lpm_v4_key {
                prefixlen: u32::from(*prefix),
                addr: *addr,
            };
            // SAFETY: generated plain C struct (assay.h).
            let k = unsafe { plain::as_bytes(&key) };
            skel.maps
                .allow_v4
                .update(k, &mask.to_ne_bytes(), MapFlags::ANY)
                .map_err(bpf("filling allow_v4"))?;
        }
        for (prefix, addr, mask) in &plan.v6 {
            let key = types::lpm_v6_key {
                prefixlen: u32::from(*prefix),
                addr: *addr,
            };
            // SAFETY: generated plain C struct (assay.h).
            let k = unsafe { plain::as_bytes(&key) };
            skel.maps
                .allow_v6
                .update(k, &mask.to_ne_bytes(), MapFlags::ANY)
                .map_err(bpf("filling allow_v6"))?;
        }

        let cg = std::fs::File::open(&scope.path).map_err(|source| LoadError::Io {
            path: scope.path.clone(),
            source,
        })?;
        let fd = cg.as_fd().as_raw_fd();
        let p = &skel.progs;
        let mut progs = vec![
            (PROGRAMS[0], &p.assay_connect4),
            (PROGRAMS[1], &p.assay_connect6),
            (PROGRAMS[2], &p.assay_sendmsg4),
            (PROGRAMS[3], &p.assay_sendmsg6),
        ];
        if sockets {
            progs.push((PROGRAMS[4], &p.assay_sock_create));
        }
        if icmp {
            let egress = if named {
                &p.assay_icmp_egress
            } else {
                &p.assay_icmp_egress_unnamed
            };
            progs.push((PROGRAMS[5], egress));
        }
        let mut links = Vec::with_capacity(progs.len());
        for (name, prog) in progs {
            let link = prog
                .attach_cgroup(fd)
                .map_err(bpf(format!("attaching {name} to {}", scope.path.display())))?;
            links.push((name, link));
        }
        // The links hold the programs (and through them the maps) in the
        // kernel; the skeleton itself is no longer needed.
        Ok(NetGuard {
            links: Links(links),
        })
    }

    /// Detach every link now (see [`Links::detach`]).
    pub fn detach(&self) {
        self.links.detach();
    }

    /// Pin every link under `dir` (a bpffs directory): enforcement outlives
    /// this process until `unpin` removes the pins.
    pub fn pin(&mut self, dir: &Path, pins: &mut NewPins) -> Result<(), LoadError> {
        self.links
            .pin(dir, pins)
            .map_err(|(p, e)| bpf(format!("pinning {}", p.display()))(e))
    }
}

/// The pins one `--pin` made so far: removed when dropped unless kept, so a
/// pin that fails halfway leaves nothing behind (and never touches pins it
/// did not make, such as an earlier monitor's in the same directory).
#[derive(Debug, Default)]
pub struct NewPins {
    paths: Vec<PathBuf>,
}

impl NewPins {
    pub(super) fn made(&mut self, p: PathBuf) {
        self.paths.push(p);
    }

    /// Keep the pins; returns their paths.
    pub fn keep(mut self) -> Vec<PathBuf> {
        std::mem::take(&mut self.paths)
    }
}

impl Drop for NewPins {
    fn drop(&mut self) {
        for p in &self.paths {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Remove the link pins `pin` created in `dir` (which detaches the programs
/// once nothing else holds them). The map pins stay for
/// [`unpin_maps`], so the events left in the ring buffer can be read first.
pub fn unpin(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let mut removed = remove_pins(dir, &PROGRAMS)?;
    // Pinned by the fail-closed pins: files and self-protection.
    removed.extend(remove_pins(dir, &super::fileguard::LINK_PINS)?);
    removed.extend(remove_pins(dir, &super::selfguard::LINK_PINS)?);
    removed.extend(remove_pins(dir, &[super::selfguard::SOCKET_PIN])?);
    Ok(removed)
}

/// Remove the map pins, then `dir` if it is empty.
pub fn unpin_maps(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let removed = remove_pins(dir, &MAP_PINS)?;
    let _ = std::fs::remove_dir(dir);
    Ok(removed)
}

/// Removes the pins `names` in `dir` that exist; returns those removed.
fn remove_pins(dir: &Path, names: &[&str]) -> Result<Vec<PathBuf>, LoadError> {
    let mut removed = Vec::new();
    for name in names {
        let p = dir.join(name);
        match std::fs::remove_file(&p) {
            Ok(()) => removed.push(p),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(LoadError::Io { path: p, source }),
        }
    }
    Ok(removed)
}

const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

#[derive(Debug, thiserror::Error)]
#[error("{path} is not on a bpf file system (mount one: `mount -t bpf bpf /sys/fs/bpf`)")]
pub struct NotBpffs {
    pub path: PathBuf,
}

/// Create `dir` if needed and check that it lives on bpffs (pins need it).
pub fn ensure_bpffs_dir(dir: &Path) -> Result<(), LoadError> {
    std::fs::create_dir_all(dir).map_err(|source| LoadError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let c =
        std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).map_err(|_| LoadError::Io {
            path: dir.to_path_buf(),
            source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
        })?;
    // SAFETY: statfs is plain data; valid path and out pointer.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return Err(LoadError::Io {
            path: dir.to_path_buf(),
            source: std::io::Error::last_os_error(),
        });
    }
    #[allow(clippy::unnecessary_cast)]
    if st.f_type as i64 != BPF_FS_MAGIC {
        return Err(LoadError::Io {
            path: dir.to_path_buf(),
            source: std::io::Error::other(NotBpffs {
                path: dir.to_path_buf(),
            }),
        });
    }
    Ok(())
}
