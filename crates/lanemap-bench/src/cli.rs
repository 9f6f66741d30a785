//! The command line: `lanemap-bench [quick | run ... | advise ... | maps]`.

use crate::maps::{Family, select};
use crate::plan::{CACHE_KEYS, DRAM_KEYS, Plan, cores};
use crate::workload::{Case, Dist, Mix, Workload};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

/// Measures lanemap's concurrent maps against their peers and against the limit.
///
/// With no command, runs the quick comparison (under three minutes on two idle cores): every map on
/// read-heavy, exchange, rapid-grow and Zipfian read-heavy work at 1 and 2 threads. Results are
/// printed as a table and written (Markdown, CSV, JSON, SVG charts) to a report folder whose
/// path is printed at the end. Ctrl-C stops the run and still writes what was measured.
///
/// Every map hashes with foldhash unless `--hasher default`. The limit is a single-threaded
/// `hashbrown::HashMap` with no synchronisation on the same operations; the ideal at N threads
/// is its figure times min(N, cores). The machine's noise moves absolute figures between runs:
/// compare the ratios of one run.
#[derive(Debug, Parser)]
#[command(name = "lanemap-bench", version, about, long_about, after_help = EXAMPLES)]
pub struct Cli {
    /// What to do (default: the quick comparison).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The folder to write the report to [default: reports/<UTC time>].
    #[arg(long, short, global = true, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Hide the progress bar.
    #[arg(long, short, global = true)]
    pub quiet: bool,
}

const EXAMPLES: &str = "\
Examples:
  lanemap-bench                                   the quick comparison
  lanemap-bench run --workload all --dist uniform,zipf --keys cache,dram --threads 1,2,4
  lanemap-bench run --mix get=90,insert=5,remove=5 --keys 1000000 --duration 1s
  lanemap-bench advise --read 95 --keys 1000000 --zipf 0.99 --threads 8 --value-bytes 64
  lanemap-bench maps                              list the maps and crate versions";

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The quick comparison (also what no command does).
    Quick,
    /// A full, configurable run.
    Run(RunArgs),
    /// Measure the candidates on your workload and recommend a map and its settings.
    Advise(AdviseArgs),
    /// List the maps and the crate versions they were built with.
    Maps,
}

/// Hasher choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HasherArg {
    /// foldhash with a fixed seed, for every map (fair and repeatable).
    Fold,
    /// Each crate's own default (SipHash for most; hashbrown and lanemap use foldhash).
    Default,
}

/// Key distribution choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DistArg {
    /// Every key equally likely.
    Uniform,
    /// Zipfian hot keys (exponent from --zipf).
    Zipf,
}

