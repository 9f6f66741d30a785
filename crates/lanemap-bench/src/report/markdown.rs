//! The Markdown report (`report.md`), which BENCHMARKS.md is made from.

use super::Report;
use super::svg;
use super::table::{
    Style, block_table, block_title, growth_table, layout, memory_table, summary_table,
};
use crate::latency::{Percentiles, format_nanos};
use crate::stream::OpKind;
use std::fmt::Write;

/// Renders the whole report as Markdown, with links to the SVG charts next to it.
pub fn render(report: &Report<'_>) -> String {
    let (plan, env, results) = (report.plan, report.env, report.results);
    let mut out = String::new();
    let _ = writeln!(out, "# lanemap-bench: {}\n", plan.title);
    if results.interrupted {
        let _ = writeln!(
            out,
            "**Interrupted with Ctrl-C: the results are partial.**\n"
        );
    }
    let _ = writeln!(out, "Command: `{}`\n", plan.command);
    let _ = writeln!(out, "## Environment\n");
    let items = [
        ("started (UTC)", env.started_utc.clone()),
        ("CPU", format!("{} ({} cores usable)", env.cpu, env.cores)),
        ("memory", env.memory.clone()),
        ("OS", env.os.clone()),
        (
            "compiler",
            format!("{} ({}, {} build)", env.rustc, env.target, env.profile),
        ),
        ("crates", env.versions_line()),
        (
            "hasher",
            if plan.default_hasher {
                "each crate's default".into()
            } else {
                "foldhash, fixed seed, for every map".into()
            },
        ),
        ("values", format!("{} bytes (keys: u64)", plan.value_bytes)),
        (
            "trials",
            format!(
                "{} repetitions, maps interleaved within each; {}; 1 op in {} timed for latency",
                plan.reps,
                plan.duration.map_or_else(
                    || format!("{} operations per trial", plan.ops),
                    |d| format!("{d:?} per trial")
                ),
                plan.sample_every
            ),
        ),
    ];
    for (name, value) in items {
        let _ = writeln!(out, "- {name}: {value}");
    }
    let _ = writeln!(
        out,
        "\nThe limit is a single-threaded `hashbrown::HashMap` with no synchronisation, run on the \
         same operations at one thread; the ideal at N threads is its throughput × min(N, cores). \
         \"× best peer\" divides a map's median by the best peer's median in the same block; the \
         spread is the smallest and largest per-repetition ratio. Only ratios from the same run \
         mean anything: absolute figures move with the machine's load.\n"
    );
    if !results.blocks.is_empty() {
        let _ = writeln!(out, "## Summary: lanemap against each map\n");
        out.push_str(&summary_table(results, Style::Markdown));
        let _ = writeln!(out, "## Throughput\n");
        let mut charted = Vec::new();
        for block in &results.blocks {
            let slug = block.case.slug();
            if !charted.contains(&slug) {
                let _ = writeln!(
                    out,
                    "![{}]({})\n",
                    block.case.label(),
                    svg::throughput_file(&block.case)
                );
                charted.push(slug);
            }
            let _ = writeln!(out, "### {}\n", block_title(block));
            out.push_str(&block_table(block, Style::Markdown));
            let _ = writeln!(
                out,
                "\n<details><summary>Latency per operation (p50 / p99 / p99.9 / max)</summary>\n"
            );
            out.push_str(&latency_table(block));
            let _ = writeln!(out, "\n</details>\n");
        }
        let _ = writeln!(out, "## Latency percentiles\n");
        for slug in &charted {
            if let Some(block) = results.blocks.iter().rev().find(|b| &b.case.slug() == slug) {
                let _ = writeln!(
                    out,
                    "![latency {}]({})\n",
                    block.case.label(),
                    svg::latency_file(&block.case)
                );
            }
        }
    }
    if !results.growth.is_empty() {
        let _ = writeln!(
            out,
            "## Resize pauses\n\nOne thread inserts new keys into an empty map that was not presized, \
             timing every insert: the worst insert is the longest pause a resize causes.\n"
        );
        let _ = writeln!(out, "![resize pauses]({})\n", svg::GROWTH_FILE);
        out.push_str(&growth_table(results, Style::Markdown));
        out.push('\n');
    }
    if !results.memory.is_empty() {
        let _ = writeln!(
            out,
            "## Memory\n\nA counting global allocator tallies the bytes one thread's map allocates as it \
             grows from empty, then after every entry is removed, then after the map is dropped.\n"
        );
        let _ = writeln!(out, "![memory]({})\n", svg::MEMORY_FILE);
        out.push_str(&memory_table(results, Style::Markdown));
        out.push('\n');
    }
    out
}

fn cell(p: Option<Percentiles>) -> String {
    p.map_or_else(
        || "–".into(),
        |p| {
            format!(
                "{} / {} / {} / {}",
                format_nanos(p.p50),
                format_nanos(p.p99),
                format_nanos(p.p999),
                format_nanos(p.max)
            )
        },
    )
}

/// Per-operation latency of every map in a block.
fn latency_table(block: &crate::results::Block) -> String {
    let kinds: Vec<OpKind> = OpKind::ALL
        .into_iter()
        .filter(|&k| block.rows.iter().any(|r| r.latency.of_kind(k).is_some()))
        .collect();
    let mut headers = vec!["map"];
    headers.extend(kinds.iter().map(|k| k.name()));
    let rows: Vec<Vec<String>> = block
        .rows
        .iter()
        .map(|row| {
            let mut cells = vec![row.map.clone()];
            cells.extend(kinds.iter().map(|&k| cell(row.latency.of_kind(k))));
            cells
        })
        .collect();
    layout(&headers, &rows, Style::Markdown)
}
