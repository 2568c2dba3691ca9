//! `raw-data-generator run`: the producing loop.

use std::collections::VecDeque;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rivulet_common::avro;
use rivulet_common::kafka::{ProducerSettings, ensure_topic, partition_for_key};
use tokio_util::sync::CancellationToken;

use crate::config::{Mode, RunConfig};
use crate::model::{Model, Record};
use crate::resume;
use crate::{Error, Result};
use rivulet_contracts::raw;

/// Deliveries awaited at most at once; more waits for the oldest.
const IN_FLIGHT: usize = 20_000;
/// Broker metadata and resume reads.
const TIMEOUT: Duration = Duration::from_secs(10);

/// What a run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Records written by this run.
    pub written: u64,
    /// Sweep records skipped because an earlier run already wrote them.
    pub resumed_past: u64,
}

/// Produces records until done or `token` is cancelled; waits for every delivery.
pub async fn run(config: RunConfig, token: CancellationToken) -> Result<Summary> {
    let model = Model::new(config.common.seed, config.common.skus);
    let target = Target::open(&config).await?;
    let progress = resume_progress(&config, &model, target.partitions).await?;
    let started = Instant::now();
    let summary = produce(&config, &model, &target, &progress, &token).await?;
    let flush = target.producer.clone();
    tokio::task::spawn_blocking(move || flush.flush(Duration::from_secs(30)))
        .await
        .map_err(|_| Error::Interrupted)?
        .map_err(Error::kafka("flushing"))?;
    tracing::info!(
        written = summary.written,
        resumed_past = summary.resumed_past,
        elapsed_s = started.elapsed().as_secs_f64(),
        "Generator finished."
    );
    Ok(summary)
}

/// Where records go: the topic's partition count, the producer and the registered schema.
struct Target {
    registered: avro::RegisteredSchema,
    producer: FutureProducer,
    partitions: i32,
}

impl Target {
    /// Looks the schema up (never registers it), builds the producer, creates the topic when
    /// asked, and learns its partitions.
    async fn open(config: &RunConfig) -> Result<Target> {
        let schema = raw::schema(config.schema_version)?;
        let settings = config.common.registry.settings()?;
        let subject = avro::value_subject(&config.topic);
        let registered = avro::lookup_pinned(&settings, &subject, &schema)
            .await
            .map_err(|source| Error::NotRegistered {
                version: config.schema_version,
                source,
            })?;
        let producer: FutureProducer = config
            .common
            .kafka
            .producer(&ProducerSettings::new("raw-data-generator"))?;
        if let Some(n) = config.create_topic {
            let admin = config.common.kafka.admin("raw-data-generator-topics")?;
            if ensure_topic(&admin, &config.topic, n, &[]).await? {
                tracing::info!(topic = config.topic, partitions = n, "Created the topic.");
            }
        }
        let partitions = partition_count(&producer, &config.topic, TIMEOUT).await?;
        Ok(Target {
            registered,
            producer,
            partitions,
        })
    }
}

/// How far an earlier run of the same sweep got in each partition (nothing for random runs).
async fn resume_progress(
    config: &RunConfig,
    model: &Model,
    partitions: i32,
) -> Result<resume::Progress> {
    if config.mode != Mode::Sweep {
        return Ok(Default::default());
    }
    let (config, model) = (config.clone(), model.clone());
    let runtime = tokio::runtime::Handle::current();
    let progress = tokio::task::spawn_blocking(move || {
        let source = resume::Source {
            kafka: &config.common.kafka,
            registry: config.common.registry.settings()?,
            runtime,
            topic: &config.topic,
            partitions,
        };
        resume::progress(source, &model, config.from, TIMEOUT)
    })
    .await
    .map_err(|_| Error::Interrupted)??;
    if !progress.is_empty() {
        tracing::info!(
            partitions = progress.len(),
            "Resuming a sweep after the records already in the topic."
        );
    }
    Ok(progress)
}

/// What to do with the next record of the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// Write it.
    Take,
    /// Outside `--from`/`--to`: skip it.
    Skip,
    /// A sweep is in time order: past `--to` nothing more is in range.
    Stop,
}

/// Whether `record` is in the run's day range (`--from`, `--to`; sweeps only).
fn step(config: &RunConfig, record: &Record) -> Step {
    if config.mode != Mode::Sweep {
        return Step::Take;
    }
    let day = chrono::NaiveDate::from_ymd_opt(record.year, record.month, record.day);
    if config.to.is_some_and(|to| day > Some(to)) {
        Step::Stop
    } else if config.from.is_some_and(|from| day < Some(from)) {
        Step::Skip
    } else {
        Step::Take
    }
}