/// Options of `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Workloads: read-heavy, exchange, rapid-grow, the gradients 99/1, 95/5, 90/10, 75/25,
    /// 50/50 (reads/writes; writes are half updates, a quarter each inserts and removes), or
    /// the groups presets, gradients, all [default: presets, or only the custom mix with --mix].
    #[arg(long, short, value_delimiter = ',', value_name = "LIST")]
    pub workload: Vec<String>,
    /// A custom mix, e.g. get=90,insert=5,remove=5 (get, insert, remove, update; adds up to 100).
    #[arg(long, value_parser = Mix::parse, value_name = "MIX")]
    pub mix: Option<Mix>,
    /// Percent of the key space inserted before a custom mix starts (0: start empty and grow).
    #[arg(long, default_value_t = 75.0, value_parser = percent, value_name = "PCT")]
    pub prefill: f64,
    /// Key distributions of lookups and updates.
    #[arg(
        long,
        short,
        value_delimiter = ',',
        default_value = "uniform",
        value_name = "LIST"
    )]
    pub dist: Vec<DistArg>,
    /// The Zipf exponent.
    #[arg(long, default_value_t = 0.99, value_parser = exponent, value_name = "S")]
    pub zipf: f64,
    /// Thread counts [default: 1, 2 and 2×cores].
    #[arg(long, short, value_delimiter = ',', value_parser = thread_count, value_name = "LIST")]
    pub threads: Vec<usize>,
    /// Key counts (table sizes): numbers, `cache` (2^16, cache-resident) or `dram` (2^22).
    #[arg(long, short, value_delimiter = ',', default_value = "cache,dram", value_parser = key_count, value_name = "LIST")]
    pub keys: Vec<usize>,
    /// Value size in bytes: 8 (a u64) or 64.
    #[arg(long, default_value_t = 8, value_parser = value_bytes, value_name = "BYTES")]
    pub value_bytes: usize,
    /// Seed of the operation streams.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Repetitions of every trial (maps interleaved within each); the median is reported.
    #[arg(long, short, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000), value_name = "N")]
    pub reps: u32,
    /// Operations per trial, over all threads (growing workloads run until the table holds
    /// the key count instead).
    #[arg(long, default_value_t = 4_000_000, value_parser = op_count, value_name = "N")]
    pub ops: u64,
    /// Run each trial for this long (e.g. 500ms, 2s) instead of a fixed operation count;
    /// streams are replayed from the start when they run out.
    #[arg(long, value_parser = duration, value_name = "TIME", conflicts_with = "ops")]
    pub duration: Option<Duration>,
    /// Only the maps whose names contain one of these words (the limit always runs).
    #[arg(long, short, value_delimiter = ',', value_name = "LIST")]
    pub maps: Vec<String>,
    /// Hasher for every map.
    #[arg(long, value_enum, default_value_t = HasherArg::Fold)]
    pub hasher: HasherArg,
    /// Shard count for the sharded maps (lanemap ShardedMap, dashmap) [default: their own].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=65536), value_name = "N")]
    pub shards: Option<u32>,
    /// Inserts of the resize-pause trial, from an empty map (0 skips it).
    #[arg(long, default_value_t = 1 << 22, value_name = "N")]
    pub growth_inserts: u64,
    /// Entries of the memory trial (0 skips it).
    #[arg(long, default_value_t = 1 << 20, value_name = "N")]
    pub memory_entries: u64,
    /// Time one operation in this many for the latency percentiles.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=1_000_000), value_name = "N")]
    pub sample_every: u32,
}

/// Options of `advise`.
#[derive(Debug, Args)]
pub struct AdviseArgs {
    /// Percent of operations that are reads; the rest are writes (half updates, a quarter each
    /// inserts and removes).
    #[arg(long, default_value_t = 95.0, value_parser = percent, value_name = "PCT")]
    pub read: f64,
    /// Number of keys in the table.
    #[arg(long, short, default_value_t = 1_000_000, value_parser = key_count, value_name = "N")]
    pub keys: usize,
    /// Zipf exponent of the key popularity (leave out for uniform keys).
    #[arg(long, value_parser = exponent, value_name = "S")]
    pub zipf: Option<f64>,
    /// Threads that will use the map [default: cores].
    #[arg(long, short, value_parser = thread_count, value_name = "N")]
    pub threads: Option<usize>,
    /// Value size in bytes: 8 or 64.
    #[arg(long, default_value_t = 8, value_parser = value_bytes, value_name = "BYTES")]
    pub value_bytes: usize,
    /// Repetitions.
    #[arg(long, short, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=1000), value_name = "N")]
    pub reps: u32,
    /// Operations per trial.
    #[arg(long, default_value_t = 2_000_000, value_parser = op_count, value_name = "N")]
    pub ops: u64,
    /// Only the maps whose names contain one of these words.
    #[arg(long, short, value_delimiter = ',', value_name = "LIST")]
    pub maps: Vec<String>,
    /// Seed of the operation streams.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

fn percent(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number"))?;
    if (0.0..=100.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!("{value} is not between 0 and 100"))
    }
}

fn exponent(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number"))?;
    if value.is_finite() && (0.0..=10.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!(
            "the Zipf exponent must be between 0 and 10, not {value}"
        ))
    }
}

fn thread_count(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n @ 1..=1024) => Ok(n),
        _ => Err(format!("`{text}` is not a thread count between 1 and 1024")),
    }
}

