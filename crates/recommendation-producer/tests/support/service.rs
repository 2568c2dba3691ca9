//! The service as a process against the test stack: a fresh database, fresh topics, the
//! binary started with them, and the HTTP and Kafka reads the tests make.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use rdkafka::Message;
use rivulet_common::KafkaArgs;
use rivulet_common::kafka::{ensure_topic, read_range};
use serde_json::Value;

use rivulet_testkit::synthetic::Cluster;

use super::{Server, free_port, serve};

pub fn kafka() -> KafkaArgs {
    KafkaArgs::plaintext(rivulet_testkit::bootstrap())
}

/// A fresh database on the test stack's PostgreSQL server.
pub async fn database() -> String {
    rivulet_testkit::postgres::database("rp").await
}

pub struct Service {
    pub child: Child,
    pub url: String,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn service(prometheus: &str, database: &str, topics: &[String; 3]) -> Service {
    service_with(prometheus, database, topics, &[])
}

pub fn service_with(
    prometheus: &str,
    database: &str,
    topics: &[String; 3],
    extra: &[&str],
) -> Service {
    let port = free_port();
    let format: &[&str] = if extra.contains(&"--format") {
        &[]
    } else {
        &["--format", "json"]
    };
    let child = Command::new(env!("CARGO_BIN_EXE_recommendation-producer"))
        .args(extra)
        .args(format)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args([
            "--database-url",
            database,
            "--datasource",
            &format!("prometheus-1={prometheus}"),
        ])
        .args([
            "--kafka-enabled",
            "--kafka-bootstrap-servers",
            &kafka().bootstrap_servers,
        ])
        .args([
            "--recommendations-topic",
            &topics[0],
            "--error-topic",
            &topics[1],
            "--summary-topic",
            &topics[2],
        ])
        .args(["--job-lease-secs", "6"])
        .env(
            "RUST_LOG",
            std::env::var("RP_TEST_LOG")
                .unwrap_or_else(|_| "warn,rivulet_recommendation_producer=info".into()),
        )
        .env_remove("RUST_BACKTRACE")
        .spawn()
        .unwrap();
    Service {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

pub async fn wait_ready(s: &Service) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !reqwest::get(format!("{}/readyz", s.url))
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(Instant::now() < deadline, "service not ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn get(url: String) -> (u16, Value) {
    let r = reqwest::get(url).await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

pub async fn post(url: String, body: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// Every message of a one-partition topic: (key, payload).
pub async fn raw_messages(topic: &str) -> Vec<(String, Vec<u8>)> {
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let reader = kafka().reader("test-reader").unwrap();
        let mut out = Vec::new();
        read_range(&reader, &topic, 0, 0, None, Duration::from_secs(30), |m| {
            let key = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
            out.push((key, m.payload().unwrap_or_default().to_vec()));
        })
        .unwrap();
        out
    })
    .await
    .unwrap()
}

/// The sum of a metric over its label sets, from the service's `/metrics`.
pub async fn metric(s: &Service, name: &str) -> f64 {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let text = client
        .get(format!("{}/metrics", s.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    rivulet_testkit::metric_sum(&text, name)
}

/// Every message of a one-partition JSON topic: (key, JSON).
pub async fn messages(topic: &str) -> Vec<(String, Value)> {
    raw_messages(topic)
        .await
        .into_iter()
        .map(|(k, payload)| (k, serde_json::from_slice(&payload).unwrap()))
        .collect()
}
/// The topic's messages once there are at least `n` (the summary follows the job's end), or
/// after 30 s.
pub async fn messages_at_least(topic: &str, n: usize) -> Vec<(String, Value)> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = messages(topic).await;
        if got.len() >= n || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

pub async fn topics() -> [String; 3] {
    let topics = [
        rivulet_testkit::unique("recs"),
        rivulet_testkit::unique("errors"),
        rivulet_testkit::unique("summary"),
    ];
    let admin = kafka().admin("test").unwrap();
    for t in &topics {
        ensure_topic(&admin, t, 1, &[]).await.unwrap();
    }
    topics
}

pub async fn wait_done(s: &Service, job: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, doc) = get(format!("{}/bulk?job_id={job}", s.url)).await;
        if doc["summary"]["status"] != "IN_PROGRESS" || Instant::now() > deadline {
            return doc["summary"].clone();
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
pub fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A ready service over a Prometheus serving `cluster`, with fresh topics and database.
pub struct Setup {
    /// The Prometheus (stopped when dropped).
    pub prometheus: Server,
    /// recommendations, error and summary topics.
    pub topics: [String; 3],
    /// The service (stopped when dropped).
    pub service: Service,
}

/// Starts everything a test of one service needs; `extra` goes to the service's command line.
pub async fn ready(cluster: &Cluster, extra: &[&str]) -> Setup {
    let prometheus = serve(cluster).await;
    let topics = topics().await;
    let db = database().await;
    let service = service_with(&prometheus.url, &db, &topics, extra);
    wait_ready(&service).await;
    Setup {
        prometheus,
        topics,
        service,
    }
}
