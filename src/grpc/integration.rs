//! `zdsync.v1.IntegrationService`: configure, credentials, OAuth, status, force, pause, resume, delete.
use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::Mutex;
use tonic::{Request, Response, Status};

use crate::clock::SharedClock;
use crate::domain::account::AttributeKind;
use crate::proto::v1 as pb;
use crate::proto::v1::integration_service_server::IntegrationService;
use crate::secrets::mask;
use crate::store::credentials;
use crate::store::matching::MatchCounts;
use crate::store::sync_state::{IntegrationRecord, RunRecord, SyncStateRecord};
use crate::store::Store;
use crate::sync::engine::{client_settings, error_kind, outcome, run_label};
use crate::sync::{CommandError, RunKind, SyncHandle};
use crate::zendesk::{Credentials, OAuthClient, OAuthTokens, Secret, ZendeskClient, ZendeskError};

use super::convert::timestamp_to_proto;
use super::status::{from_join, from_store};

/// Timeframes a metric window may have, in days.
pub const TIMEFRAMES: [u32; 5] = [7, 14, 30, 90, 180];
/// Timeframe used when a request leaves it unset (0).
pub const DEFAULT_TIMEFRAME: u32 = 30;
/// How long a `BeginOAuth` state stays usable.
pub const OAUTH_STATE_TTL: TimeDelta = TimeDelta::minutes(10);
/// The date Zendesk switches every API token off.
pub const API_TOKEN_SWITCH_OFF: &str = "2027-04-30";
const MAX_SECRET_LEN: usize = 4096;

/// An OAuth flow begun and not yet completed.
struct PendingOAuth {
    client: OAuthClient,
    redirect_uri: String,
    code_verifier: Secret,
    subdomain: String,
    settings: Option<(pb::MatchKey, u32, bool)>,
    expires_at: DateTime<Utc>,
}

