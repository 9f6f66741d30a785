//! Writes a run's results: terminal table, Markdown, CSV, JSON and SVG charts.

pub mod csv;
pub mod json;
pub mod markdown;
pub mod svg;
pub mod table;

use crate::environment::Environment;
use crate::plan::Plan;
use crate::results::Results;
use std::fs;
use std::io;
use std::path::PathBuf;

/// A finished (or interrupted) run with its context.
pub struct Report<'a> {
    /// What was asked.
    pub plan: &'a Plan,
    /// Where it ran.
    pub env: &'a Environment,
    /// What was measured.
    pub results: &'a Results,
}

/// Writes every report file into the plan's folder (created if needed); returns their paths.
///
/// # Errors
/// Any I/O error from creating the folder or writing a file.
pub fn write_all(report: &Report<'_>) -> io::Result<Vec<PathBuf>> {
    let dir = &report.plan.out_dir;
    fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    let mut write = |name: &str, text: String| -> io::Result<()> {
        let path = dir.join(name);
        fs::write(&path, text)?;
        written.push(path);
        Ok(())
    };
    write("report.md", markdown::render(report))?;
    write("report.txt", table::render(report))?;
    write("throughput.csv", csv::throughput(report.results))?;
    write("growth.csv", csv::growth(report.results))?;
    write("memory.csv", csv::memory(report.results))?;
    write("results.json", json::render(report)?)?;
    written.extend(svg::write_charts(report, dir)?);
    Ok(written)
}

/// `1.23×`, or `–` when there is no ratio.
pub fn ratio(value: Option<f64>) -> String {
    value.map_or_else(|| "–".into(), |v| format!("{v:.2}×"))
}

/// `1.23× (1.10–1.31)`: a median ratio with its spread.
pub fn ratio_spread(value: Option<f64>, spread: Option<(f64, f64)>) -> String {
    match (value, spread) {
        (Some(v), Some((lo, hi))) => format!("{v:.2}× ({lo:.2}–{hi:.2})"),
        _ => ratio(value),
    }
}

/// Throughput in Mop/s with a precision that suits its size.
pub fn mops(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

/// A byte count in B, KiB or MiB.
pub fn bytes(value: i64) -> String {
    let v = value as f64;
    match value.unsigned_abs() {
        0..1024 => format!("{value} B"),
        1024..1_048_576 => format!("{:.1} KiB", v / 1024.0),
        _ => format!("{:.1} MiB", v / 1_048_576.0),
    }
}
