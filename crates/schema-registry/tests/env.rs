//! Renamed environment variables (`rivulet_common::env`), for real: the binary started with an
//! old name reads it and warns once; with both names set, the new one wins without a warning.
//! No network: `apply` fails on the folder before it calls any registry.

use std::process::Command;

fn apply(env: &[(&str, &str)]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_schema-registry"))
        .args(["apply", "--dry-run"])
        .env_remove("SCHEMA_REGISTRY_APPLY_DIR")
        .env_remove("SCHEMAS_DIR")
        .envs(env.iter().copied())
        .output()
        .expect("schema-registry runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn an_old_variable_name_still_works_and_warns_once() {
    let (ok, text) = apply(&[("SCHEMAS_DIR", "/nonexistent-old-name")]);
    assert!(!ok, "{text}");
    assert!(text.contains("/nonexistent-old-name"), "{text}");
    assert_eq!(
        text.matches("Deprecated environment variable SCHEMAS_DIR")
            .count(),
        1,
        "{text}"
    );
    assert!(text.contains("SCHEMA_REGISTRY_APPLY_DIR"), "{text}");
}

#[test]
fn the_new_name_wins_over_the_old_one() {
    let (ok, text) = apply(&[
        ("SCHEMAS_DIR", "/nonexistent-old-name"),
        ("SCHEMA_REGISTRY_APPLY_DIR", "/nonexistent-new-name"),
    ]);
    assert!(!ok, "{text}");
    assert!(text.contains("/nonexistent-new-name"), "{text}");
    assert!(!text.contains("/nonexistent-old-name"), "{text}");
    assert!(!text.contains("Deprecated"), "{text}");
}
