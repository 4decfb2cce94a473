//! The events file: appended to, reopened when SIGHUP says logrotate moved
//! it away, and rotated by assay itself at `--events-max-bytes`
//! (`FILE` becomes `FILE.1`, replacing an older one) between two whole
//! lines, so a shipper tailing it (Vector, Fluent Bit) never reads half an
//! event and no file passes the limit (unless one line alone does).

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub struct EventsFile {
    path: PathBuf,
    file: File,
    /// Bytes in the current file.
    size: u64,
    max_bytes: Option<u64>,
    reopen: Arc<AtomicBool>,
}

fn open(path: &Path) -> io::Result<(File, u64)> {
    let f = File::options()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("opening the events file {}: {e}", path.display()),
            )
        })?;
    let size = f.metadata()?.len();
    Ok((f, size))
}

/// `FILE.1`.
pub fn rotated(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".1");
    PathBuf::from(p)
}

impl EventsFile {
    pub fn open(path: &Path, max_bytes: Option<u64>, reopen: Arc<AtomicBool>) -> io::Result<Self> {
        let (file, size) = open(path)?;
        Ok(EventsFile {
            path: path.to_path_buf(),
            file,
            size,
            max_bytes,
            reopen,
        })
    }

    fn reopen(&mut self) -> io::Result<()> {
        let (file, size) = open(&self.path)?;
        self.file = file;
        self.size = size;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file.flush()?;
        std::fs::rename(&self.path, rotated(&self.path)).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("rotating the events file {}: {e}", self.path.display()),
            )
        })?;
        self.reopen()
    }
}

impl EventsFile {
    fn put(&mut self, b: &[u8]) -> io::Result<()> {
        self.file.write_all(b)?;
        self.size += b.len() as u64;
        Ok(())
    }
}

impl Write for EventsFile {
    /// Takes whole lines: the file is reopened before them, and rotated
    /// between two of them, so that it never passes the limit (unless one
    /// line alone is longer).
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.reopen.swap(false, Ordering::Relaxed) {
            self.reopen()?;
        }
        let Some(max) = self.max_bytes else {
            self.put(buf)?;
            return Ok(buf.len());
        };
        let mut rest = buf;
        while !rest.is_empty() {
            let room = max.saturating_sub(self.size) as usize;
            if rest.len() <= room {
                self.put(rest)?;
                break;
            }
            // The whole lines that fit.
            match rest[..room].iter().rposition(|b| *b == b'\n') {
                Some(i) => {
                    self.put(&rest[..=i])?;
                    rest = &rest[i + 1..];
                    self.rotate()?;
                }
                None if self.size == 0 => {
                    // One line longer than the limit: whole, alone.
                    let end = rest
                        .iter()
                        .position(|b| *b == b'\n')
                        .map_or(rest.len(), |i| i + 1);
                    self.put(&rest[..end])?;
                    rest = &rest[end..];
                    if !rest.is_empty() {
                        self.rotate()?;
                    }
                }
                None => self.rotate()?,
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.reopen.swap(false, Ordering::Relaxed) {
            self.reopen()?;
        }
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reopens_after_a_move_and_rotates_between_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let flag = Arc::new(AtomicBool::new(false));
        let mut f = EventsFile::open(&path, Some(20), flag.clone()).unwrap();
        f.write_all(b"0123456789\n").unwrap();
        // logrotate moves it away; writes still reach the moved file...
        let moved = dir.path().join("moved");
        std::fs::rename(&path, &moved).unwrap();
        f.write_all(b"abc\n").unwrap();
        // ...until SIGHUP.
        flag.store(true, Ordering::Relaxed);
        f.flush().unwrap();
        assert_eq!(std::fs::read(&moved).unwrap(), b"0123456789\nabc\n");
        f.write_all(b"0123456789\n").unwrap();
        // 11 + 11 > 20: rotated first, the new lines whole in the new file.
        f.write_all(b"0123456789\n").unwrap();
        assert_eq!(std::fs::read(rotated(&path)).unwrap(), b"0123456789\n");
        assert_eq!(std::fs::read(&path).unwrap(), b"0123456789\n");
        // Several lines at once are split between files at a line's end.
        f.write_all(b"abcd\nefghijklmn\nopq\n").unwrap();
        assert_eq!(
            std::fs::read(rotated(&path)).unwrap(),
            b"0123456789\nabcd\n"
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"efghijklmn\nopq\n");
        // A line longer than the limit goes alone into a file.
        f.write_all(b"0123456789012345678901234\nz\n").unwrap();
        assert_eq!(
            std::fs::read(rotated(&path)).unwrap(),
            b"0123456789012345678901234\n"
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"z\n");
    }
}
