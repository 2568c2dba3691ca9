//! `rivulet`: looks into a running stack from a shell, reading the same environment as the
//! services (`KAFKA_BOOTSTRAP_SERVERS`, `SCHEMA_REGISTRY_URL`, the `KAFKA_*` and
//! `SCHEMA_REGISTRY_*` credentials):
//!
//! - `rivulet topics`: topics, partitions, high watermarks, consumer groups and their lag;
//!   `--exact` counts records by reading to the end.
//! - `rivulet tail TOPIC`: records as JSON lines, Confluent-framed Avro decoded through the
//!   registry, JSON as it is, anything else as base64; a record that cannot be decoded is
//!   printed with the reason.
//! - `rivulet schemas`: subjects, versions, ids, compatibility levels.
//!
//! What `kcat -C -s value=avro -r URL` and `kcat -L` give, for a stack kcat cannot talk to.

pub mod decode;
pub mod schemas;
pub mod tail;
pub mod topics;

use std::process::ExitCode;

use rivulet_common::{KafkaArgs, LogArgs, RegistryArgs};

/// Looks into a Rivulet stack: topics and lag, records decoded through the schema registry,
/// the registry's subjects.
#[derive(Debug, clap::Parser)]
#[command(name = "rivulet", version, about, long_about = None)]
pub struct Cli {
    /// Logging (librdkafka's complaints go to standard error).
    #[command(flatten)]
    pub log: LogArgs,
    /// Kafka.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Schema registry.
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// What to show.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Topics, partitions, high watermarks; consumer groups and their lag.
    Topics(topics::TopicsArgs),
    /// A topic's records as JSON lines (the last 10 unless told otherwise).
    Tail(tail::TailArgs),
    /// The registry's subjects, versions, ids and compatibility levels.
    Schemas(schemas::SchemasArgs),
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Kafka or registry client trouble.
    #[error(transparent)]
    Common(#[from] rivulet_common::Error),
    /// The topic does not exist.
    #[error("topic {0:?} not found (rivulet topics lists them)")]
    NoTopic(String),
    /// The partition does not exist.
    #[error("topic {0:?} has no partition {1}")]
    NoPartition(String, i32),
    /// Counting did not reach the end in time.
    #[error(
        "counting {topic}/{partition} did not reach its end within {secs} s ({read} records read); raise --timeout-secs"
    )]
    CountTimedOut {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// The limit.
        secs: u64,
        /// Records read before it.
        read: i64,
    },
    /// The registry answered an error.
    #[error("schema registry: GET {path} answered {status}: {message}")]
    Registry {
        /// The request path.
        path: String,
        /// HTTP status.
        status: u16,
        /// The registry's message.
        message: String,
    },
    /// A blocking task died.
    #[error("internal: {0}")]
    Join(String),
}

/// How a `tail` ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finished {
    /// Everything asked for was printed.
    Complete,
    /// Standard output was closed (`| head`).
    Stopped,
    /// The partitions' ends were not reached within this many seconds.
    TimedOut(u64),
}

/// Runs one command.
pub async fn run(cli: Cli) -> Result<ExitCode, Error> {
    let Cli {
        kafka,
        registry,
        command,
        ..
    } = cli;
    match command {
        Command::Topics(args) => {
            let report = tokio::task::spawn_blocking(move || {
                topics::topics(&kafka, &args).map(|r| (r, args.json))
            })
            .await
            .map_err(|e| Error::Join(e.to_string()))??;
            print(&report.0, report.1, topics::table);
            Ok(ExitCode::SUCCESS)
        }
        Command::Schemas(args) => {
            let report = schemas::schemas(&registry.client()?, &args).await?;
            print(&report, args.json, schemas::table);
            Ok(ExitCode::SUCCESS)
        }
        Command::Tail(args) => {
            let client = registry.client()?;
            let runtime = tokio::runtime::Handle::current();
            let finished =
                tokio::task::spawn_blocking(move || tail::tail(&kafka, &client, &runtime, &args))
                    .await
                    .map_err(|e| Error::Join(e.to_string()))??;
            Ok(match finished {
                Finished::Complete | Finished::Stopped => ExitCode::SUCCESS,
                Finished::TimedOut(secs) => {
                    eprintln!(
                        "rivulet: the partitions' ends were not reached within {secs} s (--timeout-secs)"
                    );
                    ExitCode::FAILURE
                }
            })
        }
    }
}

fn print(report: &serde_json::Value, json: bool, table: fn(&serde_json::Value) -> String) {
    if json {
        println!("{report:#}");
    } else {
        print!("{}", table(report));
    }
}

/// Rows as left-aligned columns, two spaces apart (the last column unpadded).
pub fn columns(rows: &[Vec<String>]) -> String {
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..n)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let last = row.len().saturating_sub(1);
        for (i, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if i < last {
                let pad = widths[i] - cell.chars().count() + 2;
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    }
    out
}
