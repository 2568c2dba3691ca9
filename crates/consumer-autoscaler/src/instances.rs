//! The Deployments of a `Consumer`, as pure functions: partition groups, names, labels,
//! annotations and environment, the way Konsumerator sets them (so its dashboards, alerts and
//! consumers work unchanged), and which existing Deployment is kept, replaced or removed.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::EnvVar;

/// Annotation: the instance's partitions, comma-separated.
pub const PARTITION: &str = "konsumerator.lwolf.org/partition";
/// Annotation: the instance number.
pub const CONSUMER_ID: &str = "konsumerator.lwolf.org/consumer-id";
/// Annotation: the template hash the Deployment was made from.
pub const GENERATION: &str = "konsumerator.lwolf.org/generation";
/// Annotation: the scaling state.
pub const SCALING_STATUS: &str = "konsumerator.lwolf.org/scaling-status";
/// Annotation: when the scaling state last changed (RFC 3339).
pub const SCALING_STATUS_CHANGE: &str = "konsumerator.lwolf.org/scaling-status-change";
/// Annotation: milli-cores the limits withhold.
pub const CPU_SATURATION: &str = "konsumerator.lwolf.org/cpu-saturation-level";
/// Annotation (Consumer or Deployment): do not scale.
pub const DISABLE_AUTOSCALER: &str = "konsumerator.lwolf.org/disable-autoscaler";
/// Annotation (Consumer or Deployment): log each decision.
pub const VERBOSE: &str = "konsumerator.lwolf.org/verbose";
/// Label added to each instance's selector and pods, so the Deployments' selectors do not
/// overlap (the reference's all share the template's).
pub const INSTANCE_LABEL: &str = "rivulet.io/consumer-instance";

/// The default environment variable of an instance's partitions.
pub const DEFAULT_PARTITION_ENV: &str = "KONSUMERATOR_PARTITION";

/// Partitions `0..size` in `ceil(size / per)` contiguous groups whose sizes differ by at most
/// one, the larger first (Konsumerator's `SplitIntoBuckets`: 10 by 3 → [0,1,2] [3,4,5] [6,7]
/// [8,9]).
pub fn buckets(size: i32, per: i32) -> Vec<Vec<i32>> {
    if size <= 0 || per <= 0 {
        return Vec::new();
    }
    let count = size / per + i32::from(size % per > 0);
    let (small, large) = (size / count, size % count);
    let mut next = 0;
    (0..count)
        .map(|b| {
            let len = small + i32::from(b < large);
            let group = (next..next + len).collect();
            next += len;
            group
        })
        .collect()
}

/// The `partitions` label: `3`, `3-4`, or first-last for three or more.
pub fn range_label(partitions: &[i32]) -> String {
    let shown: Vec<String> = match partitions {
        [first, _, _, ..] => vec![
            first.to_string(),
            partitions[partitions.len() - 1].to_string(),
        ],
        _ => partitions.iter().map(ToString::to_string).collect(),
    };
    shown.join("-")
}

/// `s` as a valid label value: at most 63 characters, starting and ending alphanumeric, other
/// characters only `-`, `_`, `.` (others become `-`).
pub fn label_value(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .take(63)
        .collect();
    cleaned
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_owned()
}

/// The partitions annotation read back (`None` if malformed).
pub fn parse_partitions(s: &str) -> Option<Vec<i32>> {
    if s.is_empty() {
        return None;
    }
    s.split(',').map(|p| p.trim().parse().ok()).collect()
}

fn set(env: &mut Vec<EnvVar>, name: &str, value: String) {
    match env.iter_mut().find(|e| e.name == name) {
        Some(e) => {
            e.value = Some(value);
            e.value_from = None;
        }
        None => env.push(EnvVar {
            name: name.to_owned(),
            value: Some(value),
            value_from: None,
        }),
    }
}

/// Where an instance sits among all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement<'a> {
    /// The environment variable of the partitions.
    pub partition_env: &'a str,
    /// The instance's partitions.
    pub partitions: &'a [i32],
    /// The instance number.
    pub instance: usize,
    /// All partitions.
    pub num_partitions: i32,
    /// All instances.
    pub num_instances: usize,
}

