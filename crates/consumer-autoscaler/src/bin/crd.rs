//! `consumer-autoscaler-crd`: prints the `consumers.rivulet.io` CustomResourceDefinition the
//! operator serves, generated from its Rust types (JSON, which is YAML too). The committed copy,
//! `k8s/base/consumer-autoscaler/crd.yaml`, is checked against it by
//! `scripts/validate-manifests`.

fn main() -> anyhow::Result<()> {
    let crd = rivulet_consumer_autoscaler::crd::definition();
    println!("{}", serde_json::to_string_pretty(&crd)?);
    Ok(())
}
