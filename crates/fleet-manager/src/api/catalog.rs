//! What the configuration offers: the API version, the OpenAPI document, the error
//! catalogue, cloud providers, regions, instance types, and (admins only) the clusters.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::{Value, json};

use super::{App, Authed, BASE, OperationId};
use crate::errors::{ApiError, Code, Failure};
use crate::workers::place;

/// `GET /api/kafkas_mgmt/v1`.
pub async fn version() -> Json<Value> {
    Json(json!({
        "kind": "APIVersion",
        "id": "v1",
        "href": BASE,
        "server_version": env!("CARGO_PKG_VERSION"),
        "collections": [
            {"id": "kafkas", "href": format!("{BASE}/kafkas"), "kind": "KafkaList"},
            {"id": "cloud_providers", "href": format!("{BASE}/cloud_providers"), "kind": "CloudProviderList"},
            {"id": "errors", "href": format!("{BASE}/errors"), "kind": "ErrorList"},
        ],
    }))
}

/// `GET /api/kafkas_mgmt/v1/openapi`.
pub async fn openapi() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi::DOCUMENT,
    )
}

/// `GET /errors`.
pub async fn errors() -> Json<Value> {
    let items: Vec<Value> = Code::ALL.iter().map(|c| c.entry()).collect();
    Json(
        json!({"kind": "ErrorList", "page": 1, "size": items.len(), "total": items.len(), "items": items}),
    )
}

/// `GET /errors/{id}`.
pub async fn error(
    Path(id): Path<String>,
    parts: axum::http::request::Parts,
) -> Result<Json<Value>, Failure> {
    let op: OperationId = super::operation_id(&parts);
    id.parse::<u16>()
        .ok()
        .and_then(Code::from_number)
        .map(|c| Json(c.entry()))
        .ok_or_else(|| op.fail(ApiError::new(Code::NotFound, format!("no error {id:?}"))))
}

fn list(kind: &str, items: Vec<Value>) -> Json<Value> {
    Json(
        json!({"kind": kind, "page": 1, "size": items.len(), "total": items.len(), "items": items}),
    )
}

/// `GET /cloud_providers`.
pub async fn providers(State(app): State<Arc<App>>, _auth: Authed) -> Json<Value> {
    let items = app
        .catalog
        .providers
        .iter()
        .map(|p| json!({"kind": "CloudProvider", "id": p.name, "name": p.name, "display_name": p.name, "enabled": true}))
        .collect();
    list("CloudProviderList", items)
}

/// Capacity units used per (cluster, instance type).
async fn used(app: &App, op: &OperationId) -> Result<HashMap<(String, String), i64>, Failure> {
    Ok(app
        .store
        .capacity_used()
        .await
        .map_err(|e| op.fail(e.into()))?
        .into_iter()
        .map(|(c, t, n)| ((c, t), n))
        .collect())
}

/// `GET /cloud_providers/{id}/regions`: each region's instance types, and whether a cluster
/// there has room for each size.
pub async fn regions(
    State(app): State<Arc<App>>,
    auth: Authed,
    Path(id): Path<String>,
) -> Result<Json<Value>, Failure> {
    let provider = app.catalog.provider(&id).ok_or_else(|| {
        auth.op.fail(ApiError::new(
            Code::NotFound,
            format!("no cloud provider {id:?}"),
        ))
    })?;
    let used = used(&app, &auth.op).await?;
    let items = provider
        .regions
        .iter()
        .map(|r| {
            let capacity: Vec<Value> = r
                .supported_instance_type
                .keys()
                .filter_map(|t| app.catalog.instance_type(t))
                .map(|t| {
                    let available: Vec<&str> = t
                        .sizes
                        .iter()
                        .filter(|s| {
                            let probe = crate::model::KafkaRow::probe(&provider.name, &r.name, &t.id, s);
                            place(&probe, &app.catalog.clusters, &used).is_some()
                        })
                        .map(|s| s.id.as_str())
                        .collect();
                    json!({"instance_type": t.id, "available_sizes": available, "max_capacity_reached": available.is_empty()})
                })
                .collect();
            json!({
                "kind": "CloudRegion", "id": r.name, "display_name": r.name, "enabled": true,
                "supported_instance_types": r.supported_instance_type.keys().collect::<Vec<_>>(),
                "capacity": capacity,
            })
        })
        .collect();
    Ok(list("CloudRegionList", items))
}

