//! Helpers for the registry's integration tests: registry processes on the shared broker,
//! each with its own `_schemas` topic, and a small JSON client.
#![allow(dead_code)]
#![allow(clippy::unwrap_used)] // tests and tools: a failed unwrap is a failed run

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub use rivulet_testkit::{bootstrap, unique};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A registry process.
pub struct Replica {
    child: Option<Child>,
    pub url: String,
    port: u16,
    pub topic: String,
    args: Vec<String>,
    log: PathBuf,
}

impl Replica {
    /// Starts a registry on a fresh topic.
    pub async fn start(extra: &[&str]) -> Replica {
        Self::start_on(&unique("_schemas"), extra).await
    }

    /// Starts a registry on `topic` (shared with other replicas or an earlier run).
    pub async fn start_on(topic: &str, extra: &[&str]) -> Replica {
        let port = free_port();
        let log = std::env::temp_dir().join(format!("{}.log", unique("registry")));
        let mut replica = Replica {
            child: None,
            url: format!("http://127.0.0.1:{port}"),
            port,
            topic: topic.to_owned(),
            args: extra.iter().map(|s| s.to_string()).collect(),
            log,
        };
        replica.spawn().await;
        replica
    }

    async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_schema-registry"))
            .arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--topic")
            .arg(&self.topic)
            .args(&self.args)
            .env("KAFKA_BOOTSTRAP_SERVERS", bootstrap())
            .env("RUST_LOG", "info,rivulet_schema_registry=debug")
            .env_remove("RUST_BACKTRACE")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start schema-registry");
        self.child = Some(child);
        self.wait_ready().await;
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!("registry exited with {status}: {}", self.logs());
            }
            if let Ok(r) = ::reqwest::get(format!("{}/readyz", self.url)).await
                && r.status() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("registry not ready in 60 s: {}", self.logs());
    }

    /// The process's log so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn pid(&self) -> String {
        self.child.as_ref().expect("running").id().to_string()
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} failed");
    }

    /// SIGSTOP: the process freezes mid-whatever.
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// SIGCONT.
    pub fn resume(&self) {
        self.signal("CONT");
    }

    /// Stops the process (SIGTERM, or SIGKILL with `hard`) and waits for it; returns whether
    /// it exited successfully.
    pub fn stop(&mut self, hard: bool) -> bool {
        let Some(mut child) = self.child.take() else {
            return false;
        };
        if hard {
            let _ = child.kill();
        } else {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
        }
        child.wait().is_ok_and(|status| status.success())
    }

    /// Starts the process again with the same port, topic and arguments.
    pub async fn restart(&mut self) {
        self.spawn().await;
    }

    /// Value of a metric line (`name` or `name{labels}`) from /metrics.
    pub async fn metric(&self, name: &str) -> f64 {
        let text = ::reqwest::get(format!("{}/metrics", self.url))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        rivulet_testkit::metric_value(&text, name)
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_ref() {
            let _ = Command::new("kill")
                .arg("-CONT")
                .arg(child.id().to_string())
                .status();
        }
        self.stop(true);
    }
}

/// The answer of an HTTP call: status, content type and JSON body (or the text as a string).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: Value,
}

impl Answer {
    /// The Confluent `error_code`.
    pub fn code(&self) -> u64 {
        self.body["error_code"].as_u64().unwrap_or(0)
    }
}

/// A raw HTTP call that returns status, content type and body whatever they are.
pub mod http {
    use super::Answer;
    use serde_json::Value;

    /// Sends `method url` with an optional raw body and headers.
    pub async fn call(
        method: &str,
        url: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let client = ::reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .unwrap();
        let mut request = client.request(method.parse().unwrap(), url);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/vnd.schemaregistry.v1+json")
                .body(body.to_owned());
        }
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let response = request.send().await.expect("request failed");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer {
            status,
            content_type,
            body,
        }
    }
}

/// JSON calls against one registry.
pub struct Api<'a> {
    pub base: &'a str,
}

impl Api<'_> {
    pub async fn get(&self, path: &str) -> Answer {
        http::call("GET", &format!("{}{path}", self.base), None, &[]).await
    }
    pub async fn post(&self, path: &str, body: &Value) -> Answer {
        http::call(
            "POST",
            &format!("{}{path}", self.base),
            Some(&body.to_string()),
            &[],
        )
        .await
    }
    pub async fn post_raw(&self, path: &str, body: &str) -> Answer {
        http::call("POST", &format!("{}{path}", self.base), Some(body), &[]).await
    }
    pub async fn put(&self, path: &str, body: &Value) -> Answer {
        http::call(
            "PUT",
            &format!("{}{path}", self.base),
            Some(&body.to_string()),
            &[],
        )
        .await
    }
    pub async fn delete(&self, path: &str) -> Answer {
        http::call("DELETE", &format!("{}{path}", self.base), None, &[]).await
    }
    /// Registers `schema` (a JSON value) under `subject`; returns the answer.
    pub async fn register(&self, subject: &str, schema: &Value) -> Answer {
        self.post(
            &format!("/subjects/{subject}/versions"),
            &serde_json::json!({ "schema": schema.to_string() }),
        )
        .await
    }
    /// Registers and returns the id, failing the test otherwise.
    pub async fn register_ok(&self, subject: &str, schema: &Value) -> u64 {
        let answer = self.register(subject, schema).await;
        assert_eq!(answer.status, 200, "{answer:?}");
        answer.body["id"].as_u64().unwrap()
    }
}

/// A record schema named `name` with `fields` (JSON values).
pub fn record(name: &str, fields: Value) -> Value {
    serde_json::json!({ "type": "record", "name": name, "namespace": "test.rivulet", "fields": fields })
}
