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

/// Counts every HTTP answer of `app` by status code in `<prefix>_http_responses_total{code}`
/// (what a canary analysis reads: the share of 5xx answers). Apply it to the whole router.
pub fn count_responses(app: Router, health: &Health) -> Router {
    let responses: Family<[(&'static str, String); 1], Counter> = Family::default();
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
                    .get_or_create(&[("code", response.status().as_str().to_owned())])
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
