//! Where an interrupted sweep stopped, read back from the topic.
//!
//! A sweep is fixed by its seed and catalogue size, and a record's SKU, day and hour fix its
//! position in it, so generated records carry no bookkeeping: no headers, which every consumer
//! that looks for its own headers (the backend looks for a replayed copy's origin on every
//! record) would pay to parse, about half of the backend's work per record. A restarted sweep
//! recognises its records by content instead: a record is the sweep's when it equals, field by
//! field, the record the sweep makes at the position its SKU, day and hour name (fields its
//! schema version does not carry are not compared, so a v3 restart recognises a v1 run's
//! records). Another seed names other SKUs; but a `--mode random` run of the same seed, or one
//! with another catalogue size, can make a record that matches by chance (a v1 record carries
//! only a quantity of 51 possible values), so a position counts only when the partition also
//! holds, at an earlier offset, the sweep's previous record for that partition, or when it is
//! the partition's first record of the day range.
//!
//! The producer is idempotent, so within one partition what reached the log is a gap-free
//! prefix of what was sent there; across partitions it is not (one partition's batch may land
//! while another's is lost). So progress is kept per partition: a restarted sweep skips exactly
//! the records whose partition already holds them, and sends every other one, once.

use std::collections::HashMap;
use std::time::Duration;

use chrono::NaiveDate;
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rivulet_common::KafkaArgs;
use rivulet_common::avro::{Reject, Resolver};
use rivulet_common::kafka::{partition_for_key, read_range};
use rivulet_contracts::raw::{self, RawRecord};
use schema_registry_converter::async_impl::schema_registry::SrSettings;
use tokio::runtime::Handle;

use crate::model::{FIRST_HOUR, Model, Record};
use crate::{Error, Result};

/// The highest `seq` of the sweep found in each partition (absent: none there).
pub type Progress = HashMap<i32, u64>;

/// What a resume reads: the topic, the registry its records' schemas are in and the sweep.
pub struct Source<'a> {
    /// Kafka connection.
    pub kafka: &'a KafkaArgs,
    /// Registry of the records' writer schemas.
    pub registry: SrSettings,
    /// Runtime the registry calls run on (this code runs on a blocking thread).
    pub runtime: Handle,
    /// Topic.
    pub topic: &'a str,
    /// Its partition count.
    pub partitions: i32,
}

/// The highest `seq` of `model`'s sweep found in each partition of the topic (absent: none
/// there); `from` is the first day of the run's range. Blocking: run it on a blocking thread.
pub fn progress(
    source: Source<'_>,
    model: &Model,
    from: Option<NaiveDate>,
    timeout: Duration,
) -> Result<Progress> {
    let consumer = source.kafka.reader("raw-data-generator-resume")?;
    let reader = raw::reader_schema()?;
    let mut resolver = Resolver::new(source.registry, source.runtime, reader);
    let sweep = Recogniser::new(model, source.partitions, from);
    let mut found = HashMap::new();
    for partition in 0..source.partitions {
        let (low, high) = consumer
            .fetch_watermarks(source.topic, partition, timeout)
            .map_err(rivulet_common::Error::kafka("reading watermarks"))?;
        // Newest records first, widening the window until the sweep shows up or the partition
        // is exhausted (other producers may have written after us). The newest window reads to
        // the true end of the partition; older ones stop where the previous window began.
        let (mut window, mut end) = (1_000i64, None::<i64>);
        let mut ours: Vec<(i64, u64)> = Vec::new();
        loop {
            let start = (end.unwrap_or(high) - window).max(low);
            let mut candidates: Vec<(i64, u64, RawRecord)> = Vec::new();
            let mut unavailable = None;
            read_range(
                &consumer,
                source.topic,
                partition,
                start,
                end,
                timeout * 6,
                |message| match resolver.decode(message.payload()) {
                    Ok(value) => {
                        if let Ok(record) = RawRecord::from_value(&value)
                            && let Some(seq) = sweep.position(&record)
                        {
                            candidates.push((message.offset(), seq, record));
                        }
                    }
                    // Unreadable or foreign records are not the sweep's; but a record that
                    // cannot be read now might be, and guessing would write it twice.
                    Err(Reject::Unavailable(why)) => unavailable = Some(why),
                    Err(_) => {}
                },
            )?;
            if let Some(why) = unavailable {
                return Err(Error::ResumeUnreadable(why));
            }
            ours.extend(sweep.verified(candidates));
            if let Some(seq) = sweep.settled(&ours, partition) {
                found.insert(partition, seq);
                break;
            }
            if start <= low {
                break;
            }
            end = Some(start);
            window *= 4;
        }
    }
    Ok(found)
}

