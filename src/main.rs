//! scx-userland's entry point: parse flags, plan domains, check the system,
//! run the scheduler (again, if the kernel asks for a restart), report.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use scx_userland::cli::Cli;
use scx_userland::scheduler::{self, RunConfig};
use scx_userland::{monitor, preflight, stats};
use topology::{Machine, Plan};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("scx-userland: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn discover(cli: &Cli) -> Result<(Plan, Machine)> {
    let machine = match &cli.topology_xml {
        Some(path) => Machine::from_xml_file(path)?,
        None => Machine::live()?,
    };
    Ok((topology::plan(&machine, cli.domains)?, machine))
}

/// CPUs that are online but outside the cpuset cgroup we run in: the
/// kernel still runs sched_ext tasks there, but no worker may run there,
/// so BPF has them take work from domain 0 (bpf.rs, cpu_to_dom). Said once
/// at start, since the balancer does not count them either.
fn warn_outside_cpuset(machine: &Machine) {
    let outside: Vec<u32> = machine
        .cpus()
        .iter()
        .filter(|c| !c.usable)
        .map(|c| c.os_index)
        .collect();
    if !outside.is_empty() {
        eprintln!(
            "scx-userland: warning: CPUs {} are online but outside this process's cpuset: they run \
             sched_ext tasks from domain 0's queue, no worker runs there, and the balancer does not \
             count them; run scx-userland in the root cpuset to schedule them as the rest",
            topology::format_cpu_ranges(&outside)
        );
    }
}

fn run(cli: &Cli) -> Result<ExitCode> {
    if cli.help_stats {
        print!("{}", stats::describe()?);
        return Ok(ExitCode::SUCCESS);
    }
    let shutdown = Arc::new(AtomicBool::new(false));
    let flag = shutdown.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::Release)).context("installing the SIGINT/SIGTERM handler")?;
    if let Some(secs) = cli.monitor {
        monitor::run(
            &cli.stats_socket,
            Duration::from_secs_f64(secs),
            cli.stats_format,
            &shutdown,
        )?;
        return Ok(ExitCode::SUCCESS);
    }

    let (mut plan, machine) = discover(cli)?;
    if cli.show_domains {
        print!("{}", plan.render());
        return Ok(ExitCode::SUCCESS);
    }
    preflight::check()?;
    warn_outside_cpuset(&machine);

    let cfg = RunConfig {
        batch: cli.batch as usize,
        partial: cli.partial,
        fast_path: !cli.no_fast_path,
        verbose: cli.verbose,
        ringbuf_bytes: cli.ringbuf_kib * 1024,
        stats_interval: (cli.stats_interval > 0).then(|| Duration::from_secs(cli.stats_interval)),
        stats_format: cli.stats_format,
        stats_socket: cli.stats_socket.clone(),
        balance: (!cli.no_balance).then(|| (Duration::from_millis(cli.balance_interval_ms), cli.balance_config())),
    };

    loop {
        let outcome = scheduler::run_once(&cfg, &plan, &shutdown)?;
        match &outcome.exit {
            Some(ei) => {
                println!(
                    "scx-userland: exit kind {} code {:#x}: {}",
                    ei.kind, ei.exit_code, ei.reason
                );
                if !ei.msg.is_empty() {
                    println!("scx-userland: {}", ei.msg);
                }
                if ei.wants_restart() && !shutdown.load(Ordering::Acquire) {
                    println!("scx-userland: the kernel asked for a restart (CPU hotplug); re-reading the topology");
                    let (new_plan, machine) = discover(cli)?;
                    warn_outside_cpuset(&machine);
                    plan = new_plan;
                    continue;
                }
                if ei.is_error() {
                    if !ei.dump.is_empty() {
                        println!("scx-userland: the kernel's dump:\n{}", ei.dump.trim_end());
                    }
                    return Ok(ExitCode::FAILURE);
                }
            }
            None => println!("scx-userland: detached"),
        }
        return Ok(if outcome.by_user || outcome.exit.is_some() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
}
