//! The command line (every flag also an environment variable).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use rivulet_common::{LogArgs, Secret};

use crate::strimzi::Patience;
use crate::workers::Settings;

/// `fleet-manager`'s command line.
#[derive(Debug, clap::Parser)]
#[command(
    name = "fleet-manager",
    version,
    about = "Kafka instances as a service: a kas-fleet-manager-compatible API over PostgreSQL, with workers that make each instance with Strimzi on a Kubernetes data plane."
)]
pub struct Cli {
    /// Logging.
    #[command(flatten)]
    pub log: LogArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Serve the API and run the workers.
    Serve(Box<Config>),
    /// Write a signing key (key.pem) and its JWKS (jwks.json) for local use.
    DevKeys {
        /// Directory to write them to.
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
    /// Print a token signed with a dev-keys key.
    DevToken(TokenArgs),
}

/// `dev-token`'s arguments.
#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    /// The key.pem dev-keys wrote.
    #[arg(long)]
    pub key: PathBuf,
    /// The `username` claim.
    #[arg(long)]
    pub username: String,
    /// The `org_id` claim.
    #[arg(long)]
    pub org_id: Option<String>,
    /// Set `is_org_admin`.
    #[arg(long)]
    pub org_admin: bool,
    /// Seconds the token is valid.
    #[arg(long, default_value_t = 3600)]
    pub ttl_secs: i64,
}

fn duration(text: &str) -> Result<Duration, String> {
    rivulet_kube_common::units::duration(text).map_err(|e| e.to_string())
}

