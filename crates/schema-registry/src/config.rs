//! Command-line and environment configuration.

use std::net::SocketAddr;
use std::path::PathBuf;

use rivulet_common::{KafkaArgs, LogArgs, RegistryArgs, Secret};

use crate::auth::Scope;
use crate::schema::Level;

/// Confluent-compatible Avro schema registry whose state lives in a Kafka topic.
#[derive(Debug, clap::Parser)]
#[command(name = "schema-registry", version, about, long_about = None)]
pub struct Cli {
    /// Logging.
    #[command(flatten)]
    pub log: LogArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Serve the REST API.
    Serve(ServeConfig),
    /// Register every schema in a directory with a (any Confluent-compatible) registry.
    Apply(ApplyConfig),
}

/// `schema-registry serve`.
#[derive(Debug, clap::Args)]
pub struct ServeConfig {
    /// Kafka connection.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Address to serve HTTP on.
    #[arg(long, env = "SCHEMA_REGISTRY_LISTEN", default_value = "0.0.0.0:8081")]
    pub listen: SocketAddr,
    /// Topic holding the registry's state (one partition, created if missing).
    #[arg(long, env = "SCHEMA_REGISTRY_TOPIC", default_value = "_schemas")]
    pub topic: String,
    /// Longest time the broker may hold a fetch of the topic open (milliseconds). Kafka answers
    /// as soon as a record arrives; brokers that do not (Tansu) make a write wait up to this.
    #[arg(long, env = "SCHEMA_REGISTRY_LOG_FETCH_WAIT_MS", default_value_t = 10)]
    pub log_fetch_wait_ms: u64,
    /// How long a write waits for Kafka before answering 500 (seconds).
    #[arg(long, env = "SCHEMA_REGISTRY_STORE_TIMEOUT_SECS", default_value_t = 10)]
    pub store_timeout_secs: u64,
    /// Longest time a request with a body (registration, look-up, check, config) may take
    /// (seconds); requests without a body are bounded by the store timeout.
    #[arg(
        long,
        env = "SCHEMA_REGISTRY_REQUEST_TIMEOUT_SECS",
        default_value_t = 30
    )]
    pub request_timeout_secs: u64,
    /// Bearer token accepted on protected endpoints (enables authentication).
    #[arg(long, env = "SCHEMA_REGISTRY_AUTH_TOKEN", hide_env_values = true)]
    pub auth_token: Option<Secret>,
    /// File holding the bearer token (a mounted Secret), instead of --auth-token.
    #[arg(long, env = "SCHEMA_REGISTRY_AUTH_TOKEN_FILE", value_name = "PATH", value_parser = Secret::from_file, conflicts_with = "auth_token")]
    pub auth_token_file: Option<Secret>,
    /// Basic-auth user accepted on protected endpoints (with --auth-password or its file).
    #[arg(long, env = "SCHEMA_REGISTRY_AUTH_USER", requires = "basic_password")]
    pub auth_user: Option<String>,
    /// Basic-auth password.
    #[arg(
        long,
        env = "SCHEMA_REGISTRY_AUTH_PASSWORD",
        hide_env_values = true,
        requires = "auth_user",
        group = "basic_password"
    )]
    pub auth_password: Option<Secret>,
    /// File holding the basic-auth password, instead of --auth-password.
    #[arg(long, env = "SCHEMA_REGISTRY_AUTH_PASSWORD_FILE", value_name = "PATH", value_parser = Secret::from_file, conflicts_with = "auth_password", requires = "auth_user", group = "basic_password")]
    pub auth_password_file: Option<Secret>,
    /// Which endpoints need credentials when authentication is on.
    #[arg(long, env = "SCHEMA_REGISTRY_AUTH_SCOPE", value_enum, default_value_t = Scope::Writes)]
    pub auth_scope: Scope,
    /// Fault injection for tests: pause this long between planning and appending a claim.
    #[arg(long, env = "SCHEMA_REGISTRY_TEST_CLAIM_DELAY_MS", hide = true)]
    pub test_claim_delay_ms: Option<u64>,
}

/// `schema-registry apply`.
#[derive(Debug, clap::Args)]
pub struct ApplyConfig {
    /// The registry to apply to.
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Directory with one folder per topic holding `v1.avsc`, `v2.avsc`, ...; each folder is
    /// registered, in version order, under the subject `<topic>-value`.
    #[arg(long, env = "SCHEMA_REGISTRY_APPLY_DIR", default_value = "schemas")]
    pub dir: PathBuf,
    /// Compatibility level set on every subject before registering.
    #[arg(
        long,
        env = "SCHEMA_REGISTRY_APPLY_COMPATIBILITY",
        default_value = "FULL_TRANSITIVE"
    )]
    pub compatibility: Level,
    /// Change nothing: check every schema against the registry and fail on an incompatible one.
    #[arg(long)]
    pub dry_run: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn cli_parses_both_commands() {
        let cli = Cli::try_parse_from([
            "schema-registry",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--auth-token",
            "t",
        ])
        .unwrap();
        match cli.command {
            Command::Serve(s) => {
                assert_eq!(s.topic, "_schemas");
                assert!(!format!("{s:?}").contains("\"t\""));
            }
            Command::Apply(_) => panic!("expected serve"),
        }
        let cli = Cli::try_parse_from([
            "schema-registry",
            "apply",
            "--dry-run",
            "--compatibility",
            "full",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Command::Apply(ApplyConfig {
                dry_run: true,
                compatibility: Level::Full,
                ..
            })
        ));
        assert!(
            Cli::try_parse_from(["schema-registry", "serve", "--auth-user", "u"]).is_err(),
            "user needs a password"
        );
    }
}