/// `GET /instance_types/{provider}/{region}`.
pub async fn instance_types(
    State(app): State<Arc<App>>,
    auth: Authed,
    Path((provider, region)): Path<(String, String)>,
) -> Result<Json<Value>, Failure> {
    let r = app.catalog.region(&provider, &region).ok_or_else(|| {
        auth.op.fail(ApiError::new(
            Code::NotFound,
            format!("no region {provider}/{region}"),
        ))
    })?;
    let types: Vec<Value> = r
        .supported_instance_type
        .keys()
        .filter_map(|t| app.catalog.instance_type(t))
        .map(|t| {
            let sizes: Vec<Value> = t
                .sizes
                .iter()
                .map(|s| {
                    let b = |q: &str| json!({"bytes": crate::model::bytes(q)});
                    json!({
                        "id": s.id, "display_name": s.display_name,
                        "ingress_throughput_per_sec": b(&s.ingress_throughput_per_sec),
                        "egress_throughput_per_sec": b(&s.egress_throughput_per_sec),
                        "total_max_connections": s.total_max_connections,
                        "max_data_retention_size": b(&s.max_data_retention_size),
                        "max_data_retention_period": s.max_data_retention_period,
                        "max_partitions": s.max_partitions,
                        "max_message_size": b(&s.max_message_size),
                        "max_connection_attempts_per_sec": s.max_connection_attempts_per_sec,
                        "min_in_sync_replicas": s.min_in_sync_replicas,
                        "replication_factor": s.replication_factor,
                        "supported_az_modes": s.supported_az_modes,
                        "quota_consumed": s.quota_consumed,
                        "capacity_consumed": s.capacity_consumed,
                        "lifespan_seconds": s.lifespan_seconds,
                        "maturity_status": s.maturity_status,
                    })
                })
                .collect();
            let models: Vec<Value> = t
                .supported_billing_models
                .iter()
                .map(|m| json!({"id": m.id}))
                .collect();
            json!({"id": t.id, "display_name": t.display_name, "supported_billing_models": models, "sizes": sizes})
        })
        .collect();
    Ok(Json(
        json!({"kind": "SupportedKafkaInstanceTypesList", "instance_types": types}),
    ))
}

/// `GET /clusters` (admins): the data-plane clusters and their capacity used. Never their
/// kubeconfigs.
pub async fn clusters(State(app): State<Arc<App>>, auth: Authed) -> Result<Json<Value>, Failure> {
    if !auth.caller.is_admin {
        return Err(auth.op.fail(ApiError::new(
            Code::Unauthorized,
            "only fleet-manager admins may list clusters",
        )));
    }
    let used = used(&app, &auth.op).await?;
    let items = app
        .catalog
        .clusters
        .iter()
        .map(|c| {
            let by_type: serde_json::Map<String, Value> = used
                .iter()
                .filter(|((id, _), _)| *id == c.cluster_id)
                .map(|((_, t), n)| (t.clone(), json!(n)))
                .collect();
            let total: i64 = by_type.values().filter_map(Value::as_i64).sum();
            json!({
                "kind": "Cluster", "id": c.cluster_id, "name": c.name,
                "cloud_provider": c.cloud_provider, "region": c.region, "multi_az": c.multi_az,
                "status": c.status, "schedulable": c.schedulable, "provider_type": c.provider_type,
                "supported_instance_type": c.supported_instance_type,
                "kafka_instance_limit": c.kafka_instance_limit,
                "capacity": c.capacity,
                "capacity_used": by_type,
                "capacity_used_total": total,
            })
        })
        .collect();
    Ok(list("ClusterList", items))
}
