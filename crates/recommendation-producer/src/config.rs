//! Command line and environment.

use std::net::SocketAddr;
use std::time::Duration;

use rivulet_common::avro::RegistryArgs;
use rivulet_common::credentials::Scope;
use rivulet_common::{Credentials, KafkaArgs, LogArgs, Secret};

use crate::prometheus::{Reads, Windows};
use crate::publish::Topics;
use crate::wire::Format;

/// Bulk right-sizing jobs: container usage from Prometheus to recommendations on Kafka.
#[derive(Clone, Debug, clap::Parser)]
#[command(name = "recommendation-producer", version, about, long_about = None)]
pub struct Config {
    /// Logging.
    #[command(flatten)]
    pub log: LogArgs,
    /// Hosts a job's webhook may call (`host` for any port, or `host:port`), comma-separated.
    /// Empty (the default): webhooks are refused, so `POST /bulk` cannot make this service
    /// call arbitrary addresses (SSRF). Redirects are never followed.
    #[arg(long, env = "RECOMMENDER_WEBHOOK_ALLOW", value_delimiter = ',')]
    pub webhook_allow: Vec<String>,
    /// HTTP address of the API, `/healthz`, `/readyz` and `/metrics`.
    #[arg(long, env = "RECOMMENDER_LISTEN", default_value = "0.0.0.0:8083")]
    pub listen: SocketAddr,
    /// PostgreSQL URL of the job store (it may hold a password: never shown).
    #[arg(
        long,
        env = "DATABASE_URL",
        hide_env_values = true,
        required_unless_present = "database_url_file"
    )]
    pub database_url: Option<Secret>,
    /// File holding the PostgreSQL URL (a mounted Secret), instead of --database-url.
    #[arg(long, env = "DATABASE_URL_FILE", value_name = "PATH", value_parser = Secret::from_file, conflicts_with = "database_url")]
    pub database_url_file: Option<Secret>,
    /// Bearer token `POST /bulk` and `DELETE /bulk` require (turns authentication on; reads
    /// stay open unless --auth-scope all).
    #[arg(long, env = "RECOMMENDER_AUTH_TOKEN", hide_env_values = true)]
    pub auth_token: Option<Secret>,
    /// File holding the bearer token, instead of --auth-token.
    #[arg(long, env = "RECOMMENDER_AUTH_TOKEN_FILE", value_name = "PATH", value_parser = Secret::from_file, conflicts_with = "auth_token")]
    pub auth_token_file: Option<Secret>,
    /// Basic-auth user accepted like the token (with --auth-password or its file).
    #[arg(long, env = "RECOMMENDER_AUTH_USER", requires = "basic_password")]
    pub auth_user: Option<String>,
    /// Basic-auth password.
    #[arg(
        long,
        env = "RECOMMENDER_AUTH_PASSWORD",
        hide_env_values = true,
        requires = "auth_user",
        group = "basic_password"
    )]
    pub auth_password: Option<Secret>,
    /// File holding the basic-auth password, instead of --auth-password.
    #[arg(long, env = "RECOMMENDER_AUTH_PASSWORD_FILE", value_name = "PATH", value_parser = Secret::from_file, conflicts_with = "auth_password", requires = "auth_user", group = "basic_password")]
    pub auth_password_file: Option<Secret>,
    /// Which requests need credentials when authentication is on.
    #[arg(long, env = "RECOMMENDER_AUTH_SCOPE", value_enum, default_value_t = Scope::Writes)]
    pub auth_scope: Scope,
    /// Datasources as `name=url` (env: comma-separated), e.g. `prometheus-1=http://prometheus:9090`.
    #[arg(long = "datasource", env = "RECOMMENDER_DATASOURCES", value_delimiter = ',', value_parser = parse_pair, required = true)]
    pub datasources: Vec<(String, String)>,
    /// Bearer tokens as `name=token` (env: comma-separated).
    #[arg(long = "datasource-token", env = "RECOMMENDER_DATASOURCE_TOKENS", value_delimiter = ',', value_parser = parse_secret_pair, hide_env_values = true)]
    pub datasource_tokens: Vec<(String, Secret)>,
    /// Bearer tokens as `name=path` of a file holding the token (a mounted Secret).
    #[arg(long = "datasource-token-file", env = "RECOMMENDER_DATASOURCE_TOKEN_FILES", value_delimiter = ',', value_parser = parse_secret_file_pair)]
    pub datasource_token_files: Vec<(String, Secret)>,
    /// Basic credentials as `name=user:password` (env: comma-separated).
    #[arg(long = "datasource-basic", env = "RECOMMENDER_DATASOURCE_BASIC", value_delimiter = ',', value_parser = parse_secret_pair, hide_env_values = true)]
    pub datasource_basic: Vec<(String, Secret)>,
    /// Basic credentials as `name=path` of a file holding `user:password`.
    #[arg(long = "datasource-basic-file", env = "RECOMMENDER_DATASOURCE_BASIC_FILES", value_delimiter = ',', value_parser = parse_secret_file_pair)]
    pub datasource_basic_files: Vec<(String, Secret)>,
    /// CA bundles (PEM) as `name=path` for datasources behind TLS with a private CA.
    #[arg(long = "datasource-ca", env = "RECOMMENDER_DATASOURCE_CAS", value_delimiter = ',', value_parser = parse_pair)]
    pub datasource_cas: Vec<(String, String)>,
    /// Which samples a 15-minute interval holds: `auto` reads each datasource's version
    /// (Prometheus 2.x `[t − 15m, t]`, 3.x `(t − 15m, t]`), or force `closed` / `left-open`.
    #[arg(long, env = "RECOMMENDER_DATASOURCE_WINDOWS", value_enum, default_value_t = Windows::Auto)]
    pub datasource_windows: Windows,
    /// How per-pod series are read: `auto` through Prometheus's remote-read API (stored
    /// chunks: a fraction of Prometheus's CPU) where the datasource answers it, else the query
    /// API; `query` the query API only.
    #[arg(long, env = "RECOMMENDER_DATASOURCE_READS", value_enum, default_value_t = Reads::Auto)]
    pub datasource_reads: Reads,
    /// Prometheus queries in flight per datasource.
    #[arg(long, env = "RECOMMENDER_DATASOURCE_CONCURRENCY", default_value_t = 8)]
    pub datasource_concurrency: usize,
    /// Timeout of one Prometheus query, seconds.
    #[arg(
        long,
        env = "RECOMMENDER_DATASOURCE_TIMEOUT_SECS",
        default_value_t = 60
    )]
    pub datasource_timeout_secs: u64,
    /// Publish to Kafka.
    #[arg(long, env = "RECOMMENDER_KAFKA_ENABLED", default_value_t = false)]
    pub kafka_enabled: bool,
    /// Kafka.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Topics.
    #[command(flatten)]
    pub topics: Topics,
    /// Message format: Confluent-framed Avro (schemas looked up in the registry under each
    /// topic's `-value` subject) or the reference's JSON.
    #[arg(long, env = "RECOMMENDER_MESSAGE_FORMAT", value_enum, default_value_t = Format::Avro)]
    pub format: Format,
    /// Schema registry (Avro format).
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Most experiments per job (the reference's `bulkapilimit`).
    #[arg(long, env = "RECOMMENDER_EXPERIMENT_LIMIT", default_value_t = 1000)]
    pub experiment_limit: usize,
    /// Experiment name format (placeholders `%datasource% %clustername% %namespace%
    /// %workloadname% %workloadtype% %containername% %label:<name>%`).
    #[arg(long, env = "RECOMMENDER_EXPERIMENT_NAME_FORMAT", default_value = crate::naming::DEFAULT_FORMAT)]
    pub experiment_name_format: String,
    /// Finished jobs are deleted this long after they ended (`30s`, `15m`, `12h`, `7d`).
    #[arg(long, env = "RECOMMENDER_JOB_RETENTION", default_value = "7d", value_parser = parse_duration)]
    pub job_retention: Duration,
    /// Lease of a running job, seconds: a replica that stops renewing it loses the job to
    /// another after this long.
    #[arg(long, env = "RECOMMENDER_JOB_LEASE_SECS", default_value_t = 30)]
    pub job_lease_secs: u64,
    /// Namespaces fetched at once per job.
    #[arg(long, env = "RECOMMENDER_PARALLEL_NAMESPACES", default_value_t = 4)]
    pub parallel_namespaces: usize,
    /// Name of this replica in leases (default: host name and pid).
    #[arg(long, env = "RECOMMENDER_REPLICA_NAME")]
    pub replica_name: Option<String>,
    /// Test-only fault injection: abort after this many Kafka publications, before recording
    /// the last one. Only in builds with the `testing` feature (scripts/test builds with it;
    /// release builds and images never have it).
    #[cfg(feature = "testing")]
    #[arg(long, env = "RIVULET_FAULT_ABORT_AFTER_PUBLISHES", hide = true)]
    pub fault_abort_after_publishes: Option<u64>,
}

