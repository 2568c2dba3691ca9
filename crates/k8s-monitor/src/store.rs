//! The books of every topic, shared by the watches (which queue states) and the publisher
//! (which takes them), with the `--max-pending` bound between them.
//!
//! While transactions fail (the broker is away) the store is *degraded*: a key's waiting
//! changes collapse into its latest state, so memory holds one state per key.
//!
//! Past the bound a watch waits for room instead of queueing: memory stays bounded, and the
//! changes it has not read stay with the API server (if its watch expires meanwhile, the
//! re-list that follows finds the final states, so nothing is lost; intermediate states are
//! coalesced).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

use crate::metrics::Metrics;
use crate::state::Book;

/// The books and their sequence counter.
#[derive(Debug)]
pub struct Books {
    /// Topic → book.
    pub by_topic: HashMap<String, Book>,
    seq: u64,
}

impl Books {
    /// The next arrival number.
    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// How many states wait in all books.
    pub fn pending(&self) -> usize {
        self.by_topic.values().map(Book::pending).sum()
    }
}

/// [`Books`] behind a lock, with wake-ups for the publisher and for waiting watches.
pub struct Store {
    books: Mutex<Books>,
    degraded: AtomicBool,
    work: Notify,
    room: Notify,
    max_pending: usize,
    metrics: Metrics,
}

impl Store {
    /// A store for `topics` (topic, whether its deletions get tombstones).
    pub fn new(
        topics: impl IntoIterator<Item = (String, bool)>,
        max_pending: usize,
        metrics: Metrics,
    ) -> Self {
        Self {
            books: Mutex::new(Books {
                by_topic: topics
                    .into_iter()
                    .map(|(t, tombstones)| (t, Book::new(tombstones)))
                    .collect(),
                seq: 0,
            }),
            degraded: AtomicBool::new(false),
            work: Notify::new(),
            room: Notify::new(),
            max_pending: max_pending.max(1),
            metrics,
        }
    }

    /// Runs `f` on the books, then wakes the publisher if something waits and the watches if
    /// there is room.
    pub fn with<R>(&self, f: impl FnOnce(&mut Books) -> R) -> R {
        // A poisoned lock means a panic elsewhere while holding it; the books are plain data
        // and still consistent enough to go on (the publisher re-reads topics on failures).
        let mut books = self.books.lock().unwrap_or_else(|e| e.into_inner());
        let out = f(&mut books);
        let pending = books.pending();
        drop(books);
        self.metrics
            .pending
            .set(i64::try_from(pending).unwrap_or(i64::MAX));
        if pending > 0 {
            self.work.notify_one();
        }
        if pending < self.max_pending {
            self.room.notify_waiters();
        }
        out
    }

    /// Waits until fewer than `--max-pending` states wait.
    pub async fn room(&self) {
        let mut counted = false;
        loop {
            let notified = self.room.notified();
            if self.with(|b| b.pending()) < self.max_pending {
                return;
            }
            if !counted {
                counted = true;
                self.metrics.pending_full.inc();
                tracing::warn!(
                    max_pending = self.max_pending,
                    "Pending states at the bound: watches pause until the broker takes them."
                );
            }
            notified.await;
        }
    }

    /// Whether the broker is failing us: a key's waiting states then coalesce into its latest.
    pub fn degraded(&self) -> bool {
        self.degraded.load(Ordering::Acquire)
    }

    /// Says whether the last transaction failed (set) or committed (cleared).
    pub fn set_degraded(&self, degraded: bool) {
        self.degraded.store(degraded, Ordering::Release);
    }

    /// Waits until a state may wait (the publisher's wake-up).
    pub async fn work(&self) {
        self.work.notified().await;
    }
}
