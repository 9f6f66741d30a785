//! Plain-text tables for the terminal, and the shared table layout used by Markdown too.

use super::{Report, bytes, mops, ratio, ratio_spread};
use crate::latency::format_nanos;
use crate::maps::Family;
use crate::results::{Block, Results};
use std::fmt::Write;

/// How to lay a table out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Space-aligned columns.
    Text,
    /// A GitHub Markdown table.
    Markdown,
}

/// Lays out a table; the first column is left-aligned, the others right-aligned.
pub fn layout(headers: &[&str], rows: &[Vec<String>], style: Style) -> String {
    if style == Style::Markdown {
        // `<HashMap>` would be taken for an HTML tag, `|` for a column break.
        let escape = |text: &str| {
            text.replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('|', "\\|")
        };
        let headers: Vec<String> = headers.iter().map(|h| escape(h)).collect();
        let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
        let rows: Vec<Vec<String>> = rows
            .iter()
            .map(|row| row.iter().map(|c| escape(c)).collect())
            .collect();
        return aligned(&headers, &rows, style);
    }
    aligned(headers, rows, style)
}

fn aligned(headers: &[&str], rows: &[Vec<String>], style: Style) -> String {
    let width = |i: usize| {
        rows.iter()
            .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
            .chain([headers[i].chars().count()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..headers.len()).map(width).collect();
    let cell = |i: usize, text: &str| {
        let pad = widths[i].saturating_sub(text.chars().count());
        if i == 0 {
            format!("{text}{}", " ".repeat(pad))
        } else {
            format!("{}{text}", " ".repeat(pad))
        }
    };
    let line = |cells: Vec<String>| match style {
        Style::Text => cells.join("  ").trim_end().to_string(),
        Style::Markdown => format!("| {} |", cells.join(" | ")),
    };
    let mut out = String::new();
    out.push_str(&line(
        headers
            .iter()
            .enumerate()
            .map(|(i, h)| cell(i, h))
            .collect(),
    ));
    out.push('\n');
    let rule: Vec<String> = widths
        .iter()
        .enumerate()
        .map(|(i, &w)| match style {
            Style::Text => "-".repeat(w),
            Style::Markdown if i == 0 => format!(":{}", "-".repeat(w.saturating_sub(1).max(2))),
            Style::Markdown => format!("{}:", "-".repeat(w.saturating_sub(1).max(2))),
        })
        .collect();
    out.push_str(&line(rule));
    out.push('\n');
    for row in rows {
        out.push_str(&line(
            row.iter().enumerate().map(|(i, c)| cell(i, c)).collect(),
        ));
        out.push('\n');
    }
    out
}

/// The heading of a block: case, threads and what "ideal" means there.
pub fn block_title(block: &Block) -> String {
    format!(
        "{} · {} thread{} (ideal = limit × {})",
        block.case.label(),
        block.threads,
        if block.threads == 1 { "" } else { "s" },
        block.ideal_factor
    )
}

/// The throughput table of a block.
pub fn block_table(block: &Block, style: Style) -> String {
    let headers = [
        "map",
        "Mop/s",
        "min–max",
        "× best peer (spread)",
        "× ideal",
        "p50",
        "p99",
        "p99.9",
        "max",
    ];
    let rows: Vec<Vec<String>> = block
        .rows
        .iter()
        .map(|row| {
            let all = row.latency.all;
            let lat = |f: fn(&crate::latency::Percentiles) -> u64| {
                all.as_ref().map_or("–".into(), |p| format_nanos(f(p)))
            };
            let name = if row.family == Family::Lanemap && style == Style::Markdown {
                format!("**{}**", row.map)
            } else {
                row.map.clone()
            };
            vec![
                name,
                mops(row.median),
                format!("{}–{}", mops(row.min), mops(row.max)),
                if row.family == Family::Limit {
                    "–".into()
                } else {
                    ratio_spread(row.vs_best_peer, row.vs_best_peer_spread)
                },
                ratio(row.vs_ideal),
                lat(|p| p.p50),
                lat(|p| p.p99),
                lat(|p| p.p999),
                lat(|p| p.max),
            ]
        })
        .collect();
    layout(&headers, &rows, style)
}

/// lanemap's maps against every peer and the ideal: one row per block, the median throughput
/// ratio in each cell.
pub fn summary_table(results: &Results, style: Style) -> String {
    let Some(first) = results.blocks.first() else {
        return String::new();
    };
    let peers: Vec<&str> = first
        .rows
        .iter()
        .filter(|r| r.family == Family::Peer)
        .map(|r| r.map.as_str())
        .collect();
    let ours: Vec<&str> = first
        .rows
        .iter()
        .filter(|r| r.family == Family::Lanemap)
        .map(|r| r.map.as_str())
        .collect();
    let mut out = String::new();
    for name in ours {
        let mut headers = vec!["workload · threads", "× best peer (spread)", "× ideal"];
        headers.extend(peers.iter().copied());
        let rows: Vec<Vec<String>> = results
            .blocks
            .iter()
            .filter_map(|block| {
                let row = block.rows.iter().find(|r| r.map == name)?;
                let mut cells = vec![
                    format!("{} · {}t", block.case.label(), block.threads),
                    ratio_spread(row.vs_best_peer, row.vs_best_peer_spread),
                    ratio(row.vs_ideal),
                ];
                for peer in &peers {
                    let theirs = block.rows.iter().find(|r| r.map == *peer).map(|r| r.median);
                    cells.push(ratio(theirs.filter(|&t| t > 0.0).map(|t| row.median / t)));
                }
                Some(cells)
            })
            .collect();
        let _ = writeln!(
            out,
            "{name} ÷ each map (median throughput ratio; > 1 means {name} is faster)\n"
        );
        out.push_str(&layout(&headers, &rows, style));
        out.push('\n');
    }
    out
}

/// The resize-pause table.
pub fn growth_table(results: &Results, style: Style) -> String {
    let headers = [
        "map",
        "inserts",
        "Mop/s (timed)",
        "p50",
        "p99",
        "p99.9",
        "worst insert (median of reps)",
        "worst per rep",
        "÷ limit's",
    ];
    let rows: Vec<Vec<String>> = results
        .growth
        .iter()
        .map(|g| {
            vec![
                g.map.clone(),
                g.inserts.to_string(),
                mops(g.median_mops()),
                format_nanos(g.latency.p50),
                format_nanos(g.latency.p99),
                format_nanos(g.latency.p999),
                format_nanos(g.worst_median),
                g.worst_per_rep
                    .iter()
                    .map(|&w| format_nanos(w))
                    .collect::<Vec<_>>()
                    .join(", "),
                ratio(g.worst_vs_limit),
            ]
        })
        .collect();
    layout(&headers, &rows, style)
}

/// The memory table.
pub fn memory_table(results: &Results, style: Style) -> String {
    let headers = [
        "map",
        "entries",
        "bytes/entry",
        "÷ limit's",
        "payload",
        "left after removing all",
        "left after drop",
    ];
    let rows: Vec<Vec<String>> = results
        .memory
        .iter()
        .map(|m| {
            vec![
                m.map.clone(),
                m.entries.to_string(),
                format!("{:.1}", m.bytes_per_entry),
                ratio(m.vs_limit),
                format!("{} B", m.payload_bytes),
                bytes(m.bytes_after_removing_all),
                bytes(m.bytes_after_drop),
            ]
        })
        .collect();
    layout(&headers, &rows, style)
}

/// The whole report as terminal text.
pub fn render(report: &Report<'_>) -> String {
    let (plan, env, results) = (report.plan, report.env, report.results);
    let mut out = String::new();
    let _ = writeln!(out, "lanemap-bench: {} — `{}`", plan.title, plan.command);
    let _ = writeln!(
        out,
        "{} · {} cores · {} · {} · {} build",
        env.cpu, env.cores, env.os, env.rustc, env.profile
    );
    let _ = writeln!(out, "crates: {}", env.versions_line());
    let _ = writeln!(
        out,
        "hasher: {} · values: {} bytes · {} reps, maps interleaved · latency: 1 op in {} timed",
        if plan.default_hasher {
            "each crate's default"
        } else {
            "foldhash (fixed seed) for every map"
        },
        plan.value_bytes,
        plan.reps,
        plan.sample_every
    );
    let _ = writeln!(
        out,
        "Only ratios within this run mean anything: the machine's noise moves absolute figures."
    );
    if results.interrupted {
        let _ = writeln!(out, "\nINTERRUPTED (Ctrl-C): partial results below.");
    }
    for block in &results.blocks {
        let _ = writeln!(out, "\n{}", block_title(block));
        out.push_str(&block_table(block, Style::Text));
    }
    if !results.blocks.is_empty() {
        out.push('\n');
        out.push_str(&summary_table(results, Style::Text));
    }
    if !results.growth.is_empty() {
        let _ = writeln!(
            out,
            "\nResize pauses: one thread inserts into an empty, not presized map, every insert timed"
        );
        out.push_str(&growth_table(results, Style::Text));
    }
    if !results.memory.is_empty() {
        let _ = writeln!(
            out,
            "\nMemory (counting allocator plus lanemap's mmapped tables, one thread, map grown from empty)"
        );
        out.push_str(&memory_table(results, Style::Text));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align() {
        let rows = vec![
            vec!["a".to_string(), "1".into()],
            vec!["bbb".into(), "22".into()],
        ];
        assert_eq!(
            layout(&["map", "n"], &rows, Style::Text),
            "map   n\n---  --\na     1\nbbb  22\n"
        );
        let md = layout(&["map", "n"], &rows, Style::Markdown);
        assert_eq!(md.lines().nth(2), Some("| a   |  1 |"), "{md}");
    }

    #[test]
    fn markdown_escapes_angle_brackets_and_pipes() {
        let rows = vec![vec!["std RwLock<HashMap>".to_string(), "a|b".into()]];
        let md = layout(&["map", "x"], &rows, Style::Markdown);
        assert!(
            md.contains("std RwLock&lt;HashMap&gt;") && md.contains("a\\|b"),
            "{md}"
        );
    }
}
