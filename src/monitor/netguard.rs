//! The shared ring buffer and drop counter, and the netguard loader.

use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, MapHandle, MapType, OpenMapMut};

use super::cgroup::Scope;
use super::compile::NetPlan;
use super::netguard_skel::{NetguardSkelBuilder, types};

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

fn bpf(step: impl Into<String>) -> impl FnOnce(libbpf_rs::Error) -> LoadError {
    let step = step.into();
    move |source| LoadError::Bpf { step, source }
}

/// The one ring buffer (`events`) and per-CPU drop counter (`dropped`) every
/// assay BPF object shares. Created once; each object reuses their fds
/// (call [`SharedMaps::reuse`] between open and load).
pub struct SharedMaps {
    pub events: Arc<MapHandle>,
    pub dropped: Arc<MapHandle>,
}

impl SharedMaps {
    pub fn create(ringbuf_bytes: u32) -> Result<SharedMaps, LoadError> {
        if ringbuf_bytes < 4096 || !ringbuf_bytes.is_power_of_two() {
            return Err(LoadError::RingbufSize(ringbuf_bytes));
        }
        let opts = libbpf_rs::libbpf_sys::bpf_map_create_opts {
            sz: size_of::<libbpf_rs::libbpf_sys::bpf_map_create_opts>() as _,
            ..Default::default()
        };
        let events =
            MapHandle::create(MapType::RingBuf, Some("events"), 0, 0, ringbuf_bytes, &opts)
                .map_err(|source| LoadError::SharedMap {
                    map: "events",
                    source,
                })?;
        let dropped = MapHandle::create(MapType::PercpuArray, Some("dropped"), 4, 8, 1, &opts)
            .map_err(|source| LoadError::SharedMap {
                map: "dropped",
                source,
            })?;
        Ok(SharedMaps {
            events: Arc::new(events),
            dropped: Arc::new(dropped),
        })
    }

    /// Pin the ring buffer and the drop counter under `dir` next to the
    /// links, plus a counter of the drops already reported (written by
    /// [`SharedMaps::record_reported`] when the monitor stops), so that
    /// `--unpin` can report what happened while nobody was reading.
    pub fn pin(&self, dir: &Path, pins: &mut NewPins) -> Result<MapHandle, LoadError> {
        let opts = libbpf_rs::libbpf_sys::bpf_map_create_opts {
            sz: size_of::<libbpf_rs::libbpf_sys::bpf_map_create_opts>() as _,
            ..Default::default()
        };
        let mut reported = MapHandle::create(MapType::Array, Some("reported"), 4, 8, 1, &opts)
            .map_err(|source| LoadError::SharedMap {
                map: "reported",
                source,
            })?;
        let [events, dropped, rep] = MAP_PINS.map(|n| dir.join(n));
        // Arc'd handles are shared with the pipeline; pinning needs &mut,
        // so pin duplicates of the same maps.
        for (map, path) in [(&self.events, events), (&self.dropped, dropped)] {
            let mut dup =
                MapHandle::try_from(map.as_ref()).map_err(bpf("duplicating a shared map"))?;
            dup.pin(&path)
                .map_err(bpf(format!("pinning {}", path.display())))?;
            pins.made(path);
        }
        reported
            .pin(&rep)
            .map_err(bpf(format!("pinning {}", rep.display())))?;
        pins.made(rep);
        Ok(reported)
    }

    /// Make an opened (not yet loaded) object use the shared maps.
    pub fn reuse(
        &self,
        events: &mut OpenMapMut<'_>,
        dropped: &mut OpenMapMut<'_>,
    ) -> Result<(), LoadError> {
        events
            .reuse_fd(self.events.as_fd())
            .map_err(bpf("reusing the shared ring buffer"))?;
        dropped
            .reuse_fd(self.dropped.as_fd())
            .map_err(bpf("reusing the shared drop counter"))?;
        Ok(())
    }

    /// Total failed ring buffer reservations, summed over CPUs.
    pub fn dropped_total(&self) -> Result<u64, LoadError> {
        dropped_total(&self.dropped)
    }
}

