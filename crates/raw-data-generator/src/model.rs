//! The widget production model: exact, reproducible and free of I/O.
//!
//! Everything comes from one `seed` through ChaCha8 (a generator whose output is fixed by its
//! specification, so a seed means the same records on every machine and every release), with a
//! separate stream per concern: the catalogue (SKU names and unit costs), the yearly base costs
//! and the records themselves. Every record carries all v3 fields; the schema version a producer
//! writes only decides which of them go on the wire, so v1, v2 and v3 producers with one seed
//! describe the same production.

use chrono::{Datelike, NaiveDate};
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};

/// First production day.
pub const FIRST_DAY: NaiveDate = match NaiveDate::from_ymd_opt(2000, 1, 1) {
    Some(d) => d,
    None => panic!("valid date"),
};
/// Last production day.
pub const LAST_DAY: NaiveDate = match NaiveDate::from_ymd_opt(2024, 2, 29) {
    Some(d) => d,
    None => panic!("valid date"),
};
pub use rivulet_contracts::topics::{FIRST_HOUR, LAST_HOUR};
/// Working hours per day (the contract's, as a count of sweep steps).
pub const HOURS_PER_DAY: u64 = rivulet_contracts::topics::HOURS_PER_DAY as u64;
/// First and last year with costs.
pub const FIRST_YEAR: i32 = 2000;
/// Last year with costs.
pub const LAST_YEAR: i32 = 2024;
/// Hourly base cost in the first year.
pub const FIRST_BASE_COST: i64 = 280;

const CATALOGUE_STREAM: u64 = 1;
const BASE_COST_STREAM: u64 = 2;
const RECORD_STREAM: u64 = 3;

fn rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// One SKU and its unit cost in every year.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sku {
    /// `SKU_` + 6 digits.
    pub name: String,
    /// Unit manufacturing cost, indexed by `year - FIRST_YEAR`.
    pub unit_costs: Vec<i64>,
}

/// The SKU catalogue and the yearly base costs of one seed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Model {
    /// The seed everything derives from.
    pub seed: u64,
    /// SKUs, in catalogue order.
    pub skus: Vec<Sku>,
    /// Hourly base cost, indexed by `year - FIRST_YEAR`.
    pub base_costs: Vec<i64>,
}

impl Model {
    /// The model of `seed` with `sku_count` SKUs (at most 999,999).
    pub fn new(seed: u64, sku_count: usize) -> Model {
        let mut catalogue = rng(seed, CATALOGUE_STREAM);
        let mut numbers = Vec::with_capacity(sku_count);
        while numbers.len() < sku_count.min(999_999) {
            let n: u32 = catalogue.random_range(1..=999_999);
            if !numbers.contains(&n) {
                numbers.push(n);
            }
        }
        let years = (LAST_YEAR - FIRST_YEAR + 1) as usize;
        let skus = numbers
            .into_iter()
            .map(|n| {
                let mut cost: i64 = catalogue.random_range(100..=200);
                let mut unit_costs = Vec::with_capacity(years);
                unit_costs.push(cost);
                for _ in 1..years {
                    cost += catalogue.random_range(1..=(cost / 10).max(1));
                    unit_costs.push(cost);
                }
                Sku {
                    name: format!("SKU_{n:06}"),
                    unit_costs,
                }
            })
            .collect();
        let mut costs = rng(seed, BASE_COST_STREAM);
        let mut base = FIRST_BASE_COST;
        let mut base_costs = vec![base];
        for _ in 1..years {
            let pct: i64 = costs.random_range(5..=10);
            base += (base * pct / 100).max(1);
            base_costs.push(base);
        }
        Model {
            seed,
            skus,
            base_costs,
        }
    }

    /// Unit cost of SKU `sku` (catalogue index) in `year`.
    pub fn unit_cost(&self, sku: usize, year: i32) -> Option<i64> {
        let i = usize::try_from(year - FIRST_YEAR).ok()?;
        self.skus.get(sku)?.unit_costs.get(i).copied()
    }

