//! Several threads share one `ShardedMap`: they count page hits, claim jobs atomically and
//! keep a running balance; then the example prints what they did and checks the totals.
//!
//! Run with `cargo run --release --example quickstart`.

use lanemap::{Computed, Op, ShardedMap};
use std::thread;
use std::time::Instant;

const THREADS: u64 = 4;
const PAGES: u64 = 1_000;
const VISITS_PER_THREAD: u64 = 250_000;

fn main() {
    let hits: ShardedMap<u64, u64> = ShardedMap::new();
    let claimed_by: ShardedMap<u64, u64> = ShardedMap::new();
    let balance: ShardedMap<&str, i64> = ShardedMap::new();
    balance.insert("account", 0);

    let started = Instant::now();
    thread::scope(|s| {
        for thread_id in 0..THREADS {
            let (hits, claimed_by, balance) = (&hits, &claimed_by, &balance);
            s.spawn(move || {
                let mut page = thread_id;
                for _ in 0..VISITS_PER_THREAD {
                    // A cheap xorshift walk over the pages, different per thread.
                    page ^= page << 13;
                    page ^= page >> 7;
                    page ^= page << 17;
                    hits.upsert(page % PAGES, || 1, |n| *n += 1);
                }
                // Every thread tries to claim every job; exactly one wins each.
                for job in 0..PAGES {
                    claimed_by.get_or_insert_with(job, || thread_id);
                }
                // Deposits and withdrawals that must not lose updates.
                for i in 0..10_000 {
                    let delta = if i % 2 == 0 { 3 } else { -1 };
                    balance.update("account", |b| *b += delta);
                }
            });
        }
    });
    let elapsed = started.elapsed();

    let total_hits: u64 = hits.values().sum();
    let mut claims = vec![0u64; THREADS as usize];
    claimed_by.for_each(|_, &owner| claims[owner as usize] += 1);
    let final_balance = balance.get("account").unwrap_or_default();

    println!("{THREADS} threads shared three ShardedMaps for {elapsed:.2?}:");
    println!(
        "  page hits: {total_hits} counted over {} pages",
        hits.len()
    );
    println!("  job claims per thread: {claims:?} (each of {PAGES} jobs claimed once)");
    println!(
        "  balance after {} updates: {final_balance}",
        THREADS * 10_000
    );

    // Nothing was lost.
    assert_eq!(total_hits, THREADS * VISITS_PER_THREAD);
    assert_eq!(claims.iter().sum::<u64>(), PAGES);
    assert_eq!(final_balance, THREADS as i64 * 5_000 * 2);

    // Close the account atomically: withdraw everything, and remove it in the same step.
    let closed = balance.compute("account", |b| match b {
        Some(_) => Op::Remove,
        None => Op::Keep,
    });
    assert_eq!(closed, Computed::Removed(final_balance));
    assert!(balance.is_empty());
    println!("  all totals check out; the account was closed with {final_balance} in it");
}
