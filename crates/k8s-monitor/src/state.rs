//! What each topic holds, and what must still be published to make it equal the cluster.
//!
//! One [`Book`] per topic. `published` is the last message of each key the topic holds (read
//! back when this replica became the leader, then moved by every committed transaction): its
//! uid, resourceVersion and whether it was a deletion. `pending` holds, per key and in order,
//! the changes not published yet: every change is published while the broker keeps up; while
//! it is away (`coalesce`), a key's waiting changes collapse into its latest state, so memory
//! holds one state per key. Items handed to a transaction are "in flight" until it commits
//! (then `published` moves) or fails (then they wait again, ahead of newer ones). A state equal
//! to what the topic holds (same uid and resourceVersion, after what waits or flies) is never
//! published again. Pure state, no I/O.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Instant;

use rivulet_contracts::kubernetes::EventType;
use serde_json::Value;

/// An object's identity and revision as far as publishing is concerned.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Version {
    /// `metadata.uid`.
    pub uid: String,
    /// `metadata.resourceVersion`.
    pub resource_version: String,
}

/// What to publish for a key.
#[derive(Clone, Debug)]
pub enum Body {
    /// The object's current state (already redacted).
    Object(Value),
    /// The object is gone; the last known state of it (or just its identity).
    Gone(Value),
}

/// A state waiting to be published.
#[derive(Clone, Debug)]
pub struct Item {
    /// Order of arrival (unique within a [`Book`]'s owner).
    pub seq: u64,
    /// The object's namespace.
    pub namespace: Option<String>,
    /// Its version.
    pub version: Version,
    /// What to publish.
    pub body: Body,
    /// When the monitor learnt of it (for the change-to-publish latency).
    pub seen: Instant,
}

/// An item taken for a transaction, with the event type it is published under.
#[derive(Clone, Debug)]
pub struct Outgoing {
    /// The message key.
    pub key: String,
    /// ADDED (the topic does not hold the key), MODIFIED or DELETED.
    pub event_type: EventType,
    /// The item.
    pub item: Item,
}

/// The last message of a key in the topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    /// Its uid and resourceVersion.
    pub version: Version,
    /// It was a deletion (DELETED, or a tombstone).
    pub deleted: bool,
}

impl Held {
    fn live(&self) -> Option<&Version> {
        (!self.deleted).then_some(&self.version)
    }
}

/// Whether a state was queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// It differs from what the topic will hold: queued.
    Queued,
    /// The topic already holds it (or, for a deletion, does not hold the object).
    Unchanged,
}

/// One topic's state.
#[derive(Debug)]
pub struct Book {
    published: HashMap<String, Held>,
    in_flight: HashMap<String, Held>,
    pending: HashMap<String, VecDeque<Item>>,
    queue: VecDeque<(String, u64)>,
    waiting: usize,
    /// Deletions get a tombstone after their DELETED message (not on the Events topic).
    pub tombstones: bool,
}

impl Book {
    /// An empty book (the topic holds nothing yet).
    pub fn new(tombstones: bool) -> Self {
        Self {
            published: HashMap::new(),
            in_flight: HashMap::new(),
            pending: HashMap::new(),
            queue: VecDeque::new(),
            waiting: 0,
            tombstones,
        }
    }

    /// The key's last message once the transaction in flight commits.
    fn last(&self, key: &str) -> Option<&Held> {
        self.in_flight.get(key).or_else(|| self.published.get(key))
    }

    /// The object's state once everything waiting is published (`None`: absent).
    fn current(&self, key: &str) -> Option<&Version> {
        match self.pending.get(key).and_then(VecDeque::back) {
            Some(item) => match item.body {
                Body::Object(_) => Some(&item.version),
                Body::Gone(_) => None,
            },
            None => self.last(key).and_then(Held::live),
        }
    }

    /// How many states wait.
    pub fn pending(&self) -> usize {
        self.waiting
    }

    /// How many objects the topic holds.
    pub fn published(&self) -> usize {
        self.published.values().filter(|h| !h.deleted).count()
    }

    fn drop_waiting(&mut self, key: &str) {
        if let Some(list) = self.pending.remove(key) {
            self.waiting -= list.len();
        }
    }

    fn push(&mut self, key: &str, item: Item) -> Effect {
        self.queue.push_back((key.to_owned(), item.seq));
        self.pending
            .entry(key.to_owned())
            .or_default()
            .push_back(item);
        self.waiting += 1;
        Effect::Queued
    }

    /// The object `key` is now at `item.version`. With `coalesce`, the key's waiting states
    /// give way to this one.
    pub fn upsert(&mut self, key: &str, item: Item, coalesce: bool) -> Effect {
        if self.current(key) == Some(&item.version) {
            return Effect::Unchanged;
        }
        if coalesce {
            self.drop_waiting(key);
            if self.last(key).and_then(Held::live) == Some(&item.version) {
                return Effect::Unchanged;
            }
        }
        self.push(key, item)
    }