/// Parses a key count: a number (underscores allowed), `cache` or `dram`.
pub fn key_count(text: &str) -> Result<usize, String> {
    match text.trim() {
        "cache" => Ok(CACHE_KEYS),
        "dram" => Ok(DRAM_KEYS),
        other => match other.replace('_', "").parse::<usize>() {
            Ok(n @ 1..=1_000_000_000) => Ok(n),
            _ => Err(format!(
                "`{text}` is not a key count (1 to 10^9, `cache` or `dram`)"
            )),
        },
    }
}

fn op_count(text: &str) -> Result<u64, String> {
    match text.replace('_', "").parse::<u64>() {
        Ok(n @ 1..=100_000_000_000) => Ok(n),
        _ => Err(format!("`{text}` is not an operation count (1 to 10^11)")),
    }
}

fn value_bytes(text: &str) -> Result<usize, String> {
    match text {
        "8" | "u64" => Ok(8),
        "64" | "64b" => Ok(64),
        _ => Err(format!("`{text}`: the value size must be 8 or 64 bytes")),
    }
}

/// Parses `500ms`, `2s`, `1.5s` or `1.5` (seconds).
pub fn duration(text: &str) -> Result<Duration, String> {
    let (number, scale) = if let Some(ms) = text.strip_suffix("ms") {
        (ms, 1e-3)
    } else {
        (text.strip_suffix('s').unwrap_or(text), 1.0)
    };
    match number.trim().parse::<f64>() {
        Ok(value) if value > 0.0 && value * scale <= 3600.0 => {
            Ok(Duration::from_secs_f64(value * scale))
        }
        _ => Err(format!(
            "`{text}` is not a duration like 500ms or 2s (at most an hour)"
        )),
    }
}

impl RunArgs {
    /// Turns the options into a plan.
    ///
    /// # Errors
    /// A message for options that parse but do not fit together (an unknown workload name, a
    /// map filter that matches nothing).
    pub fn plan(&self, out_dir: PathBuf, command: String) -> Result<Plan, String> {
        let mut workloads = Vec::new();
        let names: Vec<String> = if self.workload.is_empty() && self.mix.is_none() {
            vec!["presets".into()]
        } else {
            self.workload.clone()
        };
        for name in &names {
            for workload in Workload::by_name(name.trim())? {
                if !workloads.contains(&workload) {
                    workloads.push(workload);
                }
            }
        }
        if let Some(mix) = self.mix {
            workloads.push(Workload {
                name: "custom".into(),
                mix,
                prefill: self.prefill / 100.0,
            });
        }
        let mut dists: Vec<Dist> = Vec::new();
        for dist in &self.dist {
            let dist = match dist {
                DistArg::Uniform => Dist::Uniform,
                DistArg::Zipf => Dist::Zipf {
                    exponent: self.zipf,
                },
            };
            if !dists.contains(&dist) {
                dists.push(dist);
            }
        }
        let mut cases = Vec::new();
        for workload in &workloads {
            for &dist in &dists {
                for &keys in &self.keys {
                    cases.push(Case {
                        workload: workload.clone(),
                        dist,
                        keys,
                    });
                }
            }
        }
        let maps = select(&self.maps);
        if !self.maps.is_empty() && maps.iter().all(|m| m.family == Family::Limit) {
            return Err(format!(
                "no map matches {:?} (see `lanemap-bench maps`)",
                self.maps
            ));
        }
        let mut threads = if self.threads.is_empty() {
            default_threads()
        } else {
            self.threads.clone()
        };
        threads.dedup();
        Ok(Plan {
            title: format!(
                "run: {} · {} · {} keys",
                workloads
                    .iter()
                    .map(|w| w.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                dists
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                self.keys
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            command,
            cases,
            threads,
            maps,
            reps: self.reps as usize,
            ops: self.ops,
            duration: self.duration,
            value_bytes: self.value_bytes,
            default_hasher: self.hasher == HasherArg::Default,
            seed: self.seed,
            sample_every: self.sample_every as usize,
            growth_inserts: self.growth_inserts,
            memory_entries: self.memory_entries,
            shards: self.shards.map(|s| s as usize),
            out_dir,
        })
    }
}

/// 1, 2 and 2×cores, without repeats.
pub fn default_threads() -> Vec<usize> {
    let mut threads = vec![1, 2, 2 * cores()];
    threads.sort_unstable();
    threads.dedup();
    threads
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("lanemap-bench").chain(args.iter().copied()))
    }

