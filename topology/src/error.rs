//! The one error type of the crate.
//!
//! Every message is a single line that names the problem and what the user
//! can do about it, because these messages end up verbatim on the
//! scheduler's stderr.

use std::path::PathBuf;

/// The valid forms of a domain spec, quoted by every spec error.
pub(crate) const VALID_SPECS: &str = "valid forms are 1 (a single domain), \
llc (one domain per last-level cache), numa (one domain per NUMA node) \
or a number N >= 2 (N domains of whole cores)";

/// Everything that can go wrong while discovering a machine or planning
/// its domains.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TopologyError {
    /// A domain spec string could not be parsed.
    #[error("invalid domain spec {input:?}: {reason}; {VALID_SPECS}")]
    InvalidSpec {
        /// What the user typed.
        input: String,
        /// Why it was rejected.
        reason: String,
    },

    /// `DomainSpec::Count(0)` was built programmatically.
    #[error("cannot build 0 domains; ask for at least 1 domain ({VALID_SPECS})")]
    ZeroDomains,

    /// More domains were asked for than there are usable cores, and a core
    /// (with its SMT siblings) is never split.
    #[error(
        "cannot split {cores} cores into {domains} domains; ask for at most {cores} domains, \
         or use llc or numa"
    )]
    TooManyDomains {
        /// Number of domains requested.
        domains: u32,
        /// Number of usable cores.
        cores: usize,
    },

    /// Every CPU is offline or outside the allowed cpuset.
    #[error(
        "no usable CPU: every CPU is offline or outside the allowed cpuset; check \
         /sys/devices/system/cpu/online and this process's cpuset cgroup"
    )]
    NoUsableCpus,

    /// hwloc failed to discover the live machine.
    #[error(
        "hwloc could not discover this machine's topology ({0}); check that /sys and /proc \
         are mounted and readable, or load a saved topology from XML instead"
    )]
    Discovery(String),

    /// An hwloc XML file could not be loaded.
    #[error(
        "cannot load hwloc XML topology {}: {reason}; regenerate it with \
         `lstopo-no-graphics --of xml {}`",
        path.display(),
        path.display()
    )]
    Xml {
        /// The file that was read.
        path: PathBuf,
        /// hwloc's explanation.
        reason: String,
    },

    /// The topology (or a hand-built machine) contradicts itself.
    #[error(
        "inconsistent CPU topology: {0}; regenerate the topology with \
         `lstopo-no-graphics --of xml FILE` and report it if it persists"
    )]
    Inconsistent(String),
}

/// Flattens a foreign error message onto one line.
pub(crate) fn one_line(message: impl std::fmt::Display) -> String {
    message.to_string().split_whitespace().collect::<Vec<_>>().join(" ")
}
