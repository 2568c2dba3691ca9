//! A known load on the real broker: a producer writing a fixed rate into each partition of a
//! topic, and a consumer group whose committed offsets trail the log end by a set number of
//! records per partition (the test plays the group: it commits, it does not consume), so the
//! truth the operator should measure is known exactly.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use rivulet_common::kafka::{ConsumerSettings, ProducerSettings};
use rivulet_testkit::widgets::kafka;

/// The running load; stopped when dropped.
pub struct Load {
    /// The topic.
    pub topic: String,
    /// The group.
    pub group: String,
    /// Records per second per partition.
    pub rate: u64,
    /// Records sent per partition.
    pub produced: Arc<Vec<AtomicI64>>,
    /// How far behind the group stays, per partition (records).
    pub behind: Arc<Mutex<Vec<i64>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    /// Creates a topic of `partitions` and starts writing `rate` records/s into each, with
    /// the group `behind[p]` records behind on partition `p`.
    pub async fn start(partitions: i32, rate: u64, behind: Vec<i64>) -> Self {
        let topic = rivulet_testkit::unique("csm-lag");
        let group = rivulet_testkit::unique("csm-group");
        let admin = kafka().admin("csm-test").unwrap();
        rivulet_common::kafka::ensure_topic(&admin, &topic, partitions, &[])
            .await
            .unwrap();
        let produced: Arc<Vec<AtomicI64>> =
            Arc::new((0..partitions).map(|_| AtomicI64::new(0)).collect());
        let behind = Arc::new(Mutex::new(behind));
        let stop = Arc::new(AtomicBool::new(false));
        // Tansu's log-end offset is the base offset of the last record batch + 1: one record
        // per batch makes it exact (real Kafka needs no such care).
        let producer: BaseProducer = kafka()
            .producer_config(&ProducerSettings::new("csm-load"))
            .set("batch.num.messages", "1")
            .set("linger.ms", "0")
            .create()
            .unwrap();
        let (t, p, s) = (topic.clone(), produced.clone(), stop.clone());
        let writer = std::thread::spawn(move || {
            let started = Instant::now();
            let mut sent = 0u64;
            while !s.load(Ordering::Relaxed) {
                let due = started + Duration::from_secs_f64(sent as f64 / rate as f64);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                for partition in 0..partitions {
                    let mut record = BaseRecord::<str, str>::to(&t)
                        .partition(partition)
                        .payload("x");
                    while let Err((_, back)) = producer.send(record) {
                        record = back;
                        producer.poll(Duration::from_millis(10));
                    }
                }
                // Not flushed: a flush per round would cap the rate at one broker round trip.
                producer.poll(Duration::ZERO);
                for counter in p.iter() {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
                sent += 1;
            }
            producer.flush(Duration::from_secs(10)).unwrap();
        });
        let consumer: BaseConsumer = kafka()
            .consumer_config(&ConsumerSettings::new("csm-committer", Some(group.clone())))
            .create()
            .unwrap();
        let (t, p, b, s) = (
            topic.clone(),
            produced.clone(),
            behind.clone(),
            stop.clone(),
        );
        let committer = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let mut list = TopicPartitionList::new();
                let behind = b.lock().unwrap().clone();
                for (partition, counter) in p.iter().enumerate() {
                    let at = (counter.load(Ordering::Relaxed) - behind[partition]).max(0);
                    list.add_partition_offset(&t, partition as i32, Offset::Offset(at))
                        .unwrap();
                }
                consumer
                    .commit(&list, CommitMode::Sync)
                    .expect("committing the group's offsets");
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        Self {
            topic,
            group,
            rate,
            produced,
            behind,
            stop,
            threads: vec![writer, committer],
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
