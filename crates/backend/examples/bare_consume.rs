//! Benchmark baseline (scripts/bench-pipeline): a bare rdkafka consumer with the backend's
//! consumer settings (group, `read_committed`) that reads a topic to its end and only touches
//! each payload. Prints `records seconds cpu_seconds bytes broker_cpu_seconds middle_seconds`
//! from the first record to the last (the broker's CPU from `/proc/BROKER_PID` when that is
//! set, else 0), and the seconds between the quarter and the three quarters of the records
//! (the pace without the start and the end).
//!
//! Usage: bare_consume TOPIC GROUP EXPECTED_RECORDS (broker from KAFKA_BOOTSTRAP_SERVERS).

use std::time::{Duration, Instant};

use clap::Parser;
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rivulet_common::KafkaArgs;
use rivulet_common::kafka::ConsumerSettings;

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    kafka: KafkaArgs,
    topic: String,
    group: String,
    expected: u64,
}

fn cpu_seconds(process: &str) -> f64 {
    // utime + stime of the process, in clock ticks (100 Hz on Linux).
    let stat = std::fs::read_to_string(format!("/proc/{process}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut settings = ConsumerSettings::new("bare-consume", Some(args.group));
    settings.read_committed = true;
    let consumer: BaseConsumer = args.kafka.consumer_config(&settings).create()?;
    consumer.subscribe(&[&args.topic])?;
    let broker = std::env::var("BROKER_PID").ok();
    let broker_cpu = || broker.as_deref().map_or(0.0, cpu_seconds);
    let (mut records, mut bytes) = (0u64, 0u64);
    let mut first: Option<(Instant, f64, f64)> = None;
    let mut last = (Instant::now(), 0.0, 0.0);
    let (quarter, three_quarters) = (args.expected / 4, args.expected * 3 / 4);
    let mut middle: (Option<Instant>, Option<Instant>) = (None, None);
    while records < args.expected {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                if first.is_none() {
                    first = Some((Instant::now(), cpu_seconds("self"), broker_cpu()));
                }
                bytes += message.payload().map_or(0, |p| p.len() as u64);
                records += 1;
                last.0 = Instant::now();
                if records == quarter {
                    middle.0 = Some(last.0);
                }
                if records == three_quarters {
                    middle.1 = Some(last.0);
                }
            }
            Some(Err(KafkaError::PartitionEOF(_))) | None => {}
            Some(Err(e)) => eprintln!("consumer error: {e}"),
        }
    }
    (last.1, last.2) = (cpu_seconds("self"), broker_cpu());
    let (t0, c0, b0) = first.unwrap_or(last);
    let middle = match middle {
        (Some(a), Some(b)) => (b - a).as_secs_f64(),
        _ => 0.0,
    };
    println!(
        "{records} {:.3} {:.3} {bytes} {:.3} {middle:.3}",
        (last.0 - t0).as_secs_f64(),
        last.1 - c0,
        last.2 - b0
    );
    Ok(())
}
