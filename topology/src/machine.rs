//! hwloc -> [`Machine`]: a flat, hwloc-free description of every CPU.
//!
//! Everything hwloc-specific is confined to this file so that planning can
//! be tested on hand-written machines and so that the quirks of hwloc's
//! object model (NUMA nodes are *memory children*, not ancestors of PUs;
//! caches have no OS index; offline CPUs have no PU object at all) are
//! resolved once, here.

use std::collections::HashMap;
use std::path::Path;

use hwlocality::bitmap::BitmapRef;
use hwlocality::cpu::cpuset::CpuSet;
use hwlocality::object::types::ObjectType;
use hwlocality::object::TopologyObject;
use hwlocality::topology::builder::BuildFlags;
use hwlocality::Topology;

use crate::error::{one_line, TopologyError};

/// One logical CPU (hwloc PU) that is present in the topology.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cpu {
    /// OS index (the number Linux uses, as in `/sys/devices/system/cpu/cpuN`).
    pub os_index: u32,
    /// Machine-unique core id (hwloc logical index of the core). SMT
    /// siblings share it. A PU without a core object gets a core of its own.
    pub core: u32,
    /// Id of the last-level cache group this CPU belongs to, see
    /// [`Machine::llc_source`] for what the id refers to.
    pub llc: Option<u32>,
    /// OS index of the NUMA node closest to this CPU (Linux node number).
    pub numa_node: Option<u32>,
    /// hwloc logical index of the package (socket).
    pub package: Option<u32>,
    /// Online and allowed by the cpuset cgroup.
    pub usable: bool,
}

/// Which hwloc object the [`Cpu::llc`] ids refer to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LlcSource {
    /// Cache objects of this level (3 for L3); ids are hwloc logical indices.
    Cache {
        /// Cache level, 1 to 3.
        level: u8,
    },
    /// No shared cache: packages stand in for LLCs; ids are package logical
    /// indices.
    Package,
    /// The machine was built by hand ([`Machine::from_cpus`]) or has neither
    /// caches nor packages.
    Unknown,
}

/// A neutral description of a machine's CPUs: the input of [`crate::plan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    /// Sorted by `os_index`, no duplicates.
    cpus: Vec<Cpu>,
    /// CPUs the OS knows about but that are offline (no PU object).
    offline: Vec<u32>,
    llc_source: LlcSource,
}

impl Machine {
    /// Builds a machine from a hand-written CPU list (tests, simulations).
    ///
    /// # Errors
    /// [`TopologyError::Inconsistent`] if two CPUs share an OS index.
    pub fn from_cpus(cpus: Vec<Cpu>, offline: Vec<u32>) -> Result<Self, TopologyError> {
        Self::assemble(cpus, offline, LlcSource::Unknown)
    }

    /// Discovers the machine this process runs on.
    ///
    /// A CPU is usable when it is online and in hwloc's allowed cpuset
    /// (the cpuset cgroup). This process's own CPU affinity (`taskset`)
    /// plays no part: a sched_ext scheduler schedules every CPU, whatever
    /// CPUs its own threads started on, and its workers set their own
    /// affinity to their domain's CPUs, which the cpuset allows.
    ///
    /// # Errors
    /// [`TopologyError::Discovery`] if hwloc fails.
    pub fn live() -> Result<Self, TopologyError> {
        let topology = Topology::builder()
            .with_flags(BuildFlags::INCLUDE_DISALLOWED)
            .map_err(|e| TopologyError::Discovery(one_line(e)))?
            .build()
            .map_err(|e| TopologyError::Discovery(one_line(e)))?;
        from_topology(&topology)
    }

