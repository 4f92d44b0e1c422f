//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use topology::{plan, DomainId, DomainSpec, Machine, Plan};

pub fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(format!("{name}.xml"))
}

pub fn fixture(name: &str) -> Machine {
    Machine::from_xml_file(&fixture_path(name)).unwrap_or_else(|e| panic!("fixture {name} failed to load: {e}"))
}

/// Test-side cpulist parser ("0-3,8"), independent of the crate's printer.
pub fn cpulist(list: &str) -> Vec<u32> {
    let mut cpus = Vec::new();
    for item in list.split(',') {
        match item.split_once('-') {
            Some((a, b)) => cpus.extend(a.parse::<u32>().unwrap()..=b.parse::<u32>().unwrap()),
            None => cpus.push(item.parse().unwrap()),
        }
    }
    cpus
}

/// Plans `spec` on `machine` and asserts every domain exactly:
/// `(cpulist, numa_node, llc)` in id order.
pub fn assert_plan(machine: &Machine, spec: &str, expected: &[(&str, Option<u32>, Option<u32>)]) -> Plan {
    let spec: DomainSpec = spec.parse().unwrap();
    let plan = plan(machine, spec).unwrap_or_else(|e| panic!("spec {spec}: {e}"));
    let actual: Vec<(Vec<u32>, Option<u32>, Option<u32>)> = plan
        .domains
        .iter()
        .map(|d| (d.cpus.clone(), d.numa_node, d.llc))
        .collect();
    let expected: Vec<(Vec<u32>, Option<u32>, Option<u32>)> = expected
        .iter()
        .map(|&(cpus, numa, llc)| (cpulist(cpus), numa, llc))
        .collect();
    assert_eq!(actual, expected, "spec {spec}, plan:\n{}", plan.render());
    for (index, domain) in plan.domains.iter().enumerate() {
        assert_eq!(domain.id, DomainId(index as u32), "ids must be dense");
        for &cpu in &domain.cpus {
            assert_eq!(plan.domain_of_cpu(cpu), Some(domain.id));
        }
    }
    let usable = machine.usable_cpus().count();
    assert_eq!(plan.nr_cpus(), usable, "spec {spec} must cover every usable CPU");
    plan
}
