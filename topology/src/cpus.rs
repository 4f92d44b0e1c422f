//! Printing CPU lists the way the kernel does (`0-3,8,10-11`).

/// Formats CPU indices as the kernel's cpulist syntax: runs of consecutive
/// CPUs become `a-b`, isolated CPUs stay alone, items are comma separated.
///
/// The input does not have to be sorted or deduplicated; the output always
/// is. An empty list prints as an empty string.
///
/// ```
/// assert_eq!(topology::format_cpu_ranges(&[0, 1, 2, 3, 8, 10, 11]), "0-3,8,10-11");
/// ```
pub fn format_cpu_ranges(cpus: &[u32]) -> String {
    let mut sorted = cpus.to_vec();
    sorted.sort_unstable();
    sorted.dedup();

    let mut runs: Vec<(u32, u32)> = Vec::new();
    for cpu in sorted {
        match runs.last_mut() {
            Some((_, end)) if end.checked_add(1) == Some(cpu) => *end = cpu,
            _ => runs.push((cpu, cpu)),
        }
    }
    runs.iter()
        .map(|&(start, end)| {
            if start == end {
                start.to_string()
            } else {
                format!("{start}-{end}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::format_cpu_ranges;

    #[test]
    fn empty_is_empty_string() {
        assert_eq!(format_cpu_ranges(&[]), "");
    }

    #[test]
    fn single_cpu() {
        assert_eq!(format_cpu_ranges(&[7]), "7");
        assert_eq!(format_cpu_ranges(&[0]), "0");
    }

    #[test]
    fn two_consecutive_cpus_are_a_range() {
        assert_eq!(format_cpu_ranges(&[10, 11]), "10-11");
    }

    #[test]
    fn mixed_runs_and_singletons() {
        assert_eq!(format_cpu_ranges(&[0, 1, 2, 3, 8, 10, 11]), "0-3,8,10-11");
        assert_eq!(format_cpu_ranges(&[0, 2, 4]), "0,2,4");
    }

    #[test]
    fn unsorted_and_duplicated_input() {
        assert_eq!(format_cpu_ranges(&[3, 1, 2, 2, 0, 9]), "0-3,9");
    }

    #[test]
    fn no_overflow_at_u32_max() {
        assert_eq!(format_cpu_ranges(&[u32::MAX - 1, u32::MAX]), "4294967294-4294967295");
        assert_eq!(format_cpu_ranges(&[0, u32::MAX]), "0,4294967295");
    }

    #[test]
    fn smt_style_numbering() {
        let cpus: Vec<u32> = (0..4).chain(32..36).collect();
        assert_eq!(format_cpu_ranges(&cpus), "0-3,32-35");
    }
}
