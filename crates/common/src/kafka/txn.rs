//! Committing a transaction of a polled producer without a fixed wait.

use std::time::{Duration, Instant};

use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::types::RDKafkaErrorCode;

/// Whether `error` says a newer producer with our transactional id exists (we were fenced).
/// librdkafka reports the broker's PRODUCER_FENCED / INVALID_PRODUCER_EPOCH as its own fatal
/// `_FENCED` once it has seen them (found against Tansu; the same with Kafka): a check that
/// misses it would have a fenced producer re-initialise and fence the real owner in turn.
pub fn is_fenced(error: &KafkaError) -> bool {
    let code = match error {
        KafkaError::Transaction(e) => Some(e.code()),
        other => other.rdkafka_error_code(),
    };
    code.is_some_and(|c| {
        matches!(
            c,
            RDKafkaErrorCode::Fenced
                | RDKafkaErrorCode::ProducerFenced
                | RDKafkaErrorCode::InvalidProducerEpoch
        )
    })
}

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
