//! Operator commands' refusals against the real broker.

#![allow(clippy::unwrap_used)] // tests

use rdkafka::consumer::{Consumer, DefaultConsumerContext};
use rdkafka::{Offset, TopicPartitionList};
use rivulet_backend::{Failure, admin};
use rivulet_common::kafka::{ConsumerSettings, ensure_topic};
use rivulet_testkit::unique;
use rivulet_testkit::widgets::kafka;

/// `reprocess` on an input whose partition 1 lost its first 1,200 records (an injected low
/// watermark: Tansu's memory storage applies no retention and has no DeleteRecords) refuses,
/// naming the loss, and commits nothing; `--force` rewinds to what is left.
#[tokio::test]
#[ignore = "needs Kafka"]
async fn reprocess_refuses_partial_input_unless_forced() {
    let input = unique("raw-partial");
    let group = unique("backend-partial");
    let admin_client = kafka().admin("test-admin").unwrap();
    ensure_topic(&admin_client, &input, 2, &[]).await.unwrap();
    let refused = reprocess(&input, &group, false).await;
    match refused {
        Err(error @ Failure::PartialInput { .. }) => {
            let text = error.to_string();
            assert!(text.contains("partition 1 starts at 1200"), "{text}");
            assert!(text.contains("--force"), "{text}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(
        committed(&input, &group).await,
        vec![None, None],
        "nothing committed"
    );

    let forced = reprocess(&input, &group, true).await;
    assert_eq!(forced.unwrap(), 2);
    assert_eq!(
        committed(&input, &group).await,
        vec![Some(0), Some(1200)],
        "rewound to what is left"
    );
}

/// `reprocess` of `input` for `group` with partition 1's low watermark injected at 1,200.
async fn reprocess(input: &str, group: &str, force: bool) -> Result<usize, Failure> {
    let (input, group) = (input.to_owned(), group.to_owned());
    tokio::task::spawn_blocking(move || {
        let consumer = kafka()
            .base_consumer(
                &ConsumerSettings::new("test-reprocess", Some(group.clone())),
                DefaultConsumerContext,
            )
            .unwrap();
        admin::reprocess_with(&consumer, &input, &group, force, |p| {
            Ok(if p == 1 { 1200 } else { 0 })
        })
    })
    .await
    .unwrap()
}

/// The group's committed offset of each partition of `topic`.
async fn committed(topic: &str, group: &str) -> Vec<Option<i64>> {
    let (topic, group) = (topic.to_owned(), group.to_owned());
    tokio::task::spawn_blocking(move || {
        let consumer = kafka()
            .base_consumer(
                &ConsumerSettings::new("test-committed", Some(group)),
                DefaultConsumerContext,
            )
            .unwrap();
        let mut list = TopicPartitionList::new();
        list.add_partition(&topic, 0);
        list.add_partition(&topic, 1);
        let found = consumer
            .committed_offsets(list, std::time::Duration::from_secs(10))
            .unwrap();
        (0..2)
            .map(
                |p| match found.find_partition(&topic, p).map(|e| e.offset()) {
                    Some(Offset::Offset(o)) => Some(o),
                    _ => None,
                },
            )
            .collect()
    })
    .await
    .unwrap()
}
