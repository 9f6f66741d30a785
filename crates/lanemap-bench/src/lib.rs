//! `lanemap-bench`: measures lanemap's maps against their peers and against the limit (a
//! single-threaded `hashbrown::HashMap` with no synchronisation), on the same pre-generated
//! operation streams, and reports throughput ratios, latency percentiles, resize pauses and
//! memory use as a terminal table, Markdown, CSV, JSON and SVG charts.
//!
//! The binary's `--help` documents the commands. The modules, in the order a run uses them:
//! [`cli`] parses the arguments into a [`plan::Plan`]; [`workload`], [`zipf`] and [`stream`]
//! describe and generate the operations; [`maps`] adapts every map to one trait; [`runner`]
//! measures one map on one task; [`bench`] runs the plan (repetitions, interleaving, progress,
//! Ctrl-C) into [`results`]; [`report`] writes them out; [`advise`] turns them into a
//! recommendation.

pub mod advise;
pub mod bench;
pub mod cli;
pub mod environment;
pub mod latency;
pub mod maps;
pub mod memory;
pub mod plan;
pub mod report;
pub mod results;
pub mod runner;
pub mod stream;
pub mod value;
pub mod workload;
pub mod zipf;
