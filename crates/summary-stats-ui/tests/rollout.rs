//! The backend blue/green rollout of docs/rollouts.md, rehearsed with the real broker,
//! registry, Prometheus and binaries as processes: a blue v1 backend serves through an
//! emulated `backend-active` Service; a green v3 backend (its own group and topic) starts
//! beside it and catches up; the pre-promotion analysis runs every AnalysisTemplate query of
//! k8s/ against a Prometheus scraping the processes; promotion points the Service at green and
//! the UI switches; a rollback points it back and the UI switches back; an injected burst of
//! bad records makes the dead-letter analysis fail. A sampler reads the UI every 100 ms all
//! along: no total ever goes down or above the truth, and the end result is exact.
//! `scripts/rehearse-rollout` runs it with its narration.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use rivulet_common::avro;
use rivulet_common::kafka::ensure_topic;
use rivulet_contracts::{Version, summary};
use rivulet_testkit::widgets::{
    Process, Switch, assert_same, backend_coloured, expected, free_port, kafka, produce,
    produce_raw, registry, setup, ui_following,
};
use schema_registry_converter::async_impl::schema_registry::post_schema;
use schema_registry_converter::schema_registry_common::{SchemaType, SuppliedSchema};
use serde_json::Value;
use support::{Phases, Sampler, as_seen_by, get, wait_for_ui};

const WAIT: Duration = Duration::from_secs(90);

fn say(step: &str) {
    eprintln!("[rehearsal] {step}");
}

/// A Prometheus scraping the targets of a file it rereads, every second.
struct Prometheus {
    child: Child,
    url: String,
    targets: PathBuf,
    dir: PathBuf,
}

