//! `schema-registry apply` with the repository's contracts: v1 → v2 → v3 under FULL_TRANSITIVE,
//! idempotent re-runs, and breaking changes refused locally, by `--dry-run` and by the registry.

#![allow(clippy::unwrap_used)] // tests and tools: a failed unwrap is a failed run

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{Api, Replica, unique};
use serde_json::{Value, json};

fn contracts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas")
}

fn apply(url: &str, dir: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_schema-registry"))
        .args(["apply", "--schema-registry-url", url, "--dir"])
        .arg(dir)
        .args(extra)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A copy of the raw-data-in contracts plus a `v4.avsc` made by `change` from v3.
fn with_v4(change: impl Fn(&mut Value)) -> PathBuf {
    let dir = std::env::temp_dir()
        .join(unique("contracts"))
        .join("raw-data-in");
    std::fs::create_dir_all(&dir).unwrap();
    for v in 1..=3 {
        std::fs::copy(
            contracts().join(format!("raw-data-in/v{v}.avsc")),
            dir.join(format!("v{v}.avsc")),
        )
        .unwrap();
    }
    let mut v4: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("v3.avsc")).unwrap()).unwrap();
    change(&mut v4);
    std::fs::write(dir.join("v4.avsc"), v4.to_string()).unwrap();
    dir.parent().unwrap().to_path_buf()
}

#[tokio::test]
#[ignore = "needs Kafka and the test stack: run scripts/test"]
async fn contracts_evolve_full_transitively_and_breaking_changes_are_refused() {
    let registry = Replica::start(&[]).await;
    let api = Api {
        base: &registry.url,
    };

    let dry = apply(&registry.url, &contracts(), &["--dry-run"]);
    assert!(dry.status.success(), "{}", text(&dry));
    assert!(
        api.get("/subjects")
            .await
            .body
            .as_array()
            .unwrap()
            .is_empty(),
        "a dry run changes nothing"
    );

    let first = apply(&registry.url, &contracts(), &[]);
    assert!(first.status.success(), "{}", text(&first));
    for subject in ["raw-data-in-value", "summary-stats-value"] {
        assert_eq!(
            api.get(&format!("/subjects/{subject}/versions")).await.body,
            json!([1, 2, 3]),
            "{subject}"
        );
        assert_eq!(
            api.get(&format!("/config/{subject}")).await.body["compatibilityLevel"],
            "FULL_TRANSITIVE"
        );
    }
    assert_eq!(
        api.get("/subjects/base-costs-value/versions").await.body,
        json!([1])
    );
    let v3 = api.get("/subjects/raw-data-in-value/versions/3").await.body;
    let fields: Value = serde_json::from_str(v3["schema"].as_str().unwrap()).unwrap();
    let cost = fields["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "sku_manufacturing_cost")
        .unwrap();
    assert_eq!(
        (cost["type"].clone(), cost["default"].clone()),
        (json!(["null", "int"]), Value::Null)
    );

    let again = apply(&registry.url, &contracts(), &[]);
    assert!(again.status.success(), "{}", text(&again));
    assert_eq!(
        api.get("/subjects/raw-data-in-value/versions").await.body,
        json!([1, 2, 3]),
        "re-running adds nothing"
    );
    let dry = apply(&registry.url, &contracts(), &["--dry-run"]);
    assert!(text(&dry).contains("already registered"), "{}", text(&dry));

    // Breaking change 1: a new field without a default. Refused before anything is sent.
    let required = with_v4(|s| {
        s["fields"]
            .as_array_mut()
            .unwrap()
            .push(json!({ "name": "shift", "type": "int" }))
    });
    let refused = apply(&registry.url, &required, &[]);
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("FULL_TRANSITIVE"),
        "{}",
        text(&refused)
    );
    assert_eq!(
        api.get("/subjects/raw-data-in-value/versions").await.body,
        json!([1, 2, 3])
    );

    // The registry refuses it too (FULL_TRANSITIVE is on the subject), and so does v3 with
    // the defect field's default removed (v1 data has no defect_qty).
    let v4 = serde_json::from_str::<Value>(
        &std::fs::read_to_string(required.join("raw-data-in/v4.avsc")).unwrap(),
    )
    .unwrap();
    let direct = api.register("raw-data-in-value", &v4).await;
    assert_eq!((direct.status, direct.code()), (409, 409));
    let mut no_default: Value = serde_json::from_str(
        &std::fs::read_to_string(contracts().join("raw-data-in/v3.avsc")).unwrap(),
    )
    .unwrap();
    no_default["fields"][6] = json!({ "name": "defect_qty", "type": ["null", "int"] });
    no_default["fields"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "name": "line", "type": ["null", "string"], "default": null }));
    assert_eq!(
        api.register("raw-data-in-value", &no_default).await.status,
        409
    );
    let check = api
        .post(
            "/compatibility/subjects/raw-data-in-value/versions?verbose=true",
            &json!({ "schema": no_default.to_string() }),
        )
        .await;
    assert_eq!(check.body["is_compatible"], false);

    // A compatible v4 (a new optional field) passes the dry run and registers.
    let optional = with_v4(|s| {
        s["fields"]
            .as_array_mut()
            .unwrap()
            .push(json!({ "name": "shift", "type": ["null", "int"], "default": null }))
    });
    let dry = apply(&registry.url, &optional, &["--dry-run"]);
    assert!(
        dry.status.success() && text(&dry).contains("would be registered"),
        "{}",
        text(&dry)
    );
    assert!(apply(&registry.url, &optional, &[]).status.success());
    assert_eq!(
        api.get("/subjects/raw-data-in-value/versions").await.body,
        json!([1, 2, 3, 4])
    );
}

#[test]
fn unreachable_registry_is_a_clear_error() {
    let out = apply("http://127.0.0.1:9", &contracts(), &[]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("calling the schema registry at http://127.0.0.1:9"),
        "{}",
        text(&out)
    );
}

#[test]
fn unreachable_broker_is_retried_and_sigterm_still_stops_cleanly() {
    use std::io::BufRead;
    use std::time::{Duration, Instant};
    // Nothing listens on this port once the listener is dropped.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_schema-registry"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--kafka-bootstrap-servers",
            &dead.to_string(),
        ])
        .env("RUST_LOG", "warn")
        .env("LOG_FORMAT", "json")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    // Bounded: a registry that never warns fails the test instead of hanging it.
    let deadline = Instant::now() + Duration::from_secs(60);
    let warning = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains("Cannot open the schema log yet") => break line,
            Ok(_) => {}
            Err(_) => panic!("no warning that says why it is waiting within 60 s"),
        }
    };
    assert!(
        warning.contains(&dead.to_string()),
        "names the bootstrap servers: {warning}"
    );
    assert!(
        child.try_wait().unwrap().is_none(),
        "keeps retrying instead of exiting"
    );
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let asked = Instant::now();
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "SIGTERM while connecting exits 0, got {status}"
    );
    assert!(asked.elapsed() < Duration::from_secs(5), "stops promptly");
}
