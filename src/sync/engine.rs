//! The sync engine: one task that owns the schedule and the run in progress; gRPC talks to it by commands.
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::clock::SharedClock;
use crate::store::credentials::{self, CredentialsRecord};
use crate::store::sync_state::{ErrorRecord, IntegrationRecord, RunRecord, SyncStateRecord};
use crate::store::{Store, StoreError};
use crate::zendesk::{ClientObserver, Credentials, WaitReason, ZendeskClient, ZendeskError};

use super::codes::{error_kind, outcome, run_label};
use super::run::{self, Progress, RunContext, RunError, RunKind, RunSummary, StopSignal};
use super::runtime::SyncRuntime;
use super::schedule::{self, ScheduleSettings};
pub use super::settings::{client_settings, EngineSettings};

/// Why a command was refused.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// No integration is configured.
    #[error("no integration is configured; call Configure first")]
    NotConfigured,
    /// A run is in progress.
    #[error("run {0} is in progress; one run at a time")]
    Busy(String),
    /// The schedule is paused.
    #[error("the integration is paused; call Resume first")]
    Paused,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Credentials could not be read or the client not built.
    #[error("{0}")]
    Client(String),
    /// The engine has stopped (daemon shutting down).
    #[error("the sync engine is shutting down")]
    Stopped,
}

/// The run in progress as `GetStatus` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentRun {
    /// Run id.
    pub id: u64,
    /// Run kind.
    pub kind: RunKind,
    /// When it (first) started.
    pub started_at: DateTime<Utc>,
    /// Live counters.
    pub progress: Progress,
}

/// What the engine knows that the store does not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveStatus {
    /// The run in progress.
    pub current: Option<CurrentRun>,
    /// Until when the client waits out a Zendesk rate limit.
    pub rate_limited_until: Option<DateTime<Utc>>,
}

enum Command {
    Configured(oneshot::Sender<Result<String, CommandError>>),
    Force(RunKind, oneshot::Sender<Result<String, CommandError>>),
    Pause(oneshot::Sender<Result<Option<String>, CommandError>>),
    Resume(oneshot::Sender<Result<(), CommandError>>),
    CredentialsChanged(oneshot::Sender<Result<(), CommandError>>),
    Delete(oneshot::Sender<Result<(), CommandError>>),
}

/// A handle on the engine for gRPC handlers: commands never wait for a run.
#[derive(Debug, Clone)]
pub struct SyncHandle {
    commands: mpsc::Sender<Command>,
    live: Arc<Mutex<LiveState>>,
    settings: Arc<EngineSettings>,
    clock: SharedClock,
}

/// The run in progress as the live status holds it.
#[derive(Debug)]
struct LiveRun {
    id: u64,
    kind: RunKind,
    started_at: DateTime<Utc>,
    progress: Arc<Mutex<Progress>>,
    client: ZendeskClient,
    requests_base: u64,
}

#[derive(Debug, Default)]
struct LiveState {
    current: Option<LiveRun>,
    rate_limited_until: Option<DateTime<Utc>>,
}

impl SyncHandle {
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, CommandError>>) -> Command,
    ) -> Result<T, CommandError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(make(reply))
            .await
            .map_err(|_| CommandError::Stopped)?;
        answer.await.map_err(|_| CommandError::Stopped)?
    }

    /// Tells the engine an integration was stored: it builds its client and starts the first full sync.
    pub async fn configured(&self) -> Result<String, CommandError> {
        self.ask(Command::Configured).await
    }

    /// Starts a run now, unless one is running or the schedule is paused.
    pub async fn force(&self, kind: RunKind) -> Result<String, CommandError> {
        self.ask(|reply| Command::Force(kind, reply)).await
    }

    /// Pauses the schedule; a run in progress stops at its next page boundary. Returns that run's id.
    pub async fn pause(&self) -> Result<Option<String>, CommandError> {
        self.ask(Command::Pause).await
    }

    /// Resumes the schedule (and an interrupted run).
    pub async fn resume(&self) -> Result<(), CommandError> {
        self.ask(Command::Resume).await
    }

    /// Tells the engine the credentials file changed: it rebuilds its client and clears an authentication failure.
    pub async fn credentials_changed(&self) -> Result<(), CommandError> {
        self.ask(Command::CredentialsChanged).await
    }

    /// Stops any run and deletes the integration's settings, credentials, cursors and Zendesk records.
    pub async fn delete(&self) -> Result<(), CommandError> {
        self.ask(Command::Delete).await
    }

    /// The live part of the status.
    pub fn live(&self) -> LiveStatus {
        let live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        LiveStatus {
            current: live.current.as_ref().map(|run| {
                let mut progress = run
                    .progress
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                progress.requests = run
                    .client
                    .stats()
                    .requests
                    .saturating_sub(run.requests_base);
                CurrentRun {
                    id: run.id,
                    kind: run.kind,
                    started_at: run.started_at,
                    progress,
                }
            }),
            rate_limited_until: live
                .rate_limited_until
                .filter(|until| *until > self.clock.now()),
        }
    }

    /// The engine's settings.
    pub fn settings(&self) -> &EngineSettings {
        &self.settings
    }

    /// The clock the engine schedules by.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }
}

