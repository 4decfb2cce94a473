//! Hostile input never panics discovery: random documents, command lines and
//! strings through the parser, extractor, launcher analysis and redaction.

use assay::discovery::{clients, extract, jsonc, launch, secrets};

/// Deterministic xorshift, so a failure reproduces.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

const PIECES: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "\\",
    "\\u",
    "d83d",
    "/",
    "*",
    "//",
    "/*",
    "*/",
    "\n",
    " ",
    "é",
    "😀",
    "\u{feff}",
    "true",
    "null",
    "-",
    "1e9",
    "0",
    ".",
    "mcpServers",
    "command",
    "args",
    "url",
    "env",
    "npx",
    "-y",
    "uvx",
    "--from",
    "cmd",
    "/c",
    "sh",
    "-c",
    "docker",
    "run",
    "ghp_",
    "sk-",
    "Bearer ",
    "://",
    "@",
    "=",
    "%",
    "${",
    "}",
    "'",
    "node_modules/",
    ".bin",
    "python",
    "-m",
    "assay",
    "monitor",
    "--",
    "éé",
];

fn random_text(r: &mut Rng, n: usize) -> String {
    (0..n).map(|_| r.pick(PIECES)).collect()
}

#[test]
fn random_inputs_never_panic() {
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    for i in 0..20_000 {
        let len = (r.next() % 40) as usize;
        let text = random_text(&mut r, len);
        if let Ok(v) = jsonc::parse(&text) {
            for c in clients::CLIENTS {
                for p in c.paths {
                    let _ = extract::extract(p.shape, &v);
                }
            }
        }
        let words: Vec<String> = (0..(r.next() % 8))
            .map(|_| random_text(&mut r, 3))
            .collect();
        let l = launch::analyze(&words);
        let _ = (l.looks_like_mcp(), l.short_name());
        let red = secrets::redact_text(&text);
        assert!(
            red.len() <= text.len() + 64 * (text.len() / 4 + 1),
            "case {i}"
        );
        let _ = secrets::redact_args(&words);
        let _ = secrets::scan_args(&words);
        let _ = secrets::classify(Some(&text), &text);
        let _ = launch::shell_split(&text);
    }
}
