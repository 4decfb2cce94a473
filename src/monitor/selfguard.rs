//! Self-protection with the BPF LSM (`src/bpf/selfguard.bpf.c`): in scope,
//! `bpf()`, signals and ptrace of tasks outside the scope, writes to cgroup
//! interface files, mounts, packet sockets (with network rules) and
//! block devices (with file rules) are refused with a tamper event. Loaded
//! wherever the BPF LSM is active; dropping it detaches.

use std::mem::MaybeUninit;
use std::path::Path;

use libbpf_rs::skel::{OpenSkel, SkelBuilder};

use super::cgroup::Scope;
use super::netguard::{Links, NewPins};
use super::ringbuf::SharedMaps;
use super::selfguard_skel::{SelfguardSkelBuilder, types::assay_guard as G};
use crate::policy::model::SelfProtection;

/// Link pin names, next to netguard's (see [`SelfGuard::pin`]).
pub const LINK_PINS: [&str; 9] = [
    "assay_guard_bpf",
    "assay_guard_task_kill",
    "assay_guard_ptrace",
    "assay_guard_open",
    "assay_guard_sb_mount",
    "assay_guard_sb_umount",
    "assay_guard_move_mount",
    "assay_guard_sb_pivotroot",
    "assay_guard_sb_kern_mount",
];
/// The socket guard's pin (only with network rules).
pub const SOCKET_PIN: &str = "assay_guard_socket_create";

#[derive(Debug, thiserror::Error)]
pub enum SelfGuardError {
    #[error("{what}: {source}")]
    Bpf {
        what: String,
        #[source]
        source: libbpf_rs::Error,
    },
    #[error(transparent)]
    Shared(#[from] super::netguard::LoadError),
}

impl SelfGuardError {
    /// The kernel refuses BPF LSM programs outright (EPERM before the
    /// verifier: a sandbox, or lockdown), as opposed to refusing these
    /// programs: self-protection is then unavailable on this host, as where
    /// the BPF LSM is not active at all.
    pub fn lsm_refused(&self) -> bool {
        let SelfGuardError::Bpf { source, .. } = self else {
            return false;
        };
        let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(source);
        while let Some(e) = cur {
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                return io.raw_os_error() == Some(libc::EPERM);
            }
            cur = e.source();
        }
        source.to_string().contains("(os error 1)")
    }
}

fn bpf(what: impl Into<String>) -> impl FnOnce(libbpf_rs::Error) -> SelfGuardError {
    let what = what.into();
    move |source| SelfGuardError::Bpf { what, source }
}

/// Which guards run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Guards {
    pub bpf: bool,
    pub signals: bool,
    pub ptrace: bool,
    pub cgroup_writes: bool,
    pub mounts: bool,
    /// Packet sockets: network rules are enforced.
    pub sockets: bool,
    /// Block devices: file rules are enforced.
    pub block_devices: bool,
}

impl Guards {
    /// What the policy's `self_protection` turns on, given which rules are
    /// enforced (`net`, `files`).
    pub fn of(sp: &SelfProtection, net: bool, files: bool) -> Guards {
        Guards {
            bpf: sp.bpf,
            signals: sp.signals,
            ptrace: sp.ptrace,
            cgroup_writes: sp.cgroup_writes,
            mounts: sp.mounts,
            sockets: sp.raw_sockets && net,
            block_devices: sp.block_devices && files,
        }
    }

    /// Whether any guard is on.
    pub fn any(&self) -> bool {
        self.mask() != 0
    }

