//! Packaging artefacts generated from scx-userland's clap definition
//! (`scx_userland::cli::Cli`): the man page (`clap_mangen`) and shell
//! completions for bash, zsh and fish (`clap_complete`).
//!
//! Both are produced from the same `clap::Command` the binary parses, so a
//! flag added to `src/cli.rs` appears in them without anything here
//! changing; the tests in `xtask/tests/` check exactly that, flag by flag.
//!
//! Layout written by [`dist`] (the paths distributions use, relative to
//! `OUT_DIR`):
//!
//! ```text
//! OUT_DIR/man/scx-userland.1
//! OUT_DIR/completions/scx-userland.bash   -> /usr/share/bash-completion/completions/scx-userland
//! OUT_DIR/completions/_scx-userland       -> /usr/share/zsh/vendor-completions/
//! OUT_DIR/completions/scx-userland.fish   -> /usr/share/fish/vendor_completions.d/
//! ```

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Command, CommandFactory};
use clap_complete::Shell;

/// The binary's name as users type it; the man page and completions are
/// keyed by it, not by the crate name.
pub const BIN: &str = "scx-userland";

/// The shells completions are generated for.
pub const SHELLS: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

/// The scheduler's command line, exactly as the binary builds it.
pub fn command() -> Command {
    scx_userland::cli::Cli::command().name(BIN)
}

/// The man page (roff source, section 1) for `cmd`.
pub fn man_page(cmd: Command) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut out)
        .context("rendering the man page")?;
    Ok(out)
}

/// The completion script of `shell` for `cmd`.
pub fn completion(shell: Shell, mut cmd: Command) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, BIN, &mut out);
    out
}

/// The file name a completion script of `shell` is installed under; zsh
/// finds functions by a leading underscore, bash by the bare command name
/// (the `.bash` suffix is dropped when installing).
pub fn completion_file_name(shell: Shell) -> String {
    match shell {
        Shell::Zsh => format!("_{BIN}"),
        other => format!("{BIN}.{other}"),
    }
}

/// The long flags (`--name`) a user can see in `--help`: hidden ones are
/// left out, as the man page and completions leave them out. `--help` and
/// `--version` are included once the command is built, as the man page
/// lists them.
pub fn visible_long_flags(cmd: &Command) -> Vec<String> {
    let mut cmd = cmd.clone();
    cmd.build();
    cmd.get_arguments()
        .filter(|a| !a.is_hide_set())
        .filter_map(|a| a.get_long())
        .map(|l| format!("--{l}"))
        .collect()
}

/// Writes the man page and the completions under `out_dir` (created if
/// missing) and returns the files written.
pub fn dist(out_dir: &Path) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let man_dir = out_dir.join("man");
    fs::create_dir_all(&man_dir).with_context(|| format!("creating {}", man_dir.display()))?;
    let page = man_dir.join(format!("{BIN}.1"));
    write(&page, &man_page(command())?)?;
    written.push(page);

    let comp_dir = out_dir.join("completions");
    fs::create_dir_all(&comp_dir).with_context(|| format!("creating {}", comp_dir.display()))?;
    for shell in SHELLS {
        let path = comp_dir.join(completion_file_name(shell));
        write(&path, &completion(shell, command()))?;
        written.push(path);
    }
    Ok(written)
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_files_are_named_as_each_shell_looks_them_up() {
        assert_eq!(completion_file_name(Shell::Bash), "scx-userland.bash");
        assert_eq!(completion_file_name(Shell::Zsh), "_scx-userland");
        assert_eq!(completion_file_name(Shell::Fish), "scx-userland.fish");
    }

    #[test]
    fn hidden_flags_are_not_expected_in_the_docs() {
        let cmd = Command::new("t")
            .arg(clap::Arg::new("shown").long("shown"))
            .arg(clap::Arg::new("secret").long("secret").hide(true))
            .arg(clap::Arg::new("pos"));
        let flags = visible_long_flags(&cmd);
        assert!(flags.contains(&"--shown".to_string()), "{flags:?}");
        assert!(flags.contains(&"--help".to_string()), "{flags:?}");
        assert!(!flags.contains(&"--secret".to_string()), "{flags:?}");
        assert!(!flags.iter().any(|f| f.contains("pos")), "{flags:?}");
    }
}
