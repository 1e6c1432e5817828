//! A sorted `(timestamp, id)` index: the export order of every incremental endpoint.

/// Keys sorted ascending; a page is a binary search plus a slice.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct SortedIndex {
    keys: Vec<(i64, u64)>,
}

impl SortedIndex {
    /// Builds the index from unsorted keys.
    pub(crate) fn from_unsorted(mut keys: Vec<(i64, u64)>) -> Self {
        keys.sort_unstable();
        Self { keys }
    }

    /// Adds a key (usually at the end, so cheap).
    pub(crate) fn insert(&mut self, key: (i64, u64)) {
        let at = self.keys.partition_point(|k| *k < key);
        self.keys.insert(at, key);
    }

    /// Removes a key if present.
    pub(crate) fn remove(&mut self, key: (i64, u64)) {
        if let Ok(at) = self.keys.binary_search(&key) {
            self.keys.remove(at);
        }
    }

    /// Every key strictly after `key`.
    pub(crate) fn after(&self, key: (i64, u64)) -> &[(i64, u64)] {
        let at = self.keys.partition_point(|k| *k <= key);
        &self.keys[at..]
    }

    /// Every key whose timestamp is at least `timestamp`.
    pub(crate) fn starting_at(&self, timestamp: i64) -> &[(i64, u64)] {
        let at = self.keys.partition_point(|k| k.0 < timestamp);
        &self.keys[at..]
    }

    /// The greatest key.
    pub(crate) fn last(&self) -> Option<(i64, u64)> {
        self.keys.last().copied()
    }
}

/// Length of one time-based export page over time-ordered `items`: `per_page` records (when
/// available), extended so records sharing the last timestamp are never split across pages.
pub(crate) fn time_page_len<T>(
    items: &[T],
    per_page: usize,
    timestamp: impl Fn(&T) -> i64,
) -> usize {
    if items.len() <= per_page {
        return items.len();
    }
    let Some(last) = per_page.checked_sub(1).and_then(|i| items.get(i)) else {
        return 0;
    };
    let last = timestamp(last);
    let mut end = per_page;
    while end < items.len() && timestamp(&items[end]) == last {
        end += 1;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_and_starting_at() {
        let index = SortedIndex::from_unsorted(vec![(5, 2), (3, 9), (5, 1), (7, 1)]);
        assert_eq!(index.after((5, 1)), &[(5, 2), (7, 1)]);
        assert_eq!(index.after((0, 0)).len(), 4);
        assert_eq!(index.starting_at(5), &[(5, 1), (5, 2), (7, 1)]);
        assert_eq!(index.starting_at(8), &[] as &[(i64, u64)]);
    }

    #[test]
    fn insert_remove_keep_order() {
        let mut index = SortedIndex::from_unsorted(vec![(1, 1), (3, 3)]);
        index.insert((2, 2));
        index.remove((1, 1));
        assert_eq!(index.after((0, 0)), &[(2, 2), (3, 3)]);
        assert_eq!(index.last(), Some((3, 3)));
    }

    #[test]
    fn time_page_never_splits_a_second() {
        let keys = [(1, 1), (2, 2), (2, 3), (2, 4), (3, 5)];
        assert_eq!(time_page_len(&keys, 2, |k| k.0), 4);
        assert_eq!(time_page_len(&keys, 1, |k| k.0), 1);
        assert_eq!(time_page_len(&keys, 10, |k| k.0), 5);
    }
}
