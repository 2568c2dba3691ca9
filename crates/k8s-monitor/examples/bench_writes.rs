//! The load of `scripts/bench-monitor` (a benchmark, not a test): writes ConfigMaps to the API
//! server at a fixed rate and, with an independent `read_committed` consumer, times each
//! write from the moment its API call returned to the moment its record (key and
//! resourceVersion; with `--snapshot`, the first snapshot listing that resourceVersion) was
//! received. Prints one JSON line of figures.
//!
//! To split that latency, the bench also watches the namespace itself (one more watch on the
//! API server, like the monitor's) and times each write to its watch event: `watch_p50_ms`,
//! `watch_p99_ms` are the API server's share, before any monitor or broker.
//!
//! With `--reference-kubectl`, it also plays the reference monitor, the anchor: every
//! `--poll-interval` seconds `kubectl get configmaps -o json` of the namespace, the whole list
//! published as one reference envelope to `--topic` (split into parts under 900 kB: the
//! reference sends one message and fails past the broker's limit), and the latencies are those
//! of the first snapshot listing each write's resourceVersion.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark driver: fail loudly

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{
    Api, ListParams, ObjectMeta, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use rivulet_common::KafkaArgs;
use rivulet_common::kafka::ConsumerSettings;
use rivulet_contracts::kubernetes::{Change, RESOURCE_VERSION_HEADER, Snapshot};
use rivulet_kube_common::KubeArgs;

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    kafka: KafkaArgs,
    #[command(flatten)]
    kube: KubeArgs,
    /// The namespace written (created if missing).
    #[arg(long)]
    namespace: String,
    /// ConfigMaps `bench-00000` ...
    #[arg(long, default_value_t = 10_000)]
    objects: usize,
    /// Writes per second.
    #[arg(long, default_value_t = 200.0)]
    rate: f64,
    /// `create` the objects, or `update` each once.
    #[arg(long, default_value = "create")]
    phase: String,
    /// Bytes of data per ConfigMap.
    #[arg(long, default_value_t = 256)]
    size: usize,
    /// Writes in flight at most.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// The topic carries the reference's snapshots, not one message per change.
    #[arg(long)]
    snapshot: bool,
    /// The topic followed (`--reference-kubectl`: the one it publishes to, created here).
    #[arg(long, default_value = "k8s-configmaps")]
    topic: String,
    /// Play the reference monitor with this kubectl.
    #[arg(long)]
    reference_kubectl: Option<std::path::PathBuf>,
    /// The reference's poll interval (seconds).
    #[arg(long, default_value_t = 30)]
    poll_interval: u64,
    /// Give up on missing records this long after the last write (seconds).
    #[arg(long, default_value_t = 90)]
    settle: u64,
}

type Seen = Arc<Mutex<HashMap<(String, String), Instant>>>;

/// Follows the topic from its end, noting when each (name, resourceVersion) first arrived.
fn follow(args: &Args, seen: Seen, bytes: Arc<AtomicU64>, stop: Arc<AtomicBool>) {
    let consumer: BaseConsumer = args
        .kafka
        // A 100 ms broker-side fetch wait unless BENCH_FETCH_WAIT_MS says otherwise. Tansu
        // answers a waiting fetch late when records arrive (measured with librdkafka's 500 ms
        // default: p50 166 ms, p99 304 ms write -> consumer, though the API server delivered
        // the watch event within 2 ms and the monitor committed within 75 ms); a 10 ms wait
        // has the fetches take most of the broker's CPU and delivery falls seconds behind
        // (broker CPU 32 s vs 9 s per 10,000 records); 100 ms gives p99 115 ms at 1.5x the
        // 500 ms wait's broker CPU.
        .consumer_config(&ConsumerSettings {
            fetch_wait_max: Some(Duration::from_millis(
                std::env::var("BENCH_FETCH_WAIT_MS")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(100),
            )),
            ..ConsumerSettings::new("bench-monitor", None)
        })
        .create()
        .expect("consumer");
    let topic = args.topic.as_str();
    let partitions =
        rivulet_common::kafka::partition_ids(&consumer, topic, Duration::from_secs(30))
            .expect("the monitor's topic (start the monitor first)");
    let mut list = TopicPartitionList::new();
    for p in partitions {
        let (_, high) = consumer
            .fetch_watermarks(topic, p, Duration::from_secs(10))
            .expect("watermarks");
        list.add_partition_offset(topic, p, Offset::Offset(high))
            .unwrap();
    }
    consumer.assign(&list).expect("assign");
    let prefix = format!("{}/", args.namespace);
    let snapshot = args.snapshot || args.reference_kubectl.is_some();
    let namespace = args.namespace.clone();
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            let Some(Ok(m)) = consumer.poll(Duration::from_millis(50)) else {
                continue;
            };
            let now = Instant::now();
            let Some(payload) = m.payload() else { continue };
            let mut found = Vec::new();
            if snapshot {
                let Ok(s) = serde_json::from_slice::<Snapshot>(payload) else {
                    continue;
                };
                if s.namespace.as_deref() != Some(namespace.as_str()) {
                    continue;
                }
                bytes.fetch_add(payload.len() as u64, Ordering::Relaxed);
                for r in &s.resources {
                    let meta = &r["metadata"];
                    if let (Some(n), Some(v)) =
                        (meta["name"].as_str(), meta["resourceVersion"].as_str())
                    {
                        found.push((n.to_owned(), v.to_owned()));
                    }
                }
            } else {
                let key = m.key().map(String::from_utf8_lossy).unwrap_or_default();
                let Some(name) = key.strip_prefix(&prefix) else {
                    continue;
                };
                bytes.fetch_add((payload.len() + key.len()) as u64, Ordering::Relaxed);
                let rv = m.headers().and_then(|h| {
                    h.iter()
                        .find(|x| x.key == RESOURCE_VERSION_HEADER)
                        .and_then(|x| x.value)
                        .map(|v| String::from_utf8_lossy(v).into_owned())
                });
                let rv = rv.or_else(|| {
                    serde_json::from_slice::<Change>(payload)
                        .ok()
                        .map(|c| c.resource_version)
                });
                if let Some(rv) = rv {
                    found.push((name.to_owned(), rv));
                }
            }
            let mut seen = seen.lock().unwrap();
            for k in found {
                seen.entry(k).or_insert(now);
            }
        }
    });
}

