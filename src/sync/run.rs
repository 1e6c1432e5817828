//! One sync run: each page applied with its cursor in one transaction. The incremental exports are read in
//! order; the lists of Zendesk's other endpoints are read beside them, on their own budget.
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, TimeDelta, Utc};
use tracing::Instrument;

use crate::clock::SharedClock;
use crate::store::page::{ApplyOutcome, PageContext, PageWrite};
use crate::store::tables::cursor_keys;
use crate::store::validation::ROLLUP_ROWS_PER_PASS;
use crate::store::{Store, StoreError};
use crate::zendesk::streams::{Page, PageStream};
use crate::zendesk::{ExportPosition, ListPosition, TimePosition, ZendeskClient, ZendeskError};

use super::convert;
pub use super::run_types::{Phase, Progress, RunError, RunKind, RunSummary};

/// Records staged before a commit (as [`crate::store::page::PageWrite::commit_weight`] counts them): a
/// transaction per fetched page rewrites every B-tree leaf the page touches, so several pages share one (each
/// commit still carries the cursor that follows its last page).
pub const BATCH_RECORDS: usize = 20_000;
/// A stream's first commits take a smaller share of the bounds, doubling each commit: the first after
/// 1/2^`RAMP_STEPS` of them, the `RAMP_STEPS`+1-th and later at the full bounds. The commit thread idles while
/// a stream's first batch is fetched, and at 50,000 tickets a first batch of 100 ticket-event pages kept it idle
/// for about 0.1 s; smaller first commits start it sooner, and the batches still grow to the bounds, which is
/// what spares the rewrites of large tables.
pub const RAMP_STEPS: u32 = 4;
/// Staged pages are committed once the next fetch has taken this long.
pub const FLUSH_AFTER: std::time::Duration = std::time::Duration::from_millis(250);

/// The (records, pages) a stream's batch holds at most once it started `commits` commits, `max_pages` being
/// the configured bound: a share of [`BATCH_RECORDS`] and of `max_pages` that doubles from 1/2^[`RAMP_STEPS`]
/// with each commit up to all of them (at least one page).
fn ramped_bounds(commits: u32, max_pages: u64) -> (usize, u64) {
    let shift = RAMP_STEPS.saturating_sub(commits);
    ((BATCH_RECORDS >> shift).max(1), (max_pages >> shift).max(1))
}

/// Fetched pages waiting for their commit, and the commit running in the background.
#[derive(Debug, Default)]
struct Batch {
    /// The phase whose pages these are (for the metrics).
    phase: u32,
    write: PageWrite,
    pages: u64,
    tickets: u64,
    records: usize,
    /// The previous batch's commit, still running while the next pages are fetched.
    in_flight: Option<InFlight>,
    /// What the finished commits of this batch's stream did, summed.
    applied: ApplyOutcome,
    /// Commits this stream started so far (the first ones are smaller: [`RAMP_STEPS`]).
    commits: u32,
}

/// A commit running on the blocking pool; it counts itself in the run's progress once durable.
#[derive(Debug)]
struct InFlight {
    /// What the commit did, and the pages it applied, handed back to be freed off the commit thread.
    commit: tokio::task::JoinHandle<(Result<ApplyOutcome, StoreError>, PageWrite)>,
}

impl Batch {
    fn add(&mut self, mut page: PageWrite, tickets: u64) {
        page.encode_ahead();
        self.records += page.commit_weight();
        self.pages += 1;
        self.tickets += tickets;
        self.write.append(page);
    }

    fn is_full(&self, max_pages: u64) -> bool {
        let (records, pages) = ramped_bounds(self.commits, max_pages);
        self.records >= records || self.pages >= pages
    }
}

/// Which of a run's concurrent streams a context drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lane {
    /// The incremental exports, in order: its phase is stored with the run, and a resumed run continues there.
    #[default]
    Exports,
    /// The lists of other endpoints, read beside the exports; a resumed run reads them again from their cursors.
    Lists,
}

