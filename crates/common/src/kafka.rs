//! Kafka client construction. Every producer, consumer and admin client in Rivulet is built here
//! from one [`KafkaArgs`], so security settings and client defaults are decided once.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, StreamConsumer};
use rdkafka::producer::{BaseProducer, FutureProducer};
use rdkafka::types::RDKafkaErrorCode;

use crate::{Error, Result, Secret};

mod lag;
mod partitioner;
mod read;
mod txn;

pub use lag::{GroupOffsets, LagReader};
pub use partitioner::{murmur2, partition_for_key};
pub use read::{Ends, ReadEnd, ReaderContext, partition_ids, read_range, read_to_end};
pub use txn::{commit_transaction, is_fenced};

/// How the client talks to the brokers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum SecurityProtocol {
    /// No TLS, no SASL.
    #[default]
    Plaintext,
    /// TLS without SASL.
    Ssl,
    /// SASL without TLS.
    SaslPlaintext,
    /// SASL over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    fn as_librdkafka(self) -> &'static str {
        match self {
            Self::Plaintext => "plaintext",
            Self::Ssl => "ssl",
            Self::SaslPlaintext => "sasl_plaintext",
            Self::SaslSsl => "sasl_ssl",
        }
    }
}

/// SASL mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SaslMechanism {
    /// `PLAIN`
    #[value(name = "PLAIN", alias = "plain")]
    Plain,
    /// `SCRAM-SHA-256`
    #[value(name = "SCRAM-SHA-256", alias = "scram-sha-256")]
    ScramSha256,
    /// `SCRAM-SHA-512`
    #[value(name = "SCRAM-SHA-512", alias = "scram-sha-512")]
    ScramSha512,
}

impl SaslMechanism {
    fn as_librdkafka(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// Client timing profile.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    /// librdkafka's defaults: what production runs.
    #[default]
    Production,
    /// Short group timeouts (session 6 s, max poll interval 10 s) so a first consumer-group join
    /// against Tansu takes about 3 s instead of about 23 s. For tests and the local stack only.
    Test,
}

/// Connection settings shared by every Kafka client of a binary. `Debug` hides the password
/// and every `--kafka-option` value whose key names a credential.
#[derive(Clone, clap::Args)]
pub struct KafkaArgs {
    /// Comma-separated `host:port` list of bootstrap brokers.
    #[arg(
        long = "kafka-bootstrap-servers",
        env = "KAFKA_BOOTSTRAP_SERVERS",
        default_value = "localhost:9092"
    )]
    pub bootstrap_servers: String,
    /// Security protocol.
    #[arg(long = "kafka-security-protocol", env = "KAFKA_SECURITY_PROTOCOL", value_enum, default_value_t = SecurityProtocol::Plaintext)]
    pub security_protocol: SecurityProtocol,
    /// SASL mechanism (with a `sasl_*` protocol).
    #[arg(
        long = "kafka-sasl-mechanism",
        env = "KAFKA_SASL_MECHANISM",
        value_enum
    )]
    pub sasl_mechanism: Option<SaslMechanism>,
    /// SASL user name.
    #[arg(long = "kafka-sasl-username", env = "KAFKA_SASL_USERNAME")]
    pub sasl_username: Option<String>,
    /// SASL password.
    #[arg(
        long = "kafka-sasl-password",
        env = "KAFKA_SASL_PASSWORD",
        hide_env_values = true
    )]
    pub sasl_password: Option<Secret>,
    /// File holding the SASL password (a mounted Secret), instead of `--kafka-sasl-password`.
    #[arg(
        long = "kafka-sasl-password-file",
        env = "KAFKA_SASL_PASSWORD_FILE",
        value_name = "PATH",
        value_parser = Secret::from_file,
        conflicts_with = "sasl_password"
    )]
    pub sasl_password_file: Option<Secret>,
    /// PEM file with the CA certificates that sign the brokers' certificates (TLS).
    #[arg(long = "kafka-ssl-ca-location", env = "KAFKA_SSL_CA_LOCATION")]
    pub ssl_ca_location: Option<PathBuf>,
    /// Client timing profile: `production` keeps librdkafka's defaults.
    #[arg(long = "kafka-profile", env = "KAFKA_PROFILE", value_enum, default_value_t = Profile::Production)]
    pub profile: Profile,
    /// Extra librdkafka properties as `key=value`, applied last (env: comma-separated). Values
    /// of keys naming a credential (password, secret, token, key, jaas) are never shown.
    #[arg(long = "kafka-option", env = "KAFKA_OPTIONS", value_delimiter = ',', value_parser = parse_key_value, hide_env_values = true)]
    pub options: Vec<(String, String)>,
}

