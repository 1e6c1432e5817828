//! `zdsync.v1.IntegrationService`: configure, credentials, OAuth, status, force, pause, resume, delete.
use chrono::DateTime;
use tokio::sync::Mutex;
use tonic::{Request, Response, Status};

use crate::clock::SharedClock;
use crate::domain::matching::{AccountAttribute, MatchKey};
use crate::domain::metrics::Timeframe;
use crate::proto::v1 as pb;
use crate::proto::v1::integration_service_server::IntegrationService;
use crate::store::credentials::{self, CredentialsRecord, OAuthClientRecord};
use crate::store::matching::MatchCounts;
use crate::store::sync_state::{IntegrationRecord, RunRecord, SyncStateRecord};
use crate::store::Store;
use crate::sync::login::{validate_subdomain, Login, LoginError, PendingSettings};
use crate::sync::status::{error_kind, is_finished_validation, run_label, RunState, StatusReport};
use crate::sync::{CommandError, RunKind, SyncHandle};

use super::convert::timestamp_to_proto;
use super::credentials::{masked_credentials, plain_field, request_credentials, secret_field};
use super::status::{from_join, from_store};

/// The integration service.
pub struct Integration {
    store: Store,
    engine: SyncHandle,
    clock: SharedClock,
    /// Serialises the RPCs that create, replace or delete the integration.
    changes: Mutex<()>,
    /// Credential checks and OAuth flows in progress.
    login: Login,
}

impl std::fmt::Debug for Integration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Integration").finish_non_exhaustive()
    }
}

impl Integration {
    /// A service over `store`, driving `engine`.
    pub fn new(store: Store, engine: SyncHandle, clock: SharedClock) -> Self {
        Self {
            login: Login::new(engine.settings().clone(), clock.clone()),
            store,
            engine,
            clock,
            changes: Mutex::new(()),
        }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(Store) -> Result<T, crate::store::StoreError> + Send + 'static,
    ) -> Result<T, Status> {
        super::status::on_store(&self.store, |store| work(store).map_err(from_store)).await
    }

    async fn integration(&self) -> Result<Option<IntegrationRecord>, Status> {
        self.blocking(|store| store.integration()).await
    }

    async fn require_integration(&self) -> Result<IntegrationRecord, Status> {
        self.integration().await?.ok_or_else(|| {
            Status::failed_precondition("no integration is configured; call Configure first")
        })
    }

    /// Whether the schedule is paused; fails without an integration (`Pause` and `Resume` need one).
    async fn was_paused(&self) -> Result<bool, Status> {
        self.require_integration().await?;
        Ok(self.blocking(|store| store.sync_state()).await?.paused)
    }

    /// Checks credentials against Zendesk; returns who they belong to and the credentials to store
    /// (a token pair Zendesk rotated during the check replaces the one given, which is then spent).
    async fn verify(
        &self,
        subdomain: &str,
        credentials: CredentialsRecord,
    ) -> Result<(String, CredentialsRecord), Status> {
        let verified = self
            .login
            .verify(subdomain, credentials)
            .await
            .map_err(login_status)?;
        Ok((verified.authenticated_as, verified.credentials))
    }

    async fn save_credentials(&self, credentials: CredentialsRecord) -> Result<(), Status> {
        let data_dir = self.engine.settings().data_dir.clone();
        tokio::task::spawn_blocking(move || credentials::save(&data_dir, &credentials))
            .await
            .map_err(from_join)?
            .map_err(|err| Status::internal(format!("cannot store the credentials: {err}")))
    }

    async fn masked(&self, record: &IntegrationRecord) -> Result<pb::Integration, Status> {
        let data_dir = self.engine.settings().data_dir.clone();
        let stored = tokio::task::spawn_blocking(move || credentials::load(&data_dir))
            .await
            .map_err(from_join)?
            .map_err(|err| Status::internal(format!("cannot read the credentials: {err}")))?;
        let base_url = self.login.base_url(&record.subdomain);
        Ok(pb::Integration {
            subdomain: record.subdomain.clone(),
            base_url,
            credentials: stored.as_ref().map(masked_credentials),
            match_key: Some(pb::MatchKey {
                zendesk_field: record.match_zendesk_field.clone(),
                account_attribute: record.match_account_attribute.clone(),
            }),
            timeframe_days: record.timeframe_days,
            include_satisfaction: record.include_satisfaction,
            configured_at: DateTime::from_timestamp(record.configured_at, 0)
                .map(timestamp_to_proto),
            updated_at: DateTime::from_timestamp(record.credentials_verified_at, 0)
                .map(timestamp_to_proto),
            authenticated_as: record.authenticated_as.clone(),
        })
    }

