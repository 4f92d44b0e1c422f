//! Every user-facing error says what was wrong and what to do instead.

mod common;

use std::path::Path;

use common::{fixture, fixture_path};
use topology::{plan, DomainSpec, Machine, TopologyError};

fn spec_error(input: &str) -> String {
    let err = input.parse::<DomainSpec>().unwrap_err();
    assert!(matches!(err, TopologyError::InvalidSpec { .. }), "{err:?}");
    let message = err.to_string();
    assert!(!message.contains('\n'), "one line: {message}");
    // Every spec error lists the valid forms.
    for form in ["1 (a single domain)", "llc", "numa", "N >= 2"] {
        assert!(message.contains(form), "{message:?} should mention {form:?}");
    }
    message
}

#[test]
fn zero_is_rejected_with_reason() {
    let message = spec_error("0");
    assert!(message.starts_with("invalid domain spec \"0\": 0 domains"), "{message}");
}

#[test]
fn unknown_word_is_rejected() {
    let message = spec_error("foo");
    assert!(
        message.starts_with("invalid domain spec \"foo\": unknown spec"),
        "{message}"
    );
    spec_error("l3");
    spec_error("numa2");
}

#[test]
fn empty_spec_is_rejected() {
    let message = spec_error("");
    assert!(message.contains("empty"), "{message}");
    spec_error("   ");
}

#[test]
fn more_domains_than_cores() {
    let m = fixture("numa-llc");
    let err = plan(&m, "9".parse().unwrap()).unwrap_err();
    assert_eq!(err, TopologyError::TooManyDomains { domains: 9, cores: 8 });
    let message = err.to_string();
    assert_eq!(
        message,
        "cannot split 8 cores into 9 domains; ask for at most 8 domains, or use llc or numa"
    );
}

#[test]
fn smt_siblings_count_as_one_core() {
    // 64 CPUs but only 32 cores.
    let m = fixture("epyc");
    let message = plan(&m, DomainSpec::Count(33)).unwrap_err().to_string();
    assert!(
        message.starts_with("cannot split 32 cores into 33 domains"),
        "{message}"
    );
    assert!(plan(&m, DomainSpec::Count(32)).is_ok());
}

#[test]
fn count_zero_built_in_code() {
    let m = fixture("single-llc");
    let err = plan(&m, DomainSpec::Count(0)).unwrap_err();
    assert_eq!(err, TopologyError::ZeroDomains);
    assert!(err.to_string().contains("at least 1 domain"), "{err}");
}

#[test]
fn count_one_is_single() {
    let m = fixture("numa-llc");
    let one = plan(&m, DomainSpec::Count(1)).unwrap();
    let single = plan(&m, DomainSpec::Single).unwrap();
    assert_eq!(one.domains, single.domains);
}

#[test]
fn missing_xml_file() {
    let path = Path::new("/nonexistent/topology.xml");
    let message = Machine::from_xml_file(path).unwrap_err().to_string();
    assert!(!message.contains('\n'), "{message}");
    assert!(message.contains("/nonexistent/topology.xml"), "{message}");
    assert!(message.contains("lstopo-no-graphics --of xml"), "{message}");
}

#[test]
fn malformed_xml_file() {
    let path = std::env::temp_dir().join(format!("topology-bad-{}.xml", std::process::id()));
    std::fs::write(&path, "<topology><object").unwrap();
    let result = Machine::from_xml_file(&path);
    let _ = std::fs::remove_file(&path);
    let err = result.unwrap_err();
    assert!(matches!(err, TopologyError::Xml { .. }), "{err:?}");
    assert!(!err.to_string().contains('\n'), "{err}");
}

#[test]
fn fixture_paths_exist() {
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
        assert!(fixture_path(name).is_file(), "{name}");
    }
}