impl std::fmt::Debug for KafkaArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let options: Vec<(&str, &str)> = self
            .options
            .iter()
            .map(|(k, v)| {
                let shown = if crate::secret::is_sensitive_key(k) {
                    "******"
                } else {
                    v.as_str()
                };
                (k.as_str(), shown)
            })
            .collect();
        f.debug_struct("KafkaArgs")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("security_protocol", &self.security_protocol)
            .field("sasl_mechanism", &self.sasl_mechanism)
            .field("sasl_username", &self.sasl_username)
            .field("sasl_password", &self.password())
            .field("ssl_ca_location", &self.ssl_ca_location)
            .field("profile", &self.profile)
            .field("options", &options)
            .finish()
    }
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.trim().to_owned())),
        _ => Err(format!("expected key=value, got {s:?}")),
    }
}

/// Producer knobs that differ between binaries.
#[derive(Clone, Debug)]
pub struct ProducerSettings {
    /// `client.id`, shown in broker logs.
    pub client_id: String,
    /// Idempotent delivery (`enable.idempotence`); on by default.
    pub idempotent: bool,
    /// Set for a transactional producer (implies idempotence).
    pub transactional_id: Option<String>,
    /// `linger.ms`: how long to wait to fill a batch.
    pub linger: Duration,
    /// `acks=all`: a write is acknowledged once every in-sync replica has it. Idempotent and
    /// transactional producers need it (librdkafka then defaults to it); set it for a producer
    /// whose writes must survive the loss of the leader whatever else is configured.
    pub acks_all: bool,
}

impl ProducerSettings {
    /// Idempotent, non-transactional producer defaults.
    pub fn new(client_id: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            idempotent: true,
            transactional_id: None,
            linger: Duration::from_millis(5),
            acks_all: false,
        }
    }

    /// A transactional producer's settings: `transactional.id = id` (which implies idempotence);
    /// a new producer with the same id fences the previous one by epoch.
    pub fn transactional(client_id: impl Into<String>, id: impl Into<String>) -> Self {
        Self {
            transactional_id: Some(id.into()),
            ..Self::new(client_id)
        }
    }
}

/// Where a consumer without committed offsets starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OffsetReset {
    /// From the beginning of the partition.
    Earliest,
    /// From the end of the partition.
    Latest,
}

/// Consumer knobs that differ between binaries.
#[derive(Clone, Debug)]
pub struct ConsumerSettings {
    /// `client.id`.
    pub client_id: String,
    /// Consumer group; `None` for a consumer that only uses `assign` (librdkafka still needs a
    /// `group.id` for that, so `<client_id>-assign-only` is set; it never joins or commits).
    pub group_id: Option<String>,
    /// Start position without a committed offset.
    pub offset_reset: OffsetReset,
    /// Only read committed transactional messages (`isolation.level=read_committed`).
    pub read_committed: bool,
    /// `fetch.wait.max.ms`: how long the broker may hold a fetch open waiting for data. Low
    /// values trade idle fetch requests for latency (the schema log wants milliseconds).
    /// `None` is librdkafka's 500 ms. [`ConsumerSettings::new`] sets [`FETCH_WAIT_MAX`].
    pub fetch_wait_max: Option<Duration>,
    /// `enable.partition.eof`: deliver an event when a partition's end is reached (how a reader
    /// knows it is done, see [`read_range`] and [`Ends`]).
    pub partition_eof: bool,
    /// `enable.auto.offset.store=false`: offsets are only stored by hand (or sent to a
    /// transaction), never as a side effect of polling.
    pub manual_offset_store: bool,
    /// `statistics.interval.ms`: how often librdkafka emits statistics to the client context
    /// (consumer lag, for example); `None` for never.
    pub statistics_interval: Option<Duration>,
    /// `fetch.queue.backoff.ms`: how long librdkafka waits before fetching a partition again
    /// once its local queue is over `queued.min.messages` or `queued.max.messages.kbytes`.
    /// librdkafka's default (1 s) idles any consumer that drains its queue in less than that:
    /// the backend then stalled for most of every second and ran at a third of a bare
    /// consumer's pace (`scripts/bench-pipeline`). 10 ms keeps the queue topped up; the memory
    /// bound (the queue thresholds) is unchanged.
    pub queue_backoff: Duration,
}

