//! SVG charts drawn with plotters' SVG backend: throughput against threads per case, latency
//! percentiles per case, resize pauses and memory per map.

use super::Report;
use crate::maps::Family;
use crate::results::Results;
use crate::workload::Case;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::io;
use std::path::{Path, PathBuf};

/// File name of the resize-pause chart.
pub const GROWTH_FILE: &str = "growth.svg";
/// File name of the memory chart.
pub const MEMORY_FILE: &str = "memory.svg";

/// File name of a case's throughput chart.
pub fn throughput_file(case: &Case) -> String {
    format!("throughput-{}.svg", case.slug())
}

/// File name of a case's latency chart.
pub fn latency_file(case: &Case) -> String {
    format!("latency-{}.svg", case.slug())
}

const SIZE: (u32, u32) = (900, 520);
const FONT: &str = "sans-serif";

fn io_error(error: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("drawing a chart: {error}"))
}

/// The colour of the `i`th map: lanemap's maps first in strong colours.
fn colour(i: usize) -> RGBColor {
    const COLOURS: [RGBColor; 14] = [
        RGBColor(214, 39, 40),
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
        RGBColor(188, 189, 34),
        RGBColor(23, 190, 207),
        RGBColor(0, 0, 128),
        RGBColor(0, 100, 0),
        RGBColor(128, 0, 0),
        RGBColor(255, 187, 120),
    ];
    COLOURS[i % COLOURS.len()]
}

/// Writes every chart into `dir`; returns the paths.
///
/// # Errors
/// An I/O error if a chart cannot be drawn or written.
pub fn write_charts(report: &Report<'_>, dir: &Path) -> io::Result<Vec<PathBuf>> {
    let results = report.results;
    let mut written = Vec::new();
    let mut cases: Vec<&Case> = Vec::new();
    for block in &results.blocks {
        if !cases.contains(&&block.case) {
            cases.push(&block.case);
        }
    }
    for case in cases {
        let path = dir.join(throughput_file(case));
        throughput_chart(results, case, &path)?;
        written.push(path);
        let path = dir.join(latency_file(case));
        latency_chart(results, case, &path)?;
        written.push(path);
    }
    if !results.growth.is_empty() {
        let path = dir.join(GROWTH_FILE);
        let bars: Vec<(String, f64)> = results
            .growth
            .iter()
            .map(|g| (g.map.clone(), g.worst_median as f64 / 1e3))
            .collect();
        let title = format!(
            "Worst single insert growing from empty to {} entries (median of repetitions)",
            results.growth[0].inserts
        );
        bar_chart(&path, &title, "µs (log scale)", &bars, true)?;
        written.push(path);
    }
    if !results.memory.is_empty() {
        let path = dir.join(MEMORY_FILE);
        let bars: Vec<(String, f64)> = results
            .memory
            .iter()
            .map(|m| (m.map.clone(), m.bytes_per_entry))
            .collect();
        let title = format!("Bytes per entry at {} entries", results.memory[0].entries);
        bar_chart(&path, &title, "bytes per entry", &bars, false)?;
        written.push(path);
    }
    Ok(written)
}

/// One line of a chart: map name, family, (x, y) points.
type Series = (String, Family, Vec<(f64, f64)>);

/// A white canvas with a title, split into the plot (left) and a legend column (right).
type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

fn canvas<'a>(
    path: &'a Path,
    size: (u32, u32),
    title: &str,
) -> io::Result<(Area<'a>, Area<'a>, Area<'a>)> {
    let root = SVGBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(io_error)?;
    let titled = root.titled(title, (FONT, 19)).map_err(io_error)?;
    let (plot, side) = titled.split_horizontally(size.0 - LEGEND_WIDTH);
    Ok((root, plot, side))
}

/// Width of the legend column.
const LEGEND_WIDTH: u32 = 270;

/// Draws a legend as a column of coloured lines and names.
fn side_legend(side: &Area<'_>, entries: &[(String, ShapeStyle)]) -> io::Result<()> {
    for (i, (name, style)) in entries.iter().enumerate() {
        let y = 40 + 22 * i as i32;
        side.draw(&PathElement::new(vec![(6, y), (36, y)], *style))
            .map_err(io_error)?;
        side.draw(&Text::new(name.clone(), (44, y - 7), (FONT, 13)))
            .map_err(io_error)?;
    }
    Ok(())
}

fn throughput_chart(results: &Results, case: &Case, path: &Path) -> io::Result<()> {
    let blocks: Vec<_> = results.blocks.iter().filter(|b| &b.case == case).collect();
    // (name, family, points)
    let mut series: Vec<Series> = Vec::new();
    let mut ideal = Vec::new();
    for block in &blocks {
        if let Some(i) = block.ideal {
            ideal.push((block.threads as f64, i));
        }
        for row in block.rows.iter().filter(|r| r.family != Family::Limit) {
            match series.iter_mut().find(|s| s.0 == row.map) {
                Some(s) => s.2.push((block.threads as f64, row.median)),
                None => series.push((
                    row.map.clone(),
                    row.family,
                    vec![(block.threads as f64, row.median)],
                )),
            }
        }
    }
    let max_threads = blocks.iter().map(|b| b.threads).max().unwrap_or(1) as f64;
    let max_y = series
        .iter()
        .flat_map(|s| s.2.iter().map(|p| p.1))
        .chain(ideal.iter().map(|p| p.1))
        .fold(1.0f64, f64::max)
        * 1.1;
    let (root, plot, side) = canvas(path, SIZE, &format!("Throughput: {}", case.label()))?;
    let mut chart = ChartBuilder::on(&plot)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.8f64..max_threads + 0.2, 0f64..max_y)
        .map_err(io_error)?;
    let thread_counts: Vec<usize> = blocks.iter().map(|b| b.threads).collect();
    chart
        .configure_mesh()
        .x_desc("threads")
        .y_desc("Mop/s (median)")
        .x_labels(((max_threads as usize) * 4).max(8))
        .x_label_formatter(&|x| {
            let t = x.round() as usize;
            if (x - t as f64).abs() < 0.01 && thread_counts.contains(&t) {
                t.to_string()
            } else {
                String::new()
            }
        })
        .draw()
        .map_err(io_error)?;
    let mut legend = Vec::new();
    for (i, (name, family, points)) in series.iter().enumerate() {
        let style = colour(i).stroke_width(if *family == Family::Lanemap { 4 } else { 2 });
        chart
            .draw_series(LineSeries::new(points.clone(), style).point_size(4))
            .map_err(io_error)?;
        legend.push((name.clone(), style));
    }
    if !ideal.is_empty() {
        let style = BLACK.stroke_width(1);
        chart
            .draw_series(DashedLineSeries::new(ideal, 6, 4, style))
            .map_err(io_error)?;
        legend.push(("ideal: limit × min(threads, cores)".into(), style));
    }
    side_legend(&side, &legend)?;
    root.present().map_err(io_error)
}

