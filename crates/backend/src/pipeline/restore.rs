//! Restoring a partition's state from `summary-stats`: the latest summary of each key among
//! those covering no more than the committed input offset.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::Offset;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rivulet_common::avro::Reject;
use rivulet_common::kafka::read_range;
use rivulet_contracts::summary;
use rivulet_contracts::topics::headers;

use super::state::state_key;
use crate::aggregate::Aggregator;
use crate::pending::Pending;
use crate::settings::{Failure, Settings};
use crate::txn::Writer;

/// A partition's writer and state, restored up to the committed input offset.
pub(crate) struct Restored {
    pub(crate) writer: Writer,
    pub(crate) aggregator: Aggregator,
    pub(crate) pending: Pending,
}

/// A key's latest summary record: its offset and payload (`None` for a tombstone).
type Latest = (i64, Option<Vec<u8>>);

/// Reads the partition's summaries back: the latest of each key among those covering no more
/// than the committed input offset. Writer schemas it does not know are asked of the registry
/// (a newer backend may have written the summary); a summary that still cannot be read fails
/// the restore ([`Failure::UnreadableSummary`]), never restarting its key from 0.
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
    let reader = settings
        .kafka
        .reader(&format!("backend-restore-{partition}"))?;
    // The latest summary of each key: its offset and payload (`None`: a tombstone).
    let mut latest: HashMap<Option<Vec<u8>>, Latest> = HashMap::new();
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
            let key = message.key().map(<[u8]>::to_vec);
            match (covers, message.payload()) {
                (Some(covers), Some(payload)) if covers <= covered_limit => {
                    latest.insert(key, (message.offset(), Some(payload.to_vec())));
                }
                // A tombstone removes its key (an operator removing an unreadable summary).
                (_, None) => {
                    latest.insert(key, (message.offset(), None));
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
    let mut resolver = settings
        .summaries
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut aggregator = Aggregator::default();
    for (offset, payload) in latest.into_values() {
        let Some(payload) = payload else { continue };
        let unreadable = |reason: String| Failure::UnreadableSummary {
            topic: settings.output.clone(),
            partition,
            offset,
            reason,
        };
        let value = match resolver.decode(Some(&payload)) {
            Ok(value) => value,
            Err(Reject::Unavailable(why)) => return Err(Failure::RegistryUnavailable(why)),
            Err(reject) => return Err(unreadable(reject.to_string())),
        };
        let (key, totals) = summary::from_value(&value)
            .ok_or_else(|| unreadable("not a summary of the expected shape".into()))?;
        aggregator.restore(key, totals);
    }
    let pending = restore_pending(settings, partition, covered_limit)?;
    Ok(Restored {
        writer,
        aggregator,
        pending,
    })
}

/// The partition's pending dead letters: its latest state record covering no more than the
/// committed input offset (none: nothing pending, as after a rewind to the start).
fn restore_pending(
    settings: &Settings,
    partition: i32,
    covered_limit: i64,
) -> Result<Pending, Failure> {
    let reader = settings
        .kafka
        .reader(&format!("backend-restore-state-{partition}"))?;
    let key = state_key(&settings.group, partition);
    let mut latest: Option<(i64, Vec<u8>)> = None;
    read_range(
        &reader,
        &settings.state,
        0,
        0,
        None,
        Duration::from_secs(120),
        |message| {
            if message.key() != Some(key.as_bytes()) {
                return;
            }
            let covers = header(message, headers::INPUT_OFFSET)
                .and_then(|v| std::str::from_utf8(v).ok()?.parse::<i64>().ok());
            match (covers, message.payload()) {
                (Some(covers), Some(payload)) if covers <= covered_limit => {
                    latest = Some((message.offset(), payload.to_vec()));
                }
                (_, None) => latest = None,
                _ => {}
            }
        },
    )?;
    match latest {
        None => Ok(Pending::default()),
        Some((offset, bytes)) => {
            Pending::decode(&bytes).map_err(|reason| Failure::UnreadableState {
                topic: settings.state.clone(),
                partition,
                offset,
                reason,
            })
        }
    }
}

/// The value of header `name` of `message`.
fn header<'a>(message: &'a BorrowedMessage<'_>, name: &str) -> Option<&'a [u8]> {
    message.headers()?.iter().find(|h| h.key == name)?.value
}
