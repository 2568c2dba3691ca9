//! Against a real Prometheus loaded with a synthetic cluster through
//! `promtool tsdb create-blocks-from openmetrics`: discovery with filters, the per-namespace
//! fetch equal to what the samples imply, the engine's output on it equal to the engine's
//! output on the ground truth, and a datasource that is down.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use rivulet_recommendation_producer::collect::{discover, fetch_namespace, fetch_namespaces};
use rivulet_recommendation_producer::engine::{Settings, recommend};
use std::collections::BTreeMap;

use rivulet_recommendation_producer::prometheus::{QueryError, Windows, closed_windows_of};
use rivulet_recommendation_producer::queries::{self, Filter, Filters};
use support::{END, assert_same_series, close, cluster, datasource, free_port, same_json, serve};

#[tokio::test]
#[ignore = "needs Prometheus (Debian package prometheus): run scripts/test"]
async fn discovery_fetch_and_recommendations_match_the_samples() {
    let cluster = cluster();
    let server = serve(&cluster).await;
    let ds = datasource(&server.url);
    ds.handshake().await.unwrap();
    let window = Some((END - 3600, END));

    // Discovery: everything, then filtered; include wins over exclude.
    let found = discover(&ds, &Filters::default(), window).await.unwrap();
    assert_eq!(found.namespaces, ["kube-system", "shop", "tmp-build"]);
    let all = found.containers;
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
    let shop = discover(&ds, &filters, window).await.unwrap().containers;
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
    let kube = discover(&ds, &filters, window).await.unwrap().containers;
    assert_eq!(kube.len(), 1, "include wins: {kube:?}");

    // The fetch gives exactly the intervals the samples imply, and so the same recommendations.
    let names: Vec<&str> = cluster
        .containers
        .iter()
        .filter(|c| c.namespace == "shop")
        .map(|c| c.container.as_str())
        .collect();
    let queries = prometheus_client::metrics::counter::Counter::<u64>::default();
    let ds = ds.counting(queries.clone());
    let fetched = fetch_namespace(&ds, "shop", &names, Some(END))
        .await
        .unwrap();
    assert_eq!(fetched.len(), 5);
    // Every container ran until the end: the cheap last-activity query found them all.
    assert_eq!(queries.get(), 1 + 5);
    // An hour later none has a recent sample: the 15-day look-back runs and finds the last
    // use (as the reference does, up to the 5-minute lookback after the last sample, so the
    // window ends one step later) and the same intervals.
    let later = fetch_namespace(&ds, "shop", &names, Some(END + 3600))
        .await
        .unwrap();
    assert_eq!(queries.get(), 6 + 2 + 5);
    assert_eq!(later.len(), 5);
    for (container, got) in &later {
        assert_eq!(got.end, END + 900, "{container}");
        assert!(
            got.series == fetched[container].series,
            "{container}: other intervals"
        );
    }
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
#[ignore = "needs Prometheus (Debian package prometheus): run scripts/test"]
async fn namespace_data_matches_the_namespace_wide_sums_of_the_samples() {
    let cluster = cluster();
    let server = serve(&cluster).await;
    let ds = datasource(&server.url);
    let fetched = fetch_namespaces(&ds, &["shop", "kube-system", "tmp-build"], Some(END))
        .await
        .unwrap();
    assert_eq!(fetched.len(), 3);
    for ns in ["shop", "kube-system", "tmp-build"] {
        let got = &fetched[ns];
        assert_eq!(got.end, END, "{ns}");
        let want = cluster.expected_namespace(ns);
        assert_same_series(&want, &got.series, ns);
        let settings = Settings::default();
        let a = serde_json::to_value(recommend(&want, &settings)).unwrap();
        let b = serde_json::to_value(recommend(&got.series, &settings)).unwrap();
        same_json(&a, &b, ns);
    }
    // The sums are evaluated on whole minutes, so every interval's start is one: Prometheus 3's
    // left-open windows leave it out.
    let left_open = datasource(&server.url).with_windows(Windows::LeftOpen);
    let open = fetch_namespaces(&left_open, &["shop"], Some(END))
        .await
        .unwrap();
    assert_same_series(
        &cluster.expected_namespace_with("shop", false),
        &open["shop"].series,
        "shop, left-open",
    );
    // shop: the quota is the current config; 6 pods at the end (web has 2); a long term.
    let shop =
        serde_json::to_value(recommend(&fetched["shop"].series, &Settings::default())).unwrap();
    let at = &shop["data"][rivulet_recommendation_producer::engine::stamp(END)];
    assert_eq!(at["current"]["requests"]["cpu"]["amount"], 3.0);
    assert_eq!(at["current"]["limits"]["memory"]["amount"], 4_294_967_296.0);
    let cost = &at["recommendation_terms"]["short_term"]["recommendation_engines"]["cost"];
    assert_eq!(cost["pods_count"], 6, "{cost}");
    assert!(at["recommendation_terms"]["long_term"]["recommendation_engines"].is_object());
    // kube-system has no quota: the reference's "not set" notifications.
    let kube = serde_json::to_value(recommend(
        &fetched["kube-system"].series,
        &Settings::default(),
    ))
    .unwrap();
    let at = &kube["data"][rivulet_recommendation_producer::engine::stamp(END)];
    assert!(
        at["notifications"]["523001"].is_object(),
        "{}",
        at["notifications"]
    );
}

#[tokio::test]
async fn a_datasource_that_is_down_is_unreachable() {
    let port = free_port(); // nobody listens there
    let ds = datasource(&format!("http://127.0.0.1:{port}"));
    let error = ds.handshake().await.unwrap_err();
    assert!(matches!(error, QueryError::Unreachable(_)), "{error:?}");
}

/// The per-pod values Prometheus itself computes with `<fn>_over_time(…[15m])` at step 900
/// (one pod here, so the cross-pod aggregates are these).
async fn over_time(url: &str, function: &str, start: i64, end: i64) -> BTreeMap<i64, f64> {
    let ds = datasource(url);
    let query = format!(
        r#"{function}_over_time(container_memory_working_set_bytes{{namespace="shop",container="cart"}}[15m])"#
    );
    let series = ds.range(&query, start, end, 900).await.unwrap();
    assert_eq!(series.len(), 1, "one pod");
    series[0]
        .samples
        .iter()
        .map(|&(t, v)| (t.round() as i64, v))
        .collect()
}

/// With samples on whole minutes (a 60 s scrape aligned to the clock), every fifteenth lands on
/// a 15-minute boundary. The fetch reads intervals as the datasource's version computes them:
/// on this Prometheus (2.x) `[t − 15m, t]`, equal to its own `*_over_time(…[15m])`; forced
/// left-open (Prometheus 3's `(t − 15m, t]`) it differs on the intervals that hold a boundary
/// sample.
#[tokio::test]
#[ignore = "needs Prometheus (Debian package prometheus): run scripts/test"]
async fn windows_follow_the_datasource_version() {
    let mut cluster = cluster();
    cluster.aligned = true;
    let server = serve(&cluster).await;
    let version = datasource(&server.url).version().await.unwrap();
    assert_eq!(closed_windows_of(&version), Some(true), "{version}");
    let start = END - 15 * 86_400;
    let mut theirs = BTreeMap::new();
    for function in ["avg", "min", "max"] {
        theirs.insert(function, over_time(&server.url, function, start, END).await);
    }
    assert!(theirs["avg"].len() > 800, "9 days of intervals");
    let ours = |windows: Windows| {
        let ds = datasource(&server.url).with_windows(windows);
        async move {
            fetch_namespace(&ds, "shop", &["cart"], Some(END))
                .await
                .unwrap()["cart"]
                .series
                .clone()
        }
    };
    let auto = ours(Windows::Auto).await;
    for (t, &avg) in &theirs["avg"] {
        let got = &auto[t].memory_usage();
        assert!(close(got.avg, Some(avg)), "{t}: {:?} vs {avg}", got.avg);
        assert!(close(got.min, Some(theirs["min"][t])), "{t}: min");
        assert!(close(got.max, Some(theirs["max"][t])), "{t}: max");
    }
    assert_eq!(auto, ours(Windows::Closed).await, "auto is closed on 2.x");
    let left_open = ours(Windows::LeftOpen).await;
    let differ = theirs["avg"]
        .iter()
        .filter(|(t, avg)| !close(left_open[*t].memory_usage().avg, Some(**avg)))
        .count();
    assert!(
        differ > theirs["avg"].len() / 2,
        "left-open windows leave out the boundary sample: {differ} of {} differ",
        theirs["avg"].len()
    );

    // Namespace experiments: the reference's subquery over the namespace-wide sum, as this
    // Prometheus evaluates it, equals the fetch's interval by interval.
    let sum = queries::namespace_sum(queries::Sum::Memory, &["shop"]);
    let subquery = format!("avg_over_time(({sum})[15m:1m])");
    let theirs = datasource(&server.url)
        .range(&subquery, start, END, 900)
        .await
        .unwrap();
    assert_eq!(theirs.len(), 1);
    let ds = datasource(&server.url);
    let ours = fetch_namespaces(&ds, &["shop"], Some(END)).await.unwrap();
    let ours = &ours["shop"].series;
    let mut compared = 0;
    for &(t, avg) in &theirs[0].samples {
        let t = t.round() as i64;
        assert!(
            close(ours[&t].memory_usage().avg, Some(avg)),
            "{t}: {:?} vs {avg}",
            ours[&t].memory_usage().avg
        );
        compared += 1;
    }
    assert!(compared > 800, "{compared} intervals");
}
