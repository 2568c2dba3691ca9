//! The registry's Prometheus metrics.

use axum::extract::MatchedPath;
use prometheus_client::encoding::{EncodeLabelSet, LabelSetEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use rivulet_common::Health;
use rivulet_common::health::{StatusLabel, method_label, status_label};

/// Labels of an HTTP request counter. Built on every request, so it borrows what the request
/// already has (the method and the route's shared template) instead of allocating strings.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RequestLabels {
    /// HTTP method, from a closed set (`rivulet_common::health::method_label`).
    pub method: &'static str,
    /// Route template, e.g. `/schemas/ids/{id}`.
    pub route: Route,
    /// Status code, from a closed set.
    pub status: StatusLabel,
}

/// The matched route template (a shared string), or none for unmatched paths.
#[derive(Clone, Debug)]
pub struct Route(pub Option<MatchedPath>);

impl Route {
    fn as_str(&self) -> &str {
        self.0.as_ref().map_or("unmatched", MatchedPath::as_str)
    }
}

impl PartialEq for Route {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Route {}

impl std::hash::Hash for Route {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl EncodeLabelSet for RequestLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeLabel;
        ("method", self.method).encode(encoder.encode_label())?;
        ("route", self.route.as_str()).encode(encoder.encode_label())?;
        ("status", self.status).encode(encoder.encode_label())
    }
}

/// Every metric the registry exports.
#[derive(Clone, Default)]
pub struct Metrics {
    /// New schema versions this replica registered.
    pub registrations: Counter,
    /// Claims this replica wrote that lost to another writer's earlier claim.
    pub claim_conflicts: Counter,
    /// `_schemas` records applied.
    pub records_applied: Counter,
    /// `_schemas` records rejected by the first-claim-wins rules.
    pub records_rejected: Counter,
    /// `_schemas` records that could not be decoded and were skipped.
    pub records_malformed: Counter,
    /// Next `_schemas` offset to apply.
    pub log_offset: Gauge,
    /// Distinct schema ids known.
    pub schemas: Gauge,
    /// HTTP requests by method, route and status.
    pub requests: Family<RequestLabels, Counter>,
    /// Log syncs caused by look-ups that found nothing (shared by concurrent misses).
    pub miss_syncs: Counter,
    /// Registration claims planned and not yet settled (written and read back).
    pub claims_in_flight: Gauge,
}

impl Metrics {
    /// Creates the metrics and registers them with `health`'s registry.
    pub fn register(health: &Health) -> Self {
        let m = Self::default();
        health.with_registry(|r| {
            r.register(
                "registrations",
                "New schema versions registered by this replica",
                m.registrations.clone(),
            );
            r.register(
                "claim_conflicts",
                "Registration claims that lost to an earlier claim",
                m.claim_conflicts.clone(),
            );
            r.register(
                "log_records_applied",
                "_schemas records applied",
                m.records_applied.clone(),
            );
            r.register(
                "log_records_rejected",
                "_schemas records rejected as conflicting",
                m.records_rejected.clone(),
            );
            r.register(
                "log_records_malformed",
                "_schemas records skipped as undecodable",
                m.records_malformed.clone(),
            );
            r.register(
                "log_offset",
                "Next _schemas offset to apply",
                m.log_offset.clone(),
            );
            r.register("schemas", "Distinct schema ids", m.schemas.clone());
            r.register(
                "miss_syncs",
                "Log syncs caused by look-ups that found nothing",
                m.miss_syncs.clone(),
            );
            r.register(
                "claims_in_flight",
                "Registration claims planned and not yet settled",
                m.claims_in_flight.clone(),
            );
            r.register(
                "http_requests",
                "HTTP requests by method, route and status",
                m.requests.clone(),
            );
        });
        m
    }
}

/// Tower layer counting requests by method, route and status in [`Metrics::requests`].
///
/// A hand-written service rather than `axum::middleware::from_fn`, which boxes a future per
/// request: on `GET /schemas/ids/{id}`, the hot path, that cost a measurable share of
/// throughput.
/// It borrows the family for the life of the process (the registry that owns it is never
/// dropped), so the per-request clone of the service does not touch a reference count.
#[derive(Clone)]
pub struct CountRequestsLayer(pub &'static Family<RequestLabels, Counter>);

impl<S> tower::Layer<S> for CountRequestsLayer {
    type Service = CountRequests<S>;
    fn layer(&self, inner: S) -> Self::Service {
        CountRequests {
            inner,
            requests: self.0,
        }
    }
}

/// The service of [`CountRequestsLayer`].
#[derive(Clone)]
pub struct CountRequests<S> {
    inner: S,
    requests: &'static Family<RequestLabels, Counter>,
}

impl<S, B> tower::Service<axum::http::Request<B>> for CountRequests<S>
where
    S: tower::Service<axum::http::Request<B>, Response = axum::response::Response>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Counted<S::Future>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: axum::http::Request<B>) -> Self::Future {
        let method = method_label(request.method());
        let route = Route(request.extensions().get::<MatchedPath>().cloned());
        Counted {
            inner: self.inner.call(request),
            labels: Some((method, route)),
            requests: self.requests,
        }
    }
}

pin_project_lite::pin_project! {
    /// Future of [`CountRequests`]: counts the response when it is ready.
    pub struct Counted<F> {
        #[pin]
        inner: F,
        labels: Option<(&'static str, Route)>,
        requests: &'static Family<RequestLabels, Counter>,
    }
}

impl<F, E> std::future::Future for Counted<F>
where
    F: std::future::Future<Output = Result<axum::response::Response, E>>,
{
    type Output = F::Output;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = self.project();
        let output = std::task::ready!(this.inner.poll(cx));
        if let (Ok(response), Some((method, route))) = (&output, this.labels.take()) {
            this.requests
                .get_or_create(&RequestLabels {
                    method,
                    route,
                    status: status_label(response.status()),
                })
                .inc();
        }
        std::task::Poll::Ready(output)
    }
}
