//! The common crate's clients against the real broker and registry of the test stack.

#![allow(clippy::unwrap_used)] // tests and tools: a failed unwrap is a failed run

use std::time::Duration;

use apache_avro::Schema;
use apache_avro::types::Value;
use futures::StreamExt;
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::FutureRecord;
use rivulet_common::kafka::{
    ConsumerSettings, ProducerSettings, Profile, ensure_topic, partition_for_key,
};
use rivulet_common::{KafkaArgs, RegistryArgs, avro};
use rivulet_testkit::unique;
use schema_registry_converter::async_impl::avro::AvroDecoder;
use schema_registry_converter::async_impl::schema_registry::post_schema;
use schema_registry_converter::schema_registry_common::{SchemaType, SuppliedSchema};

fn kafka() -> KafkaArgs {
    let mut args = KafkaArgs::plaintext(rivulet_testkit::bootstrap());
    args.profile = Profile::Test;
    args
}

fn registry() -> RegistryArgs {
    RegistryArgs::new(rivulet_testkit::registry_url())
}

/// A consumer in a fresh group, subscribed to `topic`.
fn subscribe(kafka: &KafkaArgs, topic: &str) -> StreamConsumer {
    let consumer = kafka
        .consumer(&ConsumerSettings::new(
            "test-consumer",
            Some(unique("group")),
        ))
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    consumer
}

#[tokio::test]
#[ignore = "needs Kafka and the test stack: run scripts/test"]
async fn keys_land_where_java_clients_put_them_and_come_back() {
    let kafka = kafka();
    let topic = unique("partitioning");
    let admin = kafka.admin("test-admin").unwrap();
    assert!(ensure_topic(&admin, &topic, 6, &[]).await.unwrap());
    assert!(
        !ensure_topic(&admin, &topic, 6, &[]).await.unwrap(),
        "second call finds it"
    );

    let producer = kafka
        .producer(&ProducerSettings::new("test-producer"))
        .unwrap();
    let keys: Vec<String> = (0..60).map(|i| format!("SKU_{i:06}")).collect();
    for key in &keys {
        let delivery = producer
            .send(
                FutureRecord::to(&topic).key(key).payload(key.as_bytes()),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)
            .unwrap();
        let expected = partition_for_key(key.as_bytes(), 6);
        assert_eq!(delivery.partition, expected, "key {key}");
    }

    let consumer = subscribe(&kafka, &topic);
    let mut seen = Vec::new();
    let mut stream = consumer.stream();
    while seen.len() < keys.len() {
        let message = tokio::time::timeout(Duration::from_secs(30), stream.next())
            .await
            .expect("consumed in time")
            .unwrap()
            .unwrap();
        seen.push(String::from_utf8(message.key().unwrap().to_vec()).unwrap());
    }
    seen.sort();
    assert_eq!(seen, keys);
}

#[tokio::test]
#[ignore = "needs Kafka and the test stack: run scripts/test"]
async fn confluent_framed_avro_through_kafka() {
    let kafka = kafka();
    let sr = registry().settings().unwrap();
    let topic = unique("framed");
    let subject = avro::value_subject(&topic);
    let text = r#"{"type":"record","name":"Reading","namespace":"test.common","fields":[{"name":"sku","type":"string"},{"name":"qty","type":"int"},{"name":"cost","type":["null","long"],"default":null}]}"#;
    let registered = post_schema(
        &sr,
        subject.clone(),
        SuppliedSchema::new(None, SchemaType::Avro, text.into()),
    )
    .await
    .unwrap();

    // A producer only looks its schema up.
    let schema = Schema::parse_str(text).unwrap();
    let found = avro::lookup(&sr, &subject, &schema).await.unwrap();
    assert_eq!(found.id, registered.id);
    let value = Value::Record(vec![
        ("sku".into(), Value::String("SKU_000042".into())),
        ("qty".into(), Value::Int(77)),
        (
            "cost".into(),
            Value::Union(1, Box::new(Value::Long(12_345))),
        ),
    ]);
    let payload = avro::encode(found.id, &found.schema, value.clone()).unwrap();
    assert!(
        avro::encode(found.id, &found.schema, Value::Int(1)).is_err(),
        "a value that does not fit is an error"
    );

    let producer = kafka
        .producer(&ProducerSettings::new("test-producer"))
        .unwrap();
    producer
        .send(
            FutureRecord::to(&topic).key("SKU_000042").payload(&payload),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)
        .unwrap();
    let consumer = subscribe(&kafka, &topic);
    let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
        .await
        .expect("consumed in time")
        .unwrap();
    let bytes = message.payload().unwrap();
    let (id, _) = avro::unframe(bytes).unwrap();
    assert_eq!(id, found.id);
    let decoded = AvroDecoder::new(registry().settings().unwrap())
        .decode(Some(bytes))
        .await
        .unwrap();
    assert_eq!(decoded.value, value);
}
