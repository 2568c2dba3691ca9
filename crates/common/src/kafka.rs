//! Kafka client construction. Every producer, consumer and admin client in Rivulet is built here
//! from one [`KafkaArgs`], so security settings and client defaults are decided once.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::FutureProducer;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use crate::{Error, Result, Secret};

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

/// Connection settings shared by every Kafka client of a binary.
#[derive(Clone, Debug, clap::Args)]
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
    /// PEM file with the CA certificates that sign the brokers' certificates (TLS).
    #[arg(long = "kafka-ssl-ca-location", env = "KAFKA_SSL_CA_LOCATION")]
    pub ssl_ca_location: Option<PathBuf>,
    /// Client timing profile: `production` keeps librdkafka's defaults.
    #[arg(long = "kafka-profile", env = "KAFKA_PROFILE", value_enum, default_value_t = Profile::Production)]
    pub profile: Profile,
    /// Extra librdkafka properties as `key=value`, applied last (env: comma-separated).
    #[arg(long = "kafka-option", env = "KAFKA_OPTIONS", value_delimiter = ',', value_parser = parse_key_value)]
    pub options: Vec<(String, String)>,
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
}

impl ProducerSettings {
    /// Idempotent, non-transactional producer defaults.
    pub fn new(client_id: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            idempotent: true,
            transactional_id: None,
            linger: Duration::from_millis(5),
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
    pub fetch_wait_max: Option<Duration>,
}

impl ConsumerSettings {
    /// Manual-commit, `read_committed`, start-from-earliest defaults.
    pub fn new(client_id: impl Into<String>, group_id: Option<String>) -> Self {
        Self {
            client_id: client_id.into(),
            group_id,
            offset_reset: OffsetReset::Earliest,
            read_committed: true,
            fetch_wait_max: None,
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
            ssl_ca_location: None,
            profile: Profile::Production,
            options: Vec::new(),
        }
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
        if let Some(password) = &self.sasl_password {
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
        self.apply_overrides(&mut config);
        config
    }

    /// Builds a producer (idempotent unless `settings` says otherwise).
    pub fn producer(&self, settings: &ProducerSettings) -> Result<FutureProducer> {
        self.producer_config(settings)
            .create()
            .map_err(Error::kafka("creating producer"))
    }

    /// The librdkafka properties of a consumer built from these arguments.
    pub fn consumer_config(&self, settings: &ConsumerSettings) -> ClientConfig {
        let mut config = self.base_config(&settings.client_id);
        config
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
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
        if let Some(wait) = settings.fetch_wait_max {
            config.set("fetch.wait.max.ms", wait.as_millis().to_string());
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

    /// A consumer for [`read_range`]: no group, `read_committed`, partition-EOF events on.
    pub fn reader(&self, client_id: &str) -> Result<BaseConsumer<ReaderContext>> {
        let mut settings = ConsumerSettings::new(client_id, None);
        // A reader wants the end soon: do not let the broker hold empty fetches long.
        settings.fetch_wait_max = Some(Duration::from_millis(10));
        let mut config = self.consumer_config(&settings);
        config.set("enable.partition.eof", "true");
        config
            .create_with_context(ReaderContext)
            .map_err(Error::kafka("creating a reader"))
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

/// The partition Kafka's Java client (and librdkafka's `murmur2_random`) picks for `key` among
/// `partitions`: `toPositive(murmur2(key)) % partitions`. Lets a producer know, before it
/// sends, where a key will land.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    (murmur2(key) & 0x7fff_ffff) % partitions.max(1)
}

/// Kafka's `Utils.murmur2` (seed 0x9747b28c).
pub fn murmur2(data: &[u8]) -> i32 {
    const M: i32 = 0x5bd1_e995;
    let mut h: i32 = (0x9747_b28c_u32 as i32) ^ data.len() as i32;
    let chunks = data.chunks_exact(4);
    let tail = chunks.remainder();
    for c in chunks {
        let mut k = i32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= ((k as u32) >> 24) as i32;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    if tail.len() == 3 {
        h ^= i32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= i32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= i32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= ((h as u32) >> 13) as i32;
    h = h.wrapping_mul(M);
    h ^= ((h as u32) >> 15) as i32;
    h
}

/// Context of [`KafkaArgs::reader`] consumers: partition EOF is how a reader knows it is done,
/// so it is not logged as an error (librdkafka also reports it through the error callback).
pub struct ReaderContext;

impl rdkafka::ClientContext for ReaderContext {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        use rdkafka::error::KafkaError;
        let eof = matches!(
            error,
            KafkaError::PartitionEOF(_) | KafkaError::Global(RDKafkaErrorCode::PartitionEOF)
        );
        if !eof {
            tracing::error!(%error, reason, "librdkafka error.");
        }
    }
}

impl rdkafka::consumer::ConsumerContext for ReaderContext {}

/// Reads `topic`/`partition` from offset `start`, calling `each` for every message, up to `end`
/// (exclusive) or, with `end = None`, to the end of the partition; returns the next offset.
/// `consumer` must come from [`KafkaArgs::reader`].
///
/// "The end" is librdkafka's partition-EOF event, not a high watermark compared by hand: the
/// event comes after transaction markers (which take offsets but are never delivered) and after
/// the whole last record batch (Tansu reports the base offset of its last batch + 1 as the high
/// watermark, though every record keeps its right offset). Blocking: call it from a blocking
/// thread.
pub fn read_range(
    consumer: &BaseConsumer<ReaderContext>,
    topic: &str,
    partition: i32,
    start: i64,
    end: Option<i64>,
    timeout: Duration,
    mut each: impl FnMut(&BorrowedMessage<'_>),
) -> Result<i64> {
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, partition, Offset::Offset(start))
        .map_err(Error::kafka("assigning a partition"))?;
    consumer
        .assign(&assignment)
        .map_err(Error::kafka("assigning a partition"))?;
    let deadline = Instant::now() + timeout;
    let mut next = start;
    loop {
        if end.is_some_and(|end| next >= end) {
            return Ok(next);
        }
        if Instant::now() > deadline {
            return Err(Error::ReadTimeout {
                topic: topic.to_owned(),
                partition,
                offset: next,
            });
        }
        let message = match consumer.poll(Duration::from_millis(100)) {
            None => continue,
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) if p == partition => {
                return Ok(next);
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => continue,
            Some(Err(e)) => return Err(Error::kafka("reading a partition")(e)),
            Some(Ok(message)) => message,
        };
        // Messages fetched for a previous assignment may still arrive: skip them.
        if message.partition() != partition || message.topic() != topic {
            continue;
        }
        if end.is_some_and(|end| message.offset() >= end) {
            return Ok(next);
        }
        next = message.offset() + 1;
        each(&message);
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
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        kafka: KafkaArgs,
    }

    #[test]
    fn producer_is_idempotent_and_uses_the_java_partitioner() {
        let args = KafkaArgs::plaintext("b:9092");
        let config = args.producer_config(&ProducerSettings::new("t"));
        assert_eq!(config.get("enable.idempotence"), Some("true"));
        assert_eq!(config.get("partitioner"), Some("murmur2_random"));
        assert_eq!(config.get("bootstrap.servers"), Some("b:9092"));
        let mut tx = ProducerSettings::new("t");
        tx.idempotent = false;
        tx.transactional_id = Some("g-0".into());
        let config = args.producer_config(&tx);
        assert_eq!(config.get("enable.idempotence"), Some("true"));
        assert_eq!(config.get("transactional.id"), Some("g-0"));
    }

    #[test]
    fn test_profile_shortens_group_timeouts_only_when_asked() {
        let mut args = KafkaArgs::plaintext("b:9092");
        let settings = ConsumerSettings::new("c", Some("g".into()));
        assert_eq!(
            args.consumer_config(&settings).get("session.timeout.ms"),
            None
        );
        args.profile = Profile::Test;
        let config = args.consumer_config(&settings);
        assert_eq!(config.get("session.timeout.ms"), Some("6000"));
        assert_eq!(config.get("max.poll.interval.ms"), Some("10000"));
        assert_eq!(config.get("isolation.level"), Some("read_committed"));
        assert_eq!(config.get("enable.auto.commit"), Some("false"));
    }

    #[test]
    fn security_settings_and_overrides_come_from_flags() {
        let cli = Cli::parse_from([
            "x",
            "--kafka-bootstrap-servers=k:9093",
            "--kafka-security-protocol=sasl-ssl",
            "--kafka-sasl-mechanism=SCRAM-SHA-512",
            "--kafka-sasl-username=alice",
            "--kafka-sasl-password=s3cret",
            "--kafka-ssl-ca-location=/etc/ca.pem",
            "--kafka-option=socket.keepalive.enable=true",
        ]);
        let config = cli.kafka.consumer_config(&ConsumerSettings::new("c", None));
        assert_eq!(config.get("security.protocol"), Some("sasl_ssl"));
        assert_eq!(config.get("sasl.mechanism"), Some("SCRAM-SHA-512"));
        assert_eq!(config.get("sasl.password"), Some("s3cret"));
        assert_eq!(config.get("ssl.ca.location"), Some("/etc/ca.pem"));
        assert_eq!(config.get("socket.keepalive.enable"), Some("true"));
        assert!(!format!("{:?}", cli.kafka).contains("s3cret"));
    }

    #[test]
    fn murmur2_matches_the_java_client() {
        // Vectors from Kafka's UtilsTest.testMurmur2.
        let cases: [(&str, i32); 6] = [
            ("21", -973_932_308),
            ("foobar", -790_332_482),
            ("a-little-bit-long-string", -985_981_536),
            ("a-little-bit-longer-string", -1_486_304_829),
            (
                "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            ("abc", 479_470_107),
        ];
        for (input, expected) in cases {
            assert_eq!(murmur2(input.as_bytes()), expected, "{input}");
        }
        assert!((0..6).contains(&partition_for_key(b"SKU_000001", 6)));
    }

    #[test]
    fn bad_option_is_a_parse_error() {
        assert!(Cli::try_parse_from(["x", "--kafka-option=novalue"]).is_err());
    }
}
