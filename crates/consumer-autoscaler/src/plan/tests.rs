use super::*;
use crate::crd::Consumer;

const G: i64 = 1_000_000_000_000;

fn consumer(extra: serde_json::Value) -> Consumer {
    let mut spec = serde_json::json!({
        "numPartitions": 6,
        "numPartitionsPerInstance": 2,
        "name": "orders",
        "namespace": "team",
        "partitionEnvKey": "PARTITIONS",
        "autoscaler": {
            "mode": "kafka",
            "pendingScaleUpDuration": "1m",
            "pendingScaleDownDuration": "2m",
            "kafka": {
                "bootstrapServers": "kafka:9092", "topic": "orders", "groupId": "orders",
                "ratePerCore": 1000, "ramPerCore": "1G", "tolerableLag": "10s",
                "criticalLag": "1h", "recoveryTime": "100s"
            }
        },
        "deploymentTemplate": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "orders"}},
            "template": {
                "metadata": {"labels": {"app": "orders"}},
                "spec": {"containers": [{"name": "app", "image": "orders:1",
                    "env": [{"name": "KEEP", "value": "x"}]}]}
            }
        },
        "resourcePolicy": {
            "containerPolicies": [{"containerName": "app",
                "minAllowed": {"cpu": "100m", "memory": "100M"},
                "maxAllowed": {"cpu": 4, "memory": "4G"}}]
        }
    });
    json_merge(&mut spec, extra);
    serde_json::from_value(serde_json::json!({
        "apiVersion": "rivulet.io/v1alpha1",
        "kind": "Consumer",
        "metadata": {"name": "orders-consumer", "namespace": "team", "uid": "u-1"},
        "spec": spec
    }))
    .unwrap()
}

fn json_merge(into: &mut serde_json::Value, from: serde_json::Value) {
    match (into, from) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (k, v) in b {
                json_merge(a.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (slot, v) => *slot = v,
    }
}

fn settings(extra: serde_json::Value) -> Settings {
    Settings::of(&consumer(extra)).unwrap()
}

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-01T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn env(d: &Deployment) -> BTreeMap<String, String> {
    d.spec.template.spec.as_ref().unwrap().containers[0]
        .env
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|e| (e.name, e.value.unwrap_or_default()))
        .collect()
}

fn app(d: &Deployment) -> Resources {
    resources_of(&d.spec.template.spec.as_ref().unwrap().containers[0])
}

/// The Deployments as the API server would hold them after the plan.
fn applied(existing: &[Deployment], p: &Plan) -> Vec<Deployment> {
    let mut out: Vec<Deployment> = existing
        .iter()
        .filter(|d| {
            !p.delete
                .iter()
                .any(|(n, _)| Some(n) == d.metadata.name.as_ref())
        })
        .filter(|d| !p.replace.iter().any(|r| r.metadata.name == d.metadata.name))
        .cloned()
        .collect();
    out.extend(p.replace.iter().cloned());
    out.extend(p.create.iter().cloned());
    out.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    out
}

fn metrics(production: i64, behind: &[(i32, i64)]) -> Metrics {
    Metrics {
        production: (0..6).map(|p| (p, production)).collect(),
        consumption: BTreeMap::new(),
        behind: behind.iter().copied().collect(),
    }
}

#[test]
fn six_partitions_two_per_instance_make_three_deployments() {
    let s = settings(serde_json::json!({}));
    let p = plan(&s, &[], &Metrics::default(), false, now());
    assert_eq!(p.create.len(), 3);
    assert_eq!(p.counts.missing, 3);
    assert_eq!(p.counts.expected, 3);
    let d = &p.create[1];
    assert_eq!(d.metadata.name.as_deref(), Some("orders-1"));
    assert_eq!(d.metadata.namespace.as_deref(), Some("team"));
    let labels = d.metadata.labels.clone().unwrap();
    assert_eq!(labels["app"], "orders");
    assert_eq!(labels["controller"], "orders-consumer");
    assert_eq!(labels["partitions"], "2-3");
    let a = d.metadata.annotations.clone().unwrap();
    assert_eq!(a[instances::PARTITION], "2,3");
    assert_eq!(a[instances::CONSUMER_ID], "1");
    assert_eq!(a[instances::GENERATION], s.generation);
    assert_eq!(a[instances::SCALING_STATUS], "RUNNING");
    let owner = &d.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
        ("Consumer", "u-1", Some(true))
    );
    let spec = &d.spec;
    assert_eq!(
        spec.strategy.as_ref().unwrap().type_.as_deref(),
        Some("Recreate")
    );
    assert_eq!(
        spec.selector.match_labels.as_ref().unwrap()[instances::INSTANCE_LABEL],
        "orders-1"
    );
    let e = env(d);
    assert_eq!(e["KEEP"], "x");
    assert_eq!(e["PARTITIONS"], "2,3");
    assert_eq!(e["KONSUMERATOR_INSTANCE"], "1");
    assert_eq!(e["KONSUMERATOR_NUM_PARTITIONS"], "6");
    assert_eq!(e["KONSUMERATOR_NUM_INSTANCES"], "3");
    assert_eq!(e["GOMAXPROCS"], "1");
    // No metrics yet: the fallback (the policy's minimum).
    assert_eq!(app(d), Resources::both(100, 100_000_000_000));
}

