//! The simulator's control API over HTTP for end-to-end tests: rating lifecycles (offer, score,
//! re-score) driven the way an operator or a script would drive them.
#![allow(dead_code)]

use reqwest::StatusCode;
use serde_json::{json, Value};
use zdsync::simulator::SimulatorHandle;

/// A client of one simulator's `/_sim/` routes.
#[derive(Debug, Clone)]
pub(crate) struct SimControlClient {
    base: String,
    http: reqwest::Client,
}

impl SimControlClient {
    /// A client of `sim`'s control API.
    pub(crate) fn new(sim: &SimulatorHandle) -> Self {
        Self::at(sim.base_url())
    }

    /// A client of the simulator at `base_url`.
    pub(crate) fn at(base_url: &str) -> Self {
        Self {
            base: base_url.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
        }
    }

    /// Offers a satisfaction survey on `ticket_id` (a rating with score `offered`) created at
    /// `at` (Unix seconds; None: the simulator's now); returns the rating id.
    pub(crate) async fn offer_rating(&self, ticket_id: u64, at: Option<i64>) -> u64 {
        let mut body = json!({ "score": "offered" });
        if let Some(at) = at {
            body["at"] = at.into();
        }
        let (status, answer) = self
            .send(
                self.http
                    .post(format!(
                        "{}/_sim/tickets/{ticket_id}/satisfaction_rating",
                        self.base
                    ))
                    .json(&body),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "offer a rating: {answer}");
        answer["satisfaction_rating"]["id"]
            .as_u64()
            .unwrap_or_else(|| panic!("a rating id in {answer}"))
    }

    /// Scores or re-scores rating `rating_id` (`score` is `good` or `bad`) with `comment` at
    /// `at` (Unix seconds; None: the simulator's now); returns the rating as the API shows it.
    pub(crate) async fn score_rating(
        &self,
        rating_id: u64,
        score: &str,
        comment: Option<&str>,
        at: Option<i64>,
    ) -> Value {
        let (status, answer) = self.try_score_rating(rating_id, score, comment, at).await;
        assert_eq!(status, StatusCode::OK, "score rating {rating_id}: {answer}");
        answer["satisfaction_rating"].clone()
    }

    /// Like [`SimControlClient::score_rating`], returning the status and body whatever they
    /// are (for tests of refused scores).
    pub(crate) async fn try_score_rating(
        &self,
        rating_id: u64,
        score: &str,
        comment: Option<&str>,
        at: Option<i64>,
    ) -> (StatusCode, Value) {
        let mut body = json!({ "score": score, "comment": comment });
        if let Some(at) = at {
            body["at"] = at.into();
        }
        self.send(
            self.http
                .put(format!(
                    "{}/_sim/satisfaction_ratings/{rating_id}",
                    self.base
                ))
                .json(&body),
        )
        .await
    }

    /// The rating as the control API shows it (`None` when the simulator has no such rating).
    pub(crate) async fn rating(&self, rating_id: u64) -> Option<Value> {
        let (status, answer) = self
            .send(self.http.get(format!(
                "{}/_sim/satisfaction_ratings/{rating_id}",
                self.base
            )))
            .await;
        (status == StatusCode::OK).then(|| answer["satisfaction_rating"].clone())
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let response = request.send().await.expect("reach the simulator");
        let status = response.status();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, body)
    }
}
