//! The live machine, read through hwlocality, must plan exactly like the
//! XML that hwloc's own `lstopo-no-graphics` writes for the same machine.

mod common;

use std::io::ErrorKind;
use std::process::Command;

use topology::{plan, DomainSpec, Machine};

#[test]
fn live_matches_lstopo_xml() {
    let path = std::env::temp_dir().join(format!("topology-live-{}.xml", std::process::id()));
    // --disallowed keeps cgroup-disallowed CPUs in the XML, as Machine::live
    // does, so hwloc's logical indices (our LLC ids) match.
    let status = match Command::new("lstopo-no-graphics")
        .args(["--disallowed", "--of", "xml", "-f"])
        .arg(&path)
        .status()
    {
        Ok(status) => status,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            eprintln!("skipping: lstopo-no-graphics not found");
            return;
        }
        Err(e) => panic!("cannot run lstopo-no-graphics: {e}"),
    };
    assert!(status.success(), "lstopo-no-graphics failed: {status}");

    let from_xml = Machine::from_xml_file(&path);
    let _ = std::fs::remove_file(&path);
    // This process's affinity restricts neither: sched_ext schedules every
    // CPU (Machine::live).
    let from_xml = from_xml.unwrap();
    let live = Machine::live().unwrap();

    assert_eq!(live.cpus(), from_xml.cpus());
    assert_eq!(live.offline_cpus(), from_xml.offline_cpus());
    assert_eq!(live.llc_source(), from_xml.llc_source());
    for spec in [DomainSpec::Single, DomainSpec::Llc, DomainSpec::Numa] {
        let live_plan = plan(&live, spec).unwrap();
        let xml_plan = plan(&from_xml, spec).unwrap();
        assert_eq!(live_plan, xml_plan, "spec {spec}");
        assert!(live_plan.nr_cpus() >= 1);
        println!("spec {spec}:\n{}", live_plan.render());
    }
}
