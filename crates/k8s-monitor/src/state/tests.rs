#![allow(clippy::unwrap_used)] // tests
use super::*;
use serde_json::json;

fn item(seq: u64, uid: &str, rv: &str) -> Item {
    Item {
        seq,
        namespace: Some("default".into()),
        version: Version {
            uid: uid.into(),
            resource_version: rv.into(),
        },
        body: Body::Object(json!({"rv": rv})),
        seen: Instant::now(),
    }
}

fn gone(seq: u64, uid: &str, rv: &str) -> Item {
    Item {
        body: Body::Gone(json!({})),
        ..item(seq, uid, rv)
    }
}

/// (key, uid, resourceVersion, deleted)
fn topic(entries: &[(&str, &str, &str, bool)]) -> HashMap<String, Held> {
    entries
        .iter()
        .map(|(k, uid, rv, deleted)| {
            let version = Version {
                uid: (*uid).into(),
                resource_version: (*rv).into(),
            };
            (
                (*k).to_owned(),
                Held {
                    version,
                    deleted: *deleted,
                },
            )
        })
        .collect()
}

fn types(out: &[Outgoing]) -> Vec<(&str, EventType, &str)> {
    out.iter()
        .map(|o| {
            (
                o.key.as_str(),
                o.event_type,
                o.item.version.resource_version.as_str(),
            )
        })
        .collect()
}

const A: &str = "default/a";
const B: &str = "default/b";

#[test]
fn what_the_topic_holds_is_never_published_again() {
    let mut book = Book::new(true);
    book.reset(topic(&[(A, "u1", "5", false)]));
    assert_eq!(book.upsert(A, item(1, "u1", "5"), false), Effect::Unchanged);
    assert_eq!(book.upsert(A, item(2, "u1", "6"), false), Effect::Queued);
    assert_eq!(book.upsert(A, item(3, "u1", "6"), false), Effect::Unchanged);
    assert_eq!(types(&book.take(10)), [(A, EventType::Modified, "6")]);
}

#[test]
fn every_change_is_published_while_the_broker_keeps_up() {
    let mut book = Book::new(true);
    book.upsert(A, item(1, "u1", "1"), false);
    book.upsert(A, item(2, "u1", "2"), false);
    book.delete(A, gone(3, "u1", "3"), false);
    assert_eq!(
        types(&book.take(10)),
        [
            (A, EventType::Added, "1"),
            (A, EventType::Modified, "2"),
            (A, EventType::Deleted, "3")
        ]
    );
}

#[test]
fn while_the_broker_is_away_a_keys_changes_coalesce_into_its_final_state() {
    let mut book = Book::new(true);
    for (seq, rv) in [(1, "1"), (2, "2"), (3, "3")] {
        book.upsert(A, item(seq, "u1", rv), true);
    }
    assert_eq!(book.pending(), 1);
    assert_eq!(types(&book.take(10)), [(A, EventType::Added, "3")]);
    // Created and deleted while away: nothing to publish at all.
    book.upsert(B, item(4, "u2", "1"), true);
    assert_eq!(book.delete(B, gone(5, "u2", "2"), true), Effect::Unchanged);
    assert!(book.take(10).is_empty());
}

#[test]
fn a_deletion_during_the_first_publication_is_not_lost() {
    let mut book = Book::new(true);
    book.upsert(A, item(1, "u1", "1"), true);
    let flying = book.take(10);
    // Deleted while its ADDED flies: the topic will hold it, so the deletion must follow.
    assert_eq!(book.delete(A, gone(2, "u1", "2"), true), Effect::Queued);
    book.committed(&flying);
    assert_eq!(types(&book.take(10)), [(A, EventType::Deleted, "2")]);
}

#[test]
fn a_failed_transaction_puts_its_states_back_ahead_of_newer_ones() {
    let mut book = Book::new(true);
    book.upsert(A, item(1, "u1", "1"), false);
    book.upsert(B, item(2, "u2", "1"), false);
    let flying = book.take(10);
    book.upsert(B, item(3, "u2", "2"), false);
    book.failed(flying);
    assert_eq!(
        types(&book.take(10)),
        [
            (A, EventType::Added, "1"),
            (B, EventType::Added, "1"),
            (B, EventType::Modified, "2")
        ]
    );
}

#[test]
fn a_reset_drops_what_the_topic_turned_out_to_hold() {
    // A commit that timed out may have committed: after reading the topic back, the states it
    // holds are not sent again, and the ones after them are.
    let mut book = Book::new(true);
    book.reset(topic(&[("default/c", "u3", "1", false)]));
    book.upsert(A, item(1, "u1", "1"), false);
    book.upsert(A, item(2, "u1", "2"), false);
    book.upsert(B, item(3, "u2", "1"), false);
    assert_eq!(
        book.delete("default/c", gone(4, "u3", "2"), false),
        Effect::Queued
    );
    let flying = book.take(10);
    book.failed(flying);
    // The topic shows a@1 committed, b not, c's deletion committed.
    book.reset(topic(&[
        (A, "u1", "1", false),
        ("default/c", "u3", "2", true),
    ]));
    assert_eq!(
        types(&book.take(10)),
        [(A, EventType::Modified, "2"), (B, EventType::Added, "1")]
    );
}

#[test]
fn a_relist_finds_what_was_deleted_unseen_in_its_scope_only() {
    let mut book = Book::new(true);
    book.reset(topic(&[
        (A, "u1", "1", false),
        (B, "u2", "1", false),
        ("other/c", "u3", "1", false),
        ("default/old", "u5", "1", true),
    ]));
    book.upsert("default/d", item(1, "u4", "1"), false);
    let listed: HashSet<String> = [A.to_owned()].into();
    let gone = book.missing_from(&listed, |k| k.starts_with("default/"));
    let keys: Vec<&str> = gone.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, [B, "default/d"]);
}

#[test]
fn a_recreated_object_is_added_again() {
    let mut book = Book::new(true);
    book.reset(topic(&[(A, "u1", "1", false)]));
    book.upsert(A, item(1, "u9", "7"), false);
    assert_eq!(types(&book.take(10)), [(A, EventType::Added, "7")]);
    let mut book = Book::new(true);
    book.reset(topic(&[(A, "u1", "1", true)]));
    assert_eq!(book.delete(A, gone(1, "u1", "2"), false), Effect::Unchanged);
}

#[test]
fn take_respects_its_limit_and_arrival_order() {
    let mut book = Book::new(true);
    for i in 0..5u64 {
        book.upsert(
            &format!("default/{i}"),
            item(i, &format!("u{i}"), "1"),
            false,
        );
    }
    let first = book.take(2);
    assert_eq!(
        types(&first),
        [
            ("default/0", EventType::Added, "1"),
            ("default/1", EventType::Added, "1")
        ]
    );
    book.committed(&first);
    assert_eq!(book.published(), 2);
    assert_eq!(book.pending(), 3);
}
