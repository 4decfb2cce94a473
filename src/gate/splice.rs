//! The server-to-client direction without copying the bytes through assay
//! (Linux, when both ends are pipes): `tee(2)` duplicates what the server
//! wrote into a scratch pipe, assay reads that copy to find the line ends,
//! and `splice(2)` moves the original pages to the client. One copy fewer
//! than read-then-write, so large results flow near a direct pipe's rate.
//! The rules are [`relay::server_to_client`]'s: whole lines under the
//! client's lock, an awaited `tools/list` answer held whole and judged.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::sync::{Mutex, MutexGuard};

use super::judge::Judge;
use super::relay::{self, MAX_SERVER_LOOK};

/// Bytes looked at per step: the pipes' capacity once assay raised it.
const STEP: usize = 1 << 20;

fn is_pipe(fd: RawFd) -> bool {
    // SAFETY: fstat fills a plain struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer.
    unsafe { libc::fstat(fd, &mut st) == 0 && (st.st_mode & libc::S_IFMT) == libc::S_IFIFO }
}

fn check(rc: isize) -> io::Result<usize> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc as usize)
    }
}

fn retry<F: FnMut() -> isize>(mut f: F) -> io::Result<usize> {
    loop {
        match check(f()) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// A pipe of assay's own, to look at what `tee` duplicated; closed on drop.
struct Scratch {
    r: File,
    w: File,
}

impl Scratch {
    fn new() -> io::Result<Scratch> {
        let mut fds = [0; 2];
        // SAFETY: valid array of two descriptors.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both descriptors are fresh and ours.
        let (r, w) = unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) };
        // SAFETY: plain fcntl; a smaller pipe only means smaller steps.
        unsafe { libc::fcntl(w.as_raw_fd(), libc::F_SETPIPE_SZ, STEP as libc::c_int) };
        Ok(Scratch { r, w })
    }
}

/// Moves exactly `n` bytes from pipe `from` to pipe `to`.
fn splice_all(from: RawFd, to: RawFd, mut n: usize) -> io::Result<()> {
    while n > 0 {
        // SAFETY: plain syscall on pipes; null offsets are required for pipes.
        let moved = retry(|| unsafe {
            libc::splice(
                from,
                std::ptr::null_mut(),
                to,
                std::ptr::null_mut(),
                n,
                libc::SPLICE_F_MOVE,
            )
        })?;
        if moved == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        n -= moved;
    }
    Ok(())
}

/// [`relay::server_to_client`] with `tee`/`splice` when `server` and the
/// client's writer are pipes; the plain relay otherwise.
pub fn server_to_client(judge: &Judge, server: File, client: &Mutex<File>) -> io::Result<()> {
    let client_fd = client.lock().unwrap_or_else(|e| e.into_inner()).as_raw_fd();
    let scratch = match (is_pipe(server.as_raw_fd()) && is_pipe(client_fd)).then(Scratch::new) {
        Some(Ok(s)) => s,
        _ => return relay::server_to_client(judge, server, client),
    };
    let from = server.as_raw_fd();
    let mut look = vec![0u8; STEP];
    let mut mid_line: Option<MutexGuard<'_, File>> = None;
    loop {
        // SAFETY: plain syscall on two pipes.
        let n = retry(|| unsafe { libc::tee(from, scratch.w.as_raw_fd(), STEP, 0) })?;
        if n == 0 {
            return Ok(());
        }
        (&scratch.r).read_exact(&mut look[..n])?;
        if mid_line.is_none() && judge.server_needs_look() {
            hold_line(judge, &server, client, &scratch, &mut look)?;
            continue;
        }
        let seen = &look[..n];
        // As the plain relay: to the last line end when starting fresh, to
        // the first when finishing a line begun earlier.
        let end = if mid_line.is_some() {
            memchr::memchr(b'\n', seen)
        } else {
            memchr::memrchr(b'\n', seen)
        };
        let g = mid_line.get_or_insert_with(|| client.lock().unwrap_or_else(|e| e.into_inner()));
        match end {
            Some(i) => {
                splice_all(from, g.as_raw_fd(), i + 1)?;
                mid_line = None;
            }
            None => splice_all(from, g.as_raw_fd(), n)?,
        }
    }
}

