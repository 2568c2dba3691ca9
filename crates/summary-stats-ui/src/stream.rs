//! `GET /api/v1/summary/stream`: the summary pushed as Server-Sent Events.
//!
//! A client first gets `reset` and every month matching its filters (`year`, `sku`), then,
//! as soon as the feeds index a change, each month whose view changed (`month`, or `removed`
//! when its last key went away), and after every batch a `status` event (what
//! `/api/v1/status` answers) whose id is the [`Cursor`] of the `summary-stats` and
//! `base-costs` offsets the batch reflects. A client that reconnects with `Last-Event-ID` (a
//! browser's `EventSource` does it by itself) or `?last_event_id=` gets only what changed
//! after that point, from this replica or any other reading the same topics (a canary's other
//! leg); an id naming another summary topic (the backend's colour changed) or a malformed one
//! starts over with `reset`. Comments every `--stream-heartbeat-secs` keep an idle connection
//! open through proxies. Batches are at least `--stream-interval-ms` apart, so a burst of
//! records costs one batch; a slow client holds its own task back, never memory (the queue is
//! bounded); at most `--stream-limit` streams are open (503 beyond).

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::api::Api;
use crate::changes::Cursor;
use crate::index::Index;
use crate::query::{self, StreamQuery};

/// Events queued per stream before its task waits for the client.
const QUEUE: usize = 64;

/// Settings and accounting of the open streams.
#[derive(Debug)]
pub struct Streams {
    /// Most streams open at once.
    pub limit: usize,
    /// Least time between two batches of one stream.
    pub interval: Duration,
    /// Time between heartbeat comments.
    pub heartbeat: Duration,
    /// Ends every stream (shutdown).
    pub token: CancellationToken,
    /// Streams open (metric).
    pub open: Gauge,
    /// Events sent (metric).
    pub events: Counter,
    /// Streams refused at the limit (metric).
    pub refused: Counter,
    count: AtomicUsize,
}

impl Streams {
    /// Streams with these settings, ended by `token`.
    pub fn new(
        limit: usize,
        interval: Duration,
        heartbeat: Duration,
        token: CancellationToken,
    ) -> Self {
        Self {
            limit,
            interval,
            heartbeat,
            token,
            open: Gauge::default(),
            events: Counter::default(),
            refused: Counter::default(),
            count: AtomicUsize::new(0),
        }
    }

    fn admit(self: &Arc<Self>) -> Option<Admitted> {
        let before = self.count.fetch_add(1, Ordering::AcqRel);
        if before >= self.limit {
            self.count.fetch_sub(1, Ordering::AcqRel);
            self.refused.inc();
            return None;
        }
        self.open.inc();
        Some(Admitted(self.clone()))
    }
}

/// One admitted stream; leaving frees its place.
struct Admitted(Arc<Streams>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.count.fetch_sub(1, Ordering::AcqRel);
        self.0.open.dec();
    }
}

/// `GET /api/v1/summary/stream`.
pub(crate) async fn stream(
    State(api): State<Api>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = match query::stream(raw.as_deref()) {
        Ok(q) => q,
        Err(message) => return refuse(&api, StatusCode::BAD_REQUEST, message),
    };
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| q.last_event_id.clone());
    let Some(admitted) = api.streams.admit() else {
        let message = format!(
            "{} streams are open, the most this replica serves",
            api.streams.limit
        );
        let mut response = refuse(&api, StatusCode::SERVICE_UNAVAILABLE, message);
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        return response;
    };
    let (tx, rx) = mpsc::channel(QUEUE);
    let heartbeat = api.streams.heartbeat;
    tokio::spawn(push(api, q, resume, tx, admitted));
    let mut response = Sse::new(Queue(rx))
        .keep_alive(KeepAlive::new().interval(heartbeat))
        .into_response();
    // nginx (the ingress) buffers responses unless told not to.
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn refuse(api: &Api, status: StatusCode, message: String) -> Response {
    let body = serde_json::json!({ "error": message, "served_by": api.served_by() });
    (status, Json(body)).into_response()
}

/// The receiving end as the `Stream` `Sse` wants.
struct Queue(mpsc::Receiver<Event>);

impl futures_core::Stream for Queue {
    type Item = Result<Event, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(|e| e.map(Ok))
    }
}

