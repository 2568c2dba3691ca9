//! The load of `scripts/bench-fleet` (not a test): `CONCURRENCY` clients sending `REQUESTS`
//! requests to the fleet manager, each request timed; prints one line of figures.
//!
//! ```text
//! bench_load create URL TOKENS REQUESTS CONCURRENCY PREFIX   # POST /kafkas?async=true
//! bench_load search URL TOKENS REQUESTS CONCURRENCY SEARCH   # GET /kafkas?search=SEARCH
//! ```
//! bench_load apply KUBECONFIG N CONCURRENCY TYPES             # the anchor: no fleet manager
//! ```
//! `apply` writes what the preparing worker writes for N standard.x1 instances (namespace,
//! node pool, Kafka; server-side applies through the fleet manager's own data-plane code),
//! CONCURRENCY at a time, straight to the API server; TYPES is the instance-types file.
//!
//! TOKENS: comma-separated; client `i` calls with token `i % n` (one caller per client, or all
//! as one).
//! Output: `requests=… errors=… p50_ms=… p90_ms=… p99_ms=… max_ms=… seconds=…`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).cloned().unwrap_or_default();
    anyhow::ensure!(
        args.len() == 7 || (args.len() == 6 && mode == "apply"),
        "usage: bench_load create|search URL TOKENS REQUESTS CONCURRENCY PREFIX|SEARCH, or bench_load apply KUBECONFIG N CONCURRENCY TYPES"
    );
    if mode == "apply" {
        return apply(&args[2], args[3].parse()?, args[4].parse()?, &args[5]).await;
    }
    let base = format!("{}/api/kafkas_mgmt/v1", args[2].trim_end_matches('/'));
    let tokens: Vec<String> = args[3].split(',').map(str::to_owned).collect();
    let requests: usize = args[4].parse()?;
    let concurrency: usize = args[5].parse()?;
    let arg = args[6].clone();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let next = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..concurrency {
        let token = tokens[client % tokens.len()].clone();
        let (http, base, arg, mode) = (http.clone(), base.clone(), arg.clone(), mode.clone());
        let (next, errors) = (next.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let mut times = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= requests {
                    return times;
                }
                let request = if mode == "create" {
                    http.post(format!("{base}/kafkas?async=true"))
                        .json(&serde_json::json!({"name": format!("{arg}-{client}-{i}"), "plan": "standard.x1"}))
                } else {
                    http.get(format!("{base}/kafkas")).query(&[("search", arg.as_str()), ("size", "100")])
                };
                let t = Instant::now();
                let ok = match request.bearer_auth(&token).send().await {
                    Ok(r) => {
                        let good = r.status().is_success();
                        let _ = r.bytes().await;
                        good
                    }
                    Err(_) => false,
                };
                times.push(t.elapsed());
                if !ok {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await?);
    }
    let seconds = started.elapsed().as_secs_f64();
    all.sort_unstable();
    println!(
        "requests={} errors={} p50_ms={:.2} p90_ms={:.2} p99_ms={:.2} max_ms={:.2} seconds={seconds:.2}",
        all.len(),
        errors.load(Ordering::Relaxed),
        percentile(&all, 50.0),
        percentile(&all, 90.0),
        percentile(&all, 99.0),
        percentile(&all, 100.0),
    );
    Ok(())
}

async fn apply(kubeconfig: &str, n: usize, concurrency: usize, types: &str) -> anyhow::Result<()> {
    use futures::StreamExt;
    use rivulet_fleet_manager::{catalog, dataplane, model, strimzi};
    let types: catalog::InstanceTypes = serde_yaml_ng::from_str(&std::fs::read_to_string(types)?)?;
    let size = types
        .supported_instance_types
        .iter()
        .find(|t| t.id == "standard")
        .and_then(|t| t.sizes.first())
        .ok_or_else(|| anyhow::anyhow!("no standard size"))?
        .clone();
    let cluster: catalog::Cluster = serde_yaml_ng::from_str(&format!(
        "{{cluster_id: anchor, cloud_provider: aws, region: us-east-1, kafka_instance_limit: 1, kubeconfig: {kubeconfig:?}}}"
    ))?;
    let plane = dataplane::DataPlane::default().cluster(&cluster).await?;
    let started = Instant::now();
    let mut times: Vec<Duration> = futures::stream::iter(0..n)
        .map(|i| {
            let (plane, size) = (&plane, &size);
            async move {
                let mut row = model::KafkaRow::probe("aws", "us-east-1", "standard", size);
                row.id = format!("anchor{i:05}");
                let t = Instant::now();
                let r = plane
                    .apply(
                        &strimzi::namespace(&row),
                        &strimzi::node_pool(&row, size),
                        &strimzi::kafka(&row, size, "3.9.0"),
                    )
                    .await;
                if let Err(e) = r {
                    eprintln!("apply {}: {e}", row.id);
                }
                t.elapsed()
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    times.sort_unstable();
    println!(
        "instances={n} p50_ms={:.2} p99_ms={:.2} seconds={:.2}",
        percentile(&times, 50.0),
        percentile(&times, 99.0),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
