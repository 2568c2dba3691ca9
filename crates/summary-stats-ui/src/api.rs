//! The HTTP API: `/api/v1/*`, the reference's read endpoints and the OpenAPI document.
//!
//! Every answer names the app, its version and the summary schema version that served it
//! (`served_by`), so a client can tell the legs of a canary apart. Fields a schema version does
//! not have are left out of its answers (a v1 UI has no defects); `null` means "no record
//! carried it". Mutations are not offered: nothing changes data through HTTP.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rivulet_contracts::Version;
use rivulet_contracts::summary::Totals;
use serde::Serialize;

use crate::index::{Index, MonthView};
use crate::query::{self, SummaryQuery};
use crate::state::{Freshness, Shared};

/// What the handlers share.
#[derive(Clone)]
pub struct Api {
    /// The data.
    pub shared: Arc<Shared>,
    /// The schema version served.
    pub version: Version,
    /// Rendered `/api/v1/summary` answers.
    pub cache: Arc<Cache>,
    /// The open `/api/v1/summary/stream` connections and their settings.
    pub streams: Arc<crate::stream::Streams>,
}

/// Rendered answers by query, valid while the data's generation stays the same. Only queries
/// for known SKUs are kept and the cache is emptied when it reaches [`Cache::LIMIT`] entries,
/// so arbitrary query strings cannot grow it.
#[derive(Default)]
pub struct Cache {
    answers: RwLock<HashMap<SummaryQuery, (u64, Bytes)>>,
}

impl Cache {
    /// Most answers kept.
    pub const LIMIT: usize = 4096;

    fn get(&self, query: &SummaryQuery, generation: u64) -> Option<Bytes> {
        let answers = self.answers.read().unwrap_or_else(|e| e.into_inner());
        let (at, body) = answers.get(query)?;
        (*at == generation).then(|| body.clone())
    }

    fn put(&self, query: SummaryQuery, generation: u64, body: Bytes) {
        let mut answers = self.answers.write().unwrap_or_else(|e| e.into_inner());
        if answers.len() >= Self::LIMIT {
            answers.clear();
        }
        answers.insert(query, (generation, body));
    }
}

/// The API routes.
pub fn router(api: Api) -> Router {
    Router::new()
        .route("/api/v1/summary", get(summary))
        .route("/api/v1/summary/stream", get(crate::stream::stream))
        .route("/api/v1/status", get(status))
        .route("/sku_names", get(sku_names))
        .route("/query/{sku}/{year}", get(query_year))
        .route("/results", get(results))
        .route("/openapi.json", get(openapi))
        .with_state(api)
}

/// Who answered.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct ServedBy {
    /// The binary.
    pub app: &'static str,
    /// Its version.
    pub version: &'static str,
    /// The summary schema version it reads and serves.
    pub schema_version: &'static str,
}

impl Api {
    pub(crate) fn served_by(&self) -> ServedBy {
        ServedBy {
            app: "summary-stats-ui",
            version: env!("CARGO_PKG_VERSION"),
            schema_version: self.version.label(),
        }
    }

    fn has(&self, at_least: Version) -> bool {
        self.version >= at_least
    }
}

#[derive(Serialize)]
struct FreshnessDto {
    last_update: Option<String>,
    lag: Option<i64>,
    caught_up: bool,
}

impl From<Freshness> for FreshnessDto {
    fn from(f: Freshness) -> Self {
        Self {
            last_update: f
                .last_update
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            lag: f.total_lag(),
            caught_up: f.caught_up,
        }
    }
}

/// A 400 or 404 with a message.
struct ApiError {
    status: StatusCode,
    message: String,
    served_by: ServedBy,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.message, "served_by": self.served_by });
        (self.status, Json(body)).into_response()
    }
}

impl Api {
    fn bad_request(&self, message: String) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message,
            served_by: self.served_by(),
        }
    }
}

// ---- GET /api/v1/summary -------------------------------------------------------------------

const DESCRIPTION: &str = "Monthly widget totals per SKU. totals are sums over the month's \
records (null: no record carried the field); coverage counts the records and those that \
carried defects and a cost; base_cost = hourly base cost of the year x working hours of the \
month (null until the year's cost is known); total_manufacturing_cost = sum of the SKUs' \
production_cost; complete = every SKU's records all carried a cost.";

#[derive(Serialize)]
struct SummaryDto<'a> {
    description: &'static str,
    served_by: ServedBy,
    freshness: FreshnessDto,
    data: Vec<MonthDto<'a>>,
}

#[derive(Serialize)]
pub(crate) struct MonthDto<'a> {
    year: i32,
    month: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    base_cost: Option<Option<i64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    total_manufacturing_cost: Option<Option<i64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    complete: Option<bool>,
    manufacturing: Vec<SkuDto<'a>>,
}

