//! No binary ever prints a credential it was given: each one runs at `RUST_LOG=trace` with
//! known secret values on its command line, in its environment and in files, does real work
//! against the test stack (and fails once where it can, so error messages are covered), and
//! nothing it writes to stdout or stderr, nor its `/metrics`, contains any of them.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rivulet_testkit::widgets::{Topics, binary, free_port, setup};
use rivulet_testkit::{bootstrap, registry_url, unique};

/// Values no binary has any reason to print, one per way a credential reaches a binary.
const KAFKA_PASSWORD: &str = "kafka-pw-Q7xv3";
const KAFKA_PASSWORD_FILE: &str = "kafka-file-pw-H2ma9";
const KAFKA_OPTION_KEY: &str = "ssl-key-pw-M3kd1";
const KAFKA_OPTION_SECRET: &str = "oauth-secret-Z9pl4";
const REGISTRY_TOKEN: &str = "registry-token-W2hc8";
const REGISTRY_PASSWORD: &str = "registry-pw-B8ny5";
const SERVER_TOKEN: &str = "server-token-T4re6";
const SERVER_PASSWORD: &str = "server-pw-P6qs2";
const WRONG_TOKEN: &str = "wrong-token-X1vb7";
const DATABASE_PASSWORD: &str = "database-pw-D5lk0";
const DATASOURCE_TOKEN: &str = "datasource-token-R8jw3";

const ALL: &[&str] = &[
    KAFKA_PASSWORD,
    KAFKA_PASSWORD_FILE,
    KAFKA_OPTION_KEY,
    KAFKA_OPTION_SECRET,
    REGISTRY_TOKEN,
    REGISTRY_PASSWORD,
    SERVER_TOKEN,
    SERVER_PASSWORD,
    WRONG_TOKEN,
    DATABASE_PASSWORD,
    DATASOURCE_TOKEN,
];

/// A binary started with secrets, its output going to files (trace output would fill a pipe).
struct Run {
    name: &'static str,
    command: Command,
    dir: PathBuf,
    port: Option<u16>,
}

impl Run {
    /// `name` with the Kafka and registry client secrets every binary takes: the Kafka password
    /// on the command line (or from a file), credential-keyed `--kafka-option`s, the registry
    /// token in the environment and its password from a file.
    fn new(name: &'static str, args: &[&str], password_from_file: bool) -> Run {
        let dir = std::env::temp_dir().join(unique("secrets"));
        std::fs::create_dir_all(&dir).unwrap();
        let file = |n: &str, value: &str| {
            let path = dir.join(n);
            std::fs::write(&path, format!("{value}\n")).unwrap();
            path.to_str().unwrap().to_owned()
        };
        let mut command = Command::new(binary(name));
        command.args(args);
        if password_from_file {
            command.arg(format!(
                "--kafka-sasl-password-file={}",
                file("kafka-pw", KAFKA_PASSWORD_FILE)
            ));
        } else {
            command.args(["--kafka-sasl-password", KAFKA_PASSWORD]);
        }
        command
            .args(["--kafka-bootstrap-servers", &bootstrap()])
            .args(["--kafka-sasl-username", "rivulet"])
            .arg(format!(
                "--kafka-option=ssl.key.password={KAFKA_OPTION_KEY}"
            ))
            .arg(format!(
                "--kafka-option=sasl.oauthbearer.config=principal={KAFKA_OPTION_SECRET}"
            ))
            .args(["--kafka-profile", "test"])
            .env("SCHEMA_REGISTRY_TOKEN", REGISTRY_TOKEN)
            .env("SCHEMA_REGISTRY_USER", "rivulet")
            .arg(format!(
                "--schema-registry-password-file={}",
                file("registry-pw", REGISTRY_PASSWORD)
            ))
            .env("RUST_LOG", "trace")
            .env_remove("RUST_BACKTRACE");
        Run {
            name,
            command,
            dir,
            port: None,
        }
    }

    /// Serves HTTP on a free port (`--listen`).
    fn listening(mut self) -> Run {
        let port = free_port();
        self.command
            .args(["--listen", &format!("127.0.0.1:{port}")]);
        self.port = Some(port);
        self
    }