/// The run's single writer: the lanes fetch side by side, but their commits go through here one at a time,
/// each with the run's page and ticket totals as they stand after it.
#[derive(Debug, Clone)]
pub struct CommitWriter {
    totals: Arc<Mutex<(u64, u64)>>,
}

impl CommitWriter {
    /// A writer whose run has committed `pages` pages and `tickets` tickets so far.
    pub fn new(pages: u64, tickets: u64) -> Self {
        Self {
            totals: Arc::new(Mutex::new((pages, tickets))),
        }
    }

    /// Applies `write` (blocking) with the run's totals after it; the totals, and the live `progress` of
    /// `phase`, move only once it is durable, so `GetStatus` counts a commit as soon as it is, even while
    /// the lane's next fetch waits on the budget.
    fn apply(
        &self,
        store: &Store,
        write: &mut PageWrite,
        (pages, tickets): (u64, u64),
        progress: &Mutex<Progress>,
        phase: u32,
    ) -> Result<ApplyOutcome, StoreError> {
        let mut totals = self.totals.lock().unwrap_or_else(PoisonError::into_inner);
        let after = (totals.0 + pages, totals.1 + tickets);
        write.run_progress = Some(after);
        let outcome = store.apply_page(write)?;
        *totals = after;
        {
            let mut p = progress.lock().unwrap_or_else(PoisonError::into_inner);
            p.pages += pages;
            p.tickets += tickets;
            p.events += outcome.events_recorded;
            p.rollup_rows_drifted += outcome.rollup_rows_drifted;
        }
        crate::telemetry::pages_applied(
            super::progress::phase_name(phase),
            pages,
            tickets,
            outcome.events_recorded,
        );
        Ok(outcome)
    }
}

/// How far back the first sync reads ratings and ticket events, and the validation re-exports.
pub const HISTORY_WINDOW: TimeDelta = TimeDelta::days(365);

/// Asks a run to stop: checked at every page boundary, and it also ends a fetch that is waiting (on a rate
/// limit, the request budget or a retry), so a pause never waits out Zendesk's `Retry-After`.
#[derive(Debug, Clone, Default)]
pub struct StopSignal {
    raised: Arc<AtomicBool>,
    wake: Arc<tokio::sync::Notify>,
}

impl StopSignal {
    /// Asks the run to stop.
    pub fn raise(&self) {
        self.raised.store(true, Ordering::SeqCst);
        self.wake.notify_waiters();
    }

    /// Whether a stop was asked.
    pub fn is_raised(&self) -> bool {
        self.raised.load(Ordering::SeqCst)
    }

    /// Completes once a stop is asked.
    pub async fn raised(&self) {
        loop {
            let woken = self.wake.notified();
            tokio::pin!(woken);
            // Registered before the check, so a `raise` between the two is not missed.
            woken.as_mut().enable();
            if self.is_raised() {
                return;
            }
            woken.await;
        }
    }
}

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct RunContext {
    /// The store pages are applied to.
    pub store: Store,
    /// The Zendesk client.
    pub client: ZendeskClient,
    /// The run id.
    pub run_id: u64,
    /// The run kind.
    pub kind: RunKind,
    /// When set, the run stops at the next page boundary.
    pub stop: StopSignal,
    /// Live progress.
    pub progress: Arc<Mutex<Progress>>,
    /// The clock.
    pub clock: SharedClock,
    /// When the run (first) started; fixes the history window so a resumed run reads the same range.
    pub started_at: DateTime<Utc>,
    /// The phase to resume from (a crash or pause interrupted this run there).
    pub resume_phase: Option<u32>,
    /// Zendesk refuses the ticket events export: events come from ticket snapshots (DESIGN 1.4 fallback).
    pub snapshot_events: Arc<AtomicBool>,
    /// Fetched pages applied per write transaction at most (`[schedule] pages_per_commit`).
    pub pages_per_commit: u64,
    /// The lane this context drives (the engine starts a run on `Lane::Exports`).
    pub lane: Lane,
    /// Commits every lane's pages, one at a time.
    pub writer: CommitWriter,
}