/// Sets an instance's environment in `env` (kept in order, values replaced):
/// the partitions, `GOMAXPROCS` (the CPU limit in whole cores, at least 1), `GOMEMLIMIT`
/// (80 % of the memory limit, when there is one), `KONSUMERATOR_INSTANCE`,
/// `KONSUMERATOR_NUM_PARTITIONS`, `KONSUMERATOR_NUM_INSTANCES`.
///
/// `GOMEMLIMIT` is 80 % of the limit in MiB; the reference computes 80 % of the limit in MB
/// and labels it MiB (about 84 %).
pub fn populate_env(env: &mut Vec<EnvVar>, at: &Placement<'_>, cpu_limit: i64, memory_limit: i64) {
    let partitions: Vec<String> = at.partitions.iter().map(ToString::to_string).collect();
    set(env, at.partition_env, partitions.join(","));
    set(
        env,
        "GOMAXPROCS",
        ((cpu_limit + 999) / 1000).max(1).to_string(),
    );
    if memory_limit > 0 {
        let mib = memory_limit as i128 / 1000 * 8 / 10 / (1 << 20);
        set(env, "GOMEMLIMIT", format!("{mib}MiB"));
    }
    set(env, "KONSUMERATOR_INSTANCE", at.instance.to_string());
    set(
        env,
        "KONSUMERATOR_NUM_PARTITIONS",
        at.num_partitions.to_string(),
    );
    set(
        env,
        "KONSUMERATOR_NUM_INSTANCES",
        at.num_instances.to_string(),
    );
}

/// What to do with an existing Deployment of the Consumer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Instance `id`, as assigned: keep (and size it).
    Keep(usize),
    /// Instance `id`, of an older template: rebuild from the template.
    Outdated(usize),
    /// Wrong or unreadable annotations, an id out of range, other partitions than assigned:
    /// delete (it is recreated as assigned).
    Remove(String),
}

/// Konsumerator's `syncInstanceStates` verdict on `deployment` for `assignments` and the
/// template hash `generation`.
pub fn judge(deployment: &Deployment, assignments: &[Vec<i32>], generation: &str) -> Verdict {
    let none = BTreeMap::new();
    let annotations = deployment.metadata.annotations.as_ref().unwrap_or(&none);
    let Some(id) = annotations
        .get(CONSUMER_ID)
        .and_then(|v| v.parse::<usize>().ok())
    else {
        return Verdict::Remove(format!("no readable {CONSUMER_ID} annotation"));
    };
    let Some(partitions) = annotations.get(PARTITION).and_then(|v| parse_partitions(v)) else {
        return Verdict::Remove(format!("no readable {PARTITION} annotation"));
    };
    let Some(assigned) = assignments.get(id) else {
        return Verdict::Remove(format!("instance {id} of {} expected", assignments.len()));
    };
    if &partitions != assigned {
        return Verdict::Remove(format!("partitions {partitions:?}, assigned {assigned:?}"));
    }
    if annotations.get(GENERATION).map(String::as_str) != Some(generation) {
        return Verdict::Outdated(id);
    }
    Verdict::Keep(id)
}

