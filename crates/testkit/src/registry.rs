//! Registry processes on the test stack's broker, each with its own `_schemas` topic (or a
//! shared one, for replicas): for tests that stop, freeze or restart a registry without
//! touching the stack's shared one.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rivulet_common::RegistryArgs;

use crate::widgets::free_port;
use crate::{bootstrap, unique};

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
            .expect("registry process");
        let child = Command::new(crate::widgets::binary("schema-registry"))
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
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().expect("registry process"))
            {
                panic!("registry exited with {status}: {}", self.logs());
            }
            if let Ok(r) = reqwest::get(format!("{}/readyz", self.url)).await
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
            .expect("registry process");
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
        let text = reqwest::get(format!("{}/metrics", self.url))
            .await
            .expect("registry process")
            .text()
            .await
            .expect("registry process");
        crate::metric_value(&text, name)
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

impl Replica {
    /// Client arguments for this registry.
    pub fn args(&self) -> RegistryArgs {
        RegistryArgs::new(self.url.clone())
    }
}
