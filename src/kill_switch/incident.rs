//! Writing an incident directory atomically: everything is written into a
//! hidden temporary directory next to the destination, each file is fsynced,
//! and the directory is renamed into place. A crash leaves either a complete
//! incident or a `.tmp-*` directory, never a half incident under its real name.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// One file of an incident: a path relative to the incident directory.
pub struct IncidentFile {
    pub rel: String,
    pub bytes: Vec<u8>,
}

/// Removes the temporary directory unless the incident was committed.
struct TempDir {
    path: PathBuf,
    committed: bool,
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// Incidents hold command lines, environments and addresses: readable by
/// their owner only.
fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut o = fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let mut f = o.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn private_dir(path: &Path, recursive: bool) -> io::Result<()> {
    let mut b = fs::DirBuilder::new();
    b.recursive(recursive);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(path)
}

fn sync_dir(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()
}

/// Write `files` as the incident `name` under `output_dir`; returns the final
/// directory. `output_dir` is created if missing.
pub fn write_atomic(output_dir: &Path, name: &str, files: &[IncidentFile]) -> io::Result<PathBuf> {
    fs::create_dir_all(output_dir)?;
    let final_dir = output_dir.join(name);
    if final_dir.exists() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} already exists", final_dir.display()),
        ));
    }
    let mut tmp = TempDir {
        path: output_dir.join(format!(".tmp-{name}")),
        committed: false,
    };
    private_dir(&tmp.path, false)?;
    for f in files {
        let rel = Path::new(&f.rel);
        if rel.is_absolute()
            || rel
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "incident file name {:?} is not a plain relative path",
                    f.rel
                ),
            ));
        }
        let path = tmp.path.join(rel);
        if let Some(parent) = path.parent() {
            if !parent.exists() {
                private_dir(parent, true)?;
            }
        }
        write_synced(&path, &f.bytes)?;
    }
    // Subdirectories first, then the incident directory itself.
    for f in files {
        if let Some(parent) = tmp.path.join(&f.rel).parent() {
            sync_dir(parent)?;
        }
    }
    sync_dir(&tmp.path)?;
    fs::rename(&tmp.path, &final_dir)?;
    tmp.committed = true;
    sync_dir(output_dir)?;
    Ok(final_dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("assay-incident-test-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn writes_all_files_and_nothing_temporary() {
        let out = scratch("ok");
        let files = vec![
            IncidentFile {
                rel: "incident.json".into(),
                bytes: b"{}".to_vec(),
            },
            IncidentFile {
                rel: "processes/1.json".into(),
                bytes: b"[]".to_vec(),
            },
        ];
        let dir = write_atomic(&out, "i1", &files).unwrap();
        assert_eq!(fs::read(dir.join("incident.json")).unwrap(), b"{}");
        assert_eq!(fs::read(dir.join("processes/1.json")).unwrap(), b"[]");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&dir), 0o700);
            assert_eq!(mode(&dir.join("processes")), 0o700);
            assert_eq!(mode(&dir.join("incident.json")), 0o600);
        }
        let names: Vec<_> = fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("i1")]);
        // Never overwrite an existing incident.
        assert!(write_atomic(&out, "i1", &files).is_err());
        fs::remove_dir_all(&out).unwrap();
    }

    #[test]
    fn a_failed_write_leaves_nothing() {
        let out = scratch("bad");
        let files = vec![
            IncidentFile {
                rel: "incident.json".into(),
                bytes: b"{}".to_vec(),
            },
            IncidentFile {
                rel: "../escape.json".into(),
                bytes: b"x".to_vec(),
            },
        ];
        assert!(write_atomic(&out, "i2", &files).is_err());
        assert_eq!(
            fs::read_dir(&out).unwrap().count(),
            0,
            "no half incident, no temp dir"
        );
        assert!(!out.parent().unwrap().join("escape.json").exists());
        fs::remove_dir_all(&out).unwrap();
    }
}