/// The integration service.
pub struct Integration {
    store: Store,
    engine: SyncHandle,
    clock: SharedClock,
    /// Serialises the RPCs that create, replace or delete the integration.
    changes: Mutex<()>,
    oauth: std::sync::Mutex<HashMap<String, PendingOAuth>>,
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
            store,
            engine,
            clock,
            changes: Mutex::new(()),
            oauth: std::sync::Mutex::new(HashMap::new()),
        }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(Store) -> Result<T, crate::store::StoreError> + Send + 'static,
    ) -> Result<T, Status> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || work(store))
            .await
            .map_err(from_join)?
            .map_err(from_store)
    }

    async fn integration(&self) -> Result<Option<IntegrationRecord>, Status> {
        self.blocking(|store| store.integration()).await
    }

    async fn require_integration(&self) -> Result<IntegrationRecord, Status> {
        self.integration().await?.ok_or_else(|| {
            Status::failed_precondition("no integration is configured; call Configure first")
        })
    }

    /// Checks credentials against `GET /api/v2/users/me.json`; returns who they belong to and the credentials to
    /// store (a token pair Zendesk rotated during the check replaces the one given, which is then spent).
    async fn verify(
        &self,
        subdomain: &str,
        credentials: Credentials,
    ) -> Result<(String, Credentials), Status> {
        let settings = client_settings(self.engine.settings(), subdomain)
            .map_err(|err| Status::invalid_argument(format!("subdomain: {err}")))?;
        let rotated: Arc<std::sync::Mutex<Option<OAuthTokens>>> = Arc::default();
        let keep = rotated.clone();
        let persist = crate::zendesk::persist_tokens_with(move |tokens| {
            let keep = keep.clone();
            async move {
                *keep
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(tokens);
                Ok(())
            }
        });
        let client = ZendeskClient::builder(settings, credentials.clone())
            .clock(self.clock.clone())
            .persist_tokens(persist)
            .build()
            .map_err(|err| Status::invalid_argument(format!("credentials: {err}")))?;
        let identity = client.verify().await.map_err(zendesk_status)?;
        let who = identity
            .email
            .clone()
            .or(identity.name.clone())
            .unwrap_or_else(|| format!("user {}", identity.id));
        let rotated = rotated
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let credentials = match rotated {
            Some(tokens) => Credentials::OAuthTokens(tokens),
            None => credentials,
        };
        Ok((format!("{who} ({})", identity.role), credentials))
    }

    async fn save_credentials(&self, credentials: Credentials) -> Result<(), Status> {
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
        let base_url = client_settings(self.engine.settings(), &record.subdomain)
            .map(|s| s.base_url.as_str().trim_end_matches('/').to_owned())
            .unwrap_or_default();
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
        validate_match_key(key)?;
        if let Some(name) = key.account_attribute.strip_prefix("attributes.") {
            let name = name.to_owned();
            let kind = self
                .blocking(move |store| store.attribute_kind(&name))
                .await?;
            if let Some(kind) = kind.filter(|k| *k != AttributeKind::Text) {
                return Err(Status::invalid_argument(format!(
                    "match_key.account_attribute: {:?} is a {} attribute; a match key needs a text attribute",
                    key.account_attribute,
                    kind.name()
                )));
            }
        }
        Ok(key.clone())
    }

    /// Stores a new integration and starts its first sync; the caller holds `changes`.
    async fn create(
        &self,
        subdomain: String,
        credentials: Credentials,
        key: pb::MatchKey,
        timeframe_days: u32,
        include_satisfaction: bool,
        authenticated_as: String,
    ) -> Result<(pb::Integration, String), Status> {
        let now = self.clock.now().timestamp();
        let record = IntegrationRecord {
            subdomain,
            credential_kind: credential_kind_name(&credentials).into(),
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

    /// When the next incremental run and nightly validation are due, from the stored state (none while
    /// paused or held by refused credentials), so the times always match the history shown with them.
    fn next_times(
        &self,
        integration: &IntegrationRecord,
        state: &SyncStateRecord,
    ) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        (!state.paused && !state.auth_failed).then(|| {
            crate::sync::engine::due_times(
                &self.engine.settings().schedule,
                integration,
                state,
                self.clock.now(),
            )
        })
    }

    fn take_oauth(&self, state: &str) -> Result<PendingOAuth, Status> {
        let now = self.clock.now();
        let mut pending = self
            .oauth
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        pending.retain(|_, flow| flow.expires_at > now);
        pending.remove(state).ok_or_else(|| {
            Status::invalid_argument(
                "state: unknown, expired or already used; call BeginOAuth again",
            )
        })
    }
}

fn credential_kind_name(credentials: &Credentials) -> &'static str {
    match credentials {
        Credentials::OAuthClient(_) => "oauth_client",
        Credentials::OAuthTokens(_) => "oauth",
        Credentials::ApiToken { .. } => "api_token",
    }
}

fn masked_credentials(credentials: &Credentials) -> pb::MaskedCredentials {
    match credentials {
        Credentials::OAuthClient(client) => pb::MaskedCredentials {
            kind: pb::CredentialKind::OauthClient as i32,
            client_id: client.client_id.clone(),
            client_secret_masked: mask(client.client_secret.expose()),
            ..Default::default()
        },
        Credentials::OAuthTokens(tokens) => pb::MaskedCredentials {
            kind: pb::CredentialKind::Oauth as i32,
            client_id: tokens
                .client
                .as_ref()
                .map(|c| c.client_id.clone())
                .unwrap_or_default(),
            client_secret_masked: tokens
                .client
                .as_ref()
                .map(|c| mask(c.client_secret.expose()))
                .unwrap_or_default(),
            access_token_masked: mask(tokens.access_token.expose()),
            refresh_token_masked: mask(tokens.refresh_token.expose()),
            access_token_expires_at: tokens.expires_at.map(timestamp_to_proto),
            ..Default::default()
        },
        Credentials::ApiToken { email, token } => pb::MaskedCredentials {
            kind: pb::CredentialKind::ApiToken as i32,
            email: email.clone(),
            token_masked: mask(token.expose()),
            ..Default::default()
        },
    }
}

