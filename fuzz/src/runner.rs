//! Runs one target: mutate, execute under `catch_unwind`, time every execution, and save any
//! input that panics or hangs to `artifacts/<target>/`.
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::corpus::Corpus;
use crate::mutate::Mutator;
use crate::rng::Rng;
use crate::targets::{Ctx, Target};

/// How a run is bounded and where it reads and writes.
#[derive(Debug, Clone)]
pub struct Options {
    /// Stop after this long (per target).
    pub seconds: Option<f64>,
    /// Stop after this many executions (per target).
    pub iterations: Option<u64>,
    /// Seed of the mutation stream (same seed, same inputs).
    pub seed: u64,
    /// The Zendesk fixture directory.
    pub fixtures: PathBuf,
    /// Where panicking and hanging inputs are saved.
    pub artifacts: PathBuf,
    /// One execution longer than this is a hang.
    pub timeout: Duration,
    /// Longest input produced.
    pub max_len: usize,
    /// Print every panic message as it happens.
    pub verbose: bool,
}

/// What one target's run found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Target name.
    pub name: String,
    /// Executions done.
    pub execs: u64,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Executions zdsync accepted (decoded without error).
    pub accepted: u64,
    /// Corpus size at the end.
    pub corpus: usize,
    /// Seeds the corpus started with.
    pub seeds: usize,
    /// Executions that panicked.
    pub panics: u64,
    /// Panics by place and message, with their count.
    pub unique_panics: BTreeMap<String, u64>,
    /// Executions that took longer than the timeout.
    pub hangs: u64,
    /// The slowest execution.
    pub slowest: Duration,
    /// Size of the slowest execution's input.
    pub slowest_len: usize,
    /// Mean input size.
    pub mean_len: u64,
}

impl Report {
    /// True when nothing panicked or hung.
    pub fn clean(&self) -> bool {
        self.panics == 0 && self.hangs == 0
    }
}

/// Panics seen by the hook since start, and the last one's message.
static PANICS: AtomicU64 = AtomicU64::new(0);
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);
static VERBOSE: AtomicBool = AtomicBool::new(false);

/// Installs a panic hook that records panics (from the worker and from any task it spawned)
/// instead of printing them; `verbose` prints them too.
pub fn install_panic_hook(verbose: bool) {
    VERBOSE.store(verbose, Ordering::Relaxed);
    std::panic::set_hook(Box::new(|info| {
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".to_owned());
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let message = format!("{location}: {payload}");
        if VERBOSE.load(Ordering::Relaxed) {
            eprintln!("panic: {message}");
        }
        *LAST_PANIC.lock().unwrap_or_else(PoisonError::into_inner) = Some(message);
        PANICS.fetch_add(1, Ordering::SeqCst);
    }));
}

/// What the watchdog sees of the worker.
struct Shared {
    /// Nanoseconds since `origin` when the current execution started, 0 between executions.
    started: AtomicU64,
    /// The input being executed.
    current: Mutex<Vec<u8>>,
}

/// Fuzzes `target` as `options` say and reports what it found.
pub fn run_target(target: &'static Target, options: &Options) -> Result<Report, String> {
    let (corpus, dictionary) = Corpus::load(target, &options.fixtures)?;
    let mutator = Mutator::new(target.kind, options.max_len, dictionary);
    let shared = Arc::new(Shared {
        started: AtomicU64::new(0),
        current: Mutex::new(Vec::new()),
    });
    let origin = Instant::now();
    let worker_shared = Arc::clone(&shared);
    let worker_options = options.clone();
    // The default 2 MiB stack, as on the daemon's tokio threads: a decoder that needs more is a finding.
    let worker = std::thread::Builder::new()
        .name(format!("fuzz-{}", target.name))
        .stack_size(2 * 1024 * 1024)
        .spawn(move || {
            work(
                target,
                corpus,
                mutator,
                &worker_options,
                &worker_shared,
                origin,
            )
        })
        .map_err(|e| format!("{}: cannot start the worker: {e}", target.name))?;
    // Watchdog: an execution still running after 10 timeouts will not come back; save it and stop.
    let stuck_after = options.timeout.saturating_mul(10);
    while !worker.is_finished() {
        std::thread::sleep(Duration::from_millis(20));
        let started = shared.started.load(Ordering::SeqCst);
        if started == 0 {
            continue;
        }
        let running = origin
            .elapsed()
            .saturating_sub(Duration::from_nanos(started));
        if running > stuck_after {
            let input = shared
                .current
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            let path = save_artifact(
                &options.artifacts,
                target.name,
                "hang",
                &input,
                &format!("still running after {running:?} (seed {})", options.seed),
            );
            eprintln!(
                "{}: HANG: one execution has run for {running:?}; input saved to {}; stopping",
                target.name,
                path.display()
            );
            std::process::exit(3);
        }
    }
    match worker.join() {
        Ok(result) => result,
        Err(_) => Err(format!("{}: the harness itself panicked", target.name)),
    }
}

fn nanos_since(origin: Instant) -> u64 {
    u64::try_from(origin.elapsed().as_nanos())
        .unwrap_or(u64::MAX)
        .max(1)
}

