//! A stand-in for the Strimzi operator on the test API server, for the fleet manager's tests,
//! its benchmark and the local demo. It makes no Kafka brokers: it only reports on the
//! `Kafka` resources as Strimzi would (`status` Ready with listeners, or an error condition),
//! and, since the test API server runs no controller-manager, plays the namespace controller
//! too (a terminating namespace with no Strimzi resources left is finalized).
//!
//! The CRDs are made from the project's own JSON-schema subset (`k8s/schemas/strimzi`),
//! turned into the structural schemas the API server wants, with the status subresource.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams,
};
use kube::runtime::watcher;
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

/// The kinds made from the schema files: (kind, plural, short name).
const KINDS: [(&str, &str, &str); 2] = [
    ("Kafka", "kafkas", "k"),
    ("KafkaNodePool", "kafkanodepools", "knp"),
];

fn schema_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../k8s/schemas/strimzi")
}

/// A JSON-schema node as a structural OpenAPI v3 schema: `const` as a one-value `enum`, the
/// type of an enum-only node inferred, multi-type and `oneOf` nodes (and objects with no
/// fields named) as preserved unknown fields, `additionalProperties: false` and
/// `uniqueItems` dropped (the API server refuses both).
pub fn structural(node: &Value) -> Value {
    let Some(n) = node.as_object() else {
        return json!({"x-kubernetes-preserve-unknown-fields": true});
    };
    if n.contains_key("oneOf") || n.contains_key("anyOf") {
        return json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
    }
    let mut out = Map::new();
    let enumeration = n
        .get("enum")
        .cloned()
        .or_else(|| n.get("const").map(|c| json!([c])));
    let ty = match n.get("type") {
        Some(Value::String(t)) => Some(t.clone()),
        Some(_) => return json!({"x-kubernetes-preserve-unknown-fields": true}),
        None => enumeration
            .as_ref()
            .and_then(|e| e.get(0))
            .map(|v| match v {
                Value::Bool(_) => "boolean".to_owned(),
                Value::Number(_) => "number".to_owned(),
                _ => "string".to_owned(),
            }),
    };
    let Some(ty) = ty else {
        return json!({"x-kubernetes-preserve-unknown-fields": true});
    };
    out.insert("type".into(), json!(ty));
    if let Some(e) = enumeration {
        out.insert("enum".into(), e);
    }
    for key in [
        "required",
        "pattern",
        "minimum",
        "maximum",
        "minItems",
        "maxItems",
        "minLength",
        "maxLength",
        "description",
    ] {
        if let Some(v) = n.get(key) {
            out.insert(key.into(), v.clone());
        }
    }
    if let Some(items) = n.get("items") {
        out.insert("items".into(), structural(items));
    }
    if ty == "object" {
        match (n.get("properties"), n.get("additionalProperties")) {
            (Some(Value::Object(props)), _) => {
                let p: Map<String, Value> = props
                    .iter()
                    .map(|(k, v)| (k.clone(), structural(v)))
                    .collect();
                out.insert("properties".into(), Value::Object(p));
            }
            (_, Some(extra @ Value::Object(_))) => {
                let extra = structural(extra);
                if extra.get("type").is_some() {
                    out.insert("additionalProperties".into(), extra);
                } else {
                    out.insert("x-kubernetes-preserve-unknown-fields".into(), json!(true));
                }
            }
            _ => {
                out.insert("x-kubernetes-preserve-unknown-fields".into(), json!(true));
            }
        }
    }
    Value::Object(out)
}

/// The CRD of one kind from its schema file.
pub fn crd(kind: &str) -> CustomResourceDefinition {
    let (_, plural, short) = KINDS
        .iter()
        .find(|(k, _, _)| *k == kind)
        .unwrap_or_else(|| panic!("no Strimzi schema for {kind}"));
    let path = schema_dir().join(format!("{kind}.schema.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let schema: Value = serde_json::from_str(&text).expect("schema JSON");
    let mut root = structural(&schema);
    root["properties"]["apiVersion"] = json!({"type": "string"});
    root["properties"]["kind"] = json!({"type": "string"});
    root["properties"]["metadata"] = json!({"type": "object"});
    root["required"] = json!(["spec"]);
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.kafka.strimzi.io")},
        "spec": {
            "group": "kafka.strimzi.io",
            "scope": "Namespaced",
            "names": {
                "kind": kind, "listKind": format!("{kind}List"), "plural": plural,
                "singular": kind.to_lowercase(), "shortNames": [short],
            },
            "versions": [{
                "name": "v1beta2", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": root},
            }],
        },
    });
    serde_json::from_value(crd).expect("a CRD")
}

/// Installs the `Kafka` and `KafkaNodePool` CRDs and waits until they are served.
pub async fn install(client: &kube::Client) {
    for (kind, _, _) in KINDS {
        crate::kube::install_crd(client, &crd(kind)).await;
    }
}

fn resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kafka.strimzi.io", "v1beta2", kind),
        plural,
    )
}

/// What the stand-in reports for one Kafka (by its `rivulet.io/kafka-id` label).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Ready, with listeners.
    Ready,
    /// An error condition (`Ready=False`) with this reason.
    Fail(String),
    /// Nothing (Strimzi has not got to it).
    Silent,
}

/// Decides each Kafka's answer from its instance id.
pub type Decide = Arc<dyn Fn(&str) -> Answer + Send + Sync>;

