//! Helpers of the monitor's integration tests: the monitor as a process, the topics read the
//! way a consumer reads them (read_committed, independent of the monitor), and objects.
#![allow(dead_code, clippy::unwrap_used)] // each test binary uses a part; tests

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ObjectMeta, PostParams};
use rdkafka::message::{Headers, Message as _};
use rivulet_common::kafka::read_range;
use rivulet_testkit::widgets::{Process, binary, free_port, kafka};
use serde_json::Value;

/// A monitor process and its log file.
pub struct Monitor {
    /// The process (killed when dropped).
    pub process: Process,
    /// Its stdout and stderr.
    pub log: PathBuf,
}

/// How a test runs the monitor.
#[derive(Clone)]
pub struct Options {
    /// The namespace watched (and the Lease's).
    pub namespace: String,
    /// `--resources`.
    pub resources: String,
    /// Lease name and transactional id: replicas of one deployment share them.
    pub deployment: String,
    /// Kubeconfig.
    pub kubeconfig: PathBuf,
    /// Lease duration, renew deadline and retry period (ms): short, so that failover tests
    /// are quick.
    pub lease_ms: [u64; 3],
    /// More flags.
    pub extra: Vec<String>,
}

impl Options {
    /// A deployment of its own watching `resources` in `namespace`.
    pub fn new(namespace: &str, resources: &str) -> Self {
        Self {
            namespace: namespace.to_owned(),
            resources: resources.to_owned(),
            deployment: rivulet_testkit::unique("mon"),
            kubeconfig: rivulet_testkit::kube::kubeconfig(),
            lease_ms: [2000, 1500, 300],
            extra: Vec::new(),
        }
    }
}

/// The HMAC key file every test monitor uses.
pub fn key_file() -> PathBuf {
    let path = std::env::temp_dir().join(rivulet_testkit::unique("k8s-monitor-key"));
    std::fs::write(&path, rivulet_testkit::unique("redaction-key-for-tests")).unwrap();
    path
}

/// Starts a monitor replica.
pub fn start(options: &Options) -> Monitor {
    let port = free_port();
    let log = std::env::temp_dir().join(rivulet_testkit::unique("k8s-monitor-log"));
    let file = std::fs::File::create(&log).unwrap();
    let mut command = Command::new(binary("k8s-monitor"));
    command
        .args([
            "--namespace",
            &options.namespace,
            "--resources",
            &options.resources,
        ])
        .args(["--kubeconfig", options.kubeconfig.to_str().unwrap()])
        .args(["--redaction-key-file", key_file().to_str().unwrap()])
        .args([
            "--lease-name",
            &options.deployment,
            "--lease-namespace",
            &options.namespace,
        ])
        .args([
            "--transactional-id",
            &options.deployment,
            "--cluster-name",
            "test",
        ])
        .args([
            "--lease-duration-ms",
            &options.lease_ms[0].to_string(),
            "--lease-renew-deadline-ms",
            &options.lease_ms[1].to_string(),
            "--lease-retry-period-ms",
            &options.lease_ms[2].to_string(),
        ])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args([
            "--kafka-bootstrap-servers",
            &kafka().bootstrap_servers,
            "--kafka-profile",
            "test",
        ])
        .args(["--partitions", "3"])
        .args(&options.extra)
        .env(
            "RUST_LOG",
            std::env::var("MONITOR_TEST_LOG").unwrap_or_else(|_| "info".into()),
        )
        .env_remove("KUBECONFIG")
        .stdout(Stdio::from(file.try_clone().unwrap()))
        .stderr(Stdio::from(file));
    let child = command.spawn().expect("spawning k8s-monitor");
    Monitor {
        process: Process { child, port },
        log,
    }
}

impl Monitor {
    /// Waits for `/readyz`.
    pub async fn ready(&self) {
        self.process
            .wait_ok("/readyz", Duration::from_secs(60))
            .await;
    }

    /// Whether it leads now (its `leader` gauge).
    pub async fn leads(&self) -> bool {
        // Not listening yet (starting) or not answering (stopped) counts as not leading.
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let Ok(response) = client.get(self.process.url("/metrics")).send().await else {
            return false;
        };
        let text = response.text().await.unwrap_or_default();
        rivulet_testkit::metric_value(&text, "rivulet_k8s_monitor_leader") == 1.0
    }

