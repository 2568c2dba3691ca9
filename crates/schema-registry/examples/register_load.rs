//! Load for `scripts/bench-registry`: W concurrent writers each register N new versions of
//! their own subject (each adds an optional field) and the latencies are printed.
//!
//! Usage: `register_load URL WRITERS PER_WRITER`

#![allow(clippy::unwrap_used)] // tests and tools: a failed unwrap is a failed run

use std::time::{Duration, Instant};

use serde_json::json;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:8081".into());
    let writers: usize = args.next().map_or(Ok(8), |s| s.parse())?;
    let per_writer: usize = args.next().map_or(Ok(50), |s| s.parse())?;
    let run = std::process::id();
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (client, url) = (client.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let subject = format!("load-{run}-{w}");
            let mut latencies = Vec::with_capacity(per_writer);
            let mut fields = vec![json!({ "name": "id", "type": "long" })];
            for i in 0..per_writer {
                fields.push(
                    json!({ "name": format!("f{i}"), "type": ["null", "long"], "default": null }),
                );
                let schema =
                    json!({ "type": "record", "name": "Load", "fields": fields }).to_string();
                let t = Instant::now();
                let response = client
                    .post(format!("{url}/subjects/{subject}/versions"))
                    .header("content-type", "application/vnd.schemaregistry.v1+json")
                    .body(json!({ "schema": schema }).to_string())
                    .send()
                    .await?;
                anyhow::ensure!(
                    response.status().is_success(),
                    "registration failed: {}",
                    response.text().await?
                );
                latencies.push(t.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut all: Vec<Duration> = Vec::new();
    for task in tasks {
        all.extend(task.await??);
    }
    let elapsed = started.elapsed();
    all.sort();
    let pct = |p: f64| {
        all[((all.len() as f64 * p).ceil() as usize)
            .saturating_sub(1)
            .min(all.len() - 1)]
        .as_secs_f64()
            * 1000.0
    };
    println!(
        "registrations={} writers={writers} wall_s={:.2} per_s={:.0} p50_ms={:.2} p90_ms={:.2} p99_ms={:.2} max_ms={:.2}",
        all.len(),
        elapsed.as_secs_f64(),
        all.len() as f64 / elapsed.as_secs_f64(),
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(1.0)
    );
    Ok(())
}