impl RunContext {
    fn check_stop(&self) -> Result<(), RunError> {
        if self.stop.is_raised() {
            Err(RunError::Stopped)
        } else {
            Ok(())
        }
    }

    fn with_progress(&self, change: impl FnOnce(&mut Progress)) {
        let mut progress = self.progress.lock().unwrap_or_else(PoisonError::into_inner);
        change(&mut progress);
    }

    /// Starts committing the staged pages in one durable transaction, with the cursor that follows the last of
    /// them, once the previous commit finished. The commit runs on the blocking pool while the run fetches
    /// and decodes the next pages; `settle` waits for it.
    async fn flush(&self, batch: &mut Batch) -> Result<(), RunError> {
        self.settle(batch).await?;
        if batch.pages == 0 {
            return Ok(());
        }
        let mut write = std::mem::take(&mut batch.write);
        batch.commits = batch.commits.saturating_add(1);
        let (pages, tickets) = (batch.pages, batch.tickets);
        (batch.pages, batch.tickets, batch.records) = (0, 0, 0);
        write.context = PageContext {
            first_sync: self.kind == RunKind::Initial,
            snapshot_events: self.snapshot_events.load(Ordering::SeqCst),
            now_ms: self.clock.now().timestamp_millis(),
        };
        let (store, writer, progress) = (
            self.store.clone(),
            self.writer.clone(),
            self.progress.clone(),
        );
        let phase = batch.phase;
        batch.in_flight = Some(InFlight {
            commit: tokio::task::spawn_blocking(move || {
                let outcome = writer.apply(&store, &mut write, (pages, tickets), &progress, phase);
                (outcome, write)
            }),
        });
        Ok(())
    }

    /// Waits for the commit in flight (if any) and adds what it found to the batch's stream.
    async fn settle(&self, batch: &mut Batch) -> Result<(), RunError> {
        let Some(in_flight) = batch.in_flight.take() else {
            return Ok(());
        };
        let (outcome, applied) = in_flight
            .commit
            .await
            .map_err(|err| RunError::Task(err.to_string()))?;
        // Freed here, on the lane's task, rather than on the commit thread, which every commit of the run
        // goes through: at 1,000,000 tickets freeing a commit's pages was 5-6 % of that thread's samples
        // (perf); the lane's thread has time to spare while it waits for the next commit.
        drop(applied);
        let outcome = outcome?;
        batch.applied.tickets_drifted += outcome.tickets_drifted;
        batch.applied.tickets_drift_added += outcome.tickets_drift_added;
        Ok(())
    }

    /// Commits everything staged and waits until it is durable.
    async fn commit_all(&self, batch: &mut Batch) -> Result<(), RunError> {
        self.flush(batch).await?;
        self.settle(batch).await
    }

    /// Stages a fetched page; starts a commit when the batch is full, and commits everything when the stream
    /// ended.
    async fn stage(
        &self,
        batch: &mut Batch,
        write: PageWrite,
        tickets: u64,
        end: bool,
    ) -> Result<(), RunError> {
        batch.add(write, tickets);
        if end {
            self.commit_all(batch).await
        } else if batch.is_full(self.pages_per_commit) {
            self.flush(batch).await
        } else {
            Ok(())
        }
    }

    /// A page boundary: when a stop was asked, commits what was fetched and stops.
    async fn boundary(&self, batch: &mut Batch) -> Result<(), RunError> {
        if self.check_stop().is_err() {
            self.commit_all(batch).await?;
            return Err(RunError::Stopped);
        }
        Ok(())
    }