    async fn check_match_key(&self, key: Option<&pb::MatchKey>) -> Result<pb::MatchKey, Status> {
        let key = key.ok_or_else(|| Status::invalid_argument("match_key: required"))?;
        let parsed = validate_match_key(key)?;
        if let AccountAttribute::Attribute(name) = &parsed.account_attribute {
            let name = name.clone();
            let kind = self
                .blocking(move |store| store.attribute_kind(&name))
                .await?;
            parsed
                .validate_against(&|_| kind)
                .map_err(|err| Status::invalid_argument(format!("match_key.{err}")))?;
        }
        Ok(key.clone())
    }

    /// Stores a new integration and starts its first sync; the caller holds `changes`.
    async fn create(
        &self,
        subdomain: String,
        credentials: CredentialsRecord,
        key: pb::MatchKey,
        timeframe_days: u32,
        include_satisfaction: bool,
        authenticated_as: String,
    ) -> Result<(pb::Integration, String), Status> {
        let now = self.clock.now().timestamp();
        let record = IntegrationRecord {
            subdomain,
            credential_kind: credentials.kind_name().into(),
            match_zendesk_field: key.zendesk_field,
            match_account_attribute: key.account_attribute,
            timeframe_days,
            include_satisfaction,
            configured_at: now,
            authenticated_as,
            credentials_verified_at: now,
        };
        self.save_credentials(credentials).await?;
        let stored = record.clone();
        self.blocking(move |store| {
            // A later Configure starts afresh: no state of an earlier integration survives.
            store.update_sync_state(|state| *state = SyncStateRecord::default())?;
            store.put_integration(&stored)
        })
        .await?;
        let run_id = self.engine.configured().await.map_err(command_status)?;
        tracing::info!(subdomain = %record.subdomain, run = %run_id, "integration configured");
        Ok((self.masked(&record).await?, run_id))
    }
}

/// The status a failed login step answers with, Zendesk's reason included.
fn login_status(error: LoginError) -> Status {
    match error {
        LoginError::InvalidArgument(_) => Status::invalid_argument(error.to_string()),
        LoginError::Unauthenticated(_) => Status::unauthenticated(error.to_string()),
        LoginError::PermissionDenied(_) => Status::permission_denied(error.to_string()),
        LoginError::Unavailable(_) => Status::unavailable(error.to_string()),
    }
}

fn command_status(error: CommandError) -> Status {
    match error {
        CommandError::NotConfigured => Status::failed_precondition(error.to_string()),
        CommandError::Busy(_) | CommandError::Paused => {
            Status::failed_precondition(error.to_string())
        }
        CommandError::Store(err) => from_store(err),
        CommandError::Client(message) => {
            Status::failed_precondition(format!("cannot use the stored credentials: {message}"))
        }
        CommandError::Stopped => Status::unavailable(error.to_string()),
    }
}

/// A requested window in days; 0 (unset) is [`Timeframe::DEFAULT`].
fn validate_timeframe(field: &str, days: u32) -> Result<u32, Status> {
    if days == 0 {
        return Ok(Timeframe::DEFAULT.days());
    }
    Timeframe::from_days(days)
        .map(Timeframe::days)
        .map_err(|err| Status::invalid_argument(format!("{field}: {err}")))
}

/// Checks the syntax of a match key by the domain's rules, naming the field at fault.
pub fn validate_match_key(key: &pb::MatchKey) -> Result<MatchKey, Status> {
    MatchKey::parse(&key.zendesk_field, &key.account_attribute)
        .map_err(|err| Status::invalid_argument(format!("match_key.{err}")))
}

fn validate_redirect_uri(uri: &str) -> Result<(), Status> {
    let url = reqwest::Url::parse(uri)
        .map_err(|err| Status::invalid_argument(format!("redirect_uri: {err}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(Status::invalid_argument(
            "redirect_uri: must be an absolute http(s) URL",
        ));
    }
    Ok(())
}

fn time(ms: i64) -> Option<prost_types::Timestamp> {
    (ms > 0)
        .then(|| DateTime::from_timestamp_millis(ms))
        .flatten()
        .map(timestamp_to_proto)
}

