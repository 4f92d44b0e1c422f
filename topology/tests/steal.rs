//! Distances, steal order and rendering.

mod common;

use common::fixture;
use topology::{plan, DomainId, DomainSpec};

fn ids(raw: &[u32]) -> Vec<DomainId> {
    raw.iter().map(|&id| DomainId(id)).collect()
}

#[test]
fn llc_domains_on_numa_llc() {
    let p = plan(&fixture("numa-llc"), DomainSpec::Llc).unwrap();
    let d = |a, b| p.distance(DomainId(a), DomainId(b));
    assert_eq!(d(0, 0), 0);
    assert_eq!(d(0, 1), 1, "same NUMA node");
    assert_eq!(d(0, 2), 2);
    assert_eq!(d(0, 3), 2);
    assert_eq!(d(2, 3), 1);
    assert_eq!(d(3, 2), 1, "symmetric");
    assert_eq!(p.steal_order(DomainId(0)), ids(&[1, 2, 3]));
    assert_eq!(p.steal_order(DomainId(1)), ids(&[0, 2, 3]));
    assert_eq!(p.steal_order(DomainId(2)), ids(&[3, 0, 1]));
    assert_eq!(p.steal_order(DomainId(3)), ids(&[2, 0, 1]));
}

#[test]
fn domains_of_one_node_are_near_each_other() {
    // {0,1} and {2,3}: node 0, an LLC each; {4-7}: node 1.
    let p = plan(&fixture("numa-llc"), DomainSpec::Count(3)).unwrap();
    assert_eq!(p.distance(DomainId(0), DomainId(1)), 1);
    assert_eq!(p.distance(DomainId(1), DomainId(2)), 2);
    assert_eq!(p.distance(DomainId(0), DomainId(2)), 2);
    assert_eq!(p.steal_order(DomainId(1)), ids(&[0, 2]));
    assert_eq!(p.steal_order(DomainId(2)), ids(&[0, 1]));
}

#[test]
fn shared_llc_is_near() {
    // 16 domains on epyc: pairs of domains share an LLC, all share node 0.
    let p = plan(&fixture("epyc"), DomainSpec::Count(16)).unwrap();
    assert_eq!(p.distance(DomainId(0), DomainId(1)), 1);
    assert_eq!(p.distance(DomainId(0), DomainId(15)), 1);
    // Private-L2 fallback: LLC = package = node, domains of one package near.
    let p = plan(&fixture("private-l2"), DomainSpec::Count(4)).unwrap();
    assert_eq!(p.steal_order(DomainId(2)), ids(&[3, 0, 1]));
}

#[test]
fn unknown_ids_are_far() {
    let p = plan(&fixture("numa-llc"), DomainSpec::Llc).unwrap();
    assert_eq!(p.distance(DomainId(0), DomainId(99)), 2);
    assert_eq!(p.distance(DomainId(99), DomainId(99)), 0);
    assert_eq!(p.steal_order(DomainId(99)), ids(&[0, 1, 2, 3]));
    assert!(p.domain(DomainId(4)).is_none());
}

#[test]
fn single_domain_steals_from_nobody() {
    let p = plan(&fixture("numa4"), DomainSpec::Single).unwrap();
    assert!(p.steal_order(DomainId(0)).is_empty());
    assert_eq!(p.nr_cpus(), 64);
}

#[test]
fn render_numa_llc() {
    let p = plan(&fixture("numa-llc"), DomainSpec::Llc).unwrap();
    assert_eq!(
        p.render(),
        "domain 0  cpus 0-1  numa 0  llc 0\n\
         domain 1  cpus 2-3  numa 0  llc 1\n\
         domain 2  cpus 4-5  numa 1  llc 2\n\
         domain 3  cpus 6-7  numa 1  llc 3\n"
    );
    let p = plan(&fixture("numa-llc"), DomainSpec::Single).unwrap();
    assert_eq!(p.render(), "domain 0  cpus 0-7  numa 0-1  llc 0-3\n");
}

#[test]
fn render_aligns_columns() {
    let p = plan(&fixture("epyc"), DomainSpec::Llc).unwrap();
    let text = p.render();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 8);
    assert_eq!(lines[0], "domain 0  cpus 0-3,32-35    numa 0  llc 0");
    assert_eq!(lines[7], "domain 7  cpus 28-31,60-63  numa 0  llc 7");
}

#[test]
fn domain_id_display_and_spec() {
    assert_eq!(DomainId(0).to_string(), "0");
    assert_eq!(DomainId(12).to_string(), "12");
    let p = plan(&fixture("numa-llc"), DomainSpec::Numa).unwrap();
    assert_eq!(p.spec(), DomainSpec::Numa);
}