    /// Hourly base cost of `year`.
    pub fn base_cost(&self, year: i32) -> Option<i64> {
        self.base_costs
            .get(usize::try_from(year - FIRST_YEAR).ok()?)
            .copied()
    }

    /// Every working hour of every day for every SKU, in time order (then catalogue order),
    /// each record exactly once.
    pub fn sweep(&self) -> Sweep<'_> {
        Sweep {
            model: self,
            rng: rng(self.seed, RECORD_STREAM),
            next: 0,
            len: self.sweep_len(),
        }
    }

    /// Number of records in a sweep.
    pub fn sweep_len(&self) -> u64 {
        let days = (LAST_DAY - FIRST_DAY).num_days() as u64 + 1;
        days * HOURS_PER_DAY * self.skus.len() as u64
    }

    /// The sweep position of the record of SKU `sku` (catalogue index) on `day` at `hour`:
    /// the inverse of what [`Model::sweep`] lays out (`None` outside the sweep).
    pub fn position(&self, sku: usize, day: NaiveDate, hour: u32) -> Option<u64> {
        let days = u64::try_from((day - FIRST_DAY).num_days()).ok()?;
        let hour = u64::from(hour.checked_sub(FIRST_HOUR)?);
        let skus = self.skus.len() as u64;
        let seq = (days * HOURS_PER_DAY + hour) * skus + sku as u64;
        (hour < HOURS_PER_DAY && (sku as u64) < skus && seq < self.sweep_len()).then_some(seq)
    }

    /// The sweep's records at `seqs` (ascending; positions past the sweep are left out). A
    /// record's numbers come from the draws of every record before it, so this walks the sweep
    /// up to the last one asked for.
    pub fn records_at(&self, seqs: &[u64]) -> Vec<Record> {
        let mut wanted = seqs.iter().copied().peekable();
        let mut out = Vec::with_capacity(seqs.len());
        for record in self.sweep() {
            let Some(&next) = wanted.peek() else { break };
            if record.seq == next {
                while wanted.next_if_eq(&record.seq).is_some() {}
                out.push(record);
            }
        }
        out
    }

    /// Records at random timestamps (any hour; outside working hours nothing is made).
    pub fn random(&self) -> RandomRecords<'_> {
        RandomRecords {
            model: self,
            rng: rng(self.seed, RECORD_STREAM),
            next: 0,
        }
    }

    fn record(
        &self,
        rng: &mut ChaCha8Rng,
        seq: u64,
        sku: usize,
        day: NaiveDate,
        hour: u32,
    ) -> Record {
        // Draw the same numbers whatever the hour, so a record's neighbours do not depend on it.
        let qty: i32 = rng.random_range(50..=100);
        let pct: i32 = rng.random_range(1..=99);
        let working = (FIRST_HOUR..=LAST_HOUR).contains(&hour);
        let manufactured_qty = if working { qty } else { 0 };
        Record {
            seq,
            sku: self.skus[sku].name.clone(),
            sku_index: sku,
            year: day.year(),
            month: day.month(),
            day: day.day(),
            hour,
            manufactured_qty,
            defect_qty: defects(manufactured_qty, pct),
            unit_cost: self.unit_cost(sku, day.year()).unwrap_or_default(),
        }
    }
}

/// Defective units of an hour that made `qty` units with a defect rate of `pct` percent:
/// floor(qty × pct / 100), clamped to 1..=qty−25, and 0 when fewer than 26 units were made.
pub fn defects(qty: i32, pct: i32) -> i32 {
    if qty < 26 {
        0
    } else {
        (qty * pct / 100).clamp(1, qty - 25)
    }
}