fn run_to_proto(run: &RunRecord) -> pb::SyncRun {
    let kind = match RunKind::from_code(run.kind) {
        Some(RunKind::Incremental) => pb::SyncKind::Incremental,
        Some(RunKind::FullValidation) => pb::SyncKind::FullValidation,
        Some(RunKind::Initial) => pb::SyncKind::InitialSync,
        None => pb::SyncKind::Unspecified,
    };
    pb::SyncRun {
        id: run_label(run.id),
        kind: kind as i32,
        started_at: time(run.started_at_ms),
        finished_at: time(run.finished_at_ms),
        outcome: i32::try_from(run.outcome).unwrap_or(0),
        pages: run.pages,
        tickets: run.tickets,
        requests: run.requests,
        events: run.events,
        drift: is_finished_validation(run).then(|| drift_to_proto(run)),
        error_message: run.error.clone(),
        progress: None,
    }
}

fn drift_to_proto(run: &RunRecord) -> pb::Drift {
    pb::Drift {
        run_id: run_label(run.id),
        validated_at: time(run.finished_at_ms),
        tickets_added: run.drift_tickets_added,
        tickets_updated: run.drift_tickets_changed,
        tickets_gone: run.drift_tickets_missing,
        rollups_corrected: run.drift_derived,
    }
}

fn match_stats_to_proto(counts: &MatchCounts) -> pb::MatchStats {
    pb::MatchStats {
        organizations_total: counts.organizations_total,
        organizations_matched: counts.matched,
        organizations_unmatched: counts.unmatched,
        organizations_ambiguous: counts.ambiguous,
        accounts_with_organization: counts.accounts_with_org,
        accounts_without_organization: counts.accounts_without_org,
        users_matched: counts.users_matched,
    }
}

/// The status report as the contract's message.
fn status_to_proto(report: StatusReport) -> pb::IntegrationStatus {
    let StatusReport {
        integration,
        state,
        sync,
        next_times,
        warnings,
        current,
        last_validation,
        matches,
        stored,
        events,
    } = report;
    let state = match state {
        RunState::NotConfigured => pb::SyncState::NotConfigured,
        RunState::Idle => pb::SyncState::Idle,
        RunState::Syncing => pb::SyncState::Syncing,
        RunState::Paused => pb::SyncState::Paused,
        RunState::Failed => pb::SyncState::Failed,
    };
    let current_run = current.as_ref().map(|run| pb::SyncRun {
        id: run_label(run.id),
        kind: kind_to_proto(run.kind) as i32,
        started_at: Some(timestamp_to_proto(run.started_at)),
        finished_at: None,
        outcome: pb::RunOutcome::Running as i32,
        pages: run.progress.pages,
        tickets: run.progress.tickets,
        requests: run.progress.requests,
        events: run.progress.events,
        drift: None,
        error_message: String::new(),
        progress: None,
    });
    pb::IntegrationStatus {
        state: state as i32,
        subdomain: integration.subdomain.clone(),
        last_successful_sync_at: time(sync.last_successful_sync_ms),
        last_attempt_at: time(sync.last_attempt_ms),
        next_incremental_at: next_times.map(|(incremental, _)| timestamp_to_proto(incremental)),
        next_full_validation_at: next_times.map(|(_, validation)| timestamp_to_proto(validation)),
        current_run,
        last_error: sync.last_error.as_ref().map(|error| pb::SyncError {
            kind: if error.kind == error_kind::AUTHENTICATION {
                pb::ErrorKind::Authentication as i32
            } else {
                i32::try_from(error.kind).unwrap_or(0)
            },
            message: error.message.clone(),
            at: time(error.at_ms),
            run_id: run_label(error.run_id),
        }),
        match_stats: Some(match_stats_to_proto(&matches)),
        stored: Some(pb::StoredCounts {
            tickets: stored.tickets,
            organizations: stored.organizations,
            users: stored.users,
            ratings: stored.ratings,
            events,
        }),
        history: sync.history.iter().map(run_to_proto).collect(),
        warnings,
        drift: last_validation.as_ref().map(drift_to_proto),
        ticket_events_fallback: sync.ticket_events_fallback,
        paused: sync.paused,
    }
}

fn kind_to_proto(kind: RunKind) -> pb::SyncKind {
    match kind {
        RunKind::Incremental => pb::SyncKind::Incremental,
        RunKind::FullValidation => pb::SyncKind::FullValidation,
        RunKind::Initial => pb::SyncKind::InitialSync,
    }
}

