//! Committing a transaction of a polled producer without a fixed wait.

use std::time::{Duration, Instant};

use rdkafka::error::KafkaResult;
use rdkafka::producer::{BaseProducer, Producer};

/// Commits `producer`'s open transaction, waiting only as long as the broker takes.
///
/// rdkafka's `BaseProducer::commit_transaction` first flushes, and that flush polls in steps
/// of 100 ms which always run to their end (`BaseProducer::poll` loops until its deadline,
/// rdkafka 0.39), so each transaction with records took at least 100 ms, measured with
/// `scripts/bench-monitor`. Serving the delivery reports here in 1 ms polls first leaves that
/// flush nothing to wait for. Each poll is non-blocking (a blocking one spins through its last
/// millisecond, librdkafka's timeouts being whole milliseconds), with 1 ms sleeps between.
pub fn commit_transaction(producer: &BaseProducer, timeout: Duration) -> KafkaResult<()> {
    let deadline = Instant::now() + timeout;
    // A zero-timeout flush sends what lingers now (it reports a timeout, which is expected).
    let _ = producer.flush(Duration::ZERO);
    loop {
        producer.poll(Duration::ZERO);
        if producer.in_flight_count() == 0 || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    producer.commit_transaction(deadline.saturating_duration_since(Instant::now()))
}
