//! What the fleet manager's tests share: configuration files written for a test, the binary
//! as a process (one or two replicas) against a database of the test's own and the test
//! stack's API server, an HTTP client with tokens, and the Strimzi stand-in answering only
//! for the instances the test names.

#![allow(dead_code, clippy::unwrap_used)] // each test binary uses a part; a failed unwrap fails the test

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rivulet_fleet_manager::auth::DevKeys;
use rivulet_testkit::strimzi::Answer;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// The quota list of most tests: `alice` and `bob` alone with 3 standard units each,
/// organisation `42` (members `carol`, `dave`, admin `erin`) sharing 5.
pub const QUOTAS: &str = r#"
registered_service_accounts:
  - username: alice
    max_allowed_instances: 3
  - username: bob
    max_allowed_instances: 3
registered_users_per_organisation:
  - id: "42"
    any_user: true
    max_allowed_instances: 5
"#;

/// A test's configuration directory, keys and database.
pub struct Setup {
    pub dir: PathBuf,
    pub keys: DevKeys,
    pub database: String,
    /// One HTTP client for every caller (making one loads the system's certificates).
    pub http: reqwest::Client,
}

fn shipped(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../k8s/base/fleet-manager/config")
        .join(name)
}

/// Writes the configuration: the shipped instance types and providers unless given, one
/// cluster `local` on the test stack's API server (`capacity` per type), the quota list.
pub async fn setup(quotas: &str, cluster_limit: u32) -> Setup {
    setup_with(quotas, cluster_limit, None).await
}

/// [`setup`] with instance types of the test's own.
pub async fn setup_with(quotas: &str, cluster_limit: u32, instance_types: Option<&str>) -> Setup {
    let dir = std::env::temp_dir().join(rivulet_testkit::unique("fleet"));
    std::fs::create_dir_all(&dir).unwrap();
    match instance_types {
        Some(t) => std::fs::write(dir.join("types.yaml"), t).unwrap(),
        None => {
            std::fs::copy(
                shipped("kafka-instance-types-configuration.yaml"),
                dir.join("types.yaml"),
            )
            .unwrap();
        }
    }
    std::fs::write(
        dir.join("providers.yaml"),
        "supported_providers:\n  - name: aws\n    default: true\n    regions:\n      - name: us-east-1\n        default: true\n        supported_instance_type: {standard: {}, developer: {}}\n      - name: eu-west-1\n        supported_instance_type: {standard: {limit: 2}}\n  - name: gcp\n    regions:\n      - name: us-east1\n        default: true\n        supported_instance_type: {standard: {}}\n",
    )
    .unwrap();
    let kubeconfig = rivulet_testkit::kube::kubeconfig();
    std::fs::write(
        dir.join("clusters.yaml"),
        format!(
            "clusters:\n  - cluster_id: local\n    cloud_provider: aws\n    region: us-east-1\n    multi_az: true\n    kafka_instance_limit: {cluster_limit}\n    kubeconfig: {}\n  - cluster_id: local-eu\n    cloud_provider: aws\n    region: eu-west-1\n    multi_az: true\n    kafka_instance_limit: {cluster_limit}\n    kubeconfig: {}\n  - cluster_id: local-gcp\n    cloud_provider: gcp\n    region: us-east1\n    multi_az: true\n    kafka_instance_limit: {cluster_limit}\n    kubeconfig: {}\n",
            kubeconfig.display(),
            kubeconfig.display(),
            kubeconfig.display()
        ),
    )
    .unwrap();
    std::fs::write(dir.join("quotas.yaml"), quotas).unwrap();
    let keys = DevKeys::generate("test").unwrap();
    std::fs::write(dir.join("jwks.json"), keys.jwks().unwrap().to_string()).unwrap();
    let database = rivulet_testkit::postgres::database("fleet").await;
    Setup {
        dir,
        keys,
        database,
        http: reqwest::Client::new(),
    }
}

impl Setup {
    /// A token for `username` (in `org`, an org admin if `admin`), valid for an hour.
    pub fn token(&self, username: &str, org: Option<&str>, admin: bool) -> String {
        self.keys
            .token(username, org, admin, chrono::Utc::now().timestamp(), 3600)
            .unwrap()
    }

    /// A client calling as `username`.
    pub fn client(&self, fleet: &Fleet, username: &str, org: Option<&str>, admin: bool) -> Client {
        Client {
            http: self.http.clone(),
            base: fleet.url.clone(),
            token: self.token(username, org, admin),
        }
    }

    /// A connection pool to the test's database (to check rows directly).
    pub async fn db(&self) -> sqlx::PgPool {
        sqlx::PgPool::connect(&self.database).await.unwrap()
    }
}

