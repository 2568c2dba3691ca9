//! The command line. Names follow the reference monitor where they make sense
//! (`--namespace`, `--resources`, `--poll-interval`, `K8S_MONITOR_*`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use rivulet_common::{KafkaArgs, LogArgs};
use rivulet_kube_common::{KubeArgs, LeaseArgs, Permission};

use crate::redact::{Redactor, Rule};
use crate::resources::{DEFAULT_RESOURCES, Selectors, Spec, Watched};
use crate::{Error, Result};

/// `k8s-monitor`'s command line.
#[derive(Debug, clap::Parser)]
#[command(
    name = "k8s-monitor",
    version,
    about = "Watches Kubernetes resources and publishes one redacted JSON message per change to Kafka."
)]
pub struct Cli {
    /// Logging.
    #[command(flatten)]
    pub log: LogArgs,
    /// The monitor.
    #[command(flatten)]
    pub config: Config,
}

/// How changes are published.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// One message per change (list + watch), keyed, exactly once.
    Watch,
    /// The reference monitor's envelope: every object of a type per namespace, every
    /// `--poll-interval` seconds.
    Snapshot,
}

/// What to watch and where to publish it.
#[derive(Clone, Debug, clap::Args)]
pub struct Config {
    /// Kafka.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// The API server.
    #[command(flatten)]
    pub kube: KubeArgs,
    /// The Lease the replicas elect a leader on.
    #[command(flatten)]
    pub lease: LeaseArgs,
    /// `watch` (one message per change) or `snapshot` (the reference's full lists).
    #[arg(long, env = "K8S_MONITOR_MODE", value_enum, default_value = "watch")]
    pub mode: Mode,
    /// Resource types: plurals of built-in types or `group/version/kind` (core: `v1/Kind`),
    /// comma-separated.
    #[arg(long, env = "K8S_MONITOR_RESOURCES", value_delimiter = ',', default_value = DEFAULT_RESOURCES)]
    pub resources: Vec<Spec>,
    /// Namespaces to watch (repeat or comma-separate); none means all namespaces.
    #[arg(
        long = "namespace",
        env = "K8S_MONITOR_NAMESPACE",
        value_delimiter = ','
    )]
    pub namespaces: Vec<String>,
    /// Only objects matching this label selector.
    #[arg(long, env = "K8S_MONITOR_LABEL_SELECTOR")]
    pub label_selector: Option<String>,
    /// Only objects matching this field selector.
    #[arg(long, env = "K8S_MONITOR_FIELD_SELECTOR")]
    pub field_selector: Option<String>,
    /// The `cluster` field of every message.
    #[arg(long, env = "K8S_MONITOR_CLUSTER_NAME", default_value = "default")]
    pub cluster_name: String,
    /// The HMAC key for redacted values (a mounted Secret); required when Secrets or
    /// `--redact` kinds are watched.
    #[arg(long, env = "K8S_MONITOR_REDACTION_KEY_FILE")]
    pub redaction_key_file: Option<PathBuf>,
    /// Also redact what a JSON pointer names in a kind: `group/kind:/json/pointer`
    /// (`core/ConfigMap:/data/token`); repeatable.
    #[arg(long = "redact", env = "K8S_MONITOR_REDACT", value_delimiter = ',')]
    pub redact: Vec<Rule>,
    /// Events older than this (seconds) when listed (at start, after a re-list) are not
    /// published; every Event seen on the watch is.
    #[arg(long, env = "K8S_MONITOR_MAX_EVENT_AGE", default_value_t = 300)]
    pub max_event_age: u64,
    /// `--mode snapshot`: seconds between two snapshots.
    #[arg(long, env = "K8S_MONITOR_POLL_INTERVAL", default_value_t = 30)]
    pub poll_interval: u64,
    /// The one `transactional.id` of this monitor deployment (default
    /// `k8s-monitor-<cluster-name>`): each new leader fences the previous one with it.
    #[arg(long, env = "K8S_MONITOR_TRANSACTIONAL_ID")]
    pub transactional_id: Option<String>,
    /// Elect a leader on a Lease (off: this replica always publishes; run one only).
    #[arg(long, env = "K8S_MONITOR_LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,
    /// At most this many states wait for the broker; past it the watches pause (the API
    /// server keeps the changes; a re-list catches up if the watch expires).
    #[arg(long, env = "K8S_MONITOR_MAX_PENDING", default_value_t = 100_000)]
    pub max_pending: usize,
    /// Changes per transaction at most.
    #[arg(long, env = "K8S_MONITOR_BATCH_SIZE", default_value_t = 1000)]
    pub batch_size: usize,
    /// Milliseconds to gather changes before a transaction starts (0: at once). A transaction
    /// costs the broker a fixed amount (partitions added, markers written) whatever its size:
    /// a short wait makes fewer, larger ones when changes come in streams.
    #[arg(long, env = "K8S_MONITOR_LINGER_MS", default_value_t = 25)]
    pub linger_ms: u64,
    /// The largest message the monitor writes (bytes); a topic's `max.message.bytes` lowers
    /// it. Bigger objects are published without `object`, flagged `truncated`.
    #[arg(
        long,
        env = "K8S_MONITOR_MAX_MESSAGE_BYTES",
        default_value_t = 1_000_000
    )]
    pub max_message_bytes: usize,
    /// Create missing topics (compacted; Events: delete policy). Off where topics are
    /// managed (Strimzi KafkaTopics).
    #[arg(long, env = "K8S_MONITOR_CREATE_TOPICS", default_value_t = true, action = clap::ArgAction::Set)]
    pub create_topics: bool,
    /// Partitions of created topics.
    #[arg(long, env = "K8S_MONITOR_PARTITIONS", default_value_t = 3)]
    pub partitions: i32,
    /// Health and metrics address.
    #[arg(long, env = "K8S_MONITOR_LISTEN", default_value = "0.0.0.0:8084")]
    pub listen: SocketAddr,
    /// Test-only fault injection: keep publishing after the Lease is lost, as a leader whose
    /// view of the Lease is stale (a long pause, a skewed clock) would; only the transactional
    /// fencing then stops it. Only in builds with the `testing` feature (scripts/test builds
    /// with it; release builds and images never have it).
    #[cfg(feature = "testing")]
    #[arg(long, env = "RIVULET_FAULT_IGNORE_LEASE_LOSS", hide = true)]
    pub fault_ignore_lease_loss: bool,
}

