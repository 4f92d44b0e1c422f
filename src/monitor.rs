//! `--monitor`: a second process that prints the statistics of the
//! scx-userland already running, read from its stats socket.
//!
//! ```text
//!   connect ─▶ ask once (the server starts this reader's interval) ─┐
//!      ▲                                                              ▼
//!      └── socket gone: say so once, retry ◀── error ── every SECS: ask, print
//! ```
//!
//! Each answer covers the time since this monitor's previous request (see
//! stats.rs), so several monitors and the scheduler's own printing do not
//! disturb each other. Nothing here needs root or sched_ext: only the right
//! to connect to the socket. A scheduler that is not running yet, or that
//! restarts, is waited for; a socket we may not open is an error.

use std::io::ErrorKind;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use anyhow::{bail, Result};
use scx_stats::prelude::StatsClient;

use crate::stats::{Format, Stats};

/// How long one request may take before the scheduler counts as gone.
const REQUEST_TIMEOUT_MS: u64 = 5000;

pub fn run(socket: &Path, every: Duration, format: Format, stop: &AtomicBool) -> Result<()> {
    let mut waiting = false;
    while !stop.load(Ordering::Acquire) {
        let mut client = match StatsClient::new().set_path(socket).connect(Some(REQUEST_TIMEOUT_MS)) {
            Ok(c) => c,
            Err(e) => {
                if e.downcast_ref::<std::io::Error>().map(|e| e.kind()) == Some(ErrorKind::PermissionDenied) {
                    bail!(
                        "may not connect to {} ({e}): run as a user with access to it",
                        socket.display()
                    );
                }
                if !waiting {
                    eprintln!(
                        "scx-userland: monitor: no scheduler serves {} ({e}); waiting for one",
                        socket.display()
                    );
                    waiting = true;
                }
                thread::sleep(every.min(Duration::from_secs(1)));
                continue;
            }
        };
        if waiting {
            eprintln!("scx-userland: monitor: connected to {}", socket.display());
            waiting = false;
        }
        // The first answer only starts our interval.
        let mut next = client.request::<Stats>("stats", vec![]);
        while next.is_ok() && !stop.load(Ordering::Acquire) {
            thread::sleep(every);
            next = client.request::<Stats>("stats", vec![]);
            if let Ok(stats) = &next {
                println!("{}", format.render(stats)?);
            }
        }
        if let Err(e) = next {
            eprintln!("scx-userland: monitor: lost the scheduler ({e:#}); waiting for it");
            waiting = true;
        }
    }
    Ok(())
}