#[test]
fn an_applied_plan_plans_nothing_more() {
    let s = settings(serde_json::json!({}));
    let first = applied(&[], &plan(&s, &[], &Metrics::default(), false, now()));
    let again = plan(&s, &first, &Metrics::default(), false, now());
    assert!(again.create.is_empty() && again.replace.is_empty() && again.delete.is_empty());
    assert_eq!((again.counts.running, again.counts.missing), (3, 0));
    // Fresh metrics that ask for what they have: still nothing written.
    let m = metrics(10, &[]);
    let again = plan(&s, &first, &m, true, now());
    assert!(again.replace.is_empty(), "{:?}", again.replace);
}

#[test]
fn template_changes_rebuild_every_instance() {
    let s = settings(serde_json::json!({}));
    let first = applied(&[], &plan(&s, &[], &Metrics::default(), false, now()));
    let changed = settings(
        serde_json::json!({"deploymentTemplate": {"template": {"spec": {
        "containers": [{"name": "app", "image": "orders:2"}]}}}}),
    );
    let p = plan(&changed, &first, &Metrics::default(), false, now());
    assert_eq!(p.replace.len(), 3);
    assert_eq!(p.counts.outdated, 3);
    for d in &p.replace {
        let c = &d.spec.template.spec.as_ref().unwrap().containers[0];
        assert_eq!(c.image.as_deref(), Some("orders:2"));
        assert_eq!(
            d.metadata.annotations.as_ref().unwrap()[instances::GENERATION],
            changed.generation
        );
    }
}

#[test]
fn partition_drift_deletes_and_recreates() {
    let s = settings(serde_json::json!({}));
    let first = applied(&[], &plan(&s, &[], &Metrics::default(), false, now()));
    let three = settings(serde_json::json!({"numPartitionsPerInstance": 3}));
    let p = plan(&three, &first, &Metrics::default(), false, now());
    // [0,1,2] [3,4,5]: orders-0 and orders-1 have other partitions, orders-2 is out of range.
    let mut deleted: Vec<&str> = p.delete.iter().map(|(n, _)| n.as_str()).collect();
    deleted.sort_unstable();
    assert_eq!(deleted, ["orders-0", "orders-1", "orders-2"]);
    assert_eq!(p.create.len(), 2);
    assert_eq!(
        p.create[1].metadata.annotations.as_ref().unwrap()[instances::PARTITION],
        "3,4,5"
    );
}

#[test]
fn a_lagging_instance_scales_up_after_the_pending_duration() {
    let s = settings(serde_json::json!({}));
    let first = applied(&[], &plan(&s, &[], &Metrics::default(), false, now()));
    // 500 msg/s per partition; partitions 2 and 3 are 60 s behind (tolerable: 10 s).
    let m = metrics(500, &[(2, 30_000), (3, 30_000)]);
    let p = plan(&s, &first, &m, true, now());
    assert_eq!(p.counts.lagging, 1);
    let by_name = |p: &Plan, n: &str| {
        p.instances
            .iter()
            .find(|i| i.deployment == n)
            .unwrap()
            .state
    };
    assert_eq!(by_name(&p, "orders-1"), State::PendingScaleUp);
    // Instance 0 would take more (1,000/s) but does not lag: no scale-up.
    assert_eq!(by_name(&p, "orders-0"), State::Running);
    let second = applied(&first, &p);
    assert_eq!(
        app(&second[1]),
        Resources::both(100, 100_000_000_000),
        "not yet"
    );
    // 59 s later: still pending; 60 s later: applied.
    let p = plan(&s, &second, &m, true, now() + chrono::Duration::seconds(59));
    assert_eq!(by_name(&p, "orders-1"), State::PendingScaleUp);
    let p = plan(&s, &second, &m, true, now() + chrono::Duration::seconds(60));
    let third = applied(&second, &p);
    // Each partition: 500 × (1 + 60/100) = 800/s; two: 1,600/s at 1,000 per core → 1.6 cores,
    // limit 2 cores, 2 G.
    assert_eq!(
        app(&third[1]),
        Resources {
            cpu_request: 1600,
            memory_request: 2 * G,
            cpu_limit: 2000,
            memory_limit: 2 * G
        }
    );
    assert_eq!(env(&third[1])["GOMAXPROCS"], "2");
    assert_eq!(by_name(&p, "orders-1"), State::Running);
}

