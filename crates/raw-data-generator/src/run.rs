//! `raw-data-generator run`: the producing loop.

use std::collections::VecDeque;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rivulet_common::avro;
use rivulet_common::kafka::{ProducerSettings, ensure_topic, partition_for_key};
use tokio_util::sync::CancellationToken;

use crate::config::{Mode, RunConfig};
use crate::model::{Model, Record};
use crate::resume::{self, RUN_HEADER, SEQ_HEADER};
use crate::{Error, Result};
use rivulet_contracts::raw;

/// Deliveries awaited at most at once; more waits for the oldest.
const IN_FLIGHT: usize = 20_000;

/// What a run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Records written by this run.
    pub written: u64,
    /// Sweep records skipped because an earlier run already wrote them.
    pub resumed_past: u64,
}

/// The name of a sweep in the `rivulet-run` header: what makes two runs the same sweep.
pub fn run_name(config: &RunConfig) -> String {
    let mode = match config.mode {
        Mode::Sweep => "sweep",
        Mode::Random => "random",
    };
    format!(
        "{mode}:seed={}:skus={}",
        config.common.seed, config.common.skus
    )
}

/// Produces records until done or `token` is cancelled; waits for every delivery.
pub async fn run(config: RunConfig, token: CancellationToken) -> Result<Summary> {
    let model = Model::new(config.common.seed, config.common.skus);
    let schema = raw::schema(config.schema_version)?;
    let settings = config.common.registry.settings()?;
    let subject = avro::value_subject(&config.topic);
    let registered = avro::lookup(&settings, &subject, &schema)
        .await
        .map_err(|source| Error::NotRegistered {
            subject: subject.clone(),
            version: config.schema_version,
            source,
        })?;
    let producer: FutureProducer = config
        .common
        .kafka
        .producer(&ProducerSettings::new("raw-data-generator"))?;
    let timeout = Duration::from_secs(10);
    if let Some(n) = config.create_topic {
        let admin = config.common.kafka.admin("raw-data-generator-topics")?;
        if ensure_topic(&admin, &config.topic, n, &[]).await? {
            tracing::info!(topic = config.topic, partitions = n, "Created the topic.");
        }
    }
    let partitions = partition_count(&producer, &config.topic, timeout).await?;
    let run = run_name(&config);

    let progress = match config.mode {
        Mode::Sweep => {
            let (kafka, topic, name) = (
                config.common.kafka.clone(),
                config.topic.clone(),
                run.clone(),
            );
            tokio::task::spawn_blocking(move || {
                resume::progress(&kafka, &topic, &name, partitions, timeout)
            })
            .await
            .map_err(|_| Error::Interrupted)??
        }
        Mode::Random => Default::default(),
    };
    if !progress.is_empty() {
        tracing::info!(
            run,
            partitions = progress.len(),
            "Resuming a sweep after the records already in the topic."
        );
    }

    let records: Box<dyn Iterator<Item = Record> + Send + '_> = match config.mode {
        Mode::Sweep => Box::new(model.sweep()),
        Mode::Random => Box::new(model.random()),
    };
    let in_range = |r: &Record| {
        let day = chrono::NaiveDate::from_ymd_opt(r.year, r.month, r.day);
        config.from.is_none_or(|from| day >= Some(from))
            && config.to.is_none_or(|to| day <= Some(to))
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
        if config.mode == Mode::Sweep && !in_range(&record) {
            // A sweep is in time order: past `--to` nothing more is in range.
            if config.to.is_some_and(|to| {
                chrono::NaiveDate::from_ymd_opt(record.year, record.month, record.day) > Some(to)
            }) {
                break;
            }
            continue;
        }
        let partition = partition_for_key(record.sku.as_bytes(), partitions);
        if resume::already_written(&progress, partition, record.seq) {
            summary.resumed_past += 1;
            continue;
        }
        if config.rate > 0 {
            pace(config.rate, summary.written, started, &token).await;
        }
        let payload = avro::encode(
            registered.id,
            &registered.schema,
            raw::value(config.schema_version, &record.raw()),
        )?;
        let seq = record.seq.to_string();
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: RUN_HEADER,
                value: Some(run.as_str()),
            })
            .insert(Header {
                key: SEQ_HEADER,
                value: Some(seq.as_str()),
            });
        let mut message = FutureRecord::to(&config.topic)
            .key(&record.sku)
            .payload(&payload)
            .headers(headers);
        loop {
            match producer.send_result(message) {
                Ok(delivery) => {
                    pending.push_back(delivery);
                    break;
                }
                Err((e, returned))
                    if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) =>
                {
                    message = returned;
                    settle(&mut pending, 1).await?;
                }
                Err((e, _)) => return Err(Error::kafka("queueing a record")(e)),
            }
        }
        if pending.len() >= IN_FLIGHT {
            settle(&mut pending, IN_FLIGHT / 2).await?;
        }
        summary.written += 1;
        report.tick(summary.written);
    }
    settle(&mut pending, usize::MAX).await?;
    let flush = producer.clone();
    tokio::task::spawn_blocking(move || flush.flush(Duration::from_secs(30)))
        .await
        .map_err(|_| Error::Interrupted)?
        .map_err(Error::kafka("flushing"))?;
    report.done(summary.written);
    tracing::info!(
        written = summary.written,
        resumed_past = summary.resumed_past,
        elapsed_s = started.elapsed().as_secs_f64(),
        "Generator finished."
    );
    Ok(summary)
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
