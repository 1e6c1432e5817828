//! Every validation error of every IntegrationService RPC names its field; no answer or log carries a secret.
mod common;

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex, OnceLock};

use common::inproc::{
    configure_request, sized, status, wait_for_successful_runs, Daemon, Harness, ADMIN_TOKEN,
};
use common::with_token;
use tonic::transport::Channel;
use tonic::{Code, Response, Status};
use zdsync::proto::v1 as pb;
use zdsync::proto::v1::account_directory_service_client::AccountDirectoryServiceClient;
use zdsync::proto::v1::integration_service_client::IntegrationServiceClient;
use zdsync::simulator::{self, Endpoint, FaultKind, FaultSpec, SimulatorHandle};

type Client = IntegrationServiceClient<Channel>;

/// Values no answer and no log line may contain.
const SECRETS: [&str; 3] = [
    simulator::DEFAULT_CLIENT_SECRET,
    simulator::DEFAULT_API_TOKEN,
    ADMIN_TOKEN,
];

/// Everything the process logs, at every level of zdsync's own targets.
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("zdsync=trace,info"))
            .with_ansi(false)
            .with_writer(move || LogSink(sink.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("install the log capture");
        logs
    })
    .clone()
}

struct LogSink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn assert_no_secret_logged(logs: &Arc<Mutex<Vec<u8>>>) {
    let text = String::from_utf8_lossy(&logs.lock().expect("log buffer")).into_owned();
    assert!(!text.is_empty(), "the log capture works");
    for secret in SECRETS {
        assert!(!text.contains(secret), "a log line contains {secret:?}");
    }
}

/// A simulator and a daemon with no integration yet.
struct Setup {
    sim: SimulatorHandle,
    _dir: tempfile::TempDir,
    daemon: Daemon,
    client: Client,
    /// The Debug text of every answer, checked for secrets at the end.
    seen: Vec<String>,
}

impl Setup {
    async fn start() -> Setup {
        let (sim, dir, daemon, client) = Harness::start(sized(100, 10, 50)).await.into_parts();
        Setup {
            sim,
            _dir: dir,
            daemon,
            client,
            seen: Vec::new(),
        }
    }

    /// Records an answer that must succeed and returns it.
    fn ok<T: Debug>(&mut self, what: &str, result: Result<Response<T>, Status>) -> T {
        let answer = result
            .unwrap_or_else(|status| panic!("{what}: {status:?}"))
            .into_inner();
        self.seen.push(format!("{answer:?}"));
        answer
    }

    /// Records an answer that must fail with `code` and a message naming `field`.
    fn fails<T: Debug>(
        &mut self,
        what: &str,
        result: Result<Response<T>, Status>,
        code: Code,
        field: &str,
    ) -> Status {
        let status = match result {
            Ok(answer) => panic!("{what}: accepted: {:?}", answer.into_inner()),
            Err(status) => status,
        };
        assert_eq!(status.code(), code, "{what}: {status:?}");
        assert!(
            status.message().contains(field),
            "{what}: the message names {field:?}: {:?}",
            status.message()
        );
        self.seen.push(format!("{status:?}"));
        status
    }

    async fn configure(
        &mut self,
        request: pb::ConfigureRequest,
    ) -> Result<Response<pb::ConfigureResponse>, Status> {
        self.client
            .configure(with_token(request, ADMIN_TOKEN))
            .await
    }

    async fn change_login(
        &mut self,
        credentials: Option<pb::change_login_request::Credentials>,
    ) -> Result<Response<pb::ChangeLoginResponse>, Status> {
        self.client
            .change_login(with_token(
                pb::ChangeLoginRequest { credentials },
                ADMIN_TOKEN,
            ))
            .await
    }

    async fn update_settings(
        &mut self,
        request: pb::UpdateSettingsRequest,
    ) -> Result<Response<pb::UpdateSettingsResponse>, Status> {
        self.client
            .update_settings(with_token(request, ADMIN_TOKEN))
            .await
    }

    async fn begin_oauth(
        &mut self,
        request: pb::BeginOAuthRequest,
    ) -> Result<Response<pb::BeginOAuthResponse>, Status> {
        self.client
            .begin_o_auth(with_token(request, ADMIN_TOKEN))
            .await
    }

    async fn get_integration(&mut self) -> Result<Response<pb::Integration>, Status> {
        self.client
            .get_integration(with_token(pb::GetIntegrationRequest {}, ADMIN_TOKEN))
            .await
    }