fn work(
    target: &'static Target,
    mut corpus: Corpus,
    mutator: Mutator,
    options: &Options,
    shared: &Shared,
    origin: Instant,
) -> Result<Report, String> {
    let mut ctx = Ctx::new(target.needs_services)?;
    let mut rng = Rng::new(options.seed);
    let mut report = Report {
        name: target.name.to_owned(),
        seeds: corpus.seeds,
        ..Report::default()
    };
    let deadline = options.seconds.map(Duration::from_secs_f64);
    let start = Instant::now();
    let mut total_len: u128 = 0;
    loop {
        if options.iterations.is_some_and(|n| report.execs >= n) {
            break;
        }
        if report.execs.is_multiple_of(32) && deadline.is_some_and(|d| start.elapsed() >= d) {
            break;
        }
        // Every seed runs once as it is, then mutations.
        let input = match corpus.entries.get(report.execs as usize) {
            Some(seed) if (report.execs as usize) < corpus.seeds => seed.clone(),
            _ => {
                let base = corpus.pick(&mut rng).to_vec();
                mutator.mutate(&mut rng, &base, &corpus.entries)
            }
        };
        {
            let mut current = shared
                .current
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            current.clear();
            current.extend_from_slice(&input);
        }
        let panics_before = PANICS.load(Ordering::SeqCst);
        shared.started.store(nanos_since(origin), Ordering::SeqCst);
        let began = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| (target.run)(&mut ctx, &input)));
        let took = began.elapsed();
        shared.started.store(0, Ordering::SeqCst);
        report.execs += 1;
        total_len += input.len() as u128;
        if took > report.slowest {
            report.slowest = took;
            report.slowest_len = input.len();
        }
        // A panic inside a task the target spawned is caught by tokio, not by catch_unwind: the hook sees both.
        let panicked = result.is_err() || PANICS.load(Ordering::SeqCst) != panics_before;
        if panicked {
            let message = LAST_PANIC
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
                .unwrap_or_else(|| "unknown panic".to_owned());
            report.panics += 1;
            let count = report.unique_panics.entry(message.clone()).or_insert(0);
            *count += 1;
            if *count == 1 {
                let path = save_artifact(
                    &options.artifacts,
                    target.name,
                    "panic",
                    &input,
                    &format!(
                        "{message}\n(seed {}, execution {})",
                        options.seed, report.execs
                    ),
                );
                eprintln!(
                    "{}: PANIC {message}; input saved to {}",
                    target.name,
                    path.display()
                );
            }
            // The context may be half-updated; start from a fresh one.
            ctx = Ctx::new(target.needs_services)?;
        } else if took > options.timeout {
            report.hangs += 1;
            let path = save_artifact(
                &options.artifacts,
                target.name,
                "hang",
                &input,
                &format!(
                    "took {took:?} (limit {:?}, seed {})",
                    options.timeout, options.seed
                ),
            );
            eprintln!(
                "{}: HANG one execution took {took:?} (limit {:?}); input saved to {}",
                target.name,
                options.timeout,
                path.display()
            );
        } else if matches!(result, Ok(true)) {
            report.accepted += 1;
            if rng.one_in(8) && !corpus.entries.contains(&input) {
                corpus.add(&mut rng, input);
            }
        }
    }
    report.elapsed = start.elapsed();
    report.corpus = corpus.entries.len();
    report.mean_len = u64::try_from(total_len / u128::from(report.execs.max(1))).unwrap_or(0);
    Ok(report)
}

/// FNV-1a, to name artifacts by content.
fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Writes `input` to `<artifacts>/<target>/<kind>-<hash>` and `note` next to it (`.txt`).
pub fn save_artifact(
    artifacts: &Path,
    target: &str,
    kind: &str,
    input: &[u8],
    note: &str,
) -> PathBuf {
    let dir = artifacts.join(target);
    let path = dir.join(format!("{kind}-{:016x}", fnv(input)));
    let written = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&path, input))
        .and_then(|()| std::fs::write(path.with_extension("txt"), format!("{note}\n")));
    if let Err(error) = written {
        eprintln!("{target}: cannot save {}: {error}", path.display());
    }
    path
}

/// Runs saved inputs once each (to reproduce a finding); true when none panicked or hung.
pub fn replay(
    target: &'static Target,
    files: &[PathBuf],
    timeout: Duration,
) -> Result<bool, String> {
    let mut ctx = Ctx::new(target.needs_services)?;
    let mut clean = true;
    // The `.txt` notes next to saved inputs are skipped, so `artifacts/<target>/*` works.
    for file in files
        .iter()
        .filter(|f| f.extension().is_none_or(|e| e != "txt"))
    {
        let input = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
        let before = PANICS.load(Ordering::SeqCst);
        let began = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| (target.run)(&mut ctx, &input)));
        let took = began.elapsed();
        let verdict = if result.is_err() || PANICS.load(Ordering::SeqCst) != before {
            clean = false;
            ctx = Ctx::new(target.needs_services)?;
            let message = LAST_PANIC
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
                .unwrap_or_default();
            format!("PANIC {message}")
        } else if took > timeout {
            clean = false;
            format!("HANG ({took:?})")
        } else {
            format!("ok, accepted={} ({took:?})", matches!(result, Ok(true)))
        };
        println!("{}: {verdict}", file.display());
    }
    Ok(clean)
}