#[tonic::async_trait]
impl IntegrationService for Integration {
    async fn configure(
        &self,
        request: Request<pb::ConfigureRequest>,
    ) -> Result<Response<pb::ConfigureResponse>, Status> {
        let request = request.into_inner();
        let subdomain = validate_subdomain(&request.subdomain).map_err(login_status)?;
        let credentials = request_credentials(request.credentials.as_ref())?;
        let key = self.check_match_key(request.match_key.as_ref()).await?;
        let timeframe = validate_timeframe("timeframe_days", request.timeframe_days)?;
        let _guard = self.changes.lock().await;
        if let Some(existing) = self.integration().await? {
            return Err(Status::already_exists(format!(
                "an integration with {:?} exists; change it with UpdateSettings or ChangeLogin, or delete it first",
                existing.subdomain
            )));
        }
        let (who, credentials) = self.verify(&subdomain, credentials).await?;
        let (integration, run_id) = self
            .create(
                subdomain,
                credentials,
                key,
                timeframe,
                request.include_satisfaction,
                who,
            )
            .await?;
        Ok(Response::new(pb::ConfigureResponse {
            integration: Some(integration),
            run_id,
        }))
    }

    async fn get_integration(
        &self,
        _request: Request<pb::GetIntegrationRequest>,
    ) -> Result<Response<pb::Integration>, Status> {
        let record = self
            .integration()
            .await?
            .ok_or_else(|| Status::not_found("no integration is configured"))?;
        Ok(Response::new(self.masked(&record).await?))
    }

    async fn update_settings(
        &self,
        request: Request<pb::UpdateSettingsRequest>,
    ) -> Result<Response<pb::UpdateSettingsResponse>, Status> {
        let request = request.into_inner();
        let key = match &request.match_key {
            Some(key) => Some(self.check_match_key(Some(key)).await?),
            None => None,
        };
        let timeframe = match request.timeframe_days {
            Some(0) => {
                return Err(Status::invalid_argument(format!(
                    "timeframe_days: {}",
                    crate::domain::metrics::MetricsError::InvalidTimeframe { days: 0 }
                )))
            }
            Some(days) => Some(validate_timeframe("timeframe_days", days)?),
            None => None,
        };
        let _guard = self.changes.lock().await;
        let mut record = self.require_integration().await?;
        if let Some(key) = key {
            record.match_zendesk_field = key.zendesk_field;
            record.match_account_attribute = key.account_attribute;
        }
        if let Some(days) = timeframe {
            record.timeframe_days = days;
        }
        if let Some(include) = request.include_satisfaction {
            record.include_satisfaction = include;
        }
        let stored = record.clone();
        self.blocking(move |store| store.put_integration(&stored))
            .await?;
        let matches = self.blocking(|store| store.match_counts()).await?;
        Ok(Response::new(pb::UpdateSettingsResponse {
            integration: Some(self.masked(&record).await?),
            match_stats: Some(match_stats_to_proto(&matches)),
        }))
    }

    async fn change_login(
        &self,
        request: Request<pb::ChangeLoginRequest>,
    ) -> Result<Response<pb::ChangeLoginResponse>, Status> {
        let credentials = request_credentials(request.into_inner().credentials.as_ref())?;
        let _guard = self.changes.lock().await;
        let mut record = self.require_integration().await?;
        let (who, credentials) = self.verify(&record.subdomain, credentials).await?;
        record.authenticated_as = who;
        record.credential_kind = credentials.kind_name().into();
        record.credentials_verified_at = self.clock.now().timestamp();
        self.save_credentials(credentials).await?;
        let stored = record.clone();
        self.blocking(move |store| store.put_integration(&stored))
            .await?;
        self.engine
            .credentials_changed()
            .await
            .map_err(command_status)?;
        tracing::info!(kind = %record.credential_kind, "credentials changed");
        Ok(Response::new(pb::ChangeLoginResponse {
            integration: Some(self.masked(&record).await?),
        }))
    }