fn parse_pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.trim().to_owned())),
        _ => Err(format!("expected name=value, got {s:?}")),
    }
}

/// `name=secret`: the error never quotes the value.
fn parse_secret_pair(s: &str) -> Result<(String, Secret), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), Secret::new(v.trim()))),
        _ => Err("expected name=value (the value is not shown)".into()),
    }
}

/// `name=path`, the secret read from the file.
fn parse_secret_file_pair(s: &str) -> Result<(String, Secret), String> {
    let (name, path) = parse_pair(s)?;
    Ok((name, Secret::from_file(&path)?))
}

impl Config {
    /// The job store's URL, given directly or read from its file.
    pub fn database_url(&self) -> Option<&Secret> {
        Secret::either(self.database_url.as_ref(), self.database_url_file.as_ref())
    }

    /// What `POST /bulk` and `DELETE /bulk` (or every API request) accept.
    pub fn credentials(&self) -> Credentials {
        Credentials::new(
            Secret::either(self.auth_token.as_ref(), self.auth_token_file.as_ref()),
            self.auth_user.as_deref(),
            Secret::either(
                self.auth_password.as_ref(),
                self.auth_password_file.as_ref(),
            ),
        )
    }

    /// A datasource's bearer token and basic credentials (`user:password`), from flags or files.
    pub fn datasource_secrets(&self, name: &str) -> (Option<&Secret>, Option<&Secret>) {
        fn find<'a>(list: &'a [(String, Secret)], name: &str) -> Option<&'a Secret> {
            list.iter().find(|(n, _)| n == name).map(|(_, v)| v)
        }
        (
            find(&self.datasource_tokens, name)
                .or_else(|| find(&self.datasource_token_files, name)),
            find(&self.datasource_basic, name).or_else(|| find(&self.datasource_basic_files, name)),
        )
    }
}

/// `<number><unit>` with unit `s`, `m`, `h` or `d`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("expected a number and a unit (s, m, h, d), got {s:?}"))?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("unknown unit {unit:?} in {s:?}: use s, m, h or d")),
    };
    Ok(Duration::from_secs(n.saturating_mul(secs)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_with_their_unit() {
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(43_200)));
        for bad in ["", "7", "d", "7w", "-1h", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
