//! `assay completions SHELL`, the man pages and `--version`: generated from
//! the clap definitions, so they name every subcommand and work in the shell.

mod common;

use std::process::Command;

use common::{Scratch, assert_exit, run_assay};

const SUBCOMMANDS: [&str; 6] = [
    "discover",
    "kill",
    "monitor",
    "policy",
    "doctor",
    "completions",
];

fn stdout(args: &[&str]) -> String {
    let out = run_assay(args);
    assert_exit(&out, 0);
    String::from_utf8(out.stdout).unwrap()
}

/// What bash completes after `line` (the words so far) with the script loaded.
fn bash_complete(script: &std::path::Path, words: &[&str]) -> Vec<String> {
    let line = words.join(" ");
    let program = format!(
        "source {}; COMP_WORDS=({line}); COMP_CWORD={}; COMP_LINE='{line}'; \
         COMP_POINT=${{#COMP_LINE}}; _assay assay '{}' '{}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        words.len() - 1,
        words.last().unwrap(),
        words[words.len() - 2],
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(&program)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_completion_registers_and_completes_subcommands_and_options() {
    let s = Scratch::new("completions-bash");
    let script = s.file("assay.bash", &stdout(&["completions", "bash"]));
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("source {}; complete -p assay", script.display()))
        .output()
        .unwrap();
    assert!(out.status.success());
    let registered = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(registered.starts_with("complete "), "{registered}");
    assert!(registered.contains(" -F _assay "), "{registered}");
    assert!(registered.ends_with(" assay"), "{registered}");
    let top = bash_complete(&script, &["assay", ""]);
    for sub in SUBCOMMANDS {
        assert!(top.iter().any(|w| w == sub), "{sub} not in {top:?}");
    }
    assert_eq!(bash_complete(&script, &["assay", "doc"]), ["doctor"]);
    let opts = bash_complete(&script, &["assay", "doctor", "--"]);
    assert!(opts.iter().any(|w| w == "--policy"), "{opts:?}");
    let shells = bash_complete(&script, &["assay", "completions", ""]);
    for sh in ["bash", "zsh", "fish"] {
        assert!(shells.iter().any(|w| w == sh), "{shells:?}");
    }
}

#[test]
fn zsh_and_fish_scripts_name_every_subcommand() {
    let zsh = stdout(&["completions", "zsh"]);
    assert!(zsh.starts_with("#compdef assay\n"), "{zsh}");
    let fish = stdout(&["completions", "fish"]);
    for sub in SUBCOMMANDS {
        assert!(zsh.contains(&format!("'{sub}:")), "zsh: {sub}");
        assert!(
            fish.lines().any(
                |l| l.starts_with("complete -c assay ") && l.contains(&format!("-a \"{sub}\""))
            ),
            "fish: {sub}"
        );
    }
    let out = run_assay(&["completions", "tcsh"]);
    assert_exit(&out, 2);
}

#[test]
fn man_pages_cover_every_subcommand_and_render() {
    let s = Scratch::new("manpages");
    let dir = s.path("man");
    let out = run_assay(&["manpages", dir.to_str().unwrap()]);
    assert_exit(&out, 0);
    let mut pages: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    pages.sort();
    assert_eq!(
        pages,
        [
            "assay-completions.1",
            "assay-discover.1",
            "assay-doctor.1",
            "assay-kill.1",
            "assay-monitor.1",
            "assay-policy-check.1",
            "assay-policy-validate.1",
            "assay-policy.1",
            "assay.1",
        ]
    );
    let doctor = std::fs::read_to_string(dir.join("assay-doctor.1")).unwrap();
    assert!(doctor.starts_with(".ie \\n(.g .ds Aq \\(aq") || doctor.contains(".TH assay-doctor 1"));
    assert!(doctor.contains("\\-\\-policy"), "{doctor}");
    let monitor = std::fs::read_to_string(dir.join("assay-monitor.1")).unwrap();
    assert!(monitor.contains("\\-\\-cgroup"), "{monitor}");
}

#[test]
fn the_long_version_names_revision_features_and_libbpf() {
    let long = stdout(&["--version"]);
    let lines: Vec<&str> = long.lines().collect();
    assert_eq!(lines[0], format!("assay {}", env!("CARGO_PKG_VERSION")));
    assert!(lines[1].starts_with("revision: ") && lines[1].len() > "revision: ".len());
    assert!(lines[2].starts_with("features: "), "{long}");
    assert!(lines[3].starts_with("libbpf: "), "{long}");
    assert_eq!(
        lines[2].contains("monitor"),
        cfg!(feature = "monitor"),
        "{long}"
    );
    let short = stdout(&["-V"]);
    assert_eq!(short.trim(), format!("assay {}", env!("CARGO_PKG_VERSION")));
}