impl Prometheus {
    fn start() -> Prometheus {
        let dir = std::env::temp_dir().join(rivulet_testkit::unique("rollout-prometheus"));
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let targets = dir.join("targets.json");
        std::fs::write(&targets, "[]").unwrap();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: rivulet\n    file_sd_configs:\n      - files: ['{}']\n        refresh_interval: 1s\n",
            targets.display()
        );
        std::fs::write(dir.join("prometheus.yml"), config).unwrap();
        let port = free_port();
        let child = Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
            .spawn()
            .expect("prometheus (Debian package prometheus; scripts/test installs it)");
        Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            targets,
            dir,
        }
    }

    /// Scrapes each `(port, service)`: the label the ServiceMonitors give in a cluster.
    fn scrape(&self, targets: &[(u16, &str)]) {
        let groups: Vec<Value> = targets
            .iter()
            .map(|(port, service)| {
                serde_json::json!({"targets": [format!("127.0.0.1:{port}")], "labels": {"service": service}})
            })
            .collect();
        let tmp = self.targets.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec(&groups).unwrap()).unwrap();
        std::fs::rename(tmp, &self.targets).unwrap();
    }

    async fn query(&self, promql: &str) -> Option<f64> {
        let encoded: String = form_urlencoded::byte_serialize(promql.as_bytes()).collect();
        let body: Value = reqwest::Client::new()
            .get(format!("{}/api/v1/query?query={encoded}", self.url))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        body["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    }

    /// Waits until `up` of `service` is 1.
    async fn wait_up(&self, service: &str) {
        let deadline = Instant::now() + WAIT;
        while self.query(&format!("up{{service=\"{service}\"}}")).await != Some(1.0) {
            assert!(Instant::now() < deadline, "{service} never scraped");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One metric of an AnalysisTemplate: its query and success condition.
#[derive(Debug)]
struct Check {
    template: String,
    metric: String,
    query: String,
    condition: String,
}

/// The metrics of the AnalysisTemplates in `file` (the layout of k8s/base/*/analysis.yaml:
/// `name:` lines, `successCondition:` and a `query: |` block).
fn checks(file: &Path) -> Vec<Check> {
    let text = std::fs::read_to_string(file).unwrap();
    let mut out = Vec::new();
    for doc in text.split("\n---\n") {
        if !doc.contains("kind: AnalysisTemplate") {
            continue;
        }
        let lines: Vec<&str> = doc.lines().collect();
        let template = lines
            .iter()
            .find_map(|l| l.strip_prefix("  name: "))
            .unwrap()
            .to_owned();
        let mut i = lines.iter().position(|l| *l == "  metrics:").unwrap();
        while i < lines.len() {
            if let Some(metric) = lines[i].strip_prefix("    - name: ") {
                let mut check = Check {
                    template: template.clone(),
                    metric: metric.to_owned(),
                    query: String::new(),
                    condition: String::new(),
                };
                i += 1;
                while i < lines.len() && !lines[i].starts_with("    - ") {
                    let line = lines[i].trim_start();
                    if let Some(c) = line.strip_prefix("successCondition: ") {
                        check.condition = c.to_owned();
                    }
                    if line == "query: |" {
                        let indent = lines[i].len() - line.len();
                        i += 1;
                        while i < lines.len()
                            && lines[i].len() - lines[i].trim_start().len() > indent
                        {
                            check.query.push_str(lines[i].trim());
                            check.query.push(' ');
                            i += 1;
                        }
                        continue;
                    }
                    i += 1;
                }
                out.push(check);
                continue;
            }
            i += 1;
        }
    }
    out
}

/// Whether `result[0] <op> <number>` holds for `value`.
fn holds(condition: &str, value: f64) -> bool {
    let rest = condition.strip_prefix("result[0] ").unwrap();
    let (op, number) = rest.split_once(' ').unwrap();
    let n: f64 = number.trim().parse().unwrap();
    match op {
        "<=" => value <= n,
        "<" => value < n,
        ">=" => value >= n,
        ">" => value > n,
        "==" => value == n,
        other => panic!("operator {other} in {condition}"),
    }
}

/// The Rivulet metrics `check` reads.
fn metric_names(check: &Check) -> Vec<&str> {
    check
        .query
        .match_indices("rivulet_")
        .map(|(at, _)| {
            let rest = &check.query[at..];
            &rest[..rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len())]
        })
        .collect()
}

/// Fails unless every metric `check` reads has series for `service` (its queries end in
/// `or vector(0)`, which would hide a misspelt name). Families with labels appear with their
/// first sample, so `except` names may be absent.
async fn assert_reads_real_metrics(p: &Prometheus, check: &Check, service: &str, except: &[&str]) {
    for name in metric_names(check) {
        if except.contains(&name) {
            continue;
        }
        let count = p
            .query(&format!("count({name}{{service=\"{service}\"}})"))
            .await;
        assert!(
            count.is_some_and(|c| c >= 1.0),
            "{}/{}: no series of {name} for {service}",
            check.template,
            check.metric
        );
    }
}

/// Runs `check` for `service`: (value, passed).
async fn run(p: &Prometheus, check: &Check, service: &str) -> (f64, bool) {
    let query = check.query.replace("{{args.service}}", service);
    let value = p
        .query(&query)
        .await
        .unwrap_or_else(|| panic!("{}/{}: no answer to {query}", check.template, check.metric));
    (value, holds(&check.condition, value))
}

async fn register_summary_schemas(topic: &str) {
    let sr = registry().settings().unwrap();
    for v in [Version::V1, Version::V2, Version::V3] {
        post_schema(
            &sr,
            avro::value_subject(topic),
            SuppliedSchema::new(None, SchemaType::Avro, summary::text(v).into()),
        )
        .await
        .unwrap();
    }
}

async fn wait_for_source(ui: &Process, topic: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, status) = get(ui, "/api/v1/status").await;
        if status["source"] == topic {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the UI never served {topic}: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
#[ignore = "needs Kafka, the registry and Prometheus: run scripts/test"]
async fn blue_green_rollout_and_rollback_keep_every_total_exact() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let backend_checks = checks(&root.join("k8s/base/backend/analysis.yaml"));
    let ui_checks = checks(&root.join("k8s/base/summary-stats-ui/analysis.yaml"));
    assert_eq!(backend_checks.len(), 3, "{backend_checks:#?}");
    assert_eq!(ui_checks.len(), 2, "{ui_checks:#?}");

    let t = setup(3).await;
    let green_topic = format!("{}.green", t.summary);
    ensure_topic(&kafka().admin("test").unwrap(), &green_topic, 3, &[])
        .await
        .unwrap();
    register_summary_schemas(&green_topic).await;
    let (blue_group, green_group) = (format!("{}-blue", t.group), format!("{}-green", t.group));

    let Phases {
        records,
        a,
        b,
        truth,
    } = Phases::new(77);

    say("blue: a v1 backend (its own group, topic summary-stats) behind backend-active");
    let blue = backend_coloured(&t, "v1", "blue", &blue_group, &t.summary);
    blue.wait_ok("/healthz", WAIT).await;
    let active = Switch::start(blue.port).await;
    let source = active.url("/api/v1/output");
    let ui = ui_following(&t, "v3", Some(&source));
    ui.wait_ok("/readyz", WAIT).await;
    wait_for_source(&ui, &t.summary).await;
    let prometheus = Prometheus::start();
    prometheus.scrape(&[
        (blue.port, "backend-active"),
        (ui.port, "summary-stats-ui-canary"),
    ]);
    let watch = Sampler::start(&ui, truth.clone());
    produce(&t.raw, &records[..a], |_| Version::V1).await;
    let first = as_seen_by(&expected(&records[..a], |_| Version::V1), "v1");
    assert_same(&first, &wait_for_ui(&ui, &first).await.0, "blue serves");

    say("green: a v3 backend (group green, topic summary-stats.green) starts beside blue");
    let green = backend_coloured(&t, "v3", "green", &green_group, &green_topic);
    green.wait_ok("/healthz", WAIT).await;
    prometheus.scrape(&[
        (blue.port, "backend-active"),
        (green.port, "backend-preview"),
        (ui.port, "summary-stats-ui-canary"),
    ]);
    produce(&t.raw, &records[a..b], |_| Version::V1).await;
    prometheus.wait_up("backend-preview").await;
    prometheus.wait_up("summary-stats-ui-canary").await;
    // Green has caught up when its lag is 0 and the records it counted reach the total.
    let deadline = Instant::now() + WAIT;
    while green.metric("rivulet_backend_records_total").await < b as f64 {
        assert!(Instant::now() < deadline, "green never caught up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Its lag is exported once measured: wait until Prometheus has scraped a measured 0.
    let deadline = Instant::now() + WAIT;
    while prometheus
        .query("sum(rivulet_backend_lag{service=\"backend-preview\"})")
        .await
        != Some(0.0)
    {
        assert!(Instant::now() < deadline, "green's lag never read 0");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    say("pre-promotion analysis on backend-preview (green), and the UI canary's");
    let absent_until_used = ["rivulet_backend_dead_letters_total"];
    for (checks, service, absent) in [
        (&backend_checks, "backend-preview", &absent_until_used[..]),
        (&ui_checks, "summary-stats-ui-canary", &[][..]),
    ] {
        for check in checks {
            assert_reads_real_metrics(&prometheus, check, service, absent).await;
            let (value, passed) = run(&prometheus, check, service).await;
            let verdict = if passed { "pass" } else { "FAIL" };
            say(&format!(
                "  {}/{} = {value}: {verdict}",
                check.template, check.metric
            ));
            assert!(passed, "{check:?} = {value} on a healthy run");
        }
    }

    say("promote: backend-active points at green; the UI switches once green dominates");
    active.set(green.port);
    prometheus.scrape(&[
        (green.port, "backend-active"),
        (blue.port, "backend-preview"),
        (ui.port, "summary-stats-ui-canary"),
    ]);
    wait_for_source(&ui, &green_topic).await;
    produce(&t.raw, &records[b..], |_| Version::V3).await;
    let (got, _) = wait_for_ui(&ui, &truth).await;
    assert_same(&truth, &got, "green serves every field, exact");
    let (_, metrics) = get(&ui, "/api/v1/status").await;
    assert_eq!(metrics["source"], green_topic.as_str());

    say("roll back: backend-active points at blue again (it kept consuming all along)");
    active.set(blue.port);
    wait_for_source(&ui, &t.summary).await;
    // Blue is v1: the same counts, and defects and costs unknown (not 0).
    let seen_by_v1 = as_seen_by(&truth, "v1");
    let (got, _) = wait_for_ui(&ui, &seen_by_v1).await;
    assert_same(&seen_by_v1, &got, "blue's totals after the rollback");
    // Green's v3 fields are still in its topic for the next roll forward.
    active.set(green.port);
    wait_for_source(&ui, &green_topic).await;
    let (got, _) = wait_for_ui(&ui, &truth).await;
    assert_same(&truth, &got, "rolled forward again: every v3 field is back");
    let samples = watch.finish("UI through the rollout").await;
    say(&format!(
        "the sampler read the UI {samples} times: no total went down or above the truth"
    ));

    say("inject a burst of bad records: the dead-letter analysis must fail");
    let before = green.metric_sum("rivulet_backend_dead_letters_total").await;
    for i in 0..300 {
        produce_raw(&t.raw, &format!("garbage-{i}"), Some(b"not avro at all")).await;
    }
    let deadline = Instant::now() + WAIT;
    while green.metric_sum("rivulet_backend_dead_letters_total").await < before + 300.0 {
        assert!(Instant::now() < deadline, "the burst was not dead-lettered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let dead_letters = backend_checks
        .iter()
        .find(|c| c.template == "backend-dead-letter-rate")
        .unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let (value, passed) = run(&prometheus, dead_letters, "backend-active").await;
        if !passed {
            say(&format!(
                "  {}/{} = {value}: FAIL, as it must",
                dead_letters.template, dead_letters.metric
            ));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the dead-letter analysis still passes: {value}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_reads_real_metrics(&prometheus, dead_letters, "backend-active", &[]).await;
    assert!(ui.metric("rivulet_ui_source_switches_total").await >= 3.0);
}
