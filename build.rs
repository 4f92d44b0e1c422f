//! Compiles bpf/main.bpf.c and generates its Rust skeleton (libbpf-cargo).
//!
//! sched_ext programs need clang >= 16 (BTF type tags, kfunc declarations,
//! atomics on map values); Debian bookworm's default clang is 14. We take
//! `$CLANG` if set, else the first of clang-19 .. clang-16, else `clang` if it
//! is new enough, and otherwise stop with a message saying what to install.

use std::env;
use std::path::PathBuf;
use std::process::Command;

const SRC: &str = "bpf/main.bpf.c";
const MIN_CLANG: u32 = 16;

fn clang_major(clang: &str) -> Option<u32> {
    let out = Command::new(clang).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let rest = text.split("clang version ").nth(1)?;
    rest.split('.').next()?.trim().parse().ok()
}

fn find_clang() -> Result<String, String> {
    if let Ok(clang) = env::var("CLANG") {
        return match clang_major(&clang) {
            Some(v) if v >= MIN_CLANG => Ok(clang),
            Some(v) => Err(format!(
                "$CLANG={clang} is clang {v}; sched_ext needs clang >= {MIN_CLANG}"
            )),
            None => Err(format!("$CLANG={clang} does not run or is not clang")),
        };
    }
    let mut seen = Vec::new();
    let candidates = (MIN_CLANG..=30)
        .rev()
        .map(|v| format!("clang-{v}"))
        .chain(["clang".to_string()]);
    for clang in candidates {
        match clang_major(&clang) {
            Some(v) if v >= MIN_CLANG => return Ok(clang),
            Some(v) => seen.push(format!("{clang} (version {v})")),
            None => {}
        }
    }
    let seen = if seen.is_empty() {
        "no clang at all".to_string()
    } else {
        seen.join(", ")
    };
    Err(format!(
        "scx-userland's BPF program needs clang >= {MIN_CLANG}, found {seen}. \
         On Debian bookworm: apt-get install clang-19 (or set CLANG=/path/to/clang)"
    ))
}

fn main() {
    let clang = match find_clang() {
        Ok(c) => c,
        Err(msg) => {
            // cargo shows build-script stderr only on failure; this is one.
            eprintln!("error: {msg}");
            std::process::exit(1);
        }
    };
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("main.skel.rs");
    libbpf_cargo::SkeletonBuilder::new()
        .source(SRC)
        .clang(&clang)
        .clang_args([
            "-I",
            "bpf",
            "-Wall",
            "-Wno-compare-distinct-pointer-types",
            "-O2",
            "-mcpu=v3",
        ])
        .build_and_generate(&out)
        .unwrap_or_else(|e| {
            eprintln!("error: building {SRC} with {clang} failed: {e:#}");
            std::process::exit(1);
        });
    for f in ["bpf/main.bpf.c", "bpf/intf.h", "bpf/scx_kfuncs.bpf.h", "bpf/vmlinux.h"] {
        println!("cargo:rerun-if-changed={f}");
    }
    println!("cargo:rerun-if-env-changed=CLANG");
}
