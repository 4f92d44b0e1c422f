//! What the user asks for: how CPUs should be grouped into domains.

use std::fmt;
use std::str::FromStr;

use crate::error::TopologyError;

/// How to group usable CPUs into scheduling domains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DomainSpec {
    /// One domain with every usable CPU (`"1"`).
    Single,
    /// One domain per last-level cache (`"llc"`).
    Llc,
    /// One domain per NUMA node (`"numa"`).
    Numa,
    /// `N` domains of whole cores (`"N"`, N >= 2). `Count(1)` is accepted
    /// and behaves like [`DomainSpec::Single`]; `Count(0)` is rejected by
    /// [`crate::plan`].
    Count(u32),
}

impl FromStr for DomainSpec {
    type Err = TopologyError;

    /// Parses `1`, `llc`, `numa` or a number `N >= 2`. Surrounding
    /// whitespace and letter case are ignored.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: &str| TopologyError::InvalidSpec {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        let word = input.trim().to_ascii_lowercase();
        match word.as_str() {
            "" => Err(invalid("the spec is empty")),
            "llc" => Ok(Self::Llc),
            "numa" => Ok(Self::Numa),
            digits if digits.bytes().all(|b| b.is_ascii_digit()) => match digits.parse::<u32>() {
                Ok(0) => Err(invalid("0 domains cannot hold any CPU")),
                Ok(1) => Ok(Self::Single),
                Ok(n) => Ok(Self::Count(n)),
                Err(_) => Err(invalid("the number of domains is too large")),
            },
            _ => Err(invalid("unknown spec")),
        }
    }
}

impl fmt::Display for DomainSpec {
    /// Prints the spec in the form [`FromStr`] accepts, so it round-trips.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Single => f.write_str("1"),
            Self::Llc => f.write_str("llc"),
            Self::Numa => f.write_str("numa"),
            Self::Count(n) => write!(f, "{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::DomainSpec;

    #[test]
    fn parses_valid_forms() {
        assert_eq!("1".parse(), Ok(DomainSpec::Single));
        assert_eq!("llc".parse(), Ok(DomainSpec::Llc));
        assert_eq!(" LLC ".parse(), Ok(DomainSpec::Llc));
        assert_eq!("numa".parse(), Ok(DomainSpec::Numa));
        assert_eq!("Numa".parse(), Ok(DomainSpec::Numa));
        assert_eq!("2".parse(), Ok(DomainSpec::Count(2)));
        assert_eq!("64".parse(), Ok(DomainSpec::Count(64)));
    }

    #[test]
    fn display_round_trips() {
        for spec in [
            DomainSpec::Single,
            DomainSpec::Llc,
            DomainSpec::Numa,
            DomainSpec::Count(3),
        ] {
            assert_eq!(spec.to_string().parse(), Ok(spec));
        }
    }

    #[test]
    fn rejects_negative_and_signed_numbers() {
        assert!("-2".parse::<DomainSpec>().is_err());
        assert!("+2".parse::<DomainSpec>().is_err());
        assert!("2.5".parse::<DomainSpec>().is_err());
    }

    #[test]
    fn rejects_overflowing_numbers() {
        let err = "99999999999".parse::<DomainSpec>().unwrap_err().to_string();
        assert!(err.contains("too large"), "{err}");
    }
}
