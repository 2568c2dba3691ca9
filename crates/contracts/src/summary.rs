//! `summary-stats`: the current totals of one month of one SKU, in schema v1, v2 or v3, keyed
//! `YYYY-MM|SKU`. An upsert, never an increment: re-reading a summary cannot double count.
//!
//! v1 has `year`, `month`, `sku`, `manufactured_qty`, `records`; v2 adds `defect_qty` and
//! `records_with_defects`; v3 adds `production_cost` and `records_with_cost`. Each summary
//! carries the header [`crate::topics::headers::INPUT_OFFSET`].

use apache_avro::Schema;
use apache_avro::types::Value;

use crate::fields::{get, long, optional};
use crate::raw::RawRecord;
use crate::{SchemaError, Version};

/// The schema text of `version`, as in `schemas/summary-stats/`.
pub fn text(version: Version) -> &'static str {
    match version {
        Version::V1 => include_str!("../../../schemas/summary-stats/v1.avsc"),
        Version::V2 => include_str!("../../../schemas/summary-stats/v2.avsc"),
        Version::V3 => include_str!("../../../schemas/summary-stats/v3.avsc"),
    }
}

/// The parsed schema of `version`.
pub fn schema(version: Version) -> Result<Schema, SchemaError> {
    let name = match version {
        Version::V1 => "summary-stats/v1",
        Version::V2 => "summary-stats/v2",
        Version::V3 => "summary-stats/v3",
    };
    crate::parse(name, text(version))
}

/// The key of one month of one SKU.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MonthKey {
    /// Year.
    pub year: i32,
    /// Month, 1-12.
    pub month: u32,
    /// SKU.
    pub sku: String,
}

impl MonthKey {
    /// The key of the month a record belongs to.
    pub fn of(record: &RawRecord) -> MonthKey {
        MonthKey {
            year: record.year,
            month: record.month,
            sku: record.sku.clone(),
        }
    }

    /// The Kafka key of its summary: `YYYY-MM|SKU`.
    pub fn kafka_key(&self) -> String {
        format!("{:04}-{:02}|{}", self.year, self.month, self.sku)
    }

    /// Parses a Kafka key written by [`MonthKey::kafka_key`].
    pub fn parse(key: &str) -> Option<MonthKey> {
        let (date, sku) = key.split_once('|')?;
        let (year, month) = date.split_once('-')?;
        let (year, month) = (year.parse().ok()?, month.parse().ok()?);
        (1..=12).contains(&month).then(|| MonthKey {
            year,
            month,
            sku: sku.to_owned(),
        })
    }
}

/// Totals of one month of one SKU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Σ manufactured_qty over every record.
    pub manufactured_qty: i64,
    /// Σ defect_qty over the records that carry it; `None` while none does.
    pub defect_qty: Option<i64>,
    /// Σ manufactured_qty × unit cost over the records that carry a cost; `None` while none does.
    pub production_cost: Option<i64>,
    /// Records aggregated.
    pub records: i64,
    /// Records that carried defect_qty.
    pub records_with_defects: i64,
    /// Records that carried a unit cost.
    pub records_with_cost: i64,
}

/// Adding a record would take a total past `i64::MAX`: the totals stay as they were (only
/// made-up input gets there; a real SKU makes about 10^9 units in 25 years).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("adding the record would overflow a total")]
pub struct Overflow;

impl Totals {
    /// Adds one record: what each total means. Checked: on [`Overflow`] nothing changes.
    pub fn add(&mut self, r: &RawRecord) -> Result<(), Overflow> {
        let sum = |a: i64, b: i64| a.checked_add(b).ok_or(Overflow);
        let mut next = *self;
        next.manufactured_qty = sum(self.manufactured_qty, i64::from(r.manufactured_qty))?;
        next.records = sum(self.records, 1)?;
        if let Some(d) = r.defect_qty {
            next.defect_qty = Some(sum(self.defect_qty.unwrap_or(0), i64::from(d))?);
            next.records_with_defects = sum(self.records_with_defects, 1)?;
        }
        if let Some(c) = r.unit_cost {
            // Two i32s: the product always fits an i64.
            let cost = i64::from(r.manufactured_qty) * i64::from(c);
            next.production_cost = Some(sum(self.production_cost.unwrap_or(0), cost)?);
            next.records_with_cost = sum(self.records_with_cost, 1)?;
        }
        *self = next;
        Ok(())
    }
}

/// The summary record of `key` with `totals`, as an Avro value of `version`.
pub fn value(version: Version, key: &MonthKey, t: &Totals) -> Value {
    let opt = |v: Option<i64>| optional(v.map(Value::Long));
    let mut fields = vec![
        ("year".to_owned(), Value::Int(key.year)),
        ("month".to_owned(), Value::Int(key.month as i32)),
        ("sku".to_owned(), Value::String(key.sku.clone())),
        (
            "manufactured_qty".to_owned(),
            Value::Long(t.manufactured_qty),
        ),
        ("records".to_owned(), Value::Long(t.records)),
    ];
    if version >= Version::V2 {
        fields.push(("defect_qty".to_owned(), opt(t.defect_qty)));
        fields.push((
            "records_with_defects".to_owned(),
            opt(Some(t.records_with_defects)),
        ));
    }
    if version >= Version::V3 {
        fields.push(("production_cost".to_owned(), opt(t.production_cost)));
        fields.push((
            "records_with_cost".to_owned(),
            opt(Some(t.records_with_cost)),
        ));
    }
    Value::Record(fields)
}