    /// Waits until it leads and has listed everything.
    pub async fn leading(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.leads().await {
            assert!(
                Instant::now() < deadline,
                "not the leader within 60 s:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.ready().await;
    }

    /// Waits (`within` at most) until `done` holds for `metric`: a sample with its labels
    /// (`name{a="b"}`) or, without labels, the sum over them.
    pub async fn until(
        &self,
        metric: &str,
        what: &str,
        within: Duration,
        done: impl Fn(f64) -> bool,
    ) {
        let deadline = Instant::now() + within;
        loop {
            let value = if metric.contains('{') {
                self.process.metric(metric).await
            } else {
                self.process.metric_sum(metric).await
            };
            if done(value) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: {metric} is {value} after {within:?}:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits (`within` at most) until nothing waits to be published.
    pub async fn drained(&self, within: Duration) {
        self.until("rivulet_k8s_monitor_pending", "drained", within, |v| {
            v == 0.0
        })
        .await;
    }

    /// Its log so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// One message as a consumer sees it.
#[derive(Clone, Debug)]
pub struct Message {
    /// Key.
    pub key: String,
    /// JSON value (`None`: a tombstone).
    pub value: Option<Value>,
    /// The raw value.
    pub raw: Option<Vec<u8>>,
    /// Headers.
    pub headers: HashMap<String, String>,
}

impl Message {
    /// `event_type` of the value, or `TOMBSTONE`.
    pub fn event(&self) -> String {
        match &self.value {
            Some(v) => v["event_type"].as_str().unwrap_or("?").to_owned(),
            None => "TOMBSTONE".to_owned(),
        }
    }

    /// `(event, resourceVersion)`; the version only for ADDED and MODIFIED: a DELETED change
    /// carries the object's last state, whose version depends on whether the watch or a
    /// re-list saw the delete, and a tombstone has none.
    pub fn change(&self) -> (String, String) {
        let event = self.event();
        let rv = match event.as_str() {
            "ADDED" | "MODIFIED" => self.resource_version(),
            _ => String::new(),
        };
        (event, rv)
    }

    /// The published resourceVersion.
    pub fn resource_version(&self) -> String {
        self.headers
            .get("rivulet-k8s-resource-version")
            .cloned()
            .unwrap_or_default()
    }
}

/// Every committed message of `topic` whose key starts with `<namespace>/`, in partition
/// order (one key always lands in one partition, so per key in order).
pub async fn messages(topic: &str, namespace: &str) -> Vec<Message> {
    let topic = topic.to_owned();
    let prefix = format!("{namespace}/");
    tokio::task::spawn_blocking(move || {
        let reader = kafka()
            .reader(&rivulet_testkit::unique("test-reader"))
            .unwrap();
        let Ok(partitions) =
            rivulet_common::kafka::partition_ids(&reader, &topic, Duration::from_secs(10))
        else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for p in partitions {
            read_range(&reader, &topic, p, 0, None, Duration::from_secs(30), |m| {
                let key = m
                    .key()
                    .map(|k| String::from_utf8_lossy(k).into_owned())
                    .unwrap_or_default();
                if !key.starts_with(&prefix) {
                    return;
                }
                let headers = m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|x| {
                                (
                                    x.key.to_owned(),
                                    String::from_utf8_lossy(x.value.unwrap_or_default())
                                        .into_owned(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                out.push(Message {
                    key,
                    value: m
                        .payload()
                        .map(|p| serde_json::from_slice(p).expect("JSON value")),
                    raw: m.payload().map(<[u8]>::to_vec),
                    headers,
                });
            })
            .unwrap();
        }
        out
    })
    .await
    .unwrap()
}

/// Waits until `done` holds for the namespace's messages of `topic`; returns them.
pub async fn wait_for(
    topic: &str,
    namespace: &str,
    what: &str,
    done: impl Fn(&[Message]) -> bool,
) -> Vec<Message> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let got = messages(topic, namespace).await;
        if done(&got) {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not seen on {topic} within 90 s; got {:#?}",
            got.iter()
                .map(|m| (m.key.clone(), m.event(), m.resource_version()))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The state a compacted topic holds: key → resourceVersion of its latest message (keys whose
/// latest message is a tombstone are absent).
pub fn latest(messages: &[Message]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for m in messages {
        match m.value {
            Some(_) if m.event() != "DELETED" => {
                out.insert(m.key.clone(), m.resource_version());
            }
            _ => {
                out.remove(&m.key);
            }
        }
    }
    out
}

/// The cluster's ConfigMaps of `namespace`: key → resourceVersion.
pub async fn config_maps(client: &kube::Client, namespace: &str) -> BTreeMap<String, String> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    api.list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|c| {
            (
                format!("{namespace}/{}", c.metadata.name.unwrap()),
                c.metadata.resource_version.unwrap(),
            )
        })
        .collect()
}

/// Creates ConfigMap `name` with `data`; returns its resourceVersion.
pub async fn create_config_map(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    data: &str,
) -> String {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..Default::default()
        },
        data: Some([("value".to_owned(), data.to_owned())].into()),
        ..Default::default()
    };
    api.create(&PostParams::default(), &cm)
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap()
}

/// Sets ConfigMap `name`'s data; returns the new resourceVersion.
pub async fn update_config_map(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    data: &str,
) -> String {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let patch = serde_json::json!({"data": {"value": data}});
    api.patch(
        name,
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&patch),
    )
    .await
    .unwrap()
    .metadata
    .resource_version
    .unwrap()
}

/// Deletes ConfigMap `name`.
pub async fn delete_config_map(client: &kube::Client, namespace: &str, name: &str) {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    api.delete(name, &Default::default()).await.unwrap();
}

/// Whether `path`'s text contains `needle`.
pub fn file_contains(path: &Path, needle: &str) -> bool {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .contains(needle)
}
