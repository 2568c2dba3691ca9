//! The latest totals per (year, month, SKU), indexed by month, and the month totals computed
//! where every SKU is visible. Pure: fed by the consumers, read by the HTTP handlers.

use std::collections::{BTreeMap, BTreeSet};

use rivulet_contracts::summary::{MonthKey, Totals};

use crate::changes::{At, Changes, Cursor};
use rivulet_contracts::topics::{HOURS_PER_DAY, days_in_month};

/// One SKU in a month.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkuMonth {
    /// SKU.
    pub sku: String,
    /// Its totals.
    pub totals: Totals,
}

/// A month with the totals that need every SKU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MonthView {
    /// Year.
    pub year: i32,
    /// Month.
    pub month: u32,
    /// Hourly base cost of the year × working hours of the month; `None` until the year's cost
    /// is known.
    pub base_cost: Option<i64>,
    /// Σ of the SKUs' non-null production costs; `None` when no SKU has one.
    pub total_manufacturing_cost: Option<i64>,
    /// Every SKU of the catalogue is present and every one of its records carried a cost.
    pub complete: bool,
    /// The SKUs, in name order.
    pub manufacturing: Vec<SkuMonth>,
}

/// Everything the service knows.
#[derive(Debug, Default)]
pub struct Index {
    months: BTreeMap<(i32, u32), BTreeMap<String, Totals>>,
    skus: BTreeSet<String>,
    base_costs: BTreeMap<i32, i64>,
    changes: Changes,
}

impl Index {
    /// Applies a summary upsert read at `at`.
    pub fn upsert_at(&mut self, key: MonthKey, totals: Totals, at: At) {
        self.changes.month((key.year, key.month), at);
        self.upsert(key, totals);
    }

    /// Removes a key (a tombstone read at `at`).
    pub fn remove_at(&mut self, key: &MonthKey, at: At) {
        self.changes.month((key.year, key.month), at);
        self.remove(key);
    }

    /// Applies a yearly base cost read at `at`.
    pub fn set_base_cost_at(&mut self, year: i32, hourly: i64, at: At) {
        self.changes.year(year, at);
        self.set_base_cost(year, hourly);
    }

    /// Forgets a year's base cost (a tombstone read at `at`).
    pub fn remove_base_cost_at(&mut self, year: i32, at: At) {
        self.changes.year(year, at);
        self.remove_base_cost(year);
    }

    /// How far the feeds have been applied.
    pub fn cursor(&self) -> &Cursor {
        self.changes.cursor()
    }

    /// Bumped by every switch of summary source.
    pub fn epoch(&self) -> u64 {
        self.changes.epoch()
    }

    /// The months whose view may differ from what it was at `from`, oldest first: changed
    /// summary rows, and every month of a year whose base cost changed. A month in the list may
    /// no longer exist (its last key was removed).
    pub fn changed_since(&self, from: &Cursor, year: Option<i32>) -> Vec<(i32, u32)> {
        let since = self.changes.since(from);
        let mut months = since.months;
        for y in since.years {
            months.extend(self.months.range((y, 0)..=(y, u32::MAX)).map(|(m, _)| *m));
        }
        months
            .into_iter()
            .filter(|(y, _)| year.is_none_or(|wanted| *y == wanted))
            .collect()
    }

    /// Applies a summary upsert (the latest value of its key wins).
    pub fn upsert(&mut self, key: MonthKey, totals: Totals) {
        self.skus.insert(key.sku.clone());
        self.months
            .entry((key.year, key.month))
            .or_default()
            .insert(key.sku, totals);
    }

    /// Applies a yearly base cost.
    pub fn set_base_cost(&mut self, year: i32, hourly: i64) {
        self.base_costs.insert(year, hourly);
    }

    /// Removes a key (a tombstone).
    pub fn remove(&mut self, key: &MonthKey) {
        let month = (key.year, key.month);
        if let Some(skus) = self.months.get_mut(&month) {
            skus.remove(&key.sku);
            if skus.is_empty() {
                self.months.remove(&month);
            }
        }
    }

    /// Replaces every summary row by `other`'s (a switch of source; base costs stay).
    pub fn replace_summaries(&mut self, other: &Index) {
        self.months = other.months.clone();
        self.skus = other.skus.clone();
        self.changes.replace_summaries(&other.changes);
    }

