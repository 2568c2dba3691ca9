//! The Confluent REST API over [`Registry`].
//!
//! Every JSON answer has content type `application/vnd.schemaregistry.v1+json`; errors are
//! `{"error_code", "message"}`. Query parameters Confluent's clients send are parsed leniently:
//! unknown ones are ignored and a flag is true only when it says `true`.

use std::collections::HashMap;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{
    FromRequest, FromRequestParts, OptionalFromRequestParts, Path, Request, State,
};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use rivulet_common::Health;
use rivulet_common::http::{Limits, SizeLimitLayer};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::auth::{Auth, require_auth};
use crate::error::{ApiError, CONTENT_TYPE};
use crate::metrics::CountRequestsLayer;
use crate::registry::{Found, Registry, Submission, VersionSpec};
use crate::schema::Level;
use crate::state::Mode;

/// What every handler can reach. axum clones the state for every request, so it is a plain
/// reference: the registry lives as long as the process (see `run`).
pub type AppState = &'static Registry;

type ApiResult = Result<Response, ApiError>;

/// The full router: the API, health endpoints, metrics, auth and request timeout.
pub fn router(state: AppState, health: Health, auth: Auth, request_timeout: Duration) -> Router {
    // Endpoints without a body: every wait inside them is bounded by the store timeout.
    let reads = Router::new()
        .route("/", get(|| async { reply(json!({})) }))
        .route("/schemas/types", get(|| async { reply(json!(["AVRO"])) }))
        .route("/schemas", get(list_schemas))
        .route("/schemas/ids/{id}", get(schema_by_id))
        .route("/schemas/ids/{id}/schema", get(schema_text_by_id))
        .route("/schemas/ids/{id}/versions", get(id_versions))
        .route("/schemas/ids/{id}/subjects", get(id_subjects))
        .route("/subjects", get(list_subjects))
        .route("/subjects/{subject}", delete(delete_subject))
        .route("/subjects/{subject}/versions", get(list_versions))
        .route(
            "/subjects/{subject}/versions/{version}",
            get(get_version).delete(delete_version),
        )
        .route(
            "/subjects/{subject}/versions/{version}/schema",
            get(get_version_schema),
        )
        .route(
            "/subjects/{subject}/versions/{version}/referencedby",
            get(referenced_by),
        )
        .route("/config", get(get_config).delete(delete_config))
        .route("/config/{subject}", get(get_config).delete(delete_config))
        .route("/mode", get(get_mode))
        .route("/mode/{subject}", get(get_mode).delete(delete_mode));
    // Endpoints with a body also get a request timeout, so a client that sends its body slowly
    // cannot hold up shutdown. (Kept off the reads: a timer per request costs the hot path.)
    let writes = Router::new()
        .route("/subjects/{subject}", post(lookup))
        .route("/subjects/{subject}/versions", post(register))
        .route(
            "/compatibility/subjects/{subject}/versions",
            post(check_all),
        )
        .route(
            "/compatibility/subjects/{subject}/versions/{version}",
            post(check_one),
        )
        .route("/config", put(put_config))
        .route("/config/{subject}", put(put_config))
        .route("/mode", put(put_mode))
        .route("/mode/{subject}", put(put_mode))
        .route_layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            request_timeout,
        ));
    let api = reads
        .merge(writes)
        .fallback(|| async { ApiError::no_route() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .with_state(state);
    let requests = &state.metrics().requests;
    // Every middleware costs on the hot read path: add the auth check only when it is on.
    let api = if auth.credentials.enabled() {
        api.layer(middleware::from_fn_with_state(auth, require_auth))
    } else {
        api
    };
    // Bodies are bounded by axum's default (2 MiB, 413); URIs and headers here (414, 431).
    api.merge(rivulet_common::health::router(health))
        .layer(CountRequestsLayer(requests))
        .layer(TraceLayer::new_for_http())
        .layer(SizeLimitLayer::answering(
            &Limits::default(),
            |status, message| {
                ApiError::new(status, u32::from(status.as_u16()) * 100, message).into_response()
            },
        ))
}

fn reply(value: Value) -> Response {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], value.to_string()).into_response()
}

fn raw(body: impl Into<axum::body::Body>) -> Response {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], body.into()).into_response()
}