    /// The guards that are on, by the name their events carry.
    pub fn names(&self) -> Vec<&'static str> {
        [
            (self.bpf, "bpf"),
            (self.signals, "signal"),
            (self.ptrace, "ptrace"),
            (self.cgroup_writes, "cgroup_write"),
            (self.mounts, "mount"),
            (self.sockets, "packet_socket"),
            (self.block_devices, "block_device"),
        ]
        .into_iter()
        .filter_map(|(on, n)| on.then_some(n))
        .collect()
    }

    /// The `guards` mask of the program (bit `1 << enum assay_guard`).
    pub fn mask(&self) -> u32 {
        [
            (self.bpf, G::ASSAY_GUARD_BPF),
            (self.signals, G::ASSAY_GUARD_SIGNAL),
            (self.ptrace, G::ASSAY_GUARD_PTRACE),
            (self.cgroup_writes, G::ASSAY_GUARD_CGROUP_WRITE),
            (self.mounts, G::ASSAY_GUARD_MOUNT),
            (self.sockets, G::ASSAY_GUARD_PACKET_SOCKET),
            (self.block_devices, G::ASSAY_GUARD_BLOCK_DEVICE),
        ]
        .into_iter()
        .filter(|(on, _)| *on)
        .fold(0, |m, (_, g)| m | (1 << g.0))
    }
}

/// Whether the running kernel's `bpf` LSM hook has the `kernel` argument
/// (added in Linux 6.15; backports vary): the number of parameters of
/// `bpf_lsm_bpf` in the kernel's BTF. Unreadable BTF: the older form.
fn bpf_hook_has_kernel_arg() -> bool {
    use libbpf_rs::libbpf_sys as sys;
    // SAFETY: libbpf allocates the BTF or returns null; every pointer is
    // checked before use and the BTF is freed once.
    unsafe {
        let btf = sys::btf__load_vmlinux_btf();
        if btf.is_null() {
            return false;
        }
        let id = sys::btf__find_by_name_kind(btf, c"bpf_lsm_bpf".as_ptr(), sys::BTF_KIND_FUNC);
        let mut params = 0;
        if id > 0 {
            let func = sys::btf__type_by_id(btf, id as u32);
            if !func.is_null() {
                let proto = sys::btf__type_by_id(btf, (*func).__bindgen_anon_1.type_);
                if !proto.is_null() {
                    params = (*proto).info & 0xffff;
                }
            }
        }
        sys::btf__free(btf);
        params >= 4
    }
}

/// Whether this kernel loads BPF LSM programs at all, asked with a trivial
/// program (`r0 = 0; exit`) for a hook id that does not exist: a sandbox or
/// lockdown that refuses LSM programs answers EPERM before any verifier
/// runs; a kernel that takes them answers that the hook is wrong. Trying the
/// real programs instead would cost a parse of the kernel's BTF first.
pub fn lsm_programs_load() -> bool {
    use libbpf_rs::libbpf_sys as sys;
    // mov r0, 0; exit (struct bpf_insn is 8 bytes).
    let insns: [[u8; 8]; 2] = [[0xb7, 0, 0, 0, 0, 0, 0, 0], [0x95, 0, 0, 0, 0, 0, 0, 0]];
    let mut opts = sys::bpf_prog_load_opts {
        sz: size_of::<sys::bpf_prog_load_opts>() as _,
        expected_attach_type: sys::BPF_LSM_MAC,
        attach_btf_id: 1,
        ..Default::default()
    };
    // SAFETY: two valid instructions, a static license string and options
    // of their stated size; a descriptor that comes back is closed.
    let fd = unsafe {
        sys::bpf_prog_load(
            sys::BPF_PROG_TYPE_LSM,
            std::ptr::null(),
            c"GPL".as_ptr(),
            insns.as_ptr().cast(),
            2,
            &mut opts,
        )
    };
    if fd >= 0 {
        // SAFETY: the descriptor just returned.
        unsafe { libc::close(fd) };
    }
    fd != -libc::EPERM
}

/// The attached guard programs.
pub struct SelfGuard {
    links: Links,
}