    /// Whether `other` knows every key this index knows, with totals at least as large in
    /// every field both carry: switching to it can make no served total go down.
    pub fn dominated_by(&self, other: &Index) -> bool {
        self.months.iter().all(|(month, skus)| {
            let Some(theirs) = other.months.get(month) else {
                return false;
            };
            skus.iter().all(|(sku, mine)| {
                theirs.get(sku).is_some_and(|t| {
                    let at_least = |a: Option<i64>, b: Option<i64>| match (a, b) {
                        (Some(a), Some(b)) => b >= a,
                        _ => true,
                    };
                    t.manufactured_qty >= mine.manufactured_qty
                        && t.records >= mine.records
                        && at_least(mine.defect_qty, t.defect_qty)
                        && at_least(mine.production_cost, t.production_cost)
                })
            })
        })
    }

    /// Forgets a year's base cost (a tombstone).
    pub fn remove_base_cost(&mut self, year: i32) {
        self.base_costs.remove(&year);
    }

    /// Years with data, oldest first.
    pub fn years(&self) -> Vec<i32> {
        let mut years: Vec<i32> = self.months.keys().map(|(y, _)| *y).collect();
        years.dedup();
        years
    }

    /// Whether `sku` was ever seen.
    pub fn knows(&self, sku: &str) -> bool {
        self.skus.contains(sku)
    }

    /// Every SKU seen, in name order.
    pub fn skus(&self) -> impl Iterator<Item = &str> {
        self.skus.iter().map(String::as_str)
    }

    /// The months matching the filters, oldest first; `sku` narrows `manufacturing` but the
    /// month totals still cover every SKU.
    pub fn query(
        &self,
        year: Option<i32>,
        month: Option<u32>,
        sku: Option<&str>,
    ) -> Vec<MonthView> {
        let range = match (year, month) {
            (Some(y), Some(m)) => (y, m)..=(y, m),
            (Some(y), None) => (y, 1)..=(y, 12),
            _ => (i32::MIN, 0)..=(i32::MAX, u32::MAX),
        };
        self.months
            .range(range)
            .filter(|((_, m), _)| month.is_none_or(|wanted| *m == wanted))
            .map(|(&(y, m), skus)| self.view(y, m, skus, sku))
            .filter(|view| sku.is_none() || !view.manufacturing.is_empty())
            .collect()
    }