#[derive(Debug)]
struct RateLimitObserver {
    live: Arc<Mutex<LiveState>>,
    clock: SharedClock,
}

impl ClientObserver for RateLimitObserver {
    fn on_response(&self, endpoint: &str, status: Option<u16>) {
        crate::telemetry::zendesk_response(endpoint, status);
    }

    fn on_wait(&self, endpoint: &str, reason: WaitReason, duration: Duration) {
        crate::telemetry::zendesk_wait(endpoint, reason, duration);
        if let Some(run) = &self
            .live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .current
        {
            let mut progress = run.progress.lock().unwrap_or_else(PoisonError::into_inner);
            super::progress::count_wait(&mut progress, reason, duration);
        }
        if reason == WaitReason::RateLimited {
            tracing::info!(
                endpoint,
                wait_s = duration.as_secs_f64(),
                "Zendesk rate limit: waiting"
            );
            let until =
                self.clock.now() + chrono::TimeDelta::from_std(duration).unwrap_or_default();
            self.live
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .rate_limited_until = Some(until);
        }
    }
}

struct Running {
    id: u64,
    stop: StopSignal,
    task: JoinHandle<Result<RunSummary, RunError>>,
    progress: Arc<Mutex<Progress>>,
    client: ZendeskClient,
    requests_base: u64,
    stop_outcome: u32,
}

struct Engine {
    store: Store,
    settings: Arc<EngineSettings>,
    clock: SharedClock,
    live: Arc<Mutex<LiveState>>,
    client: Option<ZendeskClient>,
    running: Option<Running>,
    /// Where runs execute: threads of their own, below the serving threads' priority.
    sync_runtime: SyncRuntime,
    /// Set while the store cannot write: when to try again.
    recovery: Option<Recovery>,
    /// Rate limit of the "cannot read the sync state" line.
    plan_errors: LogLimit,
}

/// Retrying to write while the store cannot (full disk, I/O error).
#[derive(Debug)]
struct Recovery {
    next_attempt: tokio::time::Instant,
    backoff: Duration,
    log: LogLimit,
}

/// First wait before trying to write again; it doubles up to `EngineSettings::store_retry`.
const FIRST_STORE_RETRY: Duration = Duration::from_secs(1);

/// Least time between two log lines that repeat while a fault lasts.
const REPEAT_LOG_EVERY: Duration = Duration::from_secs(60);

/// Lets a repeating log line through at most once per [`REPEAT_LOG_EVERY`] (as the accept loop does for
/// EMFILE), so a fault that lasts does not flood the journal.
#[derive(Debug, Default)]
struct LogLimit {
    last: Option<tokio::time::Instant>,
}

impl LogLimit {
    /// Whether a line may be written now (it is then counted as written).
    fn allow(&mut self) -> bool {
        self.allow_at(tokio::time::Instant::now())
    }

    fn allow_at(&mut self, now: tokio::time::Instant) -> bool {
        if self
            .last
            .is_some_and(|at| now.duration_since(at) < REPEAT_LOG_EVERY)
        {
            return false;
        }
        self.last = Some(now);
        true
    }
}

