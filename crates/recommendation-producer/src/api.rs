//! The REST API: `POST /bulk`, `GET /bulk`, `GET /bulk/jobs`, `DELETE /bulk`,
//! `GET /recommendations`. Errors use the reference's shape
//! `{message, httpcode, documentationLink, status: "ERROR"}`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rivulet_common::Credentials;
use rivulet_common::credentials::Scope;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::document;
use crate::job::Runner;
use crate::payload::BulkInput;
use crate::store::{ExperimentRow, status};

/// Most experiments in one `GET /bulk` page.
pub const MAX_PAGE_SIZE: usize = 1000;

/// The routes. With `credentials` configured, `POST /bulk` and `DELETE /bulk` (with
/// [`Scope::All`], every route but the OpenAPI document) answer 401 without them.
pub fn router(runner: Arc<Runner>, credentials: Credentials, scope: Scope) -> Router {
    let guard = middleware::from_fn_with_state(Arc::new(credentials), require_credentials);
    let writes = post(post_bulk)
        .delete(delete_bulk)
        .route_layer(guard.clone());
    let reads = Router::new()
        .route("/bulk", get(get_bulk).merge(writes))
        .route("/bulk/jobs", get(list_jobs))
        .route("/recommendations", get(recommendations));
    let reads = match scope {
        Scope::Writes => reads,
        Scope::All => reads.route_layer(guard),
    };
    let datasources: Vec<&str> = runner.datasources.keys().map(String::as_str).collect();
    // Built once; each answer shares the bytes.
    let document = Bytes::from(crate::openapi::document(
        &datasources,
        &runner.webhook_allow,
    ));
    reads
        .route(
            "/openapi.json",
            get(move || {
                let document = document.clone();
                async move {
                    (
                        [(axum::http::header::CONTENT_TYPE, "application/json")],
                        document,
                    )
                }
            }),
        )
        .with_state(runner)
}

/// Answers 401 (the project's error shape, and `WWW-Authenticate`) without valid credentials.
async fn require_credentials(
    State(credentials): State<Arc<Credentials>>,
    request: Request,
    next: Next,
) -> Response {
    if credentials.allows(request.headers()) {
        return next.run(request).await;
    }
    let mut response = ApiError(
        StatusCode::UNAUTHORIZED,
        "authentication required: a valid bearer token or basic credentials".into(),
    )
    .into_response();
    response.headers_mut().insert(
        axum::http::header::WWW_AUTHENTICATE,
        axum::http::HeaderValue::from_static("Bearer, Basic realm=\"rivulet\""),
    );
    response
}

struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "message": self.1,
            "httpcode": self.0.as_u16(),
            "documentationLink": "",
            "status": "ERROR",
        });
        (self.0, Json(body)).into_response()
    }
}

/// Longest error message sent back: a message may quote the request (a regex, a name), and an
/// answer must not echo an unbounded input.
const MAX_MESSAGE: usize = 400;

fn bad(message: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, bounded(message.into()))
}

/// `message`, cut at [`MAX_MESSAGE`] bytes (on a character boundary) with a marker.
fn bounded(mut message: String) -> String {
    if message.len() > MAX_MESSAGE {
        let mut end = MAX_MESSAGE;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push_str("… (truncated)");
    }
    message
}

/// Whether a JSON value holds a NUL character anywhere (PostgreSQL's text refuses it: it is
/// bad input, not an outage).
fn db(error: sqlx::Error) -> ApiError {
    tracing::warn!(%error, "Database error.");
    ApiError(
        StatusCode::SERVICE_UNAVAILABLE,
        "the job store is unavailable; try again".into(),
    )
}

/// Query parameters, each at most once, only the `allowed` ones.
fn params(raw: Option<&str>, allowed: &[&str]) -> Result<BTreeMap<String, String>, ApiError> {
    let mut out = BTreeMap::new();
    for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        if k.contains('\0') || v.contains('\0') {
            return Err(bad(format!(
                "parameter `{}` holds a NUL character",
                k.replace('\0', "\\0")
            )));
        }
        if !allowed.contains(&k.as_ref()) {
            return Err(bad(format!(
                "unknown parameter `{k}`: expected {}",
                allowed.join(", ")
            )));
        }
        if out.insert(k.to_string(), v.to_string()).is_some() {
            return Err(bad(format!("parameter `{k}` is given more than once")));
        }
    }
    Ok(out)
}

