//! Satisfaction ratings have a lifecycle in the simulator (offered, scored, re-scored), shown as
//! Zendesk shows it in every endpoint zdsync reads: the ticket export (the ticket is updated and
//! carries its current rating), the ticket events export (a satisfaction rating child event) and
//! `/satisfaction_ratings` (new score and `updated_at`, still listed by `created_at`).
mod common;

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use common::sim::SimControlClient;
use reqwest::StatusCode;
use serde_json::{json, Value};
use zdsync::clock::ManualClock;
use zdsync::simulator::{
    NewRating, NewTicket, RatingScore, Score, SimulatorConfig, SimulatorHandle, Status,
};
use zdsync::zendesk::decode::decode_json;
use zdsync::zendesk::envelope::{TicketCursorPage, TicketEventTimePage};
use zdsync::zendesk::payload::{SatisfactionScore, TicketSatisfaction};

const NOW: i64 = 1_780_000_000;

async fn start(clock: &ManualClock) -> SimulatorHandle {
    let config = SimulatorConfig {
        seed: 5,
        tickets: 30,
        organizations: 5,
        users: 40,
        clock: Arc::new(clock.clone()),
        ..SimulatorConfig::default()
    };
    common::inproc::simulator(config).await
}

async fn get(sim: &SimulatorHandle, path_and_query: &str) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .get(format!("{}{path_and_query}", sim.base_url()))
        .basic_auth("admin@example.com/token", Some("simulator-token"))
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

async fn get_ok(sim: &SimulatorHandle, path_and_query: &str) -> Value {
    let (status, body) = get(sim, path_and_query).await;
    assert_eq!(status, StatusCode::OK, "{path_and_query}: {body}");
    body
}

/// Pages the cursor ticket export from `first` to its end; returns the tickets and the cursor to
/// resume from.
async fn export_tickets(sim: &SimulatorHandle, first: &str) -> (Vec<Value>, String) {
    let mut tickets = Vec::new();
    let mut page = get_ok(sim, first).await;
    loop {
        let body = serde_json::to_vec(&page).unwrap();
        decode_json::<TicketCursorPage>("tickets", &body).expect("zdsync decodes the page");
        tickets.extend(page["tickets"].as_array().unwrap().iter().cloned());
        let cursor = page["after_cursor"].as_str().unwrap().to_owned();
        if page["end_of_stream"] == json!(true) {
            return (tickets, cursor);
        }
        page = get_ok(
            sim,
            &format!("/api/v2/incremental/tickets/cursor.json?cursor={cursor}"),
        )
        .await;
    }
}

/// The tickets the export returns after `cursor`, and the cursor after them.
async fn tickets_after(sim: &SimulatorHandle, cursor: &str) -> (Vec<Value>, String) {
    export_tickets(
        sim,
        &format!("/api/v2/incremental/tickets/cursor.json?cursor={cursor}"),
    )
    .await
}

fn find(tickets: &[Value], id: u64) -> Option<&Value> {
    tickets.iter().find(|t| t["id"] == json!(id))
}

/// The satisfaction rating child events of `ticket` in the ticket events export from `start`,
/// as `(timestamp, child event)`.
async fn satisfaction_events(sim: &SimulatorHandle, start: i64, ticket: u64) -> Vec<(i64, Value)> {
    let page = get_ok(
        sim,
        &format!("/api/v2/incremental/ticket_events.json?start_time={start}"),
    )
    .await;
    let body = serde_json::to_vec(&page).unwrap();
    decode_json::<TicketEventTimePage>("ticket_events", &body).expect("zdsync decodes the page");
    assert_eq!(
        page["end_of_stream"],
        json!(true),
        "one page is enough here"
    );
    let mut found = Vec::new();
    for event in page["ticket_events"].as_array().unwrap() {
        if event["ticket_id"] != json!(ticket) {
            continue;
        }
        for child in event["child_events"].as_array().unwrap() {
            if child["event_type"] == json!("SatisfactionRating") {
                found.push((event["timestamp"].as_i64().unwrap(), child.clone()));
            }
        }
    }
    found
}

/// Every rating the list returns for `query` (all pages).
async fn list_ratings(sim: &SimulatorHandle, query: &str) -> Vec<Value> {
    let mut ratings = Vec::new();
    let mut page = get_ok(sim, &format!("/api/v2/satisfaction_ratings.json?{query}")).await;
    loop {
        ratings.extend(
            page["satisfaction_ratings"]
                .as_array()
                .unwrap()
                .iter()
                .cloned(),
        );
        let Some(next) = page["links"]["next"].as_str() else {
            return ratings;
        };
        let path = next.strip_prefix(sim.base_url()).unwrap().to_owned();
        page = get_ok(sim, &path).await;
    }
}