    /// Fetches the next page. Staged pages are committed first when the fetch fails or ends the stream, and
    /// also when the fetch is slow (rate limits, budget waits, a slow Zendesk), so batching never holds
    /// fetched data back for longer than `FLUSH_AFTER`.
    async fn fetched<T>(
        &self,
        batch: &mut Batch,
        fetch: impl std::future::Future<Output = Result<Option<T>, ZendeskError>>,
    ) -> Result<Option<T>, RunError> {
        tokio::pin!(fetch);
        // A stop asked while the fetch waits drops the fetch: nothing of it was applied, the staged pages
        // commit with their cursor, and the next run fetches the page again. (A token refresh inside the fetch
        // runs to its end on a task of its own, so its rotated pair is never lost.)
        let fetched = loop {
            tokio::select! {
                fetched = &mut fetch => break fetched,
                () = self.stop.raised() => {
                    self.commit_all(batch).await?;
                    return Err(RunError::Stopped);
                }
                // Once flushed nothing is staged, so this branch is off for the rest of the fetch.
                () = tokio::time::sleep(FLUSH_AFTER), if batch.pages > 0 => self.flush(batch).await?,
            }
        };
        match fetched {
            Ok(Some(page)) => Ok(Some(page)),
            Ok(None) => {
                self.commit_all(batch).await?;
                Ok(None)
            }
            Err(err) => {
                self.commit_all(batch).await?;
                Err(err.into())
            }
        }
    }

    async fn stored_position<T: serde::de::DeserializeOwned>(
        &self,
        key: &'static str,
    ) -> Result<Option<T>, RunError> {
        let store = self.store.clone();
        let bytes = tokio::task::spawn_blocking(move || store.cursor(key))
            .await
            .map_err(|err| RunError::Task(err.to_string()))??;
        // A cursor zdsync cannot read (older format) is dropped; the stream then starts over, and duplicates are harmless.
        Ok(bytes.and_then(|b| serde_json::from_slice(&b).ok()))
    }

    /// Enters `phase`: a phase of the exports is stored with the run (a resumed run continues there).
    async fn mark_phase(&self, phase: Phase) -> Result<(), RunError> {
        if self.lane == Lane::Lists {
            self.with_progress(|p| p.list_phase = phase.code());
            return Ok(());
        }
        let store = self.store.clone();
        let code = phase.code();
        tokio::task::spawn_blocking(move || {
            store.update_sync_state(|state| {
                if let Some(active) = state.active_run.as_mut() {
                    active.phase = code;
                }
            })
        })
        .await
        .map_err(|err| RunError::Task(err.to_string()))??;
        self.with_progress(|p| super::progress::enter_phase(p, code));
        Ok(())
    }

    /// `phase` is applied to its end.
    fn finish_phase(&self, phase: Phase) {
        self.with_progress(|p| {
            super::progress::finish_phase(p, self.kind, phase.code());
            if self.lane == Lane::Lists {
                p.list_phase = 0;
            }
        });
    }

    /// The phase this context's lane is reading.
    fn current_phase(&self) -> u32 {
        let progress = self.progress.lock().unwrap_or_else(PoisonError::into_inner);
        match self.lane {
            Lane::Exports => progress.phase,
            Lane::Lists => progress.list_phase,
        }
    }

    fn history_start(&self) -> i64 {
        (self.started_at - HISTORY_WINDOW).timestamp()
    }
}

fn position_bytes<T: serde::Serialize>(position: &T) -> Vec<u8> {
    // Positions are plain enums and strings: serialising them cannot fail.
    serde_json::to_vec(position).unwrap_or_default()
}