    fn run_plan(args: &[&str]) -> Result<Plan, String> {
        match parse(args).map_err(|e| e.to_string())?.command {
            Some(Command::Run(run)) => run.plan(PathBuf::from("out"), "test".into()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn no_arguments_means_the_quick_run() {
        let cli = parse(&[]).unwrap();
        assert!(cli.command.is_none());
        assert!(matches!(
            parse(&["quick", "--out", "x"]).unwrap().command,
            Some(Command::Quick)
        ));
    }

    #[test]
    fn run_options_become_a_plan() {
        let plan = run_plan(&[
            "run",
            "--workload",
            "read-heavy,95/5",
            "--dist",
            "uniform,zipf",
            "--zipf",
            "1.2",
            "--keys",
            "cache,1_000",
            "--threads",
            "1,4",
            "--reps",
            "2",
            "--value-bytes",
            "64",
            "--maps",
            "sharded,dash",
            "--hasher",
            "default",
        ])
        .unwrap();
        assert_eq!(plan.cases.len(), 2 * 2 * 2);
        assert_eq!(plan.cases[1].keys, 1000);
        assert_eq!(plan.cases[0].keys, CACHE_KEYS);
        assert!(
            plan.cases
                .iter()
                .any(|c| c.dist == Dist::Zipf { exponent: 1.2 })
        );
        assert_eq!(plan.threads, [1, 4]);
        assert_eq!(
            (plan.reps, plan.value_bytes, plan.default_hasher),
            (2, 64, true)
        );
        let names: Vec<&str> = plan.maps.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "lanemap ShardedMap",
                "dashmap",
                "limit: hashbrown, 1 thread"
            ]
        );
    }

    #[test]
    fn a_custom_mix_replaces_the_presets() {
        let plan =
            run_plan(&["run", "--mix", "get=90,insert=5,remove=5", "--prefill", "0"]).unwrap();
        assert_eq!(plan.cases.len(), 2); // cache and dram
        assert_eq!(plan.cases[0].workload.name, "custom");
        assert!(plan.cases[0].workload.grows());
        assert_eq!(plan.threads, default_threads());
        assert_eq!(plan.duration, None);
        let plan = run_plan(&["run", "--duration", "250ms"]).unwrap();
        assert_eq!(plan.duration, Some(Duration::from_millis(250)));
    }

    #[test]
    fn bad_arguments_are_rejected_with_a_reason() {
        for (args, reason) in [
            (&["run", "--threads", "0"][..], "thread count"),
            (&["run", "--mix", "get=50"], "add up to 50"),
            (&["run", "--value-bytes", "16"], "8 or 64"),
            (&["run", "--zipf=-1"], "Zipf exponent"),
            (&["run", "--keys", "lots"], "key count"),
            (&["run", "--duration", "soon"], "duration"),
            (
                &["run", "--ops", "5", "--duration", "1s"],
                "cannot be used with",
            ),
            (&["advise", "--read", "120"], "between 0 and 100"),
            (&["frobnicate"], "unrecognized subcommand"),
        ] {
            let error = parse(args).unwrap_err().to_string();
            assert!(error.contains(reason), "{args:?}: {error}");
        }
        assert!(
            run_plan(&["run", "--workload", "write-only"])
                .unwrap_err()
                .contains("unknown workload")
        );
        assert!(
            run_plan(&["run", "--maps", "nosuchmap"])
                .unwrap_err()
                .contains("no map matches")
        );
    }

    #[test]
    fn advise_options_parse() {
        let cli = parse(&[
            "advise",
            "--read",
            "95",
            "--keys",
            "1000000",
            "--zipf",
            "0.99",
            "--threads",
            "8",
            "--value-bytes",
            "64",
        ])
        .unwrap();
        let Some(Command::Advise(advise)) = cli.command else {
            panic!()
        };
        assert_eq!(
            (
                advise.read,
                advise.keys,
                advise.zipf,
                advise.threads,
                advise.value_bytes
            ),
            (95.0, 1_000_000, Some(0.99), Some(8), 64)
        );
    }
}
