//! Runs the real binary on tiny workloads and checks that every report file is written.

use std::path::{Path, PathBuf};
use std::process::Command;

fn bench() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lanemap-bench"))
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lanemap-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

#[test]
fn a_tiny_run_writes_every_report_file() {
    let out = scratch("run");
    let output = bench()
        .args([
            "run",
            "--workload",
            "read-heavy,rapid-grow",
            "--dist",
            "uniform,zipf",
            "--keys",
            "500",
            "--ops",
            "2000",
            "--threads",
            "1,2",
            "--reps",
            "2",
            "--growth-inserts",
            "2000",
            "--memory-entries",
            "1000",
            "--quiet",
            "--out",
        ])
        .arg(&out)
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("lanemap ShardedMap") && stdout.contains("Report written to"),
        "{stdout}"
    );

    let markdown = read(&out, "report.md");
    for needle in [
        "## Environment",
        "dashmap",
        "papaya",
        "scc",
        "flurry",
        "limit",
        "Resize pauses",
        "## Memory",
    ] {
        assert!(markdown.contains(needle), "report.md lacks {needle}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&read(&out, "results.json")).expect("valid JSON");
    let maps = json["plan"]["maps"].as_array().map_or(0, Vec::len);
    assert!(maps >= 10, "every registered map runs: {maps}");
    assert_eq!(json["results"]["blocks"].as_array().map(Vec::len), Some(8));
    assert!(
        json["environment"]["crates"]
            .as_array()
            .is_some_and(|c| !c.is_empty())
    );
    let csv = read(&out, "throughput.csv");
    // A header, then 2 workloads × 2 distributions × 2 thread counts × every map.
    assert_eq!(csv.lines().count(), 1 + 2 * 2 * 2 * maps, "{csv}");
    assert_eq!(read(&out, "growth.csv").lines().count(), 1 + maps);
    assert_eq!(read(&out, "memory.csv").lines().count(), 1 + maps);
    let charts = std::fs::read_dir(&out)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "svg"))
        .count();
    // Throughput and latency per case (4 cases), growth and memory.
    assert_eq!(charts, 4 * 2 + 2);
    assert!(read(&out, "memory.svg").starts_with("<svg"));
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn advise_recommends_a_map() {
    let out = scratch("advise");
    let output = bench()
        .args([
            "advise",
            "--read",
            "90",
            "--keys",
            "500",
            "--threads",
            "2",
            "--ops",
            "2000",
            "--reps",
            "1",
        ])
        .args(["--maps", "sharded,dashmap", "--quiet", "--out"])
        .arg(&out)
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("Use ") && stdout.contains("Settings: "),
        "{stdout}"
    );
    assert!(read(&out, "advice.txt").contains("Ranking"));
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn bad_arguments_exit_non_zero_with_a_message() {
    for args in [
        &["run", "--threads", "zero"][..],
        &["run", "--workload", "nope"],
        &["sideways"],
    ] {
        let output = bench().args(args).output().expect("the binary runs");
        assert!(!output.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("error"), "{args:?}: {stderr}");
    }
}