/// Runs every phase of `ctx.kind` from `ctx.resume_phase` (or the first), page by page: the exports in order,
/// and from the first export on, the kind's list phases beside them.
pub async fn execute(ctx: RunContext) -> Result<RunSummary, RunError> {
    let lists = ctx.kind.list_phases();
    let exports: Vec<Phase> = ctx
        .kind
        .phases()
        .iter()
        .copied()
        .filter(|phase| !lists.contains(phase))
        .collect();
    let resumed_at = ctx
        .resume_phase
        .and_then(|code| exports.iter().position(|p| p.code() == code));
    let first = resumed_at.unwrap_or(0);
    if first == 0 && ctx.kind == RunKind::FullValidation && ctx.resume_phase.is_none() {
        let store = ctx.store.clone();
        tokio::task::spawn_blocking(move || store.reset_validation())
            .await
            .map_err(|err| RunError::Task(err.to_string()))??;
    }
    for done in &exports[..first] {
        ctx.finish_phase(*done);
    }
    // The group list (one or two requests) goes first, as before: the lanes start with the first export.
    let head = exports[first..]
        .iter()
        .take_while(|phase| **phase == Phase::Groups)
        .count();
    let mut summary = RunSummary::default();
    for (index, phase) in exports[first..first + head].iter().enumerate() {
        let resuming = index == 0 && resumed_at.is_some();
        summary.merge(run_phase(&ctx, *phase, resuming).await?);
    }
    let exports = &exports[first + head..];
    // The lists' cursors belong to this run once its lanes had started, i.e. it stopped in an export.
    let lists_resuming = resumed_at.is_some_and(|at| at > 0);
    // Boxed: both lanes' futures live in it.
    summary.merge(
        Box::pin(run_lanes(
            &ctx,
            exports,
            head == 0 && resumed_at.is_some(),
            lists,
            lists_resuming,
        ))
        .await?,
    );
    Ok(summary)
}

/// Runs `exports` in order and `lists` in order beside them (`*_resuming`: the first phase of each continues
/// from its stored cursor). A lane that fails stops the other at its next page boundary, with what it
/// fetched committed; the run then ends with the failure.
async fn run_lanes(
    ctx: &RunContext,
    exports: &[Phase],
    exports_resuming: bool,
    lists: &[Phase],
    lists_resuming: bool,
) -> Result<RunSummary, RunError> {
    if lists.is_empty() {
        return run_lane(ctx, exports, exports_resuming).await;
    }
    let stop = StopSignal::default();
    let lane = |lane: Lane| RunContext {
        lane,
        stop: stop.clone(),
        ..ctx.clone()
    };
    let (export_ctx, list_ctx) = (lane(Lane::Exports), lane(Lane::Lists));
    let exporting = async {
        let result = run_lane(&export_ctx, exports, exports_resuming).await;
        if result.is_err() {
            stop.raise();
        }
        result
    };
    let listing = async {
        let result = run_lane(&list_ctx, lists, lists_resuming).await;
        if result.is_err() {
            stop.raise();
        }
        result
    };
    let both = async { tokio::join!(exporting, listing) };
    tokio::pin!(both);
    let (exported, listed) = tokio::select! {
        results = &mut both => results,
        () = ctx.stop.raised() => {
            stop.raise();
            both.await
        }
    };
    match (exported, listed) {
        (Ok(mut summary), Ok(other)) => {
            summary.merge(other);
            Ok(summary)
        }
        // The failure that stopped the other lane, rather than that lane's `Stopped`.
        (Err(RunError::Stopped), Err(err)) => Err(err),
        (Err(err), _) | (Ok(_), Err(err)) => Err(err),
    }
}

/// Runs `phases` one after the other; `resuming`: the first continues from its stored cursor.
async fn run_lane(
    ctx: &RunContext,
    phases: &[Phase],
    resuming: bool,
) -> Result<RunSummary, RunError> {
    let mut summary = RunSummary::default();
    for (index, phase) in phases.iter().enumerate() {
        summary.merge(run_phase(ctx, *phase, resuming && index == 0).await?);
    }
    Ok(summary)
}

