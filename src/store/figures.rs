//! The figures metric reads are made of: what the rollups sum for an account or a user over a window.
use crate::domain::metrics::{Counters, RatingDayCounts, TicketDayCounts, Timeframe};

/// The figures of one account (or one user) over a timeframe.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Figures {
    /// Current counters.
    pub counters: Counters,
    /// Tickets created in the window.
    pub created: TicketDayCounts,
    /// Ratings given in the window.
    pub ratings: RatingDayCounts,
}

impl Figures {
    /// Adds `other`'s figures to these (an account sums its organizations').
    pub fn add(&mut self, other: &Figures) {
        self.counters.open += other.counters.open;
        self.counters.total += other.counters.total;
        self.counters.open_high_urgent += other.counters.open_high_urgent;
        self.created.created += other.created.created;
        self.created.high_urgent_created += other.created.high_urgent_created;
        self.ratings.good += other.ratings.good;
        self.ratings.bad += other.ratings.bad;
        self.ratings.high_urgent_good += other.ratings.high_urgent_good;
        self.ratings.high_urgent_bad += other.ratings.high_urgent_bad;
    }
}

/// One account's metric inputs.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountFigures {
    /// Its matched organizations, in id order.
    pub orgs: Vec<u64>,
    /// Their summed figures over `timeframe`.
    pub figures: Figures,
    /// The window in force.
    pub timeframe: Timeframe,
    /// Whether satisfaction scores are computed.
    pub satisfaction: bool,
}