    fn view(
        &self,
        year: i32,
        month: u32,
        skus: &BTreeMap<String, Totals>,
        only: Option<&str>,
    ) -> MonthView {
        let costs: Vec<i64> = skus.values().filter_map(|t| t.production_cost).collect();
        let covered = |t: &Totals| t.records > 0 && t.records_with_cost == t.records;
        let complete =
            !skus.is_empty() && self.skus.iter().all(|s| skus.get(s).is_some_and(covered));
        MonthView {
            year,
            month,
            // Checked: input-derived numbers never wrap; a total that does not fit is unknown.
            base_cost: self.base_costs.get(&year).and_then(|hourly| {
                hourly
                    .checked_mul(i64::from(HOURS_PER_DAY))?
                    .checked_mul(i64::from(days_in_month(year, month as i32)))
            }),
            total_manufacturing_cost: if costs.is_empty() {
                None
            } else {
                costs.iter().try_fold(0i64, |sum, c| sum.checked_add(*c))
            },
            complete,
            manufacturing: skus
                .iter()
                .filter(|(s, _)| only.is_none_or(|o| o == s.as_str()))
                .map(|(s, t)| SkuMonth {
                    sku: s.clone(),
                    totals: *t,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(year: i32, month: u32, sku: &str) -> MonthKey {
        MonthKey {
            year,
            month,
            sku: sku.into(),
        }
    }

    fn totals(qty: i64, cost: Option<i64>, records: i64, with_cost: i64) -> Totals {
        Totals {
            manufactured_qty: qty,
            production_cost: cost,
            records,
            records_with_cost: with_cost,
            ..Totals::default()
        }
    }

    #[test]
    fn upserts_replace_never_add() {
        let mut index = Index::default();
        index.upsert(key(2020, 3, "A"), totals(10, None, 1, 0));
        index.upsert(key(2020, 3, "A"), totals(25, None, 2, 0));
        let view = &index.query(Some(2020), Some(3), None)[0];
        assert_eq!(view.manufacturing[0].totals.manufactured_qty, 25);
    }

    #[test]
    fn month_totals_need_every_sku_and_known_costs() {
        let mut index = Index::default();
        index.upsert(key(2020, 2, "A"), totals(100, Some(1000), 10, 10));
        index.upsert(key(2020, 2, "B"), totals(100, None, 10, 0));
        index.upsert(key(2020, 3, "A"), totals(100, Some(1000), 10, 10));
        index.upsert(key(2020, 3, "B"), totals(100, Some(500), 10, 10));
        let feb = &index.query(Some(2020), Some(2), None)[0];
        assert_eq!(
            (feb.base_cost, feb.total_manufacturing_cost, feb.complete),
            (None, Some(1000), false)
        );
        // A late base cost updates every month of its year.
        index.set_base_cost(2020, 300);
        let views = index.query(Some(2020), None, None);
        assert_eq!(
            views[0].base_cost,
            Some(300 * 12 * 29),
            "2020 is a leap year"
        );
        assert_eq!(views[1].base_cost, Some(300 * 12 * 31));
        assert_eq!(
            (views[1].total_manufacturing_cost, views[1].complete),
            (Some(1500), true)
        );
        // A SKU missing from a month makes it incomplete.
        index.upsert(key(2020, 4, "A"), totals(100, Some(1000), 10, 10));
        assert!(!index.query(Some(2020), Some(4), None)[0].complete);
    }

    #[test]
    fn filters() {
        let mut index = Index::default();
        for (y, m) in [(2019, 12), (2020, 1), (2020, 2)] {
            index.upsert(key(y, m, "A"), totals(1, None, 1, 0));
        }
        index.upsert(key(2020, 1, "B"), totals(1, None, 1, 0));
        assert_eq!(index.query(None, None, None).len(), 3);
        assert_eq!(index.query(Some(2020), None, None).len(), 2);
        assert_eq!(index.query(None, Some(1), None).len(), 1);
        let only_b = index.query(None, None, Some("B"));
        assert_eq!(only_b.len(), 1);
        assert_eq!(only_b[0].manufacturing.len(), 1);
        assert_eq!(index.skus().collect::<Vec<_>>(), vec!["A", "B"]);
        assert!(index.query(Some(2021), None, None).is_empty());
        assert_eq!(index.years(), vec![2019, 2020]);
    }

    #[test]
    fn tombstones_remove() {
        let mut index = Index::default();
        index.upsert(key(2020, 1, "A"), totals(1, None, 1, 0));
        index.set_base_cost(2020, 5);
        index.remove(&key(2020, 1, "A"));
        index.remove_base_cost(2020);
        assert!(index.query(None, None, None).is_empty());
        assert!(index.years().is_empty());
        assert!(index.knows("A"), "the catalogue keeps the SKU");
    }

    #[test]
    fn changes_since_a_cursor_cover_late_base_costs_and_removals() {
        let at = |partition, offset| At { partition, offset };
        let mut index = Index::default();
        index.upsert_at(key(2020, 1, "A"), totals(1, None, 1, 0), at(0, 0));
        index.upsert_at(key(2020, 2, "A"), totals(1, None, 1, 0), at(1, 0));
        index.upsert_at(key(2021, 2, "A"), totals(1, None, 1, 0), at(1, 1));
        let start = index.cursor().clone();
        assert!(index.changed_since(&start, None).is_empty());
        index.set_base_cost_at(2020, 9, at(0, 0));
        assert_eq!(
            index.changed_since(&start, None),
            vec![(2020, 1), (2020, 2)]
        );
        index.remove_at(&key(2021, 2, "A"), at(1, 2));
        assert_eq!(index.changed_since(&start, Some(2021)), vec![(2021, 2)]);
        assert!(index.query(Some(2021), Some(2), None).is_empty(), "removed");
        assert_eq!(index.changed_since(&Cursor::default(), None).len(), 3);
    }

    #[test]
    fn totals_that_do_not_fit_are_unknown_never_wrapped() {
        let mut index = Index::default();
        index.set_base_cost(2020, i64::MAX / 2);
        let t = Totals {
            manufactured_qty: 1,
            production_cost: Some(i64::MAX - 1),
            records: 1,
            records_with_cost: 1,
            ..Totals::default()
        };
        index.upsert(key(2020, 3, "A"), t);
        index.upsert(key(2020, 3, "B"), t);
        let views = index.query(Some(2020), Some(3), None);
        assert_eq!(views.len(), 1);
        assert_eq!(views[0].base_cost, None);
        assert_eq!(views[0].total_manufacturing_cost, None);
    }
}
