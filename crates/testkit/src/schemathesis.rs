//! Schemathesis (PyPI) against a running binary's served OpenAPI document: every operation
//! gets generated requests, valid and invalid, and every check (`--checks all`): no 5xx, every
//! answer as documented (status, content type, headers, body), valid requests accepted and
//! invalid ones refused. `scripts/test` installs it under `$RIVULET_CACHE` and exports
//! `RIVULET_SCHEMATHESIS`.

use std::process::Command;

/// Runs schemathesis against `base` (serving `/openapi.json`) with `examples` cases per
/// operation; returns whether every check passed and its report.
pub fn run(base: &str, examples: u32) -> (bool, String) {
    let st = std::env::var("RIVULET_SCHEMATHESIS")
        .expect("RIVULET_SCHEMATHESIS is not set: run scripts/test, which installs schemathesis");
    let output = Command::new(st)
        .args(["run", &format!("{base}/openapi.json")])
        .args(["--url", base])
        .args(["--checks", "all"])
        .args(["--max-examples", &examples.to_string()])
        .args(["--seed", "1", "--workers", "1", "--request-timeout", "10"])
        .args(["--warnings", "off"])
        // A Server-Sent Events stream never ends, so no response of it can be checked whole:
        // the UI's stream has tests of its own (summary-stats-ui tests/stream.rs).
        .args(["--exclude-path-regex", "/stream$"])
        .env("NO_COLOR", "1")
        // The rules JSON Schema cannot state (`schemathesis/rivulet_hooks.py`).
        .env(
            "PYTHONPATH",
            concat!(env!("CARGO_MANIFEST_DIR"), "/schemathesis"),
        )
        .env("SCHEMATHESIS_HOOKS", "rivulet_hooks")
        .output()
        .expect("running schemathesis");
    let report = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), report)
}

/// The examples per operation: `RIVULET_SCHEMATHESIS_EXAMPLES`, else 50 (the suite's
/// number; `scripts/schemathesis` runs 200).
pub fn examples() -> u32 {
    std::env::var("RIVULET_SCHEMATHESIS_EXAMPLES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(50)
}