/// A fleet-manager process, killed when dropped.
pub struct Fleet {
    pub child: Child,
    pub url: String,
    pub replica: String,
    log: PathBuf,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Fast intervals for tests: 3 s leases renewed 1.5 s before their end, elections and
/// reconciles every 200 ms, errors final after 1 s.
pub const FAST: &[&str] = &[
    "--lease",
    "3s",
    "--lease-renew-within",
    "1500ms",
    "--election-interval",
    "200ms",
    "--reconcile-interval",
    "200ms",
    "--failure-grace",
    "1s",
];

impl Fleet {
    /// Starts a replica named `replica` on `database` (the setup's, or a proxy's URL), with
    /// [`FAST`] intervals and `extra` flags; waits until it answers `/healthz`.
    pub async fn start(setup: &Setup, database: &str, replica: &str, extra: &[&str]) -> Fleet {
        let port = rivulet_testkit::widgets::free_port();
        let log = setup.dir.join(format!("{replica}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_fleet-manager"))
            .arg("serve")
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--database-url", database])
            .args(["--database-timeout-secs", "2"])
            .args([
                "--instance-types",
                setup.dir.join("types.yaml").to_str().unwrap(),
            ])
            .args([
                "--providers",
                setup.dir.join("providers.yaml").to_str().unwrap(),
            ])
            .args([
                "--clusters",
                setup.dir.join("clusters.yaml").to_str().unwrap(),
            ])
            .args([
                "--quota-list",
                setup.dir.join("quotas.yaml").to_str().unwrap(),
            ])
            .args(["--jwks", setup.dir.join("jwks.json").to_str().unwrap()])
            .args(["--admins", "root"])
            .args(["--replica-name", replica])
            .args(FAST)
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let fleet = Fleet {
            child,
            url: format!("http://127.0.0.1:{port}"),
            replica: replica.into(),
            log,
        };
        let http = reqwest::Client::new();
        let health = format!("{}/healthz", fleet.url);
        eventually(&fleet, Duration::from_secs(20), || {
            let r = http.get(&health).send();
            async move { r.await.ok().filter(|r| r.status().is_success()).map(|_| ()) }
        })
        .await;
        fleet
    }

    /// Starts a replica on the setup's database and waits until it is ready (migrated).
    pub async fn ready(setup: &Setup, replica: &str, extra: &[&str]) -> Fleet {
        let fleet = Fleet::start(setup, &setup.database, replica, extra).await;
        let http = reqwest::Client::new();
        let readyz = format!("{}/readyz", fleet.url);
        eventually(&fleet, Duration::from_secs(20), || {
            let r = http.get(&readyz).send();
            async move { r.await.ok().filter(|r| r.status().is_success()).map(|_| ()) }
        })
        .await;
        fleet
    }

    /// Its log so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its `/metrics`.
    pub async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.url))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// SIGKILL.
    pub fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

/// Polls `check` every 100 ms until it gives a value; fails after `within` with the log.
pub async fn eventually<T, F, Fut>(fleet: &Fleet, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "not within {within:?}; {} log:\n{}",
            fleet.replica,
            fleet.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A caller of the API.
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub token: String,
}

/// A response: status and JSON body (`null` if none).
pub type Reply = (u16, Value);

async fn reply(r: reqwest::Response) -> Reply {
    let status = r.status().as_u16();
    let body = r.json().await.unwrap_or(Value::Null);
    (status, body)
}

impl Client {
    fn url(&self, path: &str) -> String {
        format!("{}/api/kafkas_mgmt/v1{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> Reply {
        reply(
            self.http
                .get(self.url(path))
                .bearer_auth(&self.token)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Reply {
        let mut r = self
            .http
            .request(method, self.url(path))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        reply(r.send().await.unwrap()).await
    }

    /// `POST /kafkas?async=true` with `name` and `plan` (e.g. `standard.x1`).
    pub async fn create(&self, name: &str, plan: &str) -> Reply {
        self.send(
            reqwest::Method::POST,
            "/kafkas?async=true",
            Some(json!({"name": name, "plan": plan})),
        )
        .await
    }

    /// Creates and returns the id, asserting 202.
    pub async fn create_ok(&self, name: &str, plan: &str) -> String {
        let (status, body) = self.create(name, plan).await;
        assert_eq!(status, 202, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    /// Waits until instance `id` is in `status`; returns it.
    pub async fn wait_status(
        &self,
        fleet: &Fleet,
        id: &str,
        status: &str,
        within: Duration,
    ) -> Value {
        let path = format!("/kafkas/{id}");
        eventually(fleet, within, || {
            let r = self.get(&path);
            async move {
                let (code, body) = r.await;
                (code == 200 && body["status"] == status).then_some(body)
            }
        })
        .await
    }
}

/// The Strimzi stand-in, answering only for the instance ids the test gives it.
pub struct StandIn {
    answers: Arc<Mutex<HashMap<String, Answer>>>,
    token: CancellationToken,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

impl StandIn {
    /// Installs the Strimzi CRDs and starts the stand-in on the test stack's API server.
    pub async fn start() -> StandIn {
        let client = rivulet_testkit::kube::client().await;
        rivulet_testkit::strimzi::install(&client).await;
        let answers: Arc<Mutex<HashMap<String, Answer>>> = Arc::default();
        let a = answers.clone();
        let decide: rivulet_testkit::strimzi::Decide =
            Arc::new(move |id| a.lock().unwrap().get(id).cloned().unwrap_or(Answer::Silent));
        let token = CancellationToken::new();
        tokio::spawn(rivulet_testkit::strimzi::run(client, decide, token.clone()));
        StandIn { answers, token }
    }

    /// From now on, answer `answer` for instance `id`.
    pub fn answer(&self, id: &str, answer: Answer) {
        self.answers.lock().unwrap().insert(id.to_owned(), answer);
    }
}

/// The Kafkas and KafkaNodePools in instance `id`'s namespace (their names).
pub async fn strimzi_objects(id: &str) -> (Vec<String>, Vec<String>) {
    use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
    let client = rivulet_testkit::kube::client().await;
    let ns = format!("kafka-{id}");
    let names = |kind: &str, plural: &str| {
        let api: Api<DynamicObject> = Api::namespaced_with(
            client.clone(),
            &ns,
            &ApiResource::from_gvk_with_plural(
                &GroupVersionKind::gvk("kafka.strimzi.io", "v1beta2", kind),
                plural,
            ),
        );
        async move {
            api.list(&ListParams::default())
                .await
                .unwrap()
                .items
                .into_iter()
                .filter_map(|o| o.metadata.name)
                .collect::<Vec<_>>()
        }
    };
    (
        names("Kafka", "kafkas").await,
        names("KafkaNodePool", "kafkanodepools").await,
    )
}
