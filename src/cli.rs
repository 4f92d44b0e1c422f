//! Command-line options. Every flag's help says what it does and why one
//! would change it; `--help` is the user's manual.

use std::path::PathBuf;

use clap::Parser;
use topology::DomainSpec;

use crate::balancer::BalanceConfig;
use crate::stats::Format;

#[derive(Debug, Parser)]
#[command(
    name = "scx-userland",
    version,
    about = "A sched_ext CPU scheduler whose decisions are made in user space",
    long_about = "A sched_ext CPU scheduler whose decisions are made in user space.\n\n\
        A small BPF program hands every runnable task whose CPU affinity is not restricted to \
        a user-space worker thread, which keeps it in a vruntime-ordered queue and sends it back \
        in batches. With --domains other than 1 the machine is split into domains (per LLC, per \
        NUMA node, or N groups of cores), each with its own queue, worker and kernel dispatch \
        queue, and a balancer moves queued tasks from busy domains to idle ones.\n\n\
        Needs root and a kernel with sched_ext (Linux >= 6.12, CONFIG_SCHED_CLASS_EXT=y). \
        Stop it with Ctrl-C or SIGTERM: it detaches cleanly and prints why the kernel unloaded it.",
    after_help = "Examples:\n  sudo scx-userland                      the reference single-queue scheduler\n  \
        sudo scx-userland --domains llc        one queue and worker per last-level cache\n  \
        scx-userland --show-domains --domains numa   print the domain plan and exit (no root needed)\n  \
        scx-userland --monitor 1               print a running instance's stats every second\n  \
        scx-userland --help-stats              what each statistics field means"
)]
pub struct Cli {
    /// How to split the CPUs into scheduling domains: `1` (one queue for the
    /// whole machine, the reference behaviour), `llc` (one per last-level
    /// cache), `numa` (one per NUMA node) or a number N (N groups of whole
    /// cores, cut node by node, then LLC by LLC: a domain spans NUMA nodes
    /// or splits an LLC only where N leaves no other way, and
    /// --show-domains says so).
    #[arg(long, default_value = "1", value_name = "SPEC", value_parser = parse_domains)]
    pub domains: DomainSpec,

    /// Print the domain plan (domains, their CPUs, NUMA node and LLC, and a
    /// note for each split LLC or node-spanning domain) and exit. Needs
    /// neither root nor sched_ext.
    #[arg(long)]
    pub show_domains: bool,

    /// Read the machine's topology from this hwloc XML file (as written by
    /// `lstopo --of xml`) instead of discovering it.
    #[arg(long, value_name = "FILE")]
    pub topology_xml: Option<PathBuf>,

    /// The most tasks a worker hands to the kernel before it yields the CPU.
    /// Larger batches cost fewer context switches; smaller ones keep the
    /// vruntime order decided in user space closer to what runs.
    #[arg(short, long, default_value_t = 8, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub batch: u32,

    /// Schedule only tasks whose policy is SCHED_EXT (set with
    /// `chrt --ext`/sched_setscheduler); all others stay with the kernel's
    /// default scheduler. Without it every task is switched.
    #[arg(short, long)]
    pub partial: bool,

    /// Send every task through user space, at every wakeup and every slice
    /// end, as the C example does. By default BPF acts where the worker's
    /// decision is already known, charging and placing vruntime as user
    /// space does: a task whose slice ended on a CPU that found nothing else
    /// to run keeps that CPU, for another slice if nothing else wants it
    /// (`alone=` in the stats line) or for one short slice if its CPU would
    /// otherwise idle while the worker is busy elsewhere (`last=`); and a
    /// task woken (or new) while its domain's worker holds nothing goes
    /// straight to an idle CPU of the domain, or into the domain's DSQ in
    /// vruntime order (`direct=`). For comparing and debugging.
    #[arg(long)]
    pub no_fast_path: bool,

    /// Seconds between statistics lines on stdout (at most a day); 0 turns
    /// them off.
    #[arg(long, default_value_t = 1, value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub stats_interval: u64,

    /// How the statistics are printed: `text` (a line of counters, and a
    /// table with a row per domain when there are several) or `json` (one
    /// object per interval, on one line; --help-stats lists its fields).
    /// Also the format of --monitor.
    #[arg(long, value_enum, default_value_t = Format::Text, value_name = "FORMAT")]
    pub stats_format: Format,

    /// The Unix socket on which a running scheduler serves its statistics
    /// (the scx_stats protocol, as every scx scheduler does), and which
    /// --monitor reads. Its permissions decide who may monitor.
    #[arg(long, default_value = crate::stats::DEFAULT_SOCKET, value_name = "PATH")]
    pub stats_socket: PathBuf,

