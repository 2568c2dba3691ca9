//! `/kafkas`: create, list (search, orderBy, pages), get, update, delete.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{App, Authed, OperationId, param, query};
use crate::auth::Caller;
use crate::errors::{ApiError, Code, Failure};
use crate::model::{KafkaRow, new_id};
use crate::quota::{DEVELOPER, STANDARD_BILLING};
use crate::search;
use crate::store::NewKafka;

/// Longest instance name.
pub const MAX_NAME: usize = 32;
/// Largest page.
pub const MAX_PAGE_SIZE: u32 = 100;

#[derive(Debug, Deserialize)]
struct CreateBody {
    name: Option<String>,
    cloud_provider: Option<String>,
    region: Option<String>,
    plan: Option<String>,
    reauthentication_enabled: Option<bool>,
}

#[derive(Debug, Deserialize)]
struct UpdateBody {
    owner: Option<String>,
    reauthentication_enabled: Option<bool>,
}

fn body<T: for<'de> Deserialize<'de>>(
    op: &OperationId,
    b: Result<Bytes, BytesRejection>,
) -> Result<T, Failure> {
    let bytes = b.map_err(|e| {
        let code = if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Code::MaximumFieldLength
        } else {
            Code::MalformedRequest
        };
        op.fail(ApiError::new(code, e.body_text()))
    })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        op.fail(ApiError::new(
            Code::MalformedRequest,
            format!("request body: {e}"),
        ))
    })
}

fn require_async(op: &OperationId, q: &[(String, String)]) -> Result<(), Failure> {
    if param(q, "async") == Some("true") {
        Ok(())
    } else {
        Err(op.fail(ApiError::new(Code::SyncActionNotSupported, "")))
    }
}

/// Checks an instance name: `^[a-z]([-a-z0-9]*[a-z0-9])?$`, at most 32 characters.
pub fn check_name(name: &str) -> Result<(), ApiError> {
    if name.is_empty() {
        return Err(ApiError::new(
            Code::MalformedKafkaClusterName,
            "name is required",
        ));
    }
    if name.chars().count() > MAX_NAME {
        return Err(ApiError::new(
            Code::MaximumFieldLength,
            format!("name is longer than {MAX_NAME} characters"),
        ));
    }
    let b = name.as_bytes();
    let ok = b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[b.len() - 1] != b'-';
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            Code::MalformedKafkaClusterName,
            "name must match ^[a-z]([-a-z0-9]*[a-z0-9])?$",
        ))
    }
}

