//! Builders for the phase tests: configured entries and process tables made
//! up in memory, no files and no `/proc`.

use std::collections::HashMap;
use std::path::PathBuf;

use super::extract::{Entry, Spec};
use super::process::Proc;
use super::running::Snapshot;
use super::{Configured, Location, Scope, configured_entry, launch};

pub fn location(client: &'static str, path: &str, name: &str) -> Location {
    Location {
        client,
        path: PathBuf::from(path),
        scope: Scope::User,
        name: name.to_string(),
        project: None,
        user: None,
        disabled: false,
        disabled_by: None,
        monitor_wrapped: false,
    }
}

fn configured(client: &'static str, path: &str, name: &str, spec: Spec) -> Configured {
    let entry = Entry {
        name: name.to_string(),
        spec,
        disabled: false,
        scope: None,
        project: None,
    };
    configured_entry(entry, location(client, path, name))
}

/// A stdio entry launching `cmd` (split like a shell would).
pub fn stdio(client: &'static str, path: &str, name: &str, cmd: &str) -> Configured {
    let spec = Spec::Stdio {
        argv: launch::shell_split(cmd),
        env: Vec::new(),
        cwd: None,
    };
    configured(client, path, name, spec)
}

/// A stdio entry with a working directory.
pub fn stdio_in(client: &'static str, path: &str, name: &str, cmd: &str, cwd: &str) -> Configured {
    let spec = Spec::Stdio {
        argv: launch::shell_split(cmd),
        env: Vec::new(),
        cwd: Some(cwd.to_string()),
    };
    configured(client, path, name, spec)
}

/// A remote entry without headers or other authentication.
pub fn remote(client: &'static str, path: &str, name: &str, url: &str) -> Configured {
    let spec = Spec::Remote {
        kind: super::RemoteKind::Http,
        url: url.to_string(),
        headers: Vec::new(),
        auth_configured: None,
    };
    configured(client, path, name, spec)
}

/// A process whose comm is its program's name, as the kernel shows it.
pub fn process(pid: i32, ppid: i32, cmd: &str) -> Proc {
    let argv = launch::shell_split(cmd);
    let comm = argv
        .first()
        .map(|a| launch::program_name(a))
        .unwrap_or_default();
    Proc {
        pid,
        ppid,
        comm,
        argv,
    }
}

/// A snapshot of these processes, nothing else read; discovery itself is
/// pid 0 (no such process).
pub fn snapshot(procs: Vec<Proc>) -> Snapshot {
    let launches = procs.iter().map(|p| launch::analyze(&p.argv)).collect();
    Snapshot {
        procs,
        launches,
        cwds: HashMap::new(),
        cgroups: HashMap::new(),
        ports: HashMap::new(),
        socket_owners: HashMap::new(),
        own_pid: 0,
    }
}