    /// Loads a topology saved with `lstopo-no-graphics --of xml FILE`.
    ///
    /// A CPU is usable when the XML says it is online (in the root
    /// `cpuset`) and allowed (in the root `allowed_cpuset`); the current
    /// process's affinity plays no part.
    ///
    /// # Errors
    /// [`TopologyError::Xml`] if the file cannot be read or parsed.
    pub fn from_xml_file(path: &Path) -> Result<Self, TopologyError> {
        let xml_error = |reason: String| TopologyError::Xml {
            path: path.to_path_buf(),
            reason,
        };
        if !path.is_file() {
            return Err(xml_error("no such file".to_string()));
        }
        let topology = Topology::builder()
            .from_xml_file(path)
            .map_err(|e| xml_error(one_line(e)))?
            .with_flags(BuildFlags::INCLUDE_DISALLOWED)
            .map_err(|e| xml_error(one_line(e)))?
            .build()
            .map_err(|e| {
                xml_error(format!(
                    "hwloc rejected it: truncated, not an hwloc XML export, or without a CPU ({})",
                    one_line(e)
                ))
            })?;
        from_topology(&topology).map_err(|e| match e {
            TopologyError::Inconsistent(reason) => xml_error(reason),
            other => other,
        })
    }

    /// Builds a machine from an hwloc synthetic description such as
    /// `"pack:2 [numa] l3:2 core:2 pu:1"`. Every CPU is usable.
    ///
    /// # Errors
    /// [`TopologyError::Inconsistent`] if hwloc rejects the description.
    pub fn from_synthetic(description: &str) -> Result<Self, TopologyError> {
        let invalid = |e: String| TopologyError::Inconsistent(format!("synthetic topology {description:?}: {e}"));
        let topology = Topology::builder()
            .from_synthetic(description)
            .map_err(|e| invalid(one_line(e)))?
            .build()
            .map_err(|e| invalid(one_line(e)))?;
        from_topology(&topology)
    }

    /// Every CPU present in the topology, sorted by OS index, usable or not.
    pub fn cpus(&self) -> &[Cpu] {
        &self.cpus
    }

    /// The usable CPUs, sorted by OS index.
    pub fn usable_cpus(&self) -> impl Iterator<Item = &Cpu> + '_ {
        self.cpus.iter().filter(|cpu| cpu.usable)
    }

    /// OS indices of CPUs that exist but are offline, sorted.
    pub fn offline_cpus(&self) -> &[u32] {
        &self.offline
    }

    /// What [`Cpu::llc`] ids refer to.
    pub fn llc_source(&self) -> LlcSource {
        self.llc_source
    }

    /// The same machine with every CPU outside `allowed` marked unusable
    /// (e.g. a `--cpus` option or an affinity mask obtained elsewhere).
    #[must_use]
    pub fn restricted_to(&self, allowed: &[u32]) -> Self {
        let mut machine = self.clone();
        for cpu in &mut machine.cpus {
            cpu.usable = cpu.usable && allowed.contains(&cpu.os_index);
        }
        machine
    }

    fn assemble(mut cpus: Vec<Cpu>, mut offline: Vec<u32>, llc_source: LlcSource) -> Result<Self, TopologyError> {
        cpus.sort_by_key(|cpu| cpu.os_index);
        if let Some(pair) = cpus.windows(2).find(|w| w[0].os_index == w[1].os_index) {
            return Err(TopologyError::Inconsistent(format!(
                "CPU {} is listed twice",
                pair[0].os_index
            )));
        }
        offline.sort_unstable();
        offline.dedup();
        if let Some(cpu) = offline
            .iter()
            .find(|os| cpus.binary_search_by_key(*os, |cpu| cpu.os_index).is_ok())
        {
            return Err(TopologyError::Inconsistent(format!(
                "CPU {cpu} is both present and offline"
            )));
        }
        Ok(Self {
            cpus,
            offline,
            llc_source,
        })
    }
}

/// What hwloc says about one PU, before the LLC level is chosen.
struct RawPu {
    os_index: u32,
    core: u32,
    package: Option<u32>,
    numa_node: Option<u32>,
    /// Logical index of the enclosing L1d, L2 and L3 cache.
    caches: [Option<u32>; 3],
    usable: bool,
}

