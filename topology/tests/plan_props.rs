//! Property tests of `--domains N` on generated symmetric machines
//! (hwloc synthetic topologies): the planner never panics, covers every
//! CPU exactly once with whole cores, and keeps the promises of the
//! module doc of split.rs about NUMA nodes and LLCs.

use proptest::prelude::*;
use topology::{plan, DomainSpec, Machine};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn count_plans_cover_every_cpu_once_and_respect_nodes_and_llcs(
        nodes in 1u32..=4, llcs in 1u32..=4, cores in 1u32..=4, pus in 1u32..=2, extra in 0u32..=2,
        pick in 0.0f64..1.0,
    ) {
        let description = format!("pack:{nodes} [numa] l3:{llcs} core:{cores} pu:{pus}");
        let machine = Machine::from_synthetic(&description).expect("a valid synthetic machine");
        let total_cores = nodes * llcs * cores;
        // Any N from 1 to a little past the number of cores.
        let n = 1 + ((f64::from(total_cores + extra) * pick) as u32).min(total_cores + extra - 1);
        let result = plan(&machine, DomainSpec::Count(n));
        if n > total_cores {
            prop_assert!(result.is_err(), "{description} N={n}: more domains than cores");
            return Ok(());
        }
        let p = result.map_err(|e| TestCaseError::fail(format!("{description} N={n}: {e}")))?;
        prop_assert_eq!(p.domains.len(), n as usize);

        let usable: Vec<_> = machine.usable_cpus().collect();
        let mut covered: Vec<u32> = p.domains.iter().flat_map(|d| d.cpus.clone()).collect();
        covered.sort_unstable();
        let mut all: Vec<u32> = usable.iter().map(|c| c.os_index).collect();
        all.sort_unstable();
        prop_assert_eq!(&covered, &all, "{} N={}: every CPU exactly once", description, n);
        for cpu in &usable {
            for sibling in usable.iter().filter(|s| s.core == cpu.core) {
                prop_assert_eq!(p.domain_of_cpu(cpu.os_index), p.domain_of_cpu(sibling.os_index));
            }
        }

        let domains_of = |key: &dyn Fn(&topology::Cpu) -> Option<u32>, id: u32| -> usize {
            p.domains
                .iter()
                .filter(|d| usable.iter().any(|c| key(c) == Some(id) && d.cpus.contains(&c.os_index)))
                .count()
        };
        if n >= nodes {
            // No domain spans two nodes.
            prop_assert!(p.domains.iter().all(|d| d.numa_nodes.len() <= 1), "{} N={}: {}", description, n, p.render());
            // Nodes are alike, so each gets N/nodes domains, rounded up or down;
            // when that fits its LLCs, no LLC is split.
            if n.div_ceil(nodes) <= llcs {
                let llc_ids: Vec<u32> = usable.iter().filter_map(|c| c.llc).collect();
                for id in llc_ids {
                    prop_assert_eq!(domains_of(&|c| c.llc, id), 1, "{} N={}: LLC {} split: {}", description, n, id, p.render());
                }
            }
        } else {
            // Fewer domains than nodes: whole nodes.
            let node_ids: Vec<u32> = usable.iter().filter_map(|c| c.numa_node).collect();
            for id in node_ids {
                prop_assert_eq!(domains_of(&|c| c.numa_node, id), 1, "{} N={}: node {} split", description, n, id);
            }
        }
    }
}
