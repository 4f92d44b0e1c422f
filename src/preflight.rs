//! Checks made before anything is loaded, each failing with one line that
//! says what is wrong and what to do: not root, no sched_ext in the kernel,
//! another sched_ext scheduler already attached.

use std::fs;
use std::path::Path;

use anyhow::{bail, Result};

pub const SCHED_EXT_SYSFS: &str = "/sys/kernel/sched_ext";

/// Checks the live system.
pub fn check() -> Result<()> {
    check_at(nix::unistd::geteuid().is_root(), Path::new(SCHED_EXT_SYSFS))
}

/// The checks, against a sysfs directory given by the caller (for tests).
pub fn check_at(is_root: bool, sysfs: &Path) -> Result<()> {
    if !is_root {
        bail!("scx-userland must run as root: it loads a BPF scheduler into the kernel (try sudo)");
    }
    if !sysfs.is_dir() {
        bail!(
            "this kernel has no sched_ext ({} is missing): it needs Linux >= 6.12 built with CONFIG_SCHED_CLASS_EXT=y",
            sysfs.display()
        );
    }
    let state = read_trimmed(&sysfs.join("state"));
    if state.as_deref() != Some("disabled") {
        let ops = read_trimmed(&sysfs.join("root/ops")).unwrap_or_else(|| "unknown".to_string());
        let state = state.unwrap_or_else(|| "unknown".to_string());
        bail!("another sched_ext scheduler is already attached: {ops} (state {state}); stop it first");
    }
    Ok(())
}

fn read_trimmed(p: &Path) -> Option<String> {
    fs::read_to_string(p)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sysfs(state: &str, ops: Option<&str>) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        fs::write(dir.path().join("state"), format!("{state}\n")).expect("write state");
        if let Some(ops) = ops {
            fs::create_dir(dir.path().join("root")).expect("mkdir root");
            fs::write(dir.path().join("root/ops"), format!("{ops}\n")).expect("write ops");
        }
        dir
    }

    #[test]
    fn refuses_non_root() {
        let dir = sysfs("disabled", None);
        let err = check_at(false, dir.path()).expect_err("not root");
        assert!(err.to_string().contains("root"));
    }

    #[test]
    fn refuses_a_kernel_without_sched_ext() {
        let dir = tempfile::tempdir().expect("temp dir");
        let err = check_at(true, &dir.path().join("sched_ext")).expect_err("no sysfs");
        assert!(err.to_string().contains("CONFIG_SCHED_CLASS_EXT"));
    }

    #[test]
    fn names_the_scheduler_already_attached() {
        let dir = sysfs("enabled", Some("scx_simple"));
        let err = check_at(true, dir.path()).expect_err("busy");
        assert!(err.to_string().contains("scx_simple"), "{err}");
    }

    #[test]
    fn accepts_an_idle_sched_ext() {
        let dir = sysfs("disabled", None);
        check_at(true, dir.path()).expect("free to attach");
    }
}