/// Tells the sweep's records from others.
struct Recogniser<'a> {
    model: &'a Model,
    skus: HashMap<&'a str, usize>,
    partitions: i32,
    /// The first position of the run's day range.
    first: u64,
}

impl<'a> Recogniser<'a> {
    fn new(model: &'a Model, partitions: i32, from: Option<NaiveDate>) -> Self {
        let skus = model
            .skus
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.as_str(), i))
            .collect();
        let first = from
            .and_then(|day| model.position(0, day, FIRST_HOUR))
            .unwrap_or(0);
        Self {
            model,
            skus,
            partitions,
            first,
        }
    }

    /// The position `record` would have in the sweep (not yet checked against the sweep).
    fn position(&self, record: &RawRecord) -> Option<u64> {
        let sku = *self.skus.get(record.sku.as_str())?;
        let day = NaiveDate::from_ymd_opt(record.year, record.month, record.day)?;
        self.model.position(sku, day, record.hour)
    }

    /// The candidates (offset, position, record) that equal the sweep's record at their
    /// position, as (offset, position).
    fn verified(&self, mut candidates: Vec<(i64, u64, RawRecord)>) -> Vec<(i64, u64)> {
        candidates.sort_by_key(|c| c.1);
        let seqs: Vec<u64> = candidates.iter().map(|c| c.1).collect();
        let made: HashMap<u64, Record> = self
            .model
            .records_at(&seqs)
            .into_iter()
            .map(|r| (r.seq, r))
            .collect();
        candidates
            .into_iter()
            .filter(|(_, seq, got)| made.get(seq).is_some_and(|want| same(got, &want.raw())))
            .map(|(offset, seq, _)| (offset, seq))
            .collect()
    }

    /// The sweep's previous position whose SKU lands on `partition`, within the run's range.
    fn previous(&self, seq: u64, partition: i32) -> Option<u64> {
        let skus = self.model.skus.len() as u64;
        (self.first..seq).rev().take(skus as usize).find(|&s| {
            let name = &self.model.skus[(s % skus) as usize].name;
            partition_for_key(name.as_bytes(), self.partitions) == partition
        })
    }

    /// The newest of `ours` (offset, position) whose predecessor in the partition is also there
    /// at an earlier offset, or that is the partition's first record of the range.
    fn settled(&self, ours: &[(i64, u64)], partition: i32) -> Option<u64> {
        let earliest: HashMap<u64, i64> = ours.iter().fold(HashMap::new(), |mut m, &(o, s)| {
            let e = m.entry(s).or_insert(o);
            *e = (*e).min(o);
            m
        });
        let mut newest_first = ours.to_vec();
        newest_first.sort_by_key(|&(offset, _)| std::cmp::Reverse(offset));
        newest_first
            .into_iter()
            .find(|&(offset, seq)| match self.previous(seq, partition) {
                None => true,
                Some(before) => earliest.get(&before).is_some_and(|&o| o < offset),
            })
            .map(|(_, seq)| seq)
    }
}

/// Whether a decoded record equals the sweep's, in the fields it carries.
fn same(got: &RawRecord, want: &RawRecord) -> bool {
    got.sku == want.sku
        && got.manufactured_qty == want.manufactured_qty
        && (got.year, got.month, got.day, got.hour) == (want.year, want.month, want.day, want.hour)
        && got.defect_qty.is_none_or(|d| want.defect_qty == Some(d))
        && got.unit_cost.is_none_or(|c| want.unit_cost == Some(c))
}

