//! Page envelopes: the records of one response plus the paging facts that come with them.
use serde::Deserialize;

use super::payload::{
    CurrentUser, Group, OneOrMany, Organization, SatisfactionRating, Ticket, TicketAudit,
    TicketEvent, TicketMetricEvent, TicketMetricSet, User,
};

/// One page of the cursor-based ticket export, with its side-loads.
#[derive(Debug, Clone, Deserialize)]
pub struct TicketCursorPage {
    /// The tickets.
    #[serde(deserialize_with = "records")]
    pub tickets: Vec<Ticket>,
    /// Cursor for the next request; still set on the last page, to resume the next sync.
    #[serde(default)]
    pub after_cursor: Option<String>,
    /// True when everything up to now has been returned.
    pub end_of_stream: bool,
    /// Side-loaded users (`include=users`).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub users: Vec<User>,
    /// Side-loaded groups (`include=groups`).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub groups: Vec<Group>,
    /// Side-loaded organizations (`include=organizations`).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub organizations: Vec<Organization>,
    /// Side-loaded metric sets (`include=metric_sets`).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub metric_sets: Vec<TicketMetricSet>,
}

/// One page of the cursor-based user export.
#[derive(Debug, Clone, Deserialize)]
pub struct UserCursorPage {
    /// The users.
    #[serde(deserialize_with = "records")]
    pub users: Vec<User>,
    /// Cursor for the next request; still set on the last page.
    #[serde(default)]
    pub after_cursor: Option<String>,
    /// True when everything up to now has been returned.
    pub end_of_stream: bool,
}

/// The paging facts of a time-based export page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct TimeExportMeta {
    /// Start time of the next page (Unix seconds).
    #[serde(default)]
    pub end_time: Option<i64>,
    /// True when everything up to now has been returned (absent on some older endpoints).
    #[serde(default)]
    pub end_of_stream: Option<bool>,
    /// Number of records in this page as Zendesk counts them.
    #[serde(default)]
    pub count: Option<u64>,
    /// URL of the next page (Zendesk's docs copy it wrongly at times: zdsync uses `end_time`).
    #[serde(default)]
    pub next_page: Option<String>,
}

/// A page of records with the paging facts that come with them.
pub trait PageEnvelope {
    /// The record type.
    type Record;
    /// The paging facts ([`TimeExportMeta`] or [`ListMeta`]).
    type Meta;
    /// Splits the page into records and paging facts.
    fn into_parts(self) -> (Vec<Self::Record>, Self::Meta);
}

/// Declares a page struct holding `$field: Vec<$record>` and flattened `$meta` paging facts.
macro_rules! page_envelope {
    ($(#[$doc:meta])* $name:ident, $field:ident, $record:ty, $meta:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Deserialize)]
        pub struct $name {
            /// The records.
            #[serde(deserialize_with = "records")]
            pub $field: Vec<$record>,
            /// Paging facts.
            #[serde(flatten)]
            pub meta: $meta,
        }

        impl PageEnvelope for $name {
            type Record = $record;
            type Meta = $meta;
            fn into_parts(self) -> (Vec<$record>, $meta) {
                (self.$field, self.meta)
            }
        }
    };
}

page_envelope!(
    /// One page of `/incremental/organizations.json`.
    OrganizationTimePage,
    organizations,
    Organization,
    TimeExportMeta
);
page_envelope!(
    /// One page of `/incremental/ticket_events.json`.
    TicketEventTimePage,
    ticket_events,
    TicketEvent,
    TimeExportMeta
);
page_envelope!(
    /// One page of the time-based `/incremental/tickets.json`.
    TicketTimePage,
    tickets,
    Ticket,
    TimeExportMeta
);
page_envelope!(
    /// One page of the time-based `/incremental/users.json`.
    UserTimePage,
    users,
    User,
    TimeExportMeta
);
page_envelope!(
    /// One page of `/incremental/ticket_metric_events.json`.
    TicketMetricEventTimePage,
    ticket_metric_events,
    TicketMetricEvent,
    TimeExportMeta
);

/// Paging facts of a list endpoint, in either the offset or the cursor form.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ListMeta {
    /// Offset form: URL of the next page, null on the last.
    #[serde(default)]
    pub next_page: Option<String>,
    /// Offset form: total number of records.
    #[serde(default)]
    pub count: Option<u64>,
    /// Cursor form: `has_more` and `after_cursor`.
    #[serde(default)]
    pub meta: Option<CursorMeta>,
    /// Cursor form: `next` URL.
    #[serde(default)]
    pub links: Option<CursorLinks>,
}