pub fn dropped_total(map: &MapHandle) -> Result<u64, LoadError> {
    let per_cpu = map
        .lookup_percpu(&0u32.to_ne_bytes(), MapFlags::ANY)
        .map_err(bpf("reading the drop counter"))?
        .unwrap_or_default();
    Ok(per_cpu
        .iter()
        .map(|v| {
            v.get(..8)
                .map_or(0, |b| u64::from_ne_bytes(b.try_into().expect("8 bytes")))
        })
        .sum())
}

/// The netguard programs, attached to the scope. Dropping it detaches them
/// (unless pinned).
pub struct NetGuard {
    links: Vec<(&'static str, Link)>,
}

pub const PROGRAMS: [&str; 4] = [
    "assay_connect4",
    "assay_connect6",
    "assay_sendmsg4",
    "assay_sendmsg6",
];

impl NetGuard {
    /// Open, configure, load, fill the maps and attach to `scope`.
    pub fn load(plan: &NetPlan, scope: &Scope, shared: &SharedMaps) -> Result<NetGuard, LoadError> {
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
            ro.loopback_ignore_mask = plan.loopback_ignore_mask;
            ro.have_ports = u8::from(!plan.ports.is_empty());
            ro.rule_action = plan.actions();
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
        let progs = [
            (PROGRAMS[0], &skel.progs.assay_connect4),
            (PROGRAMS[1], &skel.progs.assay_connect6),
            (PROGRAMS[2], &skel.progs.assay_sendmsg4),
            (PROGRAMS[3], &skel.progs.assay_sendmsg6),
        ];
        let mut links = Vec::with_capacity(progs.len());
        for (name, prog) in progs {
            let link = prog
                .attach_cgroup(fd)
                .map_err(bpf(format!("attaching {name} to {}", scope.path.display())))?;
            links.push((name, link));
        }
        // The links hold the programs (and through them the maps) in the
        // kernel; the skeleton itself is no longer needed.
        Ok(NetGuard { links })
    }

    /// Pin every link under `dir` (a bpffs directory): enforcement outlives
    /// this process until `unpin` removes the pins.
    pub fn pin(&mut self, dir: &Path, pins: &mut NewPins) -> Result<(), LoadError> {
        for (name, link) in &mut self.links {
            let p = dir.join(*name);
            link.pin(&p)
                .map_err(bpf(format!("pinning {}", p.display())))?;
            pins.made(p);
        }
        Ok(())
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
    fn made(&mut self, p: PathBuf) {
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

/// Names of the map pins next to the link pins: ring buffer, drop counter,
/// drops already reported.
pub const MAP_PINS: [&str; 3] = ["events", "dropped", "drops_reported"];

/// Writes how many drops the monitor reported into the pinned counter.
pub fn record_reported(reported: &MapHandle, total: u64) -> Result<(), LoadError> {
    reported
        .update(&0u32.to_ne_bytes(), &total.to_ne_bytes(), MapFlags::ANY)
        .map_err(bpf("recording the reported drops"))
}

/// The pinned maps of `dir`: (ring buffer, drop counter, drops already
/// reported), or None when `dir` has no pinned events (pinned by an older
/// assay).
pub fn pinned_maps(dir: &Path) -> Result<Option<(MapHandle, MapHandle, u64)>, LoadError> {
    let [events, dropped, reported] = MAP_PINS.map(|n| dir.join(n));
    if !events.exists() {
        return Ok(None);
    }
    let open =
        |p: &Path| MapHandle::from_pinned_path(p).map_err(bpf(format!("opening {}", p.display())));
    let rep = open(&reported)?
        .lookup(&0u32.to_ne_bytes(), MapFlags::ANY)
        .map_err(bpf("reading the reported drops"))?
        .and_then(|v| {
            v.get(..8)
                .map(|b| u64::from_ne_bytes(b.try_into().expect("8 bytes")))
        })
        .unwrap_or(0);
    Ok(Some((open(&events)?, open(&dropped)?, rep)))
}

/// Remove the link pins `pin` created in `dir` (which detaches the programs
/// once nothing else holds them). The map pins stay for
/// [`unpin_maps`], so the events left in the ring buffer can be read first.
pub fn unpin(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    remove_pins(dir, &PROGRAMS)
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
