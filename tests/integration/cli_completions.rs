//! `haier-sync completions SHELL` and `haier-sync man`: generated from the command line, they
//! name the subcommands.

use std::process::Command;

fn run(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_haier-sync"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

const SUBCOMMANDS: &[&str] = &[
    "run", "status", "pause", "resume", "audit", "outbox", "run-job", "migrate",
];

#[test]
fn completions_name_the_subcommands_in_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let script = run(&["completions", shell]);
        for name in SUBCOMMANDS {
            assert!(script.contains(name), "{shell} completions lack {name}");
        }
    }
    assert!(run(&["completions", "bash"]).contains("complete -F"));
}

#[test]
fn the_man_page_names_the_subcommands() {
    // roff writes a hyphen as `\-`.
    let page = run(&["man"]).replace("\\-", "-");
    assert!(
        page.starts_with(".ie") || page.contains(".TH haier-sync 1"),
        "{page}"
    );
    for name in SUBCOMMANDS {
        assert!(page.contains(name), "the man page lacks {name}");
    }
}