/// The reference monitor: a full `kubectl get -o json` every poll interval, published whole.
async fn reference(
    args: &Args,
    kubectl: std::path::PathBuf,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
    use rdkafka::producer::FutureRecord;
    let admin = args.kafka.admin("bench-reference")?;
    admin
        .create_topics(
            &[NewTopic::new(&args.topic, 1, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await?;
    let mut settings = rivulet_common::kafka::ProducerSettings::new("bench-reference");
    settings.acks_all = true;
    let producer = args.kafka.producer(&settings)?;
    let (topic, namespace, every) = (
        args.topic.clone(),
        args.namespace.clone(),
        Duration::from_secs(args.poll_interval.max(1)),
    );
    let kubeconfig = args.kube.kubeconfig.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        while !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            let mut command = tokio::process::Command::new(&kubectl);
            if let Some(k) = &kubeconfig {
                command.arg("--kubeconfig").arg(k);
            }
            let out = command
                .args(["get", "configmaps", "-n", &namespace, "-o", "json"])
                .output()
                .await
                .expect("kubectl");
            let list: serde_json::Value =
                serde_json::from_slice(&out.stdout).expect("kubectl's JSON");
            let items = list["items"].as_array().cloned().unwrap_or_default();
            let timestamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or_default();
            let mut parts: Vec<Vec<serde_json::Value>> = vec![Vec::new()];
            let mut size = 0;
            for item in items {
                let n = item.to_string().len();
                if size + n > 900_000 && !parts.last().is_some_and(Vec::is_empty) {
                    parts.push(Vec::new());
                    size = 0;
                }
                size += n;
                parts.last_mut().unwrap().push(item);
            }
            let count = parts.len() as u32;
            for (i, resources) in parts.into_iter().enumerate() {
                let envelope = Snapshot {
                    timestamp,
                    resource_type: "configmaps".into(),
                    namespace: Some(namespace.clone()),
                    resources,
                    part: (count > 1).then_some(i as u32 + 1),
                    parts: (count > 1).then_some(count),
                };
                let value = serde_json::to_vec(&envelope).unwrap();
                producer
                    .send(
                        FutureRecord::<str, [u8]>::to(&topic).payload(&value),
                        Duration::from_secs(30),
                    )
                    .await
                    .map_err(|(e, _)| e)
                    .expect("publishing a snapshot");
            }
        }
    });
    Ok(())
}

/// The bench's own watch of the namespace's ConfigMaps, from now on: when each
/// (name, resourceVersion) was first announced by the API server.
async fn probe(api: Api<ConfigMap>, seen: Seen, stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    let mut from = api
        .list_metadata(&ListParams::default().limit(1))
        .await?
        .metadata
        .resource_version
        .unwrap_or_default();
    tokio::spawn(async move {
        while !stop.load(Ordering::Relaxed) {
            let Ok(stream) = api.watch(&WatchParams::default().timeout(60), &from).await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let mut stream = std::pin::pin!(stream);
            while let Some(event) = stream.next().await {
                let now = Instant::now();
                let object = match event {
                    Ok(WatchEvent::Added(o) | WatchEvent::Modified(o) | WatchEvent::Deleted(o)) => {
                        o
                    }
                    Ok(WatchEvent::Bookmark(b)) => {
                        from = b.metadata.resource_version;
                        continue;
                    }
                    _ => break,
                };
                let (Some(name), Some(rv)) =
                    (object.metadata.name, object.metadata.resource_version)
                else {
                    continue;
                };
                from.clone_from(&rv);
                seen.lock().unwrap().entry((name, rv)).or_insert(now);
            }
        }
    });
    Ok(())
}