/// One hour of production of one SKU, with every field any schema version can carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Position in the sequence that produced it (sweep order, or draw number).
    pub seq: u64,
    /// SKU name.
    pub sku: String,
    /// SKU catalogue index.
    pub sku_index: usize,
    /// Year.
    pub year: i32,
    /// Month, 1-12.
    pub month: u32,
    /// Day of month.
    pub day: u32,
    /// Hour of day.
    pub hour: u32,
    /// Units made (0 outside working hours).
    pub manufactured_qty: i32,
    /// Defective units (v2 and later).
    pub defect_qty: i32,
    /// Unit cost of the SKU in the year (v3).
    pub unit_cost: i64,
}

impl Record {
    /// The record as the `raw-data-in` contract has it: every field known (a producer's schema
    /// version decides which of them it writes).
    pub fn raw(&self) -> rivulet_contracts::raw::RawRecord {
        rivulet_contracts::raw::RawRecord {
            sku: self.sku.clone(),
            manufactured_qty: self.manufactured_qty,
            year: self.year,
            month: self.month,
            day: self.day,
            hour: self.hour,
            defect_qty: Some(self.defect_qty),
            // Unit costs stay far below i32::MAX (about 2,000 after 25 years of at most +10 %).
            unit_cost: Some(i32::try_from(self.unit_cost).unwrap_or(i32::MAX)),
        }
    }
}

/// Iterator of a sweep; see [`Model::sweep`].
pub struct Sweep<'a> {
    model: &'a Model,
    rng: ChaCha8Rng,
    next: u64,
    len: u64,
}

impl Iterator for Sweep<'_> {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        if self.next >= self.len {
            return None;
        }
        let seq = self.next;
        self.next += 1;
        let skus = self.model.skus.len() as u64;
        let (hour_index, sku) = (seq / skus, (seq % skus) as usize);
        let day = FIRST_DAY + chrono::Days::new(hour_index / HOURS_PER_DAY);
        let hour = FIRST_HOUR + (hour_index % HOURS_PER_DAY) as u32;
        Some(self.model.record(&mut self.rng, seq, sku, day, hour))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = usize::try_from(self.len - self.next).unwrap_or(usize::MAX);
        (left, Some(left))
    }
}

/// Endless iterator of random records; see [`Model::random`].
pub struct RandomRecords<'a> {
    model: &'a Model,
    rng: ChaCha8Rng,
    next: u64,
}

impl RandomRecords<'_> {
    fn draw(&mut self, seq: u64) -> Record {
        let days = (LAST_DAY - FIRST_DAY).num_days() as u64 + 1;
        let day = FIRST_DAY + chrono::Days::new(self.rng.random_range(0..days));
        let hour = self.rng.random_range(0..24);
        let sku = self.rng.random_range(0..self.model.skus.len());
        self.model.record(&mut self.rng, seq, sku, day, hour)
    }
}

