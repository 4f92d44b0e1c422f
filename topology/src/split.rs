//! `DomainSpec::Count(N)`: cutting the usable cores into N domains.
//!
//! The unit is the core, never the CPU: SMT siblings share most of a core's
//! execution resources, so putting them in different domains would make two
//! queues fight over one core. Cores are laid out in topology order
//! (NUMA node, package, LLC, lowest CPU), and every domain is a contiguous
//! run of that order, cut level by level, widest level first:
//!
//! ```text
//!   level      N >= units at this level          N < units at this level
//!   NUMA node  each node gets >= 1 domain,        nodes grouped whole into N
//!              by its cores (never spans nodes)   runs of balanced size
//!   LLC        within a node: each LLC gets >= 1, LLCs grouped whole into
//!              by its cores (an LLC is split)     the node's runs, balanced
//!   core       within an LLC: N runs of cores differing by one at most
//! ```
//!
//! So a domain never spans two NUMA nodes when N is at least the number of
//! nodes, and never splits an LLC when each node has at least as many LLCs
//! as the domains it got; a split happens only where N leaves no other
//! choice (and `Plan::render` names it). Domains are handed to the units of
//! a level one at a time, each to the unit whose cores per domain are then
//! the most (ties: the first), so sizes follow the units' sizes: 3 domains
//! on 2 nodes of 4 LLCs are 2 LLCs + 2 LLCs in node 0 and 4 LLCs in node 1.

use std::collections::BTreeMap;

use crate::error::TopologyError;
use crate::machine::Cpu;

/// One usable core: its usable CPUs and the keys that order and group it.
struct Core {
    order: (Option<u32>, Option<u32>, Option<u32>, u32),
    node: Option<u32>,
    llc: Option<u32>,
    cpus: Vec<u32>,
}

/// Splits `cpus` (all usable) into `n >= 1` groups of whole cores.
pub(crate) fn split_cores(cpus: &[&Cpu], n: u32) -> Result<Vec<Vec<u32>>, TopologyError> {
    let mut by_core: BTreeMap<u32, Core> = BTreeMap::new();
    for cpu in cpus {
        let core = by_core.entry(cpu.core).or_insert_with(|| Core {
            order: (cpu.numa_node, cpu.package, cpu.llc, cpu.os_index),
            node: cpu.numa_node,
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

    let levels: [fn(&Core) -> Option<u32>; 2] = [|c| c.node, |c| c.llc];
    let mut groups = Vec::with_capacity(domains);
    cut(&cores, domains, &levels, &mut groups);
    Ok(groups
        .into_iter()
        .map(|group| group.iter().flat_map(|core| core.cpus.iter().copied()).collect())
        .collect())
}

/// Cuts `cores` (contiguous, `1 <= n <= cores.len()`) into `n` runs,
/// level by level (see the module doc), appending them to `out`.
fn cut<'a>(cores: &'a [Core], n: usize, levels: &[fn(&Core) -> Option<u32>], out: &mut Vec<&'a [Core]>) {
    let Some((key, deeper)) = levels.split_first() else {
        out.extend(even_chunks(cores, n));
        return;
    };
    let units = runs(cores, *key);
    if n >= units.len() {
        let sizes: Vec<usize> = units.iter().map(|u| u.len()).collect();
        for (unit, count) in units.iter().zip(apportion(&sizes, n)) {
            cut(&cores[unit.clone()], count, deeper, out);
        }
    } else {
        let sizes: Vec<usize> = units.iter().map(|u| u.len()).collect();
        for group in balanced_partition(&sizes, n) {
            let start = units[group.start].start;
            let end = units[group.end - 1].end;
            out.push(&cores[start..end]);
        }
    }
}

/// Index ranges of maximal runs of consecutive cores with the same `key`.
fn runs(cores: &[Core], key: fn(&Core) -> Option<u32>) -> Vec<std::ops::Range<usize>> {
    let mut runs: Vec<std::ops::Range<usize>> = Vec::new();
    for (index, core) in cores.iter().enumerate() {
        match runs.last_mut() {
            Some(run) if key(&cores[run.start]) == key(core) => run.end = index + 1,
            _ => runs.push(index..index + 1),
        }
    }
    runs
}

/// Hands `n` domains to units of `sizes` cores (`sizes.len() <= n <=
/// sizes.iter().sum()`): one each, then each next one to the unit with the
/// most cores per domain that still has a core without a domain.
fn apportion(sizes: &[usize], n: usize) -> Vec<usize> {
    let mut counts = vec![1; sizes.len()];
    for _ in sizes.len()..n {
        let best = (0..sizes.len())
            .filter(|&i| counts[i] < sizes[i])
            // sizes[i] / counts[i] > sizes[j] / counts[j], without division.
            .reduce(|j, i| {
                if sizes[i] * counts[j] > sizes[j] * counts[i] {
                    i
                } else {
                    j
                }
            });
        if let Some(i) = best {
            counts[i] += 1;
        }
    }
    counts
}

/// Splits units of `sizes` into `k` (`1 <= k <= sizes.len()`) contiguous
/// groups whose largest total is as small as it can be; among those, the
/// earlier groups are the larger, as in `even_chunks`.
fn balanced_partition(sizes: &[usize], k: usize) -> Vec<std::ops::Range<usize>> {
    let m = sizes.len();
    let mut prefix = vec![0; m + 1];
    for (i, s) in sizes.iter().enumerate() {
        prefix[i + 1] = prefix[i] + s;
    }
    // best[j][i]: the least largest total of j groups over the first i units;
    // from[j][i]: where the last of those groups starts.
    let mut best = vec![vec![usize::MAX; m + 1]; k + 1];
    let mut from = vec![vec![0; m + 1]; k + 1];
    best[0][0] = 0;
    for j in 1..=k {
        for i in j..=m {
            for p in (j - 1)..i {
                if best[j - 1][p] == usize::MAX {
                    continue;
                }
                let worst = best[j - 1][p].max(prefix[i] - prefix[p]);
                if worst <= best[j][i] {
                    best[j][i] = worst;
                    from[j][i] = p;
                }
            }
        }
    }
    let mut groups = Vec::with_capacity(k);
    let mut end = m;
    for j in (1..=k).rev() {
        let start = from[j][end];
        groups.push(start..end);
        end = start;
    }
    groups.reverse();
    groups
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
    use super::{apportion, balanced_partition, even_chunks};

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

    #[test]
    fn apportion_follows_sizes_and_caps_at_a_core_each() {
        assert_eq!(apportion(&[8, 8], 3), [2, 1], "a tie goes to the first");
        assert_eq!(apportion(&[12, 4], 4), [3, 1]);
        assert_eq!(apportion(&[1, 7], 5), [1, 4], "a one-core unit takes one domain");
        assert_eq!(apportion(&[2, 2, 2], 6), [2, 2, 2]);
    }

    #[test]
    fn balanced_partition_minimises_the_largest_group() {
        assert_eq!(balanced_partition(&[4, 4, 4, 4, 4, 4, 4, 4], 3), [0..3, 3..6, 6..8]);
        assert_eq!(balanced_partition(&[16, 16, 16, 16], 3), [0..2, 2..3, 3..4]);
        assert_eq!(balanced_partition(&[1, 1, 10], 2), [0..2, 2..3]);
        assert_eq!(balanced_partition(&[5], 1), vec![0..1]);
    }
}