/// The `meta` object of cursor pagination.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct CursorMeta {
    /// Whether another page follows.
    #[serde(default)]
    pub has_more: bool,
    /// Cursor of the next page.
    #[serde(default)]
    pub after_cursor: Option<String>,
}

/// The `links` object of cursor pagination.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct CursorLinks {
    /// URL of the next page.
    #[serde(default)]
    pub next: Option<String>,
}

/// Where the next page of a list is, as the response told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextLink {
    /// A URL to fetch next (offset `next_page` or cursor `links.next`).
    Url(String),
    /// Cursor form without a `links.next`: send `page[after]` with this cursor.
    AfterCursor(String),
}

impl ListMeta {
    /// The next page, or none when this was the last.
    pub fn next(&self) -> Option<NextLink> {
        if let Some(meta) = &self.meta {
            if !meta.has_more {
                return None;
            }
            let link = self.links.as_ref().and_then(|links| links.next.clone());
            return link
                .filter(|url| !url.is_empty())
                .map(NextLink::Url)
                .or_else(|| meta.after_cursor.clone().map(NextLink::AfterCursor));
        }
        self.next_page
            .clone()
            .filter(|url| !url.is_empty())
            .map(NextLink::Url)
    }
}

page_envelope!(
    /// One page of `/groups.json`.
    GroupListPage,
    groups,
    Group,
    ListMeta
);
page_envelope!(
    /// One page of `/satisfaction_ratings.json`.
    SatisfactionRatingListPage,
    satisfaction_ratings,
    SatisfactionRating,
    ListMeta
);
page_envelope!(
    /// One page of `/organizations.json`.
    OrganizationListPage,
    organizations,
    Organization,
    ListMeta
);
page_envelope!(
    /// One page of `/ticket_metrics.json`.
    TicketMetricListPage,
    ticket_metrics,
    TicketMetricSet,
    ListMeta
);

/// One page of `/tickets/{id}/audits.json`, with side-loaded users when asked.
#[derive(Debug, Clone, Deserialize)]
pub struct TicketAuditListPage {
    /// The audits.
    #[serde(deserialize_with = "records")]
    pub audits: Vec<TicketAudit>,
    /// Side-loaded users (`include=users`).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub users: Vec<User>,
    /// Paging facts.
    #[serde(flatten)]
    pub meta: ListMeta,
}

/// `/users/me.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct CurrentUserEnvelope {
    /// The user the credentials belong to.
    pub user: CurrentUser,
}

/// `/satisfaction_ratings/{id}.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct SatisfactionRatingEnvelope {
    /// The rating (an object in the real API, an array in a doc example).
    pub satisfaction_rating: OneOrMany<SatisfactionRating>,
}

/// `/ticket_metrics/{id}.json` and `/tickets/{id}/metrics.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct TicketMetricEnvelope {
    /// The metric set (an object in the real API, an array in a doc example).
    pub ticket_metric: OneOrMany<TicketMetricSet>,
}

/// A page's records, decoded one at a time with a [`crate::background::step_aside`] point between two:
/// decoding a 1,000-record page is milliseconds of work on a sync thread.
struct SteppingVec<T>(Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for SteppingVec<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Records<T>(std::marker::PhantomData<T>);

        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Records<T> {
            type Value = SteppingVec<T>;

            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter.write_str("an array of records")
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut records = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1_000));
                while let Some(record) = seq.next_element()? {
                    records.push(record);
                    crate::background::step_aside();
                }
                Ok(SteppingVec(records))
            }
        }

        deserializer.deserialize_seq(Records(std::marker::PhantomData))
    }
}

fn records<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(SteppingVec::deserialize(deserializer)?.0)
}

fn null_as_empty<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<SteppingVec<T>>::deserialize(deserializer)?
        .map(|records| records.0)
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(json: &str) -> Option<NextLink> {
        serde_json::from_str::<ListMeta>(json)
            .ok()
            .and_then(|m| m.next())
    }

    #[test]
    fn next_link_forms() {
        assert_eq!(meta(r#"{"next_page": null}"#), None);
        assert_eq!(
            meta(r#"{"next_page": "u"}"#),
            Some(NextLink::Url("u".into()))
        );
        assert_eq!(
            meta(r#"{"meta": {"has_more": true, "after_cursor": "c"}, "links": {"next": "n"}}"#),
            Some(NextLink::Url("n".into()))
        );
        assert_eq!(
            meta(r#"{"meta": {"has_more": true, "after_cursor": "c"}, "links": {"next": null}}"#),
            Some(NextLink::AfterCursor("c".into()))
        );
        assert_eq!(
            meta(r#"{"meta": {"has_more": false}, "links": {"next": "n"}}"#),
            None
        );
    }
}