fn job_id(p: &BTreeMap<String, String>) -> Result<Uuid, ApiError> {
    let raw = p.get("job_id").ok_or_else(|| bad("job_id is required"))?;
    Uuid::parse_str(raw).map_err(|_| bad(format!("job_id {raw:?} is not a UUID")))
}

fn not_found() -> ApiError {
    ApiError(StatusCode::NOT_FOUND, "Job not found".into())
}

async fn post_bulk(
    State(runner): State<Arc<Runner>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let id = Uuid::new_v4();
    let refuse = |m: String| {
        runner.metrics.bad_requests.inc();
        bad(format!("{m} for the jobId: {id}"))
    };
    let body = body.map_err(|rejection| {
        runner.metrics.bad_requests.inc();
        ApiError(rejection.status(), bounded(rejection.body_text()))
    })?;
    let input = BulkInput::parse(&body).map_err(refuse)?;
    let valid = input.validate().map_err(refuse)?;
    if let Some(hook) = &input.webhook {
        crate::job::webhook_allowed(&runner.webhook_allow, &hook.url).map_err(refuse)?;
    }
    let Some(ds) = runner.datasources.get(&valid.datasource) else {
        return Err(refuse(format!(
            "Datasource not registered with Kruize. ({})",
            valid.datasource
        )));
    };
    if let Err(e) = tokio::time::timeout(Duration::from_secs(10), ds.handshake())
        .await
        .unwrap_or_else(|_| Err(crate::prometheus::QueryError::Timeout("handshake".into())))
    {
        return Err(refuse(format!(
            "Datasource {} is not serviceable: {e}",
            valid.datasource
        )));
    }
    let payload = serde_json::to_value(&input).map_err(|e| refuse(e.to_string()))?;
    runner.store.create_job(id, &payload).await.map_err(db)?;
    runner.wake.notify_waiters();
    Ok(Json(json!({ "job_id": id.to_string() })).into_response())
}

fn metadata(datasource: &str, experiments: &[ExperimentRow]) -> Value {
    let mut namespaces = Map::new();
    for e in experiments {
        let ns = namespaces
            .entry(e.namespace.clone())
            .or_insert_with(|| json!({ "namespace": e.namespace, "workloads": {} }));
        let workloads = &mut ns["workloads"];
        let w = workloads
            .as_object_mut()
            .map(|m| m.entry(e.workload.clone()).or_insert_with(|| json!({ "workload_name": e.workload, "workload_type": e.workload_type, "containers": {} })));
        if let Some(w) = w {
            w["containers"][&e.container] =
                json!({ "container_name": e.container, "container_image_name": e.image });
        }
    }
    json!({ "datasources": { datasource: { "datasource_name": datasource, "clusters": { "default": { "cluster_name": "default", "namespaces": namespaces } } } } })
}

