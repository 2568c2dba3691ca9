//! The committed CRD (`k8s/base/consumer-autoscaler/crd.yaml`, what kustomize and Argo CD
//! apply) is the one generated from the Rust types: after changing them, regenerate it with
//! `cargo run -q -p rivulet-consumer-autoscaler --bin consumer-autoscaler-crd > k8s/base/consumer-autoscaler/crd.yaml`.
#![allow(clippy::unwrap_used)]

#[test]
fn the_committed_crd_is_the_generated_one() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../k8s/base/consumer-autoscaler/crd.yaml"
    );
    let committed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let generated = serde_json::to_value(rivulet_consumer_autoscaler::crd::definition()).unwrap();
    assert!(
        committed == generated,
        "{path} drifted from the Rust types: regenerate it (see this test's doc)"
    );
}