fn iso(at: i64) -> Value {
    json!(Utc
        .timestamp_opt(at, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

fn now(clock: &ManualClock) -> i64 {
    zdsync::clock::Clock::now(clock).timestamp()
}

/// A solved ticket created now; returns its id.
fn solved_ticket(sim: &SimulatorHandle) -> u64 {
    sim.control()
        .create_ticket(NewTicket {
            subject: Some("Rate me".into()),
            status: Some(Status::Solved),
            assignee_id: Some(10_000_001),
            ..NewTicket::default()
        })
        .unwrap()
}

#[tokio::test]
async fn an_offered_rating_scored_and_rescored_later_shows_in_every_export() {
    let clock = ManualClock::new(Utc.timestamp_opt(NOW, 0).unwrap());
    let sim = start(&clock).await;
    let control = SimControlClient::new(&sim);
    clock.advance(chrono::Duration::seconds(120));
    let ticket = solved_ticket(&sim);

    // Offered: the ticket shows only the state of satisfaction, the list shows the rating.
    let offered_at = now(&clock);
    let rating = control.offer_rating(ticket, None).await;
    clock.advance(chrono::Duration::seconds(120));
    let (tickets, mut cursor) =
        export_tickets(&sim, "/api/v2/incremental/tickets/cursor.json?start_time=0").await;
    assert_eq!(
        find(&tickets, ticket).unwrap()["satisfaction_rating"],
        json!({"score": "offered"})
    );
    let listed = list_ratings(&sim, &format!("start_time={offered_at}")).await;
    let shown = listed.iter().find(|r| r["id"] == json!(rating)).unwrap();
    assert_eq!(shown["score"], json!("offered"));
    assert_eq!(shown["comment"], Value::Null);
    assert_eq!(shown["created_at"], iso(offered_at));
    assert!(satisfaction_events(&sim, offered_at, ticket)
        .await
        .is_empty());

    // Scored bad at T, re-scored good at T2, then bad again at T3 (the last at the default
    // time, the simulator's now).
    let steps = [
        ("bad", Some("Nobody answered"), Some(now(&clock) - 30)),
        ("good", None, Some(now(&clock) + 300)),
        ("bad", Some("It broke again"), None),
    ];
    for (step, (score, comment, at)) in steps.into_iter().enumerate() {
        clock.advance(chrono::Duration::seconds(600));
        let scored_at = at.unwrap_or_else(|| now(&clock));
        let answer = control.score_rating(rating, score, comment, at).await;
        assert_eq!(answer["score"], json!(score), "step {step}");
        assert_eq!(answer["updated_at"], iso(scored_at), "step {step}");
        // The time-based export only returns what is a minute old.
        clock.advance(chrono::Duration::seconds(120));

        // The ticket export from the cursor taken before the score returns the ticket again.
        let (again, next) = tickets_after(&sim, &cursor).await;
        let exported = find(&again, ticket).unwrap_or_else(|| panic!("step {step}: {again:?}"));
        assert_eq!(
            exported["satisfaction_rating"],
            json!({"id": rating, "score": score, "comment": comment}),
            "step {step}"
        );
        assert_eq!(exported["updated_at"], iso(scored_at), "step {step}");
        assert!(exported["generated_timestamp"].as_i64().unwrap() >= scored_at);
        let decoded: TicketCursorPage = decode_json(
            "tickets",
            &serde_json::to_vec(&json!({"tickets": [exported], "end_of_stream": true})).unwrap(),
        )
        .unwrap();
        assert_eq!(
            decoded.tickets[0].satisfaction_rating,
            Some(TicketSatisfaction {
                id: Some(rating),
                score: if score == "bad" {
                    SatisfactionScore::Bad
                } else {
                    SatisfactionScore::Good
                },
                comment: comment.map(str::to_owned),
            })
        );
        cursor = next;

        // The ticket events export from before the score holds the satisfaction event at T.
        let events = satisfaction_events(&sim, scored_at - 1, ticket).await;
        assert_eq!(events.len(), 1, "step {step}: {events:?}");
        let (timestamp, child) = &events[0];
        assert_eq!(*timestamp, scored_at, "step {step}");
        assert_eq!(child["score"], json!(score), "step {step}");
        assert_eq!(child["body"], json!(comment), "step {step}");
        assert_eq!(child["assignee_id"], json!(10_000_001), "step {step}");
        let all = satisfaction_events(&sim, offered_at, ticket).await;
        assert_eq!(all.len(), step + 1, "one event per score given");

        // The rating: new score, comment and updated_at; created_at unchanged.
        let expected = |shown: &Value| {
            assert_eq!(shown["score"], json!(score), "step {step}");
            assert_eq!(shown["comment"], json!(comment), "step {step}");
            assert_eq!(shown["updated_at"], iso(scored_at), "step {step}");
            assert_eq!(shown["created_at"], iso(offered_at), "step {step}");
        };
        let listed = list_ratings(&sim, &format!("start_time={offered_at}")).await;
        expected(listed.iter().find(|r| r["id"] == json!(rating)).unwrap());
        let show = get_ok(&sim, &format!("/api/v2/satisfaction_ratings/{rating}.json")).await;
        expected(&show["satisfaction_rating"]);
        expected(&control.rating(rating).await.unwrap());
        let filtered = list_ratings(&sim, &format!("start_time={offered_at}&score={score}")).await;
        assert!(filtered.iter().any(|r| r["id"] == json!(rating)));
        let offered = list_ratings(&sim, &format!("start_time={offered_at}&score=offered")).await;
        assert!(!offered.iter().any(|r| r["id"] == json!(rating)));

        // Still listed by creation time: a list read from after the offer never sees the score
        // (what loses late scores in a sync that reads only the list).
        let later = list_ratings(&sim, &format!("start_time={}", offered_at + 1)).await;
        assert!(
            !later.iter().any(|r| r["id"] == json!(rating)),
            "step {step}"
        );
    }
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn refused_scores_change_nothing() {
    let clock = ManualClock::new(Utc.timestamp_opt(NOW, 0).unwrap());
    let sim = start(&clock).await;
    let control = SimControlClient::new(&sim);
    let ticket = solved_ticket(&sim);
    let rating = control.offer_rating(ticket, Some(NOW + 10)).await;
    let before = control.rating(rating).await.unwrap();
    assert_eq!(before["created_at"], iso(NOW + 10));

    let (status, body) = control
        .try_score_rating(40_999_999, "bad", None, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"], json!("RecordNotFound"));
    assert!(control.rating(40_999_999).await.is_none());

    for word in ["meh", "offered", "BAD", ""] {
        let (status, body) = control.try_score_rating(rating, word, None, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{word}: {body}");
        let description = body["description"].as_str().unwrap();
        assert!(
            description.contains("\"good\" or \"bad\""),
            "{word}: {description}"
        );
    }
    let (status, body) = control
        .try_score_rating(rating, "bad", None, Some(NOW + 9))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["details"]["at"].is_array(), "{body}");
    assert_eq!(control.rating(rating).await.unwrap(), before);

    // A later score is accepted, and then nothing may go back before it.
    control
        .score_rating(rating, "good", None, Some(NOW + 20))
        .await;
    let (status, _) = control
        .try_score_rating(rating, "bad", None, Some(NOW + 19))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    let (status, body) = get(&sim, "/api/v2/satisfaction_ratings/40999999.json").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_rating_created_scored_is_a_shortcut_without_an_event_until_rescored() {
    let clock = ManualClock::new(Utc.timestamp_opt(NOW, 0).unwrap());
    let sim = start(&clock).await;
    let ticket = solved_ticket(&sim);
    let control = sim.control();
    let rating = control
        .add_rating(
            ticket,
            NewRating {
                score: Score::Bad,
                comment: Some("slow".into()),
            },
        )
        .unwrap();
    assert_eq!(
        control.ticket_json(ticket).unwrap()["satisfaction_rating"],
        json!({"id": rating, "score": "bad", "comment": "slow"})
    );

    // In process, the same lifecycle as over HTTP: re-score good at a given time.
    let at = NOW + 60;
    control
        .score_rating(
            rating,
            RatingScore {
                score: Score::Good,
                comment: None,
                at: Some(at),
            },
        )
        .unwrap();
    clock.advance(chrono::Duration::seconds(180));
    let events = satisfaction_events(&sim, NOW, ticket).await;
    assert_eq!(events.len(), 1, "only the re-score is an event: {events:?}");
    assert_eq!(events[0].0, at);
    assert_eq!(events[0].1["score"], json!("good"));
    assert_eq!(events[0].1["body"], Value::Null);
    let shown = control.rating_json(rating).unwrap();
    assert_eq!(
        (&shown["score"], &shown["comment"], &shown["updated_at"]),
        (&json!("good"), &Value::Null, &iso(at))
    );
    assert_eq!(shown["created_at"], iso(NOW));
    assert!(control
        .score_rating(
            rating,
            RatingScore {
                score: Score::Offered,
                comment: None,
                at: None,
            },
        )
        .is_err());
    sim.shutdown().await.unwrap();
}