    async fn begin_o_auth(
        &self,
        request: Request<pb::BeginOAuthRequest>,
    ) -> Result<Response<pb::BeginOAuthResponse>, Status> {
        let request = request.into_inner();
        let client = OAuthClientRecord {
            client_id: plain_field("client_id", &request.client_id)?,
            client_secret: secret_field("client_secret", &request.client_secret)?,
        };
        validate_redirect_uri(&request.redirect_uri)?;
        let existing = self.integration().await?;
        let (subdomain, settings) = if let Some(record) = &existing {
            if !request.subdomain.is_empty()
                && validate_subdomain(&request.subdomain).map_err(login_status)? != record.subdomain
            {
                return Err(Status::invalid_argument(format!(
                    "subdomain: the integration is for {:?}; delete it to connect another instance",
                    record.subdomain
                )));
            }
            (record.subdomain.clone(), None)
        } else {
            let subdomain = validate_subdomain(&request.subdomain).map_err(login_status)?;
            let key = self.check_match_key(request.match_key.as_ref()).await?;
            let timeframe = validate_timeframe("timeframe_days", request.timeframe_days)?;
            (
                subdomain,
                Some(PendingSettings {
                    zendesk_field: key.zendesk_field,
                    account_attribute: key.account_attribute,
                    timeframe_days: timeframe,
                    include_satisfaction: request.include_satisfaction,
                }),
            )
        };
        let begun = self
            .login
            .begin(subdomain, client, request.redirect_uri, settings)
            .map_err(login_status)?;
        Ok(Response::new(pb::BeginOAuthResponse {
            authorize_url: begun.authorize_url,
            state: begun.state,
            expires_at: Some(timestamp_to_proto(begun.expires_at)),
        }))
    }

    async fn complete_o_auth(
        &self,
        request: Request<pb::CompleteOAuthRequest>,
    ) -> Result<Response<pb::CompleteOAuthResponse>, Status> {
        let request = request.into_inner();
        let code = plain_field("code", &request.code)?;
        if request.state.is_empty() {
            return Err(Status::invalid_argument("state: required"));
        }
        let pending = self
            .login
            .complete(&code, &request.state)
            .await
            .map_err(login_status)?;
        let _guard = self.changes.lock().await;
        let (who, credentials) = self.verify(&pending.subdomain, pending.credentials).await?;
        match (self.integration().await?, pending.settings) {
            (None, Some(settings)) => {
                let key = pb::MatchKey {
                    zendesk_field: settings.zendesk_field,
                    account_attribute: settings.account_attribute,
                };
                let (integration, run_id) = self
                    .create(
                        pending.subdomain,
                        credentials,
                        key,
                        settings.timeframe_days,
                        settings.include_satisfaction,
                        who,
                    )
                    .await?;
                Ok(Response::new(pb::CompleteOAuthResponse {
                    integration: Some(integration),
                    configured: true,
                    run_id,
                }))
            }
            (Some(mut record), _) => {
                record.authenticated_as = who;
                record.credential_kind = credentials.kind_name().into();
                record.credentials_verified_at = self.clock.now().timestamp();
                self.save_credentials(credentials).await?;
                let stored = record.clone();
                self.blocking(move |store| store.put_integration(&stored)).await?;
                self.engine.credentials_changed().await.map_err(command_status)?;
                Ok(Response::new(pb::CompleteOAuthResponse {
                    integration: Some(self.masked(&record).await?),
                    configured: false,
                    run_id: String::new(),
                }))
            }
            (None, None) => Err(Status::failed_precondition(
                "the integration was deleted since BeginOAuth; call BeginOAuth again with the settings",
            )),
        }
    }

    async fn get_status(
        &self,
        _request: Request<pb::GetStatusRequest>,
    ) -> Result<Response<pb::IntegrationStatus>, Status> {
        let engine = self.engine.clone();
        let Some(report) = self.blocking(move |store| engine.status(&store)).await? else {
            return Ok(Response::new(pb::IntegrationStatus {
                state: pb::SyncState::NotConfigured as i32,
                ..Default::default()
            }));
        };
        let current = report.current.clone();
        let mut status = status_to_proto(report);
        if let (Some(run), Some(shown)) = (current.as_ref(), status.current_run.as_mut()) {
            shown.progress = Some(super::progress::run_progress(
                run,
                self.clock.now(),
                self.engine.settings().requests_per_minute,
            ));
        }
        Ok(Response::new(status))
    }

    async fn force_sync(
        &self,
        request: Request<pb::ForceSyncRequest>,
    ) -> Result<Response<pb::ForceSyncResponse>, Status> {
        let kind = match pb::SyncKind::try_from(request.into_inner().kind) {
            Ok(pb::SyncKind::Unspecified | pb::SyncKind::Incremental) => RunKind::Incremental,
            Ok(pb::SyncKind::FullValidation) => RunKind::FullValidation,
            Ok(pb::SyncKind::InitialSync) | Err(_) => {
                return Err(Status::invalid_argument(
                    "kind: must be INCREMENTAL or FULL_VALIDATION",
                ));
            }
        };
        let run_id = self.engine.force(kind).await.map_err(command_status)?;
        let kind = self.engine.live().current.map_or(kind, |run| run.kind);
        Ok(Response::new(pb::ForceSyncResponse {
            run_id,
            kind: kind_to_proto(kind) as i32,
        }))
    }

