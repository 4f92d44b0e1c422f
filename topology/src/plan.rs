//! The domain plan: which CPUs form each domain, and how far apart
//! domains are.

use std::collections::BTreeMap;
use std::fmt;

use crate::cpus::format_cpu_ranges;
use crate::error::TopologyError;
use crate::machine::{Cpu, Machine};
use crate::spec::DomainSpec;
use crate::split::split_cores;

/// Dense domain number, `0..plan.domains.len()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DomainId(pub u32);

impl fmt::Display for DomainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One scheduling domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    /// Equal to the domain's index in [`Plan::domains`].
    pub id: DomainId,
    /// Usable CPUs (OS indices), sorted, never empty.
    pub cpus: Vec<u32>,
    /// The NUMA node of every CPU, or `None` if the domain spans several
    /// nodes (or the machine has no NUMA information).
    pub numa_node: Option<u32>,
    /// The LLC id of every CPU, or `None` if the domain spans several LLCs.
    pub llc: Option<u32>,
    /// Every NUMA node the domain touches, sorted.
    pub numa_nodes: Vec<u32>,
    /// Every LLC the domain touches, sorted.
    pub llcs: Vec<u32>,
}

/// Domains covering every usable CPU exactly once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Ordered by lowest CPU; `domains[i].id == DomainId(i)`.
    pub domains: Vec<Domain>,
    spec: DomainSpec,
    /// The LLC of each usable CPU whose LLC is known, by OS index: whatever
    /// the domains, a task that moves between two of these ids leaves its
    /// cache behind.
    llcs: BTreeMap<u32, u32>,
}

impl Plan {
    /// The spec this plan was computed from.
    pub fn spec(&self) -> DomainSpec {
        self.spec
    }

    /// The domain with this id, if any.
    pub fn domain(&self, id: DomainId) -> Option<&Domain> {
        usize::try_from(id.0).ok().and_then(|index| self.domains.get(index))
    }

    /// The domain holding `cpu`, or `None` for a CPU that is not usable.
    pub fn domain_of_cpu(&self, cpu: u32) -> Option<DomainId> {
        self.domains
            .iter()
            .find(|domain| domain.cpus.binary_search(&cpu).is_ok())
            .map(|domain| domain.id)
    }

    /// The LLC id of `cpu`, if it is usable and its LLC is known.
    pub fn llc_of_cpu(&self, cpu: u32) -> Option<u32> {
        self.llcs.get(&cpu).copied()
    }

    /// Number of CPUs covered by the plan.
    pub fn nr_cpus(&self) -> usize {
        self.domains.iter().map(|domain| domain.cpus.len()).sum()
    }

    /// 0 for the same domain, 1 if the two domains share a NUMA node or an
    /// LLC, 2 otherwise (and for ids that are not in the plan).
    pub fn distance(&self, a: DomainId, b: DomainId) -> u32 {
        if a == b {
            return 0;
        }
        match (self.domain(a), self.domain(b)) {
            (Some(a), Some(b)) if shares(&a.numa_nodes, &b.numa_nodes) || shares(&a.llcs, &b.llcs) => 1,
            _ => 2,
        }
    }

    /// Every other domain, nearest first (by [`Plan::distance`], then id):
    /// the order in which an idle domain should look for work to steal.
    pub fn steal_order(&self, d: DomainId) -> Vec<DomainId> {
        let mut others: Vec<DomainId> = self
            .domains
            .iter()
            .map(|domain| domain.id)
            .filter(|&id| id != d)
            .collect();
        others.sort_by_key(|&id| (self.distance(d, id), id));
        others
    }

    /// A human-readable table, one line per domain:
    /// `domain 0  cpus 0-3,8  numa 0  llc 1`. A domain spanning several
    /// nodes or LLCs lists them all (`numa 0-1`); `-` means unknown. Then a
    /// `note:` line for each LLC split between domains and, with several
    /// domains, each domain that spans NUMA nodes: what `--domains N` could
    /// not avoid.
    pub fn render(&self) -> String {
        let id_width = self.domains.iter().map(|d| d.id.to_string().len()).max().unwrap_or(0);
        let cpus: Vec<String> = self.domains.iter().map(|d| format_cpu_ranges(&d.cpus)).collect();
        let cpus_width = cpus.iter().map(String::len).max().unwrap_or(0);
        let mut out = String::new();
        for (domain, cpus) in self.domains.iter().zip(&cpus) {
            out.push_str(&format!(
                "domain {:<id_width$}  cpus {:<cpus_width$}  numa {}  llc {}\n",
                domain.id,
                cpus,
                describe(domain.numa_node, &domain.numa_nodes),
                describe(domain.llc, &domain.llcs),
            ));
        }
        let mut llcs: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        for domain in &self.domains {
            for &llc in &domain.llcs {
                llcs.entry(llc).or_default().push(domain.id.0);
            }
        }
        for (llc, holders) in llcs.iter().filter(|(_, holders)| holders.len() > 1) {
            out.push_str(&format!(
                "note: LLC {llc} is split between domains {}\n",
                format_cpu_ranges(holders)
            ));
        }
        // One domain spans everything by definition.
        let several = self.domains.len() > 1;
        for domain in self.domains.iter().filter(|d| several && d.numa_nodes.len() > 1) {
            out.push_str(&format!(
                "note: domain {} spans NUMA nodes {}\n",
                domain.id,
                format_cpu_ranges(&domain.numa_nodes)
            ));
        }
        out
    }
}