fn latency_chart(results: &Results, case: &Case, path: &Path) -> io::Result<()> {
    // The block with the most threads shows contention best.
    let Some(block) = results
        .blocks
        .iter()
        .filter(|b| &b.case == case)
        .max_by_key(|b| b.threads)
    else {
        return Ok(());
    };
    let labels = ["p50", "p99", "p99.9", "max"];
    let series: Vec<Series> = block
        .rows
        .iter()
        .filter_map(|row| {
            let p = row.latency.all?;
            let values = [p.p50, p.p99, p.p999, p.max];
            let points = values
                .iter()
                .enumerate()
                .map(|(i, &v)| (i as f64, v.max(1) as f64))
                .collect();
            Some((row.map.clone(), row.family, points))
        })
        .collect();
    let values = || series.iter().flat_map(|s| s.2.iter().map(|p| p.1));
    let max_y = values().fold(10.0f64, f64::max) * 2.0;
    let min_y = (values().fold(max_y, f64::min) / 2.0).max(1.0);
    let title = format!(
        "Latency, all operations: {} · {} threads",
        case.label(),
        block.threads
    );
    let (root, plot, side) = canvas(path, SIZE, &title)?;
    let mut chart = ChartBuilder::on(&plot)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.2f64..3.2, (min_y..max_y).log_scale())
        .map_err(io_error)?;
    chart
        .configure_mesh()
        .x_desc("percentile (sampled operations)")
        .y_desc("nanoseconds (log scale)")
        .x_labels(17)
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 0.01 && (0.0..4.0).contains(&i) {
                labels[i as usize].to_string()
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()
        .map_err(io_error)?;
    let mut legend = Vec::new();
    for (i, (name, family, points)) in series.iter().enumerate() {
        let style = if *family == Family::Limit {
            BLACK.stroke_width(1)
        } else {
            colour(i).stroke_width(if *family == Family::Lanemap { 4 } else { 2 })
        };
        chart
            .draw_series(LineSeries::new(points.clone(), style).point_size(3))
            .map_err(io_error)?;
        legend.push((name.clone(), style));
    }
    side_legend(&side, &legend)?;
    root.present().map_err(io_error)
}

/// A horizontal bar chart, one bar per map, the first map on top.
fn bar_chart(
    path: &Path,
    title: &str,
    x_desc: &str,
    bars: &[(String, f64)],
    log: bool,
) -> io::Result<()> {
    let root = SVGBackend::new(path, (SIZE.0, 90 + 34 * bars.len() as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(io_error)?;
    let titled = root.titled(title, (FONT, 19)).map_err(io_error)?;
    let max_x = bars.iter().map(|b| b.1).fold(1.0f64, f64::max) * if log { 2.0 } else { 1.15 };
    let min_x = if log {
        bars.iter()
            .map(|b| b.1)
            .filter(|v| *v > 0.0)
            .fold(max_x, f64::min)
            / 2.0
    } else {
        0.0
    };
    let n = bars.len();
    let names: Vec<&str> = bars.iter().map(|b| b.0.as_str()).collect();
    let y_label = |v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => names
            .get(n.wrapping_sub(1).wrapping_sub(*i))
            .map_or(String::new(), |s| s.to_string()),
        SegmentValue::Last => String::new(),
    };
    let label_width = names.iter().map(|s| s.chars().count()).max().unwrap_or(10) as u32 * 7 + 16;
    let mut builder = ChartBuilder::on(&titled);
    builder
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(label_width);
    let bar = |i: usize, value: f64| {
        let row = n - 1 - i;
        Rectangle::new(
            [
                (min_x, SegmentValue::Exact(row)),
                (value.max(min_x), SegmentValue::Exact(row + 1)),
            ],
            colour(i).mix(0.85).filled(),
        )
    };
    if log {
        let mut chart = builder
            .build_cartesian_2d(
                (min_x.max(1e-3)..max_x).log_scale(),
                (0..n).into_segmented(),
            )
            .map_err(io_error)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .x_labels(6)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&y_label)
            .y_labels(n)
            .draw()
            .map_err(io_error)?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, (_, v))| bar(i, *v)))
            .map_err(io_error)?;
    } else {
        let mut chart = builder
            .build_cartesian_2d(min_x..max_x, (0..n).into_segmented())
            .map_err(io_error)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_label_formatter(&y_label)
            .y_labels(n)
            .draw()
            .map_err(io_error)?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, (_, v))| bar(i, *v)))
            .map_err(io_error)?;
    }
    root.present().map_err(io_error)
}
