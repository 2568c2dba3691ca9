//! The widget pipeline under test: isolated topics with the contracts registered, records
//! written as the generator's producers would, the backend and the UI as real processes, and
//! the ground truth computed from the generator's model.

use std::collections::{BTreeMap, HashMap};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rivulet_common::kafka::{ProducerSettings, ensure_topic, read_range};
use rivulet_common::{KafkaArgs, RegistryArgs, avro};
use rivulet_contracts::summary::{self, MonthKey, Totals};
use rivulet_contracts::{Version, raw};
use rivulet_raw_data_generator::model::Record;
use schema_registry_converter::async_impl::avro::AvroDecoder;
use schema_registry_converter::async_impl::schema_registry::post_schema;
use schema_registry_converter::schema_registry_common::{SchemaType, SuppliedSchema};

use crate::unique;

/// Totals by key.
pub type Truth = BTreeMap<MonthKey, Totals>;

/// The test stack's broker.
pub fn kafka() -> KafkaArgs {
    KafkaArgs::plaintext(crate::bootstrap())
}

/// The test stack's registry.
pub fn registry() -> RegistryArgs {
    RegistryArgs::new(crate::registry_url())
}

/// One test's topics and group.
pub struct Topics {
    /// Raw records.
    pub raw: String,
    /// Summaries.
    pub summary: String,
    /// Dead letters.
    pub dlq: String,
    /// Base costs.
    pub base_costs: String,
    /// Backend consumer group.
    pub group: String,
    /// Partitions of raw and summary.
    pub partitions: i32,
}

/// Creates fresh topics and registers every version of the raw, summary and base-cost schemas.
pub async fn setup(partitions: i32) -> Topics {
    let t = Topics {
        raw: unique("raw"),
        summary: unique("summary"),
        dlq: unique("dlq"),
        base_costs: unique("costs"),
        group: unique("backend"),
        partitions,
    };
    let admin = kafka().admin("test").expect("admin client");
    for (topic, n) in [
        (&t.raw, partitions),
        (&t.summary, partitions),
        (&t.dlq, 1),
        (&t.base_costs, 1),
    ] {
        ensure_topic(&admin, topic, n, &[]).await.expect("topic");
    }
    register_contracts(&t, &registry()).await;
    t
}

/// Registers every version of the raw, summary and base-cost schemas for `t`'s topics on
/// `registry`.
pub async fn register_contracts(t: &Topics, registry: &RegistryArgs) {
    let sr = registry.settings().expect("registry settings");
    let raw = [Version::V1, Version::V2, Version::V3].map(|v| (t.raw.clone(), raw::text(v)));
    let sum =
        [Version::V1, Version::V2, Version::V3].map(|v| (t.summary.clone(), summary::text(v)));
    let costs = [(t.base_costs.clone(), rivulet_contracts::base_cost::TEXT)];
    for (topic, text) in raw.into_iter().chain(sum).chain(costs) {
        post_schema(
            &sr,
            avro::value_subject(&topic),
            SuppliedSchema::new(None, SchemaType::Avro, text.into()),
        )
        .await
        .expect("registering a schema");
    }
}

/// A binary of the workspace, built by `cargo test --workspace` next to the test executables.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target directory");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build it (cargo build --bins) or run scripts/test",
        path.display()
    );
    path
}

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A child process with an HTTP port, killed when dropped (also when a test fails).
pub struct Process {
    /// The child.
    pub child: Child,
    /// Its HTTP port.
    pub port: u16,
}

impl Process {
    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Sends `signal` (e.g. `STOP`, `CONT`, `TERM`).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{signal}");
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    async fn metrics(&self) -> String {
        // Bounded: a stopped (SIGSTOP) process accepts the connection and never answers.
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("http client");
        client
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics body")
    }

    /// A sample from its `/metrics`.
    pub async fn metric(&self, name: &str) -> f64 {
        crate::metric_value(&self.metrics().await, name)
    }

    /// The sum of a metric over its label sets, from its `/metrics`.
    pub async fn metric_sum(&self, name: &str) -> f64 {
        crate::metric_sum(&self.metrics().await, name)
    }

    /// Waits until `path` answers 200.
    pub async fn wait_ok(&self, path: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(r) = reqwest::get(self.url(path)).await
                && r.status().is_success()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{path} not OK within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return; // already gone
        }
        let _ = Command::new("kill")
            .arg("-CONT")
            .arg(self.child.id().to_string())
            .status();
        self.kill();
    }
}

