//! Crash safety of the nightly validation's rollup check (DESIGN 1.5, issue #13): a process running
//! the check is SIGKILLed at seeded random points while it goes from one range of organizations to the
//! next, and started again on the same data directory until the check finishes. The store then equals,
//! digest for digest (records, events, timelines, every rollup), the store of one uninterrupted check
//! of a copy, and the drift it reports is the same.
//!
//! Replay a failure with `ZDSYNC_CRASH_SEED=<seed printed by the failing run>`.
use std::io::{BufRead, BufReader, Write};
use std::ops::ControlFlow;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use zdsync::store::page::PageWrite;
use zdsync::store::zendesk_records::{RatingRecord, TicketRecord};
use zdsync::store::{Store, DATABASE_FILE};

/// Where the child process finds the store it checks.
const CHILD_DIR: &str = "ZDSYNC_VALIDATION_CRASH_DIR";

/// The seed used when `ZDSYNC_CRASH_SEED` is not set.
const DEFAULT_CRASH_SEED: u64 = 0x0DD5_EED5;

/// Rollup rows per pass: small, so the check takes many passes (and short write transactions).
const ROWS_PER_PASS: usize = 60;

/// Fewest kills the check must survive.
const KILLS: usize = 8;

const DAY: i64 = 86_400;

/// The child: runs (or resumes) the check on the store in `CHILD_DIR`, printing each pass as it begins
/// to write, then the drift.
#[test]
#[ignore = "the child process of the crash test below, started by it"]
fn child_runs_the_rollup_check() {
    let dir = std::env::var(CHILD_DIR).expect("the crash test sets the data directory");
    let store = Store::open(Path::new(&dir)).expect("open the store");
    let drift = store
        .check_rollups(ROWS_PER_PASS, |pass| {
            let mut out = std::io::stdout().lock();
            writeln!(out, "\ncheck: pass {}", pass.number).expect("stdout");
            out.flush().expect("flush");
            ControlFlow::Continue(())
        })
        .expect("check")
        .expect("never asked to stop");
    // On a line of its own: libtest prints the test's name on the line the output starts on.
    println!("\ncheck: done {drift}");
}

/// 3,000 tickets over 100 organizations and a year, a fifth of them rated; then a few tickets changed
/// behind the rollups' back, so the check has rows to repair.
fn seed(store: &Store) {
    let now = chrono::Utc::now().timestamp();
    // Spread over five statuses and priorities, nine requesters, 100 organizations, a year of days.
    let ticket = |id: u64| {
        let small = |n: u64| u32::try_from(n).expect("small");
        let at = now - i64::from(small(id % 365)) * DAY;
        TicketRecord {
            subject: format!("ticket {id}"),
            status: small(1 + id % 5),
            priority: small(id % 5),
            requester_id: 1 + id % 9,
            organization_id: 1 + id % 100,
            created_at: at,
            updated_at: at,
            generated_timestamp: at,
            ..Default::default()
        }
    };
    let page = PageWrite {
        tickets: (1..=3_000).map(|id| (id, ticket(id))).collect(),
        ratings: (1..=600)
            .map(|id| {
                let rating = RatingRecord {
                    ticket_id: id * 5,
                    score: if id % 3 == 0 { "bad" } else { "good" }.into(),
                    updated_at: now - i64::try_from(id).expect("small") * DAY / 2,
                    ..Default::default()
                };
                (id, rating)
            })
            .collect(),
        ..Default::default()
    };
    store.apply_page(&page).expect("seed");
    for id in [7, 1_234, 2_999] {
        let moved = TicketRecord {
            organization_id: 42,
            status: 4,
            ..ticket(id)
        };
        store.put_ticket_raw(id, &moved).expect("tamper");
    }
    store.reset_validation().expect("a validation starts");
}

/// Runs the child on `dir`; kills it with SIGKILL right after it announced pass `kill_after` (when
/// given). Returns the drift when the check finished.
fn life(dir: &Path, kill_after: Option<u64>) -> Option<u64> {
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "child_runs_the_rollup_check",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the child");
    let stdout = child.stdout.take().expect("child stdout");
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("child output");
        if let Some((_, drift)) = line.split_once("check: done ") {
            assert!(child.wait().expect("child exit").success());
            return Some(drift.parse().expect("drift"));
        }
        let pass = line
            .split_once("check: pass ")
            .and_then(|(_, n)| n.parse::<u64>().ok());
        if pass.is_some() && pass == kill_after {
            child.kill().expect("SIGKILL");
            let status = child.wait().expect("child exit");
            assert_eq!(status.signal(), Some(9), "killed: {status}");
            return None;
        }
    }
    let status = child.wait().expect("child exit");
    panic!("the child ended without finishing the check: {status}");
}

#[test]
fn sigkill_during_the_rollup_check_resumes_to_the_state_of_an_uninterrupted_check() {
    let seed_value = match std::env::var("ZDSYNC_CRASH_SEED") {
        Ok(text) if !text.trim().is_empty() => text.trim().parse().expect("a number"),
        _ => DEFAULT_CRASH_SEED,
    };
    println!("crash seed {seed_value} (replay with ZDSYNC_CRASH_SEED={seed_value})");
    let mut rng = StdRng::seed_from_u64(seed_value);
    let dir = tempfile::tempdir().expect("tempdir");
    let (crashed, reference) = (dir.path().join("crashed"), dir.path().join("reference"));
    for data in [&crashed, &reference] {
        std::fs::create_dir_all(data).expect("mkdir");
    }
    seed(&Store::open(&crashed).expect("open"));
    std::fs::copy(crashed.join(DATABASE_FILE), reference.join(DATABASE_FILE)).expect("copy");

    let reference = Store::open(&reference).expect("open the reference");
    let mut passes = 0;
    let expected = reference
        .check_rollups(ROWS_PER_PASS, |_| {
            passes += 1;
            ControlFlow::Continue(())
        })
        .expect("uninterrupted check")
        .expect("not stopped");
    assert!(expected > 0, "the tampered tickets moved rollup rows");
    assert!(passes > 20, "{passes} passes");

    let mut kills = 0;
    let drift = loop {
        // Mostly early in a life, so the kills spread over the whole check.
        let kill_after = rng.random_range(1..=passes / KILLS as u64);
        match life(&crashed, Some(kill_after)) {
            Some(drift) => break drift,
            None => kills += 1,
        }
    };
    println!("{kills} kills");
    assert!(kills >= KILLS, "only {kills} kills before the check ended");
    assert_eq!(
        drift, expected,
        "the drift is counted once across the kills"
    );
    // Done: a later life reports the same drift without another pass.
    assert_eq!(life(&crashed, None), Some(expected));
    let crashed = Store::open(&crashed).expect("open after the kills");
    assert_eq!(
        crashed.content_digest().expect("digest"),
        reference.content_digest().expect("digest"),
        "the resumed check left what one uninterrupted check did (seed {seed_value})"
    );
}
