//! `jukebox <command> --help` explains every flag (issue 25: `--epochs`, `--batch-size` and four
//! of `deploy`'s had no text), and `jukebox up --help` says where the servers' log goes.

use std::process::Command;

const JUKEBOX: &str = env!("CARGO_BIN_EXE_jukebox");

fn help(args: &[&str]) -> String {
    let out = Command::new(JUKEBOX).args(args).arg("--help").output().expect("cannot run jukebox");
    assert!(out.status.success(), "jukebox {args:?} --help failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The subcommands `jukebox --help` lists.
fn subcommands() -> Vec<String> {
    let top = help(&[]);
    let commands = top.split("Commands:").nth(1).expect("no Commands: section").split("Options:").next().unwrap();
    commands
        .lines()
        .filter_map(|line| line.strip_prefix("  ")?.split_whitespace().next().map(str::to_string))
        .filter(|name| name != "help")
        .collect()
}

/// Flags of a long `--help` text with no explanation: in clap's long layout a flag line
/// (`  -s, --seed <SEED>` or `      --seed <SEED>`) is followed by its text indented by ten spaces.
fn flags_without_help(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    lines
        .iter()
        .enumerate()
        .filter(|(_, line)| {
            let trimmed = line.trim_start();
            trimmed.starts_with('-') && (line.starts_with("  -") || line.starts_with("      --"))
        })
        .filter(|(i, _)| {
            !lines.get(i + 1).is_some_and(|next| next.starts_with("          ") && !next.trim().is_empty())
        })
        .map(|(_, line)| line.trim().to_string())
        .collect()
}

#[test]
fn every_flag_of_every_subcommand_has_help_text() {
    let commands = subcommands();
    assert!(commands.len() >= 8, "too few subcommands found: {commands:?}");
    let mut missing = Vec::new();
    let mut flags = 0;
    for command in &commands {
        let text = help(&[command]);
        flags += text.lines().filter(|l| l.starts_with("  -") || l.starts_with("      --")).count();
        for flag in flags_without_help(&text) {
            missing.push(format!("jukebox {command} {flag}"));
        }
    }
    assert!(flags > 60, "only {flags} flags found: the help layout changed?");
    assert!(missing.is_empty(), "flags without help text:\n{}", missing.join("\n"));
    // The check itself finds a flag with no text (clap's own --version line has text, so fake one).
    assert_eq!(flags_without_help("Options:\n      --bare\n\n      --told\n          Explained.\n"), ["--bare"]);
}

#[test]
fn up_help_says_where_logs_go_and_how_to_filter_them() {
    let text = help(&["up"]);
    for needle in ["logs/jukebox-up.log", "RUST_LOG", "--log-format", "/metrics"] {
        assert!(text.contains(needle), "`jukebox up --help` does not mention {needle}:\n{text}");
    }
}