async fn get_bulk(
    State(runner): State<Arc<Runner>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let p = params(
        raw.as_deref(),
        &[
            "job_id",
            "include",
            "experiment_name",
            "page",
            "page_size",
            "verbose",
        ],
    )?;
    let id = job_id(&p)?;
    let job = runner
        .store
        .job(id)
        .await
        .map_err(db)?
        .ok_or_else(not_found)?;
    let page: usize = p
        .get("page")
        .map_or(Ok(1), |v| v.parse())
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| bad("page must be a whole number from 1"))?;
    let size: usize = p
        .get("page_size")
        .map_or(Ok(100), |v| v.parse())
        .ok()
        .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
        .ok_or_else(|| {
            bad(format!(
                "page_size must be a whole number from 1 to {MAX_PAGE_SIZE}"
            ))
        })?;
    let include = p.get("include").map_or("summary", String::as_str);
    let mut out = Map::new();
    for token in include.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let mut parts = token.split('|');
        let key = parts.next().unwrap_or_default();
        let fields: Vec<&str> = parts.collect();
        match key {
            "summary" => {
                out.insert(
                    "summary".into(),
                    document::only(document::summary(&job), &fields),
                );
            }
            "webhook" => {
                out.insert("webhook".into(), job.webhook.clone().unwrap_or(Value::Null));
            }
            "experiments" | "metadata" => {
                let mut experiments = runner.store.experiments(id).await.map_err(db)?;
                if key == "metadata" {
                    let ds = job
                        .payload
                        .get("datasource")
                        .and_then(Value::as_str)
                        .unwrap_or(crate::payload::DEFAULT_DATASOURCE);
                    out.insert("metadata".into(), metadata(ds, &experiments));
                    continue;
                }
                if let Some(name) = p.get("experiment_name") {
                    experiments.retain(|e| e.name.contains(name.as_str()));
                }
                let total = experiments.len();
                // Checked: `page` and `page_size` are the caller's numbers.
                let skip = (page - 1)
                    .checked_mul(size)
                    .ok_or_else(|| bad("page × page_size is too large"))?;
                let shown: Map<String, Value> = experiments
                    .iter()
                    .skip(skip)
                    .take(size)
                    .map(|e| {
                        (
                            e.name.clone(),
                            document::only(document::experiment(e), &fields),
                        )
                    })
                    .collect();
                out.insert("experiments".into(), Value::Object(shown));
                out.insert(
                    "experiments_page".into(),
                    json!({ "page": page, "page_size": size, "total": total }),
                );
            }
            other => {
                return Err(bad(format!(
                    "include: unknown part {other:?} (summary, experiments, metadata, webhook)"
                )));
            }
        }
    }
    Ok(Json(Value::Object(out)).into_response())
}

async fn list_jobs(
    State(runner): State<Arc<Runner>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let p = params(raw.as_deref(), &["status", "limit"])?;
    let wanted = p.get("status").map(String::as_str);
    if let Some(s) = wanted
        && ![
            status::IN_PROGRESS,
            status::COMPLETED,
            status::FAILED,
            status::CANCELLED,
        ]
        .contains(&s)
    {
        return Err(bad(format!(
            "status must be IN_PROGRESS, COMPLETED, FAILED or CANCELLED, got {s:?}"
        )));
    }
    let limit: i64 = p
        .get("limit")
        .map_or(Ok(100), |v| v.parse())
        .ok()
        .filter(|n| (1..=1000).contains(n))
        .ok_or_else(|| bad("limit must be a whole number from 1 to 1000"))?;
    let jobs = runner.store.list(wanted, limit).await.map_err(db)?;
    let summaries: Vec<Value> = jobs
        .iter()
        .map(|j| {
            document::only(
                document::summary(j),
                &[
                    "job_id",
                    "status",
                    "total_experiments",
                    "processed_experiments",
                    "job_start_time",
                    "job_end_time",
                ],
            )
        })
        .collect();
    Ok(Json(json!({ "jobs": summaries })).into_response())
}

async fn delete_bulk(
    State(runner): State<Arc<Runner>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let p = params(raw.as_deref(), &["job_id"])?;
    let id = job_id(&p)?;
    if runner.store.cancel(id).await.map_err(db)? {
        return Ok(
            Json(json!({ "job_id": id.to_string(), "status": status::CANCELLED })).into_response(),
        );
    }
    match runner.store.job(id).await.map_err(db)? {
        None => Err(not_found()),
        Some(job) => Err(ApiError(
            StatusCode::CONFLICT,
            format!("job {id} already ended: {}", job.status),
        )),
    }
}

async fn recommendations(
    State(runner): State<Arc<Runner>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let p = params(raw.as_deref(), &["experiment_name"])?;
    let name = p
        .get("experiment_name")
        .ok_or_else(|| bad("experiment_name is required"))?;
    match runner.store.latest_recommendation(name).await.map_err(db)? {
        Some(doc) => Ok(Json(doc).into_response()),
        None => Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no recommendations for experiment {name:?}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_bounded_and_nul_is_found() {
        let long = "é".repeat(1000);
        let cut = bounded(long);
        assert!(cut.len() <= MAX_MESSAGE + "… (truncated)".len());
        assert!(cut.ends_with("(truncated)"));
        assert_eq!(bounded("short".into()), "short");
        assert!(params(Some("experiment_name=a%00b"), &["experiment_name"]).is_err());
        assert!(params(Some("experiment_name=ab"), &["experiment_name"]).is_ok());
    }
}