#[derive(Serialize)]
struct SkuDto<'a> {
    sku: &'a str,
    totals: TotalsDto,
    coverage: CoverageDto,
}

#[derive(Serialize)]
struct TotalsDto {
    manufactured_qty: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    defect_qty: Option<Option<i64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    production_cost: Option<Option<i64>>,
}

#[derive(Serialize)]
struct CoverageDto {
    records: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    records_with_defects: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    records_with_cost: Option<i64>,
}

impl Api {
    pub(crate) fn month_dto<'a>(&self, view: &'a MonthView) -> MonthDto<'a> {
        let v3 = self.has(Version::V3);
        MonthDto {
            year: view.year,
            month: view.month,
            base_cost: v3.then_some(view.base_cost),
            total_manufacturing_cost: v3.then_some(view.total_manufacturing_cost),
            complete: v3.then_some(view.complete),
            manufacturing: view
                .manufacturing
                .iter()
                .map(|s| SkuDto {
                    sku: &s.sku,
                    totals: self.totals_dto(&s.totals),
                    coverage: self.coverage_dto(&s.totals),
                })
                .collect(),
        }
    }

    fn totals_dto(&self, t: &Totals) -> TotalsDto {
        TotalsDto {
            manufactured_qty: t.manufactured_qty,
            defect_qty: self.has(Version::V2).then_some(t.defect_qty),
            production_cost: self.has(Version::V3).then_some(t.production_cost),
        }
    }

    fn coverage_dto(&self, t: &Totals) -> CoverageDto {
        CoverageDto {
            records: t.records,
            records_with_defects: self.has(Version::V2).then_some(t.records_with_defects),
            records_with_cost: self.has(Version::V3).then_some(t.records_with_cost),
        }
    }
}

async fn summary(State(api): State<Api>, RawQuery(raw): RawQuery) -> Response {
    let q = match query::summary(raw.as_deref()) {
        Ok(q) => q,
        Err(message) => return api.bad_request(message).into_response(),
    };
    // Read the generation first: an update racing this request makes the cached answer older
    // than its generation says, never newer, so it is recomputed next time.
    let generation = api.shared.generation();
    if let Some(body) = api.cache.get(&q, generation) {
        return json_bytes(body);
    }
    let freshness = api.shared.snapshot().into();
    let (views, cacheable) = {
        let index = api.shared.index();
        let known = q.sku.as_deref().is_none_or(|s| index.knows(s));
        (index.query(q.year, q.month, q.sku.as_deref()), known)
    };
    let body = SummaryDto {
        description: DESCRIPTION,
        served_by: api.served_by(),
        freshness,
        data: views.iter().map(|v| api.month_dto(v)).collect(),
    };
    match serde_json::to_vec(&body) {
        Ok(bytes) => {
            let bytes = Bytes::from(bytes);
            if cacheable {
                api.cache.put(q, generation, bytes.clone());
            }
            json_bytes(bytes)
        }
        Err(error) => {
            tracing::error!(%error, "Could not render an answer.");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

fn json_bytes(body: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

// ---- GET /api/v1/status --------------------------------------------------------------------

#[derive(Serialize)]
pub(crate) struct StatusDto {
    served_by: ServedBy,
    /// The summary topic served (the active backend colour's).
    source: String,
    freshness: FreshnessDto,
    skus: Vec<String>,
    years: Vec<i32>,
}

impl Api {
    /// The answer of `/api/v1/status` (also the stream's `status` event).
    pub(crate) fn status_dto(&self, index: &Index) -> StatusDto {
        StatusDto {
            served_by: self.served_by(),
            source: self.shared.source(),
            freshness: self.shared.snapshot().into(),
            skus: index.skus().map(str::to_owned).collect(),
            years: index.years(),
        }
    }
}

async fn status(State(api): State<Api>) -> Response {
    let dto = api.status_dto(&api.shared.index());
    Json(dto).into_response()
}

// ---- The reference's endpoints -------------------------------------------------------------

/// A row of the reference's `/query` and `/results`: one SKU in one month.
#[derive(Serialize)]
struct Row<'a> {
    sku: &'a str,
    year: i32,
    month: u32,
    manufactured_qty: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    defect_qty: Option<Option<i64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sku_manufacturing_cost: Option<Option<i64>>,
}

#[derive(Serialize)]
struct RowsDto<'a> {
    version: &'static str,
    served_by: ServedBy,
    freshness: FreshnessDto,
    data: Vec<Row<'a>>,
}

impl Api {
    /// A row; a month without data has 0 manufactured and null for the rest.
    fn row<'a>(&self, sku: &'a str, year: i32, month: u32, t: Option<&Totals>) -> Row<'a> {
        let t = t.copied().unwrap_or_default();
        let totals = self.totals_dto(&t);
        Row {
            sku,
            year,
            month,
            manufactured_qty: totals.manufactured_qty,
            defect_qty: totals.defect_qty,
            sku_manufacturing_cost: totals.production_cost,
        }
    }

    fn rows_body(&self, rows: Vec<Row<'_>>) -> Response {
        Json(RowsDto {
            version: self.version.label(),
            served_by: self.served_by(),
            freshness: self.shared.snapshot().into(),
            data: rows,
        })
        .into_response()
    }
}