#[test]
fn critical_lag_gives_the_maximum_and_the_global_pool_saturates() {
    let s = settings(
        serde_json::json!({"autoscaler": {"pendingScaleUpDuration": "0s",
        "kafka": {"criticalLag": "30s"}}}),
    );
    let first = applied(&[], &plan(&s, &[], &Metrics::default(), false, now()));
    let m = metrics(500, &[(2, 30_000)]);
    let p = plan(&s, &first, &m, true, now());
    let p = plan(&s, &applied(&first, &p), &m, true, now());
    let after = applied(&applied(&first, &plan(&s, &first, &m, true, now())), &p);
    assert_eq!(
        app(&after[1]),
        Resources::both(4000, 4 * G),
        "critical: maxAllowed"
    );
    // A global pool of 2 cores: instance 1 gets what is left and is saturated.
    let g = settings(
        serde_json::json!({"autoscaler": {"pendingScaleUpDuration": "0s"},
        "resourcePolicy": {"globalPolicy": {"maxAllowed": {"cpu": 1, "memory": "100G"}}}}),
    );
    let first = applied(&[], &plan(&g, &[], &Metrics::default(), false, now()));
    let m = metrics(500, &[(2, 30_000), (3, 30_000)]);
    let p1 = plan(&g, &first, &m, true, now());
    let p2 = plan(&g, &applied(&first, &p1), &m, true, now());
    let inst = p2
        .instances
        .iter()
        .find(|i| i.deployment == "orders-1")
        .unwrap();
    assert_eq!(inst.state, State::Saturated);
    // 3 × 100m used, 1 core in the pool: 700m more are given, 1,600m wanted.
    let d = applied(&applied(&first, &p1), &p2);
    assert_eq!(app(&d[1]).cpu_request, 800);
    assert_eq!(inst.saturation, 800);
    assert_eq!(
        d[1].metadata.annotations.as_ref().unwrap()[instances::CPU_SATURATION],
        "800"
    );
}

#[test]
fn paused_consumers_sit_at_the_minimum() {
    let s = settings(serde_json::json!({}));
    let first = applied(&[], &plan(&s, &[], &Metrics::default(), false, now()));
    let m = metrics(500, &[(2, 30_000), (3, 30_000)]);
    let up = settings(serde_json::json!({"autoscaler": {"pendingScaleUpDuration": "0s"}}));
    let p = plan(&up, &first, &m, true, now());
    let bigger = applied(
        &applied(&first, &p),
        &plan(&up, &applied(&first, &p), &m, true, now()),
    );
    assert!(app(&bigger[1]).cpu_request > 100);
    let mut paused = s.clone();
    paused.paused = true;
    let p = plan(&paused, &bigger, &m, true, now());
    assert_eq!(p.counts.paused, 3);
    let after = applied(&bigger, &p);
    assert_eq!(app(&after[1]), Resources::both(100, 100_000_000_000));
}

#[test]
fn invalid_specs_are_refused_with_a_reason() {
    let c = consumer(serde_json::json!({"namespace": "elsewhere"}));
    assert!(
        Settings::of(&c)
            .unwrap_err()
            .contains("cannot cross namespaces")
    );
    let c = consumer(serde_json::json!({"autoscaler": {"kafka": {"recoveryTime": "500ms"}}}));
    assert!(Settings::of(&c).unwrap_err().contains("recoveryTime"));
    let c = consumer(serde_json::json!({"deploymentTemplate": {"replicas": "many"}}));
    assert!(Settings::of(&c).unwrap_err().contains("deploymentTemplate"));
    let c = consumer(serde_json::json!({"autoscaler": {"kafka": {"ratePerCore": 0}}}));
    assert!(Settings::of(&c).unwrap_err().contains("ratePerCore"));
}