/// A stable hash of the template (FNV-1a 64 of its canonical JSON, keys sorted), as
/// Konsumerator keeps one in `status.observedGeneration` and each Deployment's generation
/// annotation.
pub fn template_hash(template: &serde_json::Value) -> i64 {
    fn canonical(v: &serde_json::Value, out: &mut String) {
        match v {
            serde_json::Value::Object(map) => {
                let sorted: BTreeMap<_, _> = map.iter().collect();
                out.push('{');
                for (k, v) in sorted {
                    out.push_str(&serde_json::Value::String(k.clone()).to_string());
                    out.push(':');
                    canonical(v, out);
                    out.push(',');
                }
                out.push('}');
            }
            serde_json::Value::Array(items) => {
                out.push('[');
                for v in items {
                    canonical(v, out);
                    out.push(',');
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut text = String::new();
    canonical(template, &mut text);
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    // Positive, as the reference's (a uint64 hash printed through int) usually is not.
    (hash >> 1) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    #[test]
    fn buckets_as_the_reference() {
        assert_eq!(
            buckets(10, 3),
            vec![vec![0, 1, 2], vec![3, 4, 5], vec![6, 7], vec![8, 9]]
        );
        assert_eq!(
            buckets(12, 3),
            vec![vec![0, 1, 2], vec![3, 4, 5], vec![6, 7, 8], vec![9, 10, 11]]
        );
        assert_eq!(buckets(6, 2), vec![vec![0, 1], vec![2, 3], vec![4, 5]]);
        assert_eq!(buckets(3, 1), vec![vec![0], vec![1], vec![2]]);
        assert_eq!(buckets(2, 5), vec![vec![0, 1]]);
        assert!(buckets(0, 1).is_empty());
        assert!(buckets(4, 0).is_empty());
        for (size, per) in [(1000, 1), (100, 7), (17, 4)] {
            let b = buckets(size, per);
            let flat: Vec<i32> = b.iter().flatten().copied().collect();
            assert_eq!(flat, (0..size).collect::<Vec<_>>());
            let lens: Vec<usize> = b.iter().map(Vec::len).collect();
            assert!(lens.iter().max().unwrap() - lens.iter().min().unwrap() <= 1);
            assert!(*lens.iter().max().unwrap() <= per as usize);
        }
    }

    #[test]
    fn labels() {
        assert_eq!(range_label(&[0, 1, 2, 3]), "0-3");
        assert_eq!(range_label(&[6, 7]), "6-7");
        assert_eq!(range_label(&[5]), "5");
        assert_eq!(label_value("test-consumer"), "test-consumer");
        assert_eq!(label_value(&"a".repeat(70)).len(), 63);
        assert_eq!(label_value("-x/y_"), "x-y");
    }

    #[test]
    fn environment() {
        let mut env = vec![
            EnvVar {
                name: "KEEP".into(),
                value: Some("1".into()),
                value_from: None,
            },
            EnvVar {
                name: "PARTITION".into(),
                value: Some("old".into()),
                value_from: None,
            },
        ];
        let at = Placement {
            partition_env: "PARTITION",
            partitions: &[2, 3],
            instance: 1,
            num_partitions: 6,
            num_instances: 3,
        };
        populate_env(&mut env, &at, 2000, 1_073_741_824_000);
        let got: Vec<(&str, &str)> = env
            .iter()
            .map(|e| (e.name.as_str(), e.value.as_deref().unwrap()))
            .collect();
        assert_eq!(
            got,
            [
                ("KEEP", "1"),
                ("PARTITION", "2,3"),
                ("GOMAXPROCS", "2"),
                ("GOMEMLIMIT", "819MiB"),
                ("KONSUMERATOR_INSTANCE", "1"),
                ("KONSUMERATOR_NUM_PARTITIONS", "6"),
                ("KONSUMERATOR_NUM_INSTANCES", "3"),
            ]
        );
        let mut bare = Vec::new();
        populate_env(&mut bare, &at, 0, 0);
        assert!(
            bare.iter().all(|e| e.name != "GOMEMLIMIT"),
            "no limit, no GOMEMLIMIT"
        );
        assert_eq!(bare[1].value.as_deref(), Some("1"), "GOMAXPROCS at least 1");
    }

    fn deployment(annotations: &[(&str, &str)]) -> Deployment {
        Deployment {
            metadata: ObjectMeta {
                annotations: Some(
                    annotations
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect(),
                ),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn verdicts() {
        let a = buckets(6, 2);
        let ok = deployment(&[(CONSUMER_ID, "1"), (PARTITION, "2,3"), (GENERATION, "7")]);
        assert_eq!(judge(&ok, &a, "7"), Verdict::Keep(1));
        assert_eq!(judge(&ok, &a, "8"), Verdict::Outdated(1));
        let drift = deployment(&[(CONSUMER_ID, "1"), (PARTITION, "1,2"), (GENERATION, "7")]);
        assert!(matches!(judge(&drift, &a, "7"), Verdict::Remove(_)));
        let out = deployment(&[(CONSUMER_ID, "3"), (PARTITION, "6,7"), (GENERATION, "7")]);
        assert!(matches!(judge(&out, &a, "7"), Verdict::Remove(_)));
        let bad = deployment(&[(CONSUMER_ID, "x"), (PARTITION, "2,3")]);
        assert!(matches!(judge(&bad, &a, "7"), Verdict::Remove(_)));
        let bare = Deployment::default();
        assert!(matches!(judge(&bare, &a, "7"), Verdict::Remove(_)));
    }

    #[test]
    fn the_template_hash_ignores_key_order_only() {
        let a = serde_json::json!({"replicas": 1, "template": {"spec": {"x": [1, 2]}}});
        let b = serde_json::json!({"template": {"spec": {"x": [1, 2]}}, "replicas": 1});
        let c = serde_json::json!({"replicas": 2, "template": {"spec": {"x": [1, 2]}}});
        assert_eq!(template_hash(&a), template_hash(&b));
        assert_ne!(template_hash(&a), template_hash(&c));
        assert!(template_hash(&a) >= 0);
    }
}