impl Config {
    /// Whether a lost Lease ends a term (always, but for the `testing` fault injection).
    pub fn heeds_lease_loss(&self) -> bool {
        #[cfg(feature = "testing")]
        return !self.fault_ignore_lease_loss;
        #[cfg(not(feature = "testing"))]
        true
    }

    /// The transactional id of the deployment.
    pub fn transactional_id(&self) -> String {
        self.transactional_id
            .clone()
            .unwrap_or_else(|| format!("k8s-monitor-{}", self.cluster_name))
    }

    /// `--label-selector` and `--field-selector`.
    pub fn selectors(&self) -> Selectors {
        Selectors {
            label: self.label_selector.clone(),
            field: self.field_selector.clone(),
        }
    }

    /// `--max-event-age`.
    pub fn max_event_age(&self) -> Duration {
        Duration::from_secs(self.max_event_age)
    }

    /// The redactor, with its key read when a watched kind needs one.
    pub fn redactor(&self, watched: &[Watched]) -> Result<Redactor> {
        let probe = Redactor::new(None, self.redact.clone());
        let needs = watched
            .iter()
            .find(|w| probe.redacts(&w.resource.group, &w.resource.kind));
        let key = match (&self.redaction_key_file, needs) {
            (Some(path), _) => Some(read_key(path)?),
            (None, Some(w)) => return Err(Error::NoRedactionKey(w.resource_type.clone())),
            (None, None) => None,
        };
        Ok(Redactor::new(key, self.redact.clone()))
    }

    /// Every permission the monitor needs: list and watch of each type where it is watched,
    /// and the Lease.
    pub fn permissions(&self, client: &kube::Client, watched: &[Watched]) -> Vec<Permission> {
        let mut wanted = crate::watch_permissions(watched, &self.namespaces);
        if self.leader_election {
            let ns = self
                .lease
                .lease_namespace
                .clone()
                .unwrap_or_else(|| client.default_namespace().to_owned());
            for verb in ["get", "create", "update"] {
                wanted.push(Permission::new(
                    verb,
                    "coordination.k8s.io",
                    "leases",
                    Some(&ns),
                ));
            }
        }
        wanted
    }
}

fn read_key(path: &PathBuf) -> Result<Vec<u8>> {
    let error = |reason: String| Error::RedactionKey {
        path: path.display().to_string(),
        reason,
    };
    let mut key = std::fs::read(path).map_err(|e| error(e.to_string()))?;
    // A key written with `echo` ends in a newline that is not part of it.
    while key.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        key.pop();
    }
    if key.len() < 16 {
        return Err(error(format!(
            "{} bytes; at least 16 are needed",
            key.len()
        )));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests
    use super::*;
    use clap::Parser;

    #[test]
    fn defaults_follow_the_reference() {
        let cli = Cli::try_parse_from(["k8s-monitor"]).unwrap();
        let c = cli.config;
        assert_eq!(c.resources.len(), 9);
        assert!(c.namespaces.is_empty());
        assert_eq!(c.poll_interval, 30);
        assert_eq!(c.mode, Mode::Watch);
        assert_eq!(c.transactional_id(), "k8s-monitor-default");
        let cli = Cli::try_parse_from([
            "k8s-monitor",
            "--namespace",
            "a,b",
            "--namespace",
            "c",
            "--resources",
            "configmaps,example.com/v1/Widget",
            "--redact",
            "core/ConfigMap:/data/token",
            "--leader-election",
            "false",
        ])
        .unwrap();
        assert_eq!(cli.config.namespaces, ["a", "b", "c"]);
        assert_eq!(cli.config.resources.len(), 2);
        assert!(!cli.config.leader_election);
        assert!(Cli::try_parse_from(["k8s-monitor", "--resources", "widgets"]).is_err());
    }
}
