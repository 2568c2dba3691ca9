//! `rivulet topics`: every topic with its partitions and high watermarks, every consumer group
//! with its committed offsets and lag; `--exact` counts the records by reading each partition
//! to its end (a high watermark is not a record count: transaction markers take offsets, and
//! Tansu reports the base offset of a partition's last batch + 1).

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use rivulet_common::KafkaArgs;
use rivulet_common::kafka::{ConsumerSettings, ReadEnd, ReaderContext, read_to_end};
use serde_json::{Value, json};

use crate::Error;

const TIMEOUT: Duration = Duration::from_secs(10);

/// `rivulet topics`.
#[derive(Clone, Debug, clap::Args)]
pub struct TopicsArgs {
    /// Only topics whose name contains one of these (default: all but the broker's own `__…`).
    pub filters: Vec<String>,
    /// Count the records of each partition by reading it to its end.
    #[arg(long)]
    pub exact: bool,
    /// Only consumer groups whose name contains this.
    #[arg(long)]
    pub group: Option<String>,
    /// One JSON document instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Give up counting one partition after this many seconds (`--exact`).
    #[arg(long, default_value_t = 120)]
    pub timeout_secs: u64,
}

/// One partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// Id.
    pub id: i32,
    /// Low and high watermarks.
    pub watermarks: (i64, i64),
    /// Records read to the end (`--exact`).
    pub records: Option<i64>,
}

/// A group's position in one partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committed {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Committed offset.
    pub offset: i64,
}

/// The partitions of `topic` (only `wanted` ones when given), failing clearly when the topic
/// is missing.
pub fn partitions(
    consumer: &BaseConsumer<ReaderContext>,
    topic: &str,
    wanted: &[i32],
) -> Result<Vec<i32>, Error> {
    let metadata = consumer
        .fetch_metadata(Some(topic), TIMEOUT)
        .map_err(rivulet_common::Error::kafka("reading metadata"))?;
    let found = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
        .map(|t| t.partitions().iter().map(|p| p.id()).collect::<Vec<_>>())
        .filter(|ps| !ps.is_empty())
        .ok_or_else(|| Error::NoTopic(topic.to_owned()))?;
    if let Some(p) = wanted.iter().find(|p| !found.contains(p)) {
        return Err(Error::NoPartition(topic.to_owned(), *p));
    }
    Ok(if wanted.is_empty() {
        found
    } else {
        wanted.to_vec()
    })
}

/// Gathers the report (blocking).
pub fn topics(kafka: &KafkaArgs, args: &TopicsArgs) -> Result<Value, Error> {
    let consumer = kafka.reader("rivulet-cli")?;
    let metadata = consumer
        .fetch_metadata(None, TIMEOUT)
        .map_err(rivulet_common::Error::kafka("reading metadata"))?;
    let mut topics: BTreeMap<String, Vec<Partition>> = BTreeMap::new();
    for t in metadata.topics() {
        if !shown(t.name(), &args.filters) || t.error().is_some() {
            continue;
        }
        let mut partitions = Vec::new();
        for p in t.partitions() {
            let watermarks = consumer
                .fetch_watermarks(t.name(), p.id(), TIMEOUT)
                .map_err(rivulet_common::Error::kafka("reading watermarks"))?;
            let records = if args.exact {
                Some(count(kafka, t.name(), p.id(), args.timeout_secs)?)
            } else {
                None
            };
            partitions.push(Partition {
                id: p.id(),
                watermarks,
                records,
            });
        }
        partitions.sort_by_key(|p| p.id);
        topics.insert(t.name().to_owned(), partitions);
    }
    let groups = groups(kafka, &consumer, &topics, args.group.as_deref())?;
    Ok(report(&topics, &groups))
}

/// Whether a topic is listed.
pub fn shown(name: &str, filters: &[String]) -> bool {
    if filters.is_empty() {
        !name.starts_with("__")
    } else {
        filters.iter().any(|f| name.contains(f.as_str()))
    }
}

/// Records in one partition, read to its end.
fn count(kafka: &KafkaArgs, topic: &str, partition: i32, timeout_secs: u64) -> Result<i64, Error> {
    let consumer = kafka.reader("rivulet-cli-count")?;
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, partition, Offset::Beginning)
        .map_err(rivulet_common::Error::kafka("assigning a partition"))?;
    consumer
        .assign(&assignment)
        .map_err(rivulet_common::Error::kafka("assigning a partition"))?;
    let mut n = 0i64;
    let end = read_to_end(
        &consumer,
        topic,
        &[partition],
        Duration::from_secs(timeout_secs),
        |_| {
            n += 1;
            Ok::<_, rivulet_common::Error>(())
        },
    )?;
    match end {
        ReadEnd::Complete => Ok(n),
        ReadEnd::TimedOut => Err(Error::CountTimedOut {
            topic: topic.to_owned(),
            partition,
            secs: timeout_secs,
            read: n,
        }),
    }
}

