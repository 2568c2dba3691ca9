//! Remote reads against a real Prometheus: the per-namespace fetch through stored chunks equals
//! the fetch through the query API (closed and left-open windows, samples on the boundaries
//! or between them), and on live scraped data with staleness markers the steps and raw samples
//! given the query API's meaning equal what the query API answers.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use rivulet_recommendation_producer::collect::{Discovery, Fetched, discover, fetch_namespace};
use rivulet_recommendation_producer::prometheus::{Prometheus, Reads, Windows};
use rivulet_recommendation_producer::queries::Filters;
use rivulet_recommendation_producer::remote_read::{self, Matcher, Query};
use support::{END, Server, cluster, datasource, free_port, serve, serve_with};

/// What the Prometheus at `url` holds, as a job over its last hour discovers it.
async fn discovered(url: &str) -> Discovery {
    discover(
        &datasource(url),
        &Filters::default(),
        Some((END - 3600, END)),
    )
    .await
    .unwrap()
}

#[tokio::test]
#[ignore = "needs Prometheus (Debian package prometheus): run scripts/test"]
async fn the_fetch_through_chunks_equals_the_fetch_through_queries() {
    for aligned in [false, true] {
        let mut cluster = cluster();
        cluster.aligned = aligned;
        let server = serve(&cluster).await;
        let found = discovered(&server.url).await;
        for windows in [Windows::Closed, Windows::LeftOpen] {
            let chunks = datasource(&server.url).with_windows(windows);
            let queries = datasource(&server.url)
                .with_windows(windows)
                .with_reads(Reads::Query);
            for namespace in &found.namespaces {
                let containers: Vec<&str> = found
                    .containers
                    .iter()
                    .filter(|c| &c.namespace == namespace)
                    .map(|c| c.container.as_str())
                    .collect();
                let ours = fetch_namespace(&chunks, namespace, &containers, Some(END))
                    .await
                    .unwrap();
                let theirs = fetch_namespace(&queries, namespace, &containers, Some(END))
                    .await
                    .unwrap();
                assert!(!theirs.is_empty(), "{namespace}");
                assert_eq!(ours, theirs, "{namespace}, aligned {aligned}, {windows:?}");
            }
            assert!(chunks.remote_reads(), "read through chunks, no fallback");
        }
    }
}

#[tokio::test]
#[ignore = "needs Prometheus (Debian package prometheus): run scripts/test"]
async fn a_throttled_pod_is_rated_by_the_datasource_and_its_namespace_still_read_as_chunks() {
    // A second pod of `cart` whose throttling counter climbs for three hours of the last two
    // days; every other counter of the cluster stays at 0.
    let mut text = String::from("# TYPE container_cpu_cfs_throttled_seconds counter\n");
    let mut value = 0.0;
    for m in (0..2 * 1440).rev() {
        if (600..780).contains(&m) {
            value += 0.25;
        }
        text.push_str(&format!(
            "container_cpu_cfs_throttled_seconds_total{{namespace=\"shop\",pod=\"cart-throttled\",container=\"cart\"}} {value} {}\n",
            END - m * 60
        ));
    }
    text.push_str("# EOF\n");
    let cluster = cluster();
    let server = serve_with(&cluster, &text).await;
    let found = discovered(&server.url).await;
    let containers: Vec<&str> = found
        .containers
        .iter()
        .filter(|c| c.namespace == "shop")
        .map(|c| c.container.as_str())
        .collect();
    for windows in [Windows::Closed, Windows::LeftOpen] {
        let seen = front(server.url.clone(), RemoteReads::FailFirst(0)).await;
        let chunks = datasource(&seen.url).with_windows(windows);
        let queries = datasource(&server.url)
            .with_windows(windows)
            .with_reads(Reads::Query);
        let ours = fetch_namespace(&chunks, "shop", &containers, Some(END))
            .await
            .unwrap();
        // The one pod with a changed counter is all the datasource rates.
        let rated: Vec<String> = seen
            .queries
            .lock()
            .unwrap()
            .iter()
            .filter(|q| q.contains("throttled"))
            .cloned()
            .collect();
        assert_eq!(rated.len(), 1, "{rated:?}");
        assert!(rated[0].contains("cart-throttled"), "{}", rated[0]);
        let theirs = fetch_namespace(&queries, "shop", &containers, Some(END))
            .await
            .unwrap();
        let throttled = theirs["cart"]
            .series
            .values()
            .filter(|i| i.cpu_throttle().max.is_some_and(|v| v > 0.0))
            .count();
        assert!(
            throttled >= 12,
            "three hours of throttling: {throttled} intervals"
        );
        assert_eq!(ours, theirs, "{windows:?}");
        assert!(chunks.remote_reads(), "the namespace still read as chunks");
    }
}

