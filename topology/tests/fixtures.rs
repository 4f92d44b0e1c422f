//! Exact plans for every spec on every committed hwloc XML fixture.

mod common;

use common::{assert_plan, cpulist, fixture};
use topology::{plan, DomainId, DomainSpec, LlcSource};

const N0: Option<u32> = Some(0);
const N1: Option<u32> = Some(1);
const NONE: Option<u32> = None;

fn llc(id: u32) -> Option<u32> {
    Some(id)
}

#[test]
fn single_llc() {
    let m = fixture("single-llc");
    assert_eq!(m.llc_source(), LlcSource::Cache { level: 3 });
    assert_plan(&m, "1", &[("0-7", N0, llc(0))]);
    assert_plan(&m, "llc", &[("0-7", N0, llc(0))]);
    assert_plan(&m, "numa", &[("0-7", N0, llc(0))]);
    // 1 LLC, N a multiple of it: the LLC is cut into whole cores.
    assert_plan(&m, "2", &[("0-3", N0, llc(0)), ("4-7", N0, llc(0))]);
    assert_plan(
        &m,
        "3",
        &[("0-2", N0, llc(0)), ("3-5", N0, llc(0)), ("6-7", N0, llc(0))],
    );
    assert_plan(
        &m,
        "4",
        &[
            ("0-1", N0, llc(0)),
            ("2-3", N0, llc(0)),
            ("4-5", N0, llc(0)),
            ("6-7", N0, llc(0)),
        ],
    );
    let per_core: Vec<String> = (0..8).map(|c| c.to_string()).collect();
    let expected: Vec<(&str, Option<u32>, Option<u32>)> = per_core.iter().map(|c| (c.as_str(), N0, llc(0))).collect();
    assert_plan(&m, "8", &expected);
}

#[test]
fn numa_llc() {
    let m = fixture("numa-llc");
    assert_plan(&m, "1", &[("0-7", NONE, NONE)]);
    assert_plan(
        &m,
        "llc",
        &[
            ("0-1", N0, llc(0)),
            ("2-3", N0, llc(1)),
            ("4-5", N1, llc(2)),
            ("6-7", N1, llc(3)),
        ],
    );
    assert_plan(&m, "numa", &[("0-3", N0, NONE), ("4-7", N1, NONE)]);
    // N divides the LLC count: two whole LLCs per domain.
    assert_plan(&m, "2", &[("0-3", N0, NONE), ("4-7", N1, NONE)]);
    // 3 on 2 nodes: 2 domains for node 0 (an LLC each), 1 for node 1 (both
    // its LLCs); no domain spans the nodes, no LLC is split.
    let p = assert_plan(&m, "3", &[("0-1", N0, llc(0)), ("2-3", N0, llc(1)), ("4-7", N1, NONE)]);
    assert!(!p.render().contains("note:"), "nothing split: {}", p.render());
    assert_plan(
        &m,
        "4",
        &[
            ("0-1", N0, llc(0)),
            ("2-3", N0, llc(1)),
            ("4-5", N1, llc(2)),
            ("6-7", N1, llc(3)),
        ],
    );
    // N a multiple of the LLC count: every LLC split in two cores.
    let p = assert_plan(
        &m,
        "8",
        &[
            ("0", N0, llc(0)),
            ("1", N0, llc(0)),
            ("2", N0, llc(1)),
            ("3", N0, llc(1)),
            ("4", N1, llc(2)),
            ("5", N1, llc(2)),
            ("6", N1, llc(3)),
            ("7", N1, llc(3)),
        ],
    );
    assert_eq!(p.domains[1].llcs, [0]);
    assert_eq!(p.domains[0].numa_nodes, [0]);
}

/// Every CPU's LLC, whatever the domains: one domain spans all four LLCs,
/// and BPF still tells a move between them (the `xllc` count) by these.
#[test]
fn numa_llc_cpu_llcs() {
    let m = fixture("numa-llc");
    for spec in ["1", "numa", "llc", "8"] {
        let p = plan(&m, spec.parse::<DomainSpec>().unwrap()).unwrap();
        let llcs: Vec<Option<u32>> = (0..9).map(|cpu| p.llc_of_cpu(cpu)).collect();
        assert_eq!(
            llcs,
            [llc(0), llc(0), llc(1), llc(1), llc(2), llc(2), llc(3), llc(3), NONE],
            "--domains {spec}"
        );
    }
}

