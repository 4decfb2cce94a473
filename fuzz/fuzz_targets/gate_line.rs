//! Any bytes from an MCP client or server, split anywhere, must go through
//! the tool-call gate without a panic, and no `tools/call` a strict parser
//! reads may be forwarded unless the policy allows it.
#![no_main]

use std::path::Path;
use std::sync::Mutex;

use assay::gate::Judge;
use assay::gate::judge::ClientAction;
use assay::gate::relay;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const POLICY: &str = "version: \"2.0\"\ntools:\n  allow: [echo, read_file]\n  deny: [exec]\n\
schemas:\n  read_file:\n    type: object\n    properties:\n      path: {type: string, pattern: \"^/data/\"}\n";

fn judge() -> Judge {
    let p = assay::policy::load_str(POLICY, Path::new("fuzz.yaml")).expect("valid");
    Judge::new(assay::policy::Gate::new(&p).expect("compiles"), true)
}

fuzz_target!(|data: &[u8]| {
    let j = judge();
    let p = assay::policy::load_str(POLICY, Path::new("fuzz.yaml")).expect("valid");
    for line in data.split(|b| *b == b'\n') {
        let d = j.client_line(line);
        let _ = j.server_line(line);
        if d.action != ClientAction::Forward {
            continue;
        }
        let Ok(v) = serde_json::from_slice::<Value>(line) else {
            continue;
        };
        let members = match v {
            Value::Array(a) => a,
            other => vec![other],
        };
        for m in members.iter().filter(|m| m["method"] == "tools/call") {
            let name = m["params"]["name"].as_str().unwrap_or("");
            let args = match &m["params"]["arguments"] {
                Value::Null => serde_json::json!({}),
                a => a.clone(),
            };
            assert!(
                assay::policy::decide(&p, name, &args).allowed,
                "forwarded a refused call"
            );
        }
    }
    // The relay on the same bytes: whatever it forwards is a subsequence of
    // whole lines, and it never fails on input alone.
    let client = Mutex::new(Vec::new());
    let mut server = Vec::new();
    relay::client_to_server(&j, data, &mut server, &client, &mut |_| {}).expect("in-memory I/O");
    let out = Mutex::new(Vec::new());
    relay::server_to_client(&j, data, &out).expect("in-memory I/O");
});
