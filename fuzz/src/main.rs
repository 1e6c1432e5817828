//! `zdsync-fuzz`: a fuzz harness for zdsync that runs on the stable toolchain.
//!
//! Every target decodes bytes that reach zdsync from outside (Zendesk payloads, error bodies,
//! the config file, account imports, page tokens and cursors, gRPC requests). The harness seeds
//! each corpus from the real fixtures at run time, mutates inputs with a seeded RNG, runs each
//! execution under `catch_unwind` with a time limit, and saves any input that panics or hangs to
//! `fuzz/artifacts/<target>/`. See `fuzz/README.md`.
mod corpus;
mod mutate;
mod rng;
mod runner;
mod targets;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use runner::{Options, Report};
use targets::Target;

const USAGE: &str = "\
usage:
  zdsync-fuzz list
  zdsync-fuzz smoke [--total-seconds S] [OPTIONS]       every target, S (default 60) seconds in all
  zdsync-fuzz <target>|all [--seconds S] [--iterations N] [OPTIONS]
  zdsync-fuzz replay <target> FILE...                  run saved inputs once each (.txt notes skipped)

options:
  --seed X          mutation seed (default 1); the same seed replays the same inputs
  --fixtures DIR    Zendesk fixtures (default ../../shared/fixtures/zendesk from fuzz/)
  --artifacts DIR   where findings are saved (default fuzz/artifacts)
  --timeout-ms MS   one execution longer than this is a hang (default 1000)
  --max-len BYTES   longest input (default 262144)
  --verbose         print every panic as it happens

--seconds and --iterations bound each target (both: whichever comes first; neither: 10 s).
Exit status: 0 clean, 1 a panic or hang was found, 2 usage or setup error, 3 a stuck execution.";

struct Cli {
    command: String,
    rest: Vec<String>,
    options: Options,
    total_seconds: f64,
}

fn parse(args: Vec<String>) -> Result<Cli, String> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut options = Options {
        seconds: None,
        iterations: None,
        seed: 1,
        fixtures: manifest.join("../../shared/fixtures/zendesk"),
        artifacts: manifest.join("artifacts"),
        timeout: Duration::from_millis(1000),
        max_len: 256 * 1024,
        verbose: false,
    };
    let mut total_seconds = 60.0;
    let mut positional = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        let number = |name: &str, text: String| -> Result<f64, String> {
            text.parse::<f64>()
                .ok()
                .filter(|n| n.is_finite() && *n >= 0.0)
                .ok_or_else(|| format!("{name}: {text:?} is not a number"))
        };
        match arg.as_str() {
            "--seconds" => options.seconds = Some(number("--seconds", value("--seconds")?)?),
            "--total-seconds" => {
                total_seconds = number("--total-seconds", value("--total-seconds")?)?
            }
            "--iterations" => {
                let text = value("--iterations")?;
                options.iterations = Some(
                    text.replace('_', "")
                        .parse()
                        .map_err(|_| format!("--iterations: {text:?} is not a count"))?,
                );
            }
            "--seed" => {
                let text = value("--seed")?;
                options.seed = text
                    .parse()
                    .map_err(|_| format!("--seed: {text:?} is not a number"))?;
            }
            "--fixtures" => options.fixtures = PathBuf::from(value("--fixtures")?),
            "--artifacts" => options.artifacts = PathBuf::from(value("--artifacts")?),
            "--timeout-ms" => {
                let ms = number("--timeout-ms", value("--timeout-ms")?)?;
                options.timeout = Duration::from_secs_f64(ms / 1000.0);
            }
            "--max-len" => {
                let text = value("--max-len")?;
                options.max_len = text
                    .parse()
                    .map_err(|_| format!("--max-len: {text:?} is not a size"))?;
            }
            "--verbose" => options.verbose = true,
            "-h" | "--help" => return Err(String::new()),
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            _ => positional.push(arg),
        }
    }
    let mut positional = positional.into_iter();
    let command = positional.next().ok_or_else(String::new)?;
    Ok(Cli {
        command,
        rest: positional.collect(),
        options,
        total_seconds,
    })
}

fn print_report(report: &Report) {
    let rate = report.execs as f64 / report.elapsed.as_secs_f64().max(1e-9);
    println!(
        "{}: {} execs in {:.1} s ({:.0}/s), {} accepted, corpus {} ({} seeds), mean input {} B, \
         panics {}, hangs {}, slowest {:.2} ms ({} B)",
        report.name,
        report.execs,
        report.elapsed.as_secs_f64(),
        rate,
        report.accepted,
        report.corpus,
        report.seeds,
        report.mean_len,
        report.panics,
        report.hangs,
        report.slowest.as_secs_f64() * 1000.0,
        report.slowest_len,
    );
    for (message, count) in &report.unique_panics {
        println!("  {count} x {message}");
    }
}

fn print_table(reports: &[Report]) {
    println!();
    println!(
        "| target | executions | wall time | execs/s | accepted | panics | hangs | slowest exec |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for r in reports {
        println!(
            "| {} | {} | {:.0} s | {:.0} | {} | {} | {} | {:.1} ms |",
            r.name,
            r.execs,
            r.elapsed.as_secs_f64(),
            r.execs as f64 / r.elapsed.as_secs_f64().max(1e-9),
            r.accepted,
            r.panics,
            r.hangs,
            r.slowest.as_secs_f64() * 1000.0
        );
    }
}

fn find(targets: &'static [Target], name: &str) -> Result<&'static Target, String> {
    targets
        .iter()
        .find(|t| t.name == name)
        .ok_or_else(|| format!("no target {name:?}; `zdsync-fuzz list` shows them"))
}

fn run(cli: Cli, targets: &'static [Target]) -> Result<bool, String> {
    let mut options = cli.options;
    let chosen: Vec<&'static Target> = match cli.command.as_str() {
        "list" => {
            for target in targets {
                println!("{:32} {}", target.name, target.about);
            }
            return Ok(true);
        }
        "replay" => {
            let (name, files) = cli
                .rest
                .split_first()
                .ok_or("replay needs a target and files")?;
            let files: Vec<PathBuf> = files.iter().map(PathBuf::from).collect();
            return runner::replay(find(targets, name)?, &files, options.timeout);
        }
        "smoke" => {
            options.seconds = Some(cli.total_seconds / targets.len() as f64);
            options.iterations = None;
            targets.iter().collect()
        }
        "all" => targets.iter().collect(),
        name => vec![find(targets, name)?],
    };
    if options.seconds.is_none() && options.iterations.is_none() {
        options.seconds = Some(10.0);
    }
    println!(
        "zdsync-fuzz: {} target(s), seed {}, fixtures {}, timeout {:?}",
        chosen.len(),
        options.seed,
        options.fixtures.display(),
        options.timeout
    );
    let mut reports = Vec::new();
    for target in chosen {
        let report = runner::run_target(target, &options)?;
        print_report(&report);
        reports.push(report);
    }
    print_table(&reports);
    let clean = reports.iter().all(Report::clean);
    if !clean {
        println!("\nFINDINGS: see {}", options.artifacts.display());
    }
    Ok(clean)
}

fn main() -> ExitCode {
    let cli = match parse(std::env::args().skip(1).collect()) {
        Ok(cli) => cli,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("zdsync-fuzz: {message}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    runner::install_panic_hook(cli.options.verbose);
    let targets: &'static [Target] = Box::leak(targets::all().into_boxed_slice());
    match run(cli, targets) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(message) => {
            eprintln!("zdsync-fuzz: {message}");
            ExitCode::from(2)
        }
    }
}