impl Iterator for RandomRecords<'_> {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        if self.model.skus.is_empty() {
            return None;
        }
        let seq = self.next;
        self.next += 1;
        Some(self.draw(seq))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sweep_of_20_skus_is_2_118_240_records() {
        let model = Model::new(7, 20);
        assert_eq!((LAST_DAY - FIRST_DAY).num_days() + 1, 8_826);
        assert_eq!(model.sweep_len(), 2_118_240);
        let mut n = 0u64;
        let mut last = None;
        for r in model.sweep() {
            assert_eq!(r.seq, n);
            assert!((FIRST_HOUR..=LAST_HOUR).contains(&r.hour));
            assert!((50..=100).contains(&r.manufactured_qty));
            assert!((1..=r.manufactured_qty - 25).contains(&r.defect_qty));
            let key = (r.year, r.month, r.day, r.hour, r.sku_index);
            if let Some(previous) = last {
                assert!(key > previous, "time order, then catalogue order");
            }
            last = Some(key);
            n += 1;
        }
        assert_eq!(n, 2_118_240);
        assert_eq!(last, Some((2024, 2, 29, 19, 19)));
    }

    #[test]
    fn positions_invert_the_sweep() {
        let model = Model::new(3, 7);
        let all: Vec<Record> = model.sweep().collect();
        for r in &all {
            let day = NaiveDate::from_ymd_opt(r.year, r.month, r.day).unwrap();
            assert_eq!(model.position(r.sku_index, day, r.hour), Some(r.seq));
        }
        assert_eq!(
            model.position(0, FIRST_DAY, FIRST_HOUR - 1),
            None,
            "before work"
        );
        assert_eq!(
            model.position(0, FIRST_DAY, LAST_HOUR + 1),
            None,
            "after work"
        );
        assert_eq!(
            model.position(7, FIRST_DAY, FIRST_HOUR),
            None,
            "no such SKU"
        );
        let before = FIRST_DAY.pred_opt().unwrap();
        assert_eq!(model.position(0, before, FIRST_HOUR), None);
        let after = LAST_DAY.succ_opt().unwrap();
        assert_eq!(model.position(0, after, FIRST_HOUR), None);
        let picked = model.records_at(&[0, 5, 5, 999, all.len() as u64 + 3]);
        assert_eq!(
            picked,
            vec![all[0].clone(), all[5].clone(), all[999].clone()]
        );
    }

    #[test]
    fn same_seed_same_records_other_seed_other_records() {
        let a: Vec<Record> = Model::new(42, 3).sweep().take(1000).collect();
        let b: Vec<Record> = Model::new(42, 3).sweep().take(1000).collect();
        let c: Vec<Record> = Model::new(43, 3).sweep().take(1000).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(Model::new(42, 3), Model::new(42, 3));
    }

    #[test]
    fn catalogue_and_costs_follow_the_rules() {
        let model = Model::new(1, 50);
        let mut names: Vec<&str> = model.skus.iter().map(|s| s.name.as_str()).collect();
        assert!(names.iter().all(|n| n.len() == 10
            && n.starts_with("SKU_")
            && n[4..].bytes().all(|b| b.is_ascii_digit())));
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 50, "distinct names");
        for sku in &model.skus {
            assert!((100..=200).contains(&sku.unit_costs[0]));
            for pair in sku.unit_costs.windows(2) {
                let step = pair[1] - pair[0];
                assert!((1..=(pair[0] / 10).max(1)).contains(&step), "{pair:?}");
            }
        }
        assert_eq!(model.base_cost(2000), Some(280));
        for pair in model.base_costs.windows(2) {
            let step = pair[1] - pair[0];
            assert!(
                step >= (pair[0] * 5 / 100).max(1) && step <= (pair[0] * 10 / 100).max(1),
                "{pair:?}"
            );
        }
        assert_eq!(model.base_costs.len(), 25);
        assert_eq!(model.base_cost(2025), None);
        assert_eq!(model.unit_cost(0, 1999), None);
    }

    #[test]
    fn defect_rule() {
        assert_eq!(defects(100, 50), 50);
        assert_eq!(defects(100, 99), 75, "at most qty - 25");
        assert_eq!(defects(50, 1), 1, "at least 1");
        assert_eq!(defects(26, 99), 1);
        assert_eq!(defects(25, 99), 0);
        assert_eq!(defects(0, 50), 0);
    }

    #[test]
    fn random_records_make_nothing_outside_working_hours() {
        let model = Model::new(9, 4);
        let records: Vec<Record> = model.random().take(5000).collect();
        assert!(
            records
                .iter()
                .any(|r| r.hour < FIRST_HOUR || r.hour > LAST_HOUR)
        );
        for r in &records {
            let working = (FIRST_HOUR..=LAST_HOUR).contains(&r.hour);
            assert_eq!(working, r.manufactured_qty > 0, "{r:?}");
            assert!(r.day <= 31 && (1..=12).contains(&r.month));
            assert!(
                NaiveDate::from_ymd_opt(r.year, r.month, r.day)
                    .is_some_and(|d| (FIRST_DAY..=LAST_DAY).contains(&d))
            );
        }
        let again: Vec<Record> = model.random().take(5000).collect();
        assert_eq!(records, again);
    }
}