/// Every group's committed offsets on the listed topics.
fn groups(
    kafka: &KafkaArgs,
    consumer: &BaseConsumer<ReaderContext>,
    topics: &BTreeMap<String, Vec<Partition>>,
    only: Option<&str>,
) -> Result<BTreeMap<String, (String, Vec<Committed>)>, Error> {
    let list = consumer
        .fetch_group_list(None, TIMEOUT)
        .map_err(rivulet_common::Error::kafka("listing consumer groups"))?;
    let mut all = TopicPartitionList::new();
    for (topic, partitions) in topics {
        for p in partitions {
            all.add_partition(topic, p.id);
        }
    }
    let mut out = BTreeMap::new();
    for g in list.groups() {
        if only.is_some_and(|o| !g.name().contains(o)) || all.count() == 0 {
            continue;
        }
        // A consumer that names the group but never joins it: it only reads the offsets.
        let settings = ConsumerSettings::new("rivulet-cli", Some(g.name().to_owned()));
        let reader: BaseConsumer =
            kafka.base_consumer(&settings, rdkafka::consumer::DefaultConsumerContext)?;
        let committed = reader
            .committed_offsets(all.clone(), TIMEOUT)
            .map_err(rivulet_common::Error::kafka("reading committed offsets"))?;
        let positions: Vec<Committed> = committed
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) => Some(Committed {
                    topic: e.topic().to_owned(),
                    partition: e.partition(),
                    offset: o,
                }),
                _ => None,
            })
            .collect();
        if !positions.is_empty() || only.is_some() {
            out.insert(g.name().to_owned(), (g.state().to_owned(), positions));
        }
    }
    Ok(out)
}

/// The report as JSON: `topics` (name, partitions, high watermarks, records) and `groups`
/// (name, state, per topic the committed offsets' lag behind the high watermarks).
pub fn report(
    topics: &BTreeMap<String, Vec<Partition>>,
    groups: &BTreeMap<String, (String, Vec<Committed>)>,
) -> Value {
    let topic_rows: Vec<Value> = topics
        .iter()
        .map(|(name, ps)| {
            let records = ps.iter().map(|p| p.records).sum::<Option<i64>>();
            json!({
                "topic": name,
                "partitions": ps.len(),
                "high_watermark": ps.iter().map(|p| p.watermarks.1).sum::<i64>(),
                "records": records,
                "by_partition": ps.iter().map(|p| json!({
                    "partition": p.id, "low": p.watermarks.0, "high": p.watermarks.1, "records": p.records,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let high = |topic: &str, partition: i32| {
        topics
            .get(topic)
            .and_then(|ps| ps.iter().find(|p| p.id == partition))
            .map_or(0, |p| p.watermarks.1)
    };
    let mut group_rows = Vec::new();
    for (name, (state, committed)) in groups {
        let mut per_topic: BTreeMap<&str, (i64, i64, usize)> = BTreeMap::new();
        for c in committed {
            let entry = per_topic.entry(c.topic.as_str()).or_default();
            entry.0 += c.offset;
            // Clamped: on Tansu a committed offset can exceed the high watermark (it reports
            // the base offset of the last batch + 1). On Kafka committed <= high always holds,
            // so the clamp changes nothing there.
            entry.1 += (high(&c.topic, c.partition) - c.offset).max(0);
            entry.2 += 1;
        }
        let rows: Vec<Value> = per_topic
            .iter()
            .map(|(topic, (offset, lag, n))| {
                json!({"topic": topic, "partitions": n, "committed": offset, "lag": lag})
            })
            .collect();
        group_rows.push(json!({"group": name, "state": state, "topics": rows}));
    }
    json!({"topics": topic_rows, "groups": group_rows})
}

/// The report as two tables.
pub fn table(report: &Value) -> String {
    let mut rows = vec![vec![
        "TOPIC".to_owned(),
        "PARTITIONS".into(),
        "HIGH-WATERMARK".into(),
        "RECORDS".into(),
    ]];
    let text = |v: &Value| match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    for t in report["topics"].as_array().into_iter().flatten() {
        rows.push(
            ["topic", "partitions", "high_watermark", "records"]
                .iter()
                .map(|f| text(&t[f]))
                .collect(),
        );
    }
    let mut out = crate::columns(&rows);
    let mut groups = vec![vec![
        "GROUP".to_owned(),
        "STATE".into(),
        "TOPIC".into(),
        "COMMITTED".into(),
        "LAG".into(),
    ]];
    for g in report["groups"].as_array().into_iter().flatten() {
        for t in g["topics"].as_array().into_iter().flatten() {
            groups.push(vec![
                text(&g["group"]),
                text(&g["state"]),
                text(&t["topic"]),
                text(&t["committed"]),
                text(&t["lag"]),
            ]);
        }
    }
    out.push('\n');
    out.push_str(&crate::columns(&groups));
    out.push_str(
        "\nHIGH-WATERMARK and LAG are offsets, not record counts: `--exact` counts the records.\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        assert!(shown("raw-data-in", &[]));
        assert!(!shown("__consumer_offsets", &[]));
        assert!(shown("__consumer_offsets", &["consumer".into()]));
        assert!(!shown("raw-data-in", &["summary".into(), "dlq".into()]));
    }

    #[test]
    fn lag_is_high_watermark_minus_committed_never_negative() {
        let topics = BTreeMap::from([(
            "t".to_owned(),
            vec![
                Partition {
                    id: 0,
                    watermarks: (0, 10),
                    records: Some(9),
                },
                Partition {
                    id: 1,
                    watermarks: (0, 5),
                    records: Some(5),
                },
            ],
        )]);
        let committed = |partition, offset| Committed {
            topic: "t".into(),
            partition,
            offset,
        };
        let groups = BTreeMap::from([(
            "g".to_owned(),
            ("Empty".to_owned(), vec![committed(0, 4), committed(1, 7)]),
        )]);
        let r = report(&topics, &groups);
        assert_eq!(r["topics"][0]["high_watermark"], 15);
        assert_eq!(r["topics"][0]["records"], 14);
        assert_eq!(
            r["groups"][0]["topics"][0],
            json!({"topic": "t", "partitions": 2, "committed": 11, "lag": 6})
        );
        let t = table(&r);
        assert!(t.contains("g      Empty  t      11         6"), "{t}");
    }
}
