//! The simulated endpoints, as named by fault injection and request counters.
use serde::{Deserialize, Serialize};

/// One Zendesk endpoint the simulator answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// `GET /api/v2/users/me.json`
    UsersMe,
    /// `GET /api/v2/incremental/tickets/cursor.json`
    IncrementalTickets,
    /// `GET /api/v2/incremental/users/cursor.json`
    IncrementalUsers,
    /// `GET /api/v2/incremental/organizations.json`
    IncrementalOrganizations,
    /// `GET /api/v2/incremental/ticket_events.json`
    TicketEvents,
    /// `GET /api/v2/groups.json`
    Groups,
    /// `GET /api/v2/satisfaction_ratings.json`
    SatisfactionRatings,
    /// `POST /oauth/tokens`
    OauthTokens,
    /// `GET /oauth/authorizations/new`
    OauthAuthorize,
}

impl Endpoint {
    /// Every endpoint, in counter order.
    pub const ALL: [Endpoint; 9] = [
        Endpoint::UsersMe,
        Endpoint::IncrementalTickets,
        Endpoint::IncrementalUsers,
        Endpoint::IncrementalOrganizations,
        Endpoint::TicketEvents,
        Endpoint::Groups,
        Endpoint::SatisfactionRatings,
        Endpoint::OauthTokens,
        Endpoint::OauthAuthorize,
    ];

    /// The snake_case name used by the control API.
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::UsersMe => "users_me",
            Endpoint::IncrementalTickets => "incremental_tickets",
            Endpoint::IncrementalUsers => "incremental_users",
            Endpoint::IncrementalOrganizations => "incremental_organizations",
            Endpoint::TicketEvents => "ticket_events",
            Endpoint::Groups => "groups",
            Endpoint::SatisfactionRatings => "satisfaction_ratings",
            Endpoint::OauthTokens => "oauth_tokens",
            Endpoint::OauthAuthorize => "oauth_authorize",
        }
    }

    /// Position in [`Endpoint::ALL`], for counter arrays.
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// Whether the endpoint is an incremental export, with its own limit (10 requests a minute at Zendesk).
    pub(crate) fn is_export(self) -> bool {
        matches!(
            self,
            Endpoint::IncrementalTickets
                | Endpoint::IncrementalUsers
                | Endpoint::IncrementalOrganizations
                | Endpoint::TicketEvents
        )
    }

    /// Whether the endpoint is a Zendesk API route (`/api/v2/*`), subject to auth and rate limit.
    pub(crate) fn is_api(self) -> bool {
        !matches!(self, Endpoint::OauthTokens | Endpoint::OauthAuthorize)
    }
}