fn spawn(binary: PathBuf, args: &[&str], log_var: &str, default_log: &str) -> Process {
    let port = free_port();
    Command::new(binary)
        .args(args)
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--kafka-profile",
            "test",
        ])
        .args(["--kafka-bootstrap-servers", &kafka().bootstrap_servers])
        .args(if args.contains(&"--schema-registry-url") {
            vec![]
        } else {
            vec![
                "--schema-registry-url".to_owned(),
                registry().urls[0].clone(),
            ]
        })
        .env(
            "RUST_LOG",
            std::env::var(log_var).unwrap_or_else(|_| default_log.into()),
        )
        .env_remove("RUST_BACKTRACE")
        .spawn()
        .map(|child| Process { child, port })
        .expect("spawning a binary")
}

/// A backend writing summaries of `version`.
pub fn backend(t: &Topics, version: &str) -> Process {
    backend_coloured(t, version, "blue", &t.group, &t.summary)
}

/// A backend of one colour of a blue/green rollout: its own group and output topic.
pub fn backend_coloured(
    t: &Topics,
    version: &str,
    colour: &str,
    group: &str,
    output: &str,
) -> Process {
    backend_with(t, version, colour, group, output, &[])
}

/// A backend with `extra` arguments after the usual ones (a flag there replaces its usual value).
pub fn backend_with(
    t: &Topics,
    version: &str,
    colour: &str,
    group: &str,
    output: &str,
    extra: &[&str],
) -> Process {
    let mut args = vec![
        "run",
        "--input-topic",
        &t.raw,
        "--output-topic",
        output,
        "--dlq-topic",
        &t.dlq,
        "--group",
        group,
        "--colour",
        colour,
        "--commit-interval-ms",
        "200",
        "--schema-version",
        version,
    ];
    // A flag in `extra` replaces the usual one (clap refuses a flag given twice).
    let mut i = 1;
    while i + 1 < args.len() {
        if extra.contains(&args[i]) {
            args.drain(i..i + 2);
        } else {
            i += 2;
        }
    }
    args.extend_from_slice(extra);
    spawn(
        binary("backend"),
        &args,
        "BACKEND_TEST_LOG",
        "warn,rivulet_backend=info",
    )
}

/// A UI serving `version`.
pub fn ui(t: &Topics, version: &str) -> Process {
    ui_following(t, version, None)
}

/// A UI serving `version` from the summary topic `source` names (a backend's
/// `/api/v1/output`), or from `t.summary` without one.
pub fn ui_following(t: &Topics, version: &str, source: Option<&str>) -> Process {
    ui_with(t, version, source, &[])
}

/// [`ui_following`] with `extra` arguments (e.g. another `--schema-registry-url`).
pub fn ui_with(t: &Topics, version: &str, source: Option<&str>, extra: &[&str]) -> Process {
    let mut args = vec![
        "--summary-topic",
        &t.summary,
        "--base-costs-topic",
        &t.base_costs,
        "--schema-version",
        version,
    ];
    if let Some(url) = source {
        args.extend(["--source-url", url, "--source-poll-ms", "300"]);
    }
    args.extend_from_slice(extra);
    spawn(
        binary("summary-stats-ui"),
        &args,
        "UI_TEST_LOG",
        "warn,rivulet_summary_stats_ui=info",
    )
}

/// Writes `records`, each with the schema version `version_of` picks, keyed by SKU.
pub async fn produce(topic: &str, records: &[Record], version_of: impl Fn(&Record) -> Version) {
    Feed::new(topic).await.send(records, version_of).await;
}

/// A producer of raw records into one topic, for tests that write in many steps (a steady
/// rate): the registered ids are looked up once.
pub struct Feed {
    topic: String,
    producer: FutureProducer,
    ids: HashMap<Version, avro::RegisteredSchema>,
}

impl Feed {
    /// Looks up the registered raw schemas of `topic` (on the test stack's registry).
    pub async fn new(topic: &str) -> Feed {
        Feed::on(topic, &registry()).await
    }

    /// The same, on the registry `registry` names.
    pub async fn on(topic: &str, registry: &RegistryArgs) -> Feed {
        let sr = registry.settings().expect("registry settings");
        let mut ids = HashMap::new();
        for v in [Version::V1, Version::V2, Version::V3] {
            let schema = raw::schema(v).expect("schema");
            let found = avro::lookup(&sr, &avro::value_subject(topic), &schema).await;
            ids.insert(v, found.expect("registered raw schema"));
        }
        let producer: FutureProducer = kafka()
            .producer(&ProducerSettings::new("test-producer"))
            .expect("producer");
        Feed {
            topic: topic.to_owned(),
            producer,
            ids,
        }
    }

    /// Writes `records`, each with the version `version_of` picks, keyed by SKU; returns once
    /// every one is acknowledged.
    pub async fn send(&self, records: &[Record], version_of: impl Fn(&Record) -> Version) {
        let mut deliveries = Vec::new();
        for r in records {
            let v = version_of(r);
            let id = &self.ids[&v];
            let payload = avro::encode(id.id, &id.schema, raw::value(v, &r.raw())).expect("encode");
            let record = FutureRecord::to(&self.topic).key(&r.sku).payload(&payload);
            deliveries.push(
                self.producer
                    .send_result(record)
                    .map_err(|(e, _)| e)
                    .expect("enqueue"),
            );
        }
        for d in deliveries {
            d.await.expect("delivery").expect("delivered");
        }
    }
}

