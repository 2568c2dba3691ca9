//! Helpers shared by Rivulet's integration tests (a dev-dependency only).
//!
//! `scripts/test` starts one broker, one registry and one PostgreSQL and exports their
//! addresses; tests read them here and isolate themselves with [`unique`] names.

pub mod browser;
pub mod fleet;
pub mod gate;
pub mod golden;
#[cfg(feature = "kube")]
pub mod kube;
pub mod postgres;
pub mod prometheus;
pub mod proxy;
pub mod registry;
pub mod schemathesis;
#[cfg(feature = "kube")]
pub mod strimzi;
pub mod synthetic;
pub mod widgets;

/// The generator's model of widget production: the ground truth tests compare totals with.
pub use rivulet_raw_data_generator::model;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The test stack's Kafka bootstrap servers (`KAFKA_BOOTSTRAP_SERVERS`, else `localhost:9092`).
pub fn bootstrap() -> String {
    std::env::var("KAFKA_BOOTSTRAP_SERVERS").unwrap_or_else(|_| "localhost:9092".into())
}

/// The test stack's schema registry (`SCHEMA_REGISTRY_URL`, else `http://localhost:8081`).
pub fn registry_url() -> String {
    std::env::var("SCHEMA_REGISTRY_URL").unwrap_or_else(|_| "http://localhost:8081".into())
}

/// Sends `signal` (`STOP`, `CONT`) to the test stack's broker (`RIVULET_BROKER_PID`, set by
/// `scripts/test`): a frozen broker is how tests take the broker away, as Tansu's memory
/// storage would lose everything on a restart. Freeze only from a test binary of its own.
pub fn signal_broker(signal: &str) {
    let pid = std::env::var("RIVULET_BROKER_PID")
        .expect("RIVULET_BROKER_PID: the pid of the test broker (scripts/test sets it)");
    let ok = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(&pid)
        .status()
        .expect("kill");
    assert!(ok.success(), "kill -{signal} {pid}");
}

/// A name no other test (in this or another process) uses: `prefix-pid-nanos-counter`.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The value of the sample `name` (with its labels, e.g. `x_total{a="b"}`) in a Prometheus text
/// exposition; 0 when absent.
pub fn metric_value(exposition: &str, name: &str) -> f64 {
    exposition
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// The sum of every sample of `name` over its label sets (`name 1`, `name{a="b"} 2`: 3).
pub fn metric_sum(exposition: &str, name: &str) -> f64 {
    exposition
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let value = match rest.strip_prefix('{') {
                Some(labelled) => labelled.split_once("} ")?.1,
                None => rest.strip_prefix(' ')?,
            };
            value.trim().parse::<f64>().ok()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_unique() {
        assert_ne!(super::unique("t"), super::unique("t"));
    }

    #[test]
    fn metric_values_are_found_by_full_name() {
        let text = "# HELP x X\nx_total 3\nx_total{a=\"b\"} 5\n";
        assert_eq!(super::metric_value(text, "x_total"), 3.0);
        assert_eq!(super::metric_value(text, "x_total{a=\"b\"}"), 5.0);
        assert_eq!(super::metric_value(text, "y_total"), 0.0);
        assert_eq!(super::metric_sum(text, "x_total"), 8.0);
        assert_eq!(super::metric_sum(text, "x"), 0.0);
    }
}
