//! The Zendesk Support API as zdsync sees it: client (auth, budget, retries), payload types, export streams.
//!
//! How the sync engine uses it:
//! 1. `ClientSettings::for_subdomain(sub)` (or `for_base_url` from the config file), adjust
//!    `requests_per_minute` / `timeout`, then `ZendeskClient::builder(settings, credentials)`
//!    (`.persist_tokens(..)` for OAuth token pairs) `.build()`.
//! 2. `client.verify()` before storing credentials.
//! 3. Per stream, `client.ticket_export(position)` (and `user_export`, `organization_export`,
//!    `ticket_event_export`, `groups`, `satisfaction_ratings`), then loop on `next_page()`: apply
//!    `page.records` (+ `page.side_loads`) and store `page.position` in one transaction. Records
//!    repeat across pages and runs: upsert by id keeping the newest `generated_timestamp` /
//!    `updated_at`.
//! 4. Errors: `ZendeskError::kind()` says whether to stop for new credentials, retry later, or
//!    report a malformed answer; `client.stats()` feeds `GetStatus`.
pub mod account_limit;
pub mod auth;
pub mod budget;
pub mod client;
pub mod decode;
pub mod envelope;
pub mod error;
pub mod observe;
pub mod payload;
pub mod retry;
pub mod settings;
pub mod streams;
pub mod timestamp;
mod transport;

pub use crate::secrets::Secret;
pub use auth::{
    persist_tokens_with, AuthorizeRequest, Credentials, OAuthClient, OAuthTokens, PersistTokens,
};
pub use client::{
    begin_authorization, exchange_authorization_code, Identity, ZendeskClient, ZendeskClientBuilder,
};
pub use error::{ZendeskError, ZendeskErrorKind};
pub use observe::{ClientObserver, ClientStats, WaitReason};
pub use retry::{RecordingSleeper, Sleeper, TokioSleeper};
pub use settings::ClientSettings;
pub use streams::{
    ExportPosition, GroupList, ListPosition, OrganizationExport, Page, SatisfactionRatingList,
    TicketEventExport, TicketExport, TicketSideLoads, TimePosition, UserExport,
};
