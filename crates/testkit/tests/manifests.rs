//! The delivery manifests: every kustomization under k8s/, argocd/ and pipelines/ renders with
//! kustomize 5 and every object validates (core kinds strictly against the Kubernetes API,
//! Argo and Prometheus-operator kinds against their CRDs, Strimzi against the schema subset,
//! Tekton with tekton-lint), and every deliberately broken example is rejected by the
//! validator it is meant for.

use std::path::Path;
use std::process::Command;

#[test]
#[ignore = "installs kubectl, kubernetes-validate and npm tools into the cache: run scripts/test"]
fn every_manifest_validates_and_every_broken_example_is_rejected() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let report = std::env::temp_dir()
        .join(rivulet_testkit::unique("manifests"))
        .with_extension("json");
    let out = Command::new(root.join("scripts/validate-manifests"))
        .arg("--json")
        .arg(&report)
        .output()
        .expect("scripts/validate-manifests runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("the JSON report"))
            .expect("JSON");
    let _ = std::fs::remove_file(&report);

    let rendered: Vec<&str> = summary["rendered"]
        .as_array()
        .expect("rendered")
        .iter()
        .map(|r| r["kustomization"].as_str().unwrap_or_default())
        .collect();
    for overlay in [
        "k8s/overlays/dev",
        "k8s/overlays/prod",
        "k8s/overlays/microk8s",
        "argocd/apps",
        "pipelines",
    ] {
        assert!(
            rendered.contains(&overlay),
            "{overlay} not rendered: {rendered:?}"
        );
    }
    for validator in ["kubernetes", "crd", "strimzi"] {
        assert!(
            summary["objects"][validator].as_u64().unwrap_or(0) > 0,
            "nothing validated by {validator}"
        );
    }
    let broken = summary["broken"].as_array().expect("broken");
    for validator in ["kubernetes", "crd", "strimzi", "tekton", "none"] {
        let examples: Vec<&serde_json::Value> = broken
            .iter()
            .filter(|b| b["validator"] == validator)
            .collect();
        assert!(!examples.is_empty(), "no broken example for {validator}");
        for b in examples {
            assert_eq!(b["rejected"], true, "{b}");
        }
    }
}