/// The broker-side fetch wait of every consumer unless it asks for another.
///
/// librdkafka keeps one fetch in flight per broker and leaves a partition out of it while the
/// partition's local queue is full. So a consumer slower than its fetcher (the backend, reading
/// a backlog) sends fetches for only the partitions it has drained; when those are at their end
/// the broker rightly holds the fetch for `fetch.wait.max.ms`, and the partitions whose queues
/// emptied meanwhile wait for it too. At librdkafka's 500 ms the backend stood still for about
/// a second, once or twice per run of `scripts/bench-pipeline` (records counted every 100 ms:
/// 16-18 empty samples in 6 of 7 runs; 0-1 at 100 ms, 2026-12-07). Not a Tansu quirk: any
/// Kafka broker holds a fetch for partitions at their end. The price is an idle consumer's
/// fetch every 100 ms instead of every 500 ms.
pub const FETCH_WAIT_MAX: Duration = Duration::from_millis(100);

impl ConsumerSettings {
    /// Manual-commit, `read_committed`, start-from-earliest defaults.
    pub fn new(client_id: impl Into<String>, group_id: Option<String>) -> Self {
        Self {
            client_id: client_id.into(),
            group_id,
            offset_reset: OffsetReset::Earliest,
            read_committed: true,
            fetch_wait_max: Some(FETCH_WAIT_MAX),
            partition_eof: false,
            manual_offset_store: false,
            statistics_interval: None,
            queue_backoff: Duration::from_millis(10),
        }
    }

    /// Settings of a reader: no group, `read_committed`, partition-EOF events on, and a short
    /// broker-side fetch wait (a reader wants the end soon).
    pub fn reader(client_id: impl Into<String>) -> Self {
        Self {
            partition_eof: true,
            fetch_wait_max: Some(Duration::from_millis(10)),
            ..Self::new(client_id, None)
        }
    }
}

impl KafkaArgs {
    /// Arguments for a broker at `bootstrap_servers` with every other setting at its default.
    pub fn plaintext(bootstrap_servers: impl Into<String>) -> Self {
        Self {
            bootstrap_servers: bootstrap_servers.into(),
            security_protocol: SecurityProtocol::Plaintext,
            sasl_mechanism: None,
            sasl_username: None,
            sasl_password: None,
            sasl_password_file: None,
            ssl_ca_location: None,
            profile: Profile::Production,
            options: Vec::new(),
        }
    }

    /// The SASL password, given directly or read from its file.
    pub fn password(&self) -> Option<&Secret> {
        Secret::either(
            self.sasl_password.as_ref(),
            self.sasl_password_file.as_ref(),
        )
    }