    /// The object `key` is gone. With `coalesce`, the key's waiting states give way.
    pub fn delete(&mut self, key: &str, item: Item, coalesce: bool) -> Effect {
        if self.current(key).is_none() {
            return Effect::Unchanged;
        }
        if coalesce {
            self.drop_waiting(key);
            if self.last(key).and_then(Held::live).is_none() {
                // Never published (created and deleted while the broker was away).
                return Effect::Unchanged;
            }
        }
        self.push(key, item)
    }

    /// After a full list of the keys `in_scope` selects: the objects the topic holds (or will
    /// hold) that the list no longer has, with their versions. The caller turns them into
    /// deletions (or, for Events, [`Book::forget`]s them).
    pub fn missing_from(
        &self,
        listed: &HashSet<String>,
        in_scope: impl Fn(&str) -> bool,
    ) -> Vec<(String, Version)> {
        let mut gone: Vec<(String, Version)> = self
            .published
            .keys()
            .chain(self.in_flight.keys())
            .chain(self.pending.keys())
            .filter(|k| in_scope(k) && !listed.contains(*k))
            .filter_map(|k| self.current(k).map(|v| (k.clone(), v.clone())))
            .collect();
        gone.sort();
        gone.dedup();
        gone
    }

    /// Forgets `key` without publishing anything (an Event that expired while unwatched).
    pub fn forget(&mut self, key: &str) {
        self.published.remove(key);
        self.drop_waiting(key);
    }

    /// Takes up to `max` waiting states, oldest first, for a transaction.
    pub fn take(&mut self, max: usize) -> Vec<Outgoing> {
        let mut out = Vec::new();
        while out.len() < max {
            let Some((key, seq)) = self.queue.pop_front() else {
                break;
            };
            let Some(list) = self.pending.get_mut(&key) else {
                continue;
            };
            // A queue entry whose state gave way to a later one (coalesced).
            if list.front().is_none_or(|item| item.seq != seq) {
                continue;
            }
            let Some(item) = list.pop_front() else {
                continue;
            };
            if list.is_empty() {
                self.pending.remove(&key);
            }
            self.waiting -= 1;
            let deleted = matches!(item.body, Body::Gone(_));
            let event_type = match self.last(&key).and_then(Held::live) {
                _ if deleted => EventType::Deleted,
                Some(v) if v.uid == item.version.uid => EventType::Modified,
                _ => EventType::Added,
            };
            self.in_flight.insert(
                key.clone(),
                Held {
                    version: item.version.clone(),
                    deleted,
                },
            );
            out.push(Outgoing {
                key,
                event_type,
                item,
            });
        }
        out
    }

    /// The transaction holding `sent` committed.
    pub fn committed(&mut self, sent: &[Outgoing]) {
        for out in sent {
            self.in_flight.remove(&out.key);
            let held = Held {
                version: out.item.version.clone(),
                deleted: out.event_type == EventType::Deleted,
            };
            self.published.insert(out.key.clone(), held);
        }
    }

    /// The transaction holding `sent` failed: its states wait again, ahead of newer ones.
    pub fn failed(&mut self, sent: Vec<Outgoing>) {
        for out in sent.into_iter().rev() {
            self.in_flight.remove(&out.key);
            self.pending
                .entry(out.key)
                .or_default()
                .push_front(out.item);
            self.waiting += 1;
        }
        self.requeue();
    }

    /// Replaces what the topic holds with what was read back from it, and drops the waiting
    /// states it turned out to hold already (a commit that timed out may have committed).
    /// Nothing may be in flight.
    pub fn reset(&mut self, published: HashMap<String, Held>) {
        self.in_flight.clear();
        self.published = published;
        let topic = &self.published;
        for (key, list) in &mut self.pending {
            let holds = |item: &Item| {
                topic.get(key).is_some_and(|h| {
                    h.version == item.version && h.deleted == matches!(item.body, Body::Gone(_))
                })
            };
            if let Some(j) = list.iter().rposition(holds) {
                list.drain(..=j);
            }
            // A deletion of an object the topic does not hold has nothing to undo.
            while list
                .front()
                .is_some_and(|i| matches!(i.body, Body::Gone(_)))
                && topic.get(key).and_then(Held::live).is_none()
            {
                list.pop_front();
            }
        }
        self.pending.retain(|_, list| !list.is_empty());
        self.waiting = self.pending.values().map(VecDeque::len).sum();
        self.requeue();
    }

    /// Drops everything (this replica stopped leading).
    pub fn clear(&mut self) {
        *self = Book::new(self.tombstones);
    }

    /// Rebuilds the queue in arrival order from what waits.
    fn requeue(&mut self) {
        let mut entries: Vec<(String, u64)> = self
            .pending
            .iter()
            .flat_map(|(k, list)| list.iter().map(move |i| (k.clone(), i.seq)))
            .collect();
        entries.sort_by_key(|(_, seq)| *seq);
        self.queue = entries.into();
    }
}

#[cfg(test)]
mod tests;