#[derive(Serialize)]
struct SkuNamesDto {
    names: Vec<String>,
    version: &'static str,
    served_by: ServedBy,
}

async fn sku_names(State(api): State<Api>) -> Response {
    let names: Vec<String> = api.shared.index().skus().map(str::to_owned).collect();
    Json(SkuNamesDto {
        names,
        version: api.version.label(),
        served_by: api.served_by(),
    })
    .into_response()
}

async fn query_year(State(api): State<Api>, Path((sku, year)): Path<(String, String)>) -> Response {
    let year = match query::year(&year) {
        Ok(y) => y,
        Err(message) => return api.bad_request(message).into_response(),
    };
    let index = api.shared.index();
    if !index.knows(&sku) {
        return ApiError {
            status: StatusCode::NOT_FOUND,
            message: format!("unknown sku {sku:?}: GET /sku_names lists them"),
            served_by: api.served_by(),
        }
        .into_response();
    }
    let views = index.query(Some(year), None, Some(&sku));
    let rows = (1..=12)
        .map(|month| {
            let totals = views
                .iter()
                .find(|v| v.month == month)
                .and_then(|v| v.manufacturing.first())
                .map(|s| &s.totals);
            api.row(&sku, year, month, totals)
        })
        .collect();
    api.rows_body(rows)
}

async fn results(State(api): State<Api>) -> Response {
    let index: std::sync::RwLockReadGuard<'_, Index> = api.shared.index();
    let skus: Vec<&str> = index.skus().collect();
    let views = index.query(None, None, None);
    let rows = views
        .iter()
        .flat_map(|v| {
            let api = &api;
            skus.iter().map(move |&sku| {
                let totals = v
                    .manufacturing
                    .iter()
                    .find(|s| s.sku == sku)
                    .map(|s| &s.totals);
                api.row(sku, v.year, v.month, totals)
            })
        })
        .collect();
    api.rows_body(rows)
}

// ---- OpenAPI -------------------------------------------------------------------------------

/// The OpenAPI 3.1 document of this API.
pub const OPENAPI: &str = include_str!("../assets/openapi.json");

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use rivulet_contracts::summary::MonthKey;
    use tower::ServiceExt;

    async fn get(app: &Router, path: &str) -> (StatusCode, serde_json::Value) {
        let request = Request::get(path).body(Body::empty()).unwrap_or_default();
        let response = app.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await;
        (
            status,
            serde_json::from_slice(&body.unwrap_or_default()).unwrap_or_default(),
        )
    }

    fn key(sku: &str) -> MonthKey {
        MonthKey {
            year: 2020,
            month: 3,
            sku: sku.into(),
        }
    }

    #[tokio::test]
    async fn cached_answers_follow_every_change() {
        let shared = Arc::new(Shared::default());
        let app = router(Api {
            shared: shared.clone(),
            version: Version::V3,
            cache: Arc::default(),
            streams: Arc::new(crate::stream::Streams::new(
                1,
                std::time::Duration::ZERO,
                std::time::Duration::from_secs(15),
                tokio_util::sync::CancellationToken::new(),
            )),
        });
        let qty = |body: &serde_json::Value| {
            body["data"][0]["manufacturing"][0]["totals"]["manufactured_qty"].as_i64()
        };
        shared.update(|i| {
            i.upsert(
                key("A"),
                Totals {
                    manufactured_qty: 5,
                    records: 1,
                    ..Totals::default()
                },
            )
        });
        let path = "/api/v1/summary?year=2020&month=3";
        assert_eq!(qty(&get(&app, path).await.1), Some(5));
        assert_eq!(qty(&get(&app, path).await.1), Some(5), "from the cache");
        shared.update(|i| {
            i.upsert(
                key("A"),
                Totals {
                    manufactured_qty: 9,
                    records: 2,
                    ..Totals::default()
                },
            )
        });
        assert_eq!(
            qty(&get(&app, path).await.1),
            Some(9),
            "a change is seen at once"
        );
        shared.set_lag(crate::state::FeedKind::Summary, 7);
        shared.set_lag(crate::state::FeedKind::BaseCosts, 0);
        assert_eq!(get(&app, path).await.1["freshness"]["lag"], 7);
        let (status, body) = get(&app, "/api/v1/summary?sku=NOPE").await;
        assert_eq!(
            (status, body["data"].as_array().map(Vec::len)),
            (StatusCode::OK, Some(0))
        );
    }
}