/// The producing loop: every record in range and not already written, paced, encoded and
/// queued, with at most [`IN_FLIGHT`] deliveries outstanding.
async fn produce(
    config: &RunConfig,
    model: &Model,
    target: &Target,
    progress: &resume::Progress,
    token: &CancellationToken,
) -> Result<Summary> {
    let records: Box<dyn Iterator<Item = Record> + Send + '_> = match config.mode {
        Mode::Sweep => Box::new(model.sweep()),
        Mode::Random => Box::new(model.random()),
    };
    let total = match config.mode {
        Mode::Sweep => Some(config.count.unwrap_or(model.sweep_len())),
        Mode::Random => config.count,
    };
    let mut pending: VecDeque<DeliveryFuture> = VecDeque::new();
    let mut summary = Summary::default();
    let mut report = Reporter::new(total);
    let started = Instant::now();
    for record in records {
        if token.is_cancelled() || config.count.is_some_and(|n| summary.written >= n) {
            break;
        }
        match step(config, &record) {
            Step::Take => {}
            Step::Skip => continue,
            Step::Stop => break,
        }
        let partition = partition_for_key(record.sku.as_bytes(), target.partitions);
        if resume::already_written(progress, partition, record.seq) {
            summary.resumed_past += 1;
            continue;
        }
        if config.rate > 0 {
            pace(config.rate, summary.written, started, token).await;
        }
        let payload = avro::encode(
            target.registered.id,
            &target.registered.schema,
            raw::value(config.schema_version, &record.raw()),
        )?;
        // No headers: a resumed sweep recognises its records by content (`resume`).
        let message = FutureRecord::to(&config.topic)
            .key(&record.sku)
            .payload(&payload);
        queue(&target.producer, &mut pending, message).await?;
        summary.written += 1;
        report.tick(summary.written);
    }
    settle(&mut pending, usize::MAX).await?;
    report.done(summary.written);
    Ok(summary)
}

/// Queues `message`, waiting for deliveries while librdkafka's queue is full.
async fn queue<'a>(
    producer: &FutureProducer,
    pending: &mut VecDeque<DeliveryFuture>,
    mut message: FutureRecord<'a, String, Vec<u8>>,
) -> Result<()> {
    loop {
        match producer.send_result(message) {
            Ok(delivery) => {
                pending.push_back(delivery);
                break;
            }
            Err((e, returned)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) => {
                message = returned;
                settle(pending, 1).await?;
            }
            Err((e, _)) => return Err(Error::kafka("queueing a record")(e)),
        }
    }
    if pending.len() >= IN_FLIGHT {
        settle(pending, IN_FLIGHT / 2).await?;
    }
    Ok(())
}

/// Awaits the oldest deliveries until at most `keep` remain (all with `usize::MAX`).
async fn settle(pending: &mut VecDeque<DeliveryFuture>, count: usize) -> Result<()> {
    for _ in 0..count.min(pending.len()) {
        let Some(delivery) = pending.pop_front() else {
            break;
        };
        match delivery.await {
            Ok(Ok(_)) => {}
            Ok(Err((e, _))) => return Err(Error::kafka("delivering a record")(e)),
            Err(_) => return Err(Error::Interrupted),
        }
    }
    Ok(())
}

/// Sleeps so that `written` records take at least `written / rate` seconds since `started`.
async fn pace(rate: u64, written: u64, started: Instant, token: &CancellationToken) {
    let due = started + Duration::from_secs_f64(written as f64 / rate as f64);
    let now = Instant::now();
    if due > now {
        tokio::select! {
            () = tokio::time::sleep(due - now) => {}
            () = token.cancelled() => {}
        }
    }
}

async fn partition_count(producer: &FutureProducer, topic: &str, timeout: Duration) -> Result<i32> {
    let (producer, name) = (producer.clone(), topic.to_owned());
    let count = tokio::task::spawn_blocking(move || {
        producer
            .client()
            .fetch_metadata(Some(&name), timeout)
            .map(|m| {
                m.topics().first().map_or(0, |t| {
                    if t.error().is_some() {
                        0
                    } else {
                        t.partitions().len()
                    }
                })
            })
    })
    .await
    .map_err(|_| Error::Interrupted)?
    .map_err(Error::kafka("reading topic metadata"))?;
    match i32::try_from(count) {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(Error::NoTopic(topic.to_owned())),
    }
}

/// Progress: a line redrawn in a terminal, a log line every 10 s otherwise.
struct Reporter {
    total: Option<u64>,
    terminal: bool,
    started: Instant,
    last: Instant,
}

impl Reporter {
    fn new(total: Option<u64>) -> Self {
        let now = Instant::now();
        Self {
            total,
            terminal: std::io::stderr().is_terminal(),
            started: now,
            last: now,
        }
    }

    fn tick(&mut self, written: u64) {
        let every = if self.terminal {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(10)
        };
        if self.last.elapsed() < every {
            return;
        }
        self.last = Instant::now();
        let rate = written as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
        if self.terminal {
            let of = self.total.map(|t| format!("/{t}")).unwrap_or_default();
            eprint!("\r\x1b[2K{written}{of} records  {rate:.0}/s");
        } else {
            tracing::info!(
                written,
                total = self.total,
                rate_per_s = rate as u64,
                "Producing."
            );
        }
    }

    fn done(&self, written: u64) {
        if self.terminal {
            eprintln!("\r\x1b[2K{written} records written.");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests
    use clap::Parser;

    use super::*;
    use crate::config::{Cli, Command};

    fn config(args: &[&str]) -> RunConfig {
        let mut argv = vec!["raw-data-generator", "run"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Run(config) => config,
            Command::Costs(_) => unreachable!("parsed `run`"),
        }
    }

    #[test]
    fn a_sweep_takes_its_days_and_stops_past_the_last() {
        let model = Model::new(1, 1);
        let first = model.sweep().next().unwrap(); // 2000-01-01
        let in_range = config(&["--from", "2000-01-01", "--to", "2000-01-01"]);
        assert_eq!(step(&in_range, &first), Step::Take);
        let later = config(&["--from", "2000-01-02"]);
        assert_eq!(step(&later, &first), Step::Skip);
        let earlier = config(&["--to", "1999-12-31"]);
        assert_eq!(step(&earlier, &first), Step::Stop);
        let random = config(&["--mode", "random", "--to", "1999-12-31"]);
        assert_eq!(step(&random, &first), Step::Take);
    }
}
