//! Against a real Prometheus loaded with a synthetic cluster through
//! `promtool tsdb create-blocks-from openmetrics`: discovery with filters, the per-namespace
//! fetch equal to what the samples imply, the engine's output on it equal to the engine's
//! output on the ground truth, and a datasource that is down.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use rivulet_recommendation_producer::collect::{discover, fetch_namespace};
use rivulet_recommendation_producer::engine::data::{Agg, Series};
use rivulet_recommendation_producer::engine::{Settings, recommend};
use rivulet_recommendation_producer::prometheus::{Auth, Prometheus, QueryError};
use rivulet_recommendation_producer::queries::{Filter, Filters};
use rivulet_recommendation_producer::synthetic::{Cluster, Container};

/// 2026-11-01T00:00:00Z.
const END: i64 = 1_793_491_200;

fn container(
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

fn cluster() -> Cluster {
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
    }
}

/// A Prometheus serving the cluster's blocks, stopped when dropped.
struct Server {
    child: Child,
    url: String,
    _dir: TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn serve(cluster: &Cluster) -> Server {
    let dir = TempDir(std::env::temp_dir().join(rivulet_testkit::unique("prometheus")));
    let data = dir.0.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let metrics = dir.0.join("cluster.om");
    cluster
        .write_openmetrics(&mut std::io::BufWriter::new(
            std::fs::File::create(&metrics).unwrap(),
        ))
        .unwrap();
    let made = Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .args([&metrics, &data])
        .output()
        .expect("promtool (Debian package prometheus; scripts/test installs it)");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let config = dir.0.join("prometheus.yml");
    std::fs::write(&config, "global:\n  evaluation_interval: 1m\n").unwrap();
    let port = free_port();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .args(["--storage.tsdb.retention.time=100y", "--log.level=warn"])
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stderr(std::fs::File::create(dir.0.join("prometheus.log")).unwrap())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = reqwest::get(format!("{url}/-/ready")).await
            && r.status().is_success()
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus not ready: {}",
            log(&dir.0)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Server {
        child,
        url,
        _dir: dir,
    }
}

fn log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default()
}

fn datasource(url: &str) -> Prometheus {
    Prometheus::new(url, Auth::None, None, 8, Duration::from_secs(30)).unwrap()
}

fn close(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
        (None, None) => true,
        _ => false,
    }
}

fn same_agg(a: &Agg, b: &Agg) -> bool {
    close(a.avg, b.avg) && close(a.min, b.min) && close(a.max, b.max) && close(a.sum, b.sum)
}

/// Fails with the first differing interval.
fn assert_same_series(want: &Series, got: &Series, what: &str) {
    let keys = |s: &Series| s.keys().copied().collect::<Vec<_>>();
    assert_eq!(keys(got), keys(want), "{what}: interval times");
    for (t, w) in want {
        let g = &got[t];
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
    }
}

/// JSON equality with a relative tolerance on numbers.
fn same_json(a: &serde_json::Value, b: &serde_json::Value, path: &str) {
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

#[tokio::test]
#[ignore = "needs Prometheus (Debian package prometheus): run scripts/test"]
async fn discovery_fetch_and_recommendations_match_the_samples() {
    let cluster = cluster();
    let server = serve(&cluster).await;
    let ds = datasource(&server.url);
    ds.handshake().await.unwrap();
    let window = Some((END - 3600, END));

    // Discovery: everything, then filtered; include wins over exclude.
    let all = discover(&ds, &Filters::default(), window).await.unwrap();
    let names: Vec<String> = all
        .iter()
        .map(|d| format!("{}/{}/{}", d.namespace, d.workload, d.container))
        .collect();
    assert_eq!(names.len(), 8, "{names:?}");
    assert!(all.iter().any(|d| d.workload == "node-exporter"
        && d.workload_type == "daemonset"
        && d.image == "registry.example/node-exporter:1"));
    let mut filters = Filters {
        namespace: Filter {
            include: vec![],
            exclude: vec!["kube-.*".into(), "tmp-.*".into()],
        },
        ..Filters::default()
    };
    let shop = discover(&ds, &filters, window).await.unwrap();
    assert!(
        shop.iter().all(|d| d.namespace == "shop") && shop.len() == 5,
        "{shop:?}"
    );
    filters.namespace = Filter {
        include: vec!["kube-system".into()],
        exclude: vec!["kube-.*".into()],
    };
    filters.container = Filter {
        include: vec!["core.*".into()],
        exclude: vec![],
    };
    let kube = discover(&ds, &filters, window).await.unwrap();
    assert_eq!(kube.len(), 1, "include wins: {kube:?}");

    // The fetch gives exactly the intervals the samples imply, and so the same recommendations.
    let fetched = fetch_namespace(&ds, "shop", Some(END)).await.unwrap();
    assert_eq!(fetched.len(), 5);
    for c in cluster.containers.iter().filter(|c| c.namespace == "shop") {
        let got = &fetched[&c.container];
        assert_eq!(got.end, END, "{}", c.container);
        let want = cluster.expected(c);
        assert_same_series(&want, &got.series, &c.container);
        let settings = Settings::default();
        let a = serde_json::to_value(recommend(&want, &settings)).unwrap();
        let b = serde_json::to_value(recommend(&got.series, &settings)).unwrap();
        same_json(&a, &b, &c.container);
    }
    // What the recommendations say, on the data: 9 days has every term, 40 minutes only short.
    let cart =
        serde_json::to_value(recommend(&fetched["cart"].series, &Settings::default())).unwrap();
    let terms =
        &cart["data"][rivulet_recommendation_producer::engine::stamp(END)]["recommendation_terms"];
    assert!(
        terms["long_term"]["recommendation_engines"]["cost"]["config"]["requests"]["cpu"]["amount"]
            .as_f64()
            .unwrap()
            > 0.29
    );
    let fresh =
        serde_json::to_value(recommend(&fetched["fresh"].series, &Settings::default())).unwrap();
    let terms =
        &fresh["data"][rivulet_recommendation_producer::engine::stamp(END)]["recommendation_terms"];
    assert!(terms["short_term"].get("recommendation_engines").is_some());
    assert_eq!(
        terms["medium_term"]["notifications"]["120001"]["code"],
        120001
    );
    assert_eq!(
        terms["short_term"]["duration_in_hours"], 0.75,
        "three 15-minute intervals"
    );
}

#[tokio::test]
async fn a_datasource_that_is_down_is_unreachable() {
    let port = free_port(); // nobody listens there
    let ds = datasource(&format!("http://127.0.0.1:{port}"));
    let error = ds.handshake().await.unwrap_err();
    assert!(matches!(error, QueryError::Unreachable(_)), "{error:?}");
}