/// One package, 8 L3s of 4 cores, SMT 2 with Linux numbering (core c has
/// CPUs c and c+32).
#[test]
fn epyc() {
    let m = fixture("epyc");
    assert_eq!(m.cpus().len(), 64);
    assert_plan(&m, "1", &[("0-63", N0, NONE)]);
    assert_plan(&m, "numa", &[("0-63", N0, NONE)]);
    let llcs: Vec<String> = (0..8)
        .map(|i| format!("{}-{},{}-{}", 4 * i, 4 * i + 3, 32 + 4 * i, 32 + 4 * i + 3))
        .collect();
    let expected: Vec<(&str, Option<u32>, Option<u32>)> = llcs
        .iter()
        .zip(0..)
        .map(|(cpus, i)| (cpus.as_str(), N0, llc(i)))
        .collect();
    assert_plan(&m, "llc", &expected);
    assert_plan(&m, "2", &[("0-15,32-47", N0, NONE), ("16-31,48-63", N0, NONE)]);
    assert_plan(
        &m,
        "4",
        &[
            ("0-7,32-39", N0, NONE),
            ("8-15,40-47", N0, NONE),
            ("16-23,48-55", N0, NONE),
            ("24-31,56-63", N0, NONE),
        ],
    );
    // 3 on 8 LLCs: whole LLCs, 3 + 3 + 2, siblings kept together.
    assert_plan(
        &m,
        "3",
        &[
            ("0-11,32-43", N0, NONE),
            ("12-23,44-55", N0, NONE),
            ("24-31,56-63", N0, NONE),
        ],
    );
    // 16 = 2 per LLC: each LLC split into 2 cores (4 CPUs) per domain.
    let halves: Vec<String> = (0..16)
        .map(|j| format!("{}-{},{}-{}", 2 * j, 2 * j + 1, 32 + 2 * j, 33 + 2 * j))
        .collect();
    let expected: Vec<(&str, Option<u32>, Option<u32>)> = halves
        .iter()
        .zip(0u32..)
        .map(|(cpus, j)| (cpus.as_str(), N0, llc(j / 2)))
        .collect();
    assert_plan(&m, "16", &expected);
    // 32 domains: one per core, i.e. per SMT pair.
    let p = plan(&m, DomainSpec::Count(32)).unwrap();
    assert!(p
        .domains
        .iter()
        .all(|d| d.cpus.len() == 2 && d.cpus[1] == d.cpus[0] + 32));
}

/// 4 packages x 1 NUMA node x 2 L3 x 8 cores (16 CPUs per node).
#[test]
fn numa4() {
    let m = fixture("numa4");
    assert_plan(&m, "1", &[("0-63", NONE, NONE)]);
    let expected: Vec<(String, Option<u32>, Option<u32>)> = (0..8)
        .map(|i| (format!("{}-{}", 8 * i, 8 * i + 7), Some(i / 2), llc(i)))
        .collect();
    let expected: Vec<(&str, Option<u32>, Option<u32>)> =
        expected.iter().map(|(c, n, l)| (c.as_str(), *n, *l)).collect();
    assert_plan(&m, "llc", &expected);
    assert_plan(
        &m,
        "numa",
        &[
            ("0-15", N0, NONE),
            ("16-31", N1, NONE),
            ("32-47", Some(2), NONE),
            ("48-63", Some(3), NONE),
        ],
    );
    assert_plan(&m, "2", &[("0-31", NONE, NONE), ("32-63", NONE, NONE)]);
    assert_plan(
        &m,
        "4",
        &[
            ("0-15", N0, NONE),
            ("16-31", N1, NONE),
            ("32-47", Some(2), NONE),
            ("48-63", Some(3), NONE),
        ],
    );
    // Fewer domains than nodes: whole nodes, as balanced as they go.
    let p = assert_plan(
        &m,
        "3",
        &[("0-31", NONE, NONE), ("32-47", Some(2), NONE), ("48-63", Some(3), NONE)],
    );
    assert!(
        p.render().ends_with("note: domain 0 spans NUMA nodes 0-1\n"),
        "{}",
        p.render()
    );
    // 6 on 4 nodes of 2 LLCs: the first two nodes get 2 domains (an LLC
    // each), the others 1: nothing spans a node or splits an LLC.
    assert_plan(
        &m,
        "6",
        &[
            ("0-7", N0, llc(0)),
            ("8-15", N0, llc(1)),
            ("16-23", N1, llc(2)),
            ("24-31", N1, llc(3)),
            ("32-47", Some(2), NONE),
            ("48-63", Some(3), NONE),
        ],
    );
    let expected: Vec<(String, Option<u32>, Option<u32>)> = (0..16)
        .map(|i| (format!("{}-{}", 4 * i, 4 * i + 3), Some(i / 4), llc(i / 2)))
        .collect();
    let expected: Vec<(&str, Option<u32>, Option<u32>)> =
        expected.iter().map(|(c, n, l)| (c.as_str(), *n, *l)).collect();
    assert_plan(&m, "16", &expected);
}

