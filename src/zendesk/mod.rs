//! The Zendesk Support API as zdsync sees it: client (auth, budget, retries), payload types, export streams.
pub mod auth;
pub mod budget;
pub mod client;
pub mod decode;
pub mod envelope;
pub mod error;
pub mod observe;
pub mod payload;
pub mod retry;
pub mod secret;
pub mod settings;
pub mod streams;
mod transport;

pub use auth::{
    persist_tokens_with, AuthorizeRequest, Credentials, OAuthClient, OAuthTokens, PersistTokens,
};
pub use client::{
    begin_authorization, exchange_authorization_code, Identity, ZendeskClient, ZendeskClientBuilder,
};
pub use error::{ZendeskError, ZendeskErrorKind};
pub use observe::{ClientObserver, ClientStats, WaitReason};
pub use retry::{RecordingSleeper, Sleeper, TokioSleeper};
pub use secret::Secret;
pub use settings::ClientSettings;
pub use streams::{
    ExportPosition, GroupList, ListPosition, OrganizationExport, Page, SatisfactionRatingList,
    TicketEventExport, TicketExport, TicketSideLoads, TimePosition, UserExport,
};