    /// Upserts an account with a number attribute `arr` and a text attribute `zendesk_org`.
    async fn upsert_account_with_number_attribute(&mut self) {
        let mut accounts = AccountDirectoryServiceClient::new(self.daemon.channel().await);
        let account = pb::Account {
            id: "acct-1".into(),
            name: "Account 1".into(),
            owner: "manager@example.com".into(),
            attributes: HashMap::from([
                (
                    "arr".to_owned(),
                    pb::AttributeValue {
                        value: Some(pb::attribute_value::Value::Number(1200.0)),
                    },
                ),
                (
                    "zendesk_org".to_owned(),
                    pb::AttributeValue {
                        value: Some(pb::attribute_value::Value::Text("org-1".into())),
                    },
                ),
            ]),
            users: Vec::new(),
        };
        accounts
            .upsert_accounts(with_token(
                pb::UpsertAccountsRequest {
                    accounts: vec![account],
                },
                ADMIN_TOKEN,
            ))
            .await
            .expect("upsert accounts");
    }

    fn assert_nothing_secret_seen(&self) {
        for answer in &self.seen {
            for secret in SECRETS {
                assert!(
                    !answer.contains(secret),
                    "an answer contains {secret:?}: {answer}"
                );
            }
        }
    }

    async fn stop(self) {
        self.assert_nothing_secret_seen();
        self.daemon.stop().await;
        self.sim.shutdown().await.expect("simulator stops");
    }
}

/// `message` with the admin token.
fn token<T>(message: T) -> tonic::Request<T> {
    with_token(message, ADMIN_TOKEN)
}

fn configure_with(edit: impl FnOnce(&mut pb::ConfigureRequest)) -> pb::ConfigureRequest {
    let mut request = configure_request();
    edit(&mut request);
    request
}

fn oauth_client(id: &str, secret: &str) -> pb::OAuthClientCredentials {
    pb::OAuthClientCredentials {
        client_id: id.into(),
        client_secret: secret.into(),
    }
}

fn oauth_tokens(access: &str, refresh: &str, id: &str, secret: &str) -> pb::OAuthTokens {
    pb::OAuthTokens {
        access_token: access.into(),
        refresh_token: refresh.into(),
        client_id: id.into(),
        client_secret: secret.into(),
    }
}

fn api_token(email: &str, token: &str) -> pb::ApiTokenCredentials {
    pb::ApiTokenCredentials {
        email: email.into(),
        token: token.into(),
    }
}

fn match_key(zendesk_field: &str, account_attribute: &str) -> pb::MatchKey {
    pb::MatchKey {
        zendesk_field: zendesk_field.into(),
        account_attribute: account_attribute.into(),
    }
}

fn begin_request(edit: impl FnOnce(&mut pb::BeginOAuthRequest)) -> pb::BeginOAuthRequest {
    let mut request = pb::BeginOAuthRequest {
        client_id: simulator::DEFAULT_CLIENT_ID.into(),
        client_secret: simulator::DEFAULT_CLIENT_SECRET.into(),
        redirect_uri: "http://127.0.0.1:8765/callback".into(),
        subdomain: "acme".into(),
        match_key: Some(match_key("organization_fields.account_id", "id")),
        timeframe_days: 30,
        include_satisfaction: true,
    };
    edit(&mut request);
    request
}