/// Milliseconds from each write's return to its entry in `seen`, sorted, and the last arrival.
fn delays(
    written: &[(String, String, Instant)],
    seen: &Seen,
    since: Instant,
) -> (Vec<f64>, Instant) {
    let seen = seen.lock().unwrap();
    let mut latencies = Vec::with_capacity(written.len());
    let mut last = since;
    for (name, rv, returned) in written {
        if let Some(at) = seen.get(&(name.clone(), rv.clone())) {
            // A record can arrive before the API's answer does: that is 0 ms after it.
            latencies.push(at.saturating_duration_since(*returned).as_secs_f64() * 1000.0);
            last = last.max(*at);
        }
    }
    latencies.sort_by(f64::total_cmp);
    (latencies, last)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return -1.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let client = rivulet_kube_common::client(&args.kube).await?;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    if namespaces.get_opt(&args.namespace).await?.is_none() {
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(args.namespace.clone()),
                ..Default::default()
            },
            ..Default::default()
        };
        namespaces.create(&PostParams::default(), &ns).await?;
    }
    let seen: Seen = Arc::default();
    let bytes = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    if let Some(kubectl) = &args.reference_kubectl {
        reference(&args, kubectl.clone(), stop.clone()).await?;
    }
    follow(&args, seen.clone(), bytes.clone(), stop.clone());

    let api: Api<ConfigMap> = Api::namespaced(client, &args.namespace);
    let watched: Seen = Arc::default();
    probe(api.clone(), watched.clone(), stop.clone()).await?;
    let limit = Arc::new(tokio::sync::Semaphore::new(args.concurrency.max(1)));
    // Each run writes values of its own: an update that changes nothing is no change (the API
    // server keeps the resourceVersion and sends no event).
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let data = format!("{nonce}-{}", "x".repeat(args.size));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..args.objects {
        let due = started + Duration::from_secs_f64(i as f64 / args.rate);
        tokio::time::sleep_until(due.into()).await;
        let permit = limit.clone().acquire_owned().await?;
        let (api, name, data, create) = (
            api.clone(),
            format!("bench-{i:05}"),
            format!("{data}{i}"),
            args.phase == "create",
        );
        tasks.spawn(async move {
            let _permit = permit;
            let result = if create {
                let cm = ConfigMap {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        ..Default::default()
                    },
                    data: Some([("value".to_owned(), data)].into()),
                    ..Default::default()
                };
                api.create(&PostParams::default(), &cm).await
            } else {
                let patch = serde_json::json!({"data": {"value": data}});
                api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
            };
            let returned = Instant::now();
            result.map(|cm| {
                (
                    name,
                    cm.metadata.resource_version.unwrap_or_default(),
                    returned,
                )
            })
        });
    }
    let mut written = Vec::with_capacity(args.objects);
    let mut errors = 0;
    while let Some(r) = tasks.join_next().await {
        match r? {
            Ok(w) => written.push(w),
            Err(error) => {
                if errors == 0 {
                    eprintln!("write failed (the first of the failures counted): {error}");
                }
                errors += 1;
            }
        }
    }
    let writes_done = Instant::now();
    let write_rate = written.len() as f64 / (writes_done - started).as_secs_f64();

    // Wait until every write was received (or the settle time passed).
    let deadline = writes_done + Duration::from_secs(args.settle);
    loop {
        let got = {
            let seen = seen.lock().unwrap();
            written
                .iter()
                .filter(|(n, rv, _)| seen.contains_key(&(n.clone(), rv.clone())))
                .count()
        };
        if got == written.len() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let (latencies, last) = delays(&written, &seen, started);
    let (watch, _) = delays(&written, &watched, started);
    let received = latencies.len();
    let span = (last - started).as_secs_f64();
    let figures = serde_json::json!({
        "phase": args.phase,
        "snapshot": args.snapshot || args.reference_kubectl.is_some(),
        "target_rate": args.rate,
        "write_rate": (write_rate * 10.0).round() / 10.0,
        "writes": written.len(),
        "write_errors": errors,
        "received": received,
        "missing": written.len() - received,
        "published_per_s": if span > 0.0 { (received as f64 / span * 10.0).round() / 10.0 } else { 0.0 },
        "p50_ms": (percentile(&latencies, 0.50) * 10.0).round() / 10.0,
        "p99_ms": (percentile(&latencies, 0.99) * 10.0).round() / 10.0,
        "watch_p50_ms": (percentile(&watch, 0.50) * 10.0).round() / 10.0,
        "watch_p99_ms": (percentile(&watch, 0.99) * 10.0).round() / 10.0,
        "max_ms": (latencies.last().copied().unwrap_or(-1.0) * 10.0).round() / 10.0,
        "bytes": bytes.load(Ordering::Relaxed),
        "bytes_per_change": bytes.load(Ordering::Relaxed) / (written.len().max(1) as u64),
    });
    println!("{figures}");
    Ok(())
}
