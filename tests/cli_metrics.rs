//! `zdsync metrics`, `user-metrics` and `events` against `zdsync demo`: human and `--json` output, checked against
//! the same RPCs called through tonic.
mod common;

use common::demo_fixture::DemoFixture;
use common::with_token;
use zdsync::proto::v1 as pb;
use zdsync::proto::v1::account_directory_service_client::AccountDirectoryServiceClient;
use zdsync::proto::v1::metrics_service_client::MetricsServiceClient;

/// The value of a `label:   value` line of the human layout.
fn field<'a>(text: &'a str, label: &str) -> &'a str {
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{label}:")))
        .map_or_else(|| panic!("no `{label}:` line in:\n{text}"), str::trim)
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_user_metrics_and_events_print_text_and_json() {
    let demo = DemoFixture::start();
    let token = demo.token();
    let channel = demo.channel().await;
    let mut metrics = MetricsServiceClient::new(channel.clone());

    // --top N --by METRIC: the same order as ListAccountMetrics.
    let top = metrics
        .list_account_metrics(with_token(
            pb::ListAccountMetricsRequest {
                page_size: 5,
                sort_by: pb::MetricSortKey::OpenTickets as i32,
                descending: true,
                ..Default::default()
            },
            &token,
        ))
        .await
        .expect("ListAccountMetrics")
        .into_inner()
        .metrics;
    assert_eq!(top.len(), 5);
    let listed = demo.json_lines(&["metrics", "--top", "5", "--by", "open_tickets"]);
    let ids: Vec<&str> = listed
        .iter()
        .map(|m| m["account_id"].as_str().expect("account_id"))
        .collect();
    let expected: Vec<&str> = top.iter().map(|m| m.account_id.as_str()).collect();
    assert_eq!(ids, expected);
    let open: Vec<u64> = listed
        .iter()
        .map(|m| m["open_tickets"].as_u64().expect("open_tickets"))
        .collect();
    assert!(
        open.windows(2).all(|w| w[0] >= w[1]),
        "largest first: {open:?}"
    );
    let table = demo.ok(&["metrics", "--top", "5", "--by", "open_tickets"]);
    let mut rows = table.lines();
    assert!(
        rows.next().expect("header").starts_with("ACCOUNT"),
        "{table}"
    );
    let rows: Vec<&str> = rows.collect();
    assert_eq!(rows.len(), 5, "{table}");
    for (row, m) in rows.iter().zip(&top) {
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cells[0], m.account_id, "{row}");
        assert_eq!(cells[1], m.open_tickets.to_string(), "{row}");
        assert_eq!(cells[2], m.total_tickets.to_string(), "{row}");
    }
    let ascending = demo.json_lines(&[
        "metrics",
        "--top",
        "3",
        "--by",
        "total_tickets",
        "--ascending",
    ]);
    let totals: Vec<u64> = ascending
        .iter()
        .map(|m| m["total_tickets"].as_u64().expect("total"))
        .collect();
    assert!(totals.windows(2).all(|w| w[0] <= w[1]), "{totals:?}");

    // metrics ACCOUNT.
    let account = &top[0];
    let json = demo.json_lines(&["metrics", &account.account_id]);
    assert_eq!(json.len(), 1);
    let json = &json[0];
    assert_eq!(json["account_id"], account.account_id.as_str());
    assert_eq!(json["open_tickets"], account.open_tickets);
    assert_eq!(json["total_tickets"], account.total_tickets);
    assert_eq!(json["tickets_created"], account.tickets_created);
    assert_eq!(
        json["open_high_urgent_tickets"],
        account.open_high_urgent_tickets
    );
    assert_eq!(json["timeframe_days"], account.timeframe_days);
    assert_eq!(
        json["zendesk_organization_ids"]
            .as_array()
            .expect("ids")
            .len(),
        account.zendesk_organization_ids.len()
    );
    let text = demo.ok(&["metrics", &account.account_id]);
    assert_eq!(field(&text, "account"), account.account_id);
    assert_eq!(
        field(&text, "open tickets"),
        account.open_tickets.to_string()
    );
    assert_eq!(
        field(&text, "total tickets"),
        account.total_tickets.to_string()
    );
    assert_eq!(
        field(
            &text,
            &format!("tickets created ({}d)", account.timeframe_days)
        ),
        account.tickets_created.to_string()
    );
    let missing = demo.cli(&["metrics", "no-such-account"]);
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("NotFound")
            || String::from_utf8_lossy(&missing.stderr).contains("not found"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );

    // user-metrics EMAIL: a user of that account.
    let directory = AccountDirectoryServiceClient::new(channel.clone())
        .get_account(with_token(
            pb::GetAccountRequest {
                id: account.account_id.clone(),
            },
            &token,
        ))
        .await
        .expect("GetAccount")
        .into_inner();
    let email = directory
        .users
        .first()
        .map(|u| u.email.clone())
        .expect("the demo's accounts have users");
    let user = metrics
        .get_user_metrics(with_token(
            pb::GetUserMetricsRequest {
                email: email.clone(),
                account_id: String::new(),
            },
            &token,
        ))
        .await
        .expect("GetUserMetrics")
        .into_inner();
    let json = demo.json_lines(&["user-metrics", &email]);
    assert_eq!(json[0]["email"], user.email.as_str());
    assert_eq!(json[0]["account_id"], account.account_id.as_str());
    assert_eq!(json[0]["total_tickets"], user.total_tickets);
    assert_eq!(json[0]["zendesk_user_id"], user.zendesk_user_id);
    let text = demo.ok(&["user-metrics", &email]);
    assert_eq!(field(&text, "user"), user.email);
    assert_eq!(field(&text, "account"), account.account_id);
    assert_eq!(
        field(&text, "total tickets"),
        user.total_tickets.to_string()
    );

    // events: every account, one account, an owner's portfolio, a kind, a since; table, CSV and JSON.
    let list = |request: pb::ListTimelineEventsRequest| {
        let mut metrics = metrics.clone();
        let token = token.clone();
        async move {
            metrics
                .list_timeline_events(with_token(request, &token))
                .await
                .expect("ListTimelineEvents")
                .into_inner()
                .events
        }
    };
    let all = list(pb::ListTimelineEventsRequest {
        page_size: 1000,
        ..Default::default()
    })
    .await;
    assert!(!all.is_empty(), "the demo's first sync backfilled events");
    let json = demo.json_lines(&["events", "--limit", "0"]);
    assert_eq!(json.len(), all.len());
    assert_eq!(
        json[0]["event_id"],
        all[0].event_id.as_str(),
        "newest first"
    );
    assert!(json[0]["ticket"]["id"].as_i64().is_some());
    let json = demo.json_lines(&["events", "--limit", "7"]);
    assert_eq!(json.len(), 7.min(all.len()));

    let first = &all[0];
    let of_account = list(pb::ListTimelineEventsRequest {
        scope: Some(pb::list_timeline_events_request::Scope::AccountId(
            first.account_id.clone(),
        )),
        page_size: 1000,
        ..Default::default()
    })
    .await;
    let table = demo.ok(&["events", "--account", &first.account_id, "--limit", "0"]);
    let mut lines = table.lines();
    assert!(
        lines.next().expect("header").starts_with("OCCURRED_AT"),
        "{table}"
    );
    let lines: Vec<&str> = lines.collect();
    assert_eq!(lines.len(), of_account.len(), "{table}");
    assert!(
        lines.iter().all(|line| line.contains(&first.account_id)),
        "{table}"
    );
    let ticket_id = first.ticket.as_ref().expect("ticket").id;
    assert!(lines[0].contains(&format!("#{ticket_id}")), "{}", lines[0]);

    let csv = demo.ok(&[
        "events",
        "--account",
        &first.account_id,
        "--csv",
        "--limit",
        "0",
    ]);
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .expect("header")
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(header[0], "event_id");
    assert_eq!(header[1], "kind");
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    assert_eq!(records.len(), of_account.len());
    assert_eq!(&records[0][0], of_account[0].event_id.as_str());
    assert_eq!(&records[0][2], first.account_id.as_str());

    let kind = pb::TimelineEventKind::try_from(first.kind).expect("kind");
    let of_kind = list(pb::ListTimelineEventsRequest {
        kinds: vec![kind as i32],
        page_size: 1000,
        ..Default::default()
    })
    .await;
    let json = demo.json_lines(&["events", "--kind", kind.as_str_name(), "--limit", "0"]);
    assert_eq!(json.len(), of_kind.len());
    assert!(json.iter().all(|e| e["kind"] == kind.as_str_name()));

    let since = all[all.len() / 2]
        .occurred_at
        .as_ref()
        .and_then(zdsync::grpc::convert::timestamp_from_proto)
        .expect("occurred_at");
    let recent = list(pb::ListTimelineEventsRequest {
        since: Some(zdsync::grpc::convert::timestamp_to_proto(since)),
        page_size: 1000,
        ..Default::default()
    })
    .await;
    let since_text = since.to_rfc3339();
    let json = demo.json_lines(&["events", "--since", &since_text, "--limit", "0"]);
    assert_eq!(json.len(), recent.len());
    assert!(json.len() < all.len() || all.len() == 1);

    let owner = directory.owner.clone();
    let portfolio = list(pb::ListTimelineEventsRequest {
        scope: Some(pb::list_timeline_events_request::Scope::Owner(
            owner.clone(),
        )),
        page_size: 1000,
        ..Default::default()
    })
    .await;
    let json = demo.json_lines(&["events", "--owner", &owner, "--limit", "0"]);
    assert_eq!(json.len(), portfolio.len());

    let bad = demo.cli(&["events", "--kind", "urgent"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown event kind"));
}