/// Reads one stream to its end; `resuming`: from the cursor an interrupted run of it stored.
async fn run_phase(ctx: &RunContext, phase: Phase, resuming: bool) -> Result<RunSummary, RunError> {
    let mut summary = RunSummary::default();
    ctx.mark_phase(phase).await?;
    let span = tracing::info_span!("phase", run = ctx.run_id, phase = ?phase, lane = ?ctx.lane);
    match phase {
        Phase::Groups => groups(ctx).instrument(span).await?,
        Phase::Organizations => organizations(ctx).instrument(span).await?,
        Phase::Users => users(ctx).instrument(span).await?,
        Phase::Tickets => tickets(
            ctx,
            cursor_keys::TICKETS,
            ExportPosition::StartTime(0),
            None,
        )
        .instrument(span)
        .await
        .map(|_| ())?,
        Phase::ValidationTickets => {
            let start = ctx.history_start();
            let drift = tickets(
                ctx,
                cursor_keys::VALIDATION_TICKETS,
                ExportPosition::StartTime(start),
                Some(ctx.run_id),
            )
            .instrument(span)
            .await?;
            summary.tickets_changed = drift.tickets_drifted;
            summary.tickets_added = drift.tickets_drift_added;
            let store = ctx.store.clone();
            let run = ctx.run_id;
            summary.tickets_missing =
                tokio::task::spawn_blocking(move || -> Result<u64, StoreError> {
                    let missing = store.mark_unseen_tickets_gone(run, start)?;
                    Ok(missing)
                })
                .await
                .map_err(|err| RunError::Task(err.to_string()))??;
            // Derived state is checked against the tickets, one range of organizations per short
            // transaction; what differed is drift. A stop asked meanwhile ends the run between two
            // ranges, and the run resumes the check where it stopped.
            let store = ctx.store.clone();
            let stop = ctx.stop.clone();
            let checked = tokio::task::spawn_blocking(move || {
                store.check_rollups(ROLLUP_ROWS_PER_PASS, |_| {
                    if stop.is_raised() {
                        ControlFlow::Break(())
                    } else {
                        ControlFlow::Continue(())
                    }
                })
            })
            .await
            .map_err(|err| RunError::Task(err.to_string()))??;
            summary.derived_differences = checked.ok_or(RunError::Stopped)?;
            // Change history older than the year events are kept for goes, so the store stays bounded.
            let store = ctx.store.clone();
            let pruned = tokio::task::spawn_blocking(move || store.prune_ticket_history(start))
                .await
                .map_err(|err| RunError::Task(err.to_string()))??;
            tracing::info!(rows = pruned, "pruned ticket history older than a year");
        }
        Phase::TicketEvents => match ticket_events(ctx).instrument(span).await {
            Ok(()) => {}
            Err(RunError::Zendesk(ZendeskError::PermissionDenied { .. })) => {
                ctx.snapshot_events.store(true, Ordering::SeqCst);
                tracing::warn!("Zendesk refused the ticket events export (403): events come from ticket snapshots");
                summary.ticket_events_refused = true;
            }
            Err(err) => return Err(err),
        },
        Phase::Ratings => ratings(ctx, resuming).instrument(span).await?,
    }
    ctx.finish_phase(phase);
    Ok(summary)
}

/// What one fetched page stages: its write, the tickets it holds, whether the stream ended with it, and the
/// update times (Unix ms, oldest and newest) its records span in a time-ordered export.
struct Staged {
    write: PageWrite,
    tickets: u64,
    end: bool,
    times: Option<(i64, i64)>,
    /// Pages the whole listing takes, where the endpoint says how many records it holds.
    expected_pages: Option<u64>,
}

impl Staged {
    /// A page of side records (no tickets).
    fn records(write: PageWrite, end: bool) -> Self {
        Self {
            write,
            tickets: 0,
            end,
            times: None,
            expected_pages: None,
        }
    }
}

/// A page's records by id, as the store keeps them.
fn by_id<R, T>(records: Vec<R>, id: impl Fn(&R) -> u64, convert: impl Fn(R) -> T) -> Vec<(u64, T)> {
    records.into_iter().map(|r| (id(&r), convert(r))).collect()
}

/// The cursor `key` moves to with a page.
fn cursor<P: serde::Serialize>(key: &str, position: &P) -> Vec<(String, Vec<u8>)> {
    vec![(key.into(), position_bytes(position))]
}

