//! Totals per (year, month, SKU): pure state, no I/O.
//!
//! The state is the *current* totals; what leaves the backend is a snapshot of them (an
//! upsert), so applying the same summary twice changes nothing downstream. Which keys changed
//! since the last snapshot is tracked so only those are written.

use rustc_hash::FxHashMap;

use rivulet_contracts::raw::RawRecord;
use rivulet_contracts::summary::{MonthKey, Overflow, Totals};

/// The totals of every key this backend owns, and which changed since the last snapshot.
///
/// Keyed by SKU, then (year, month): adding a record looks its SKU up by `&str`, so the hot
/// path allocates nothing once a key exists. FxHash: the keys are our own records' SKUs and
/// dates, and SipHash's flooding resistance cost a third of the per-record time here.
#[derive(Debug, Default)]
pub struct Aggregator {
    by_sku: FxHashMap<String, FxHashMap<(i32, u32), Slot>>,
    changed: Vec<MonthKey>,
    len: usize,
}

#[derive(Debug, Default)]
struct Slot {
    totals: Totals,
    changed: bool,
}

impl Aggregator {
    fn slot(&mut self, sku: &str, year: i32, month: u32) -> &mut Slot {
        if !self.by_sku.contains_key(sku) {
            self.by_sku.insert(sku.to_owned(), FxHashMap::default());
        }
        let months = self.by_sku.get_mut(sku).expect("inserted above");
        let len = &mut self.len;
        months.entry((year, month)).or_insert_with(|| {
            *len += 1;
            Slot::default()
        })
    }

    /// Adds a record to its month; on [`Overflow`] nothing changes (the caller dead-letters it).
    pub fn add(&mut self, record: &RawRecord) -> Result<(), Overflow> {
        let slot = self.slot(&record.sku, record.year, record.month);
        slot.totals.add(record)?;
        if !slot.changed {
            slot.changed = true;
            self.changed.push(MonthKey::of(record));
        }
        Ok(())
    }

    /// Sets a key's totals as restored from `summary-stats` (not marked changed).
    pub fn restore(&mut self, key: MonthKey, totals: Totals) {
        self.slot(&key.sku, key.year, key.month).totals = totals;
    }

    /// The totals of a key.
    pub fn get(&self, key: &MonthKey) -> Option<&Totals> {
        let slot = self.by_sku.get(&key.sku)?.get(&(key.year, key.month))?;
        Some(&slot.totals)
    }

    /// The changed keys with their current totals, clearing the change set.
    pub fn take_changed(&mut self) -> Vec<(MonthKey, Totals)> {
        let mut changed = std::mem::take(&mut self.changed);
        changed.sort();
        changed
            .into_iter()
            .filter_map(|k| {
                let slot = self.by_sku.get_mut(&k.sku)?.get_mut(&(k.year, k.month))?;
                slot.changed = false;
                let totals = slot.totals;
                Some((k, totals))
            })
            .collect()
    }

    /// Forgets keys for which `keep` is false (a revoked partition's keys), changes included.
    pub fn retain(&mut self, mut keep: impl FnMut(&MonthKey) -> bool) {
        let mut len = 0;
        for (sku, months) in &mut self.by_sku {
            months.retain(|&(year, month), _| {
                let key = MonthKey {
                    year,
                    month,
                    sku: sku.clone(),
                };
                keep(&key)
            });
            len += months.len();
        }
        self.by_sku.retain(|_, months| !months.is_empty());
        self.changed.retain(|k| keep(k));
        self.len = len;
    }

    /// Whether a record of `sku` fits: the SKU is held already, or fewer than `max` are.
    pub fn admits(&self, sku: &str, max: usize) -> bool {
        self.by_sku.len() < max || self.by_sku.contains_key(sku)
    }

    /// Number of keys held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(sku: &str, month: u32, qty: i32, defects: Option<i32>, cost: Option<i32>) -> RawRecord {
        RawRecord {
            sku: sku.into(),
            manufactured_qty: qty,
            year: 2020,
            month,
            day: 1,
            hour: 8,
            defect_qty: defects,
            unit_cost: cost,
        }
    }

    #[test]
    fn admits_known_skus_and_new_ones_below_the_cap() {
        let mut agg = Aggregator::default();
        assert!(agg.admits("A", 2));
        agg.add(&rec("A", 3, 50, None, None)).unwrap();
        agg.add(&rec("B", 3, 50, None, None)).unwrap();
        assert!(agg.admits("A", 2), "a held SKU always fits");
        assert!(!agg.admits("C", 2), "a third does not");
        assert!(agg.admits("C", 3));
    }

    #[test]
    fn mixed_versions_sum_what_each_record_carries() {
        let mut agg = Aggregator::default();
        agg.add(&rec("A", 3, 50, None, None)).unwrap(); // v1
        agg.add(&rec("A", 3, 60, Some(5), None)).unwrap(); // v2
        agg.add(&rec("A", 3, 70, Some(7), Some(100))).unwrap(); // v3
        agg.add(&rec("B", 3, 80, None, None)).unwrap();
        let a = agg
            .get(&MonthKey {
                year: 2020,
                month: 3,
                sku: "A".into(),
            })
            .unwrap();
        assert_eq!(
            *a,
            Totals {
                manufactured_qty: 180,
                defect_qty: Some(12),
                production_cost: Some(7000),
                records: 3,
                records_with_defects: 2,
                records_with_cost: 1
            }
        );
        let b = agg
            .get(&MonthKey {
                year: 2020,
                month: 3,
                sku: "B".into(),
            })
            .unwrap();
        assert_eq!(
            (b.defect_qty, b.production_cost),
            (None, None),
            "unknown stays null, never 0"
        );
    }

    #[test]
    fn snapshots_hold_current_totals_of_changed_keys_only() {
        let mut agg = Aggregator::default();
        agg.add(&rec("A", 1, 50, None, None)).unwrap();
        agg.add(&rec("B", 1, 50, None, None)).unwrap();
        assert_eq!(agg.take_changed().len(), 2);
        assert!(agg.take_changed().is_empty());
        agg.add(&rec("A", 1, 10, None, None)).unwrap();
        let changed = agg.take_changed();
        assert_eq!(changed.len(), 1);
        assert_eq!(
            changed[0].1.manufactured_qty, 60,
            "the running total, not the increment"
        );
    }

    #[test]
    fn restore_then_continue_and_retain() {
        let mut agg = Aggregator::default();
        let key = MonthKey {
            year: 2021,
            month: 12,
            sku: "SKU_000007".into(),
        };
        agg.restore(
            key.clone(),
            Totals {
                manufactured_qty: 100,
                records: 2,
                ..Totals::default()
            },
        );
        assert!(agg.take_changed().is_empty(), "restoring is not a change");
        agg.add(&RawRecord {
            year: 2021,
            month: 12,
            ..rec("SKU_000007", 12, 5, None, None)
        })
        .unwrap();
        assert_eq!(agg.get(&key).unwrap().manufactured_qty, 105);
        agg.retain(|k| k.sku != "SKU_000007");
        assert!(agg.is_empty());
        assert!(agg.take_changed().is_empty());
    }
}
