//! The `kafka` metrics provider (Rivulet's; like KEDA's Kafka scaler it needs no Prometheus):
//! messages behind = log-end offset − the group's committed offset per partition, production
//! rate = the log-end offset's growth since the previous sync, consumption rate = the committed
//! offset's. The first sync has no previous offsets and so no rates (the predictor falls back);
//! the offsets and their time are kept in the Consumer's status, so a restarted operator has
//! rates at its first sync.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rivulet_common::KafkaArgs;
use rivulet_common::kafka::{GroupOffsets, LagReader};

use crate::crd::{KafkaOffsets, KafkaSpec};
use crate::predict::Metrics;

/// What a sync read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reading {
    /// The offsets, per partition.
    pub offsets: Vec<GroupOffsets>,
    /// When.
    pub at: DateTime<Utc>,
}

/// Per partition, messages per second between two readings of an offset (`None` without an
/// earlier reading, or when no time passed); a partition that went backwards (a topic
/// recreated) has no rate.
pub fn rates(
    earlier: &BTreeMap<String, i64>,
    earlier_at: DateTime<Utc>,
    now: &BTreeMap<String, i64>,
    at: DateTime<Utc>,
) -> Option<BTreeMap<i32, i64>> {
    let secs = (at - earlier_at).num_milliseconds() as f64 / 1000.0;
    if secs <= 0.0 || earlier.is_empty() {
        return None;
    }
    Some(
        now.iter()
            .filter_map(|(p, end)| {
                let before = earlier.get(p)?;
                let p: i32 = p.parse().ok()?;
                (end >= before).then(|| (p, ((end - before) as f64 / secs).round() as i64))
            })
            .collect(),
    )
}

/// The metrics of `reading`, with rates against `previous` (the status's last offsets), and
/// the offsets to keep for the next sync.
pub fn metrics(reading: &Reading, previous: Option<&KafkaOffsets>) -> (Metrics, KafkaOffsets) {
    let ends: BTreeMap<String, i64> = reading
        .offsets
        .iter()
        .map(|o| (o.partition.to_string(), o.log_end))
        .collect();
    let committed: BTreeMap<String, i64> = reading
        .offsets
        .iter()
        .filter_map(|o| o.committed.map(|c| (o.partition.to_string(), c)))
        .collect();
    let mut m = Metrics {
        behind: reading
            .offsets
            .iter()
            .map(|o| (o.partition, o.behind(0)))
            .collect(),
        ..Metrics::default()
    };
    if let Some(prev) = previous
        && let Ok(then) = DateTime::parse_from_rfc3339(&prev.time)
    {
        let then = then.with_timezone(&Utc);
        m.production = rates(&prev.log_end, then, &ends, reading.at).unwrap_or_default();
        m.consumption = rates(&prev.committed, then, &committed, reading.at).unwrap_or_default();
    }
    let keep = KafkaOffsets {
        time: reading
            .at
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        log_end: ends,
        committed,
    };
    (m, keep)
}

/// The librdkafka settings of `spec` (security from its Secret's keys, passed in `secret`).
pub fn args(spec: &KafkaSpec, secret: &BTreeMap<String, String>) -> KafkaArgs {
    let mut args = KafkaArgs::plaintext(spec.bootstrap_servers.clone());
    args.options = secret.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    args
}

/// Reads the offsets of `spec`'s group on its topic. Blocking (librdkafka).
pub fn read(
    args: &KafkaArgs,
    spec: &KafkaSpec,
    timeout: Duration,
) -> rivulet_common::Result<Reading> {
    let reader = LagReader::new(args, "consumer-autoscaler", &spec.group_id)?;
    let mut offsets = reader.offsets(&spec.topic, timeout)?;
    for o in offsets.iter_mut().filter(|o| o.committed.is_none()) {
        // Nothing committed yet: everything still in the log is behind.
        let start = reader.log_start(&spec.topic, o.partition, timeout)?;
        o.committed = Some(start.min(o.log_end));
    }
    Ok(Reading {
        offsets,
        at: Utc::now(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    #[test]
    fn rates_between_two_readings() {
        let before: BTreeMap<String, i64> = [("0".into(), 100), ("1".into(), 50)].into();
        let now: BTreeMap<String, i64> =
            [("0".into(), 1100), ("1".into(), 40), ("2".into(), 9)].into();
        let r = rates(&before, at(0), &now, at(10)).unwrap();
        assert_eq!(r, [(0, 100)].into(), "1 went backwards, 2 is new");
        assert!(rates(&before, at(10), &now, at(10)).is_none());
        assert!(rates(&BTreeMap::new(), at(0), &now, at(10)).is_none());
    }

    #[test]
    fn the_first_sync_has_no_rates_and_the_next_has() {
        let first = Reading {
            offsets: vec![
                GroupOffsets {
                    partition: 0,
                    log_end: 1000,
                    committed: Some(400),
                },
                GroupOffsets {
                    partition: 1,
                    log_end: 10,
                    committed: None,
                },
            ],
            at: at(0),
        };
        let (m, kept) = metrics(&first, None);
        assert!(m.production.is_empty());
        assert_eq!(m.behind, [(0, 600), (1, 10)].into());
        let second = Reading {
            offsets: vec![
                GroupOffsets {
                    partition: 0,
                    log_end: 3000,
                    committed: Some(1400),
                },
                GroupOffsets {
                    partition: 1,
                    log_end: 10,
                    committed: Some(10),
                },
            ],
            at: at(20),
        };
        let (m, _) = metrics(&second, Some(&kept));
        assert_eq!(m.production, [(0, 100), (1, 0)].into());
        assert_eq!(m.consumption, [(0, 50)].into());
        assert_eq!(m.lag(0), Duration::from_secs(16));
    }
}
