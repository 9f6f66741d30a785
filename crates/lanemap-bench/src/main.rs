//! `lanemap-bench`: see `lanemap-bench --help`, and the library docs for the layout.

use clap::Parser;
use lanemap_bench::cli::{Cli, Command};
use lanemap_bench::environment::{Environment, utc_stamp};
use lanemap_bench::maps::registry;
use lanemap_bench::memory::CountingAlloc;
use lanemap_bench::plan::Plan;
use lanemap_bench::report::{self, Report};
use lanemap_bench::{advise, bench};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

/// Counts bytes for the memory trials (and only there: counting is off on other threads).
#[global_allocator]
static ALLOCATOR: CountingAlloc = CountingAlloc;

/// Set by the first Ctrl-C: the run stops after the current trial and writes its report.
static STOP: AtomicBool = AtomicBool::new(false);

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = std::iter::once("lanemap-bench".to_string())
        .chain(
            std::env::args()
                .skip(1)
                .map(|a| if a.contains(' ') { format!("'{a}'") } else { a }),
        )
        .collect::<Vec<_>>()
        .join(" ");
    let out_dir = cli
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("reports").join(utc_stamp()));
    let plan = match &cli.command {
        None | Some(Command::Quick) => Ok(Plan {
            command,
            ..Plan::quick(out_dir)
        }),
        Some(Command::Run(args)) => args.plan(out_dir, command),
        Some(Command::Advise(args)) => Ok(advise::plan(args, out_dir, command)),
        Some(Command::Maps) => {
            list_maps();
            return ExitCode::SUCCESS;
        }
    };
    let plan = match plan {
        Ok(plan) => plan,
        Err(message) => {
            eprintln!("error: {message}\n\nFor more information, try '--help'.");
            return ExitCode::from(2);
        }
    };

    let handler = ctrlc::set_handler(|| {
        // SeqCst is not needed: the flag carries no data. Relaxed both ways.
        if STOP.swap(true, Ordering::Relaxed) {
            eprintln!("\nSecond Ctrl-C: quitting without a report.");
            std::process::exit(130);
        }
        eprintln!(
            "\nCtrl-C: stopping after the current trial and writing what was measured (Ctrl-C again quits at once)."
        );
    });
    if let Err(error) = handler {
        eprintln!("warning: Ctrl-C will not write a partial report: {error}");
    }

    let env = Environment::detect();
    if env.profile == "debug" {
        eprintln!(
            "warning: this is a debug build; its figures mean nothing. Use `cargo run --release -p lanemap-bench`."
        );
    }
    eprintln!(
        "lanemap-bench {}: {} trials ({} maps, {} cases, threads {:?}, {} reps); report folder {}",
        plan.title,
        plan.trial_count(),
        plan.maps.len(),
        plan.cases.len(),
        plan.threads,
        plan.reps,
        plan.out_dir.display()
    );
    let results = bench::execute(&plan, &STOP, !cli.quiet);
    let report = Report {
        plan: &plan,
        env: &env,
        results: &results,
    };
    println!("{}", report::table::render(&report));
    let advice =
        matches!(cli.command, Some(Command::Advise(_))).then(|| advise::recommend(&plan, &results));
    if let Some(advice) = &advice {
        println!("{advice}");
    }
    match report::write_all(&report) {
        Ok(_) => {
            if let Some(advice) = &advice {
                if let Err(error) = std::fs::write(plan.out_dir.join("advice.txt"), advice) {
                    eprintln!("error: writing advice.txt: {error}");
                    return ExitCode::FAILURE;
                }
            }
            println!(
                "Report written to {}/ (report.md, report.txt, CSV, JSON, SVG charts)",
                plan.out_dir.display()
            );
        }
        Err(error) => {
            eprintln!(
                "error: writing the report to {}: {error}",
                plan.out_dir.display()
            );
            return ExitCode::FAILURE;
        }
    }
    if results.interrupted {
        ExitCode::from(130)
    } else {
        ExitCode::SUCCESS
    }
}

fn list_maps() {
    let env = Environment::detect();
    println!("Maps (foldhash for all by default; `--hasher default` uses the one shown):");
    for entry in registry() {
        println!(
            "  {:<36} {:<8} default hasher: {}",
            entry.name,
            format!("{:?}", entry.family).to_lowercase(),
            entry.default_hasher
        );
    }
    println!("\nCrate versions: {}", env.versions_line());
}
