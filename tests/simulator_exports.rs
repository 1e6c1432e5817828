//! The simulator's Zendesk endpoints over real HTTP: paging, cursors, side-loads, the
//! 60-second rule, time-based exports and the control API's effect on them.
mod common;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use common::http::json_of;
use reqwest::StatusCode;
use serde_json::{json, Value};
use zdsync::clock::ManualClock;
use zdsync::simulator::{
    self, Endpoint, NewTicket, OrganizationInput, Priority, SimulatorConfig, SimulatorHandle,
    Status, TicketUpdate,
};

const NOW: i64 = 1_780_000_000;

fn clock() -> ManualClock {
    ManualClock::new(Utc.timestamp_opt(NOW, 0).unwrap())
}

async fn start(tickets: u32, clock: &ManualClock) -> SimulatorHandle {
    let config = SimulatorConfig {
        seed: 11,
        tickets,
        organizations: 40,
        users: 300,
        clock: Arc::new(clock.clone()),
        ..SimulatorConfig::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    simulator::start(config, listener).await.unwrap()
}

async fn get(sim: &SimulatorHandle, path_and_query: &str) -> (StatusCode, Value) {
    let url = if path_and_query.starts_with("http") {
        path_and_query.to_string()
    } else {
        format!("{}{}", sim.base_url(), path_and_query)
    };
    let response = reqwest::Client::new()
        .get(url)
        .basic_auth("admin@example.com/token", Some("simulator-token"))
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

/// Pages the cursor ticket export from `first` to the end; returns (tickets, last page).
async fn export_all(sim: &SimulatorHandle, first: &str) -> (Vec<Value>, Value) {
    let mut tickets = Vec::new();
    let (status, mut page) = get(sim, first).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    loop {
        tickets.extend(page["tickets"].as_array().unwrap().iter().cloned());
        if page["end_of_stream"] == json!(true) {
            return (tickets, page);
        }
        let cursor = page["after_cursor"].as_str().unwrap().to_string();
        let (status, next) = get(
            sim,
            &format!("/api/v2/incremental/tickets/cursor.json?cursor={cursor}"),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{next}");
        page = next;
    }
}

#[tokio::test]
async fn full_cursor_export_returns_every_ticket_once_in_ceil_n_over_1000_requests() {
    let clock = clock();
    let sim = start(2_500, &clock).await;
    let (tickets, last) =
        export_all(&sim, "/api/v2/incremental/tickets/cursor.json?start_time=0").await;
    let ids: Vec<u64> = tickets.iter().map(|t| t["id"].as_u64().unwrap()).collect();
    let unique: BTreeSet<u64> = ids.iter().copied().collect();
    assert_eq!(ids.len(), 2_500);
    assert_eq!(unique, (1..=2_500).collect());
    assert_eq!(sim.control().request_count(Endpoint::IncrementalTickets), 3);
    assert_eq!(last["end_of_stream"], json!(true));
    assert!(last["after_cursor"].as_str().is_some_and(|c| !c.is_empty()));
    assert!(last["after_url"].as_str().unwrap().contains("cursor="));
    assert_eq!(last["before_cursor"], Value::Null);
    assert_eq!(last["before_url"], Value::Null);
    // Export order is (generated_timestamp, id).
    let keys: Vec<(i64, u64)> = tickets
        .iter()
        .map(|t| {
            (
                t["generated_timestamp"].as_i64().unwrap(),
                t["id"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(keys.windows(2).all(|w| w[0] < w[1]));
    // Statuses and priorities spread like real data, deleted ones included.
    let statuses: HashSet<&str> = tickets
        .iter()
        .map(|t| t["status"].as_str().unwrap())
        .collect();
    for status in [
        "new", "open", "pending", "hold", "solved", "closed", "deleted",
    ] {
        assert!(statuses.contains(status), "no {status} ticket");
    }
    assert!(tickets.iter().any(|t| t["priority"].is_null()));
    assert!(tickets
        .iter()
        .any(|t| t["satisfaction_rating"]["score"] == json!("bad")));
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_exact_multiple_of_the_page_size_needs_no_extra_request() {
    let clock = clock();
    let sim = start(2_000, &clock).await;
    let (tickets, _) =
        export_all(&sim, "/api/v2/incremental/tickets/cursor.json?start_time=0").await;
    assert_eq!(tickets.len(), 2_000);
    assert_eq!(sim.control().request_count(Endpoint::IncrementalTickets), 2);
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn per_page_is_honoured_and_capped_at_1000() {
    let clock = clock();
    let sim = start(1_200, &clock).await;
    let (_, page) = get(
        &sim,
        "/api/v2/incremental/tickets/cursor.json?start_time=0&per_page=7",
    )
    .await;
    assert_eq!(page["tickets"].as_array().unwrap().len(), 7);
    assert_eq!(page["end_of_stream"], json!(false));
    assert!(page["after_url"].as_str().unwrap().ends_with("&per_page=7"));
    let (_, page) = get(
        &sim,
        "/api/v2/incremental/tickets/cursor.json?start_time=0&per_page=5000",
    )
    .await;
    assert_eq!(page["tickets"].as_array().unwrap().len(), 1_000);
    let (status, _) = get(
        &sim,
        "/api/v2/incremental/tickets/cursor.json?start_time=0&per_page=abc",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn resuming_from_the_final_cursor_returns_only_what_changed() {
    let clock = clock();
    let sim = start(1_500, &clock).await;
    let (_, last) = export_all(&sim, "/api/v2/incremental/tickets/cursor.json?start_time=0").await;
    let cursor = last["after_cursor"].as_str().unwrap().to_string();

    // Nothing changed: an empty last page that keeps the cursor.
    let (_, empty) = get(
        &sim,
        &format!("/api/v2/incremental/tickets/cursor.json?cursor={cursor}"),
    )
    .await;
    assert_eq!(empty["tickets"], json!([]));
    assert_eq!(empty["end_of_stream"], json!(true));
    assert_eq!(empty["after_cursor"], json!(cursor));

    clock.advance(chrono::Duration::seconds(300));
    let target = (1..=1_500)
        .find(|id| {
            let t = sim.control().ticket_json(*id).unwrap();
            t["status"] == json!("open") && t["priority"] != json!("urgent")
        })
        .unwrap();
    sim.control()
        .update_ticket(
            target,
            TicketUpdate {
                priority: Some(Some(Priority::Urgent)),
                ..TicketUpdate::default()
            },
        )
        .unwrap();
    let (_, page) = get(
        &sim,
        &format!("/api/v2/incremental/tickets/cursor.json?cursor={cursor}"),
    )
    .await;
    let tickets = page["tickets"].as_array().unwrap();
    assert_eq!(tickets.len(), 1, "{page}");
    assert_eq!(tickets[0]["id"], json!(target));
    assert_eq!(tickets[0]["priority"], json!("urgent"));
    assert_eq!(tickets[0]["generated_timestamp"], json!(NOW + 300));
    assert_eq!(
        tickets[0]["updated_at"],
        json!(Utc
            .timestamp_opt(NOW + 300, 0)
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string())
    );
    assert_eq!(page["end_of_stream"], json!(true));
    assert_ne!(page["after_cursor"], json!(cursor));
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_change_in_the_same_second_as_the_cursor_is_not_lost() {
    let clock = clock();
    let sim = start(50, &clock).await;
    clock.advance(chrono::Duration::seconds(600));
    let control = sim.control();
    let first = control.create_ticket(NewTicket::default()).unwrap();
    let second = control.create_ticket(NewTicket::default()).unwrap();
    let (_, last) = export_all(&sim, "/api/v2/incremental/tickets/cursor.json?start_time=0").await;
    let cursor = last["after_cursor"].as_str().unwrap().to_string();
    // Same clock second, and a lower id than the cursor's ticket.
    control
        .update_ticket(
            first,
            TicketUpdate {
                status: Some(Status::Open),
                ..TicketUpdate::default()
            },
        )
        .unwrap();
    let (_, page) = get(
        &sim,
        &format!("/api/v2/incremental/tickets/cursor.json?cursor={cursor}"),
    )
    .await;
    let ids: Vec<u64> = page["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, vec![first]);
    assert!(second > first);
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn side_loads_hold_every_referenced_record() {
    let clock = clock();
    let sim = start(300, &clock).await;
    let (status, page) = get(
        &sim,
        "/api/v2/incremental/tickets/cursor.json?start_time=0&include=users,groups,organizations,metric_sets",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let ids = |key: &str| -> HashSet<u64> {
        page[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_u64().unwrap())
            .collect()
    };
    let (users, groups, organizations) = (ids("users"), ids("groups"), ids("organizations"));
    let tickets = page["tickets"].as_array().unwrap();
    for ticket in tickets {
        for key in ["requester_id", "submitter_id", "assignee_id"] {
            if let Some(id) = ticket[key].as_u64() {
                assert!(users.contains(&id), "{key} {id} not side-loaded");
            }
        }
        if let Some(id) = ticket["group_id"].as_u64() {
            assert!(groups.contains(&id));
        }
        if let Some(id) = ticket["organization_id"].as_u64() {
            assert!(organizations.contains(&id));
        }
    }
    let metric_sets = page["metric_sets"].as_array().unwrap();
    assert_eq!(metric_sets.len(), tickets.len());
    for (metric, ticket) in metric_sets.iter().zip(tickets) {
        assert_eq!(metric["ticket_id"], ticket["id"]);
        assert!(metric["reopens"].is_u64());
        if ticket["status"] == json!("solved") {
            assert!(metric["solved_at"].is_string());
        }
    }
    assert!(page["organizations"][0]["organization_fields"]
        .get("account_id")
        .is_some());
    assert!(page["organizations"][0]["domain_names"]
        .as_array()
        .is_some_and(|d| !d.is_empty()));
    // Without include, no side-loads.
    let (_, bare) = get(&sim, "/api/v2/incremental/tickets/cursor.json?start_time=0").await;
    assert!(bare.get("users").is_none() && bare.get("metric_sets").is_none());
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn start_time_must_be_a_minute_old() {
    let clock = clock();
    let sim = start(10, &clock).await;
    for path in [
        "/api/v2/incremental/tickets/cursor.json",
        "/api/v2/incremental/users/cursor.json",
        "/api/v2/incremental/organizations.json",
        "/api/v2/incremental/ticket_events.json",
    ] {
        let (status, body) = get(&sim, &format!("{path}?start_time={}", NOW - 30)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(body["error"], json!("InvalidValue"));
        assert!(body["description"]
            .as_str()
            .unwrap()
            .contains("Too recent start_time"));
        let (status, _) = get(&sim, &format!("{path}?start_time={}", NOW + 3600)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} future");
        let (status, _) = get(&sim, &format!("{path}?start_time={}", NOW - 60)).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        let (status, _) = get(&sim, path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} without start_time");
    }
    let (status, body) = get(
        &sim,
        "/api/v2/incremental/tickets/cursor.json?cursor=garbage",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], json!("InvalidCursor"));
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn ticket_events_page_by_time_and_match_the_tickets() {
    let clock = clock();
    let sim = start(800, &clock).await;
    let mut events = Vec::new();
    let mut url = "/api/v2/incremental/ticket_events.json?start_time=0&per_page=500".to_string();
    let mut previous_last: Option<i64> = None;
    loop {
        let (status, page) = get(&sim, &url).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let batch = page["ticket_events"].as_array().unwrap();
        assert_eq!(page["count"], json!(batch.len()));
        if let (Some(prev), Some(first)) = (previous_last, batch.first()) {
            assert!(
                first["timestamp"].as_i64().unwrap() > prev,
                "a second was split across pages"
            );
        }
        previous_last = batch.last().map(|e| e["timestamp"].as_i64().unwrap());
        events.extend(batch.iter().cloned());
        if page["end_of_stream"] == json!(true) {
            assert_eq!(page["end_time"], json!(previous_last.unwrap()));
            break;
        }
        assert_eq!(page["end_time"], json!(previous_last.unwrap() + 1));
        url = page["next_page"].as_str().unwrap().to_string();
    }
    let mut status_of: HashMap<u64, String> = HashMap::new();
    for event in &events {
        assert_eq!(event["event_type"], json!("Audit"));
        assert!(event["via"]["channel"].is_string() && event["updater_id"].is_u64());
        for child in event["child_events"].as_array().unwrap() {
            assert!(["Create", "Change"].contains(&child["event_type"].as_str().unwrap()));
            if child["field_name"] == json!("status") {
                status_of.insert(
                    event["ticket_id"].as_u64().unwrap(),
                    child["value"].as_str().unwrap().into(),
                );
            }
        }
    }
    for id in 1..=800_u64 {
        let ticket = sim.control().ticket_json(id).unwrap();
        if ticket["status"] != json!("deleted") {
            assert_eq!(json!(status_of[&id]), ticket["status"], "ticket {id}");
        }
    }

    // A status change is recorded with its time and previous value, once a minute old.
    clock.advance(chrono::Duration::seconds(200));
    let target = (1..=800)
        .find(|id| sim.control().ticket_json(*id).unwrap()["status"] == json!("open"))
        .unwrap();
    sim.control()
        .update_ticket(
            target,
            TicketUpdate {
                status: Some(Status::Solved),
                ..TicketUpdate::default()
            },
        )
        .unwrap();
    let since = NOW + 100;
    let (_, page) = get(
        &sim,
        &format!("/api/v2/incremental/ticket_events.json?start_time={since}"),
    )
    .await;
    assert_eq!(
        page["ticket_events"],
        json!([]),
        "the latest minute is held back"
    );
    clock.advance(chrono::Duration::seconds(61));
    let (_, page) = get(
        &sim,
        &format!("/api/v2/incremental/ticket_events.json?start_time={since}"),
    )
    .await;
    let batch = page["ticket_events"].as_array().unwrap();
    assert_eq!(batch.len(), 1, "{page}");
    assert_eq!(batch[0]["ticket_id"], json!(target));
    assert_eq!(batch[0]["timestamp"], json!(NOW + 200));
    let child = &batch[0]["child_events"][0];
    assert_eq!(
        (
            child["field_name"].as_str(),
            child["value"].as_str(),
            child["previous_value"].as_str()
        ),
        (Some("status"), Some("solved"), Some("open"))
    );
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn organizations_sharing_a_second_are_never_split() {
    let clock = clock();
    let sim = start(10, &clock).await;
    clock.advance(chrono::Duration::seconds(1000));
    for n in 0..5 {
        sim.control()
            .create_organization(OrganizationInput {
                name: Some(format!("Same Second {n}")),
                domain_names: Some(vec![format!("same{n}.example")]),
                ..OrganizationInput::default()
            })
            .unwrap();
    }
    clock.advance(chrono::Duration::seconds(61));
    let (_, page) = get(
        &sim,
        &format!(
            "/api/v2/incremental/organizations.json?start_time={}&per_page=2",
            NOW + 900
        ),
    )
    .await;
    assert_eq!(page["organizations"].as_array().unwrap().len(), 5, "{page}");
    assert_eq!(page["end_of_stream"], json!(true));
    assert_eq!(page["end_time"], json!(NOW + 1000));

    // Paging everything with a tiny page size collects every organization exactly once.
    let mut seen = BTreeSet::new();
    let mut url = "/api/v2/incremental/organizations.json?start_time=0&per_page=3".to_string();
    loop {
        let (_, page) = get(&sim, &url).await;
        for org in page["organizations"].as_array().unwrap() {
            assert!(seen.insert(org["id"].as_u64().unwrap()), "duplicate {org}");
        }
        if page["end_of_stream"] == json!(true) {
            break;
        }
        url = page["next_page"].as_str().unwrap().to_string();
    }
    assert_eq!(seen.len(), 45);
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn users_groups_ratings_and_me() {
    let clock = clock();
    let sim = start(1_000, &clock).await;
    let stats = sim.control().stats();

    let (_, me) = get(&sim, "/api/v2/users/me.json").await;
    assert_eq!(me["user"]["email"], json!("admin@example.com"));
    assert_eq!(me["user"]["role"], json!("admin"));

    let mut users = BTreeSet::new();
    let (_, mut page) = get(
        &sim,
        "/api/v2/incremental/users/cursor.json?start_time=0&per_page=100",
    )
    .await;
    loop {
        for user in page["users"].as_array().unwrap() {
            assert!(user["email"].as_str().unwrap().contains('@'));
            assert!(users.insert(user["id"].as_u64().unwrap()));
        }
        if page["end_of_stream"] == json!(true) {
            break;
        }
        let next = page["after_url"].as_str().unwrap().to_string();
        page = get(&sim, &next).await.1;
    }
    assert_eq!(users.len(), stats.users);

    let (_, groups) = get(&sim, "/api/v2/groups.json").await;
    assert_eq!(groups["count"], json!(5));
    assert_eq!(groups["groups"].as_array().unwrap().len(), 5);

    let mut ratings = Vec::new();
    let mut url = "/api/v2/satisfaction_ratings.json".to_string();
    loop {
        let (status, page) = get(&sim, &url).await;
        assert_eq!(status, StatusCode::OK);
        ratings.extend(
            page["satisfaction_ratings"]
                .as_array()
                .unwrap()
                .iter()
                .cloned(),
        );
        if page["meta"]["has_more"] == json!(false) {
            assert_eq!(page["links"]["next"], Value::Null);
            break;
        }
        url = page["links"]["next"].as_str().unwrap().to_string();
    }
    assert_eq!(ratings.len(), stats.satisfaction_ratings);
    let ids: HashSet<u64> = ratings.iter().map(|r| r["id"].as_u64().unwrap()).collect();
    assert_eq!(ids.len(), ratings.len());
    let scores: HashSet<&str> = ratings
        .iter()
        .map(|r| r["score"].as_str().unwrap())
        .collect();
    assert_eq!(scores, HashSet::from(["offered", "good", "bad"]));

    let since = NOW - 90 * 86_400;
    let until = NOW - 30 * 86_400;
    let (_, page) = get(&sim, &format!("/api/v2/satisfaction_ratings.json?start_time={since}&end_time={until}&page[size]=100&score=bad")).await;
    for rating in page["satisfaction_ratings"].as_array().unwrap() {
        let at = chrono::DateTime::parse_from_rfc3339(rating["created_at"].as_str().unwrap())
            .unwrap()
            .timestamp();
        assert!(at >= since && at < until);
        assert_eq!(rating["score"], json!("bad"));
    }
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn control_api_over_http_mutates_what_the_exports_show() {
    let clock = clock();
    let sim = start(20, &clock).await;
    let http = reqwest::Client::new();
    let base = sim.base_url().to_string();
    clock.advance(chrono::Duration::seconds(120));

    let created: Value = json_of(http.post(format!("{base}/_sim/tickets")).json(
        &json!({"subject": "Printer on fire", "priority": "high", "requester_id": 10_000_010}),
    ))
    .await;
    let id = created["ticket"]["id"].as_u64().unwrap();
    assert_eq!(id, 21);
    assert_eq!(created["ticket"]["subject"], json!("Printer on fire"));

    let response = http
        .patch(format!("{base}/_sim/tickets/{id}"))
        .json(&json!({"status": "solved", "priority": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let ticket: Value = response.json().await.unwrap();
    assert_eq!(ticket["ticket"]["status"], json!("solved"));
    assert_eq!(ticket["ticket"]["priority"], Value::Null);

    let rating = http
        .post(format!("{base}/_sim/tickets/{id}/satisfaction_rating"))
        .json(&json!({"score": "bad", "comment": "slow"}))
        .send()
        .await
        .unwrap();
    assert_eq!(rating.status(), StatusCode::CREATED);
    let ticket: Value = json_of(http.get(format!("{base}/_sim/tickets/{id}"))).await;
    assert_eq!(ticket["satisfaction_rating"]["score"], json!("bad"));

    let reopened = http
        .patch(format!("{base}/_sim/tickets/{id}"))
        .json(&json!({"status": "open"}))
        .send()
        .await
        .unwrap();
    assert_eq!(reopened.status(), StatusCode::OK);
    let deleted = http
        .delete(format!("{base}/_sim/tickets/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let (_, page) = get(
        &sim,
        "/api/v2/incremental/tickets/cursor.json?start_time=0&include=metric_sets",
    )
    .await;
    let exported = page["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == json!(id))
        .unwrap();
    assert_eq!(exported["status"], json!("deleted"));
    let metric = page["metric_sets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["ticket_id"] == json!(id))
        .unwrap();
    assert_eq!(metric["reopens"], json!(1));

    let bad = http
        .patch(format!("{base}/_sim/tickets/{id}"))
        .json(&json!({"status": "open"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let missing = http
        .patch(format!("{base}/_sim/tickets/999999"))
        .json(&json!({"status": "open"}))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let unknown_field = http
        .post(format!("{base}/_sim/tickets"))
        .json(&json!({"colour": "red"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown_field.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let org: Value = http.post(format!("{base}/_sim/organizations"))
        .json(&json!({"name": "Initech", "domain_names": ["initech.example"], "external_id": "ext-9", "organization_fields": {"account_id": "acct-9999"}}))
        .send().await.unwrap().json().await.unwrap();
    let org_id = org["organization"]["id"].as_u64().unwrap();
    let org: Value = json_of(
        http.patch(format!("{base}/_sim/organizations/{org_id}"))
            .json(&json!({"organization_fields": {"account_id": "acct-0002"}})),
    )
    .await;
    assert_eq!(
        org["organization"]["organization_fields"]["account_id"],
        json!("acct-0002")
    );
    assert_eq!(org["organization"]["external_id"], json!("ext-9"));
    let duplicate = http
        .post(format!("{base}/_sim/organizations"))
        .json(&json!({"name": "Initech"}))
        .send()
        .await
        .unwrap();
    assert_eq!(duplicate.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let user: Value = http.post(format!("{base}/_sim/users"))
        .json(&json!({"name": "Ann Smith", "email": "ann@initech.example", "organization_id": org_id}))
        .send().await.unwrap().json().await.unwrap();
    let user_id = user["user"]["id"].as_u64().unwrap();
    let user: Value = json_of(
        http.patch(format!("{base}/_sim/users/{user_id}"))
            .json(&json!({"organization_id": null})),
    )
    .await;
    assert_eq!(user["user"]["organization_id"], Value::Null);

    let clock_now: Value = json_of(
        http.put(format!("{base}/_sim/clock"))
            .json(&json!({"offset_seconds": 3600})),
    )
    .await;
    assert_eq!(clock_now["now_unix"], json!(NOW + 120 + 3600));
    let stats: Value = json_of(http.get(format!("{base}/_sim/stats"))).await;
    assert_eq!(stats["tickets"], json!(21));
    assert_eq!(stats["organizations"], json!(41));
    sim.shutdown().await.unwrap();
}
