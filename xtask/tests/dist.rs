//! The generated man page and completions document every flag of the
//! scheduler's clap definition. The expected flags are read from the
//! `clap::Command` itself, so a flag added to `src/cli.rs` later is checked
//! too, and checked in what a user sees: the man page as groff renders it,
//! and the words bash's completion function actually offers.
//!
//! Rendering needs groff (Debian: groff-base, installed by `.ci/run`).
//! Without it the man page test prints why it checks nothing, unless `CI`
//! is set, where a missing renderer is a failure: CI must not pass by
//! skipping.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use clap_complete::Shell;
use xtask::{command, completion, completion_file_name, dist, visible_long_flags};

mod common;

/// groff's text rendering of a man page, without overstrike or colour
/// codes. Minus and hyphen glyphs some groff versions emit in UTF-8 are
/// mapped back to `-` so flags compare as typed.
fn render(page: &Path) -> String {
    let out = common::run_ok(
        Command::new("groff")
            .args(["-ww", "-man", "-Tutf8", "-P-c", "-P-b", "-P-o", "-P-u"])
            .arg(page)
            .env("LC_ALL", "C.UTF-8"),
    );
    // -ww turns on every warning: a malformed page (bad escape, unknown
    // macro) shows up here even though groff still renders something.
    assert!(
        out.stderr.is_empty(),
        "groff warnings: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("groff -Tutf8 writes UTF-8")
        .replace(['\u{2212}', '\u{2010}', '\u{2011}'], "-")
}

/// The flags that open an entry of the OPTIONS section ("-b, --batch <N>
/// [default: 8]"): the lines of that section at its least indentation.
/// Flags merely mentioned in a description do not count, and entry tags
/// are never hyphenated at a line end, so the comparison is exact.
fn documented_options(rendered: &str) -> BTreeSet<String> {
    let mut lines = rendered
        .lines()
        .skip_while(|l| l.trim_end() != "OPTIONS")
        .skip(1)
        // The next section heading starts at column 0.
        .take_while(|l| l.is_empty() || l.starts_with(' '))
        .filter(|l| !l.trim().is_empty())
        .peekable();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let Some(tag_indent) = lines.peek().map(|l| indent(l)) else {
        return BTreeSet::new();
    };
    lines
        .filter(|l| indent(l) == tag_indent)
        .flat_map(|l| {
            l.split([' ', ','])
                .filter(|w| w.starts_with('-'))
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn the_man_page_renders_with_every_long_flag_as_an_option_entry() {
    if !common::tool_installed("groff", "groff-base") {
        return;
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    dist(dir.path()).expect("dist writes the man page");
    let rendered = render(&dir.path().join("man/scx-userland.1"));
    assert!(rendered.contains("scx-userland"), "no program name in:\n{rendered}");

    let documented = documented_options(&rendered);
    let flags = visible_long_flags(&command());
    assert!(flags.len() > 5, "the Cli should have many flags: {flags:?}");
    let missing: Vec<_> = flags.iter().filter(|f| !documented.contains(*f)).collect();
    assert!(missing.is_empty(), "not in OPTIONS: {missing:?}\nrendered:\n{rendered}");
}

#[test]
fn the_option_parser_of_the_test_finds_entries_not_mentions() {
    let rendered = "NAME\n       x\n\nOPTIONS\n       --alpha <A> [default: 1]\n              \
        Unlike --beta, this\n              --gamma-is-mentioned\n\n       -b, --delta\n              \
        text\n\nVERSION\n       --late\n";
    let found = documented_options(rendered);
    let want: BTreeSet<String> = ["--alpha", "-b", "--delta"].map(String::from).into();
    assert_eq!(found, want);
}

/// The words bash's completion for scx-userland offers after `--`, got by
/// sourcing the generated script and calling the function it registered
/// (`complete -p` names it), as bash-completion would at a Tab.
fn bash_offers(script: &Path) -> BTreeSet<String> {
    let probe = r#"
        source "$1" || exit 1
        f=$(complete -p scx-userland | sed -n 's/.* -F \([^ ]*\) .*/\1/p')
        [ -n "$f" ] || { echo "no completion function registered" >&2; exit 1; }
        COMP_WORDS=(scx-userland --); COMP_CWORD=1
        COMP_LINE="scx-userland --"; COMP_POINT=${#COMP_LINE}
        "$f" scx-userland -- scx-userland
        printf '%s\n' "${COMPREPLY[@]}"
    "#;
    let out = common::run_ok(Command::new("bash").args(["-c", probe, "probe"]).arg(script));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_completes_every_long_flag() {
    let dir = tempfile::tempdir().expect("temporary directory");
    dist(dir.path()).expect("dist writes the completions");
    let offered = bash_offers(&dir.path().join("completions/scx-userland.bash"));
    let flags = visible_long_flags(&command());
    let missing: Vec<_> = flags.iter().filter(|f| !offered.contains(*f)).collect();
    assert!(
        missing.is_empty(),
        "bash does not offer {missing:?}; it offers {offered:?}"
    );
}

#[test]
fn zsh_and_fish_scripts_name_every_long_flag() {
    // Neither shell is installed on a Debian CI machine by default, so
    // these are checked as text, in each shell's own syntax.
    let flags = visible_long_flags(&command());
    for shell in [Shell::Zsh, Shell::Fish] {
        let script = String::from_utf8(completion(shell, command())).expect("UTF-8 script");
        for flag in &flags {
            let name = flag.trim_start_matches('-');
            let found = match shell {
                // complete -c scx-userland -s b -l batch -d '...'
                Shell::Fish => script.contains(&format!(" -l {name} ")),
                // '--batch=[help]:N:_default' or '--partial[help]'
                _ => script.contains(&format!("'{flag}=[")) || script.contains(&format!("'{flag}[")),
            };
            assert!(found, "{} ({shell}) lacks {flag}", completion_file_name(shell));
        }
    }
}