/// The new request a create body describes, or why not.
fn new_kafka(app: &App, caller: &Caller, b: CreateBody) -> Result<NewKafka, ApiError> {
    let name = b.name.unwrap_or_default();
    check_name(&name)?;
    let catalog = &app.catalog;
    let provider = match &b.cloud_provider {
        Some(p) => catalog.provider(p).ok_or_else(|| {
            ApiError::new(
                Code::ProviderNotSupported,
                format!("cloud provider {p:?} is not supported"),
            )
        })?,
        None => catalog
            .default_provider()
            .ok_or_else(|| ApiError::new(Code::ProviderNotSupported, "no default provider"))?,
    };
    let region = match &b.region {
        Some(r) => provider.regions.iter().find(|x| x.name == *r),
        None => provider.regions.iter().find(|x| x.default),
    }
    .ok_or_else(|| {
        ApiError::new(
            Code::RegionNotSupported,
            format!(
                "region {:?} is not supported by {}",
                b.region.as_deref().unwrap_or(""),
                provider.name
            ),
        )
    })?;
    let (type_id, size_id) = match b.plan.as_deref() {
        Some(plan) => match plan.split_once('.') {
            Some((t, s)) => (t.to_owned(), Some(s.to_owned())),
            None => {
                return Err(ApiError::new(
                    Code::InstancePlanNotSupported,
                    format!("plan {plan:?} is not <instance type>.<size>"),
                ));
            }
        },
        // As the reference: standard if the caller has its quota, else developer.
        None => {
            let standard = app
                .quotas
                .allowance(caller, "standard", app.defaults)
                .is_ok()
                && region.supported_instance_type.contains_key("standard");
            (
                if standard { "standard" } else { DEVELOPER }.to_owned(),
                None,
            )
        }
    };
    let instance_type = catalog
        .instance_type(&type_id)
        .filter(|_| region.supported_instance_type.contains_key(&type_id))
        .ok_or_else(|| {
            ApiError::new(
                Code::InstanceTypeNotSupported,
                format!(
                    "instance type {type_id:?} is not offered in {}/{}",
                    provider.name, region.name
                ),
            )
        })?;
    let size = match &size_id {
        Some(s) => instance_type.sizes.iter().find(|x| x.id == *s),
        None => instance_type.sizes.first(),
    }
    .ok_or_else(|| {
        ApiError::new(
            Code::InstancePlanNotSupported,
            format!(
                "instance type {type_id} has no size {:?}",
                size_id.as_deref().unwrap_or("")
            ),
        )
    })?;
    let allowance = app.quotas.allowance(caller, &type_id, app.defaults)?;
    let now = Utc::now();
    Ok(NewKafka {
        id: new_id(now),
        name,
        owner: caller.username.clone(),
        organisation_id: caller.org_id.clone(),
        scope: caller.scope(),
        quota_scope: allowance.scope,
        quota_max: allowance.max,
        region_limit: region
            .supported_instance_type
            .get(&type_id)
            .and_then(|l| l.limit),
        cloud_provider: provider.name.clone(),
        region: region.name.clone(),
        multi_az: size.supported_az_modes.iter().any(|m| m == "multi"),
        instance_type: type_id.clone(),
        size_id: size.id.clone(),
        billing_model: STANDARD_BILLING.to_owned(),
        quota_consumed: size.quota_consumed,
        capacity_consumed: size.capacity_consumed,
        reauthentication_enabled: b.reauthentication_enabled.unwrap_or(true),
        now,
        expires_at: size
            .lifespan_seconds
            .and_then(|s| i64::try_from(s).ok())
            .map(|s| now + chrono::Duration::seconds(s)),
    })
}

fn show(app: &App, caller: &Caller, row: &KafkaRow) -> Value {
    row.to_json(&app.catalog, caller.is_admin)
}

/// `POST /kafkas?async=true`.
pub async fn create(
    State(app): State<Arc<App>>,
    auth: Authed,
    RawQuery(raw): RawQuery,
    b: Result<Bytes, BytesRejection>,
) -> Result<Response, Failure> {
    let op = &auth.op;
    require_async(op, &query(raw.as_deref()))?;
    let b: CreateBody = body(op, b)?;
    let new = new_kafka(&app, &auth.caller, b).map_err(|e| op.fail(e))?;
    let row = app.store.create(&new).await.map_err(|e| op.fail(e))?;
    tracing::info!(id = %row.id, name = %row.name, owner = %row.owner, plan = %format!("{}.{}", row.instance_type, row.size_id), "Kafka request accepted.");
    Ok((StatusCode::ACCEPTED, Json(show(&app, &auth.caller, &row))).into_response())
}

fn number(
    op: &OperationId,
    q: &[(String, String)],
    name: &str,
    default: u32,
    max: u32,
) -> Result<u32, Failure> {
    match param(q, name) {
        None | Some("") => Ok(default),
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(op.fail(ApiError::new(
                Code::BadRequest,
                format!("{name} must be a whole number from 1 to {max}, not {v:?}"),
            ))),
        },
    }
}