/// An awaited `tools/list` answer may be next: the line is consumed whole
/// (exactly to its newline, so what follows stays in the pipe), judged, and
/// written, as [`relay::server_to_client`] does.
fn hold_line(
    judge: &Judge,
    server: &File,
    client: &Mutex<File>,
    scratch: &Scratch,
    look: &mut [u8],
) -> io::Result<()> {
    let from = server.as_raw_fd();
    let mut held: Vec<u8> = Vec::new();
    loop {
        // tee leaves the bytes in the server pipe: the caller's look is
        // simply taken again.
        // SAFETY: plain syscall on two pipes.
        let n = retry(|| unsafe { libc::tee(from, scratch.w.as_raw_fd(), STEP, 0) })?;
        if n == 0 {
            if !held.is_empty() {
                relay::to_client(client, &held)?;
            }
            return Ok(());
        }
        (&scratch.r).read_exact(&mut look[..n])?;
        let take = memchr::memchr(b'\n', &look[..n]).map_or(n, |i| i + 1);
        let start = held.len();
        held.resize(start + take, 0);
        (&*server).read_exact(&mut held[start..])?;
        if held.last() == Some(&b'\n') {
            match judge.server_line(&held[..held.len() - 1]) {
                Some(mut new) => {
                    new.push(b'\n');
                    relay::to_client(client, &new)?;
                }
                None => relay::to_client(client, &held)?,
            }
            return Ok(());
        }
        if held.len() > MAX_SERVER_LOOK {
            // Too long to filter: pass it on and finish it unlooked.
            let mut g = client.lock().unwrap_or_else(|e| e.into_inner());
            g.write_all(&held)?;
            loop {
                // SAFETY: as above.
                let n = retry(|| unsafe { libc::tee(from, scratch.w.as_raw_fd(), STEP, 0) })?;
                if n == 0 {
                    return Ok(());
                }
                (&scratch.r).read_exact(&mut look[..n])?;
                match memchr::memchr(b'\n', &look[..n]) {
                    Some(i) => return splice_all(from, g.as_raw_fd(), i + 1),
                    None => splice_all(from, g.as_raw_fd(), n)?,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::judge::tests::{Rng, judge};

    fn pipe() -> (File, File) {
        let mut fds = [0; 2];
        // SAFETY: valid array.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: fresh descriptors.
        unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) }
    }

    /// What the client reads when `input` is written by the server in
    /// random pieces, through the spliced relay.
    fn through(input: &[u8], list_pending: bool) -> Vec<u8> {
        let j = judge();
        if list_pending {
            j.client_line(br#"{"jsonrpc":"2.0","id":4,"method":"tools/list"}"#);
        }
        let (server_r, mut server_w) = pipe();
        let (client_r, client_w) = pipe();
        let data = input.to_vec();
        let writer = std::thread::spawn(move || {
            let mut rng = Rng::new(99);
            let mut at = 0;
            while at < data.len() {
                let n = (1 + rng.below(300_000)).min(data.len() - at);
                server_w.write_all(&data[at..at + n]).unwrap();
                at += n;
            }
        });
        let reader = std::thread::spawn(move || {
            let mut out = Vec::new();
            (&client_r).read_to_end(&mut out).unwrap();
            out
        });
        let client = Mutex::new(client_w);
        server_to_client(&j, server_r, &client).unwrap();
        drop(client);
        writer.join().unwrap();
        reader.join().unwrap()
    }

    #[test]
    fn spliced_lines_arrive_whole_and_in_order_and_lists_are_filtered() {
        let mut input = Vec::new();
        input
            .extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":\"srv\",\"method\":\"roots/list\"}\n");
        let big = format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{{\"text\":\"{}\"}}}}\n",
            "y".repeat(5 << 20)
        );
        input.extend_from_slice(big.as_bytes());
        input.extend_from_slice(
            b"{\"jsonrpc\":\"2.0\",\"id\":4,\"result\":{\"tools\":[{\"name\":\"exec\"},{\"name\":\"echo\"}]}}\n",
        );
        input.extend_from_slice(b"garbage \xff\n");
        input.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/x\"}");
        // Nothing awaited: byte for byte.
        assert!(through(&input, false) == input);
        // An awaited list: that line alone changes.
        let out = through(&input, true);
        let lines: Vec<&[u8]> = out.split(|b| *b == b'\n').collect();
        assert_eq!(lines.len(), 5);
        assert!(lines[1] == &big.as_bytes()[..big.len() - 1]);
        let v: serde_json::Value = serde_json::from_slice(lines[2]).unwrap();
        assert_eq!(v["result"]["tools"], serde_json::json!([{"name": "echo"}]));
        assert_eq!(lines[3], b"garbage \xff");
        assert_eq!(
            lines[4],
            b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/x\"}"
        );
    }

    #[test]
    fn not_pipes_fall_back_to_the_plain_relay() {
        let j = judge();
        let dir = std::env::temp_dir().join(format!("assay-splice-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let src = dir.join("in");
        std::fs::write(&src, b"{\"a\":1}\nlast").unwrap();
        let dst = dir.join("out");
        let client = Mutex::new(File::create(&dst).unwrap());
        server_to_client(&j, File::open(&src).unwrap(), &client).unwrap();
        assert_eq!(std::fs::read(&dst).unwrap(), b"{\"a\":1}\nlast");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