impl SelfGuard {
    pub fn load(
        scope: &Scope,
        shared: &SharedMaps,
        guards: Guards,
    ) -> Result<SelfGuard, SelfGuardError> {
        let mut storage = MaybeUninit::uninit();
        let mut open = SelfguardSkelBuilder::default()
            .open(&mut storage)
            .map_err(bpf("opening the selfguard BPF object"))?;
        let ro = open
            .maps
            .rodata_data
            .as_deref_mut()
            .expect("selfguard has read-only data");
        ro.target_cgid = scope.cgroup_id;
        ro.target_level = scope.level;
        // LSM programs may always read the current task.
        ro.task_identity = 1;
        ro.guards = guards.mask();
        let kernel_arg = bpf_hook_has_kernel_arg();
        open.progs.assay_bpf.set_autoload(!kernel_arg);
        open.progs.assay_bpf_kernel_arg.set_autoload(kernel_arg);
        open.progs.assay_socket_create.set_autoload(guards.sockets);
        shared.reuse(&mut open.maps.events, &mut open.maps.dropped)?;
        let skel = open.load().map_err(bpf(
            "loading the self-protection programs (verifier or kernel refused them)",
        ))?;
        let p = &skel.progs;
        let bpf_prog = if kernel_arg {
            &p.assay_bpf_kernel_arg
        } else {
            &p.assay_bpf
        };
        let mut progs = vec![
            (LINK_PINS[0], bpf_prog),
            (LINK_PINS[1], &p.assay_task_kill),
            (LINK_PINS[2], &p.assay_ptrace),
            (LINK_PINS[3], &p.assay_guard_open),
            (LINK_PINS[4], &p.assay_sb_mount),
            (LINK_PINS[5], &p.assay_sb_umount),
            (LINK_PINS[6], &p.assay_move_mount),
            (LINK_PINS[7], &p.assay_sb_pivotroot),
            (LINK_PINS[8], &p.assay_sb_kern_mount),
        ];
        if guards.sockets {
            progs.push((SOCKET_PIN, &p.assay_socket_create));
        }
        let mut links = Vec::with_capacity(progs.len());
        for (name, prog) in progs {
            let link = prog
                .attach_lsm()
                .map_err(bpf(format!("attaching {name}")))?;
            links.push((name, link));
        }
        // The links hold the programs and maps; the skeleton may go.
        Ok(SelfGuard {
            links: Links(links),
        })
    }

    /// Detaches now (see [`Links::detach`]).
    pub fn detach(&self) {
        self.links.detach();
    }

    /// Pins every link under `dir` (bpffs).
    pub fn pin(&mut self, dir: &Path, pins: &mut NewPins) -> Result<(), SelfGuardError> {
        self.links
            .pin(dir, pins)
            .map_err(|(p, e)| bpf(format!("pinning {}", p.display()))(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_follow_the_policy_and_the_rules() {
        let bit = |g: G| 1u32 << g.0;
        let all = Guards::of(&SelfProtection::default(), true, true);
        for g in [
            G::ASSAY_GUARD_BPF,
            G::ASSAY_GUARD_SIGNAL,
            G::ASSAY_GUARD_PTRACE,
            G::ASSAY_GUARD_CGROUP_WRITE,
            G::ASSAY_GUARD_MOUNT,
            G::ASSAY_GUARD_PACKET_SOCKET,
            G::ASSAY_GUARD_BLOCK_DEVICE,
        ] {
            assert_ne!(all.mask() & bit(g), 0, "on by default: {g:?}");
        }
        // Socket and block device guards only where such rules are enforced.
        let none = Guards::of(&SelfProtection::default(), false, false);
        assert_eq!(none.mask() & bit(G::ASSAY_GUARD_PACKET_SOCKET), 0);
        assert_eq!(none.mask() & bit(G::ASSAY_GUARD_BLOCK_DEVICE), 0);
        // A policy turns one off; the rest stay.
        let sp = SelfProtection {
            mounts: false,
            ..SelfProtection::default()
        };
        let g = Guards::of(&sp, true, true);
        assert_eq!(g.mask() & bit(G::ASSAY_GUARD_MOUNT), 0);
        assert_ne!(g.mask() & bit(G::ASSAY_GUARD_BPF), 0);
        let off = SelfProtection {
            bpf: false,
            signals: false,
            ptrace: false,
            cgroup_writes: false,
            mounts: false,
            raw_sockets: false,
            block_devices: false,
        };
        assert!(!Guards::of(&off, true, true).any());
    }
}