/// Key and totals of a summary value (any version, or resolved to v3). Fields a writer did not
/// have are unknown: their totals are `None` and their coverage counters 0.
pub fn from_value(value: &Value) -> Option<(MonthKey, Totals)> {
    let Value::Record(fields) = value else {
        return None;
    };
    let year = match get(fields, "year")? {
        Value::Int(y) => *y,
        _ => return None,
    };
    let month = match get(fields, "month")? {
        Value::Int(m) if (1..=12).contains(m) => *m as u32,
        _ => return None,
    };
    let sku = match get(fields, "sku")? {
        Value::String(s) => s.clone(),
        _ => return None,
    };
    let totals = Totals {
        manufactured_qty: long(fields, "manufactured_qty")?,
        records: long(fields, "records")?,
        defect_qty: long(fields, "defect_qty"),
        records_with_defects: long(fields, "records_with_defects").unwrap_or(0),
        production_cost: long(fields, "production_cost"),
        records_with_cost: long(fields, "records_with_cost").unwrap_or(0),
    };
    Some((MonthKey { year, month, sku }, totals))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests
    use super::*;

    #[test]
    fn every_version_encodes_and_v3_restores_what_it_can() {
        let key = MonthKey {
            year: 2010,
            month: 5,
            sku: "SKU_000042".into(),
        };
        let totals = Totals {
            manufactured_qty: 900,
            defect_qty: Some(40),
            production_cost: Some(123_456),
            records: 12,
            records_with_defects: 12,
            records_with_cost: 6,
        };
        let v3 = schema(Version::V3).unwrap();
        for version in Version::ALL {
            let writer = schema(version).unwrap();
            let bytes = crate::to_bytes(&writer, value(version, &key, &totals)).unwrap();
            let read = crate::from_bytes(&writer, Some(&v3), &bytes).unwrap();
            let (k, t) = from_value(&read).unwrap();
            assert_eq!(k, key);
            assert_eq!((t.manufactured_qty, t.records), (900, 12));
            match version {
                Version::V1 => assert_eq!(
                    (t.defect_qty, t.production_cost, t.records_with_defects),
                    (None, None, 0)
                ),
                Version::V2 => assert_eq!((t.defect_qty, t.production_cost), (Some(40), None)),
                Version::V3 => assert_eq!(t, totals),
            }
        }
    }

    #[test]
    fn garbage_is_not_a_summary() {
        assert!(from_value(&Value::Null).is_none());
        assert!(from_value(&Value::Record(vec![("year".into(), Value::Int(2000))])).is_none());
    }

    #[test]
    fn kafka_keys_round_trip() {
        let key = MonthKey {
            year: 2003,
            month: 7,
            sku: "SKU_123456".into(),
        };
        assert_eq!(key.kafka_key(), "2003-07|SKU_123456");
        assert_eq!(MonthKey::parse("2003-07|SKU_123456"), Some(key));
        assert_eq!(MonthKey::parse("2003-13|X"), None);
        assert_eq!(MonthKey::parse("garbage"), None);
    }

    #[test]
    fn totals_sum_what_each_record_carries() {
        let rec = |qty, defects, cost| RawRecord {
            sku: "A".into(),
            manufactured_qty: qty,
            year: 2020,
            month: 3,
            day: 1,
            hour: 8,
            defect_qty: defects,
            unit_cost: cost,
        };
        let mut t = Totals::default();
        t.add(&rec(50, None, None)).unwrap();
        t.add(&rec(60, Some(5), None)).unwrap();
        t.add(&rec(70, Some(7), Some(100))).unwrap();
        assert_eq!(
            t,
            Totals {
                manufactured_qty: 180,
                defect_qty: Some(12),
                production_cost: Some(7000),
                records: 3,
                records_with_defects: 2,
                records_with_cost: 1,
            }
        );
    }

    #[test]
    fn an_overflowing_record_changes_nothing() {
        let huge = RawRecord {
            sku: "A".into(),
            manufactured_qty: i32::MAX,
            year: 2020,
            month: 3,
            day: 1,
            hour: 8,
            defect_qty: None,
            unit_cost: Some(i32::MAX),
        };
        let mut t = Totals::default();
        t.add(&huge).unwrap();
        t.add(&huge).unwrap();
        let before = t;
        // (2^31 - 1)^2 three times is past i64::MAX.
        assert_eq!(t.add(&huge), Err(Overflow));
        assert_eq!(t, before, "nothing changed");
    }
}
