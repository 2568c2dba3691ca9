//! `/healthz`, `/readyz` and `/metrics` for every binary.
//!
//! `/healthz` answers 200 while the process serves HTTP; `/readyz` answers 200 once the binary
//! called [`Health::set_ready`] (for example after catching up with a topic) and 503 before;
//! `/metrics` renders the binary's Prometheus registry in the OpenMetrics text format.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// Shared readiness flag and metrics registry.
#[derive(Clone)]
pub struct Health {
    ready: Arc<AtomicBool>,
    registry: Arc<Mutex<Registry>>,
}

impl Health {
    /// A not-yet-ready health state whose metrics carry `prefix` (e.g. `rivulet_registry`).
    pub fn new(prefix: &str) -> Self {
        Self {
            ready: Arc::new(AtomicBool::new(false)),
            registry: Arc::new(Mutex::new(Registry::with_prefix(prefix))),
        }
    }

    /// A not-yet-ready health state whose metrics carry no common prefix (a binary that
    /// exports names of another project's, such as `konsumerator_*`, beside its own).
    pub fn unprefixed() -> Self {
        Self {
            ready: Arc::new(AtomicBool::new(false)),
            registry: Arc::new(Mutex::new(Registry::default())),
        }
    }

    /// The metrics as `/metrics` serves them (OpenMetrics text).
    pub fn render_text(&self) -> String {
        self.render().unwrap_or_default()
    }

    /// Marks the binary ready (or not) to serve.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    /// Whether the binary said it is ready.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Runs `f` with the metrics registry, to register metrics at start-up.
    pub fn with_registry<T>(&self, f: impl FnOnce(&mut Registry) -> T) -> T {
        // A poisoned lock only means another thread panicked while registering; the registry
        // itself is still usable.
        let mut guard = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }

    fn render(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        self.with_registry(|r| prometheus_client::encoding::text::encode(&mut out, r))?;
        Ok(out)
    }
}

/// A metric label for an HTTP method from a closed set: the standard methods by name, any
/// other (a client can send any token) as `other`, so made-up methods cannot create series.
pub fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

/// A status-code metric label from a closed set: a code HTTP names, or `other`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StatusLabel(Option<u16>);

impl prometheus_client::encoding::EncodeLabelValue for StatusLabel {
    fn encode(
        &self,
        encoder: &mut prometheus_client::encoding::LabelValueEncoder<'_>,
    ) -> std::fmt::Result {
        use std::fmt::Write;
        match self.0 {
            Some(code) => write!(encoder, "{code}"),
            None => encoder.write_str("other"),
        }
    }
}

/// The label of `status` ([`StatusLabel`]).
pub fn status_label(status: StatusCode) -> StatusLabel {
    StatusLabel(status.canonical_reason().map(|_| status.as_u16()))
}

/// Counts every HTTP answer of `app` by status code in `<prefix>_http_responses_total{code}`
/// (what a canary analysis reads: the share of 5xx answers). Apply it to the whole router.
/// Codes come from a closed set ([`status_label`]).
pub fn count_responses(app: Router, health: &Health) -> Router {
    let responses: Family<[(&'static str, StatusLabel); 1], Counter> = Family::default();
    health.with_registry(|r| {
        r.register(
            "http_responses",
            "HTTP answers by status code",
            responses.clone(),
        )
    });
    app.layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            let responses = responses.clone();
            async move {
                let response = next.run(request).await;
                responses
                    .get_or_create(&[("code", status_label(response.status()))])
                    .inc();
                response
            }
        },
    ))
}

/// Routes for `/healthz`, `/readyz` and `/metrics`, to merge into a binary's router.
pub fn router(health: Health) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(health)
}

async fn readyz(State(health): State<Health>) -> impl IntoResponse {
    if health.is_ready() {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

async fn metrics(State(health): State<Health>) -> axum::response::Response {
    match health.render() {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(error) => {
            tracing::error!(%error, "Could not render metrics.");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_come_from_closed_sets() {
        use axum::http::Method;
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(
            method_label(&Method::from_bytes(b"MADEUP").unwrap()),
            "other"
        );
        let encode = |label: StatusLabel| {
            let family: Family<[(&'static str, StatusLabel); 1], Counter> = Family::default();
            family.get_or_create(&[("code", label)]).inc();
            let mut registry = prometheus_client::registry::Registry::default();
            registry.register("x", "x", family);
            let mut out = String::new();
            prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
            out
        };
        assert!(encode(status_label(StatusCode::NOT_FOUND)).contains("code=\"404\""));
        let odd = StatusCode::from_u16(599).unwrap();
        assert!(encode(status_label(odd)).contains("code=\"other\""));
    }
    use axum::body::Body;
    use axum::http::Request;
    use prometheus_client::metrics::counter::Counter;
    use tower::ServiceExt;

    async fn get_status(app: Router, path: &str) -> (StatusCode, String) {
        let response = app
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn readiness_follows_the_flag_and_metrics_render() {
        let health = Health::new("t");
        let counter = Counter::<u64>::default();
        health.with_registry(|r| r.register("things", "Things seen", counter.clone()));
        counter.inc();
        let app = router(health.clone());
        assert_eq!(get_status(app.clone(), "/healthz").await.0, StatusCode::OK);
        assert_eq!(
            get_status(app.clone(), "/readyz").await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        health.set_ready(true);
        assert_eq!(get_status(app.clone(), "/readyz").await.0, StatusCode::OK);
        let (status, body) = get_status(app, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("t_things_total 1"), "{body}");
    }
}
