//! Ticket states and priorities as zdsync reasons about them, with stable storage codes.

/// A ticket status, spelled as Zendesk spells it on the wire.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Not yet looked at.
    New,
    /// Being worked on.
    Open,
    /// Waiting for the requester.
    Pending,
    /// Waiting for a third party.
    Hold,
    /// Solved; can be reopened.
    Solved,
    /// Closed for good.
    Closed,
    /// Deleted in Zendesk: counts nowhere.
    Deleted,
}

impl Status {
    /// Every status, in code order.
    pub const ALL: [Status; 7] = [
        Status::New,
        Status::Open,
        Status::Pending,
        Status::Hold,
        Status::Solved,
        Status::Closed,
        Status::Deleted,
    ];

    /// Stable storage code (1..=7).
    pub fn code(self) -> u32 {
        match self {
            Status::New => 1,
            Status::Open => 2,
            Status::Pending => 3,
            Status::Hold => 4,
            Status::Solved => 5,
            Status::Closed => 6,
            Status::Deleted => 7,
        }
    }

    /// The status stored as `code`.
    pub fn from_code(code: u32) -> Option<Self> {
        Status::ALL.into_iter().find(|status| status.code() == code)
    }

    /// Zendesk's name of the status.
    pub fn name(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::Open => "open",
            Status::Pending => "pending",
            Status::Hold => "hold",
            Status::Solved => "solved",
            Status::Closed => "closed",
            Status::Deleted => "deleted",
        }
    }

    /// New, open, pending or hold.
    pub fn is_unsolved(self) -> bool {
        matches!(
            self,
            Status::New | Status::Open | Status::Pending | Status::Hold
        )
    }

    /// Solved or closed.
    pub fn is_solved(self) -> bool {
        matches!(self, Status::Solved | Status::Closed)
    }
}

/// A ticket priority; `None` when the ticket has none.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// No priority set.
    None,
    /// Low.
    Low,
    /// Normal.
    Normal,
    /// High.
    High,
    /// Urgent.
    Urgent,
}

impl Priority {
    /// Every priority, in code order.
    pub const ALL: [Priority; 5] = [
        Priority::None,
        Priority::Low,
        Priority::Normal,
        Priority::High,
        Priority::Urgent,
    ];

    /// Stable storage code (0..=4).
    pub fn code(self) -> u32 {
        match self {
            Priority::None => 0,
            Priority::Low => 1,
            Priority::Normal => 2,
            Priority::High => 3,
            Priority::Urgent => 4,
        }
    }

    /// The priority stored as `code`.
    pub fn from_code(code: u32) -> Option<Self> {
        Priority::ALL
            .into_iter()
            .find(|priority| priority.code() == code)
    }

    /// Zendesk's name of the priority (empty for none).
    pub fn name(self) -> &'static str {
        match self {
            Priority::None => "",
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }

    /// High or urgent.
    pub fn is_high_or_urgent(self) -> bool {
        matches!(self, Priority::High | Priority::Urgent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_classify() {
        for status in Status::ALL {
            assert_eq!(Status::from_code(status.code()), Some(status));
        }
        for priority in Priority::ALL {
            assert_eq!(Priority::from_code(priority.code()), Some(priority));
        }
        assert_eq!(Status::from_code(0), None);
        assert_eq!(Priority::from_code(9), None);
        assert!(
            Status::Hold.is_unsolved()
                && !Status::Solved.is_unsolved()
                && !Status::Deleted.is_unsolved()
        );
        assert!(Priority::Urgent.is_high_or_urgent() && !Priority::Normal.is_high_or_urgent());
    }
}
