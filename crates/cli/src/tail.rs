//! `rivulet tail`: a topic's records as JSON lines, decoded through the registry.
//!
//! Without `--from-beginning` it prints the last `--max` (10) records, like `tail`; with it,
//! every record from the start (up to `--max`). `--follow` then waits for new ones until
//! interrupted. `--key` keeps the records with that key (scanning whole partitions: a key
//! can be anywhere). Memory stays bounded by `--max` records per partition.

use std::collections::VecDeque;
use std::io::Write;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};
use rivulet_common::kafka::Ends;
use rivulet_common::{KafkaArgs, RegistryClient};
use tokio::runtime::Handle;

use crate::decode::{self, Missing, Position, Writers};
use crate::{Error, Finished};

/// Records printed when neither `--from-beginning` nor `--max` is given.
pub const DEFAULT_LAST: usize = 10;

/// `rivulet tail`.
#[derive(Clone, Debug, clap::Args)]
pub struct TailArgs {
    /// The topic.
    pub topic: String,
    /// Every record from the start of each partition, instead of the last `--max`.
    #[arg(long)]
    pub from_beginning: bool,
    /// Keep waiting for new records (until interrupted).
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Only records with this key.
    #[arg(long)]
    pub key: Option<String>,
    /// At most this many records (default without `--from-beginning`: 10).
    #[arg(long, short = 'n')]
    pub max: Option<usize>,
    /// Only these partitions (repeatable; default: all).
    #[arg(long = "partition", short = 'p')]
    pub partitions: Vec<i32>,
    /// Give up reading to the end of the partitions after this many seconds.
    #[arg(long, default_value_t = 60)]
    pub timeout_secs: u64,
}

/// What one run will do: the pure part of `tail`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Print every (matching) record from the start, at most this many.
    Stream(Option<usize>),
    /// Keep the last this many (matching) records, starting each partition at its high
    /// watermark minus this many unless every record must be scanned (a key filter).
    Last { n: usize, scan: bool },
}

impl Plan {
    /// The plan for these arguments.
    pub fn of(args: &TailArgs) -> Plan {
        if args.from_beginning {
            Plan::Stream(args.max)
        } else {
            Plan::Last {
                n: args.max.unwrap_or(DEFAULT_LAST),
                scan: args.key.is_some(),
            }
        }
    }

    /// Where a partition with offsets `low..high` is read from. The high watermark may be
    /// lower than the true end (Tansu reports the base offset of the last batch + 1): that only
    /// means more records are read, and the last `n` still come out.
    pub fn start(self, low: i64, high: i64) -> i64 {
        match self {
            Plan::Last { n, scan: false } => {
                let n = i64::try_from(n).unwrap_or(i64::MAX);
                high.saturating_sub(n).max(low)
            }
            _ => low,
        }
    }
}

/// A record kept for later printing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kept {
    /// Where it was.
    pub at: Position,
    /// Its key.
    pub key: Option<Vec<u8>>,
    /// Its value.
    pub payload: Option<Vec<u8>>,
}

/// The last `n` records of each partition, merged by time (then partition and offset), of which
/// the last `n` overall.
pub fn last_overall(per_partition: Vec<VecDeque<Kept>>, n: usize) -> Vec<Kept> {
    let mut all: Vec<Kept> = per_partition.into_iter().flatten().collect();
    all.sort_by_key(|k| {
        (
            k.at.timestamp.unwrap_or(i64::MIN),
            k.at.partition,
            k.at.offset,
        )
    });
    let skip = all.len().saturating_sub(n);
    all.split_off(skip)
}

