//! `advise`: measures the candidates on the user's workload and recommends one, with the
//! measured ratios and the settings to use.

use crate::cli::AdviseArgs;
use crate::maps::{Family, MapEntry, select};
use crate::plan::{Plan, cores};
use crate::report::{mops, ratio};
use crate::results::{Results, Row};
use crate::workload::{Case, Dist, Workload};
use std::fmt::Write;
use std::path::PathBuf;

/// The shard count a default-built `ShardedMap` gets on this machine.
fn default_shards() -> usize {
    lanemap::ShardedMap::<u64, u64>::new().shard_count()
}

/// The plan for `args`: every selected map, plus `ShardedMap` at a few shard counts around the
/// thread count, on one case.
pub fn plan(args: &AdviseArgs, out_dir: PathBuf, command: String) -> Plan {
    let threads = args.threads.unwrap_or_else(cores);
    let dist = args
        .zipf
        .map_or(Dist::Uniform, |exponent| Dist::Zipf { exponent });
    let case = Case {
        workload: Workload::gradient(args.read),
        dist,
        keys: args.keys,
    };
    let mut maps: Vec<MapEntry> = Vec::new();
    for entry in select(&args.maps) {
        let variants: Vec<MapEntry> =
            if entry.family == Family::Lanemap && entry.name.contains("ShardedMap") {
                let mut counts: Vec<usize> = [threads, 4 * threads, 16 * threads]
                    .iter()
                    .map(|n| n.next_power_of_two())
                    .collect();
                counts.retain(|&n| n != default_shards() && n <= 1 << 16);
                counts.dedup();
                counts
                    .into_iter()
                    .map(|n| MapEntry {
                        name: format!("{}, {n} shards", entry.name),
                        shards: Some(n),
                        ..entry.clone()
                    })
                    .collect()
            } else {
                Vec::new()
            };
        let is_sharded = entry.family == Family::Lanemap && entry.name.contains("ShardedMap");
        let entry = if is_sharded {
            // Name the default's shard count too, so the ranking shows every setting tried.
            MapEntry {
                name: format!("{}, {} shards (default)", entry.name, default_shards()),
                ..entry
            }
        } else {
            entry
        };
        maps.push(entry);
        maps.extend(variants);
    }
    Plan {
        title: "advise".into(),
        command,
        cases: vec![case],
        threads: vec![threads],
        maps,
        reps: args.reps as usize,
        ops: args.ops,
        duration: None,
        value_bytes: args.value_bytes,
        default_hasher: false,
        seed: args.seed,
        sample_every: 64,
        growth_inserts: 0,
        memory_entries: (args.keys as u64).min(1 << 22),
        shards: None,
        out_dir,
    }
}

/// How to build the map named `name` (as the bench names it) for `keys` keys.
fn settings(name: &str, keys: usize) -> String {
    let hasher = "foldhash::fast::RandomState::default()";
    if name.contains("ShardedMap") {
        let shards = name
            .rsplit_once(", ")
            .and_then(|(_, s)| s.trim_end_matches(" (default)").strip_suffix(" shards"))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(default_shards);
        format!("lanemap::ShardedMap::builder().shards({shards}).capacity({keys}).build()")
    } else if name.contains("HashMap (pinned per thread)") {
        format!(
            "lanemap::HashMap::with_capacity({keys}), with one `map.pin()` per thread, \
             `refresh()`ed every few hundred operations"
        )
    } else if name.starts_with("lanemap HashMap") {
        format!("lanemap::HashMap::with_capacity({keys}), through its plain methods")
    } else if name.starts_with("dashmap") {
        format!("dashmap::DashMap::with_capacity_and_hasher({keys}, {hasher})")
    } else if name.contains("guard per thread") {
        format!(
            "papaya::HashMap::builder().capacity({keys}).hasher({hasher}).build(), \
             with one `map.guard()` per thread, refreshed every few hundred operations"
        )
    } else if name.starts_with("papaya") {
        format!(
            "papaya::HashMap::builder().capacity({keys}).hasher({hasher}).build(), with `map.pin()` per operation"
        )
    } else if name.starts_with("scc") {
        format!("scc::HashMap::with_capacity_and_hasher({keys}, {hasher})")
    } else if name.starts_with("flurry") {
        format!("flurry::HashMap::with_capacity_and_hasher({keys}, {hasher})")
    } else {
        format!("{name} built with with_capacity_and_hasher({keys}, {hasher})")
    }
}

