//! The consumer context: librdkafka calls it from `poll`. A revocation finishes the partition's
//! open transaction before the partition moves; an assignment pauses the new partitions and
//! queues them for opening; statistics feed the lag gauge.

use std::sync::{Arc, Mutex};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::{ClientContext, TopicPartitionList};

use super::state::{Opening, Shared, finish, lock};
use crate::metrics::Metrics;
use crate::settings::Settings;

/// The consumer context: finishes transactions on revocation, queues assignments.
pub(crate) struct Context {
    pub(crate) settings: Arc<Settings>,
    pub(crate) shared: Arc<Mutex<Shared>>,
    pub(crate) metrics: Metrics,
}

impl ClientContext for Context {
    /// The lag of the assigned input partitions, from librdkafka's statistics.
    fn stats(&self, statistics: rdkafka::Statistics) {
        let lag: i64 = statistics
            .topics
            .get(&self.settings.input)
            .map(|topic| {
                topic
                    .partitions
                    .values()
                    .filter(|p| p.partition >= 0 && p.consumer_lag >= 0)
                    .map(|p| p.consumer_lag)
                    .sum()
            })
            .unwrap_or(0);
        self.metrics.set_lag(lag);
    }
}

impl ConsumerContext for Context {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance {
            let metadata = consumer.group_metadata();
            let mut shared = lock(&self.shared);
            for element in list.elements_for_topic(&self.settings.input) {
                let partition = element.partition();
                shared.opening.remove(&partition);
                if let Some(owned) = shared.owned.remove(&partition) {
                    finish(
                        &self.settings,
                        partition,
                        owned,
                        metadata.as_ref(),
                        &self.metrics,
                    );
                }
            }
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(list) = rebalance {
            let mut pause = TopicPartitionList::new();
            let mut shared = lock(&self.shared);
            for element in list.elements_for_topic(&self.settings.input) {
                shared
                    .opening
                    .insert(element.partition(), Opening::queued());
                pause.add_partition(&self.settings.input, element.partition());
            }
            if let Err(error) = consumer.pause(&pause) {
                tracing::warn!(%error, "Could not pause newly assigned partitions.");
            }
        }
    }
}