/// Starts the engine task; it stops when `shutdown` turns true (interrupting a run at a page boundary).
pub fn spawn(
    store: Store,
    settings: EngineSettings,
    clock: SharedClock,
    shutdown: watch::Receiver<bool>,
) -> (SyncHandle, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(32);
    store.set_retry_every(settings.store_retry);
    let live = Arc::new(Mutex::new(LiveState::default()));
    let settings = Arc::new(settings);
    let handle = SyncHandle {
        commands: tx,
        live: live.clone(),
        settings: settings.clone(),
        clock: clock.clone(),
    };
    let engine = Engine {
        store,
        settings,
        clock,
        live,
        client: None,
        running: None,
        sync_runtime: SyncRuntime::start(),
        recovery: None,
        plan_errors: LogLimit::default(),
    };
    let task = tokio::spawn(
        engine
            .run(rx, shutdown)
            .instrument(tracing::info_span!("sync_engine")),
    );
    (handle, task)
}

enum Wake {
    Shutdown,
    Command(Option<Command>),
    RunDone(Result<Result<RunSummary, RunError>, tokio::task::JoinError>),
    StoreCondition,
    Timer,
}

/// Longest the engine sleeps before looking at the clock again, so a moved (test) clock is noticed.
const MAX_IDLE_SLEEP: Duration = Duration::from_millis(250);