/// How the fleet manager runs.
#[derive(Clone, Debug, clap::Args)]
pub struct Config {
    /// Address of the API (and /healthz, /readyz, /metrics).
    #[arg(long, env = "FLEET_LISTEN", default_value = "0.0.0.0:8086")]
    pub listen: SocketAddr,
    /// PostgreSQL URL.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<Secret>,
    /// File holding the PostgreSQL URL (a mounted Secret), instead of --database-url.
    #[arg(long, env = "DATABASE_URL_FILE", value_name = "PATH", value_parser = Secret::from_file, conflicts_with = "database_url")]
    pub database_url_file: Option<Secret>,
    /// Database connections at most.
    #[arg(long, env = "FLEET_DATABASE_CONNECTIONS", default_value_t = 10)]
    pub database_connections: u32,
    /// Seconds to wait for a database connection before answering 503.
    #[arg(long, env = "FLEET_DATABASE_TIMEOUT_SECS", default_value_t = 5)]
    pub database_timeout_secs: u64,
    /// Instance types and sizes (the reference's kafka-instance-types-configuration.yaml).
    #[arg(
        long,
        env = "FLEET_INSTANCE_TYPES",
        default_value = "/etc/fleet-manager/kafka-instance-types-configuration.yaml"
    )]
    pub instance_types: PathBuf,
    /// Cloud providers and regions (provider-configuration.yaml).
    #[arg(
        long,
        env = "FLEET_PROVIDERS",
        default_value = "/etc/fleet-manager/provider-configuration.yaml"
    )]
    pub providers: PathBuf,
    /// Data-plane clusters (dataplane-cluster-configuration.yaml).
    #[arg(
        long,
        env = "FLEET_CLUSTERS",
        default_value = "/etc/fleet-manager/dataplane-cluster-configuration.yaml"
    )]
    pub clusters: PathBuf,
    /// The quota-management list (quota-management-list-configuration.yaml).
    #[arg(
        long,
        env = "FLEET_QUOTA_LIST",
        default_value = "/etc/fleet-manager/quota-management-list-configuration.yaml"
    )]
    pub quota_list: PathBuf,
    /// The JWKS file bearer tokens are verified against (RS256).
    #[arg(long, env = "FLEET_JWKS_FILE")]
    pub jwks: PathBuf,
    /// Accept only tokens with this `iss`.
    #[arg(long, env = "FLEET_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Usernames of fleet-manager admins (comma-separated): `GET /clusters`.
    #[arg(long, env = "FLEET_ADMINS", value_delimiter = ',')]
    pub admins: Vec<String>,
    /// Quota units per instance type when the quota list gives none.
    #[arg(long, env = "FLEET_MAX_ALLOWED_INSTANCES", default_value_t = 1)]
    pub max_allowed_instances: u32,
    /// Developer instances per user.
    #[arg(
        long,
        env = "FLEET_MAX_ALLOWED_DEVELOPER_INSTANCES",
        default_value_t = 1
    )]
    pub max_allowed_developer_instances: u32,
    /// Run the workers (off: an API-only replica).
    #[arg(long, env = "FLEET_WORKERS", default_value_t = true, action = clap::ArgAction::Set)]
    pub workers: bool,
    /// This replica's name in the leases (default: the host name).
    #[arg(long, env = "FLEET_REPLICA_NAME")]
    pub replica_name: Option<String>,
    /// Lease length.
    #[arg(long, env = "FLEET_LEASE", default_value = "1m", value_parser = duration)]
    pub lease: Duration,
    /// Renew a held lease once it ends within this.
    #[arg(long, env = "FLEET_LEASE_RENEW_WITHIN", default_value = "30s", value_parser = duration)]
    pub lease_renew_within: Duration,
    /// How often each worker tries to take or renew its lease.
    #[arg(long, env = "FLEET_ELECTION_INTERVAL", default_value = "15s", value_parser = duration)]
    pub election_interval: Duration,
    /// How often a leading worker reconciles.
    #[arg(long, env = "FLEET_RECONCILE_INTERVAL", default_value = "30s", value_parser = duration)]
    pub reconcile_interval: Duration,
    /// An instance without a cluster this long fails.
    #[arg(long, env = "FLEET_PLACEMENT_TIMEOUT", default_value = "1h", value_parser = duration)]
    pub placement_timeout: Duration,
    /// An error condition Strimzi reports fails the instance once it has held this long.
    #[arg(long, env = "FLEET_FAILURE_GRACE", default_value = "2m", value_parser = duration)]
    pub failure_grace: Duration,
    /// An instance not ready this long after provisioning began fails.
    #[arg(long, env = "FLEET_PROVISIONING_TIMEOUT", default_value = "30m", value_parser = duration)]
    pub provisioning_timeout: Duration,
    /// Kafka version of new instances.
    #[arg(long, env = "FLEET_KAFKA_VERSION", default_value = "3.9.0")]
    pub kafka_version: String,
    /// Strimzi version recorded for new instances.
    #[arg(long, env = "FLEET_STRIMZI_VERSION", default_value = "0.45.0")]
    pub strimzi_version: String,
    /// Requests one reconcile takes at most.
    #[arg(long, env = "FLEET_WORKER_BATCH", default_value_t = 1000)]
    pub worker_batch: i64,
    /// Instances one reconcile works on at once.
    #[arg(long, env = "FLEET_WORKER_CONCURRENCY", default_value_t = 16)]
    pub worker_concurrency: usize,
}

fn chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl Config {
    /// The database URL, from either flag.
    pub fn database_url(&self) -> Option<&Secret> {
        Secret::either(self.database_url.as_ref(), self.database_url_file.as_ref())
    }

    /// The workers' settings.
    pub fn worker_settings(&self) -> Settings {
        Settings {
            replica: self.replica_name.clone().unwrap_or_else(|| {
                hostname::get()
                    .map(|h| h.to_string_lossy().into_owned())
                    .unwrap_or_else(|_| "fleet-manager".into())
            }),
            lease: self.lease,
            renew_within: self.lease_renew_within.min(self.lease),
            election_interval: self.election_interval,
            reconcile_interval: self.reconcile_interval,
            placement_timeout: chrono(self.placement_timeout),
            patience: Patience {
                grace: chrono(self.failure_grace),
                timeout: chrono(self.provisioning_timeout),
            },
            kafka_version: self.kafka_version.clone(),
            strimzi_version: self.strimzi_version.clone(),
            batch: self.worker_batch.max(1),
            concurrency: self.worker_concurrency.max(1),
        }
    }
}
