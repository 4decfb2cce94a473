//! Any bytes given to the policy loader must produce a policy or
//! diagnostics, never a panic, a hang or unbounded memory.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match assay::policy::load_str(text, Path::new("fuzz.yaml")) {
        Ok(policy) => {
            // A policy that loaded must also be usable for decisions.
            let gate = assay::policy::Gate::new(&policy).expect("loaded schemas compile");
            let _ = gate.decide("read_file", &serde_json::json!({"path": "/data/x"}));
        }
        Err(e) => {
            assert!(!e.diagnostics.is_empty());
            let _ = e.to_string();
        }
    }
});