/// Maps a Zendesk failure during verification to the status DESIGN.md names, with Zendesk's reason.
fn zendesk_status(error: ZendeskError) -> Status {
    match &error {
        ZendeskError::Authentication { .. } => {
            Status::unauthenticated(format!("Zendesk refused the credentials: {error}"))
        }
        ZendeskError::PermissionDenied { .. } => {
            Status::permission_denied(format!("Zendesk denied access: {error}"))
        }
        ZendeskError::InvalidSettings(_) => Status::invalid_argument(error.to_string()),
        _ => Status::unavailable(format!(
            "cannot reach Zendesk to verify the credentials: {error}"
        )),
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

fn secret_field(field: &str, value: &str) -> Result<Secret, Status> {
    if value.is_empty() {
        return Err(Status::invalid_argument(format!("{field}: required")));
    }
    if value.len() > MAX_SECRET_LEN || value.chars().any(char::is_control) {
        return Err(Status::invalid_argument(format!(
            "{field}: must be at most {MAX_SECRET_LEN} printable characters"
        )));
    }
    Ok(Secret::new(value))
}

fn plain_field(field: &str, value: &str) -> Result<String, Status> {
    secret_field(field, value).map(|secret| secret.expose().to_owned())
}

fn oauth_client(prefix: &str, message: &pb::OAuthClientCredentials) -> Result<Credentials, Status> {
    Ok(Credentials::OAuthClient(OAuthClient {
        client_id: plain_field(&format!("{prefix}.client_id"), &message.client_id)?,
        client_secret: secret_field(&format!("{prefix}.client_secret"), &message.client_secret)?,
    }))
}

fn oauth_tokens(prefix: &str, message: &pb::OAuthTokens) -> Result<Credentials, Status> {
    let client = match (
        message.client_id.is_empty(),
        message.client_secret.is_empty(),
    ) {
        (true, true) => None,
        (false, false) => Some(OAuthClient {
            client_id: plain_field(&format!("{prefix}.client_id"), &message.client_id)?,
            client_secret: secret_field(
                &format!("{prefix}.client_secret"),
                &message.client_secret,
            )?,
        }),
        (true, false) => {
            return Err(Status::invalid_argument(format!(
                "{prefix}.client_id: required with client_secret"
            )))
        }
        (false, true) => {
            return Err(Status::invalid_argument(format!(
                "{prefix}.client_secret: required with client_id"
            )))
        }
    };
    Ok(Credentials::OAuthTokens(OAuthTokens {
        access_token: secret_field(&format!("{prefix}.access_token"), &message.access_token)?,
        refresh_token: secret_field(&format!("{prefix}.refresh_token"), &message.refresh_token)?,
        expires_at: None,
        client,
    }))
}

fn api_token(prefix: &str, message: &pb::ApiTokenCredentials) -> Result<Credentials, Status> {
    crate::domain::account::validate_email(&message.email)
        .map_err(|reason| Status::invalid_argument(format!("{prefix}.email: {reason}")))?;
    Ok(Credentials::ApiToken {
        email: message.email.clone(),
        token: secret_field(&format!("{prefix}.token"), &message.token)?,
    })
}

fn configure_credentials(
    credentials: Option<&pb::configure_request::Credentials>,
) -> Result<Credentials, Status> {
    use pb::configure_request::Credentials as C;
    match credentials {
        Some(C::OauthClient(message)) => oauth_client("oauth_client", message),
        Some(C::Oauth(message)) => oauth_tokens("oauth", message),
        Some(C::ApiToken(message)) => api_token("api_token", message),
        None => Err(Status::invalid_argument(
            "credentials: one of oauth_client, oauth or api_token is required",
        )),
    }
}

fn change_login_credentials(
    credentials: Option<&pb::change_login_request::Credentials>,
) -> Result<Credentials, Status> {
    use pb::change_login_request::Credentials as C;
    match credentials {
        Some(C::OauthClient(message)) => oauth_client("oauth_client", message),
        Some(C::Oauth(message)) => oauth_tokens("oauth", message),
        Some(C::ApiToken(message)) => api_token("api_token", message),
        None => Err(Status::invalid_argument(
            "credentials: one of oauth_client, oauth or api_token is required",
        )),
    }
}

fn validate_subdomain(subdomain: &str) -> Result<String, Status> {
    if subdomain.is_empty() {
        return Err(Status::invalid_argument("subdomain: required"));
    }
    crate::zendesk::settings::validate_subdomain(subdomain)
        .map_err(|err| Status::invalid_argument(format!("subdomain: {err}")))
}

fn validate_timeframe(field: &str, days: u32) -> Result<u32, Status> {
    match days {
        0 => Ok(DEFAULT_TIMEFRAME),
        days if TIMEFRAMES.contains(&days) => Ok(days),
        days => Err(Status::invalid_argument(format!(
            "{field}: {days} is not one of 7, 14, 30, 90, 180"
        ))),
    }
}

/// Checks the syntax of a match key (the matching rules themselves live in `domain`).
pub fn validate_match_key(key: &pb::MatchKey) -> Result<(), Status> {
    let zendesk_ok = matches!(
        key.zendesk_field.as_str(),
        "id" | "name" | "external_id" | "domain_names"
    ) || key
        .zendesk_field
        .strip_prefix("organization_fields.")
        .is_some_and(|k| !k.is_empty() && !k.chars().any(char::is_whitespace));
    if !zendesk_ok {
        return Err(Status::invalid_argument(format!(
            "match_key.zendesk_field: {:?} is not one of id, name, external_id, domain_names, organization_fields.<key>",
            key.zendesk_field
        )));
    }
    let account_ok = key.account_attribute == "id"
        || key
            .account_attribute
            .strip_prefix("attributes.")
            .is_some_and(|n| {
                !n.is_empty()
                    && n.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            });
    if !account_ok {
        return Err(Status::invalid_argument(format!(
            "match_key.account_attribute: {:?} is not `id` or `attributes.<name>`",
            key.account_attribute
        )));
    }
    Ok(())
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
        drift: (RunKind::from_code(run.kind) == Some(RunKind::FullValidation)
            && run.outcome == outcome::SUCCEEDED)
            .then(|| drift_to_proto(run)),
        error_message: run.error.clone(),
        progress: None,
    }
}

fn drift_to_proto(run: &RunRecord) -> pb::Drift {
    pb::Drift {
        run_id: run_label(run.id),
        validated_at: time(run.finished_at_ms),
        tickets_added: 0,
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

/// The plain-words hint for the classic mistake: a sync read organizations and none matched an account.
fn match_hint(
    integration: &IntegrationRecord,
    state: &SyncStateRecord,
    counts: &MatchCounts,
) -> Option<String> {
    if state.last_successful_sync_ms == 0 || counts.organizations_total == 0 || counts.matched > 0 {
        return None;
    }
    Some(format!(
        "none of the {} Zendesk organizations matched an account: this is almost always a wrong match key or a missing permission. The key compares the organizations' `{}` with the accounts' `{}` (exact, case-sensitive); check that the accounts carry that value (ListUnmatched shows what each organization has) and that the Zendesk credentials can read organizations",
        counts.organizations_total, integration.match_zendesk_field, integration.match_account_attribute
    ))
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
        let subdomain = validate_subdomain(&request.subdomain)?;
        let credentials = configure_credentials(request.credentials.as_ref())?;
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
                return Err(Status::invalid_argument(
                    "timeframe_days: 0 is not one of 7, 14, 30, 90, 180",
                ))
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
        let credentials = change_login_credentials(request.into_inner().credentials.as_ref())?;
        let _guard = self.changes.lock().await;
        let mut record = self.require_integration().await?;
        let (who, credentials) = self.verify(&record.subdomain, credentials).await?;
        record.authenticated_as = who;
        record.credential_kind = credential_kind_name(&credentials).into();
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
        let client = OAuthClient {
            client_id: plain_field("client_id", &request.client_id)?,
            client_secret: secret_field("client_secret", &request.client_secret)?,
        };
        validate_redirect_uri(&request.redirect_uri)?;
        let existing = self.integration().await?;
        let (subdomain, settings) = match &existing {
            Some(record) => {
                if !request.subdomain.is_empty()
                    && validate_subdomain(&request.subdomain)? != record.subdomain
                {
                    return Err(Status::invalid_argument(format!(
                        "subdomain: the integration is for {:?}; delete it to connect another instance",
                        record.subdomain
                    )));
                }
                (record.subdomain.clone(), None)
            }
            None => {
                let subdomain = validate_subdomain(&request.subdomain)?;
                let key = self.check_match_key(request.match_key.as_ref()).await?;
                let timeframe = validate_timeframe("timeframe_days", request.timeframe_days)?;
                (
                    subdomain,
                    Some((key, timeframe, request.include_satisfaction)),
                )
            }
        };
        let settings_for_url = client_settings(self.engine.settings(), &subdomain)
            .map_err(|err| Status::invalid_argument(format!("subdomain: {err}")))?;
        let authorize = crate::zendesk::begin_authorization(
            &settings_for_url,
            &client.client_id,
            &request.redirect_uri,
        )
        .map_err(|err| Status::invalid_argument(err.to_string()))?;
        let expires_at = self.clock.now() + OAUTH_STATE_TTL;
        let pending = PendingOAuth {
            client,
            redirect_uri: request.redirect_uri,
            code_verifier: authorize.code_verifier,
            subdomain,
            settings,
            expires_at,
        };
        self.oauth
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(authorize.state.clone(), pending);
        Ok(Response::new(pb::BeginOAuthResponse {
            authorize_url: authorize.url.to_string(),
            state: authorize.state,
            expires_at: Some(timestamp_to_proto(expires_at)),
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
        let pending = self.take_oauth(&request.state)?;
        let settings = client_settings(self.engine.settings(), &pending.subdomain)
            .map_err(|err| Status::invalid_argument(format!("subdomain: {err}")))?;
        let mut tokens = crate::zendesk::exchange_authorization_code(
            settings,
            self.clock.clone(),
            &pending.client,
            &code,
            &pending.redirect_uri,
            &pending.code_verifier,
        )
        .await
        .map_err(zendesk_status)?;
        tokens.client = Some(pending.client.clone());
        let credentials = Credentials::OAuthTokens(tokens);
        let _guard = self.changes.lock().await;
        let (who, credentials) = self.verify(&pending.subdomain, credentials).await?;
        match (self.integration().await?, pending.settings) {
            (None, Some((key, timeframe, include))) => {
                let (integration, run_id) = self
                    .create(pending.subdomain, credentials, key, timeframe, include, who)
                    .await?;
                Ok(Response::new(pb::CompleteOAuthResponse {
                    integration: Some(integration),
                    configured: true,
                    run_id,
                }))
            }
            (Some(mut record), _) => {
                record.authenticated_as = who;
                record.credential_kind = credential_kind_name(&credentials).into();
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
        let (integration, state, counts, matches, events) = self
            .blocking(|store| {
                Ok((
                    store.integration()?,
                    store.sync_state()?,
                    store.stored_counts()?,
                    store.match_counts()?,
                    store.event_count()?,
                ))
            })
            .await?;
        let live = self.engine.live();
        let Some(integration) = integration else {
            return Ok(Response::new(pb::IntegrationStatus {
                state: pb::SyncState::NotConfigured as i32,
                ..Default::default()
            }));
        };
        let sync_state = if state.paused {
            pb::SyncState::Paused
        } else if live.current.is_some() {
            pb::SyncState::Syncing
        } else if state.auth_failed || state.consecutive_failures > 0 {
            pb::SyncState::Failed
        } else {
            pb::SyncState::Idle
        };
        // Computed from the state read above, so the next times always match the history shown.
        let next_times = self.next_times(&integration, &state);
        let mut warnings = Vec::new();
        if integration.credential_kind == "api_token" {
            warnings.push(format!(
                "this integration uses a legacy Zendesk API token: Zendesk switches every API token off on {API_TOKEN_SWITCH_OFF}; switch to OAuth with ChangeLogin (oauth_client is recommended)"
            ));
        }
        if state.auth_failed {
            warnings.push(
                "Zendesk refused the credentials: syncing is held until ChangeLogin succeeds"
                    .into(),
            );
        }
        if state.ticket_events_fallback {
            warnings.push(
                "Zendesk refused the ticket events export (403): timeline events are detected from ticket snapshots, so a ticket solved and reopened between two syncs may miss an event".into(),
            );
        }
        if let Some(hint) = match_hint(&integration, &state, &matches) {
            warnings.push(hint);
        }
        if let Some(until) = live.rate_limited_until {
            warnings.push(format!(
                "Zendesk rate limit: waiting until {}",
                until.to_rfc3339()
            ));
        }
        let current_run = live.current.as_ref().map(|run| pb::SyncRun {
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
            progress: Some(super::progress::run_progress(
                run,
                self.clock.now(),
                self.engine.settings().requests_per_minute,
            )),
        });
        let drift = state
            .history
            .iter()
            .find(|run| {
                RunKind::from_code(run.kind) == Some(RunKind::FullValidation)
                    && run.outcome == outcome::SUCCEEDED
            })
            .map(drift_to_proto);
        Ok(Response::new(pb::IntegrationStatus {
            state: sync_state as i32,
            subdomain: integration.subdomain.clone(),
            last_successful_sync_at: time(state.last_successful_sync_ms),
            last_attempt_at: time(state.last_attempt_ms),
            next_incremental_at: next_times.map(|(incremental, _)| timestamp_to_proto(incremental)),
            next_full_validation_at: next_times
                .map(|(_, validation)| timestamp_to_proto(validation)),
            current_run,
            last_error: state.last_error.as_ref().map(|error| pb::SyncError {
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
                tickets: counts.tickets,
                organizations: counts.organizations,
                users: counts.users,
                ratings: counts.ratings,
                events,
            }),
            history: state.history.iter().map(run_to_proto).collect(),
            warnings,
            drift,
            ticket_events_fallback: state.ticket_events_fallback,
            paused: state.paused,
        }))
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
        let kind = self
            .engine
            .live()
            .current
            .map(|run| run.kind)
            .unwrap_or(kind);
        Ok(Response::new(pb::ForceSyncResponse {
            run_id,
            kind: kind_to_proto(kind) as i32,
        }))
    }

    async fn pause(
        &self,
        _request: Request<pb::PauseRequest>,
    ) -> Result<Response<pb::PauseResponse>, Status> {
        self.require_integration().await?;
        let was_paused = self.blocking(|store| store.sync_state()).await?.paused;
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
        self.require_integration().await?;
        let was_paused = self.blocking(|store| store.sync_state()).await?.paused;
        self.engine.resume().await.map_err(command_status)?;
        let (integration, state) = self
            .blocking(|store| Ok((store.integration()?, store.sync_state()?)))
            .await?;
        // From the stored state, like GetStatus: the engine may not have planned since the resume.
        let next_incremental_at = integration
            .and_then(|integration| self.next_times(&integration, &state))
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
pub type SharedIntegration = Arc<Integration>;
