//! Helpers shared by Rivulet's integration tests (a dev-dependency only).
//!
//! `scripts/test` starts one broker, one registry and one PostgreSQL and exports their
//! addresses; tests read them here and isolate themselves with [`unique`] names.

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

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_unique() {
        assert_ne!(super::unique("t"), super::unique("t"));
    }
}
