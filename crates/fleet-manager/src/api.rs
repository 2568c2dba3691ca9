//! The public REST API, `/api/kafkas_mgmt/v1`: routing, authentication, operation ids,
//! request metrics and the error shape. Every refusal, including the ones axum or the request
//! bounds would make, answers in the reference's error shape.

mod catalog;
mod kafkas;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rivulet_common::Health;
use rivulet_common::http::{Limits, SizeLimitLayer};

use crate::auth::{Caller, TokenVerifier};
use crate::catalog::Catalog;
use crate::errors::{ApiError, Code, Failure};
use crate::metrics::Metrics;
use crate::quota::{Defaults, QuotaList};
use crate::store::Store;

/// The API's base path.
pub const BASE: &str = "/api/kafkas_mgmt/v1";

/// What the handlers share.
pub struct App {
    pub store: Store,
    pub catalog: Arc<Catalog>,
    pub quotas: QuotaList,
    pub defaults: Defaults,
    pub verifier: TokenVerifier,
    pub admins: Vec<String>,
    pub metrics: Metrics,
}

/// A request's operation id (`operation_id` of its error, `X-Operation-ID` of its response).
#[derive(Clone, Debug)]
pub struct OperationId(pub String);

impl OperationId {
    /// `error` as this request's response.
    pub fn fail(&self, error: ApiError) -> Failure {
        Failure {
            error,
            operation_id: self.0.clone(),
        }
    }
}

/// An authenticated request: its caller and operation id.
pub struct Authed {
    pub caller: Caller,
    pub op: OperationId,
}

impl axum::extract::FromRequestParts<Arc<App>> for Authed {
    type Rejection = Failure;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        app: &Arc<App>,
    ) -> Result<Self, Self::Rejection> {
        let op = operation_id(parts);
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim);
        let Some(token) = token else {
            return Err(op.fail(ApiError::new(
                Code::Unauthenticated,
                "no bearer token in the Authorization header",
            )));
        };
        let now = chrono::Utc::now().timestamp();
        match app.verifier.caller(token, now, &app.admins) {
            Ok(caller) => Ok(Authed { caller, op }),
            Err(e) => Err(op.fail(ApiError::new(Code::Unauthenticated, e.to_string()))),
        }
    }
}

/// The operation id the middleware gave the request.
pub fn operation_id(parts: &axum::http::request::Parts) -> OperationId {
    operation_id_of(&parts.extensions)
}

/// The operation id in `extensions`, or a new one (a refusal made before the middleware).
fn operation_id_of(extensions: &axum::http::Extensions) -> OperationId {
    extensions
        .get::<OperationId>()
        .cloned()
        .unwrap_or_else(|| OperationId(new_operation_id()))
}

fn new_operation_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The API's router (with `/healthz`, `/readyz` and `/metrics` of `health`).
pub fn router(app: Arc<App>, health: Health, limits: Limits) -> Router {
    let api = Router::new()
        .route(BASE, get(catalog::version))
        .route(&format!("{BASE}/openapi"), get(catalog::openapi))
        .route(&format!("{BASE}/errors"), get(catalog::errors))
        .route(&format!("{BASE}/errors/{{id}}"), get(catalog::error))
        .route(
            &format!("{BASE}/kafkas"),
            get(kafkas::list).post(kafkas::create),
        )
        .route(
            &format!("{BASE}/kafkas/{{id}}"),
            get(kafkas::get)
                .patch(kafkas::update)
                .delete(kafkas::delete),
        )
        .route(&format!("{BASE}/cloud_providers"), get(catalog::providers))
        .route(
            &format!("{BASE}/cloud_providers/{{id}}/regions"),
            get(catalog::regions),
        )
        .route(
            &format!("{BASE}/instance_types/{{provider}}/{{region}}"),
            get(catalog::instance_types),
        )
        .route(&format!("{BASE}/clusters"), get(catalog::clusters))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(app.clone());
    let metrics = app.metrics.clone();
    api.merge(rivulet_common::health::router(health))
        .layer(axum::middleware::from_fn_with_state(
            limits.request,
            time_limit,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(limits.body))
        .layer(SizeLimitLayer::answering(&limits, refuse))
        .layer(axum::middleware::from_fn(move |req, next| {
            observe(metrics.clone(), req, next)
        }))
}

/// Answers 503 in the error shape when a request takes longer than its limit.
async fn time_limit(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    let op = operation_id_of(req.extensions());
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => op
            .fail(ApiError::new(
                Code::Unavailable,
                format!("the request took longer than {}s", limit.as_secs()),
            ))
            .into_response(),
    }
}

fn refuse(status: StatusCode, message: &str) -> Response {
    let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
        Code::MaximumFieldLength
    } else {
        Code::BadRequest
    };
    let mut r = Failure {
        error: ApiError::new(code, message),
        operation_id: new_operation_id(),
    }
    .into_response();
    *r.status_mut() = status;
    r
}

async fn not_found(req: Request) -> Failure {
    let (parts, _) = req.into_parts();
    operation_id(&parts).fail(ApiError::new(
        Code::NotFound,
        format!("no such resource: {}", parts.uri.path()),
    ))
}

async fn method_not_allowed(req: Request) -> Failure {
    let (parts, _) = req.into_parts();
    operation_id(&parts).fail(ApiError::new(
        Code::NotImplemented,
        format!("{} is not supported on {}", parts.method, parts.uri.path()),
    ))
}

/// Gives the request an operation id, counts and times it by route template.
async fn observe(metrics: Metrics, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let op = new_operation_id();
    req.extensions_mut().insert(OperationId(op.clone()));
    let method = rivulet_common::health::method_label(req.method());
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| {
            p.as_str()
                .replace("{id}", ":id")
                .replace("{provider}", ":provider")
                .replace("{region}", ":region")
        })
        .unwrap_or_else(|| "unmatched".into());
    let mut response = next.run(req).await;
    if let Ok(v) = HeaderValue::from_str(&op) {
        response.headers_mut().insert("x-operation-id", v);
    }
    if path.starts_with(BASE) {
        metrics.request(method, &path, response.status().as_u16(), started.elapsed());
    }
    response
}

/// Query parameters, decoded leniently (a malformed pair is skipped, never a panic).
pub fn query(raw: Option<&str>) -> Vec<(String, String)> {
    raw.map(|q| {
        form_urlencoded::parse(q.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    })
    .unwrap_or_default()
}

/// The value of `name` in `q`.
pub fn param<'q>(q: &'q [(String, String)], name: &str) -> Option<&'q str> {
    q.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Serves `app` on `listen` until `token` is cancelled.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    token: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    rivulet_common::http::serve(listener, app, token, Duration::from_secs(10)).await
}