/// A `/metrics` endpoint whose text the test changes.
async fn exporter(text: Arc<Mutex<String>>) -> String {
    let port = free_port();
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let text = text.clone();
            async move { text.lock().unwrap().clone() }
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("127.0.0.1:{port}")
}

/// Waits until `query` (instant, now) returns `want` series.
async fn until_series(ds: &Prometheus, query: &str, want: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if ds.instant(query, None).await.unwrap().len() == want {
            return;
        }
        assert!(Instant::now() < deadline, "{query}: never {want} series");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
#[ignore = "needs Prometheus (Debian package prometheus): run scripts/test"]
async fn staleness_markers_end_a_series_as_the_query_api_ends_it() {
    let series = |pod: &str| {
        format!(
            "kube_pod_container_resource_requests{{namespace=\"shop\",pod=\"{pod}\",container=\"app\",resource=\"cpu\",unit=\"core\"}} 0.5\ncontainer_memory_rss{{namespace=\"shop\",pod=\"{pod}\",container=\"app\"}} 4096\n"
        )
    };
    let throttled = |value: u32| {
        format!(
            "container_cpu_cfs_throttled_seconds_total{{namespace=\"shop\",pod=\"a\",container=\"app\"}} 7\ncontainer_cpu_cfs_throttled_seconds_total{{namespace=\"shop\",pod=\"c\",container=\"app\"}} {value}\n"
        )
    };
    let text = Arc::new(Mutex::new(format!(
        "{}{}{}",
        series("a"),
        series("b"),
        throttled(1)
    )));
    let target = exporter(text.clone()).await;
    let server = Server::scraping(&target).await;
    let ds = datasource(&server.url);
    let started = chrono::Utc::now().timestamp();
    until_series(&ds, "count_over_time(container_memory_rss[1m]) >= 3", 2).await;
    // Pod b goes away: its series get staleness markers at the next scrape.
    *text.lock().unwrap() = format!("{}{}", series("a"), throttled(2));
    until_series(&ds, "container_memory_rss", 1).await;
    let gone = chrono::Utc::now().timestamp();
    // Two more scrapes of pod a after that.
    until_series(
        &ds,
        &format!("timestamp(container_memory_rss) > {}", gone + 2),
        1,
    )
    .await;
    let end = chrono::Utc::now().timestamp();
    let lookback = ds.lookback_ms().await;
    assert_eq!(lookback, 300_000, "Prometheus's default");
    let closed = ds.closed_windows().await;

    // The requests at each second, as a range query of the bare selector gives them.
    let selector = "kube_pod_container_resource_requests{namespace=\"shop\"}";
    let theirs = ds.range(selector, started - 2, end, 1).await.unwrap();
    let query = Query {
        start_ms: (started - 2) * 1000 - lookback,
        end_ms: end * 1000,
        matchers: vec![
            Matcher::Eq(
                "__name__".into(),
                "kube_pod_container_resource_requests".into(),
            ),
            Matcher::Eq("namespace".into(), "shop".into()),
        ],
    };
    let read = ds.read(&[query]).await.unwrap().expect("streamed chunks");
    assert_eq!(read.len(), 2);
    assert_eq!(theirs.len(), 2);
    for (ours, theirs) in read.iter().zip(&theirs) {
        assert_eq!(ours.labels, theirs.labels);
        let steps = ((started - 2) * 1000, end * 1000, 1000);
        let ours: Vec<(f64, f64)> = remote_read::at_steps(&ours.samples, steps, lookback, closed)
            .into_iter()
            .map(|(t, v)| (t as f64 / 1000.0, v))
            .collect();
        assert_eq!(ours, theirs.samples, "{:?}", theirs.labels);
    }
    let b = &read[1];
    assert!(
        b.samples.iter().any(|&(_, v)| remote_read::is_stale(v)),
        "b has its marker"
    );
    let b_steps = theirs[1].samples.last().unwrap().0 as i64;
    assert!(
        b_steps < end - 1,
        "b ends at its marker, not {lookback} ms later"
    );

    // Throttling: an unchanged counter's rate is 0 where a window holds two samples, as
    // Prometheus's `rate` says; a changed one is left to Prometheus.
    let rate = ds
        .range(
            "rate(container_cpu_cfs_throttled_seconds_total{pod=\"a\"}[3s])",
            started,
            end,
            1,
        )
        .await
        .unwrap();
    let query = |pod: &str| Query {
        start_ms: (started - 3) * 1000,
        end_ms: end * 1000,
        matchers: vec![
            Matcher::Eq(
                "__name__".into(),
                "container_cpu_cfs_throttled_seconds_total".into(),
            ),
            Matcher::Eq("pod".into(), pod.into()),
        ],
    };
    let read = ds.read(&[query("a")]).await.unwrap().unwrap();
    let steps = (started * 1000, end * 1000, 1000);
    let ours: Vec<(f64, f64)> = remote_read::unchanged_rate(&read[0].samples, steps, 3000, closed)
        .unwrap()
        .into_iter()
        .map(|(t, v)| (t as f64 / 1000.0, v))
        .collect();
    assert!(ours.len() >= 3, "{ours:?}");
    assert_eq!(ours, rate[0].samples);
    let read = ds.read(&[query("c")]).await.unwrap().unwrap();
    assert_eq!(
        remote_read::unchanged_rate(&read[0].samples, steps, 3000, closed),
        None
    );

    // The raw samples of a range selector: no markers.
    let window = end - started + 2;
    let theirs = ds
        .instant(
            &format!("container_memory_rss{{namespace=\"shop\"}}[{window}s]"),
            Some(end),
        )
        .await
        .unwrap();
    let query = Query {
        start_ms: (end - window) * 1000,
        end_ms: end * 1000,
        matchers: vec![Matcher::Eq(
            "__name__".into(),
            "container_memory_rss".into(),
        )],
    };
    let read = ds.read(&[query]).await.unwrap().unwrap();
    assert_eq!(read.len(), theirs.len());
    for (ours, theirs) in read.iter().zip(&theirs) {
        let ours: Vec<(f64, f64)> = ours
            .samples
            .iter()
            .filter(|&&(_, v)| !remote_read::is_stale(v))
            .map(|&(t, v)| (t as f64 / 1000.0, v))
            .collect();
        assert!(ours.len() >= 3);
        assert_eq!(ours, theirs.samples, "{:?}", theirs.labels);
    }
}

/// What an HTTP front of the real Prometheus does with remote reads (it passes the rest on).
#[derive(Clone, Copy)]
enum RemoteReads {
    /// Answered with 404, as a query-only server does.
    Absent,
    /// The first this many answered with 503 (restarting, overloaded), the rest passed on.
    FailFirst(usize),
}

/// A front of the real Prometheus (see [`front`]).
struct Front {
    url: String,
    /// Remote reads that reached it.
    reads: Arc<AtomicUsize>,
    /// The query API requests passed on (path and query string).
    queries: Arc<Mutex<Vec<String>>>,
}

/// A front of the real Prometheus at `upstream`.
async fn front(upstream: String, remote: RemoteReads) -> Front {
    let port = free_port();
    let client = reqwest::Client::new();
    let reads = Arc::new(AtomicUsize::new(0));
    let queries = Arc::new(Mutex::new(Vec::new()));
    let read = {
        let (client, upstream, reads) = (client.clone(), upstream.clone(), reads.clone());
        move |headers: HeaderMap, body: axum::body::Bytes| async move {
            let n = reads.fetch_add(1, Ordering::SeqCst);
            match remote {
                RemoteReads::Absent => {
                    return (StatusCode::NOT_FOUND, HeaderMap::new(), Vec::new());
                }
                RemoteReads::FailFirst(k) if n < k => {
                    return (
                        StatusCode::SERVICE_UNAVAILABLE,
                        HeaderMap::new(),
                        b"restarting".to_vec(),
                    );
                }
                RemoteReads::FailFirst(_) => {}
            }
            let mut request = client.post(format!("{upstream}/api/v1/read")).body(body);
            for name in [
                "content-encoding",
                "content-type",
                "x-prometheus-remote-read-version",
            ] {
                if let Some(v) = headers.get(name) {
                    request = request.header(name, v);
                }
            }
            let answer = request.send().await.unwrap();
            let status = StatusCode::from_u16(answer.status().as_u16()).unwrap();
            let mut out = HeaderMap::new();
            if let Some(v) = answer.headers().get("content-type") {
                out.insert("content-type", v.to_str().unwrap().parse().unwrap());
            }
            (status, out, answer.bytes().await.unwrap().to_vec())
        }
    };
    let app = axum::Router::new()
        .route("/api/v1/read", axum::routing::post(read))
        .fallback({
            let queries = queries.clone();
            move |uri: axum::http::Uri| {
                let (client, upstream) = (client.clone(), upstream.clone());
                queries.lock().unwrap().push(uri.to_string());
                async move {
                    let answer = client.get(format!("{upstream}{uri}")).send().await.unwrap();
                    (answer.status(), answer.bytes().await.unwrap())
                }
            }
        });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Front {
        url: format!("http://127.0.0.1:{port}"),
        reads,
        queries,
    }
}

/// The fetch of `cart` in `shop` straight from the query API of the Prometheus at `url`.
async fn cart_through_queries(url: &str) -> HashMap<String, Fetched> {
    let direct = datasource(url).with_reads(Reads::Query);
    let theirs = fetch_namespace(&direct, "shop", &["cart"], Some(END))
        .await
        .unwrap();
    assert!(theirs["cart"].series.len() > 800);
    theirs
}

#[tokio::test]
#[ignore = "needs Prometheus (Debian package prometheus): run scripts/test"]
async fn a_remote_read_answered_503_is_retried_not_abandoned() {
    let server = serve(&cluster()).await;
    let Front { url, reads, .. } = front(server.url.clone(), RemoteReads::FailFirst(2)).await;
    let front = datasource(&url);
    let ours = fetch_namespace(&front, "shop", &["cart"], Some(END))
        .await
        .unwrap();
    assert!(front.remote_reads(), "still read through chunks");
    assert!(
        reads.load(Ordering::SeqCst) > 2,
        "retried past the two 503s"
    );
    assert_eq!(ours, cart_through_queries(&server.url).await);
}

#[tokio::test]
#[ignore = "needs Prometheus (Debian package prometheus): run scripts/test"]
async fn a_datasource_without_remote_reads_is_read_through_queries() {
    let server = serve(&cluster()).await;
    let front = datasource(&front(server.url.clone(), RemoteReads::Absent).await.url);
    assert!(front.remote_reads(), "tried first");
    let ours = fetch_namespace(&front, "shop", &["cart"], Some(END))
        .await
        .unwrap();
    assert!(
        !front.remote_reads(),
        "remembered: the query API from now on"
    );
    assert_eq!(ours, cart_through_queries(&server.url).await);
}