/// What one stream has sent so far.
#[derive(Debug, Default)]
pub(crate) struct Sent {
    /// The summary topic, epoch and cursor of the last batch; `None` before the first.
    at: Option<(String, u64, Cursor)>,
    /// The last `status` event's data.
    status: String,
}

/// One event to send: its name, its data and, for the last of a batch, its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    pub(crate) event: &'static str,
    pub(crate) data: String,
    pub(crate) id: Option<String>,
}

/// The next batch for a stream with filters `q` that has sent `sent` (pure over the index).
pub(crate) fn batch(api: &Api, index: &Index, q: &StreamQuery, sent: &mut Sent) -> Vec<Frame> {
    let source = api.shared.source();
    let (epoch, cursor) = (index.epoch(), index.cursor().clone());
    let mut frames = Vec::new();
    let frame = |event, data: String| Frame {
        event,
        data,
        id: None,
    };
    let same_source = sent
        .at
        .as_ref()
        .is_some_and(|(topic, e, _)| *topic == source && *e == epoch);
    let months: Vec<(i32, u32)> = match &sent.at {
        Some((_, _, from)) if same_source => index.changed_since(from, q.year),
        _ => {
            frames.push(frame(
                "reset",
                serde_json::json!({"source": source, "year": q.year, "sku": q.sku}).to_string(),
            ));
            index
                .query(q.year, None, q.sku.as_deref())
                .iter()
                .map(|v| (v.year, v.month))
                .collect()
        }
    };
    for (year, month) in months {
        match index
            .query(Some(year), Some(month), q.sku.as_deref())
            .first()
        {
            Some(view) => frames.push(frame("month", render(&api.month_dto(view)))),
            None => frames.push(frame(
                "removed",
                serde_json::json!({"year": year, "month": month}).to_string(),
            )),
        }
    }
    let status = render(&api.status_dto(index));
    if !frames.is_empty() || status != sent.status {
        frames.push(Frame {
            event: "status",
            data: status.clone(),
            id: Some(cursor.id(&source)),
        });
        sent.status = status;
    }
    sent.at = Some((source, epoch, cursor));
    frames
}

/// A DTO as JSON (they hold strings and numbers only: rendering cannot fail).
fn render<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

