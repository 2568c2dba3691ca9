//! The SLO rules (`k8s/base/fleet-manager/slo-rules.yaml`, a PrometheusRule) under
//! `promtool check rules` and `promtool test rules` (Debian's prometheus package; scripts/test
//! installs it): each SLO has cases that must fire and cases that must not.

#![allow(clippy::unwrap_used)] // a failed unwrap fails the test

use std::path::Path;
use std::process::Command;

fn promtool(args: &[&str], dir: &Path) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("promtool (Debian's prometheus package): scripts/test installs it");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?}:\n{text}");
    text
}

#[test]
#[ignore = "needs promtool (scripts/test installs Debian's prometheus)"]
fn the_slo_rules_fire_when_the_budget_burns_and_only_then() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rule: serde_json::Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(root.join("../../k8s/base/fleet-manager/slo-rules.yaml")).unwrap(),
    )
    .unwrap();
    assert_eq!(rule["kind"], "PrometheusRule");
    let dir = std::env::temp_dir().join(rivulet_testkit::unique("fleet-slo"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("rules.yaml"),
        serde_yaml_ng::to_string(&rule["spec"]).unwrap(),
    )
    .unwrap();
    std::fs::copy(
        root.join("tests/slo/rules.test.yaml"),
        dir.join("rules.test.yaml"),
    )
    .unwrap();
    let checked = promtool(&["check", "rules", "rules.yaml"], &dir);
    assert!(checked.contains("SUCCESS"), "{checked}");
    promtool(&["test", "rules", "rules.test.yaml"], &dir);
    // Every alert of the rules has a case.
    let tests = std::fs::read_to_string(dir.join("rules.test.yaml")).unwrap();
    for group in rule["spec"]["groups"].as_array().unwrap() {
        for r in group["rules"].as_array().unwrap() {
            if let Some(alert) = r["alert"].as_str() {
                assert!(
                    tests.contains(&format!("alertname: {alert}")),
                    "no promtool case for {alert}"
                );
            }
        }
    }
}
