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

/// What a commit may have changed of the inputs account figures are computed from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum FigureChange {
    /// Nothing: the figures computed so far stay valid.
    #[default]
    Nothing,
    /// The rollups of these organizations only (a page of tickets and ratings): only the accounts matched
    /// to one of them need new figures.
    Orgs(std::collections::BTreeSet<u64>),
    /// Anything: accounts, matches, settings (every account's figures may differ).
    Everything,
}

impl FigureChange {
    /// Adds what a later commit changed.
    pub fn merge(&mut self, later: FigureChange) {
        match (&mut *self, later) {
            (_, FigureChange::Nothing) | (FigureChange::Everything, _) => {}
            (FigureChange::Orgs(orgs), FigureChange::Orgs(more)) => orgs.extend(more),
            (this, later) => *this = later,
        }
    }

    /// Whether figures computed from `orgs` may be out of date after the change.
    pub fn touches(&self, orgs: &[u64]) -> bool {
        match self {
            FigureChange::Nothing => false,
            FigureChange::Orgs(changed) => orgs.iter().any(|org| changed.contains(org)),
            FigureChange::Everything => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::FigureChange::{self, Everything, Nothing, Orgs};

    fn orgs(ids: &[u64]) -> FigureChange {
        Orgs(ids.iter().copied().collect())
    }

    #[test]
    fn changes_merge_to_the_widest_and_touch_only_their_orgs() {
        let mut change = Nothing;
        change.merge(orgs(&[3]));
        change.merge(Nothing);
        change.merge(orgs(&[1, 3]));
        assert_eq!(change, orgs(&[1, 3]));
        assert!(change.touches(&[2, 3]));
        assert!(!change.touches(&[2, 4]));
        assert!(!change.touches(&[]));
        change.merge(Everything);
        change.merge(orgs(&[9]));
        assert_eq!(change, Everything);
        assert!(change.touches(&[]));
        assert!(!Nothing.touches(&[1]));
    }
}
