//! The test stack's Kubernetes API server (`scripts/test` starts a real kube-apiserver v1.20.2
//! with etcd and exports `KUBECONFIG`): a client, a namespace of the test's own, CRDs, and a
//! private API server for tests that must restart it or compact its etcd.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ObjectMeta, PostParams};

/// The test stack's kubeconfig (admin).
pub fn kubeconfig() -> PathBuf {
    std::env::var_os("KUBECONFIG")
        .map(PathBuf::from)
        .expect("KUBECONFIG: scripts/test starts a Kubernetes API server and sets it")
}

/// A kubeconfig of a user with no roles at all (`rivulet-nobody`).
pub fn unprivileged_kubeconfig() -> PathBuf {
    std::env::var_os("RIVULET_KUBECONFIG_UNPRIVILEGED")
        .map(PathBuf::from)
        .expect("RIVULET_KUBECONFIG_UNPRIVILEGED: set by scripts/test")
}

/// A client from `kubeconfig`, built the way the binaries build theirs.
pub async fn client_for(kubeconfig: &Path) -> kube::Client {
    let args = rivulet_kube_common::KubeArgs {
        kubeconfig: Some(kubeconfig.to_owned()),
        kube_context: None,
    };
    rivulet_kube_common::client(&args)
        .await
        .expect("kube client")
}

/// An admin client of the test stack's API server.
pub async fn client() -> kube::Client {
    client_for(&kubeconfig()).await
}

/// Creates a namespace no other test uses (`<prefix>-<n>`, a DNS label) and returns its name.
/// Namespaces are not deleted: without a controller-manager a deleted one never finishes
/// terminating, and the stack is thrown away after the run.
pub async fn namespace(client: &kube::Client, prefix: &str) -> String {
    let name = crate::unique(prefix).to_lowercase();
    assert!(name.len() <= 63, "namespace name too long: {name}");
    let api: Api<Namespace> = Api::all(client.clone());
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            ..Default::default()
        },
        ..Default::default()
    };
    api.create(&PostParams::default(), &ns)
        .await
        .expect("create namespace");
    name
}

/// Installs `crd` (unless it exists) and waits until the API server serves it.
pub async fn install_crd(client: &kube::Client, crd: &CustomResourceDefinition) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let name = crd.metadata.name.clone().expect("a CRD has a name");
    match api.create(&PostParams::default(), crd).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("install CRD {name}: {e}"),
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let current = api.get(&name).await.expect("read CRD");
        let established = current
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True");
        if established {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "CRD {name} not established in 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A kube-apiserver + etcd of a test's own (`scripts/kube.sh`), stopped when dropped: for tests
/// that restart the API server or compact etcd, which would disturb the shared one.
pub struct PrivateApiServer {
    dir: PathBuf,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/kube.sh")
}

fn run(args: &[&str], env: &[(&str, &str)]) {
    let mut command = Command::new("bash");
    command.arg(script()).args(args);
    for (k, v) in env {
        command.env(k, v);
    }
    let status = command.status().expect("scripts/kube.sh");
    assert!(status.success(), "scripts/kube.sh {args:?} failed");
}

impl PrivateApiServer {
    /// Starts one, with `flags` added to kube-apiserver's command line.
    pub fn start(flags: &str) -> Self {
        let dir = std::env::temp_dir().join(crate::unique("rivulet-kube"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        run(
            &["start", dir.to_str().expect("utf-8 path")],
            &[("RIVULET_KUBE_APISERVER_FLAGS", flags)],
        );
        Self { dir }
    }

    /// Its admin kubeconfig.
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    /// Restarts kube-apiserver (same port, same etcd): open watches are cut.
    pub fn restart(&self, flags: &str) {
        run(
            &["restart", self.dir.to_str().expect("utf-8 path")],
            &[("RIVULET_KUBE_APISERVER_FLAGS", flags)],
        );
    }

    fn etcd(&self) -> String {
        let env = std::fs::read_to_string(self.dir.join("kube.env")).expect("kube.env");
        env.lines()
            .find_map(|l| l.strip_prefix("export RIVULET_KUBE_ETCD="))
            .expect("RIVULET_KUBE_ETCD in kube.env")
            .to_owned()
    }

    /// Compacts etcd up to its current revision: every older resourceVersion is gone, and a
    /// watch from one gets 410 Gone. Returns the revision.
    pub fn compact(&self) -> i64 {
        let endpoint = self.etcd();
        let out = Command::new("etcdctl")
            .args(["--endpoints", &endpoint, "endpoint", "status", "-w", "json"])
            .env("ETCDCTL_API", "3")
            .output()
            .expect("etcdctl");
        assert!(out.status.success(), "etcdctl endpoint status");
        let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("etcdctl json");
        let revision = status[0]["Status"]["header"]["revision"]
            .as_i64()
            .expect("etcd revision");
        let ok = Command::new("etcdctl")
            .args(["--endpoints", &endpoint, "compact", &revision.to_string()])
            .env("ETCDCTL_API", "3")
            .status()
            .expect("etcdctl compact");
        assert!(ok.success(), "etcdctl compact {revision}");
        revision
    }
}

impl Drop for PrivateApiServer {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .args(["stop", self.dir.to_str().unwrap_or_default()])
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
