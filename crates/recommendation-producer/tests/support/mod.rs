//! What the recommendation producer's tests share: the synthetic cluster, a Prometheus serving
//! it, and comparisons with a tolerance.

#![allow(dead_code, clippy::unwrap_used)] // each test binary uses a part; a failed unwrap fails the test

use std::time::Duration;

pub mod proxy;
pub mod service;

use rivulet_recommendation_producer::engine::data::{Agg, Series};
use rivulet_recommendation_producer::prometheus::{Auth, Prometheus};
use rivulet_testkit::synthetic::{Cluster, Container, Quota};

/// 2026-11-01T00:00:00Z.
pub const END: i64 = 1_793_491_200;

pub fn container(
    ns: &str,
    workload: &str,
    kind: &str,
    name: &str,
    pods: u32,
    minutes: i64,
) -> Container {
    Container {
        namespace: ns.into(),
        workload: workload.into(),
        workload_type: kind.into(),
        container: name.into(),
        image: format!("registry.example/{name}:1"),
        pods,
        cpu: (300, 64),
        memory: (200, 100),
        requests: Some((0.5, 268_435_456.0)),
        limits: Some((1.0, 536_870_912.0)),
        minutes,
    }
}

pub fn cluster() -> Cluster {
    let day = 1440;
    let mut web = container("shop", "web", "deployment", "web", 2, 3 * day);
    web.cpu = (900, 400); // above a core at times: the per-pod rule applies
    let mut worker = container("shop", "worker", "deployment", "worker", 1, 3 * day);
    worker.limits = None;
    let mut idle = container("shop", "cron", "cronjob", "cron", 1, 3 * day);
    idle.cpu = (0, 1);
    Cluster {
        containers: vec![
            container("shop", "cart", "deployment", "cart", 1, 9 * day),
            web,
            worker,
            idle,
            container("shop", "fresh", "deployment", "fresh", 1, 40),
            container("kube-system", "coredns", "deployment", "coredns", 2, day),
            container(
                "kube-system",
                "node-exporter",
                "daemonset",
                "node-exporter",
                1,
                day,
            ),
            container("tmp-build", "runner", "job", "runner", 1, 60),
        ],
        end: END,
        // Namespace experiments read quotas as current values: shop has one, the others none.
        quotas: [(
            "shop".to_owned(),
            Quota {
                requests: (3.0, 2_147_483_648.0),
                limits: (6.0, 4_294_967_296.0),
            },
        )]
        .into(),
        aligned: false,
    }
}

pub use rivulet_testkit::prometheus::Server;
use rivulet_testkit::prometheus::import;
pub use rivulet_testkit::widgets::free_port;

/// A Prometheus serving the cluster's blocks, stopped when dropped.
pub async fn serve(cluster: &Cluster) -> Server {
    serve_with(cluster, "").await
}

/// [`serve`], with the OpenMetrics text `extra` (ending `# EOF`; none when empty) imported
/// beside the cluster.
pub async fn serve_with(cluster: &Cluster, extra: &str) -> Server {
    let dir = Server::dir();
    let metrics = dir.0.join("cluster.om");
    cluster
        .write_openmetrics(&mut std::io::BufWriter::new(
            std::fs::File::create(&metrics).unwrap(),
        ))
        .unwrap();
    import(&metrics, &dir.0.join("data"));
    if !extra.is_empty() {
        let more = dir.0.join("extra.om");
        std::fs::write(&more, extra).unwrap();
        // Blocks overlapping the cluster's in time: Prometheus merges them (since 2.39).
        import(&more, &dir.0.join("data"));
    }
    Server::start(dir).await
}

/// A Prometheus serving a long-running cluster's blocks, loaded two hours at a time (promtool
/// reads its whole input once per block it writes), usage every minute.
pub async fn serve_sliced(cluster: &Cluster) -> Server {
    let dir = Server::dir();
    let data = dir.0.join("data");
    for slice in cluster.write_slices(&dir.0.join("slices"), 1).unwrap() {
        import(&slice, &data);
        std::fs::remove_file(&slice).unwrap();
    }
    Server::start(dir).await
}

pub fn datasource(url: &str) -> Prometheus {
    Prometheus::new(url, Auth::None, None, 8, Duration::from_secs(30)).unwrap()
}

pub fn close(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
        (None, None) => true,
        _ => false,
    }
}

pub fn same_agg(a: &Agg, b: &Agg) -> bool {
    close(a.avg, b.avg) && close(a.min, b.min) && close(a.max, b.max) && close(a.sum, b.sum)
}

/// Fails with the first differing interval.
pub fn assert_same_series(want: &Series, got: &Series, what: &str) {
    let keys = |s: &Series| s.keys().copied().collect::<Vec<_>>();
    assert_eq!(keys(got), keys(want), "{what}: interval times");
    for (t, w) in want {
        let (w, g) = (&w.parts(), &got[t].parts());
        let pairs = [
            (&w.cpu_request, &g.cpu_request, "cpu_request"),
            (&w.cpu_limit, &g.cpu_limit, "cpu_limit"),
            (&w.cpu_usage, &g.cpu_usage, "cpu_usage"),
            (&w.cpu_throttle, &g.cpu_throttle, "cpu_throttle"),
            (&w.memory_request, &g.memory_request, "memory_request"),
            (&w.memory_limit, &g.memory_limit, "memory_limit"),
            (&w.memory_usage, &g.memory_usage, "memory_usage"),
            (&w.memory_rss, &g.memory_rss, "memory_rss"),
        ];
        for (w, g, name) in pairs {
            assert!(same_agg(w, g), "{what} at {t}: {name} want {w:?} got {g:?}");
        }
        assert!(
            close(w.pods, g.pods),
            "{what} at {t}: pods want {:?} got {:?}",
            w.pods,
            g.pods
        );
    }
}

/// JSON equality with a relative tolerance on numbers.
pub fn same_json(a: &serde_json::Value, b: &serde_json::Value, path: &str) {
    use serde_json::Value::*;
    match (a, b) {
        (Number(x), Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!(close(Some(x), Some(y)), "{path}: {x} != {y}");
        }
        (Object(x), Object(y)) => {
            assert_eq!(
                x.keys().collect::<Vec<_>>(),
                y.keys().collect::<Vec<_>>(),
                "{path}"
            );
            for (k, v) in x {
                same_json(v, &y[k], &format!("{path}.{k}"));
            }
        }
        (Array(x), Array(y)) => {
            assert_eq!(x.len(), y.len(), "{path}");
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                same_json(v, w, &format!("{path}[{i}]"));
            }
        }
        _ => assert_eq!(a, b, "{path}"),
    }
}

/// The experiment name the service gives container `c` of datasource `prometheus-1` (the
/// default name format).
pub fn experiment_of(c: &Container) -> String {
    use rivulet_recommendation_producer::collect::Discovered;
    use rivulet_recommendation_producer::naming::{DEFAULT_FORMAT, experiment_name};
    let d = Discovered {
        namespace: c.namespace.clone(),
        workload: c.workload.clone(),
        workload_type: c.workload_type.clone(),
        container: c.container.clone(),
        image: c.image.clone(),
    };
    experiment_name(
        DEFAULT_FORMAT,
        "prometheus-1",
        &d,
        &std::collections::BTreeMap::new(),
    )
}