/// No L3: the shared L2 (2 cores of 2 threads each) is the LLC.
#[test]
fn no_l3() {
    let m = fixture("no-l3");
    assert_eq!(m.llc_source(), LlcSource::Cache { level: 2 });
    assert_plan(&m, "1", &[("0-15", NONE, NONE)]);
    assert_plan(
        &m,
        "llc",
        &[
            ("0-3", N0, llc(0)),
            ("4-7", N0, llc(1)),
            ("8-11", N1, llc(2)),
            ("12-15", N1, llc(3)),
        ],
    );
    assert_plan(&m, "numa", &[("0-7", N0, NONE), ("8-15", N1, NONE)]);
    assert_plan(&m, "2", &[("0-7", N0, NONE), ("8-15", N1, NONE)]);
    assert_plan(&m, "3", &[("0-3", N0, llc(0)), ("4-7", N0, llc(1)), ("8-15", N1, NONE)]);
    assert_plan(
        &m,
        "4",
        &[
            ("0-3", N0, llc(0)),
            ("4-7", N0, llc(1)),
            ("8-11", N1, llc(2)),
            ("12-15", N1, llc(3)),
        ],
    );
    let per_core: Vec<(String, Option<u32>, Option<u32>)> = (0..8)
        .map(|c| (format!("{}-{}", 2 * c, 2 * c + 1), Some(c / 4), llc(c / 2)))
        .collect();
    let expected: Vec<(&str, Option<u32>, Option<u32>)> =
        per_core.iter().map(|(c, n, l)| (c.as_str(), *n, *l)).collect();
    assert_plan(&m, "8", &expected);
}

/// Private (per-core) L2 only: no shared cache, the package is the LLC.
#[test]
fn private_l2_falls_back_to_package() {
    let m = fixture("private-l2");
    assert_eq!(m.llc_source(), LlcSource::Package);
    assert_plan(&m, "1", &[("0-7", NONE, NONE)]);
    assert_plan(&m, "llc", &[("0-3", N0, llc(0)), ("4-7", N1, llc(1))]);
    assert_plan(&m, "numa", &[("0-3", N0, llc(0)), ("4-7", N1, llc(1))]);
    assert_plan(&m, "2", &[("0-3", N0, llc(0)), ("4-7", N1, llc(1))]);
    // One LLC per node: 3 domains must split one; node 0's, the first.
    let p = assert_plan(
        &m,
        "3",
        &[("0-1", N0, llc(0)), ("2-3", N0, llc(0)), ("4-7", N1, llc(1))],
    );
    assert!(
        p.render().ends_with("note: LLC 0 is split between domains 0-1\n"),
        "{}",
        p.render()
    );
    assert_plan(
        &m,
        "4",
        &[
            ("0-1", N0, llc(0)),
            ("2-3", N0, llc(0)),
            ("4-5", N1, llc(1)),
            ("6-7", N1, llc(1)),
        ],
    );
}

/// numa-llc with CPUs 2-3 offline: their L3 disappears, hwloc renumbers
/// the remaining L3s 0, 1, 2.
#[test]
fn offline_cpus() {
    let m = fixture("numa-llc-offline");
    assert_eq!(m.offline_cpus(), [2, 3]);
    let present: Vec<u32> = m.cpus().iter().map(|c| c.os_index).collect();
    assert_eq!(present, cpulist("0-1,4-7"));
    let p = assert_plan(&m, "1", &[("0-1,4-7", NONE, NONE)]);
    assert_eq!(p.domain_of_cpu(2), None);
    assert_eq!(p.domain_of_cpu(3), None);
    assert_eq!(p.render(), "domain 0  cpus 0-1,4-7  numa 0-1  llc 0-2\n");
    assert_plan(
        &m,
        "llc",
        &[("0-1", N0, llc(0)), ("4-5", N1, llc(1)), ("6-7", N1, llc(2))],
    );
    // Node 0 keeps a single LLC, so its domain reports it.
    assert_plan(&m, "numa", &[("0-1", N0, llc(0)), ("4-7", N1, NONE)]);
    // 2 domains on 2 nodes: one per node, whatever their sizes (2 and 4).
    assert_plan(&m, "2", &[("0-1", N0, llc(0)), ("4-7", N1, NONE)]);
    assert_plan(
        &m,
        "3",
        &[("0-1", N0, llc(0)), ("4-5", N1, llc(1)), ("6-7", N1, llc(2))],
    );
    // 4 on nodes of 2 and 4 cores: 2 domains each (a tie goes to the first
    // node), so node 0's single LLC is the one split.
    assert_plan(
        &m,
        "4",
        &[
            ("0", N0, llc(0)),
            ("1", N0, llc(0)),
            ("4-5", N1, llc(1)),
            ("6-7", N1, llc(2)),
        ],
    );
    let err = plan(&m, DomainSpec::Count(7)).unwrap_err().to_string();
    assert!(err.contains("cannot split 6 cores into 7 domains"), "{err}");
}