    /// Do not schedule: print the statistics of the scx-userland already
    /// running, every SECS seconds (fractions allowed), read from its
    /// --stats-socket, until Ctrl-C. Needs no root, only access to the
    /// socket; waits for the scheduler if it is not running (yet).
    #[arg(long, value_name = "SECS", value_parser = parse_monitor_secs)]
    pub monitor: Option<f64>,

    /// Print every statistics field with its meaning, and exit.
    #[arg(long)]
    pub help_stats: bool,

    /// How often the load balancer looks at the domains' queues. It moves
    /// only queued tasks, which is cheap, so it can run often.
    #[arg(long, default_value_t = crate::scheduler::DEFAULT_BALANCE_INTERVAL_MS, value_name = "MS",
          value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub balance_interval_ms: u64,

    /// Turn the load balancer off (domains then only steal from each other
    /// in the kernel, when a CPU runs out of work).
    #[arg(long)]
    pub no_balance: bool,

    /// How far (in percent) a domain's load may exceed the average before the
    /// balancer moves tasks away from it, between domains of one NUMA node.
    #[arg(long, default_value_t = BalanceConfig::default().imbalance_pct, value_name = "PCT",
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub imbalance_pct: u32,

    /// Like --imbalance-pct, for moves across NUMA nodes, which cost more
    /// (remote memory, cold caches), so they need a larger imbalance.
    #[arg(long, default_value_t = BalanceConfig::default().numa_imbalance_pct, value_name = "PCT",
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub numa_imbalance_pct: u32,

    /// Size of each domain's ring buffers (kernel to user, and back), in KiB;
    /// a power of two, at least 4. When the kernel-to-user one is full, tasks
    /// are scheduled by the kernel directly and counted as `failed`.
    #[arg(long, default_value_t = 256, value_name = "KIB", value_parser = parse_ringbuf_kib)]
    pub ringbuf_kib: u32,

    /// Print libbpf's messages, including the whole verifier log on failure.
    #[arg(short, long)]
    pub verbose: bool,
}

fn parse_domains(s: &str) -> Result<DomainSpec, String> {
    s.parse::<DomainSpec>().map_err(|e| e.to_string())
}

fn parse_monitor_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(secs) if (0.01..=86_400.0).contains(&secs) => Ok(secs),
        _ => Err(format!(
            "'{s}': the monitor interval is a number of seconds from 0.01 to 86400"
        )),
    }
}

fn parse_ringbuf_kib(s: &str) -> Result<u32, String> {
    let kib: u32 = s.parse().map_err(|_| format!("'{s}' is not a number of KiB"))?;
    if kib < 4 || !kib.is_power_of_two() || kib > 1 << 20 {
        return Err(format!(
            "{kib} KiB: the ring buffer size must be a power of two from 4 to 1048576 KiB"
        ));
    }
    Ok(kib)
}

impl Cli {
    pub fn balance_config(&self) -> BalanceConfig {
        BalanceConfig {
            imbalance_pct: self.imbalance_pct,
            numa_imbalance_pct: self.numa_imbalance_pct,
            ..BalanceConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_are_the_reference_behaviour() {
        let cli = Cli::try_parse_from(["scx-userland"]).expect("no flags parse");
        assert_eq!(cli.domains, DomainSpec::Single);
        assert_eq!(cli.batch, 8);
        assert!(!cli.partial);
        assert!(!cli.no_fast_path, "the fast path is on by default");
        assert_eq!(cli.stats_interval, 1);
    }

    #[test]
    fn bad_input_is_refused_with_a_reason() {
        for args in [
            vec!["scx-userland", "--domains", "bogus"],
            vec!["scx-userland", "--domains", "0"],
            vec!["scx-userland", "--batch", "0"],
            vec!["scx-userland", "--batch", "4097"],
            vec!["scx-userland", "--ringbuf-kib", "6"],
            vec!["scx-userland", "--no-such-flag"],
            vec!["scx-userland", "--monitor", "0"],
            vec!["scx-userland", "--monitor", "nan"],
            vec!["scx-userland", "--stats-format", "xml"],
        ] {
            let err = Cli::try_parse_from(&args).expect_err("must be refused");
            assert!(!err.to_string().trim().is_empty(), "{args:?}");
        }
        let err = Cli::try_parse_from(["scx-userland", "--domains", "bogus"]).expect_err("refused");
        assert!(
            err.to_string().contains("llc"),
            "the message lists the valid forms: {err}"
        );
    }
}
