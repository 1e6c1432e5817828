//! Value types shared by the data set, the JSON writers and the control API.
use serde::{Deserialize, Serialize};

/// A ticket status (the domain's, spelled as Zendesk spells it).
pub use crate::domain::ticket::Status;

/// A ticket priority (a ticket may have none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// `low`
    Low,
    /// `normal`
    Normal,
    /// `high`
    High,
    /// `urgent`
    Urgent,
}

impl Priority {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }
}

/// A satisfaction rating score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Score {
    /// The survey was offered, not answered.
    Offered,
    /// The requester rated the ticket good.
    Good,
    /// The requester rated the ticket bad.
    Bad,
}

impl Score {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Score::Offered => "offered",
            Score::Good => "good",
            Score::Bad => "bad",
        }
    }
}

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    /// `end-user`
    #[serde(rename = "end-user")]
    EndUser,
    /// `agent`
    #[serde(rename = "agent")]
    Agent,
    /// `admin`
    #[serde(rename = "admin")]
    Admin,
}

impl Role {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::EndUser => "end-user",
            Role::Agent => "agent",
            Role::Admin => "admin",
        }
    }
}

/// The channel a ticket or an update came through (`via.channel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Channel {
    /// `web`
    Web,
    /// `email`
    Email,
    /// `api`
    Api,
}

impl Channel {
    /// The wire name.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Channel::Web => "web",
            Channel::Email => "email",
            Channel::Api => "api",
        }
    }
}