/// numa-llc with CPU 7 outside the allowed cpuset: present but unusable.
#[test]
fn disallowed_cpu() {
    let m = fixture("numa-llc-disallowed");
    assert_eq!(m.cpus().len(), 8);
    assert!(m.offline_cpus().is_empty());
    let usable: Vec<u32> = m.usable_cpus().map(|c| c.os_index).collect();
    assert_eq!(usable, cpulist("0-6"));
    let p = assert_plan(&m, "1", &[("0-6", NONE, NONE)]);
    assert_eq!(p.domain_of_cpu(7), None);
    assert_plan(
        &m,
        "llc",
        &[
            ("0-1", N0, llc(0)),
            ("2-3", N0, llc(1)),
            ("4-5", N1, llc(2)),
            ("6", N1, llc(3)),
        ],
    );
    assert_plan(&m, "numa", &[("0-3", N0, NONE), ("4-6", N1, NONE)]);
    assert_plan(&m, "2", &[("0-3", N0, NONE), ("4-6", N1, NONE)]);
    let err = plan(&m, DomainSpec::Count(8)).unwrap_err().to_string();
    assert!(err.contains("cannot split 7 cores into 8 domains"), "{err}");
}

#[test]
fn restricting_every_cpu_away_is_an_error() {
    let m = fixture("numa-llc").restricted_to(&[]);
    let err = plan(&m, DomainSpec::Single).unwrap_err().to_string();
    assert!(err.contains("no usable CPU"), "{err}");
    assert!(err.contains("cpuset"), "{err}");
}

#[test]
fn restricted_machine_drops_empty_domains_and_renumbers() {
    let m = fixture("numa-llc").restricted_to(&[1, 6, 7]);
    let p = assert_plan(&m, "llc", &[("1", N0, llc(0)), ("6-7", N1, llc(3))]);
    assert_eq!(p.domains[1].id, DomainId(1));
}

/// For every fixture and every N from 1 to the number of cores: the plan
/// partitions the usable CPUs, never splits a core, and has N domains.
#[test]
fn every_count_partitions_whole_cores() {
    for name in [
        "single-llc",
        "numa-llc",
        "epyc",
        "numa4",
        "no-l3",
        "private-l2",
        "numa-llc-offline",
        "numa-llc-disallowed",
    ] {
        let m = fixture(name);
        let mut cores: Vec<u32> = m.usable_cpus().map(|c| c.core).collect();
        cores.sort_unstable();
        cores.dedup();
        for n in 1..=cores.len() as u32 {
            let p = plan(&m, DomainSpec::Count(n)).unwrap();
            assert_eq!(p.domains.len(), n as usize, "{name} N={n}");
            let mut covered: Vec<u32> = p.domains.iter().flat_map(|d| d.cpus.clone()).collect();
            covered.sort_unstable();
            let usable: Vec<u32> = m.usable_cpus().map(|c| c.os_index).collect();
            assert_eq!(covered, usable, "{name} N={n}");
            for cpu in m.usable_cpus() {
                for sibling in m.usable_cpus().filter(|s| s.core == cpu.core) {
                    assert_eq!(
                        p.domain_of_cpu(cpu.os_index),
                        p.domain_of_cpu(sibling.os_index),
                        "{name} N={n}: core {} split",
                        cpu.core
                    );
                }
            }
        }
        let too_many = cores.len() as u32 + 1;
        assert!(plan(&m, DomainSpec::Count(too_many)).is_err(), "{name}");
    }
}