/// Runs `tail` (blocking: call it from a blocking thread).
pub fn tail(
    kafka: &KafkaArgs,
    registry: &RegistryClient,
    runtime: &Handle,
    args: &TailArgs,
) -> Result<Finished, Error> {
    let consumer = kafka.reader("rivulet-cli")?;
    let partitions = crate::topics::partitions(&consumer, &args.topic, &args.partitions)?;
    let plan = Plan::of(args);
    let mut assignment = TopicPartitionList::new();
    for &p in &partitions {
        let (low, high) = consumer
            .fetch_watermarks(&args.topic, p, Duration::from_secs(10))
            .map_err(rivulet_common::Error::kafka("reading watermarks"))?;
        assignment
            .add_partition_offset(&args.topic, p, Offset::Offset(plan.start(low, high)))
            .map_err(rivulet_common::Error::kafka("assigning partitions"))?;
    }
    consumer
        .assign(&assignment)
        .map_err(rivulet_common::Error::kafka("assigning partitions"))?;

    let mut writers = Writers::new(|id| schema_text(registry, runtime, id));
    let mut out = Out::new(args.follow);
    let wanted = |m: &BorrowedMessage<'_>| {
        args.key
            .as_deref()
            .is_none_or(|k| m.key() == Some(k.as_bytes()))
    };
    let deadline = Instant::now() + Duration::from_secs(args.timeout_secs);
    let mut ends = Ends::new(partitions.iter().copied());
    let limit = match plan {
        Plan::Stream(max) => max,
        Plan::Last { n, .. } => {
            let mut kept: Vec<VecDeque<Kept>> = vec![VecDeque::new(); partitions.len()];
            let slot = |p: i32| partitions.iter().position(|&q| q == p);
            let done = poll_stream(&consumer, &mut ends, Some(deadline), |m| {
                if let (true, Some(i)) = (wanted(m), slot(m.partition())) {
                    if kept[i].len() == n {
                        kept[i].pop_front();
                    }
                    kept[i].push_back(keep(m));
                }
                true
            })?;
            for k in last_overall(kept, n) {
                let shown =
                    decode::line(k.at, k.key.as_deref(), k.payload.as_deref(), &mut writers);
                if !out.print(&shown) {
                    return Ok(out.finish(Finished::Stopped));
                }
            }
            if !done {
                return Ok(out.finish(Finished::TimedOut(args.timeout_secs)));
            }
            if !args.follow {
                return Ok(out.finish(Finished::Complete));
            }
            None
        }
    };
    // Streaming: as they come, to the end (or for ever with --follow).
    let mut printed = 0usize;
    let mut open = true;
    let follow = args.follow;
    let ends_deadline = if follow { None } else { Some(deadline) };
    let done = poll_stream(&consumer, &mut ends, ends_deadline, |m| {
        if !wanted(m) {
            return true;
        }
        let shown = decode::line(position(m), m.key(), m.payload(), &mut writers);
        open = out.print(&shown);
        printed += 1;
        open && limit.is_none_or(|max| printed < max)
    })?;
    if !open {
        return Ok(out.finish(Finished::Stopped));
    }
    Ok(
        out.finish(if done || limit.is_some_and(|max| printed >= max) {
            Finished::Complete
        } else {
            Finished::TimedOut(args.timeout_secs)
        }),
    )
}

/// Polls until every partition has reported its end (`true`), `deadline` passes (`false`) or
/// `each` returns `false` (`true`); without a deadline it never stops at the ends (following).
fn poll_stream<C: rdkafka::consumer::ConsumerContext>(
    consumer: &rdkafka::consumer::BaseConsumer<C>,
    ends: &mut Ends,
    deadline: Option<Instant>,
    mut each: impl FnMut(&BorrowedMessage<'_>) -> bool,
) -> Result<bool, Error> {
    loop {
        if let Some(deadline) = deadline {
            if ends.all() {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
        }
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                ends.reached(p);
            }
            Some(Err(e)) => return Err(rivulet_common::Error::kafka("reading")(e).into()),
            Some(Ok(m)) => {
                ends.left(m.partition());
                if !each(&m) {
                    return Ok(true);
                }
            }
        }
    }
}

fn position(m: &BorrowedMessage<'_>) -> Position {
    Position {
        partition: m.partition(),
        offset: m.offset(),
        timestamp: m.timestamp().to_millis(),
    }
}

