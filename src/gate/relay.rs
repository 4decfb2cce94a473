//! The gate's I/O: one thread per direction of the MCP stdio transport
//! (newline-delimited JSON-RPC). Lines are read whole however the bytes
//! arrive, judged by [`Judge`], and written with one `write_all` under the
//! client's lock, so a refusal never lands inside a server message.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::sync::{Mutex, MutexGuard};

use super::ToolCallEvent;
use super::judge::{ClientAction, Judge};

/// Longest client line judged. A longer one cannot be judged without
/// holding it all, so it is refused (never forwarded) and skipped.
pub const MAX_CLIENT_LINE: usize = 128 << 20;
/// Longest server line held to filter a `tools/list` answer; a longer one is
/// passed on unfiltered (its tools' calls are still judged).
pub const MAX_SERVER_LOOK: usize = 64 << 20;

/// Server side: as large as the pipes assay raises to (gate::run), one read
/// per pipeful. Client side: requests are small.
const SERVER_READ_BUF: usize = 1 << 20;
const CLIENT_READ_BUF: usize = 64 << 10;

fn lock<W>(m: &Mutex<W>) -> MutexGuard<'_, W> {
    // A panicking writer thread leaves whole lines behind it: keep going.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Writes a whole line to the client.
pub fn to_client<W: Write>(client: &Mutex<W>, line: &[u8]) -> io::Result<()> {
    let mut g = lock(client);
    g.write_all(line)?;
    g.flush()
}

/// Client to server until the client's EOF (Ok) or a write to the server
/// fails (the server closed its stdin or exited). Every `tools/call` is
/// judged before it is forwarded; `on_call` gets one event per decision.
pub fn client_to_server<R: Read, S: Write, W: Write>(
    judge: &Judge,
    input: R,
    mut server: S,
    client: &Mutex<W>,
    on_call: &mut dyn FnMut(ToolCallEvent),
) -> io::Result<()> {
    let mut r = BufReader::with_capacity(CLIENT_READ_BUF, input);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = (&mut r)
            .take(MAX_CLIENT_LINE as u64 + 1)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(());
        }
        let ended = line.last() == Some(&b'\n');
        if !ended && line.len() > MAX_CLIENT_LINE {
            let skipped = line.len() + skip_line(&mut r)?;
            let (reply, call) = super::judge::too_long(skipped);
            // The client may be gone; the server side notices that.
            let _ = to_client(client, &reply);
            on_call(ToolCallEvent::now(call));
            continue;
        }
        let body = if ended {
            &line[..line.len() - 1]
        } else {
            &line
        };
        let j = judge.client_line(body);
        match j.action {
            ClientAction::Forward => {
                server.write_all(&line)?;
                server.flush()?;
            }
            ClientAction::Rewrite { forward, reply } => {
                if let Some(mut f) = forward {
                    if ended {
                        f.push(b'\n');
                    }
                    server.write_all(&f)?;
                    server.flush()?;
                }
                if let Some(mut reply) = reply {
                    reply.push(b'\n');
                    let _ = to_client(client, &reply);
                }
            }
        }
        for c in j.calls {
            on_call(ToolCallEvent::now(c));
        }
    }
}

/// Reads and drops the rest of an over-long line; returns how many bytes.
fn skip_line<R: BufRead>(r: &mut R) -> io::Result<usize> {
    let mut skipped = 0;
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok(skipped);
        }
        if let Some(i) = memchr::memchr(b'\n', buf) {
            r.consume(i + 1);
            return Ok(skipped + i + 1);
        }
        let n = buf.len();
        r.consume(n);
        skipped += n;
    }
}