/// The recommendation text for a finished advise run.
pub fn recommend(plan: &Plan, results: &Results) -> String {
    let mut out = String::new();
    let Some(block) = results.blocks.first() else {
        return "No measurement finished, so there is nothing to recommend.\n".into();
    };
    let mut ranked: Vec<&Row> = block
        .rows
        .iter()
        .filter(|r| r.family != Family::Limit && !r.mops.is_empty())
        .collect();
    ranked.sort_by(|a, b| b.median.total_cmp(&a.median));
    let Some(best) = ranked.first() else {
        return "No map was measured, so there is nothing to recommend.\n".into();
    };
    let case = &block.case;
    let _ = writeln!(
        out,
        "Advice for {} ({}), {}, {} keys, {} threads, {}-byte values:\n",
        case.workload.name,
        case.workload.mix,
        case.dist,
        case.keys,
        block.threads,
        plan.value_bytes
    );
    let _ = writeln!(out, "  Use {}.", best.map);
    if let Some(second) = ranked.get(1) {
        let _ = writeln!(
            out,
            "  It ran {} as fast as the runner-up, {} (median of {} repetitions), and reached {} of the ideal.",
            ratio(Some(best.median / second.median.max(1e-9))),
            second.map,
            best.mops.len(),
            ratio(best.vs_ideal)
        );
        if best.min <= second.max {
            let _ = writeln!(
                out,
                "  Their spreads overlap ({}–{} vs {}–{} Mop/s): on this machine they are tied. \
                 Rerun with more --reps, or choose between them by API.",
                mops(best.min),
                mops(best.max),
                mops(second.min),
                mops(second.max)
            );
        }
    }
    let _ = writeln!(out, "  Settings: {}", settings(&best.map, case.keys));
    if best.family != Family::Lanemap {
        if let Some(ours) = ranked.iter().find(|r| r.family == Family::Lanemap) {
            let _ = writeln!(
                out,
                "  lanemap's best here, {}, ran at {} of it.",
                ours.map,
                ratio(Some(ours.median / best.median.max(1e-9)))
            );
        }
    }
    let _ = writeln!(
        out,
        "\n  Ranking (median Mop/s, min–max, × the recommended map, × ideal):"
    );
    for (i, row) in ranked.iter().enumerate() {
        let _ = writeln!(
            out,
            "  {:>2}. {:<40} {:>7}  {:>13}  {:>6}  {:>6}",
            i + 1,
            row.map,
            mops(row.median),
            format!("{}–{}", mops(row.min), mops(row.max)),
            ratio(Some(row.median / best.median.max(1e-9))),
            ratio(row.vs_ideal)
        );
    }
    if let Some(memory) = results.memory.iter().find(|m| m.map == best.map) {
        let _ = writeln!(
            out,
            "\n  Memory: {:.1} bytes per entry ({} the limit's) at {} entries.",
            memory.bytes_per_entry,
            ratio(memory.vs_limit),
            memory.entries
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    #[test]
    fn advise_plans_shard_variants_of_sharded_map() {
        let cli = Cli::try_parse_from([
            "lanemap-bench",
            "advise",
            "--read",
            "90",
            "--threads",
            "3",
            "--keys",
            "5000",
        ])
        .unwrap();
        let Some(Command::Advise(args)) = cli.command else {
            panic!()
        };
        let plan = plan(&args, PathBuf::from("x"), "advise".into());
        assert_eq!(plan.cases[0].workload.mix.get, 90.0);
        assert_eq!(plan.threads, [3]);
        let variants: Vec<Option<usize>> = plan
            .maps
            .iter()
            .filter(|m| m.name.contains("ShardedMap"))
            .map(|m| m.shards)
            .collect();
        assert!(variants.len() >= 2, "{variants:?}");
        assert!(variants.iter().flatten().all(|n| n.is_power_of_two()));
    }

    #[test]
    fn settings_name_the_type_and_how_to_hold_it() {
        let pinned = settings("lanemap HashMap (pinned per thread)", 1000);
        assert!(
            pinned.starts_with("lanemap::HashMap::with_capacity(1000)"),
            "{pinned}"
        );
        assert!(
            pinned.contains("map.pin()") && pinned.contains("refresh()"),
            "{pinned}"
        );
        let plain = settings("lanemap HashMap", 1000);
        assert!(
            plain.starts_with("lanemap::HashMap::with_capacity(1000)"),
            "{plain}"
        );
        assert!(!plain.contains("pin"), "{plain}");
        let sharded = settings("lanemap ShardedMap, 16 shards", 1000);
        assert_eq!(
            sharded,
            "lanemap::ShardedMap::builder().shards(16).capacity(1000).build()"
        );
    }
}
