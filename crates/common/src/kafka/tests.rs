//! Unit tests of client construction and partitioning.

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
fn the_password_comes_from_a_file_and_credential_options_are_redacted() {
    let file = std::env::temp_dir().join(format!("rivulet-kafka-pw-{}", std::process::id()));
    std::fs::write(&file, "from-file\n").unwrap();
    let cli = Cli::parse_from([
        "x".to_string(),
        format!("--kafka-sasl-password-file={}", file.display()),
        "--kafka-option=sasl.jaas.config=jaas-value".into(),
        "--kafka-option=ssl.key.password=key-value".into(),
        "--kafka-option=linger.ms=7".into(),
    ]);
    std::fs::remove_file(&file).unwrap();
    let config = cli.kafka.producer_config(&ProducerSettings::new("p"));
    assert_eq!(config.get("sasl.password"), Some("from-file"));
    assert_eq!(config.get("ssl.key.password"), Some("key-value"));
    let shown = format!("{:?}", cli.kafka);
    for secret in ["from-file", "jaas-value", "key-value"] {
        assert!(!shown.contains(secret), "{shown}");
    }
    assert!(
        shown.contains("linger.ms") && shown.contains('7'),
        "{shown}"
    );
    // Both ways at once is an error, as is a file that is not there.
    assert!(
        Cli::try_parse_from([
            "x",
            "--kafka-sasl-password=a",
            "--kafka-sasl-password-file=/etc/hostname"
        ])
        .is_err()
    );
    let missing = Cli::try_parse_from(["x", "--kafka-sasl-password-file=/nonexistent/pw"])
        .err()
        .unwrap()
        .to_string();
    assert!(missing.contains("/nonexistent/pw"), "{missing}");
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
fn typed_options_set_their_keys() {
    let args = KafkaArgs::plaintext("b:9092");
    let reader = args.consumer_config(&ConsumerSettings::reader("r"));
    assert_eq!(reader.get("enable.partition.eof"), Some("true"));
    assert_eq!(reader.get("fetch.wait.max.ms"), Some("10"));
    assert_eq!(reader.get("group.id"), Some("r-assign-only"));
    let mut settings = ConsumerSettings::new("c", Some("g".into()));
    assert_eq!(
        args.consumer_config(&settings).get("enable.partition.eof"),
        Some("false")
    );
    settings.manual_offset_store = true;
    settings.statistics_interval = Some(Duration::from_secs(5));
    let config = args.consumer_config(&settings);
    assert_eq!(config.get("enable.auto.offset.store"), Some("false"));
    assert_eq!(config.get("statistics.interval.ms"), Some("5000"));
    // librdkafka's 500 ms held every partition behind a fetch for drained ones.
    assert_eq!(config.get("fetch.wait.max.ms"), Some("100"));
    // librdkafka's 1 s default idles a consumer that drains its queue faster than that.
    assert_eq!(config.get("fetch.queue.backoff.ms"), Some("10"));
    let mut producer = ProducerSettings::transactional("p", "g-3");
    producer.acks_all = true;
    let config = args.producer_config(&producer);
    assert_eq!(config.get("transactional.id"), Some("g-3"));
    assert_eq!(config.get("acks"), Some("all"));
    assert_eq!(
        args.producer_config(&ProducerSettings::new("p"))
            .get("acks"),
        None
    );
}

#[test]
fn ends_track_every_partition() {
    let mut ends = Ends::new([0, 1]);
    assert!(!ends.reached(0));
    assert!(ends.reached(1));
    ends.left(0);
    assert!(!ends.all());
    assert_eq!(ends.pending().collect::<Vec<_>>(), vec![0]);
    assert!(ends.reached(0));
    assert!(Ends::new([]).all());
}

#[test]
fn bad_option_is_a_parse_error() {
    assert!(Cli::try_parse_from(["x", "--kafka-option=novalue"]).is_err());
}
