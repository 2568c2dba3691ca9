//! What the feeds write and the HTTP handlers read: the index and how fresh it is.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};

use chrono::{DateTime, Utc};

use crate::index::Index;

/// How current the served data is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Freshness {
    /// When a record was last applied.
    pub last_update: Option<DateTime<Utc>>,
    /// Records not applied yet, per feed (summary, base costs); `None` until first measured.
    pub lag: [Option<i64>; 2],
    /// Every partition of both topics has been read to its end at least once.
    pub caught_up: bool,
}

impl Freshness {
    /// Records not applied yet over both feeds; `None` until both were measured.
    pub fn total_lag(&self) -> Option<i64> {
        Some(self.lag[0]? + self.lag[1]?)
    }
}

/// Which feed a figure belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeedKind {
    /// `summary-stats`.
    Summary = 0,
    /// `base-costs`.
    BaseCosts = 1,
}

impl FeedKind {
    /// Label for logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            FeedKind::Summary => "summary",
            FeedKind::BaseCosts => "base_costs",
        }
    }
}

/// The shared state.
#[derive(Debug, Default)]
pub struct Shared {
    index: RwLock<Index>,
    /// The summary topic served (the active backend colour's).
    source: Mutex<String>,
    freshness: Mutex<Freshness>,
    caught_up: Mutex<[bool; 2]>,
    /// Bumped by every change of what an answer shows (data or freshness), so answers can be
    /// cached until it moves.
    generation: AtomicU64,
    /// Wakes the summary streams at every bump (cheap when none waits).
    changed: tokio::sync::Notify,
}

impl Shared {
    /// Reads the index.
    pub fn index(&self) -> RwLockReadGuard<'_, Index> {
        // A poisoned lock means a feed panicked mid-update; the process is going down anyway
        // (the feed's failure ends `run`), so serve what is there.
        self.index.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes the index and notes the time.
    pub fn update(&self, change: impl FnOnce(&mut Index)) {
        change(&mut self.index.write().unwrap_or_else(|e| e.into_inner()));
        self.freshness().last_update = Some(Utc::now());
        self.bump();
    }

    /// The current generation: equal generations show equal answers.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn bump(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.changed.notify_waiters();
    }

    /// Resolves at the next change after it was enabled (`Notified::enable`) or first polled:
    /// enable it, then read the state, then await it, and no change is missed.
    pub fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
    }

    /// A copy of the freshness figures.
    pub fn snapshot(&self) -> Freshness {
        self.freshness().clone()
    }

    /// Records a feed's lag.
    pub fn set_lag(&self, feed: FeedKind, lag: i64) {
        let changed = {
            let mut freshness = self.freshness();
            let old = freshness.lag[feed as usize].replace(lag);
            old != Some(lag)
        };
        if changed {
            self.bump();
        }
    }

    /// The summary topic served.
    pub fn source(&self) -> String {
        self.source
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Notes which summary topic is served.
    pub fn set_source(&self, topic: &str) {
        *self.source.lock().unwrap_or_else(|e| e.into_inner()) = topic.to_owned();
        self.bump();
    }

    /// Whether `feed` has read every partition to its end at least once.
    pub fn is_caught_up(&self, feed: FeedKind) -> bool {
        self.caught_up.lock().unwrap_or_else(|e| e.into_inner())[feed as usize]
    }

    /// Changes the index without noting the time (a switch of source, not new data).
    pub fn replace(&self, change: impl FnOnce(&mut Index)) {
        change(&mut self.index.write().unwrap_or_else(|e| e.into_inner()));
        self.bump();
    }

    /// Marks a feed caught up; returns whether both are.
    pub fn set_caught_up(&self, feed: FeedKind) -> bool {
        let mut flags = self.caught_up.lock().unwrap_or_else(|e| e.into_inner());
        flags[feed as usize] = true;
        let all = flags.iter().all(|f| *f);
        self.freshness().caught_up = all;
        self.bump();
        all
    }

    fn freshness(&self) -> std::sync::MutexGuard<'_, Freshness> {
        self.freshness.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Where a feed's changes go: the served state, or a candidate source's own state until the
/// service switches to it. The switch happens under the same lock a change takes, so every
/// change lands either in what is copied over or in the served state, never in neither.
#[derive(Debug)]
pub struct Target(Mutex<Arc<Shared>>);

impl Target {
    /// Changes go to `shared`.
    pub fn new(shared: Arc<Shared>) -> Arc<Target> {
        Arc::new(Target(Mutex::new(shared)))
    }

    /// Runs `f` on the current state, holding the switch lock.
    pub fn with<R>(&self, f: impl FnOnce(&Shared) -> R) -> R {
        f(&self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// From now on changes go to `to`; `carry(from, to)` moves what was gathered, atomically
    /// with respect to the feed's changes.
    pub fn redirect(&self, to: Arc<Shared>, carry: impl FnOnce(&Shared, &Shared)) {
        let mut current = self.0.lock().unwrap_or_else(|e| e.into_inner());
        carry(&current, &to);
        *current = to;
    }
}
