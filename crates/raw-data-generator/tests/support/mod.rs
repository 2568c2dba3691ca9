//! What the generator's integration tests share: the stack's clients, topics with schemas,
//! the binary, and reading a topic back (with each generated record's sweep position, found
//! from its content as the generator's resume finds it).
#![allow(dead_code)]
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::process::{Command, Output};
use std::time::Duration;

use chrono::NaiveDate;
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rivulet_common::kafka::{ensure_topic, read_range};
use rivulet_common::{KafkaArgs, RegistryArgs};
use rivulet_contracts::raw::RawRecord;
use rivulet_raw_data_generator::model::Model;
use rivulet_testkit::unique;
use schema_registry_converter::async_impl::avro::AvroDecoder;
use schema_registry_converter::async_impl::schema_registry::post_schema;
use schema_registry_converter::schema_registry_common::{SchemaType, SuppliedSchema};

pub fn kafka() -> KafkaArgs {
    KafkaArgs::plaintext(rivulet_testkit::bootstrap())
}

pub fn registry() -> RegistryArgs {
    RegistryArgs::new(rivulet_testkit::registry_url())
}

pub async fn topic_with_schemas(prefix: &str, partitions: i32, schemas: &[&str]) -> String {
    let topic = unique(prefix);
    ensure_topic(&kafka().admin("test").unwrap(), &topic, partitions, &[])
        .await
        .unwrap();
    let sr = registry().settings().unwrap();
    for schema in schemas {
        post_schema(
            &sr,
            format!("{topic}-value"),
            SuppliedSchema::new(None, SchemaType::Avro, (*schema).to_owned()),
        )
        .await
        .unwrap();
    }
    topic
}

pub fn generator(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_raw-data-generator"));
    command.args(args).env_remove("RUST_BACKTRACE");
    command
}

pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Every record of `topic`: (partition, seq header, payload).
pub fn read_all(topic: &str) -> Vec<(i32, Vec<u8>)> {
    let consumer = kafka().reader("test-reader").unwrap();
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    let partitions = metadata.topics()[0].partitions().len() as i32;
    let mut out = Vec::new();
    for partition in 0..partitions {
        read_range(
            &consumer,
            topic,
            partition,
            0,
            None,
            Duration::from_secs(60),
            |m| out.push((partition, m.payload().unwrap_or_default().to_vec())),
        )
        .unwrap();
    }
    out
}

/// Each raw record's position in `model`'s sweep, from its SKU, day and hour.
pub async fn sweep_positions(records: &[(i32, Vec<u8>)], model: &Model) -> Vec<u64> {
    let decoder = AvroDecoder::new(registry().settings().unwrap());
    let mut out = Vec::new();
    for (_, payload) in records {
        let value = decoder.decode(Some(payload)).await.unwrap().value;
        let record = RawRecord::from_value(&value).unwrap();
        let sku = model
            .skus
            .iter()
            .position(|s| s.name == record.sku)
            .unwrap();
        let day = NaiveDate::from_ymd_opt(record.year, record.month, record.day).unwrap();
        out.push(model.position(sku, day, record.hour).unwrap());
    }
    out
}
