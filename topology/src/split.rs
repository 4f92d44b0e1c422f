//! `DomainSpec::Count(N)`: cutting the usable cores into N domains.
//!
//! The unit is the core, never the CPU: SMT siblings share most of a core's
//! execution resources, so putting them in different domains would make two
//! queues fight over one core. Cores are laid out in topology order
//! (NUMA node, package, LLC, lowest CPU), which makes consecutive cores
//! share as much as possible; every domain is then a contiguous run of that
//! order. Three cases, tried in order:
//!
//! 1. N divides the number of LLCs: every domain gets LLCs/N whole LLCs
//!    (4 LLCs, N=2: two domains of two LLCs). LLC integrity wins over size
//!    balance here, which only matters when offline CPUs make LLCs unequal.
//! 2. N is a multiple of the number of LLCs and every LLC has at least
//!    N/LLCs cores: each LLC is cut into N/LLCs parts of whole cores, as
//!    even as possible (1 LLC of 8 cores, N=2: 4 + 4 cores).
//! 3. Otherwise LLCs cannot all stay whole with balanced sizes, so the
//!    ordered cores are cut into N runs whose sizes differ by at most one
//!    core (the first runs get the extra cores). Contiguity still keeps
//!    most LLCs and NUMA nodes intact.

use std::collections::BTreeMap;

use crate::error::TopologyError;
use crate::machine::Cpu;

/// One usable core: its usable CPUs and the keys that order it.
struct Core {
    order: (Option<u32>, Option<u32>, Option<u32>, u32),
    llc: Option<u32>,
    cpus: Vec<u32>,
}

/// Splits `cpus` (all usable) into `n >= 1` groups of whole cores.
pub(crate) fn split_cores(cpus: &[&Cpu], n: u32) -> Result<Vec<Vec<u32>>, TopologyError> {
    let mut by_core: BTreeMap<u32, Core> = BTreeMap::new();
    for cpu in cpus {
        let core = by_core.entry(cpu.core).or_insert_with(|| Core {
            order: (cpu.numa_node, cpu.package, cpu.llc, cpu.os_index),
            llc: cpu.llc,
            cpus: Vec::new(),
        });
        core.order.3 = core.order.3.min(cpu.os_index);
        core.cpus.push(cpu.os_index);
    }
    let mut cores: Vec<Core> = by_core.into_values().collect();
    cores.sort_by_key(|core| core.order);

    let domains = usize::try_from(n).unwrap_or(usize::MAX);
    if domains == 0 {
        return Err(TopologyError::ZeroDomains);
    }
    if domains > cores.len() {
        return Err(TopologyError::TooManyDomains {
            domains: n,
            cores: cores.len(),
        });
    }

    let llcs = llc_runs(&cores);
    let groups: Vec<&[Core]> = if llcs.len() % domains == 0 {
        let per_domain = llcs.len() / domains;
        llcs.chunks(per_domain)
            .map(|chunk| {
                let start = chunk.first().map_or(0, |run| run.start);
                let end = chunk.last().map_or(0, |run| run.end);
                &cores[start..end]
            })
            .collect()
    } else if domains % llcs.len() == 0 && llcs.iter().all(|run| run.len() >= domains / llcs.len()) {
        llcs.iter()
            .flat_map(|run| even_chunks(&cores[run.clone()], domains / llcs.len()))
            .collect()
    } else {
        even_chunks(&cores, domains)
    };

    Ok(groups
        .into_iter()
        .map(|group| group.iter().flat_map(|core| core.cpus.iter().copied()).collect())
        .collect())
}

/// Index ranges of maximal runs of consecutive cores sharing an LLC.
fn llc_runs(cores: &[Core]) -> Vec<std::ops::Range<usize>> {
    let mut runs: Vec<std::ops::Range<usize>> = Vec::new();
    for (index, core) in cores.iter().enumerate() {
        match runs.last_mut() {
            Some(run) if cores[run.start].llc == core.llc => run.end = index + 1,
            _ => runs.push(index..index + 1),
        }
    }
    runs
}

/// Cuts `items` into `parts` contiguous chunks whose lengths differ by at
/// most one, longer chunks first. Requires `1 <= parts <= items.len()`.
fn even_chunks<T>(items: &[T], parts: usize) -> Vec<&[T]> {
    let base = items.len() / parts;
    let extra = items.len() % parts;
    let mut chunks = Vec::with_capacity(parts);
    let mut start = 0;
    for part in 0..parts {
        let len = base + usize::from(part < extra);
        chunks.push(&items[start..start + len]);
        start += len;
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::even_chunks;

    #[test]
    fn even_chunks_balances_with_longer_first() {
        let items: Vec<u32> = (0..8).collect();
        let lens: Vec<usize> = even_chunks(&items, 3).iter().map(|c| c.len()).collect();
        assert_eq!(lens, [3, 3, 2]);
        let lens: Vec<usize> = even_chunks(&items, 8).iter().map(|c| c.len()).collect();
        assert_eq!(lens, [1; 8]);
        let lens: Vec<usize> = even_chunks(&items, 1).iter().map(|c| c.len()).collect();
        assert_eq!(lens, [8]);
    }
}