fn shares(a: &[u32], b: &[u32]) -> bool {
    a.iter().any(|x| b.binary_search(x).is_ok())
}

fn describe(single: Option<u32>, all: &[u32]) -> String {
    match single {
        Some(id) => id.to_string(),
        None if all.is_empty() => "-".to_string(),
        None => format_cpu_ranges(all),
    }
}

/// Groups the usable CPUs of `machine` into domains according to `spec`.
///
/// # Errors
/// [`TopologyError::ZeroDomains`] for `Count(0)`,
/// [`TopologyError::NoUsableCpus`] if no CPU is usable,
/// [`TopologyError::TooManyDomains`] if `Count(n)` exceeds the usable cores.
pub fn plan(machine: &Machine, spec: DomainSpec) -> Result<Plan, TopologyError> {
    if spec == DomainSpec::Count(0) {
        return Err(TopologyError::ZeroDomains);
    }
    let usable: Vec<&Cpu> = machine.usable_cpus().collect();
    if usable.is_empty() {
        return Err(TopologyError::NoUsableCpus);
    }

    let groups: Vec<Vec<u32>> = match spec {
        DomainSpec::Single | DomainSpec::Count(1) => {
            vec![usable.iter().map(|cpu| cpu.os_index).collect()]
        }
        DomainSpec::Llc => group_by(&usable, |cpu| cpu.llc),
        DomainSpec::Numa => group_by(&usable, |cpu| cpu.numa_node),
        DomainSpec::Count(n) => split_cores(&usable, n)?,
    };

    let mut domains: Vec<Domain> = groups
        .into_iter()
        .filter(|cpus| !cpus.is_empty())
        .map(|mut cpus| {
            cpus.sort_unstable();
            let members: Vec<&Cpu> = usable
                .iter()
                .copied()
                .filter(|cpu| cpus.binary_search(&cpu.os_index).is_ok())
                .collect();
            let (numa_node, numa_nodes) = common(&members, |cpu| cpu.numa_node);
            let (llc, llcs) = common(&members, |cpu| cpu.llc);
            Domain {
                id: DomainId(0),
                cpus,
                numa_node,
                llc,
                numa_nodes,
                llcs,
            }
        })
        .collect();
    domains.sort_by_key(|domain| domain.cpus.first().copied());
    for (index, domain) in domains.iter_mut().enumerate() {
        domain.id = DomainId(
            u32::try_from(index)
                .map_err(|_| TopologyError::Inconsistent(format!("{index} domains do not fit in 32 bits")))?,
        );
    }
    let llcs = usable
        .iter()
        .filter_map(|cpu| cpu.llc.map(|llc| (cpu.os_index, llc)))
        .collect();
    Ok(Plan { domains, spec, llcs })
}

fn group_by(cpus: &[&Cpu], key: impl Fn(&Cpu) -> Option<u32>) -> Vec<Vec<u32>> {
    let mut groups: BTreeMap<Option<u32>, Vec<u32>> = BTreeMap::new();
    for cpu in cpus {
        groups.entry(key(cpu)).or_default().push(cpu.os_index);
    }
    groups.into_values().collect()
}

/// The value shared by every CPU (`None` if they differ or one is unknown),
/// and the sorted set of known values.
fn common(cpus: &[&Cpu], key: impl Fn(&Cpu) -> Option<u32>) -> (Option<u32>, Vec<u32>) {
    let values: Vec<Option<u32>> = cpus.iter().map(|cpu| key(cpu)).collect();
    let single = match values.first() {
        Some(&first) if values.iter().all(|&v| v == first) => first,
        _ => None,
    };
    let mut all: Vec<u32> = values.into_iter().flatten().collect();
    all.sort_unstable();
    all.dedup();
    (single, all)
}