/// Whether record `seq` of a key that lands on `partition` is already in the topic.
pub fn already_written(progress: &Progress, partition: i32, seq: u64) -> bool {
    progress.get(&partition).is_some_and(|&last| seq <= last)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sweep's records that land on `partition`, in sweep order.
    fn of_partition(model: &Model, partitions: i32, partition: i32, n: usize) -> Vec<Record> {
        model
            .sweep()
            .filter(|r| partition_for_key(r.sku.as_bytes(), partitions) == partition)
            .take(n)
            .collect()
    }

    #[test]
    fn the_newest_record_with_its_predecessor_before_it_is_where_the_sweep_stopped() {
        let model = Model::new(5, 3);
        let sweep = Recogniser::new(&model, 2, None);
        let p = partition_for_key(model.skus[0].name.as_bytes(), 2);
        let mine = of_partition(&model, 2, p, 40);
        let candidates = |records: &[Record]| -> Vec<(i64, u64, RawRecord)> {
            records
                .iter()
                .enumerate()
                .map(|(i, r)| (i as i64, sweep.position(&r.raw()).unwrap(), r.raw()))
                .collect()
        };
        // A prefix of the partition's records: the last one is where it stopped.
        let ours = sweep.verified(candidates(&mine[..25]));
        assert_eq!(ours.len(), 25);
        assert_eq!(sweep.settled(&ours, p), Some(mine[24].seq));
        // Only the partition's first record: it stands alone.
        let ours = sweep.verified(candidates(&mine[..1]));
        assert_eq!(sweep.settled(&ours, p), Some(mine[0].seq));
        // A record equal to one far ahead (a random run's chance match) written after them
        // has no predecessor before it: not taken.
        let mut log = mine[..25].to_vec();
        log.push(mine[39].clone());
        let ours = sweep.verified(candidates(&log));
        assert_eq!(ours.len(), 26);
        assert_eq!(sweep.settled(&ours, p), Some(mine[24].seq));
        // Nothing of the sweep: nothing found.
        assert_eq!(sweep.settled(&[], p), None);
    }

    #[test]
    fn records_are_compared_in_the_fields_their_version_carries() {
        let model = Model::new(5, 3);
        let sweep = Recogniser::new(&model, 1, None);
        let record = model.sweep().nth(7).unwrap().raw();
        let seq = sweep.position(&record).unwrap();
        assert_eq!(seq, 7);
        let v1 = RawRecord {
            defect_qty: None,
            unit_cost: None,
            ..record.clone()
        };
        let mut other_qty = record.clone();
        other_qty.manufactured_qty += 1;
        let mut other_defects = v1.clone();
        other_defects.defect_qty = Some(record.defect_qty.unwrap() + 1);
        let verified = sweep.verified(vec![
            (0, seq, record.clone()),
            (1, seq, v1),
            (2, seq, other_qty),
            (3, seq, other_defects),
        ]);
        assert_eq!(verified, vec![(0, 7), (1, 7)]);
        let foreign = RawRecord {
            sku: "SKU_000000".into(),
            ..record
        };
        assert_eq!(sweep.position(&foreign), None, "not in this catalogue");
    }

    #[test]
    fn a_range_starts_its_partitions_afresh() {
        let model = Model::new(5, 3);
        let from = NaiveDate::from_ymd_opt(2001, 1, 1).unwrap();
        let sweep = Recogniser::new(&model, 1, Some(from));
        let first = model.position(0, from, FIRST_HOUR).unwrap();
        assert_eq!(sweep.previous(first, 0), None);
        assert_eq!(sweep.previous(first + 1, 0), Some(first));
        let whole = Recogniser::new(&model, 1, None);
        assert_eq!(whole.previous(first, 0), Some(first - 1));
    }

    #[test]
    fn skips_exactly_the_written_prefix_of_each_partition() {
        let progress = HashMap::from([(0, 10), (2, 3)]);
        assert!(already_written(&progress, 0, 10));
        assert!(!already_written(&progress, 0, 11));
        assert!(
            !already_written(&progress, 1, 0),
            "nothing of ours in partition 1"
        );
        assert!(already_written(&progress, 2, 0));
        assert!(!already_written(&progress, 2, 4));
    }
}
