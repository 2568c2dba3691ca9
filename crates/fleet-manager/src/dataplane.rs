//! The data-plane clusters: one Kubernetes client per cluster (from its kubeconfig, made on
//! first use and kept), and the writes an instance needs. Writes are server-side applies of
//! objects named from the instance id, so repeating one is a no-op.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
};
use serde_json::Value;
use tokio::sync::Mutex;

use crate::catalog::Cluster;
use crate::strimzi::{MANAGER, POOL};

/// A data-plane call failed.
#[derive(Debug, thiserror::Error)]
pub enum PlaneError {
    /// No client could be made from the cluster's kubeconfig.
    #[error("cluster {0}: {1}")]
    Client(String, rivulet_kube_common::Error),
    /// The API server refused or could not be reached.
    #[error("cluster {0}: {1} {2}: {3}")]
    Api(String, &'static str, String, kube::Error),
}

fn resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kafka.strimzi.io", "v1beta2", kind),
        plural,
    )
}

mod cache;

use cache::KafkaCache;

/// The data plane.
#[derive(Clone, Default)]
pub struct DataPlane {
    clients: Arc<Mutex<HashMap<String, (kube::Client, KafkaCache)>>>,
}

impl std::fmt::Debug for DataPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataPlane").finish_non_exhaustive()
    }
}

/// One cluster.
pub struct Plane {
    id: String,
    client: kube::Client,
    kafkas: KafkaCache,
}

fn selector() -> String {
    format!("app.kubernetes.io/managed-by={MANAGER}")
}

impl DataPlane {
    /// The client of `cluster` (made on first use, with the watch of its Kafkas).
    pub async fn cluster(&self, cluster: &Cluster) -> Result<Plane, PlaneError> {
        let mut clients = self.clients.lock().await;
        if let Some((client, kafkas)) = clients.get(&cluster.cluster_id) {
            return Ok(Plane {
                id: cluster.cluster_id.clone(),
                client: client.clone(),
                kafkas: kafkas.clone(),
            });
        }
        let args = rivulet_kube_common::KubeArgs {
            kubeconfig: Some(cluster.kubeconfig.clone()),
            kube_context: None,
        };
        let client = rivulet_kube_common::client(&args)
            .await
            .map_err(|e| PlaneError::Client(cluster.cluster_id.clone(), e))?;
        let kafkas = KafkaCache::spawn(
            Api::all_with(client.clone(), &resource("Kafka", "kafkas")),
            selector(),
            cluster.cluster_id.clone(),
        );
        clients.insert(cluster.cluster_id.clone(), (client.clone(), kafkas.clone()));
        Ok(Plane {
            id: cluster.cluster_id.clone(),
            client,
            kafkas,
        })
    }
}

impl Plane {
    fn kafkas(&self, ns: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), ns, &resource("Kafka", "kafkas"))
    }

    fn pools(&self, ns: &str) -> Api<DynamicObject> {
        Api::namespaced_with(
            self.client.clone(),
            ns,
            &resource("KafkaNodePool", "kafkanodepools"),
        )
    }

    fn namespaces(&self) -> Api<Namespace> {
        Api::all(self.client.clone())
    }

    fn err(&self, verb: &'static str, what: &str) -> impl FnOnce(kube::Error) -> PlaneError {
        let id = self.id.clone();
        let what = what.to_owned();
        move |e| PlaneError::Api(id, verb, what, e)
    }

    /// Applies the namespace, the node pool and the Kafka (in that order).
    pub async fn apply(
        &self,
        namespace: &Value,
        pool: &Value,
        kafka: &Value,
    ) -> Result<(), PlaneError> {
        let ns = namespace["metadata"]["name"].as_str().unwrap_or_default();
        let params = PatchParams::apply(MANAGER).force();
        self.namespaces()
            .patch(ns, &params, &Patch::Apply(namespace))
            .await
            .map_err(self.err("apply", &format!("namespace {ns}")))?;
        self.pools(ns)
            .patch(POOL, &params, &Patch::Apply(pool))
            .await
            .map_err(self.err("apply", &format!("{ns}/KafkaNodePool {POOL}")))?;
        let name = kafka["metadata"]["name"].as_str().unwrap_or_default();
        self.kafkas(ns)
            .patch(name, &params, &Patch::Apply(kafka))
            .await
            .map_err(self.err("apply", &format!("{ns}/Kafka {name}")))?;
        Ok(())
    }

    /// Every Kafka the fleet manager made on this cluster, by namespace, cut to what
    /// `strimzi::progress` reads: the watch's copy while it is in step, else a list in pages
    /// of 250.
    pub async fn all_kafkas(&self) -> Result<HashMap<String, Value>, PlaneError> {
        if let Some(copy) = self.kafkas.snapshot() {
            return Ok(copy);
        }
        let api: Api<DynamicObject> =
            Api::all_with(self.client.clone(), &resource("Kafka", "kafkas"));
        let mut params = ListParams::default().labels(&selector()).limit(250);
        let mut out = HashMap::new();
        loop {
            let page = api
                .list(&params)
                .await
                .map_err(self.err("list", "Kafkas"))?;
            for o in &page.items {
                if let Some(ns) = o.metadata.namespace.clone() {
                    out.insert(ns, cache::compact(o));
                }
            }
            match page.metadata.continue_ {
                Some(token) if !token.is_empty() => params = params.continue_token(&token),
                _ => break,
            }
        }
        Ok(out)
    }

    /// One step of deleting instance `name`: the Kafka and the node pool first; once both are
    /// gone, the namespace. True once the namespace is gone too.
    pub async fn delete(&self, name: &str) -> Result<bool, PlaneError> {
        let dp = DeleteParams::background();
        let gone = |r: Result<(), kube::Error>| match r {
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            other => other,
        };
        let kafkas = self.kafkas(name);
        let pools = self.pools(name);
        gone(kafkas.delete(name, &dp).await.map(|_| ()))
            .map_err(self.err("delete", &format!("{name}/Kafka {name}")))?;
        gone(pools.delete(POOL, &dp).await.map(|_| ()))
            .map_err(self.err("delete", &format!("{name}/KafkaNodePool {POOL}")))?;
        let kafka_left = kafkas
            .get_opt(name)
            .await
            .map_err(self.err("get", &format!("{name}/Kafka {name}")))?;
        let pool_left = pools
            .get_opt(POOL)
            .await
            .map_err(self.err("get", &format!("{name}/KafkaNodePool {POOL}")))?;
        if kafka_left.is_some() || pool_left.is_some() {
            return Ok(false);
        }
        let namespaces = self.namespaces();
        let Some(ns) = namespaces
            .get_opt(name)
            .await
            .map_err(self.err("get", &format!("namespace {name}")))?
        else {
            return Ok(true);
        };
        if ns.metadata.deletion_timestamp.is_none() {
            gone(namespaces.delete(name, &dp).await.map(|_| ()))
                .map_err(self.err("delete", &format!("namespace {name}")))?;
        }
        Ok(false)
    }
}
