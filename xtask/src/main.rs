//! `cargo run -p xtask -- dist [OUT_DIR]` (or `cargo xtask dist`): writes
//! scx-userland's man page and bash/zsh/fish completions, generated from its
//! clap definition (see `xtask/src/lib.rs` for the layout). OUT_DIR
//! defaults to `dist/` in the cargo target directory (`$CARGO_TARGET_DIR`
//! when set, else `target/` at the workspace root), beside the binary
//! `cargo build` made.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask", about = "Build chores for scx-userland")]
struct Args {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Write the man page (man/scx-userland.1) and shell completions
    /// (completions/) under OUT_DIR.
    Dist {
        /// Where to write; default: dist/ in the cargo target directory.
        out_dir: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<()> {
    match args.task {
        Task::Dist { out_dir } => {
            let out_dir = out_dir.unwrap_or_else(default_out_dir);
            for path in xtask::dist(&out_dir)? {
                println!("{}", path.display());
            }
            Ok(())
        }
    }
}

fn default_out_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        // xtask/ sits at the workspace root.
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("dist")
}