/// Drives one stream to its end: fetches page after page, stages what `stage` makes of each, commits in
/// batches, and stops at a page boundary when asked. Returns what the commits applied.
async fn drain<S: PageStream>(
    ctx: &RunContext,
    mut stream: S,
    mut stage: impl FnMut(S::Page) -> Staged,
) -> Result<ApplyOutcome, RunError> {
    let mut batch = Batch {
        phase: ctx.current_phase(),
        ..Batch::default()
    };
    loop {
        ctx.boundary(&mut batch).await?;
        let Some(page) = ctx.fetched(&mut batch, stream.next_page()).await? else {
            return Ok(batch.applied);
        };
        let Staged {
            write,
            tickets,
            end,
            times,
            expected_pages,
        } = stage(page);
        if ctx.lane == Lane::Exports {
            // The phase counters (and the estimate of the time left) follow the exports, which set the pace.
            ctx.with_progress(|p| super::progress::page_fetched(p, times, end, expected_pages));
        }
        ctx.stage(&mut batch, write, tickets, end).await?;
        if end {
            return Ok(batch.applied);
        }
    }
}

async fn groups(ctx: &RunContext) -> Result<(), RunError> {
    drain_side(ctx, ctx.client.groups(), None, |records, write| {
        write.groups = by_id(records, |g| g.id, convert::group);
    })
    .await
}

/// Drains a stream of side records (no tickets): `fill` puts a page's records into its write, and
/// the page's position is stored under `key` when the stream has one.
async fn drain_side<S, R, P>(
    ctx: &RunContext,
    stream: S,
    key: Option<&'static str>,
    fill: impl Fn(Vec<R>, &mut PageWrite),
) -> Result<(), RunError>
where
    S: PageStream<Page = Page<R, P>>,
    P: serde::Serialize,
    R: super::progress::TimeOrdered,
{
    drain(ctx, stream, |page| {
        let times = super::progress::time_span(
            page.records
                .iter()
                .filter_map(super::progress::TimeOrdered::updated_at),
        );
        let expected_pages = super::progress::pages_for(page.total, page.records.len());
        let mut write = PageWrite::default();
        fill(page.records, &mut write);
        if let Some(key) = key {
            write.cursors = cursor(key, &page.position);
        }
        Staged {
            times,
            expected_pages,
            ..Staged::records(write, page.end_of_stream)
        }
    })
    .await
    .map(|_| ())
}

/// Drains the export `open` starts from the position stored under `key` (or `start`), storing each
/// page's position under `key`.
async fn drain_export<T, S, R>(
    ctx: &RunContext,
    key: &'static str,
    start: T,
    open: impl FnOnce(&ZendeskClient, T) -> S,
    fill: impl Fn(Vec<R>, &mut PageWrite),
) -> Result<(), RunError>
where
    T: serde::de::DeserializeOwned + serde::Serialize,
    S: PageStream<Page = Page<R, T>>,
    R: super::progress::TimeOrdered,
{
    let from = ctx.stored_position::<T>(key).await?.unwrap_or(start);
    drain_side(ctx, open(&ctx.client, from), Some(key), fill).await
}

async fn organizations(ctx: &RunContext) -> Result<(), RunError> {
    let start = TimePosition::from_start_time(0);
    let open = ZendeskClient::organization_export;
    drain_export(
        ctx,
        cursor_keys::ORGANIZATIONS,
        start,
        open,
        |records, write| {
            write.organizations = by_id(records, |o| o.id, convert::organization);
        },
    )
    .await
}

async fn users(ctx: &RunContext) -> Result<(), RunError> {
    let start = ExportPosition::StartTime(0);
    let open = ZendeskClient::user_export;
    drain_export(ctx, cursor_keys::USERS, start, open, |records, write| {
        write.users = by_id(records, |u| u.id, convert::user);
    })
    .await
}

