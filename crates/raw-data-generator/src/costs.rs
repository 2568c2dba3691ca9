//! `raw-data-generator costs`: the yearly hourly base costs on the compacted `base-costs` topic.
//!
//! Key = year (decimal text), value = `BaseCost` (subject `base-costs-value`). Run once before
//! any v3 record. It reads what the topic holds first: years already there with the same cost
//! are left alone, a year with another cost is refused unless `--force`, so a second run with
//! another seed cannot silently change history.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rivulet_common::avro;
use rivulet_common::kafka::{ProducerSettings, ensure_topic, read_range};
use rivulet_contracts::base_cost;
use schema_registry_converter::async_impl::avro::AvroDecoder;

use crate::config::CostsConfig;
use crate::model::{FIRST_YEAR, Model};
use crate::{Error, Result};

/// What `costs` did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CostsSummary {
    /// Years written.
    pub written: Vec<i32>,
    /// Years already stored with the same cost.
    pub unchanged: Vec<i32>,
    /// Years overwritten with `--force`.
    pub forced: Vec<i32>,
}

/// Writes the model's base costs that the topic does not already hold.
pub async fn costs(config: CostsConfig) -> Result<CostsSummary> {
    let model = Model::new(config.common.seed, config.common.skus);
    let kafka = &config.common.kafka;
    let admin = kafka.admin("raw-data-generator-costs")?;
    ensure_topic(&admin, &config.topic, 1, &[("cleanup.policy", "compact")]).await?;
    let stored = read_stored(&config).await?;

    let mut summary = CostsSummary::default();
    let mut to_write = Vec::new();
    let mut conflicts = Vec::new();
    for (i, &cost) in model.base_costs.iter().enumerate() {
        let year = FIRST_YEAR + i as i32;
        match stored.get(&year) {
            Some(&old) if old == cost => summary.unchanged.push(year),
            Some(&old) if !config.force => {
                conflicts.push(format!("{year}: stored {old}, model {cost}"))
            }
            Some(_) => {
                summary.forced.push(year);
                to_write.push((year, cost));
            }
            None => to_write.push((year, cost)),
        }
    }
    if !conflicts.is_empty() {
        return Err(Error::CostConflict(conflicts.join(", ")));
    }

    let schema = base_cost::schema()?;
    let settings = config.common.registry.settings()?;
    let subject = avro::value_subject(&config.topic);
    let registered = avro::lookup_pinned(&settings, &subject, &schema)
        .await
        .map_err(Error::CostsNotRegistered)?;
    let producer: FutureProducer =
        kafka.producer(&ProducerSettings::new("raw-data-generator-costs"))?;
    for (year, cost) in to_write {
        let payload = avro::encode(
            registered.id,
            &registered.schema,
            base_cost::value(year, cost),
        )?;
        let key = base_cost::key(year);
        producer
            .send(
                FutureRecord::to(&config.topic).key(&key).payload(&payload),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| Error::kafka("writing a base cost")(e))?;
        summary.written.push(year);
    }
    producer
        .flush(Duration::from_secs(30))
        .map_err(Error::kafka("flushing"))?;
    tracing::info!(
        written = summary.written.len(),
        unchanged = summary.unchanged.len(),
        forced = summary.forced.len(),
        "Base costs stored."
    );
    Ok(summary)
}

/// The latest stored cost of each year (decoding through the registry, any writer schema).
async fn read_stored(config: &CostsConfig) -> Result<BTreeMap<i32, i64>> {
    let kafka = config.common.kafka.clone();
    let topic = config.topic.clone();
    let raw = tokio::task::spawn_blocking(move || -> Result<Vec<Option<Vec<u8>>>> {
        let consumer = kafka.reader("raw-data-generator-costs")?;
        let timeout = Duration::from_secs(10);
        let (low, _) = consumer
            .fetch_watermarks(&topic, 0, timeout)
            .map_err(Error::kafka("reading watermarks"))?;
        let mut values = Vec::new();
        read_range(&consumer, &topic, 0, low, None, timeout * 3, |message| {
            values.push(message.payload().map(<[u8]>::to_vec))
        })?;
        Ok(values)
    })
    .await
    .map_err(|_| Error::Interrupted)??;
    let decoder = AvroDecoder::new(config.common.registry.settings()?);
    let mut stored = BTreeMap::new();
    for payload in raw.iter().flatten() {
        let decoded = decoder.decode(Some(payload)).await?;
        if let Some((year, cost)) = base_cost::from_value(&decoded.value) {
            stored.insert(year, cost);
        }
    }
    Ok(stored)
}