/// Server to client until the server's EOF (Ok) or a write to the client
/// fails. Lines pass unparsed, several per write, unless a `tools/list`
/// answer is awaited; a partial line at EOF is passed as it is.
pub fn server_to_client<R: Read, W: Write>(
    judge: &Judge,
    input: R,
    client: &Mutex<W>,
) -> io::Result<()> {
    let mut r = BufReader::with_capacity(SERVER_READ_BUF, input);
    // Held while a line has been written in part: nothing else may be
    // written to the client until it ends.
    let mut mid_line: Option<MutexGuard<'_, W>> = None;
    // A line held whole to be filtered.
    let mut held: Vec<u8> = Vec::new();
    let mut holding = false;
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            if holding {
                to_client(client, &held)?;
            }
            return Ok(());
        }
        let len = buf.len();
        if holding || (mid_line.is_none() && judge.server_needs_look()) {
            holding = true;
            match memchr::memchr(b'\n', buf) {
                Some(i) => {
                    held.extend_from_slice(&buf[..=i]);
                    r.consume(i + 1);
                    match judge.server_line(&held[..held.len() - 1]) {
                        Some(mut new) => {
                            new.push(b'\n');
                            to_client(client, &new)?;
                        }
                        None => to_client(client, &held)?,
                    }
                    held.clear();
                    holding = false;
                }
                None => {
                    held.extend_from_slice(buf);
                    r.consume(len);
                    if held.len() > MAX_SERVER_LOOK {
                        let mut g = lock(client);
                        g.write_all(&held)?;
                        held.clear();
                        holding = false;
                        mid_line = Some(g);
                    }
                }
            }
            continue;
        }
        // Whole lines: up to the last newline when starting fresh (the
        // check above covered every line read so far); only to the first
        // when finishing a line begun earlier, so the check runs again.
        let end = if mid_line.is_some() {
            memchr::memchr(b'\n', buf)
        } else {
            memchr::memrchr(b'\n', buf)
        };
        let g = mid_line.get_or_insert_with(|| lock(client));
        match end {
            Some(i) => {
                g.write_all(&buf[..=i])?;
                g.flush()?;
                r.consume(i + 1);
                mid_line = None;
            }
            None => {
                g.write_all(buf)?;
                r.consume(len);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::judge::tests::{Rng, judge};

    /// Hands out its bytes a few at a time, as a pipe may.
    struct Trickle {
        data: Vec<u8>,
        at: usize,
        rng: Rng,
        max: usize,
    }

    impl Trickle {
        fn new(data: Vec<u8>, max: usize, seed: u64) -> Trickle {
            Trickle {
                data,
                at: 0,
                rng: Rng::new(seed),
                max,
            }
        }
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = (1 + self.rng.below(self.max))
                .min(buf.len())
                .min(self.data.len() - self.at);
            buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    fn client_run(input: Vec<u8>, max_read: usize) -> (Vec<u8>, Vec<u8>, usize) {
        let j = judge();
        let client = Mutex::new(Vec::new());
        let mut server = Vec::new();
        let mut events = 0;
        client_to_server(
            &j,
            Trickle::new(input, max_read, 7),
            &mut server,
            &client,
            &mut |_| events += 1,
        )
        .unwrap();
        (server, client.into_inner().unwrap(), events)
    }

    #[test]
    fn allowed_lines_reach_the_server_byte_for_byte_however_they_are_split() {
        let allowed = [
            "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{}}\n",
            "{ \"jsonrpc\" : \"2.0\" , \"id\" : \"é\\u00e9\", \"method\":\"tools/call\",\"params\":{\"name\":\"echo\",\"arguments\":{\"n\":1.0e0}}}\r\n",
            "not json \u{1F600}\n",
            "\n",
            "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\",\"params\":{\"requestId\":1}}\n",
        ];
        let refused = "{\"jsonrpc\":\"2.0\",\"id\":99,\"method\":\"tools/call\",\"params\":{\"name\":\"exec\"}}\n";
        let mut input = Vec::new();
        let mut expect = Vec::new();
        for i in 0..200 {
            let l = allowed[i % allowed.len()];
            input.extend_from_slice(l.as_bytes());
            expect.extend_from_slice(l.as_bytes());
            if i % 7 == 0 {
                input.extend_from_slice(refused.as_bytes());
            }
        }
        // The last line has no newline: forwarded as it is at EOF.
        let tail = b"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}";
        input.extend_from_slice(tail);
        expect.extend_from_slice(tail);
        for max_read in [1, 3, 64, 100_000] {
            let (server, client, events) = client_run(input.clone(), max_read);
            assert_eq!(server, expect, "max read {max_read}");
            let replies: Vec<&[u8]> = client
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .collect();
            assert_eq!(replies.len(), 29);
            for r in replies {
                let v: serde_json::Value = serde_json::from_slice(r).unwrap();
                assert_eq!(v["id"], 99);
                assert_eq!(v["result"]["isError"], true);
            }
            // 40 allowed echo calls and 29 refusals.
            assert_eq!(events, 40 + 29);
        }
    }

    #[test]
    fn a_refused_call_never_reaches_the_server() {
        let line = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"read_file\",\"arguments\":{\"path\":\"/etc/shadow\"}}}\n";
        let (server, client, events) = client_run(line.as_bytes().to_vec(), 5);
        assert!(server.is_empty());
        assert!(client.ends_with(b"\n"));
        assert_eq!(events, 1);
    }

    #[test]
    fn tens_of_megabytes_pass_both_ways() {
        let big = format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{{\"name\":\"echo\",\"arguments\":{{\"t\":\"{}\"}}}}}}\n",
            "ab".repeat(15 << 20)
        );
        let (server, client, _) = client_run(big.clone().into_bytes(), 1 << 20);
        assert_eq!(server.len(), big.len());
        assert!(server == big.as_bytes() && client.is_empty());

        let j = judge();
        let result = format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{{\"content\":[{{\"type\":\"text\",\"text\":\"{}\"}}]}}}}\n",
            "z".repeat(40 << 20)
        );
        let mut input = result.clone().into_bytes();
        input.extend_from_slice(
            b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}\n",
        );
        let out = Mutex::new(Vec::new());
        server_to_client(&j, Trickle::new(input.clone(), 1 << 20, 3), &out).unwrap();
        assert!(out.into_inner().unwrap() == input);
    }

    #[test]
    fn the_server_side_filters_an_awaited_list_and_passes_the_rest() {
        let j = judge();
        j.client_line(b"{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/list\"}");
        let mut input = Vec::new();
        input
            .extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":\"srv\",\"method\":\"roots/list\"}\n");
        input.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":4,\"result\":{\"tools\":[{\"name\":\"exec\"},{\"name\":\"echo\"}]}}\n");
        input.extend_from_slice(b"garbage \xff\n");
        input.extend_from_slice(
            b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}",
        );
        for max in [1, 7, 4096] {
            let j = judge();
            j.client_line(b"{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/list\"}");
            let out = Mutex::new(Vec::new());
            server_to_client(&j, Trickle::new(input.clone(), max, 11), &out).unwrap();
            let out = out.into_inner().unwrap();
            let lines: Vec<&[u8]> = out.split(|b| *b == b'\n').collect();
            assert_eq!(lines.len(), 4, "{}", String::from_utf8_lossy(&out));
            assert_eq!(
                lines[0],
                b"{\"jsonrpc\":\"2.0\",\"id\":\"srv\",\"method\":\"roots/list\"}"
            );
            let v: serde_json::Value = serde_json::from_slice(lines[1]).unwrap();
            assert_eq!(v["result"]["tools"], serde_json::json!([{"name": "echo"}]));
            assert_eq!(lines[2], b"garbage \xff");
            assert_eq!(
                lines[3],
                b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}"
            );
        }
        drop(j);
    }

    #[test]
    fn an_over_long_client_line_is_refused_and_skipped() {
        let j = judge();
        let client = Mutex::new(Vec::new());
        let mut server = Vec::new();
        let mut input = vec![b'x'; MAX_CLIENT_LINE + 10];
        input.push(b'\n');
        input.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}\n");
        let mut events = Vec::new();
        client_to_server(&j, &input[..], &mut server, &client, &mut |e| {
            events.push(e)
        })
        .unwrap();
        assert_eq!(
            server,
            b"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}\n"
        );
        let v: serde_json::Value = serde_json::from_slice(&client.into_inner().unwrap()).unwrap();
        assert_eq!(v["error"]["code"], -32600);
        assert_eq!(events.len(), 1);
        assert!(!events[0].call.allowed);
    }

    #[test]
    fn a_server_that_went_away_ends_the_client_side_with_an_error() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let j = judge();
        let client = Mutex::new(Vec::new());
        let e = client_to_server(
            &j,
            &b"{\"id\":1,\"method\":\"ping\"}\n"[..],
            Closed,
            &client,
            &mut |_| {},
        )
        .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
    }
}
