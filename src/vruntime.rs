//! Virtual runtime: how much CPU a task has had, scaled by its weight.
//!
//! This is the scx_userland example's arithmetic, in integer nanoseconds:
//!
//! ```text
//! vruntime += (sum_exec_runtime - charged_exec_runtime) * 100 / weight
//! vruntime  = max(vruntime, min_vruntime)      // no credit for sleeping
//! ```
//!
//! `weight` is the kernel's sched_ext weight (1..=10000, 100 at nice 0), so a
//! nice-0 task's vruntime advances at wall-clock speed and a heavier task's
//! more slowly. A domain's `min_vruntime` is the vruntime of the task it last
//! dispatched; raising newcomers to it keeps a task that slept for a long time
//! from monopolising the CPU when it wakes.
//!
//! Invariants: nothing here overflows or divides by zero, whatever the kernel
//! reports. A runtime that went backwards (it cannot, but the record crossed
//! a trust boundary) charges nothing; the product is computed in 128 bits and
//! the sum saturates, so an absurd runtime pins a task at the end of the queue
//! instead of wrapping it to the front.

use std::fmt;

/// Weighted virtual runtime in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Vruntime(pub u64);

/// A sched_ext task weight: 1..=10000, 100 at nice 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Weight(u32);

impl Weight {
    pub const NICE_0: Weight = Weight(100);
    pub const MIN: u32 = 1;
    pub const MAX: u32 = 10_000;

    /// The kernel never reports 0 or more than 10000; clamp anyway so that a
    /// bad record cannot divide by zero.
    pub fn new(raw: u32) -> Weight {
        Weight(raw.clamp(Self::MIN, Self::MAX))
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl Vruntime {
    /// Charges `exec_delta_ns` of real runtime at `weight`.
    pub fn charge(self, exec_delta_ns: u64, weight: Weight) -> Vruntime {
        let scaled = u128::from(exec_delta_ns) * 100 / u128::from(weight.get());
        let scaled = u64::try_from(scaled).unwrap_or(u64::MAX);
        Vruntime(self.0.saturating_add(scaled))
    }

    /// The example's clamp: a task is never behind the queue's clock.
    pub fn at_least(self, min: Vruntime) -> Vruntime {
        self.max(min)
    }

    /// How far ahead of `clock` this vruntime is (0 if behind it).
    pub fn lag_from(self, clock: Vruntime) -> u64 {
        self.0.saturating_sub(clock.0)
    }

    /// Carries a vruntime measured against `from`'s clock to `to`'s clock,
    /// keeping its lag: a task that was 3 ms ahead of its old domain's
    /// min_vruntime is 3 ms ahead of its new domain's.
    pub fn renormalise(self, from: Vruntime, to: Vruntime) -> Vruntime {
        Vruntime(to.0.saturating_add(self.lag_from(from)))
    }
}

impl fmt::Display for Vruntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ns", self.0)
    }
}

/// The new vruntime of a task that ran from `charged_exec` to `sum_exec`.
pub fn update(vruntime: Vruntime, charged_exec: u64, sum_exec: u64, weight: Weight, min: Vruntime) -> Vruntime {
    let delta = sum_exec.saturating_sub(charged_exec);
    vruntime.charge(delta, weight).at_least(min)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel's sched_prio_to_weight table scaled the way sched_ext does
    /// (weight = prio_to_weight * 100 / 1024, at least 1), nice -20..=19.
    fn nice_weights() -> Vec<u32> {
        const PRIO_TO_WEIGHT: [u64; 40] = [
            88761, 71755, 56483, 46273, 36291, 29154, 23254, 18705, 14949, 11916, 9548, 7620, 6100, 4904, 3906, 3121,
            2501, 1991, 1586, 1277, 1024, 820, 655, 526, 423, 335, 272, 215, 172, 137, 110, 87, 70, 56, 45, 36, 29, 23,
            18, 15,
        ];
        PRIO_TO_WEIGHT
            .iter()
            .map(|w| ((w * 100 / 1024).max(1)) as u32)
            .collect()
    }

    #[test]
    fn nice_zero_advances_at_wall_clock_speed() {
        assert_eq!(Vruntime(5).charge(1_000_000, Weight::NICE_0), Vruntime(1_000_005));
    }

    #[test]
    fn every_weight_scales_inversely() {
        for w in 1..=10_000u32 {
            let v = Vruntime(0).charge(10_000_000, Weight::new(w));
            assert_eq!(v.0, 1_000_000_000 / u64::from(w), "weight {w}");
        }
    }

    #[test]
    fn nice_levels_order_heavier_first() {
        let weights = nice_weights();
        assert_eq!(weights[20], 100, "nice 0 is weight 100");
        let charged: Vec<u64> = weights
            .iter()
            .map(|&w| Vruntime(0).charge(4_000_000, Weight::new(w)).0)
            .collect();
        for pair in charged.windows(2) {
            assert!(pair[0] <= pair[1], "a nicer task must not be charged less: {pair:?}");
        }
        assert!(charged[0] < charged[20] && charged[20] < charged[39]);
    }

    #[test]
    fn clamps_to_min_vruntime() {
        let min = Vruntime(1_000);
        assert_eq!(update(Vruntime(10), 0, 100, Weight::NICE_0, min), min);
        assert_eq!(update(Vruntime(2_000), 0, 100, Weight::NICE_0, min), Vruntime(2_100));
    }

    #[test]
    fn runtime_going_backwards_charges_nothing() {
        assert_eq!(
            update(Vruntime(50), 1_000, 10, Weight::NICE_0, Vruntime(0)),
            Vruntime(50)
        );
    }

    #[test]
    fn overflow_saturates() {
        assert_eq!(
            Vruntime(u64::MAX - 1).charge(u64::MAX, Weight::new(1)),
            Vruntime(u64::MAX)
        );
        assert_eq!(Vruntime(0).charge(u64::MAX, Weight::new(1)), Vruntime(u64::MAX));
        assert_eq!(Vruntime(0).charge(u64::MAX, Weight::new(10_000)).0, u64::MAX / 100);
    }

    #[test]
    fn bad_weights_are_clamped() {
        assert_eq!(Weight::new(0).get(), 1);
        assert_eq!(Weight::new(u32::MAX).get(), 10_000);
    }

    #[test]
    fn renormalise_keeps_lag() {
        assert_eq!(
            Vruntime(1_300).renormalise(Vruntime(1_000), Vruntime(50)),
            Vruntime(350)
        );
        assert_eq!(Vruntime(900).renormalise(Vruntime(1_000), Vruntime(50)), Vruntime(50));
        assert_eq!(
            Vruntime(u64::MAX).renormalise(Vruntime(0), Vruntime(10)),
            Vruntime(u64::MAX)
        );
    }
}
