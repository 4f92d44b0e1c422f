//! Helpers shared by xtask's integration tests.

/// Whether `program` is installed (looked up on PATH, not spawned, so
/// "not installed" is told apart from "failed"). When it is not, prints
/// why the calling test checks nothing, or panics if `CI` is set: CI
/// (`.ci/run`) installs `package` and must not pass by skipping.
pub fn tool_installed(program: &str, package: &str) -> bool {
    let found = std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()));
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{program} is not installed but CI is set: apt-get install {package}"
        );
        println!("skipped: {program} not installed (apt-get install {package})");
    }
    found
}

/// Runs `cmd` and returns its output; a failure to start or a non-zero
/// exit fails the test with the program's stderr.
pub fn run_ok(cmd: &mut std::process::Command) -> std::process::Output {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let out = cmd.output().unwrap_or_else(|e| panic!("running {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