/// Every Kafka ready.
pub fn always_ready() -> Decide {
    Arc::new(|_| Answer::Ready)
}

fn now() -> String {
    k8s_openapi::jiff::Timestamp::now().to_string()
}

fn status(kafka: &DynamicObject, answer: &Answer) -> Option<Value> {
    let generation = kafka.metadata.generation?;
    let name = kafka.metadata.name.clone()?;
    let ns = kafka.metadata.namespace.clone()?;
    let host = format!("{name}-kafka-bootstrap.{ns}.svc");
    Some(match answer {
        Answer::Ready => json!({
            "observedGeneration": generation,
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now()}],
            "listeners": [
                {"name": "plain", "bootstrapServers": format!("{host}:9092"), "addresses": [{"host": host, "port": 9092}]},
                {"name": "external", "bootstrapServers": format!("{host}:9094"), "addresses": [{"host": host, "port": 9094}]},
            ],
            "kafkaVersion": kafka.data["spec"]["kafka"]["version"],
            "clusterId": format!("standin-{name}"),
        }),
        Answer::Fail(reason) => json!({
            "observedGeneration": generation,
            "conditions": [{"type": "Ready", "status": "False", "reason": reason,
                            "message": "reported by the Strimzi stand-in", "lastTransitionTime": now()}],
        }),
        Answer::Silent => return None,
    })
}

fn answered(kafka: &DynamicObject) -> bool {
    kafka.data["status"]["observedGeneration"].as_i64() == kafka.metadata.generation
}

/// Runs the stand-in until `token` is cancelled: answers each new generation of every
/// `Kafka` in any namespace once `decide` has an answer for it (asked again every 100 ms
/// while it is silent), and finalizes empty terminating namespaces.
pub async fn run(client: kube::Client, decide: Decide, token: CancellationToken) {
    let kafkas: Api<DynamicObject> = Api::all_with(client.clone(), &resource("Kafka", "kafkas"));
    let namespaces = tokio::spawn(namespace_controller(client.clone(), token.clone()));
    let stream = watcher(kafkas.clone(), watcher::Config::default());
    let mut stream = std::pin::pin!(stream);
    let mut pending: HashMap<(String, String), DynamicObject> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            e = stream.next() => match e {
                Some(Ok(watcher::Event::Apply(k) | watcher::Event::InitApply(k))) => {
                    let key = (k.metadata.namespace.clone().unwrap_or_default(), k.metadata.name.clone().unwrap_or_default());
                    if answered(&k) {
                        pending.remove(&key);
                    } else {
                        pending.insert(key.clone(), k);
                        answer(&client, &decide, &mut pending, &key).await;
                    }
                }
                Some(Ok(watcher::Event::Delete(k))) => {
                    pending.remove(&(k.metadata.namespace.clone().unwrap_or_default(), k.metadata.name.clone().unwrap_or_default()));
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    eprintln!("strimzi stand-in: watch: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                None => break,
            },
            _ = tick.tick() => {
                let keys: Vec<_> = pending.keys().cloned().collect();
                for key in keys {
                    answer(&client, &decide, &mut pending, &key).await;
                }
            }
            () = token.cancelled() => break,
        }
    }
    namespaces.abort();
}

/// Patches the status of the pending Kafka `key` if `decide` has an answer for it.
async fn answer(
    client: &kube::Client,
    decide: &Decide,
    pending: &mut HashMap<(String, String), DynamicObject>,
    key: &(String, String),
) {
    let Some(k) = pending.get(key) else { return };
    let id = k
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("rivulet.io/kafka-id"))
        .cloned()
        .unwrap_or_default();
    let Some(status) = status(k, &decide(&id)) else {
        return;
    };
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &key.0, &resource("Kafka", "kafkas"));
    match api
        .patch_status(
            &key.1,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status})),
        )
        .await
    {
        Ok(_) => {
            pending.remove(key);
        }
        Err(e) => eprintln!("strimzi stand-in: status of {}/{}: {e}", key.0, key.1),
    }
}

/// Finalizes the fleet manager's terminating namespaces once they hold no Strimzi resources
/// any more (what the namespace controller of a real cluster would do after emptying them).
async fn namespace_controller(client: kube::Client, token: CancellationToken) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    loop {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
            () = token.cancelled() => return,
        }
        // Only the fleet manager's: another test's terminating namespace stays as it is.
        let mine =
            ListParams::default().labels("app.kubernetes.io/managed-by=rivulet-fleet-manager");
        let Ok(list) = namespaces.list(&mine).await else {
            continue;
        };
        for ns in list.items {
            if ns.metadata.deletion_timestamp.is_none() {
                continue;
            }
            let Some(name) = ns.metadata.name.clone() else {
                continue;
            };
            let mut empty = true;
            for (kind, plural, _) in KINDS {
                let api: Api<DynamicObject> =
                    Api::namespaced_with(client.clone(), &name, &resource(kind, plural));
                match api.list(&ListParams::default().limit(1)).await {
                    Ok(l) if l.items.is_empty() => {}
                    _ => empty = false,
                }
            }
            if !empty {
                continue;
            }
            let mut finalized = ns.clone();
            if let Some(spec) = finalized.spec.as_mut() {
                spec.finalizers = Some(Vec::new());
            }
            if let Err(e) = namespaces
                .replace_subresource("finalize", &name, &PostParams::default(), &finalized)
                .await
            {
                eprintln!("strimzi stand-in: finalize namespace {name}: {e}");
            }
        }
    }
}