    async fn pause(
        &self,
        _request: Request<pb::PauseRequest>,
    ) -> Result<Response<pb::PauseResponse>, Status> {
        let was_paused = self.was_paused().await?;
        let stopping = self.engine.pause().await.map_err(command_status)?;
        Ok(Response::new(pb::PauseResponse {
            was_paused,
            stopping_run_id: stopping.unwrap_or_default(),
        }))
    }

    async fn resume(
        &self,
        _request: Request<pb::ResumeRequest>,
    ) -> Result<Response<pb::ResumeResponse>, Status> {
        let was_paused = self.was_paused().await?;
        self.engine.resume().await.map_err(command_status)?;
        let (integration, state) = self
            .blocking(|store| Ok((store.integration()?, store.sync_state()?)))
            .await?;
        // From the stored state, like GetStatus: the engine may not have planned since the resume.
        let next_incremental_at = integration
            .and_then(|integration| self.engine.next_times(&integration, &state))
            .map(|(incremental, _)| timestamp_to_proto(incremental));
        Ok(Response::new(pb::ResumeResponse {
            was_paused,
            next_incremental_at,
        }))
    }

    async fn delete_integration(
        &self,
        request: Request<pb::DeleteIntegrationRequest>,
    ) -> Result<Response<pb::DeleteIntegrationResponse>, Status> {
        let confirm = request.into_inner().confirm_subdomain;
        let _guard = self.changes.lock().await;
        let record = self
            .integration()
            .await?
            .ok_or_else(|| Status::not_found("no integration is configured"))?;
        if confirm.to_ascii_lowercase() != record.subdomain {
            return Err(Status::invalid_argument(format!(
                "confirm_subdomain: must equal the integration's subdomain {:?}",
                record.subdomain
            )));
        }
        self.engine.delete().await.map_err(command_status)?;
        tracing::warn!(subdomain = %record.subdomain, "integration deleted");
        Ok(Response::new(pb::DeleteIntegrationResponse {
            subdomain: record.subdomain,
        }))
    }

    type ListUnmatchedStream =
        tokio_stream::wrappers::ReceiverStream<Result<pb::UnmatchedOrganization, Status>>;

    async fn list_unmatched(
        &self,
        request: Request<pb::ListUnmatchedRequest>,
    ) -> Result<Response<Self::ListUnmatchedStream>, Status> {
        let mut want_unmatched = false;
        let mut want_ambiguous = false;
        for (index, reason) in request.into_inner().reasons.iter().enumerate() {
            match pb::UnmatchedReason::try_from(*reason) {
                Ok(pb::UnmatchedReason::Unmatched) => want_unmatched = true,
                Ok(pb::UnmatchedReason::Ambiguous) => want_ambiguous = true,
                _ => {
                    return Err(Status::invalid_argument(format!(
                        "reasons[{index}]: must be UNMATCHED or AMBIGUOUS"
                    )))
                }
            }
        }
        if !want_unmatched && !want_ambiguous {
            want_unmatched = true;
            want_ambiguous = true;
        }
        self.require_integration().await?;
        let orgs = self.blocking(|store| store.unmatched_orgs()).await?;
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            for org in orgs {
                if (org.ambiguous && !want_ambiguous) || (!org.ambiguous && !want_unmatched) {
                    continue;
                }
                let message = pb::UnmatchedOrganization {
                    organization_id: i64::try_from(org.id).unwrap_or(i64::MAX),
                    organization_name: org.name,
                    key_value: (!org.key_values.is_empty()).then(|| org.key_values.join(",")),
                    reason: if org.ambiguous {
                        pb::UnmatchedReason::Ambiguous as i32
                    } else {
                        pb::UnmatchedReason::Unmatched as i32
                    },
                    candidate_account_ids: org.candidates,
                };
                // A client that hung up ends the stream; nothing else to clean up.
                if tx.send(Ok(message)).await.is_err() {
                    break;
                }
            }
        });
        Ok(Response::new(tokio_stream::wrappers::ReceiverStream::new(
            rx,
        )))
    }
}

/// Keeps the service type nameable for the router.
pub type SharedIntegration = std::sync::Arc<Integration>;