fn found_json(f: &Found) -> Value {
    let mut v =
        json!({ "subject": f.subject, "version": f.version, "id": f.id, "schema": f.schema });
    if !f.references.is_empty() {
        v["references"] = json!(f.references);
    }
    if f.deleted {
        v["deleted"] = json!(true);
    }
    v
}

/// Query parameters, parsed without ever failing.
pub struct Params(HashMap<String, String>);

impl Params {
    fn flag(&self, name: &str) -> bool {
        self.0
            .get(name)
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    }
    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        Ok(Params(
            form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect(),
        ))
    }
}

/// Path segments (`{subject}`, `{version}`, `{id}`), percent-decoded. A path that does not
/// decode (not UTF-8) is a Confluent-shaped 400, like every other client mistake.
pub struct Segments<T>(T);

impl<S: Send + Sync, T: DeserializeOwned + Send + 'static> FromRequestParts<S> for Segments<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        <Path<T> as FromRequestParts<S>>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| Segments(value))
            .map_err(|e| ApiError::bad_request(format!("Bad request path: {}", e.body_text())))
    }
}

impl<S: Send + Sync, T: DeserializeOwned + Send + 'static> OptionalFromRequestParts<S>
    for Segments<T>
{
    type Rejection = ApiError;
    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        <Path<T> as OptionalFromRequestParts<S>>::from_request_parts(parts, state)
            .await
            .map(|found| found.map(|Path(value)| Segments(value)))
            .map_err(|e| ApiError::bad_request(format!("Bad request path: {}", e.body_text())))
    }
}

/// A JSON body in any content type: malformed JSON is 400, the wrong shape 422.
pub struct Body<T>(T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;
    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(request, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    41300,
                    "The request body is larger than this registry accepts (2 MiB).",
                )
            } else {
                ApiError::bad_request(format!("Could not read the request body: {e}"))
            }
        })?;
        serde_json::from_slice(&bytes).map(Body).map_err(|e| {
            if e.is_data() {
                ApiError::unprocessable(format!("Unprocessable request body: {e}"))
            } else {
                ApiError::bad_request(format!("Malformed JSON in the request body: {e}"))
            }
        })
    }
}

fn parse_id(text: &str) -> Result<u32, ApiError> {
    text.parse::<u32>()
        .map_err(|_| ApiError::schema_not_found(format!("id '{text}'")))
}

async fn list_schemas(State(app): State<AppState>, params: Params) -> ApiResult {
    let prefix = params.get("subjectPrefix").unwrap_or_default();
    let (deleted, latest_only) = (params.flag("deleted"), params.flag("latestOnly"));
    let state = app.read();
    let mut out = Vec::new();
    for subject in state
        .subjects(deleted)
        .into_iter()
        .filter(|s| s.starts_with(prefix))
    {
        let mut versions = state
            .versions(subject)
            .into_iter()
            .flatten()
            .filter(|(_, v)| deleted || !v.deleted);
        let versions: Vec<_> = if latest_only {
            versions.next_back().into_iter().collect()
        } else {
            versions.collect()
        };
        for (n, v) in versions {
            if let Some(s) = state.any_schema(v.id) {
                out.push(json!({ "subject": subject, "version": n, "id": v.id, "schema": s.parsed.canonical }));
            }
        }
    }
    Ok(reply(Value::Array(out)))
}

async fn schema_by_id(State(app): State<AppState>, Segments(id): Segments<String>) -> ApiResult {
    let id = parse_id(&id)?;
    let body = app
        .fresh(|s| {
            s.schema(id)
                .map(|s| s.body)
                .ok_or_else(|| ApiError::schema_not_found(id))
        })
        .await?;
    Ok(raw(body))
}

async fn schema_text_by_id(
    State(app): State<AppState>,
    Segments(id): Segments<String>,
) -> ApiResult {
    let id = parse_id(&id)?;
    let text = app
        .fresh(|s| {
            s.schema(id)
                .map(|s| s.parsed.canonical.clone())
                .ok_or_else(|| ApiError::schema_not_found(id))
        })
        .await?;
    Ok(raw(text))
}

async fn id_versions(
    State(app): State<AppState>,
    Segments(id): Segments<String>,
    params: Params,
) -> ApiResult {
    let id = parse_id(&id)?;
    let deleted = params.flag("deleted");
    let list = app
        .fresh(|s| {
            s.schema(id).ok_or_else(|| ApiError::schema_not_found(id))?;
            Ok(s.usages(id, deleted)
                .into_iter()
                .map(|(s, v)| json!({ "subject": s, "version": v }))
                .collect::<Vec<_>>())
        })
        .await?;
    Ok(reply(Value::Array(list)))
}

