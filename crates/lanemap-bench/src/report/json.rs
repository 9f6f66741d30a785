//! `results.json`: the plan, the environment and every figure, for other tools.

use super::Report;
use serde::Serialize;
use std::io;

#[derive(Serialize)]
struct Document<'a> {
    plan: &'a crate::plan::Plan,
    environment: &'a crate::environment::Environment,
    results: &'a crate::results::Results,
}

/// Renders the report as pretty-printed JSON.
///
/// # Errors
/// If serialisation fails (it does not for these types; the error is passed on for safety).
pub fn render(report: &Report<'_>) -> io::Result<String> {
    let document = Document {
        plan: report.plan,
        environment: report.env,
        results: report.results,
    };
    serde_json::to_string_pretty(&document).map_err(io::Error::other)
}
