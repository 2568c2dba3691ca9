//! Where an interrupted sweep stopped, read back from the topic.
//!
//! Every generated record carries two headers: `rivulet-run` (which sweep: mode, seed and
//! catalogue size) and `rivulet-seq` (its position in that sweep). The producer is idempotent,
//! so within one partition what reached the log is a gap-free prefix of what was sent there;
//! across partitions it is not (one partition's batch may land while another's is lost). So
//! progress is kept per partition: a restarted sweep skips exactly the records whose partition
//! already holds them, and sends every other one, once.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::message::{Headers, Message};
use rivulet_common::KafkaArgs;
use rivulet_common::kafka::read_range;

use crate::Result;

/// Header naming the sweep a record belongs to.
pub const RUN_HEADER: &str = rivulet_contracts::topics::headers::RUN;
/// Header with a record's position in its sweep.
pub const SEQ_HEADER: &str = rivulet_contracts::topics::headers::SEQ;

/// The highest `seq` of a run found in each partition (absent: none there).
pub type Progress = HashMap<i32, u64>;

/// Highest `seq` of run `run` found in each partition of `topic` (absent: none there).
/// Blocking: run it on a blocking thread.
pub fn progress(
    kafka: &KafkaArgs,
    topic: &str,
    run: &str,
    partitions: i32,
    timeout: Duration,
) -> Result<Progress> {
    let consumer = kafka.reader("raw-data-generator-resume")?;
    let mut found = HashMap::new();
    for partition in 0..partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, partition, timeout)
            .map_err(rivulet_common::Error::kafka("reading watermarks"))?;
        // Newest records first, widening the window until this run shows up or the partition is
        // exhausted (other producers may have written after us). The newest window reads to the
        // true end of the partition; older ones stop where the previous window began.
        let (mut window, mut end) = (1_000i64, None::<i64>);
        loop {
            let start = (end.unwrap_or(high) - window).max(low);
            let mut last = None;
            read_range(
                &consumer,
                topic,
                partition,
                start,
                end,
                timeout * 6,
                |message| {
                    if let Some(seq) = message.headers().and_then(|h| sweep_position(h, run)) {
                        last = Some(seq);
                    }
                },
            )?;
            if let Some(seq) = last {
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

/// The `seq` header of a record of run `run`.
fn sweep_position(headers: &rdkafka::message::BorrowedHeaders, run: &str) -> Option<u64> {
    let mut of_run = false;
    let mut seq = None;
    for header in headers.iter() {
        match header.key {
            RUN_HEADER => of_run = header.value == Some(run.as_bytes()),
            SEQ_HEADER => {
                seq = header
                    .value
                    .and_then(|v| std::str::from_utf8(v).ok())
                    .and_then(|v| v.parse().ok())
            }
            _ => {}
        }
    }
    if of_run { seq } else { None }
}

/// Whether record `seq` of a key that lands on `partition` is already in the topic.
pub fn already_written(progress: &Progress, partition: i32, seq: u64) -> bool {
    progress.get(&partition).is_some_and(|&last| seq <= last)
}

#[cfg(test)]
mod tests {
    use super::*;

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
