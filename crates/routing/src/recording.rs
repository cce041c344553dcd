//! Which calls are recorded: a queue's recording policy applied to one interaction.
//!
//! Pure and deterministic: a `percent` policy picks calls by a hash of the interaction id (not
//! a random draw), so the decision for a call is the same on every node, after a restart and in
//! a replay, and about `percent` of the calls of a queue are picked.

use switchboard_model::{InteractionId, RecordingMode};

/// The bucket (0..100) of an interaction for a `percent` policy: FNV-1a over the id's 16 bytes,
/// then the SplitMix64 finaliser so that ids differing in a few bits (UUIDv7s made in the same
/// millisecond) spread over all buckets.
pub fn recording_bucket(interaction: InteractionId) -> u8 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in interaction.uuid().as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    (h % 100) as u8
}

/// Whether a call of a queue with this policy is recorded from its start. `on_demand` and
/// `none` never are (an on-demand recording starts through the API); `percent` above 100
/// counts as 100.
pub fn should_record(mode: RecordingMode, percent: u8, interaction: InteractionId) -> bool {
    match mode {
        RecordingMode::All => true,
        RecordingMode::None | RecordingMode::OnDemand => false,
        RecordingMode::Percent => recording_bucket(interaction) < percent.min(100),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> InteractionId {
        InteractionId::from_u128(n)
    }

    #[test]
    fn all_none_and_on_demand_ignore_the_percent() {
        for n in 0..50 {
            assert!(should_record(RecordingMode::All, 0, id(n)));
            assert!(!should_record(RecordingMode::None, 100, id(n)));
            assert!(!should_record(RecordingMode::OnDemand, 100, id(n)));
        }
    }

    #[test]
    fn percent_zero_and_hundred_are_exact() {
        for n in 0..1000 {
            assert!(!should_record(RecordingMode::Percent, 0, id(n)));
            assert!(should_record(RecordingMode::Percent, 100, id(n)));
            assert!(should_record(RecordingMode::Percent, 255, id(n)));
        }
    }

    #[test]
    fn percent_picks_about_that_share_and_the_same_calls_every_time() {
        // ids shaped like UUIDv7s of one burst: same millisecond, sequential low bits
        let base: u128 = 0x0193_8a4f_1c2e_7000_8000_0000_0000_0000;
        let ids: Vec<InteractionId> = (0..10_000u128).map(|n| id(base + n)).collect();
        for percent in [1u8, 10, 30, 50, 90] {
            let picked = ids
                .iter()
                .filter(|i| should_record(RecordingMode::Percent, percent, **i))
                .count();
            let expected = 100 * usize::from(percent);
            // within 1.5 percentage points of 10,000 draws
            assert!(
                picked.abs_diff(expected) <= 150,
                "{percent}%: {picked} of 10000"
            );
            let again = ids
                .iter()
                .filter(|i| should_record(RecordingMode::Percent, percent, **i))
                .count();
            assert_eq!(picked, again);
        }
    }

    #[test]
    fn a_larger_percent_keeps_every_call_a_smaller_one_picked() {
        for n in 0..2000 {
            let i = id(n * 7919);
            if should_record(RecordingMode::Percent, 20, i) {
                assert!(should_record(RecordingMode::Percent, 21, i));
            }
        }
    }

    #[test]
    fn buckets_are_pinned() {
        // A change of the hash would re-pick which calls of a running queue are recorded;
        // pin it so that such a change is deliberate.
        let b: Vec<u8> = (0..5).map(|n| recording_bucket(id(n))).collect();
        assert_eq!(b, PINNED);
    }

    const PINNED: [u8; 5] = [59, 56, 1, 74, 38];
}