/// The stream's task: batches until the client leaves or the service stops.
async fn push(
    api: Api,
    q: StreamQuery,
    resume: Option<String>,
    tx: mpsc::Sender<Event>,
    _admitted: Admitted,
) {
    let mut sent = Sent::default();
    if let Some((topic, cursor)) = resume.as_deref().and_then(Cursor::parse) {
        // Resuming: what changed after the client's point, if it read the topic served now.
        let epoch = api.shared.index().epoch();
        sent.at = Some((topic.to_owned(), epoch, cursor));
    }
    let (shared, streams) = (api.shared.clone(), api.streams.clone());
    loop {
        let changed = shared.changed();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let frames = batch(&api, &shared.index(), &q, &mut sent);
        for f in frames {
            let mut event = Event::default().event(f.event).data(f.data);
            if let Some(id) = f.id {
                event = event.id(id);
            }
            if tx.send(event).await.is_err() {
                return;
            }
            streams.events.inc();
        }
        tokio::select! {
            () = &mut changed => {}
            () = streams.token.cancelled() => return,
            () = tx.closed() => return,
        }
        tokio::select! {
            () = tokio::time::sleep(streams.interval) => {}
            () = streams.token.cancelled() => return,
            () = tx.closed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests
    use super::*;
    use crate::changes::At;
    use crate::state::Shared;
    use rivulet_contracts::Version;
    use rivulet_contracts::summary::{MonthKey, Totals};

    fn api() -> Api {
        let shared = Arc::new(Shared::default());
        shared.set_source("summary-stats");
        Api {
            shared,
            version: Version::V3,
            cache: Arc::default(),
            streams: Arc::new(Streams::new(
                2,
                Duration::ZERO,
                Duration::from_secs(15),
                CancellationToken::new(),
            )),
        }
    }

    fn upsert(api: &Api, month: u32, sku: &str, qty: i64, offset: i64) {
        let key = MonthKey {
            year: 2020,
            month,
            sku: sku.into(),
        };
        let totals = Totals {
            manufactured_qty: qty,
            records: 1,
            ..Totals::default()
        };
        let at = At {
            partition: 0,
            offset,
        };
        api.shared.update(|i| i.upsert_at(key, totals, at));
    }

    fn events(frames: &[Frame]) -> Vec<&str> {
        frames.iter().map(|f| f.event).collect()
    }

    #[test]
    fn a_snapshot_then_only_what_changed_with_the_id_on_the_last_event() {
        let api = api();
        upsert(&api, 1, "A", 5, 0);
        upsert(&api, 2, "A", 6, 1);
        let q = StreamQuery::default();
        let mut sent = Sent::default();
        let first = batch(&api, &api.shared.index(), &q, &mut sent);
        assert_eq!(events(&first), vec!["reset", "month", "month", "status"]);
        assert!(first[..3].iter().all(|f| f.id.is_none()));
        assert_eq!(first[3].id.as_deref(), Some("summary-stats@0:2;"));
        assert!(
            batch(&api, &api.shared.index(), &q, &mut sent).is_empty(),
            "nothing new"
        );
        upsert(&api, 2, "A", 9, 2);
        let next = batch(&api, &api.shared.index(), &q, &mut sent);
        assert_eq!(events(&next), vec!["month", "status"]);
        let month: serde_json::Value = serde_json::from_str(&next[0].data).unwrap();
        assert_eq!(month["month"], 2);
        assert_eq!(month["manufacturing"][0]["totals"]["manufactured_qty"], 9);
        assert_eq!(next[1].id.as_deref(), Some("summary-stats@0:3;"));
    }

    #[test]
    fn a_resumed_stream_gets_what_it_missed_and_a_foreign_id_starts_over() {
        let api = api();
        upsert(&api, 1, "A", 5, 0);
        let (topic, cursor) = Cursor::parse("summary-stats@0:1;").unwrap();
        upsert(&api, 3, "A", 7, 1);
        let epoch = api.shared.index().epoch();
        let mut sent = Sent {
            at: Some((topic.to_owned(), epoch, cursor.clone())),
            ..Sent::default()
        };
        let q = StreamQuery::default();
        let missed = batch(&api, &api.shared.index(), &q, &mut sent);
        assert_eq!(events(&missed), vec!["month", "status"]);
        assert!(missed[0].data.contains("\"month\":3"), "{}", missed[0].data);
        let mut foreign = Sent {
            at: Some(("summary-stats-blue".into(), epoch, cursor)),
            ..Sent::default()
        };
        let over = batch(&api, &api.shared.index(), &q, &mut foreign);
        assert_eq!(events(&over), vec!["reset", "month", "month", "status"]);
    }

    #[test]
    fn filters_and_removals() {
        let api = api();
        upsert(&api, 1, "A", 5, 0);
        upsert(&api, 1, "B", 5, 1);
        let q = StreamQuery {
            sku: Some("B".into()),
            ..StreamQuery::default()
        };
        let mut sent = Sent::default();
        let first = batch(&api, &api.shared.index(), &q, &mut sent);
        let month: serde_json::Value = serde_json::from_str(&first[1].data).unwrap();
        assert_eq!(
            month["manufacturing"].as_array().unwrap().len(),
            1,
            "only B"
        );
        let key = MonthKey {
            year: 2020,
            month: 1,
            sku: "B".into(),
        };
        let at = At {
            partition: 0,
            offset: 2,
        };
        api.shared.update(|i| i.remove_at(&key, at));
        let gone = batch(&api, &api.shared.index(), &q, &mut sent);
        assert_eq!(events(&gone), vec!["removed", "status"]);
        let other_year = StreamQuery {
            year: Some(2019),
            ..StreamQuery::default()
        };
        let none = batch(&api, &api.shared.index(), &other_year, &mut Sent::default());
        assert_eq!(events(&none), vec!["reset", "status"]);
    }

    #[test]
    fn the_limit_refuses_and_a_leaving_stream_frees_its_place() {
        let api = api();
        let a = api.streams.admit().unwrap();
        let _b = api.streams.admit().unwrap();
        assert!(api.streams.admit().is_none());
        assert_eq!((api.streams.open.get(), api.streams.refused.get()), (2, 1));
        drop(a);
        assert!(api.streams.admit().is_some());
    }
}