fn to_u32(value: usize, what: &str) -> Result<u32, TopologyError> {
    u32::try_from(value).map_err(|_| TopologyError::Inconsistent(format!("{what} {value} does not fit in 32 bits")))
}

fn logical_ancestor(pu: &TopologyObject, ty: ObjectType, what: &str) -> Result<Option<u32>, TopologyError> {
    pu.first_ancestor_with_type(ty)
        .map(|obj| to_u32(obj.logical_index(), what))
        .transpose()
}

fn is_set(set: &BitmapRef<'_, CpuSet>, os_index: usize) -> bool {
    set.is_set(os_index)
}

/// A NUMA node as seen by the CPU -> node assignment.
struct Node {
    os_index: u32,
    weight: usize,
    cpuset: CpuSet,
}

/// The most local NUMA node of a CPU: several nodes may contain it (DRAM
/// plus HBM, for instance); the one with the fewest CPUs is the closest,
/// and ties go to the lowest node number (DRAM is numbered first on Linux).
fn closest_node(nodes: &[Node], os_index: usize) -> Option<u32> {
    nodes
        .iter()
        .filter(|node| node.cpuset.is_set(os_index))
        .min_by_key(|node| (node.weight, node.os_index))
        .map(|node| node.os_index)
}

fn from_topology(topology: &Topology) -> Result<Machine, TopologyError> {
    let online = topology.cpuset();
    let allowed = topology.allowed_cpuset();
    let complete = topology.complete_cpuset();

    let mut nodes = Vec::new();
    for node in topology.objects_with_type(ObjectType::NUMANode) {
        let Some(os_index) = node.os_index() else {
            continue;
        };
        let Some(cpuset) = node.cpuset() else {
            continue;
        };
        nodes.push(Node {
            os_index: to_u32(os_index, "NUMA node")?,
            weight: cpuset.weight().unwrap_or(usize::MAX),
            cpuset: cpuset.clone_target(),
        });
    }

    let nr_cores = topology.objects_with_type(ObjectType::Core).len();
    let mut raw = Vec::new();
    for pu in topology.objects_with_type(ObjectType::PU) {
        let os = pu
            .os_index()
            .ok_or_else(|| TopologyError::Inconsistent(format!("PU L#{} has no OS index", pu.logical_index())))?;
        let core = match pu.first_ancestor_with_type(ObjectType::Core) {
            Some(core) => to_u32(core.logical_index(), "core")?,
            None => to_u32(nr_cores.saturating_add(pu.logical_index()), "core")?,
        };
        let usable = is_set(&online, os) && is_set(&allowed, os);
        raw.push(RawPu {
            os_index: to_u32(os, "CPU")?,
            core,
            package: logical_ancestor(pu, ObjectType::Package, "package")?,
            numa_node: closest_node(&nodes, os),
            caches: [
                logical_ancestor(pu, ObjectType::L1Cache, "L1 cache")?,
                logical_ancestor(pu, ObjectType::L2Cache, "L2 cache")?,
                logical_ancestor(pu, ObjectType::L3Cache, "L3 cache")?,
            ],
            usable,
        });
    }

    // An infinite complete cpuset (never seen in practice) has no
    // meaningful list of offline CPUs.
    let mut offline = Vec::new();
    if complete.weight().is_some() {
        for os in complete.iter_set() {
            let os = usize::from(os);
            if !is_set(&online, os) {
                offline.push(to_u32(os, "CPU")?);
            }
        }
    }

    let llc_source = choose_llc_source(&raw);
    let cpus = raw
        .into_iter()
        .map(|pu| Cpu {
            os_index: pu.os_index,
            core: pu.core,
            llc: match llc_source {
                LlcSource::Cache { level } => level
                    .checked_sub(1)
                    .and_then(|index| pu.caches.get(usize::from(index)))
                    .copied()
                    .flatten(),
                LlcSource::Package => pu.package,
                LlcSource::Unknown => None,
            },
            numa_node: pu.numa_node,
            package: pu.package,
            usable: pu.usable,
        })
        .collect();
    Machine::assemble(cpus, offline, llc_source)
}

