//! The environment a report was measured in: machine, compiler, crate versions.

use serde::Serialize;
use std::fs;
use std::time::{SystemTime, UNIX_EPOCH};

/// What every report prints about where and with what it ran.
#[derive(Debug, Clone, Serialize)]
pub struct Environment {
    /// Versions of the measured crates, from the workspace's Cargo.lock at build time.
    pub crates: Vec<(String, String)>,
    /// `rustc --version` of the compiler that built the benchmark.
    pub rustc: String,
    /// Target triple.
    pub target: String,
    /// `release` or `debug` (debug figures mean nothing).
    pub profile: String,
    /// CPU model name.
    pub cpu: String,
    /// Cores the process may use.
    pub cores: usize,
    /// Total memory.
    pub memory: String,
    /// Operating system and kernel.
    pub os: String,
    /// When the run started (UTC).
    pub started_utc: String,
}

impl Environment {
    /// Reads the environment of this process.
    pub fn detect() -> Self {
        let crates = env!("LANEMAP_BENCH_VERSIONS")
            .split(';')
            .filter_map(|pair| pair.split_once(' '))
            .map(|(name, version)| (name.to_string(), version.to_string()))
            .collect();
        let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or_else(
                || std::env::consts::ARCH.to_string(),
                |(_, v)| v.trim().to_string(),
            );
        let memory = fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .next()
                    .map(|l| l.split_whitespace().nth(1).unwrap_or("").to_string())
            })
            .and_then(|kib| kib.parse::<f64>().ok())
            .map_or_else(
                || "unknown".into(),
                |kib| format!("{:.1} GiB", kib / 1024.0 / 1024.0),
            );
        let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        Self {
            crates,
            rustc: env!("LANEMAP_BENCH_RUSTC").to_string(),
            target: env!("LANEMAP_BENCH_TARGET").to_string(),
            profile: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            }
            .into(),
            cpu,
            cores: crate::plan::cores(),
            memory,
            os: format!("{} {}", std::env::consts::OS, kernel.trim()),
            started_utc: utc_now(),
        }
    }

    /// The versions as one line: `lanemap 0.1.0, dashmap 6.1.0, ...`.
    pub fn versions_line(&self) -> String {
        self.crates
            .iter()
            .map(|(n, v)| format!("{n} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The current time as `YYYY-MM-DD HH:MM:SS`, UTC.
pub fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The current time as `YYYYMMDD-HHMMSS`, for folder names.
pub fn utc_stamp() -> String {
    utc_now().replace(['-', ':'], "").replace(' ', "-")
}

/// Days since 1970-01-01 to a (year, month, day) date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_convert() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_514), (2026, 3, 2));
        let env = Environment::detect();
        assert!(env.crates.iter().any(|(name, _)| name == "dashmap"));
    }
}