    /// The settings every client shares: brokers and security.
    fn base_config(&self, client_id: &str) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap_servers)
            .set("client.id", client_id)
            .set("security.protocol", self.security_protocol.as_librdkafka());
        if let Some(mechanism) = self.sasl_mechanism {
            config.set("sasl.mechanism", mechanism.as_librdkafka());
        }
        if let Some(user) = &self.sasl_username {
            config.set("sasl.username", user);
        }
        if let Some(password) = self.password() {
            config.set("sasl.password", password.expose());
        }
        if let Some(ca) = &self.ssl_ca_location {
            config.set("ssl.ca.location", ca.to_string_lossy());
        }
        config
    }

    fn apply_overrides(&self, config: &mut ClientConfig) {
        for (key, value) in &self.options {
            config.set(key, value);
        }
    }

    /// The librdkafka properties of a producer built from these arguments.
    pub fn producer_config(&self, settings: &ProducerSettings) -> ClientConfig {
        let mut config = self.base_config(&settings.client_id);
        // murmur2_random is the Java client's default partitioner: a key lands on the same
        // partition whichever client wrote it (librdkafka's default is consistent_random, CRC32).
        config
            .set("partitioner", "murmur2_random")
            .set("linger.ms", settings.linger.as_millis().to_string())
            .set(
                "enable.idempotence",
                (settings.idempotent || settings.transactional_id.is_some()).to_string(),
            );
        if let Some(id) = &settings.transactional_id {
            config.set("transactional.id", id);
        }
        if settings.acks_all {
            config.set("acks", "all");
        }
        self.apply_overrides(&mut config);
        config
    }

    /// Builds a producer (idempotent unless `settings` says otherwise).
    pub fn producer(&self, settings: &ProducerSettings) -> Result<FutureProducer> {
        self.producer_config(settings)
            .create()
            .map_err(Error::kafka("creating producer"))
    }

    /// Builds a polling producer (for blocking loops and transactions), idempotent unless
    /// `settings` says otherwise.
    pub fn base_producer(&self, settings: &ProducerSettings) -> Result<BaseProducer> {
        self.producer_config(settings)
            .create()
            .map_err(Error::kafka("creating producer"))
    }

    /// The librdkafka properties of a consumer built from these arguments.
    pub fn consumer_config(&self, settings: &ConsumerSettings) -> ClientConfig {
        let mut config = self.base_config(&settings.client_id);
        config
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", settings.partition_eof.to_string())
            .set(
                "auto.offset.reset",
                match settings.offset_reset {
                    OffsetReset::Earliest => "earliest",
                    OffsetReset::Latest => "latest",
                },
            )
            .set(
                "isolation.level",
                if settings.read_committed {
                    "read_committed"
                } else {
                    "read_uncommitted"
                },
            );
        config.set(
            "fetch.queue.backoff.ms",
            settings.queue_backoff.as_millis().to_string(),
        );
        if let Some(wait) = settings.fetch_wait_max {
            config.set("fetch.wait.max.ms", wait.as_millis().to_string());
        }
        if settings.manual_offset_store {
            config.set("enable.auto.offset.store", "false");
        }
        if let Some(every) = settings.statistics_interval {
            config.set("statistics.interval.ms", every.as_millis().to_string());
        }
        match &settings.group_id {
            Some(group) => config.set("group.id", group),
            None => config.set("group.id", format!("{}-assign-only", settings.client_id)),
        };
        if self.profile == Profile::Test {
            config
                .set("session.timeout.ms", "6000")
                .set("heartbeat.interval.ms", "1000")
                .set("max.poll.interval.ms", "10000");
        }
        self.apply_overrides(&mut config);
        config
    }

    /// Builds a stream consumer (manual commits).
    pub fn consumer(&self, settings: &ConsumerSettings) -> Result<StreamConsumer> {
        self.consumer_config(settings)
            .create()
            .map_err(Error::kafka("creating consumer"))
    }

    /// Builds a polling consumer with `context` (rebalance callbacks, statistics, ...).
    pub fn base_consumer<C: ConsumerContext>(
        &self,
        settings: &ConsumerSettings,
        context: C,
    ) -> Result<BaseConsumer<C>> {
        self.consumer_config(settings)
            .create_with_context(context)
            .map_err(Error::kafka("creating consumer"))
    }

    /// A consumer for [`read_range`] ([`ConsumerSettings::reader`]).
    pub fn reader(&self, client_id: &str) -> Result<BaseConsumer<ReaderContext>> {
        self.base_consumer(&ConsumerSettings::reader(client_id), ReaderContext)
    }

    /// Builds an admin client.
    pub fn admin(&self, client_id: &str) -> Result<AdminClient<DefaultClientContext>> {
        let mut config = self.base_config(client_id);
        self.apply_overrides(&mut config);
        config
            .create()
            .map_err(Error::kafka("creating admin client"))
    }
}

/// The configuration of `topic` as the broker reports it: every key it names, with its value
/// (`None` for a sensitive or unset one). Real Kafka reports every key, defaults included;
/// Tansu reports only the keys given when the topic was created.
pub async fn topic_config(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
) -> Result<HashMap<String, Option<String>>> {
    let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .describe_configs([&ResourceSpecifier::Topic(topic)], &options)
        .await
        .map_err(Error::kafka("describing a topic's configuration"))?;
    match results.into_iter().next() {
        Some(Ok(resource)) => Ok(resource
            .entries
            .into_iter()
            .map(|entry| (entry.name, entry.value))
            .collect()),
        Some(Err(code)) => Err(Error::DescribeTopic {
            topic: topic.to_owned(),
            reason: code.to_string(),
        }),
        None => Err(Error::DescribeTopic {
            topic: topic.to_owned(),
            reason: "no result from broker".into(),
        }),
    }
}

/// Creates `topic` unless it exists. `config` holds topic-level settings such as
/// `cleanup.policy`. Returns whether the topic was created by this call.
pub async fn ensure_topic(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
    partitions: i32,
    config: &[(&str, &str)],
) -> Result<bool> {
    let mut new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(-1));
    for (key, value) in config {
        new_topic = new_topic.set(key, value);
    }
    let options = AdminOptions::new()
        .operation_timeout(Some(Duration::from_secs(10)))
        .request_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics([&new_topic], &options)
        .await
        .map_err(Error::kafka("creating topic"))?;
    match results.into_iter().next() {
        Some(Ok(_)) => Ok(true),
        Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) => Ok(false),
        Some(Err((_, code))) => Err(Error::CreateTopic {
            topic: topic.to_owned(),
            reason: code.to_string(),
        }),
        None => Err(Error::CreateTopic {
            topic: topic.to_owned(),
            reason: "no result from broker".into(),
        }),
    }
}

#[cfg(test)]
mod tests;