/// The L3 is the LLC whenever there is one. Without L3, the highest cache
/// level that some cores actually share plays its role; a private cache
/// would make one domain per core, which is never what "llc" means, so
/// with no shared cache at all the package is used instead.
fn choose_llc_source(raw: &[RawPu]) -> LlcSource {
    if raw.iter().any(|pu| pu.caches[2].is_some()) {
        return LlcSource::Cache { level: 3 };
    }
    for (index, level) in [(1, 2), (0, 1)] {
        let mut first_core: HashMap<u32, u32> = HashMap::new();
        let shared = raw.iter().any(|pu| match pu.caches[index] {
            Some(cache) => *first_core.entry(cache).or_insert(pu.core) != pu.core,
            None => false,
        });
        if shared {
            return LlcSource::Cache { level };
        }
    }
    if raw.iter().any(|pu| pu.package.is_some()) {
        LlcSource::Package
    } else {
        LlcSource::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu(os_index: u32, core: u32) -> Cpu {
        Cpu {
            os_index,
            core,
            llc: Some(0),
            numa_node: Some(0),
            package: Some(0),
            usable: true,
        }
    }

    #[test]
    fn from_cpus_sorts_and_rejects_duplicates() {
        let machine = Machine::from_cpus(vec![cpu(1, 1), cpu(0, 0)], vec![]).unwrap();
        let order: Vec<u32> = machine.cpus().iter().map(|c| c.os_index).collect();
        assert_eq!(order, [0, 1]);
        let err = Machine::from_cpus(vec![cpu(1, 1), cpu(1, 2)], vec![]).unwrap_err();
        assert!(err.to_string().contains("CPU 1 is listed twice"), "{err}");
        let err = Machine::from_cpus(vec![cpu(1, 1)], vec![1]).unwrap_err();
        assert!(err.to_string().contains("both present and offline"), "{err}");
    }

    #[test]
    fn restricted_to_only_removes() {
        let mut offline_cpu = cpu(2, 2);
        offline_cpu.usable = false;
        let machine = Machine::from_cpus(vec![cpu(0, 0), cpu(1, 1), offline_cpu], vec![]).unwrap();
        let restricted = machine.restricted_to(&[1, 2]);
        let usable: Vec<u32> = restricted.usable_cpus().map(|c| c.os_index).collect();
        assert_eq!(usable, [1]);
    }

    #[test]
    fn synthetic_private_l2_falls_back_to_package() {
        let machine = Machine::from_synthetic("pack:2 l2:2 core:1 pu:2").unwrap();
        assert_eq!(machine.llc_source(), LlcSource::Package);
        let llcs: Vec<Option<u32>> = machine.cpus().iter().map(|c| c.llc).collect();
        assert_eq!(
            llcs,
            [Some(0), Some(0), Some(0), Some(0), Some(1), Some(1), Some(1), Some(1)]
        );
    }

    #[test]
    fn synthetic_shared_l1_is_an_llc() {
        let machine = Machine::from_synthetic("pack:1 l1:2 core:2 pu:1").unwrap();
        assert_eq!(machine.llc_source(), LlcSource::Cache { level: 1 });
    }

    #[test]
    fn synthetic_without_caches_or_cores() {
        let machine = Machine::from_synthetic("pu:4").unwrap();
        assert_eq!(machine.llc_source(), LlcSource::Unknown);
        let cores: Vec<u32> = machine.cpus().iter().map(|c| c.core).collect();
        assert_eq!(cores, [0, 1, 2, 3]);
        assert!(machine.cpus().iter().all(|c| c.usable && c.numa_node == Some(0)));
    }

    #[test]
    fn bad_synthetic_description_is_an_error() {
        let err = Machine::from_synthetic("bogus:3").unwrap_err();
        assert!(err.to_string().contains("bogus:3"), "{err}");
    }
}