fn keep(m: &BorrowedMessage<'_>) -> Kept {
    Kept {
        at: position(m),
        key: m.key().map(<[u8]>::to_vec),
        payload: m.payload().map(<[u8]>::to_vec),
    }
}

/// The schema text registered under `id`, over the registry's REST API.
fn schema_text(registry: &RegistryClient, runtime: &Handle, id: u32) -> Result<String, Missing> {
    let path = format!("/schemas/ids/{id}");
    let (status, body) = runtime
        .block_on(registry.send(reqwest::Method::GET, &path, None))
        .map_err(|e| Missing::Unavailable(e.to_string()))?;
    match (status.as_u16(), body["schema"].as_str()) {
        (200, Some(text)) => Ok(text.to_owned()),
        (404, _) => Err(Missing::Unknown(id)),
        (code, _) => Err(Missing::Unavailable(format!(
            "GET {path} answered {code}: {}",
            body["message"].as_str().unwrap_or("no message")
        ))),
    }
}

/// Standard output, line by line; a closed pipe (`| head`) ends the run quietly.
struct Out {
    out: std::io::BufWriter<std::io::Stdout>,
    flush_each: bool,
    printed: u64,
    undecodable: u64,
}

impl Out {
    fn new(flush_each: bool) -> Self {
        Self {
            out: std::io::BufWriter::new(std::io::stdout()),
            flush_each,
            printed: 0,
            undecodable: 0,
        }
    }

    /// Prints one line; `false` once standard output is closed.
    fn print(&mut self, line: &serde_json::Value) -> bool {
        if line.get("error").is_some() {
            self.undecodable += 1;
        }
        self.printed += 1;
        let ok = writeln!(self.out, "{line}").is_ok();
        ok && (!self.flush_each || self.out.flush().is_ok())
    }

    fn finish(mut self, how: Finished) -> Finished {
        let _ = self.out.flush();
        if self.undecodable > 0 {
            eprintln!(
                "rivulet: {} of {} records could not be decoded (their lines say why)",
                self.undecodable, self.printed
            );
        }
        how
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(from_beginning: bool, key: Option<&str>, max: Option<usize>) -> TailArgs {
        TailArgs {
            topic: "t".into(),
            from_beginning,
            follow: false,
            key: key.map(str::to_owned),
            max,
            partitions: vec![],
            timeout_secs: 1,
        }
    }

    #[test]
    fn plans() {
        assert_eq!(Plan::of(&args(true, None, None)), Plan::Stream(None));
        assert_eq!(
            Plan::of(&args(true, Some("k"), Some(3))),
            Plan::Stream(Some(3))
        );
        let last = Plan::of(&args(false, None, None));
        assert_eq!(last, Plan::Last { n: 10, scan: false });
        assert_eq!(last.start(0, 100), 90);
        assert_eq!(last.start(95, 100), 95, "never before the low watermark");
        assert_eq!(last.start(0, 4), 0);
        let keyed = Plan::of(&args(false, Some("k"), Some(2)));
        assert_eq!(keyed.start(5, 100), 5, "a key can be anywhere: scan");
        assert_eq!(
            Plan::Last {
                n: usize::MAX,
                scan: false
            }
            .start(0, 7),
            0
        );
    }

    fn kept(partition: i32, offset: i64, timestamp: i64) -> Kept {
        Kept {
            at: Position {
                partition,
                offset,
                timestamp: Some(timestamp),
            },
            key: None,
            payload: None,
        }
    }

    #[test]
    fn the_last_records_overall_by_time() {
        let p0 = VecDeque::from([kept(0, 1, 10), kept(0, 2, 40)]);
        let p1 = VecDeque::from([kept(1, 8, 20), kept(1, 9, 30)]);
        let got: Vec<(i32, i64)> = last_overall(vec![p0, p1], 3)
            .iter()
            .map(|k| (k.at.partition, k.at.offset))
            .collect();
        assert_eq!(got, vec![(1, 8), (1, 9), (0, 2)]);
        assert!(last_overall(vec![], 3).is_empty());
    }
}