impl Engine {
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || work(store))
            .await
            .map_err(|err| StoreError::Database(format!("blocking task failed: {err}")))?
    }

    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        if let Err(err) = self.load_client().await {
            tracing::error!(error = %err, "cannot load the Zendesk credentials; fix them with ChangeLogin");
        }
        let mut faults = self.store.subscribe_write_fault();
        loop {
            let sleep_for = match self.plan().await {
                Ok(sleep_for) => sleep_for,
                Err(err) => {
                    if self.plan_errors.allow() {
                        tracing::error!(error = %err, "cannot read the sync state");
                    }
                    MAX_IDLE_SLEEP
                }
            };
            let wake = {
                let task = self.running.as_mut().map(|r| &mut r.task);
                tokio::select! {
                    _ = shutdown.wait_for(|stop| *stop) => Wake::Shutdown,
                    command = commands.recv() => Wake::Command(command),
                    done = async { match task { Some(task) => task.await, None => std::future::pending().await } } => Wake::RunDone(done),
                    Ok(()) = faults.changed() => Wake::StoreCondition,
                    () = tokio::time::sleep(sleep_for) => Wake::Timer,
                }
            };
            match wake {
                Wake::Shutdown | Wake::Command(None) => {
                    self.stop_running(outcome::INTERRUPTED).await;
                    return;
                }
                Wake::Command(Some(command)) => self.handle(command).await,
                Wake::RunDone(result) => self.finish(result).await,
                Wake::StoreCondition => self.on_store_condition().await,
                Wake::Timer => {}
            }
        }
    }

    async fn load_client(&mut self) -> Result<(), CommandError> {
        let integration = self.blocking(|store| store.integration()).await?;
        let Some(integration) = integration else {
            self.client = None;
            return Ok(());
        };
        let data_dir = self.settings.data_dir.clone();
        let credentials = tokio::task::spawn_blocking(move || credentials::load(&data_dir))
            .await
            .map_err(|err| CommandError::Client(err.to_string()))?
            .map_err(|err| CommandError::Client(err.to_string()))?
            .ok_or_else(|| CommandError::Client("the credentials file is missing".into()))?;
        self.client =
            Some(self.build_client(&integration, super::credentials::to_client(credentials))?);
        Ok(())
    }

    fn build_client(
        &self,
        integration: &IntegrationRecord,
        credentials: Credentials,
    ) -> Result<ZendeskClient, CommandError> {
        let settings = client_settings(&self.settings, &integration.subdomain)
            .map_err(|err| CommandError::Client(err.to_string()))?;
        let data_dir = self.settings.data_dir.clone();
        let persist = crate::zendesk::persist_tokens_with(move |tokens| {
            let data_dir = data_dir.clone();
            async move {
                // Zendesk rotated the pair: the new one is on disk (fsync + rename) before it is used.
                tokio::task::spawn_blocking(move || {
                    credentials::save(
                        &data_dir,
                        &CredentialsRecord::OAuthTokens(super::credentials::tokens_record(tokens)),
                    )
                })
                .await
                .map_err(|err| err.to_string())?
                .map_err(|err| err.to_string())
            }
        });
        ZendeskClient::builder(settings, credentials)
            .clock(self.clock.clone())
            .observer(Arc::new(RateLimitObserver {
                live: self.live.clone(),
                clock: self.clock.clone(),
            }))
            .persist_tokens(persist)
            .build()
            .map_err(|err| CommandError::Client(err.to_string()))
    }

    /// The store stopped writing or writes again.
    async fn on_store_condition(&mut self) {
        let unwritable = self.store.write_fault().is_some();
        if unwritable && self.recovery.is_none() {
            let message = self.store.write_fault_message().unwrap_or_default();
            tracing::error!(%message, "the store stopped writing");
            let mut log = LogLimit::default();
            log.allow();
            self.recovery = Some(Recovery {
                next_attempt: tokio::time::Instant::now(),
                backoff: FIRST_STORE_RETRY.min(self.settings.store_retry),
                log,
            });
            // Drain first: the run's next commit would be refused anyway; it stops at a page boundary, stays
            // active in the store and resumes from its cursor once writing works.
            self.stop_running(outcome::INTERRUPTED).await;
            // Reopening at once brings the reads back while the disk is still full.
            self.try_recover().await;
        } else if !unwritable && self.recovery.take().is_some() {
            tracing::info!("the store writes again; syncing resumes");
        }
    }

    /// Tries to get the store writing again; on failure waits longer before the next try (up to the cap).
    async fn try_recover(&mut self) {
        let recovered = self
            .blocking(|store| store.recover())
            .await
            .unwrap_or_else(|err| {
                tracing::debug!(error = %err, "cannot recover the store yet");
                false
            });
        if recovered {
            if self.recovery.take().is_some() {
                tracing::info!("the store writes again; syncing resumes");
            }
            return;
        }
        let message = self.store.write_fault_message().unwrap_or_default();
        let cap = self.settings.store_retry;
        if let Some(recovery) = self.recovery.as_mut() {
            recovery.next_attempt = tokio::time::Instant::now() + recovery.backoff;
            recovery.backoff = (recovery.backoff * 2).min(cap);
            if recovery.log.allow() {
                tracing::warn!(%message, "the store still cannot write");
            }
        }
    }

    /// Starts a due run if any, and says how long to sleep.
    async fn plan(&mut self) -> Result<Duration, StoreError> {
        if let Some(recovery) = &self.recovery {
            if tokio::time::Instant::now() >= recovery.next_attempt {
                self.try_recover().await;
            }
            if self.recovery.is_some() {
                // Nothing starts while the store cannot write.
                return Ok(MAX_IDLE_SLEEP);
            }
        }
        let now = self.clock.now();
        let (integration, state) = self
            .blocking(|store| Ok((store.integration()?, store.sync_state()?)))
            .await?;
        let Some(integration) = integration else {
            return Ok(MAX_IDLE_SLEEP);
        };
        if state.paused || state.auth_failed || self.client.is_none() || self.running.is_some() {
            return Ok(MAX_IDLE_SLEEP);
        }
        let (next_incremental, next_validation) =
            due_times(&self.settings.schedule, &integration, &state, now);
        let due = if let Some(active) = &state.active_run {
            let retry_at = if state.consecutive_failures > 0 {
                next_incremental
            } else {
                now
            };
            (now >= retry_at).then(|| {
                (
                    RunKind::from_code(active.kind).unwrap_or(RunKind::Incremental),
                    Some(active.clone()),
                )
            })
        } else if !state.initial_complete {
            Some((RunKind::Initial, None))
        } else if now >= next_validation {
            Some((RunKind::FullValidation, None))
        } else if now >= next_incremental {
            Some((RunKind::Incremental, None))
        } else {
            None
        };
        if let Some((kind, resume)) = due {
            self.start_run(kind, resume).await?;
        }
        Ok(MAX_IDLE_SLEEP)
    }

    async fn start_run(
        &mut self,
        kind: RunKind,
        resume: Option<RunRecord>,
    ) -> Result<String, StoreError> {
        let Some(client) = self.client.clone() else {
            return Err(StoreError::Database("no Zendesk client".into()));
        };
        let now = self.clock.now();
        let resumed = resume.is_some();
        let state = self
            .blocking(move |store| {
                store.update_sync_state(|state| {
                    let record = if let Some(record) = resume {
                        record
                    } else {
                        state.next_run_id = state.next_run_id.max(1);
                        let id = state.next_run_id;
                        state.next_run_id += 1;
                        RunRecord {
                            id,
                            kind: kind.code(),
                            started_at_ms: now.timestamp_millis(),
                            outcome: outcome::RUNNING,
                            ..Default::default()
                        }
                    };
                    state.active_run = Some(record);
                    state.last_attempt_ms = now.timestamp_millis();
                })
            })
            .await?;
        let Some(record) = state.active_run else {
            return Err(StoreError::Database("run record vanished".into()));
        };
        let started_at = DateTime::from_timestamp_millis(record.started_at_ms).unwrap_or(now);
        let progress = Arc::new(Mutex::new(Progress {
            pages: record.pages,
            tickets: record.tickets,
            events: record.events,
            ..Default::default()
        }));
        let stop = StopSignal::default();
        let ctx = RunContext {
            store: self.store.clone(),
            client: client.clone(),
            run_id: record.id,
            kind,
            stop: stop.clone(),
            progress: progress.clone(),
            clock: self.clock.clone(),
            started_at,
            resume_phase: resumed.then_some(record.phase).filter(|phase| *phase > 0),
            snapshot_events: Arc::new(AtomicBool::new(state.ticket_events_fallback)),
            pages_per_commit: u64::from(self.settings.pages_per_commit.max(1)),
            lane: run::Lane::Exports,
            writer: run::CommitWriter::new(record.pages, record.tickets),
        };
        let requests_base = client.stats().requests;
        let span = tracing::info_span!("sync_run", run = record.id, kind = kind.name(), resumed);
        tracing::info!(parent: &span, "sync run started");
        let task = self.sync_runtime.spawn(run::execute(ctx).instrument(span));
        self.live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .current = Some(LiveRun {
            id: record.id,
            kind,
            started_at,
            progress: progress.clone(),
            client: client.clone(),
            requests_base,
        });
        self.running = Some(Running {
            id: record.id,
            stop,
            task,
            progress,
            client,
            requests_base,
            stop_outcome: outcome::INTERRUPTED,
        });
        Ok(run_label(record.id))
    }

    async fn finish(
        &mut self,
        result: Result<Result<RunSummary, RunError>, tokio::task::JoinError>,
    ) {
        let Some(running) = self.running.take() else {
            return;
        };
        let finished;
        {
            let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
            finished = live.current.take().map(|run| (run.kind, run.started_at));
            // No fetch waits once the run is over (a pause drops a fetch in the middle of a rate-limit wait).
            live.rate_limited_until = None;
        }
        let now = self.clock.now();
        let progress = running
            .progress
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let requests = running
            .client
            .stats()
            .requests
            .saturating_sub(running.requests_base);
        let result = result.unwrap_or_else(|err| Err(RunError::Task(err.to_string())));
        let stop_outcome = running.stop_outcome;
        let id = running.id;
        match &result {
            Ok(summary) => tracing::info!(
                run = id,
                pages = progress.pages,
                tickets = progress.tickets,
                requests,
                ?summary,
                "sync run succeeded"
            ),
            Err(RunError::Stopped) => {
                tracing::info!(run = id, "sync run stopped at a page boundary");
            }
            Err(err) => tracing::warn!(run = id, error = %err, "sync run failed"),
        }
        if let Some((kind, started_at)) = finished {
            crate::sync::progress::record_finished(kind, &result, stop_outcome, started_at, now);
        }
        let update = move |state: &mut SyncStateRecord| {
            let mut record = state.active_run.clone().unwrap_or_default();
            record.finished_at_ms = now.timestamp_millis();
            record.pages = progress.pages;
            record.tickets = progress.tickets;
            // Each commit counted its events in the stored record too, also one whose run was cut before
            // it heard back.
            record.events = record.events.max(progress.events);
            record.requests += requests;
            record.phase = progress.phase;
            match &result {
                Ok(summary) => {
                    record.outcome = outcome::SUCCEEDED;
                    record.drift_tickets_changed = summary.tickets_changed;
                    record.drift_tickets_added = summary.tickets_added;
                    record.drift_tickets_missing = summary.tickets_missing;
                    record.drift_derived =
                        summary.derived_differences + progress.rollup_rows_drifted;
                    state.active_run = None;
                    state.last_successful_sync_ms = now.timestamp_millis();
                    state.last_error = None;
                    state.consecutive_failures = 0;
                    state.ticket_events_fallback = summary.ticket_events_refused;
                    match RunKind::from_code(record.kind) {
                        Some(RunKind::Initial) => state.initial_complete = true,
                        Some(RunKind::FullValidation) => {
                            state.last_validation_ms = now.timestamp_millis();
                        }
                        _ => {}
                    }
                }
                Err(RunError::Stopped) => {
                    record.outcome = stop_outcome;
                    if let Some(active) = state.active_run.as_mut() {
                        active.phase = progress.phase;
                        active.pages = progress.pages;
                        active.tickets = progress.tickets;
                        active.requests += requests;
                    }
                }
                Err(err) => {
                    record.outcome = outcome::FAILED;
                    // Bounded however long the error (a decode error may quote the payload).
                    record.error =
                        crate::domain::text::excerpt(&err.to_string(), STORED_ERROR_CHARS);
                    let kind = classify(err);
                    if kind == error_kind::AUTHENTICATION {
                        state.auth_failed = true;
                    }
                    state.consecutive_failures += 1;
                    state.last_error = Some(ErrorRecord {
                        kind,
                        message: record.error.clone(),
                        at_ms: now.timestamp_millis(),
                        run_id: record.id,
                    });
                    if let Some(active) = state.active_run.as_mut() {
                        active.phase = progress.phase;
                        active.pages = progress.pages;
                        active.tickets = progress.tickets;
                        active.requests += requests;
                    }
                }
            }
            state.history.insert(0, record);
        };
        if self.store.write_fault().is_some() {
            // Nothing can be recorded: the run stays active in the store, and resumes from its cursor with
            // its counts once writing works (a refused commit is not a failure of the run).
            tracing::info!(
                run = id,
                "the store cannot write: the run resumes once it can"
            );
            return;
        }
        if let Err(err) = self
            .blocking(move |store| store.update_sync_state(update))
            .await
        {
            tracing::error!(error = %err, "cannot record the end of a run");
        }
    }

    /// Asks the running run to stop at its next page boundary and waits for it (cut after a grace period).
    async fn stop_running(&mut self, stop_outcome: u32) {
        let Some(running) = self.running.as_mut() else {
            return;
        };
        running.stop_outcome = stop_outcome;
        running.stop.raise();
        let result = if let Ok(result) = tokio::time::timeout(STOP_GRACE, &mut running.task).await {
            result
        } else {
            // Cutting a run between commits is safe: every page is one transaction.
            running.task.abort();
            Ok(Err(RunError::Stopped))
        };
        self.finish(result).await;
    }

    async fn handle(&mut self, command: Command) {
        match command {
            Command::Configured(reply) => {
                let result = self.on_configured().await;
                let _ = reply.send(result);
            }
            Command::Force(kind, reply) => {
                let result = self.on_force(kind).await;
                let _ = reply.send(result);
            }
            Command::Pause(reply) => {
                let running = self.running.as_ref().map(|r| run_label(r.id));
                let result = self
                    .blocking(|store| store.update_sync_state(|state| state.paused = true))
                    .await
                    .map_err(CommandError::from);
                if result.is_ok() {
                    tracing::info!("schedule paused");
                    self.stop_running(outcome::PAUSED).await;
                }
                let _ = reply.send(result.map(|_| running));
            }
            Command::Resume(reply) => {
                let result = self
                    .blocking(|store| store.update_sync_state(|state| state.paused = false))
                    .await
                    .map(|_| tracing::info!("schedule resumed"))
                    .map_err(CommandError::from);
                let _ = reply.send(result);
            }
            Command::CredentialsChanged(reply) => {
                let mut result = self.load_client().await;
                if result.is_ok() {
                    result = self
                        .blocking(|store| {
                            store.update_sync_state(|state| {
                                state.auth_failed = false;
                                if state
                                    .last_error
                                    .as_ref()
                                    .is_some_and(|e| e.kind == error_kind::AUTHENTICATION)
                                {
                                    state.last_error = None;
                                    state.consecutive_failures = 0;
                                }
                            })
                        })
                        .await
                        .map(|_| ())
                        .map_err(CommandError::from);
                }
                let _ = reply.send(result);
            }
            Command::Delete(reply) => {
                self.stop_running(outcome::INTERRUPTED).await;
                self.client = None;
                let data_dir = self.settings.data_dir.clone();
                let result = self
                    .blocking(move |store| {
                        store.delete_integration_data()?;
                        credentials::remove(&data_dir)
                            .map_err(|err| StoreError::Database(err.to_string()))
                    })
                    .await
                    .map_err(CommandError::from);
                let _ = reply.send(result);
            }
        }
    }

    async fn on_configured(&mut self) -> Result<String, CommandError> {
        if let Some(refused) = self.store.unwritable() {
            return Err(refused.into());
        }
        self.load_client().await?;
        if self.client.is_none() {
            return Err(CommandError::NotConfigured);
        }
        let state = self.blocking(|store| store.sync_state()).await?;
        if let Some(running) = &self.running {
            return Ok(run_label(running.id));
        }
        if state.paused {
            return Err(CommandError::Paused);
        }
        Ok(self.start_run(RunKind::Initial, None).await?)
    }

    async fn on_force(&mut self, kind: RunKind) -> Result<String, CommandError> {
        if let Some(refused) = self.store.unwritable() {
            return Err(refused.into());
        }
        let integration = self.blocking(|store| store.integration()).await?;
        if integration.is_none() || self.client.is_none() {
            return Err(CommandError::NotConfigured);
        }
        if let Some(running) = &self.running {
            return Err(CommandError::Busy(run_label(running.id)));
        }
        let state = self.blocking(|store| store.sync_state()).await?;
        if state.paused {
            return Err(CommandError::Paused);
        }
        // An interrupted run (or an unfinished first sync) is continued rather than started over, except
        // that a full validation asked for replaces an interrupted incremental: it covers everything
        // the incremental would have read, and the admin asked for it.
        let interrupted = state
            .active_run
            .as_ref()
            .map(|active| (RunKind::from_code(active.kind).unwrap_or(kind), active));
        let (kind, resume) = match (interrupted, state.initial_complete) {
            (Some((RunKind::Incremental, _)), true) if kind == RunKind::FullValidation => {
                (kind, None)
            }
            (Some((active_kind, active)), _) => (active_kind, Some(active.clone())),
            (None, false) => (RunKind::Initial, None),
            (None, true) => (kind, None),
        };
        Ok(self.start_run(kind, resume).await?)
    }
}

