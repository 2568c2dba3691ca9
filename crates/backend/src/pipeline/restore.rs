//! Restoring a partition's state from `summary-stats`: the latest summary of each key among
//! those covering no more than the committed input offset.

use std::collections::HashMap;
use std::time::Duration;

use apache_avro::reader::datum::GenericDatumReader;
use rdkafka::Offset;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rivulet_common::kafka::read_range;
use rivulet_contracts::summary::{self, MonthKey, Totals};
use rivulet_contracts::topics::headers;

use crate::aggregate::Aggregator;
use crate::settings::{Failure, Settings};
use crate::txn::Writer;

/// A partition's writer and state, restored up to the committed input offset.
pub(crate) struct Restored {
    pub(crate) writer: Writer,
    pub(crate) aggregator: Aggregator,
}

/// Reads the partition's summaries back: the latest of each key among those covering no more
/// than the committed input offset.
pub(crate) fn restore(
    settings: &Settings,
    partition: i32,
    writer: Writer,
    offset: Offset,
) -> Result<Restored, Failure> {
    let covered_limit = match offset {
        Offset::Offset(n) => n,
        _ => 0,
    };
    let mut aggregator = Aggregator::default();
    let reader = settings
        .kafka
        .reader(&format!("backend-restore-{partition}"))?;
    let mut latest = HashMap::new();
    let mut ignored = 0u64;
    read_range(
        &reader,
        &settings.output,
        partition,
        0,
        None,
        Duration::from_secs(120),
        |message| {
            let covers = header(message, headers::INPUT_OFFSET)
                .and_then(|v| std::str::from_utf8(v).ok()?.parse::<i64>().ok());
            match (covers, message.payload()) {
                (Some(covers), Some(payload)) if covers <= covered_limit => {
                    latest.insert(message.key().map(<[u8]>::to_vec), payload.to_vec());
                }
                _ => ignored += 1,
            }
        },
    )?;
    if ignored > 0 {
        tracing::warn!(
            partition,
            ignored,
            "Ignored summaries beyond the committed input offset (an unfinished transaction)."
        );
    }
    for payload in latest.values() {
        if let Some((key, totals)) = restore_value(settings, payload) {
            aggregator.restore(key, totals);
        }
    }
    Ok(Restored { writer, aggregator })
}

/// A summary payload written by any backend version, as totals.
fn restore_value(settings: &Settings, payload: &[u8]) -> Option<(MonthKey, Totals)> {
    let (id, mut body) = rivulet_common::avro::unframe(payload).ok()?;
    let Some(writer) = settings.summary_writers.get(&id) else {
        tracing::warn!(
            id,
            "A summary with an unknown schema id was ignored while restoring."
        );
        return None;
    };
    let reader = GenericDatumReader::builder(writer)
        .reader_schema(&settings.summary_reader)
        .build()
        .ok()?;
    summary::from_value(&reader.read_value(&mut body).ok()?)
}

/// The value of header `name` of `message`.
fn header<'a>(message: &'a BorrowedMessage<'_>, name: &str) -> Option<&'a [u8]> {
    message.headers()?.iter().find(|h| h.key == name)?.value
}