async fn id_subjects(
    State(app): State<AppState>,
    Segments(id): Segments<String>,
    params: Params,
) -> ApiResult {
    let id = parse_id(&id)?;
    let deleted = params.flag("deleted");
    let mut list = app
        .fresh(|s| {
            s.schema(id).ok_or_else(|| ApiError::schema_not_found(id))?;
            Ok(s.usages(id, deleted)
                .into_iter()
                .map(|(s, _)| s.to_owned())
                .collect::<Vec<_>>())
        })
        .await?;
    list.dedup();
    Ok(reply(json!(list)))
}

async fn list_subjects(State(app): State<AppState>, params: Params) -> ApiResult {
    let prefix = params.get("subjectPrefix").unwrap_or_default();
    let state = app.read();
    let subjects: Vec<&str> = state
        .subjects(params.flag("deleted"))
        .into_iter()
        .filter(|s| s.starts_with(prefix))
        .collect();
    Ok(reply(json!(subjects)))
}

async fn list_versions(
    State(app): State<AppState>,
    Segments(subject): Segments<String>,
    params: Params,
) -> ApiResult {
    let deleted = params.flag("deleted");
    let list = app
        .fresh(|s| {
            let list: Vec<u32> = s
                .versions(&subject)
                .into_iter()
                .flatten()
                .filter(|(_, v)| deleted || !v.deleted)
                .map(|(n, _)| *n)
                .collect();
            if list.is_empty() {
                Err(ApiError::subject_not_found(&subject))
            } else {
                Ok(list)
            }
        })
        .await?;
    Ok(reply(json!(list)))
}

async fn register(
    State(app): State<AppState>,
    Segments(subject): Segments<String>,
    Body(sub): Body<Submission>,
) -> ApiResult {
    let id = app.register(&subject, &sub).await?;
    Ok(reply(json!({ "id": id })))
}

async fn lookup(
    State(app): State<AppState>,
    Segments(subject): Segments<String>,
    params: Params,
    Body(sub): Body<Submission>,
) -> ApiResult {
    let found = app.lookup(&subject, &sub, params.flag("deleted")).await?;
    Ok(reply(found_json(&found)))
}

async fn delete_subject(
    State(app): State<AppState>,
    Segments(subject): Segments<String>,
    params: Params,
) -> ApiResult {
    let versions = app
        .delete_subject(&subject, params.flag("permanent"))
        .await?;
    Ok(reply(json!(versions)))
}

async fn get_version(
    State(app): State<AppState>,
    Segments((subject, version)): Segments<(String, String)>,
    params: Params,
) -> ApiResult {
    let spec = VersionSpec::parse(&version)?;
    let found = app.version(&subject, spec, params.flag("deleted")).await?;
    Ok(reply(found_json(&found)))
}

async fn get_version_schema(
    State(app): State<AppState>,
    Segments((subject, version)): Segments<(String, String)>,
    params: Params,
) -> ApiResult {
    let spec = VersionSpec::parse(&version)?;
    let found = app.version(&subject, spec, params.flag("deleted")).await?;
    Ok(raw(found.schema))
}

async fn referenced_by(
    State(app): State<AppState>,
    Segments((subject, version)): Segments<(String, String)>,
) -> ApiResult {
    let spec = VersionSpec::parse(&version)?;
    let found = app.version(&subject, spec, false).await?;
    Ok(reply(json!(
        app.read().referencing_ids(&subject, found.version)
    )))
}

async fn delete_version(
    State(app): State<AppState>,
    Segments((subject, version)): Segments<(String, String)>,
    params: Params,
) -> ApiResult {
    let spec = VersionSpec::parse(&version)?;
    let n = app
        .delete_version(&subject, spec, params.flag("permanent"))
        .await?;
    Ok(reply(json!(n)))
}

fn compatibility_reply(messages: Vec<String>, verbose: bool) -> Response {
    let mut v = json!({ "is_compatible": messages.is_empty() });
    if verbose {
        v["messages"] = json!(messages);
    }
    reply(v)
}

