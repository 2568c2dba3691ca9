//! What the UI tests share: reading the UI's answers back into totals.

#![allow(dead_code, clippy::unwrap_used)] // each test binary uses a part; a failed unwrap fails the test

use std::time::{Duration, Instant};

use rivulet_backend::aggregate::{MonthKey, Totals};
use rivulet_testkit::widgets::{Process, Truth};
use serde_json::Value;

/// GET `path` as JSON with its status.
pub async fn get(ui: &Process, path: &str) -> (u16, Value) {
    let response = reqwest::get(ui.url(path)).await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn opt(v: Option<&Value>) -> Option<i64> {
    v.and_then(Value::as_i64)
}

/// The totals in a `/api/v1/summary` answer.
pub fn totals_of(body: &Value) -> Truth {
    let mut out = Truth::new();
    for month in body["data"].as_array().unwrap() {
        for sku in month["manufacturing"].as_array().unwrap() {
            let (t, c) = (&sku["totals"], &sku["coverage"]);
            out.insert(
                MonthKey {
                    year: month["year"].as_i64().unwrap() as i32,
                    month: month["month"].as_u64().unwrap() as u32,
                    sku: sku["sku"].as_str().unwrap().to_owned(),
                },
                Totals {
                    manufactured_qty: t["manufactured_qty"].as_i64().unwrap(),
                    defect_qty: opt(t.get("defect_qty")),
                    production_cost: opt(t.get("production_cost")),
                    records: c["records"].as_i64().unwrap(),
                    records_with_defects: opt(c.get("records_with_defects")).unwrap_or(0),
                    records_with_cost: opt(c.get("records_with_cost")).unwrap_or(0),
                },
            );
        }
    }
    out
}

/// What a UI of `version` shows of `truth`: the fields its schema lacks are unknown.
pub fn as_seen_by(truth: &Truth, version: &str) -> Truth {
    truth
        .iter()
        .map(|(k, t)| {
            let mut t = *t;
            if version == "v1" {
                (t.defect_qty, t.records_with_defects) = (None, 0);
            }
            if version != "v3" {
                (t.production_cost, t.records_with_cost) = (None, 0);
            }
            (k.clone(), t)
        })
        .collect()
}

/// Polls `/api/v1/summary` until it shows `want` or 60 s pass; returns the last answer.
pub async fn wait_for_ui(ui: &Process, want: &Truth) -> (Truth, Value) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, body) = get(ui, "/api/v1/summary").await;
        let got = totals_of(&body);
        if &got == want || Instant::now() > deadline {
            return (got, body);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
