//! What the UI tests share: reading the UI's answers back into totals.

#![allow(dead_code, clippy::unwrap_used)] // each test binary uses a part; a failed unwrap fails the test

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rivulet_contracts::summary::{MonthKey, Totals};
use rivulet_testkit::model::Record;
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

/// Reads a UI's totals every 100 ms until stopped; returns what broke the invariant.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<(usize, Vec<String>)>,
}

impl Sampler {
    pub fn start(ui: &Process, ceiling: Truth) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let url = ui.url("/api/v1/summary");
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let mut last: BTreeMap<MonthKey, (i64, i64)> = BTreeMap::new();
            let (mut samples, mut broken) = (0, Vec::new());
            while !flag.load(Ordering::Relaxed) {
                if let Ok(response) = reqwest::get(&url).await
                    && let Ok(body) = response.json::<serde_json::Value>().await
                {
                    samples += 1;
                    for (key, t) in totals_of(&body) {
                        let now = (t.manufactured_qty, t.records);
                        let before = last.insert(key.clone(), now).unwrap_or((0, 0));
                        let max = ceiling.get(&key).map(|c| (c.manufactured_qty, c.records));
                        if now.0 < before.0 || now.1 < before.1 {
                            broken.push(format!("{key:?} went down: {before:?} -> {now:?}"));
                        }
                        if max.is_none_or(|m| now.0 > m.0 || now.1 > m.1) {
                            broken.push(format!("{key:?} above the truth: {now:?} > {max:?}"));
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            (samples, broken)
        });
        Sampler { stop, task }
    }

    /// Stops; fails on any break of the invariant. Returns the number of samples.
    pub async fn finish(self, what: &str) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        let (samples, broken) = self.task.await.unwrap();
        assert!(samples >= 10, "{what}: only {samples} samples");
        assert!(broken.is_empty(), "{what}: {broken:#?}");
        samples
    }
}

/// The index where the hour of `records[at]` starts (a cut between producers on an hour).
pub fn hour_start(records: &[Record], at: usize) -> usize {
    let hour = |r: &Record| (r.month, r.day, r.hour);
    records
        .iter()
        .position(|r| hour(r) == hour(&records[at]))
        .unwrap()
}

/// Two months of 3 SKUs cut in three on hour boundaries: v1 records before `b`, v3 after.
pub struct Phases {
    /// The records, in time order.
    pub records: Vec<Record>,
    /// Where the second third starts.
    pub a: usize,
    /// Where the third starts (the first v3 record).
    pub b: usize,
    /// The exact totals of all of them.
    pub truth: Truth,
}

impl Phases {
    /// The phases of the sweep of `seed`.
    pub fn new(seed: u64) -> Phases {
        let records: Vec<Record> = rivulet_testkit::model::Model::new(seed, 3)
            .sweep()
            .take_while(|r| r.month <= 2)
            .collect();
        let n = records.len();
        let (a, b) = (hour_start(&records, n / 3), hour_start(&records, 2 * n / 3));
        let truth =
            rivulet_testkit::widgets::expected(&records, |r| Phases::version(&records[b], r));
        Phases {
            records,
            a,
            b,
            truth,
        }
    }

    /// The version a record is written in: v3 from the hour of `first_v3` on.
    fn version(first_v3: &Record, r: &Record) -> rivulet_contracts::Version {
        use rivulet_contracts::Version;
        if (r.month, r.day, r.hour) < (first_v3.month, first_v3.day, first_v3.hour) {
            Version::V1
        } else {
            Version::V3
        }
    }
}

/// 12345 as the dashboard writes it: 12,345.
pub fn group(n: i64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
