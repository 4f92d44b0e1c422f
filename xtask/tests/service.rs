//! The systemd unit (`services/scx-userland.service`) and its environment
//! file (`services/scx-userland.env`, installed as
//! /etc/default/scx-userland): the unit passes the variable the file sets,
//! the file's default flags parse with the scheduler's own clap definition
//! (so renaming a flag breaks this test, not a machine's boot), and
//! `systemd-analyze verify` accepts the unit without a single warning.
//!
//! The verify test needs systemd-analyze (Debian: systemd, installed by
//! `.ci/run`); without it it prints why it checks nothing, unless `CI` is
//! set, where that is a failure.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Parser;
use scx_userland::cli::Cli;

mod common;

const INSTALLED_BIN: &str = "/usr/local/bin/scx-userland";
const FLAGS_VAR: &str = "SCX_USERLAND_FLAGS";

fn services() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../services")
}

fn read(name: &str) -> String {
    let path = services().join(name);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The value of the unit's first `key=` line.
fn directive<'a>(unit: &'a str, key: &str) -> Option<&'a str> {
    unit.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
}

/// The value an EnvironmentFile assigns to `key`, quotes removed, as
/// systemd reads `KEY="a b"`.
fn env_value(env: &str, key: &str) -> Option<String> {
    env.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .map(|v| v.trim_matches('"').to_string())
}

#[test]
fn the_unit_runs_the_installed_binary_with_the_env_files_flags() {
    let unit = read("scx-userland.service");
    assert_eq!(
        directive(&unit, "ExecStart"),
        Some(format!("{INSTALLED_BIN} ${FLAGS_VAR}").as_str()),
        "ExecStart must be the path README's install step uses, flags unbraced so systemd splits them"
    );
    assert_eq!(directive(&unit, "EnvironmentFile"), Some("-/etc/default/scx-userland"));
    assert_eq!(directive(&unit, "Type"), Some("simple"));
    assert_eq!(directive(&unit, "Restart"), Some("on-failure"));
}

#[test]
fn the_default_flags_are_accepted_by_the_scheduler() {
    let env = read("scx-userland.env");
    let flags = env_value(&env, FLAGS_VAR).expect("the env file sets SCX_USERLAND_FLAGS");
    assert!(!flags.is_empty(), "an empty default documents nothing");
    let argv = std::iter::once("scx-userland").chain(flags.split_whitespace());
    if let Err(e) = Cli::try_parse_from(argv) {
        panic!("{FLAGS_VAR}=\"{flags}\" does not parse:\n{e}");
    }
}

#[test]
fn systemd_analyze_verifies_the_unit_without_warnings() {
    if !common::tool_installed("systemd-analyze", "systemd") {
        return;
    }
    // verify insists that ExecStart's program exists and is executable, and
    // nothing is installed here: a copy of the unit runs a stand-in. Every
    // other line is verified as written.
    let dir = tempfile::tempdir().expect("temporary directory");
    let stand_in = dir.path().join("scx-userland");
    fs::write(&stand_in, "#!/bin/sh\n").expect("writing the stand-in");
    let mut perm = fs::metadata(&stand_in).expect("stand-in metadata").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
    fs::set_permissions(&stand_in, perm).expect("making the stand-in executable");

    let unit = read("scx-userland.service").replace(INSTALLED_BIN, &stand_in.to_string_lossy());
    let copy = dir.path().join("scx-userland.service");
    fs::write(&copy, unit).expect("writing the unit's copy");

    // --man=no: Documentation=man:scx-userland(1) is not installed here.
    let out = common::run_ok(Command::new("systemd-analyze").args(["verify", "--man=no"]).arg(&copy));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // A misspelt directive or value is only a warning ("ignoring") and
    // exits 0: any message at all fails the test.
    assert!(stderr.trim().is_empty(), "systemd-analyze verify warned:\n{stderr}");
}