/// Reads the ticket export from the stored cursor under `key` (or `start`); returns what its pages applied
/// (for a validation: the tickets that drifted).
async fn tickets(
    ctx: &RunContext,
    key: &'static str,
    start: ExportPosition,
    validation_run: Option<u64>,
) -> Result<ApplyOutcome, RunError> {
    let from = ctx
        .stored_position::<ExportPosition>(key)
        .await?
        .unwrap_or(start);
    let export = ctx.client.ticket_export(from);
    let applied = drain(ctx, export, |page| {
        let span = tracing::debug_span!("page", number = page.number, tickets = page.records.len());
        let _entered = span.enter();
        let times = super::progress::time_span(page.records.iter().map(|t| t.updated_at));
        let tickets = page.records.len() as u64;
        let mut write = convert::ticket_page(page.records, page.side_loads);
        write
            .cursors
            .push((key.into(), position_bytes(&page.position)));
        write.validation_run = validation_run;
        Staged {
            times,
            write,
            tickets,
            end: page.end_of_stream,
            expected_pages: None,
        }
    })
    .await?;
    Ok(applied)
}

async fn ticket_events(ctx: &RunContext) -> Result<(), RunError> {
    let start = TimePosition::from_start_time(ctx.history_start());
    let open = ZendeskClient::ticket_event_export;
    drain_export(
        ctx,
        cursor_keys::TICKET_EVENTS,
        start,
        open,
        |records, write| {
            write.changes = convert::ticket_changes(&records);
        },
    )
    .await
}

async fn ratings(ctx: &RunContext, resuming: bool) -> Result<(), RunError> {
    let since = ctx
        .stored_position::<i64>(cursor_keys::RATINGS_SINCE)
        .await?
        .unwrap_or_else(|| ctx.history_start());
    let from = if resuming {
        ctx.stored_position::<ListPosition>(cursor_keys::RATINGS)
            .await?
            .unwrap_or(ListPosition::Start)
    } else {
        ListPosition::Start
    };
    if from == ListPosition::Finished {
        return Ok(());
    }
    // The next run lists ratings from this run's start: a rating is never missed, and repeats are upserts.
    let next_since = ctx.started_at.timestamp() - 60;
    let list = ctx.client.satisfaction_ratings_from(since, from);
    drain(ctx, list, |page| {
        let cursors = if page.end_of_stream {
            // The listing is done: the next run starts a fresh listing from `next_since`.
            vec![
                (
                    cursor_keys::RATINGS.into(),
                    position_bytes(&ListPosition::Start),
                ),
                (
                    cursor_keys::RATINGS_SINCE.into(),
                    position_bytes(&next_since.max(since)),
                ),
            ]
        } else {
            cursor(cursor_keys::RATINGS, &page.position)
        };
        let ratings = by_id(page.records, |r| r.id, convert::rating);
        Staged::records(
            PageWrite {
                ratings,
                cursors,
                ..Default::default()
            },
            page.end_of_stream,
        )
    })
    .await
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream's bounds start at a sixteenth and double with each commit up to the configured ones; a bound
    /// never falls below one page or one record.
    #[test]
    fn a_streams_first_commits_are_smaller_and_grow_to_the_bounds() {
        let bounds: Vec<(usize, u64)> = (0..7).map(|commits| ramped_bounds(commits, 100)).collect();
        assert_eq!(
            bounds,
            [
                (BATCH_RECORDS / 16, 6),
                (BATCH_RECORDS / 8, 12),
                (BATCH_RECORDS / 4, 25),
                (BATCH_RECORDS / 2, 50),
                (BATCH_RECORDS, 100),
                (BATCH_RECORDS, 100),
                (BATCH_RECORDS, 100),
            ]
        );
        assert_eq!(ramped_bounds(0, 1), (BATCH_RECORDS / 16, 1));
        assert_eq!(ramped_bounds(u32::MAX, 1), (BATCH_RECORDS, 1));
        let mut batch = Batch {
            pages: 6,
            ..Batch::default()
        };
        assert!(batch.is_full(100), "the first commit after 6 of 100 pages");
        batch.commits = RAMP_STEPS;
        assert!(!batch.is_full(100), "later ones after 100");
    }
}