/// `GET /kafkas?page&size&orderBy&search`.
pub async fn list(
    State(app): State<Arc<App>>,
    auth: Authed,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, Failure> {
    let op = &auth.op;
    let q = query(raw.as_deref());
    let page = number(op, &q, "page", 1, 1_000_000)?;
    let size = number(op, &q, "size", MAX_PAGE_SIZE, MAX_PAGE_SIZE)?;
    let bad_search = |e: search::ParseError| op.fail(ApiError::new(Code::FailedToParseSearch, e.0));
    let filter = match param(&q, "search").map(str::trim) {
        None | Some("") => None,
        Some(s) => Some(search::parse(s).map_err(bad_search)?),
    };
    let order = search::order_by(param(&q, "orderBy"))
        .map_err(|e| op.fail(ApiError::new(Code::BadRequest, e.0)))?;
    let (rows, total) = app
        .store
        .list(&auth.caller.scope(), filter.as_ref(), &order, page, size)
        .await
        .map_err(|e| op.fail(e.into()))?;
    let items: Vec<Value> = rows.iter().map(|r| show(&app, &auth.caller, r)).collect();
    Ok(Json(json!({
        "kind": "KafkaRequestList",
        "page": page,
        "size": items.len(),
        "total": total,
        "items": items,
    })))
}

async fn visible(app: &App, auth: &Authed, id: &str) -> Result<KafkaRow, Failure> {
    app.store
        .get(id, Some(&auth.caller.scope()))
        .await
        .map_err(|e| auth.op.fail(e.into()))?
        .ok_or_else(|| auth.op.fail(ApiError::not_found(id)))
}

fn may_change(auth: &Authed, row: &KafkaRow) -> Result<(), Failure> {
    if row.owner == auth.caller.username || auth.caller.is_org_admin {
        Ok(())
    } else {
        Err(auth.op.fail(ApiError::new(
            Code::Forbidden,
            format!(
                "only the owner or an organisation admin may change Kafka instance {}",
                row.id
            ),
        )))
    }
}

/// `GET /kafkas/{id}`.
pub async fn get(
    State(app): State<Arc<App>>,
    auth: Authed,
    Path(id): Path<String>,
) -> Result<Json<Value>, Failure> {
    let row = visible(&app, &auth, &id).await?;
    Ok(Json(show(&app, &auth.caller, &row)))
}

/// `PATCH /kafkas/{id}`: `owner`, `reauthentication_enabled`.
pub async fn update(
    State(app): State<Arc<App>>,
    auth: Authed,
    Path(id): Path<String>,
    b: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, Failure> {
    let b: UpdateBody = body(&auth.op, b)?;
    if let Some(owner) = &b.owner
        && (owner.trim().is_empty() || owner.len() > 256)
    {
        return Err(auth.op.fail(ApiError::new(
            Code::Validation,
            "owner must be 1 to 256 characters",
        )));
    }
    let row = visible(&app, &auth, &id).await?;
    may_change(&auth, &row)?;
    let row = app
        .store
        .update(&id, b.owner.as_deref(), b.reauthentication_enabled)
        .await
        .map_err(|e| auth.op.fail(e.into()))?
        .ok_or_else(|| auth.op.fail(ApiError::not_found(&id)))?;
    Ok(Json(show(&app, &auth.caller, &row)))
}

/// `DELETE /kafkas/{id}?async=true`.
pub async fn delete(
    State(app): State<Arc<App>>,
    auth: Authed,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, Failure> {
    require_async(&auth.op, &query(raw.as_deref()))?;
    let row = visible(&app, &auth, &id).await?;
    may_change(&auth, &row)?;
    let requested = app
        .store
        .request_deletion(&id)
        .await
        .map_err(|e| auth.op.fail(e.into()))?;
    // Deletion already under way: the row as read answers.
    let row = match requested {
        Some(moved) => {
            tracing::info!(id = %id, by = %auth.caller.username, "Kafka deletion requested.");
            moved
        }
        None => row,
    };
    Ok((StatusCode::ACCEPTED, Json(show(&app, &auth.caller, &row))).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_reference_rule() {
        for ok in ["a", "my-kafka", "k1", &"a".repeat(32)] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for (bad, code) in [
            ("", Code::MalformedKafkaClusterName),
            ("1abc", Code::MalformedKafkaClusterName),
            ("abc-", Code::MalformedKafkaClusterName),
            ("Abc", Code::MalformedKafkaClusterName),
            ("a_b", Code::MalformedKafkaClusterName),
            ("ä", Code::MalformedKafkaClusterName),
            (&"a".repeat(33), Code::MaximumFieldLength),
        ] {
            assert_eq!(check_name(bad).unwrap_err().code, code, "{bad}");
        }
    }
}