pub async fn produce_raw(topic: &str, key: &str, payload: Option<&[u8]>) {
    let producer: FutureProducer = kafka()
        .producer(&ProducerSettings::new("test-producer"))
        .expect("producer");
    let mut record = FutureRecord::<str, [u8]>::to(topic).key(key);
    if let Some(payload) = payload {
        record = record.payload(payload);
    }
    producer
        .send(record, Duration::from_secs(10))
        .await
        .map_err(|(e, _)| e)
        .expect("delivered");
}

/// The latest summary of every key in the summary topic, decoded.
pub async fn summaries(t: &Topics) -> Truth {
    let (topic, partitions) = (t.summary.clone(), t.partitions);
    let payloads = tokio::task::spawn_blocking(move || {
        let reader = kafka().reader("test-summaries").expect("reader");
        let mut latest = HashMap::new();
        for p in 0..partitions {
            read_range(&reader, &topic, p, 0, None, Duration::from_secs(30), |m| {
                let (Some(key), Some(payload)) = (m.key(), m.payload()) else {
                    return;
                };
                latest.insert(key.to_vec(), payload.to_vec());
            })
            .expect("reading summaries");
        }
        latest
    })
    .await
    .expect("reader thread");
    let decoder = AvroDecoder::new(registry().settings().expect("registry settings"));
    let mut out = BTreeMap::new();
    for payload in payloads.values() {
        let value = decoder
            .decode(Some(payload))
            .await
            .expect("decodable summary")
            .value;
        let (key, totals) = summary::from_value(&value).expect("a summary");
        out.insert(key, totals);
    }
    out
}

/// The exact totals of `records`, each written with the version `version_of` picks.
pub fn expected(records: &[Record], version_of: impl Fn(&Record) -> Version) -> Truth {
    let mut out = Truth::new();
    for r in records {
        let v = version_of(r);
        let key = MonthKey {
            year: r.year,
            month: r.month,
            sku: r.sku.clone(),
        };
        let t = out.entry(key).or_default();
        t.manufactured_qty += i64::from(r.manufactured_qty);
        t.records += 1;
        if v >= Version::V2 {
            t.defect_qty = Some(t.defect_qty.unwrap_or(0) + i64::from(r.defect_qty));
            t.records_with_defects += 1;
        }
        if v == Version::V3 {
            let cost = i64::from(r.manufactured_qty) * r.unit_cost;
            t.production_cost = Some(t.production_cost.unwrap_or(0) + cost);
            t.records_with_cost += 1;
        }
    }
    out
}

/// Reads the summaries until they equal `want` or 90 s pass; returns the last reading.
pub async fn wait_for(t: &Topics, want: &Truth) -> Truth {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let got = summaries(t).await;
        if &got == want || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Fails with only the keys whose totals differ (whole maps are too long to read).
pub fn assert_same(want: &Truth, got: &Truth, what: &str) {
    let diff: Vec<_> = want
        .iter()
        .filter(|(k, v)| got.get(*k) != Some(*v))
        .map(|(k, v)| (k, v, got.get(k)))
        .collect();
    let extra: Vec<_> = got.keys().filter(|k| !want.contains_key(*k)).collect();
    assert!(
        diff.is_empty() && extra.is_empty(),
        "{what}; differing (key, want, got): {diff:#?}; unexpected keys: {extra:?}"
    );
}

/// A month written by upgrading producers: days 1-10 v1, 11-20 v2, the rest v3.
pub fn by_day(r: &Record) -> Version {
    match r.day {
        1..=10 => Version::V1,
        11..=20 => Version::V2,
        _ => Version::V3,
    }
}

/// An emulated Kubernetes Service: a TCP forwarder on a port of its own to whichever local
/// port it points at now (`set`), as `backend-active` points at the active colour's pods.
pub struct Switch {
    /// Its port.
    pub port: u16,
    target: Arc<AtomicU16>,
    task: tokio::task::JoinHandle<()>,
}

impl Switch {
    /// A switch pointing at `port`.
    pub async fn start(port: u16) -> Switch {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let own = listener.local_addr().expect("address").port();
        let target = Arc::new(AtomicU16::new(port));
        let current = target.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let to = current.load(Ordering::SeqCst);
                tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(("127.0.0.1", to)).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        Switch {
            port: own,
            target,
            task,
        }
    }

    /// New connections go to `port`.
    pub fn set(&self, port: u16) {
        self.target.store(port, Ordering::SeqCst);
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        self.task.abort();
    }
}