fn forbidden(endpoint: Endpoint) -> FaultSpec {
    FaultSpec {
        endpoint,
        kind: FaultKind::Forbidden,
        count: 1,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn configure_names_every_bad_field() {
    let logs = captured_logs();
    let mut setup = Setup::start().await;
    use pb::configure_request::Credentials as C;
    let invalid: Vec<(&str, pb::ConfigureRequest, &str)> = vec![
        (
            "no subdomain",
            configure_with(|r| r.subdomain.clear()),
            "subdomain",
        ),
        (
            "dotted subdomain",
            configure_with(|r| r.subdomain = "acme.zendesk.com".into()),
            "subdomain",
        ),
        (
            "subdomain with a scheme",
            configure_with(|r| r.subdomain = "https://acme".into()),
            "subdomain",
        ),
        (
            "subdomain starting with a dash",
            configure_with(|r| r.subdomain = "-acme".into()),
            "subdomain",
        ),
        (
            "subdomain of 64 characters",
            configure_with(|r| r.subdomain = "a".repeat(64)),
            "subdomain",
        ),
        (
            "subdomain with a space",
            configure_with(|r| r.subdomain = "ac me".into()),
            "subdomain",
        ),
        (
            "no credentials",
            configure_with(|r| r.credentials = None),
            "credentials",
        ),
        (
            "oauth_client without client_id",
            configure_with(|r| r.credentials = Some(C::OauthClient(oauth_client("", "s3cret")))),
            "oauth_client.client_id",
        ),
        (
            "oauth_client without client_secret",
            configure_with(|r| {
                r.credentials = Some(C::OauthClient(oauth_client("zdsync-sim", "")))
            }),
            "oauth_client.client_secret",
        ),
        (
            "oauth without access_token",
            configure_with(|r| r.credentials = Some(C::Oauth(oauth_tokens("", "refresh", "", "")))),
            "oauth.access_token",
        ),
        (
            "oauth without refresh_token",
            configure_with(|r| r.credentials = Some(C::Oauth(oauth_tokens("access", "", "", "")))),
            "oauth.refresh_token",
        ),
        (
            "oauth with client_id but no client_secret",
            configure_with(|r| {
                r.credentials = Some(C::Oauth(oauth_tokens(
                    "access",
                    "refresh",
                    "zdsync-sim",
                    "",
                )))
            }),
            "oauth.client_secret",
        ),
        (
            "oauth with client_secret but no client_id",
            configure_with(|r| {
                r.credentials = Some(C::Oauth(oauth_tokens("access", "refresh", "", "s3cret")))
            }),
            "oauth.client_id",
        ),
        (
            "api_token without email",
            configure_with(|r| r.credentials = Some(C::ApiToken(api_token("", "token")))),
            "api_token.email",
        ),
        (
            "api_token with a bad email",
            configure_with(|r| {
                r.credentials = Some(C::ApiToken(api_token("not-an-email", "token")))
            }),
            "api_token.email",
        ),
        (
            "api_token without token",
            configure_with(|r| {
                r.credentials = Some(C::ApiToken(api_token("admin@example.com", "")))
            }),
            "api_token.token",
        ),
        (
            "no match_key",
            configure_with(|r| r.match_key = None),
            "match_key",
        ),
        (
            "empty zendesk_field",
            configure_with(|r| r.match_key = Some(match_key("", "id"))),
            "match_key.zendesk_field",
        ),
        (
            "unknown zendesk_field",
            configure_with(|r| r.match_key = Some(match_key("tags", "id"))),
            "match_key.zendesk_field",
        ),
        (
            "organization_fields without a key",
            configure_with(|r| r.match_key = Some(match_key("organization_fields.", "id"))),
            "match_key.zendesk_field",
        ),
        (
            "account_attribute neither id nor attributes.<name>",
            configure_with(|r| r.match_key = Some(match_key("external_id", "name"))),
            "match_key.account_attribute",
        ),
        (
            "attributes. without a name",
            configure_with(|r| r.match_key = Some(match_key("external_id", "attributes."))),
            "match_key.account_attribute",
        ),
        (
            "empty account_attribute",
            configure_with(|r| r.match_key = Some(match_key("external_id", ""))),
            "match_key.account_attribute",
        ),
        (
            "timeframe 45",
            configure_with(|r| r.timeframe_days = 45),
            "timeframe_days",
        ),
        (
            "timeframe 365",
            configure_with(|r| r.timeframe_days = 365),
            "timeframe_days",
        ),
    ];
    for (what, request, field) in invalid {
        let result = setup.configure(request).await;
        setup.fails(what, result, Code::InvalidArgument, field);
    }

    setup.upsert_account_with_number_attribute().await;
    let result = setup
        .configure(configure_with(|r| {
            r.match_key = Some(match_key(
                "organization_fields.account_id",
                "attributes.arr",
            ))
        }))
        .await;
    let refused = setup.fails(
        "a number attribute as the match key",
        result,
        Code::InvalidArgument,
        "match_key.account_attribute",
    );
    assert!(
        refused.message().contains("number"),
        "{:?}",
        refused.message()
    );

    // Zendesk's refusals come back with Zendesk's reason.
    let result = setup
        .configure(configure_with(|r| {
            r.credentials = Some(C::OauthClient(oauth_client("zdsync-sim", "wrong-secret")))
        }))
        .await;
    setup.fails(
        "a wrong client secret",
        result,
        Code::Unauthenticated,
        "invalid_client",
    );
    let result = setup
        .configure(configure_with(|r| {
            r.credentials = Some(C::ApiToken(api_token(
                simulator::DEFAULT_API_TOKEN_EMAIL,
                "wrong-token",
            )))
        }))
        .await;
    setup.fails(
        "a wrong API token",
        result,
        Code::Unauthenticated,
        "Couldn't authenticate you",
    );
    setup
        .sim
        .control()
        .inject_fault(forbidden(Endpoint::UsersMe));
    let result = setup.configure(configure_request()).await;
    setup.fails(
        "a principal Zendesk forbids",
        result,
        Code::PermissionDenied,
        "You do not have access",
    );

    // Nothing of the refused requests was stored.
    let result = setup.get_integration().await;
    setup.fails("nothing stored", result, Code::NotFound, "no integration");
    assert_eq!(
        status(&mut setup.client).await.state,
        pb::SyncState::NotConfigured as i32
    );

    // An upper-case subdomain is accepted and stored lower-cased; a text attribute is a valid key.
    let configured = setup
        .configure(configure_with(|r| {
            r.subdomain = "ACME-Support".into();
            r.match_key = Some(match_key("external_id", "attributes.zendesk_org"));
        }))
        .await;
    let configured = setup.ok("configure", configured);
    let integration = configured.integration.expect("integration");
    assert_eq!(integration.subdomain, "acme-support");
    assert_eq!(status(&mut setup.client).await.subdomain, "acme-support");
    wait_for_successful_runs(&mut setup.client, 1).await;
    setup.stop().await;
    assert_no_secret_logged(&logs);
}

#[tokio::test(flavor = "multi_thread")]
async fn rpcs_without_an_integration_answer_the_documented_codes() {
    let logs = captured_logs();
    let mut setup = Setup::start().await;

    let result = setup
        .update_settings(pb::UpdateSettingsRequest {
            timeframe_days: Some(90),
            ..Default::default()
        })
        .await;
    setup.fails(
        "UpdateSettings",
        result,
        Code::FailedPrecondition,
        "Configure",
    );
    let result = setup
        .change_login(Some(pb::change_login_request::Credentials::OauthClient(
            oauth_client(
                simulator::DEFAULT_CLIENT_ID,
                simulator::DEFAULT_CLIENT_SECRET,
            ),
        )))
        .await;
    setup.fails("ChangeLogin", result, Code::FailedPrecondition, "Configure");
    let result = setup
        .client
        .force_sync(token(pb::ForceSyncRequest::default()))
        .await;
    setup.fails("ForceSync", result, Code::FailedPrecondition, "Configure");
    let result = setup.client.pause(token(pb::PauseRequest {})).await;
    setup.fails("Pause", result, Code::FailedPrecondition, "Configure");
    let result = setup.client.resume(token(pb::ResumeRequest {})).await;
    setup.fails("Resume", result, Code::FailedPrecondition, "Configure");
    let result = setup
        .client
        .delete_integration(token(pb::DeleteIntegrationRequest {
            confirm_subdomain: "acme".into(),
        }))
        .await;
    setup.fails(
        "DeleteIntegration",
        result,
        Code::NotFound,
        "no integration",
    );
    let result = setup.get_integration().await;
    setup.fails("GetIntegration", result, Code::NotFound, "no integration");
    let result = setup
        .client
        .list_unmatched(token(pb::ListUnmatchedRequest::default()))
        .await;
    setup.fails(
        "ListUnmatched",
        result,
        Code::FailedPrecondition,
        "no integration",
    );

    // BeginOAuth: the OAuth client, the redirect URI, and (with no integration) the settings.
    let invalid: Vec<(&str, pb::BeginOAuthRequest, &str)> = vec![
        (
            "no client_id",
            begin_request(|r| r.client_id.clear()),
            "client_id",
        ),
        (
            "no client_secret",
            begin_request(|r| r.client_secret.clear()),
            "client_secret",
        ),
        (
            "no redirect_uri",
            begin_request(|r| r.redirect_uri.clear()),
            "redirect_uri",
        ),
        (
            "a relative redirect_uri",
            begin_request(|r| r.redirect_uri = "/callback".into()),
            "redirect_uri",
        ),
        (
            "a redirect_uri that is no URL",
            begin_request(|r| r.redirect_uri = "not a url".into()),
            "redirect_uri",
        ),
        (
            "a non-http redirect_uri",
            begin_request(|r| r.redirect_uri = "ftp://example.com/callback".into()),
            "redirect_uri",
        ),
        (
            "no subdomain while unconfigured",
            begin_request(|r| r.subdomain.clear()),
            "subdomain",
        ),
        (
            "a dotted subdomain",
            begin_request(|r| r.subdomain = "acme.zendesk.com".into()),
            "subdomain",
        ),
        (
            "no match_key while unconfigured",
            begin_request(|r| r.match_key = None),
            "match_key",
        ),
        (
            "a bad zendesk_field",
            begin_request(|r| r.match_key = Some(match_key("tags", "id"))),
            "match_key.zendesk_field",
        ),
        (
            "timeframe 45",
            begin_request(|r| r.timeframe_days = 45),
            "timeframe_days",
        ),
    ];
    for (what, request, field) in invalid {
        let result = setup.begin_oauth(request).await;
        setup.fails(
            &format!("BeginOAuth with {what}"),
            result,
            Code::InvalidArgument,
            field,
        );
    }

    // CompleteOAuth: the code and a state BeginOAuth handed out.
    let begun = setup.begin_oauth(begin_request(|_| {})).await;
    let begun = setup.ok("BeginOAuth", begun);
    assert!(!begun.state.is_empty());
    assert!(begun.authorize_url.contains("/oauth/authorizations/new"));
    let complete = |code: &str, state: &str| {
        token(pb::CompleteOAuthRequest {
            code: code.into(),
            state: state.into(),
        })
    };
    let result = setup
        .client
        .complete_o_auth(complete("", &begun.state))
        .await;
    setup.fails(
        "CompleteOAuth without code",
        result,
        Code::InvalidArgument,
        "code",
    );
    let result = setup
        .client
        .complete_o_auth(complete("some-code", ""))
        .await;
    setup.fails(
        "CompleteOAuth without state",
        result,
        Code::InvalidArgument,
        "state",
    );
    let result = setup
        .client
        .complete_o_auth(complete("some-code", "no-such-state"))
        .await;
    setup.fails(
        "CompleteOAuth with an unknown state",
        result,
        Code::InvalidArgument,
        "state",
    );

    assert_eq!(
        status(&mut setup.client).await.state,
        pb::SyncState::NotConfigured as i32
    );
    setup.stop().await;
    assert_no_secret_logged(&logs);
}

#[tokio::test(flavor = "multi_thread")]
async fn rpcs_on_a_configured_integration_name_bad_fields_and_return_masks_only() {
    let logs = captured_logs();
    let mut setup = Setup::start().await;
    setup.upsert_account_with_number_attribute().await;
    let configured = setup.configure(configure_request()).await;
    setup.ok("Configure", configured);
    wait_for_successful_runs(&mut setup.client, 1).await;

    let again = setup.configure(configure_request()).await;
    setup.fails("a second Configure", again, Code::AlreadyExists, "acme");

    // UpdateSettings.
    let invalid: Vec<(&str, pb::UpdateSettingsRequest, &str)> = vec![
        (
            "timeframe 0",
            pb::UpdateSettingsRequest {
                timeframe_days: Some(0),
                ..Default::default()
            },
            "timeframe_days",
        ),
        (
            "timeframe 45",
            pb::UpdateSettingsRequest {
                timeframe_days: Some(45),
                ..Default::default()
            },
            "timeframe_days",
        ),
        (
            "a bad zendesk_field",
            pb::UpdateSettingsRequest {
                match_key: Some(match_key("organization_fields.has space", "id")),
                ..Default::default()
            },
            "match_key.zendesk_field",
        ),
        (
            "a bad account_attribute",
            pb::UpdateSettingsRequest {
                match_key: Some(match_key("external_id", "owner")),
                ..Default::default()
            },
            "match_key.account_attribute",
        ),
        (
            "a number attribute",
            pb::UpdateSettingsRequest {
                match_key: Some(match_key("external_id", "attributes.arr")),
                ..Default::default()
            },
            "match_key.account_attribute",
        ),
    ];
    for (what, request, field) in invalid {
        let result = setup.update_settings(request).await;
        setup.fails(
            &format!("UpdateSettings with {what}"),
            result,
            Code::InvalidArgument,
            field,
        );
    }
    let updated = setup
        .update_settings(pb::UpdateSettingsRequest {
            timeframe_days: Some(90),
            ..Default::default()
        })
        .await;
    let updated = setup.ok("UpdateSettings", updated);
    assert_eq!(updated.integration.expect("integration").timeframe_days, 90);

    // ChangeLogin.
    use pb::change_login_request::Credentials as C;
    let result = setup.change_login(None).await;
    setup.fails(
        "ChangeLogin without credentials",
        result,
        Code::InvalidArgument,
        "credentials",
    );
    let result = setup
        .change_login(Some(C::ApiToken(api_token("admin@example.com", ""))))
        .await;
    setup.fails(
        "ChangeLogin without token",
        result,
        Code::InvalidArgument,
        "api_token.token",
    );
    let result = setup
        .change_login(Some(C::OauthClient(oauth_client("", "s3cret"))))
        .await;
    setup.fails(
        "ChangeLogin without client_id",
        result,
        Code::InvalidArgument,
        "oauth_client.client_id",
    );
    let result = setup
        .change_login(Some(C::Oauth(oauth_tokens("access", "", "", ""))))
        .await;
    setup.fails(
        "ChangeLogin without refresh_token",
        result,
        Code::InvalidArgument,
        "oauth.refresh_token",
    );
    let result = setup
        .change_login(Some(C::ApiToken(api_token(
            simulator::DEFAULT_API_TOKEN_EMAIL,
            "wrong-token",
        ))))
        .await;
    setup.fails(
        "ChangeLogin with a wrong token",
        result,
        Code::Unauthenticated,
        "Couldn't authenticate you",
    );
    setup
        .sim
        .control()
        .inject_fault(forbidden(Endpoint::UsersMe));
    let result = setup
        .change_login(Some(C::ApiToken(api_token(
            simulator::DEFAULT_API_TOKEN_EMAIL,
            simulator::DEFAULT_API_TOKEN,
        ))))
        .await;
    setup.fails(
        "ChangeLogin for a forbidden principal",
        result,
        Code::PermissionDenied,
        "You do not have access",
    );
    let integration = setup.get_integration().await;
    let integration = setup.ok("GetIntegration", integration);
    assert_eq!(
        integration.credentials.expect("credentials").kind,
        pb::CredentialKind::OauthClient as i32,
        "refused logins change nothing"
    );

    // BeginOAuth on a configured integration: its own subdomain (any case) only.
    let result = setup
        .begin_oauth(begin_request(|r| r.subdomain = "other".into()))
        .await;
    setup.fails(
        "BeginOAuth for another subdomain",
        result,
        Code::InvalidArgument,
        "subdomain",
    );
    let begun = setup
        .begin_oauth(begin_request(|r| {
            r.subdomain = "ACME".into();
            r.match_key = None;
        }))
        .await;
    setup.ok("BeginOAuth for the configured subdomain", begun);

    // ForceSync kinds, DeleteIntegration's confirmation.
    let result = setup
        .client
        .force_sync(token(pb::ForceSyncRequest {
            kind: pb::SyncKind::InitialSync as i32,
        }))
        .await;
    setup.fails(
        "ForceSync INITIAL_SYNC",
        result,
        Code::InvalidArgument,
        "kind",
    );
    let result = setup
        .client
        .delete_integration(token(pb::DeleteIntegrationRequest {
            confirm_subdomain: "other".into(),
        }))
        .await;
    setup.fails(
        "DeleteIntegration for another subdomain",
        result,
        Code::InvalidArgument,
        "confirm_subdomain",
    );
    let result = setup
        .client
        .list_unmatched(token(pb::ListUnmatchedRequest { reasons: vec![7] }))
        .await;
    setup.fails(
        "ListUnmatched with an unknown reason",
        result,
        Code::InvalidArgument,
        "reasons[0]",
    );

    // Secrets come back masked, whichever kind is stored.
    let integration = setup.get_integration().await;
    let integration = setup.ok("GetIntegration", integration);
    let masked = integration.credentials.expect("credentials");
    assert_eq!(masked.client_id, simulator::DEFAULT_CLIENT_ID);
    assert!(!masked.client_secret_masked.is_empty());
    let changed = setup
        .change_login(Some(C::ApiToken(api_token(
            simulator::DEFAULT_API_TOKEN_EMAIL,
            simulator::DEFAULT_API_TOKEN,
        ))))
        .await;
    setup.ok("ChangeLogin", changed);
    let integration = setup.get_integration().await;
    let integration = setup.ok("GetIntegration", integration);
    let masked = integration.credentials.expect("credentials");
    assert_eq!(masked.kind, pb::CredentialKind::ApiToken as i32);
    assert_eq!(masked.email, simulator::DEFAULT_API_TOKEN_EMAIL);
    assert!(!masked.token_masked.is_empty());
    let current = status(&mut setup.client).await;
    setup.seen.push(format!("{current:?}"));
    assert!(
        current.warnings.iter().any(|w| w.contains("2027-04-30")),
        "{:?}",
        current.warnings
    );
    setup.stop().await;
    assert_no_secret_logged(&logs);
}
