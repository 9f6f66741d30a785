//! CSV files: one row per map and block, per growth trial, per memory trial.

use crate::latency::Percentiles;
use crate::results::Results;
use crate::stream::OpKind;
use crate::workload::Dist;

/// Quotes a field if it needs it.
fn field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

fn opt(value: Option<f64>) -> String {
    value.map_or_else(String::new, |v| format!("{v:.4}"))
}

fn percentiles(p: Option<Percentiles>) -> [String; 4] {
    p.map_or_else(
        || std::array::from_fn(|_| String::new()),
        |p| [p.p50, p.p99, p.p999, p.max].map(|v| v.to_string()),
    )
}

/// `throughput.csv`.
pub fn throughput(results: &Results) -> String {
    let mut header: Vec<String> = [
        "workload",
        "mix",
        "prefill",
        "dist",
        "zipf_exponent",
        "keys",
        "threads",
        "map",
        "family",
        "reps",
        "mops_median",
        "mops_min",
        "mops_max",
        "vs_best_peer",
        "vs_best_peer_min",
        "vs_best_peer_max",
        "vs_ideal",
    ]
    .map(String::from)
    .to_vec();
    for kind in OpKind::ALL {
        for p in ["p50_ns", "p99_ns", "p999_ns", "max_ns"] {
            header.push(format!("{}_{p}", kind.name()));
        }
    }
    let mut out = header.join(",") + "\n";
    for block in &results.blocks {
        let case = &block.case;
        let exponent = match case.dist {
            Dist::Uniform => String::new(),
            Dist::Zipf { exponent } => exponent.to_string(),
        };
        for row in &block.rows {
            let (lo, hi) = row.vs_best_peer_spread.unzip();
            let mut cells = vec![
                field(&case.workload.name),
                field(&case.workload.mix.to_string()),
                case.workload.prefill.to_string(),
                match case.dist {
                    Dist::Uniform => "uniform".into(),
                    Dist::Zipf { .. } => "zipf".into(),
                },
                exponent.clone(),
                case.keys.to_string(),
                row.threads.to_string(),
                field(&row.map),
                format!("{:?}", row.family).to_lowercase(),
                row.mops.len().to_string(),
                format!("{:.4}", row.median),
                format!("{:.4}", row.min),
                format!("{:.4}", row.max),
                opt(row.vs_best_peer),
                opt(lo),
                opt(hi),
                opt(row.vs_ideal),
            ];
            for kind in OpKind::ALL {
                cells.extend(percentiles(row.latency.of_kind(kind)));
            }
            out.push_str(&cells.join(","));
            out.push('\n');
        }
    }
    out
}

/// `growth.csv`.
pub fn growth(results: &Results) -> String {
    let mut out = String::from(
        "map,inserts,mops_median,p50_ns,p99_ns,p999_ns,max_ns,worst_median_ns,worst_vs_limit\n",
    );
    for g in &results.growth {
        let [p50, p99, p999, max] = percentiles(Some(g.latency));
        out.push_str(&format!(
            "{},{},{:.4},{p50},{p99},{p999},{max},{},{}\n",
            field(&g.map),
            g.inserts,
            g.median_mops(),
            g.worst_median,
            opt(g.worst_vs_limit)
        ));
    }
    out
}

/// `memory.csv`.
pub fn memory(results: &Results) -> String {
    let mut out = String::from(
        "map,entries,payload_bytes,bytes_per_entry,vs_limit,bytes_after_removing_all,bytes_after_drop\n",
    );
    for m in &results.memory {
        out.push_str(&format!(
            "{},{},{},{:.2},{},{},{}\n",
            field(&m.map),
            m.entries,
            m.payload_bytes,
            m.bytes_per_entry,
            opt(m.vs_limit),
            m.bytes_after_removing_all,
            m.bytes_after_drop
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_when_needed() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("get=1,insert=2"), "\"get=1,insert=2\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