/// When the next incremental run and the next nightly validation are due, from the stored state alone
/// (so `GetStatus` and the engine agree at every instant, with no publish lag).
pub fn due_times(
    schedule_settings: &ScheduleSettings,
    integration: &IntegrationRecord,
    state: &SyncStateRecord,
    now: DateTime<Utc>,
) -> (DateTime<Utc>, DateTime<Utc>) {
    let configured_at = DateTime::from_timestamp(integration.configured_at, 0).unwrap_or(now);
    let last_validation = (state.last_validation_ms > 0)
        .then(|| DateTime::from_timestamp_millis(state.last_validation_ms))
        .flatten();
    let next_validation =
        schedule::next_full_validation(schedule_settings, last_validation, configured_at);
    let last_end = state
        .history
        .first()
        .and_then(|run| DateTime::from_timestamp_millis(run.finished_at_ms))
        .unwrap_or(configured_at);
    let next_incremental =
        schedule::next_incremental(schedule_settings, last_end, state.consecutive_failures);
    (next_incremental, next_validation)
}

/// Most characters of a run's error kept in the sync state (the remote parts are capped shorter).
const STORED_ERROR_CHARS: usize = 1000;

/// How long a stop request waits for the run to reach a page boundary.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// The error kind code of a run failure.
pub fn classify(error: &RunError) -> u32 {
    match error {
        RunError::Zendesk(err) => match err {
            ZendeskError::Authentication { .. } | ZendeskError::PermissionDenied { .. } => {
                error_kind::AUTHENTICATION
            }
            ZendeskError::RateLimited { .. } => error_kind::RATE_LIMITED,
            ZendeskError::Transport { .. } | ZendeskError::Timeout { .. } => error_kind::TRANSPORT,
            ZendeskError::Server { .. } | ZendeskError::UnexpectedStatus { .. } => {
                error_kind::SERVER
            }
            ZendeskError::Malformed { .. } | ZendeskError::TooLarge { .. } => error_kind::MALFORMED,
            _ if err.is_auth_failure() => error_kind::AUTHENTICATION,
            _ => error_kind::INTERNAL,
        },
        RunError::Store(_) | RunError::Task(_) | RunError::Stopped => error_kind::INTERNAL,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine_settings(requests_per_minute: u32) -> EngineSettings {
        EngineSettings {
            data_dir: std::path::PathBuf::from("/nonexistent"),
            base_url: Some("http://127.0.0.1:9".into()),
            requests_per_minute,
            other_requests_per_minute: crate::config::DEFAULT_OTHER_REQUESTS_PER_MINUTE,
            reserve_for_other_apps: crate::config::DEFAULT_RESERVE_FOR_OTHER_APPS,
            rate_window: crate::zendesk::account_limit::WINDOW,
            timeout: Duration::from_secs(5),
            schedule: ScheduleSettings {
                incremental_interval: Duration::from_secs(300),
                full_validation_at: chrono::NaiveTime::MIN,
            },
            pages_per_commit: 20,
            store_retry: Duration::from_secs(30),
        }
    }

    #[test]
    fn a_repeating_log_line_is_written_at_most_once_a_minute() {
        let start = tokio::time::Instant::now();
        let mut limit = LogLimit::default();
        assert!(limit.allow_at(start), "the first line");
        assert!(!limit.allow_at(start), "not again at once");
        let almost = start + REPEAT_LOG_EVERY - Duration::from_millis(1);
        assert!(!limit.allow_at(almost), "nor within the minute");
        assert!(limit.allow_at(start + REPEAT_LOG_EVERY), "a minute later");
        assert!(!limit.allow_at(start + REPEAT_LOG_EVERY + Duration::from_secs(1)));
    }

    #[test]
    fn a_zero_budget_turns_off_every_client_side_budget() {
        let off = client_settings(&engine_settings(0), "acme").expect("settings");
        assert_eq!(off.requests_per_minute, None);
        assert_eq!(off.other_requests_per_minute, None);
        let on = client_settings(&engine_settings(10), "acme").expect("settings");
        assert_eq!(on.requests_per_minute, Some(10));
        assert_eq!(
            on.other_requests_per_minute,
            Some(crate::zendesk::settings::DEFAULT_OTHER_REQUESTS_PER_MINUTE)
        );
    }

    #[test]
    fn the_other_budget_comes_from_its_own_key() {
        let mut settings = engine_settings(10);
        settings.other_requests_per_minute = 2500;
        let client = client_settings(&settings, "acme").expect("settings");
        assert_eq!(client.other_requests_per_minute, Some(2500));
        assert_eq!(client.requests_per_minute, Some(10));
        settings.other_requests_per_minute = 0;
        let client = client_settings(&settings, "acme").expect("settings");
        assert_eq!(client.other_requests_per_minute, None, "0 turns it off");
        assert_eq!(
            client.requests_per_minute,
            Some(10),
            "the export budget stays"
        );
    }

    #[test]
    fn the_config_keys_reach_the_client() {
        let config = crate::config::Config::from_toml(
            "[zendesk]\nbase_url = \"http://127.0.0.1:9\"\nrequests_per_minute = 30\nother_requests_per_minute = 700\nreserve_for_other_apps = 40",
            &[("ZDSYNC_DATA_DIR", "/nonexistent")],
        )
        .expect("config");
        let client = client_settings(&EngineSettings::from(&config), "acme").expect("settings");
        assert_eq!(client.requests_per_minute, Some(30));
        assert_eq!(client.other_requests_per_minute, Some(700));
        assert_eq!(client.reserve_for_other_apps, 40);
    }
}