    /// Starts it; once `path` answers 200 (or the process has ended, for a one-shot command),
    /// `exercise` runs against its URL, then `/metrics` is read and it is stopped. Returns
    /// everything it printed and served, and its exit status.
    async fn observe<F, Fut>(mut self, path: &str, exercise: F) -> (String, Option<i32>)
    where
        F: FnOnce(String) -> Fut,
        Fut: std::future::Future<Output = String>,
    {
        let stdout = self.dir.join("stdout");
        let stderr = self.dir.join("stderr");
        let mut child = self
            .command
            .stdout(Stdio::from(std::fs::File::create(&stdout).unwrap()))
            .stderr(Stdio::from(std::fs::File::create(&stderr).unwrap()))
            .spawn()
            .unwrap();
        let mut served = String::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status.code();
            }
            if let Some(port) = self.port {
                let url = format!("http://127.0.0.1:{port}");
                if reqwest::get(format!("{url}{path}"))
                    .await
                    .is_ok_and(|r| r.status().is_success())
                {
                    served.push_str(&exercise(url.clone()).await);
                    let metrics = reqwest::get(format!("{url}/metrics")).await.unwrap();
                    served.push_str(&metrics.text().await.unwrap());
                    let _ = Command::new("kill")
                        .args(["-TERM", &child.id().to_string()])
                        .status();
                    break wait_exit(&mut child).await;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{} neither became ready nor exited",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let printed =
            std::fs::read_to_string(&stdout).unwrap() + &std::fs::read_to_string(&stderr).unwrap();
        std::fs::remove_dir_all(&self.dir).unwrap();
        assert!(
            printed.lines().count() > 3,
            "{} printed almost nothing at trace level: {printed}",
            self.name
        );
        (printed + &served, status)
    }
}

async fn wait_exit(child: &mut std::process::Child) -> Option<i32> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return child.wait().unwrap().code();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn assert_hidden(name: &str, text: &str) {
    for secret in ALL {
        if let Some(at) = text.find(secret) {
            let from = text[..at].rfind('\n').map_or(0, |i| i + 1);
            let to = text[at..].find('\n').map_or(text.len(), |i| at + i);
            panic!("{name} printed {secret}: {}", &text[from..to]);
        }
    }
}

/// Requests carrying credentials, right and wrong: what a server must not log either.
async fn requests_with_credentials(url: &str, requests: &[(&str, &str)]) -> String {
    let client = reqwest::Client::new();
    let mut seen = String::new();
    for (method, path) in requests {
        for token in [SERVER_TOKEN, WRONG_TOKEN] {
            let request = match *method {
                "POST" => client.post(format!("{url}{path}")).body("{}"),
                _ => client.get(format!("{url}{path}")),
            };
            let answer = request
                .header("content-type", "application/json")
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            seen.push_str(&answer.text().await.unwrap());
        }
    }
    seen
}

#[tokio::test]
#[ignore = "needs Kafka and the registry: run scripts/test"]
async fn the_registry_prints_no_secret() {
    let topic = unique("_schemas-secrets");
    let run = Run::new(
        "schema-registry",
        &["serve", "--topic", &topic, "--auth-token", SERVER_TOKEN],
        false,
    )
    .listening();
    let mut run = run;
    run.command
        .env("SCHEMA_REGISTRY_AUTH_USER", "admin")
        .env("SCHEMA_REGISTRY_AUTH_PASSWORD", SERVER_PASSWORD);
    let subject = unique("secrets");
    let (text, _) = run
        .observe("/readyz", |url| async move {
            let path = format!("/subjects/{subject}/versions");
            requests_with_credentials(&url, &[("POST", &path), ("GET", "/subjects")]).await
        })
        .await;
    assert_hidden("schema-registry", &text);
}

#[tokio::test]
#[ignore = "needs Kafka and the registry: run scripts/test"]
async fn the_generator_prints_no_secret() {
    let topic = setup(1).await.raw;
    let registry = registry_url();
    let run = Run::new(
        "raw-data-generator",
        &[
            "run",
            "--topic",
            &topic,
            "--count",
            "20",
            "--schema-registry-url",
            &registry,
        ],
        true,
    );
    let (text, status) = run.observe("", |_| async { String::new() }).await;
    assert_eq!(status, Some(0), "the generator's run failed: {text}");
    assert_hidden("raw-data-generator", &text);
    // And its error path: a registry that is not there.
    let port = free_port().to_string();
    let unreachable = format!("http://127.0.0.1:{port}");
    let run = Run::new(
        "raw-data-generator",
        &[
            "run",
            "--topic",
            &topic,
            "--count",
            "1",
            "--schema-registry-url",
            &unreachable,
            "--schema-registry-timeout-secs",
            "2",
        ],
        false,
    );
    let (text, status) = run.observe("", |_| async { String::new() }).await;
    assert_ne!(
        status,
        Some(0),
        "an unreachable registry is an error: {text}"
    );
    assert_hidden("raw-data-generator (registry down)", &text);
}

#[tokio::test]
#[ignore = "needs Kafka and the registry: run scripts/test"]
async fn the_backend_prints_no_secret() {
    let t = setup(1).await;
    let registry = registry_url();
    let run = Run::new(
        "backend",
        &[
            "run",
            "--input-topic",
            &t.raw,
            "--output-topic",
            &t.summary,
            "--dlq-topic",
            &t.dlq,
            "--group",
            &t.group,
            "--schema-registry-url",
            &registry,
        ],
        true,
    )
    .listening();
    let (text, _) = run
        .observe("/readyz", |url| async move {
            reqwest::get(format!("{url}/api/v1/output"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        })
        .await;
    assert_hidden("backend", &text);

    // And its error path: librdkafka refuses a credential option, and its message quotes the
    // value it refused (this build has no OAuth/OIDC support).
    let mut run = Run::new(
        "backend",
        &["run", "--input-topic", &t.raw, "--output-topic", &t.summary],
        false,
    );
    run.command.arg(format!(
        "--kafka-option=sasl.oauthbearer.client.secret={KAFKA_OPTION_SECRET}"
    ));
    let (text, status) = run.observe("", |_| async { String::new() }).await;
    assert_ne!(status, Some(0), "a refused option is an error: {text}");
    assert!(text.contains("sasl.oauthbearer.client.secret"), "{text}");
    assert_hidden("backend (option refused)", &text);
}

#[tokio::test]
#[ignore = "needs Kafka and the registry: run scripts/test"]
async fn the_ui_prints_no_secret() {
    let Topics {
        summary,
        base_costs,
        ..
    } = setup(1).await;
    let registry = registry_url();
    let run = Run::new(
        "summary-stats-ui",
        &[
            "--summary-topic",
            &summary,
            "--base-costs-topic",
            &base_costs,
            "--schema-registry-url",
            &registry,
        ],
        false,
    )
    .listening();
    let (text, _) = run
        .observe("/readyz", |url| async move {
            requests_with_credentials(&url, &[("GET", "/api/v1/summary?year=2024")]).await
        })
        .await;
    assert_hidden("summary-stats-ui", &text);
}

/// The stack's PostgreSQL URL with a password in it (the server trusts local connections, so
/// the password is carried and never checked).
fn database_url_with_password(port: Option<&str>) -> String {
    let base = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let (scheme, rest) = base.split_once("://").unwrap();
    let (user, host) = rest.split_once('@').unwrap();
    let user = user.split(':').next().unwrap();
    let host = match port {
        Some(port) => format!("127.0.0.1:{port}/postgres"),
        None => host.to_owned(),
    };
    format!("{scheme}://{user}:{DATABASE_PASSWORD}@{host}")
}

#[tokio::test]
#[ignore = "needs Kafka, the registry and PostgreSQL: run scripts/test"]
async fn the_recommender_prints_no_secret() {
    let database = database_url_with_password(None);
    let datasource_token = format!("prometheus-1={DATASOURCE_TOKEN}");
    let args = [
        "--datasource",
        "prometheus-1=http://127.0.0.1:9",
        "--datasource-token",
        &datasource_token,
        "--auth-token",
        SERVER_TOKEN,
        "--auth-user",
        "admin",
        "--format",
        "json",
    ];
    let mut run = Run::new("recommendation-producer", &args, true).listening();
    run.command
        .env("DATABASE_URL", &database)
        .env("RECOMMENDER_AUTH_PASSWORD", SERVER_PASSWORD);
    let (text, _) = run
        .observe("/readyz", |url| async move {
            requests_with_credentials(&url, &[("POST", "/bulk"), ("GET", "/bulk/jobs")]).await
        })
        .await;
    assert_hidden("recommendation-producer", &text);

    // And its error path: the job store cannot be reached.
    let closed = free_port().to_string();
    let mut run = Run::new("recommendation-producer", &args, false).listening();
    run.command
        .env("DATABASE_URL", database_url_with_password(Some(&closed)))
        .env("RECOMMENDER_AUTH_PASSWORD", SERVER_PASSWORD);
    let (text, status) = run.observe("/readyz", |_| async { String::new() }).await;
    assert_ne!(status, Some(0), "no job store is an error: {text}");
    assert_hidden("recommendation-producer (database down)", &text);
}