async fn check_all(
    State(app): State<AppState>,
    Segments(subject): Segments<String>,
    params: Params,
    Body(sub): Body<Submission>,
) -> ApiResult {
    let messages = app.check(&subject, None, &sub).await?;
    Ok(compatibility_reply(messages, params.flag("verbose")))
}

async fn check_one(
    State(app): State<AppState>,
    Segments((subject, version)): Segments<(String, String)>,
    params: Params,
    Body(sub): Body<Submission>,
) -> ApiResult {
    let spec = VersionSpec::parse(&version)?;
    let messages = app.check(&subject, Some(spec), &sub).await?;
    Ok(compatibility_reply(messages, params.flag("verbose")))
}

/// Body of `PUT /config`: Confluent sends `compatibility`; `compatibilityLevel` is accepted too.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfigUpdate {
    compatibility: Option<String>,
    compatibility_level: Option<String>,
}

impl ConfigUpdate {
    fn level(&self) -> Result<Level, ApiError> {
        let text = self
            .compatibility
            .as_deref()
            .or(self.compatibility_level.as_deref())
            .ok_or_else(|| {
                ApiError::invalid_level(
                    "Missing compatibility level: send {\"compatibility\": \"FULL\"}.",
                )
            })?;
        text.parse().map_err(ApiError::invalid_level)
    }
}

/// The subject of `/config/{subject}` and `/mode/{subject}`; `None` on `/config` and `/mode`.
type SubjectPath = Option<Segments<String>>;

fn subject_of(subject: &SubjectPath) -> Option<&str> {
    subject.as_ref().map(|Segments(s)| s.as_str())
}

async fn get_config(
    State(app): State<AppState>,
    subject: SubjectPath,
    params: Params,
) -> ApiResult {
    let default_to_global = params.flag("defaultToGlobal");
    let level = app
        .fresh(|s| match subject_of(&subject) {
            None => Ok(s.global_level().unwrap_or_default()),
            Some(subject) => match s.subject_level(subject) {
                Some(level) => Ok(level),
                None if default_to_global => Ok(s.level(subject)),
                None => Err(ApiError::subject_level_not_configured(subject)),
            },
        })
        .await?;
    Ok(reply(json!({ "compatibilityLevel": level })))
}

async fn put_config(
    State(app): State<AppState>,
    subject: SubjectPath,
    Body(update): Body<ConfigUpdate>,
) -> ApiResult {
    let level = update.level()?;
    app.set_level(subject_of(&subject), level).await?;
    Ok(reply(json!({ "compatibility": level })))
}

async fn delete_config(State(app): State<AppState>, subject: SubjectPath) -> ApiResult {
    let previous = app.clear_level(subject_of(&subject)).await?;
    Ok(reply(json!({ "compatibilityLevel": previous })))
}

#[derive(serde::Deserialize)]
struct ModeUpdate {
    mode: Option<String>,
}

impl ModeUpdate {
    fn mode(&self) -> Result<Mode, ApiError> {
        let text = self
            .mode
            .as_deref()
            .ok_or_else(|| ApiError::invalid_mode("Missing mode: send {\"mode\": \"IMPORT\"}."))?;
        text.parse().map_err(ApiError::invalid_mode)
    }
}

async fn get_mode(State(app): State<AppState>, subject: SubjectPath, params: Params) -> ApiResult {
    let default_to_global = params.flag("defaultToGlobal");
    let mode = app
        .fresh(|s| match subject_of(&subject) {
            None => Ok(s.global_mode().unwrap_or_default()),
            Some(subject) => match s.subject_mode(subject) {
                Some(mode) => Ok(mode),
                None if default_to_global => Ok(s.mode(subject)),
                None => Err(ApiError::subject_mode_not_configured(subject)),
            },
        })
        .await?;
    Ok(reply(json!({ "mode": mode })))
}

async fn put_mode(
    State(app): State<AppState>,
    subject: SubjectPath,
    params: Params,
    Body(update): Body<ModeUpdate>,
) -> ApiResult {
    let mode = update.mode()?;
    app.set_mode(subject_of(&subject), mode, params.flag("force"))
        .await?;
    Ok(reply(json!({ "mode": mode })))
}

async fn delete_mode(
    State(app): State<AppState>,
    Segments(subject): Segments<String>,
) -> ApiResult {
    let previous = app.clear_mode(&subject).await?;
    Ok(reply(json!({ "mode": previous })))
}
