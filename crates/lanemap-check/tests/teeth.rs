//! The checker has teeth: it accepts a correct map and catches each deliberately broken one
//! within a CI-sized budget, reporting a small readable witness.

use lanemap_check::CheckedMap;
use lanemap_check::broken::{CheckThenActMap, LockedMap, LostUpdateMap, StaleReadMap};
use lanemap_check::workload::{Failure, Mix, Stress, stress};

/// Few keys and every operation often, so that the racing operations meet.
fn configs() -> impl Iterator<Item = Stress> {
    [(2, 1), (4, 4), (2, 4)]
        .into_iter()
        .map(|(threads, keys)| Stress {
            threads,
            keys,
            mix: Mix::ALL_OPS,
            ops_per_round: 2000,
            capacity: 0,
        })
}

fn must_catch<M: CheckedMap>(name: &str) -> Failure {
    for (i, cfg) in configs().enumerate() {
        if let Err(failure) = stress::<M>(&cfg, 2_000_000, 0x7EE7 + i as u64) {
            println!("{name} caught:\n{failure}\n");
            return failure;
        }
    }
    panic!("the checker missed the bug in {name}");
}

/// Checks that `M`'s bug is caught with a shrunk witness (at most 12 operations) that names
/// `operation`, the one the bug is in.
fn must_catch_in<M: CheckedMap>(name: &str, operation: &str) {
    let failure = must_catch::<M>(name);
    assert!(
        failure.violation.witness.len() <= 12,
        "witness not shrunk:\n{failure}"
    );
    assert!(failure.to_string().contains(operation), "{failure}");
}

#[test]
fn catches_check_then_act_insert_if_absent() {
    must_catch_in::<CheckThenActMap>("CheckThenActMap", "get_or_insert_with");
}

#[test]
fn catches_lost_update() {
    must_catch_in::<LostUpdateMap>("LostUpdateMap", "update");
}

/// A get that misses a write which returned before it was called is caught, fences and all
/// (see `workload::run_round`).
#[test]
fn catches_stale_read() {
    must_catch_in::<StaleReadMap>("StaleReadMap", "get");
}

#[test]
fn accepts_a_correct_map() {
    for cfg in configs() {
        if let Err(failure) = stress::<LockedMap>(&cfg, 50_000, 3) {
            panic!("false alarm on the reference map:\n{failure}");
        }
    }
}
