//! Helpers of the operator's integration tests: the operator as a process, Consumers and their
//! Deployments on the test stack's real API server.
#![allow(dead_code, clippy::unwrap_used)] // each test binary uses a part; tests

pub mod load;

use std::future::Future;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use rivulet_consumer_autoscaler::crd::{Condition, Consumer};
use rivulet_testkit::widgets::{Process, binary, free_port};

/// An operator process and its log file.
pub struct Operator {
    /// The process (killed when dropped).
    pub process: Process,
    /// Its stdout and stderr.
    pub log: PathBuf,
}

/// Starts an operator replica for `namespace` (its Lease there too), with `extra` flags.
pub fn start(namespace: &str, lease: &str, extra: &[&str]) -> Operator {
    let port = free_port();
    let log = std::env::temp_dir().join(rivulet_testkit::unique("autoscaler-log"));
    let file = std::fs::File::create(&log).unwrap();
    let kubeconfig = rivulet_testkit::kube::kubeconfig();
    let child = Command::new(binary("consumer-autoscaler"))
        .args(["--kubeconfig", kubeconfig.to_str().unwrap()])
        .args([
            "--namespace",
            namespace,
            "--lease-namespace",
            namespace,
            "--lease-name",
            lease,
        ])
        .args([
            "--lease-duration-ms",
            "2000",
            "--lease-renew-deadline-ms",
            "1500",
            "--lease-retry-period-ms",
            "300",
        ])
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--resync-seconds",
            "2",
        ])
        .args(extra)
        .env(
            "RUST_LOG",
            std::env::var("AUTOSCALER_TEST_LOG").unwrap_or_else(|_| "info".into()),
        )
        .env_remove("KUBECONFIG")
        .stdout(Stdio::from(file.try_clone().unwrap()))
        .stderr(Stdio::from(file))
        .spawn()
        .expect("spawning consumer-autoscaler");
    Operator {
        process: Process { child, port },
        log,
    }
}

impl Operator {
    /// Its log so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until it leads (its `rivulet_autoscaler_leader` gauge).
    pub async fn leading(&self) {
        self.process
            .wait_ok("/readyz", Duration::from_secs(60))
            .await;
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.process.metric("rivulet_autoscaler_leader").await != 1.0 {
            assert!(
                Instant::now() < deadline,
                "not the leader in 60 s:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The CRD installed (once per API server) and a namespace of the test's own.
pub async fn setup(prefix: &str) -> (kube::Client, String) {
    let client = rivulet_testkit::kube::client().await;
    rivulet_testkit::kube::install_crd(&client, &rivulet_consumer_autoscaler::crd::definition())
        .await;
    let ns = rivulet_testkit::kube::namespace(&client, prefix).await;
    (client, ns)
}

/// A Consumer `name` in `ns` from a JSON `spec`.
pub async fn create_consumer(
    client: &kube::Client,
    ns: &str,
    name: &str,
    spec: serde_json::Value,
) -> Consumer {
    let consumer: Consumer = serde_json::from_value(serde_json::json!({
        "apiVersion": "rivulet.io/v1alpha1",
        "kind": "Consumer",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec
    }))
    .unwrap();
    Api::<Consumer>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &consumer)
        .await
        .expect("create Consumer")
}

/// Merge-patches a Consumer's spec.
pub async fn patch_spec(client: &kube::Client, ns: &str, name: &str, spec: serde_json::Value) {
    Api::<Consumer>::namespaced(client.clone(), ns)
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": spec})),
        )
        .await
        .expect("patch Consumer");
}

/// The Deployments in `ns`, by name.
pub async fn deployments(client: &kube::Client, ns: &str) -> Vec<Deployment> {
    let mut items = Api::<Deployment>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    items.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    items
}

/// Waits (`within` at most) until `check` of the namespace's Deployments is `Ok`; fails with
/// its last `Err` and the operator's log.
pub async fn until<F, Fut>(op: &Operator, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let deadline = Instant::now() + within;
    loop {
        match check().await {
            Ok(()) => return,
            Err(why) => assert!(
                Instant::now() < deadline,
                "after {within:?}: {why}\n{}",
                op.logs()
            ),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The first container's environment of `d`.
pub fn env(d: &Deployment) -> std::collections::BTreeMap<String, String> {
    d.spec.template.spec.as_ref().unwrap().containers[0]
        .env
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|e| (e.name, e.value.unwrap_or_default()))
        .collect()
}

/// The first container's image of `d`.
pub fn image(d: &Deployment) -> String {
    d.spec.template.spec.as_ref().unwrap().containers[0]
        .image
        .clone()
        .unwrap_or_default()
}

/// A consumer's template: one container `app` of `image`.
pub fn template(image: &str) -> serde_json::Value {
    serde_json::json!({
        "replicas": 1,
        "selector": {"matchLabels": {"app": "orders"}},
        "template": {
            "metadata": {"labels": {"app": "orders"}},
            "spec": {"containers": [{"name": "app", "image": image}]}
        }
    })
}

/// Condition `type_` of Consumer `name`'s status (`None` until it has one).
pub async fn condition(consumers: &Api<Consumer>, name: &str, type_: &str) -> Option<Condition> {
    let status = consumers
        .get(name)
        .await
        .unwrap()
        .status
        .unwrap_or_default();
    status.conditions.into_iter().find(|c| c.type_ == type_)
}

/// The resourceVersions of the Deployments `names` (equal later: none was written).
pub async fn versions(api: &Api<Deployment>, names: &[&str]) -> Vec<Option<String>> {
    let mut out = Vec::new();
    for n in names {
        out.push(api.get(n).await.unwrap().metadata.resource_version);
    }
    out
}

/// Waits until the operator's `metric` (summed over its labels) has grown by `by`.
pub async fn grows(op: &Operator, metric: &str, by: f64) {
    let from = op.process.metric_sum(metric).await;
    until(op, Duration::from_secs(60), || async {
        let now = op.process.metric_sum(metric).await;
        if now >= from + by {
            Ok(())
        } else {
            Err(format!("{metric} is {now}, was {from}"))
        }
    })
    .await;
}
