//! Totals as the `summary-stats` record, in the schema version this backend writes, and back.

use apache_avro::Schema;
use apache_avro::types::Value;

use crate::aggregate::{MonthKey, Totals};

/// Summary schema version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum SummaryVersion {
    /// qty and records.
    V1,
    /// + defects.
    V2,
    /// + production cost.
    V3,
}

impl SummaryVersion {
    /// `v1`, `v2` or `v3`.
    pub fn label(self) -> &'static str {
        match self {
            SummaryVersion::V1 => "v1",
            SummaryVersion::V2 => "v2",
            SummaryVersion::V3 => "v3",
        }
    }

    /// The schema text, as in `schemas/summary-stats/`.
    pub fn text(self) -> &'static str {
        match self {
            SummaryVersion::V1 => include_str!("../../../schemas/summary-stats/v1.avsc"),
            SummaryVersion::V2 => include_str!("../../../schemas/summary-stats/v2.avsc"),
            SummaryVersion::V3 => include_str!("../../../schemas/summary-stats/v3.avsc"),
        }
    }

    /// The parsed schema.
    pub fn schema(self) -> Result<Schema, apache_avro::Error> {
        Schema::parse_str(self.text())
    }

    /// The summary record of `key` with `totals`.
    pub fn value(self, key: &MonthKey, t: &Totals) -> Value {
        let opt = |v: Option<i64>| match v {
            Some(v) => Value::Union(1, Box::new(Value::Long(v))),
            None => Value::Union(0, Box::new(Value::Null)),
        };
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
        if self >= SummaryVersion::V2 {
            fields.push(("defect_qty".to_owned(), opt(t.defect_qty)));
            fields.push((
                "records_with_defects".to_owned(),
                opt(Some(t.records_with_defects)),
            ));
        }
        if self >= SummaryVersion::V3 {
            fields.push(("production_cost".to_owned(), opt(t.production_cost)));
            fields.push((
                "records_with_cost".to_owned(),
                opt(Some(t.records_with_cost)),
            ));
        }
        Value::Record(fields)
    }
}

fn long(fields: &[(String, Value)], name: &str) -> Option<i64> {
    match fields.iter().find(|(n, _)| n == name).map(|(_, v)| v)? {
        Value::Long(v) => Some(*v),
        Value::Int(v) => Some(i64::from(*v)),
        Value::Union(_, inner) => match inner.as_ref() {
            Value::Long(v) => Some(*v),
            Value::Int(v) => Some(i64::from(*v)),
            _ => None,
        },
        _ => None,
    }
}

/// Key and totals of a summary value (any version, or resolved to v3). Fields a writer did not
/// have are unknown: their totals are `None` and their coverage counters 0.
pub fn from_value(value: &Value) -> Option<(MonthKey, Totals)> {
    let Value::Record(fields) = value else {
        return None;
    };
    let field = |name: &str| fields.iter().find(|(n, _)| n == name).map(|(_, v)| v);
    let year = match field("year")? {
        Value::Int(y) => *y,
        _ => return None,
    };
    let month = match field("month")? {
        Value::Int(m) if (1..=12).contains(m) => *m as u32,
        _ => return None,
    };
    let sku = match field("sku")? {
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
        let v3 = SummaryVersion::V3.schema().unwrap();
        for version in [SummaryVersion::V1, SummaryVersion::V2, SummaryVersion::V3] {
            let schema = version.schema().unwrap();
            let bytes =
                rivulet_common::avro::encode(9, &schema, version.value(&key, &totals)).unwrap();
            let (_, mut body) = rivulet_common::avro::unframe(&bytes).unwrap();
            let value = apache_avro::reader::datum::GenericDatumReader::builder(&schema)
                .reader_schema(&v3)
                .build()
                .unwrap()
                .read_value(&mut body)
                .unwrap();
            let (k, t) = from_value(&value).unwrap();
            assert_eq!(k, key);
            assert_eq!((t.manufactured_qty, t.records), (900, 12));
            match version {
                SummaryVersion::V1 => assert_eq!(
                    (t.defect_qty, t.production_cost, t.records_with_defects),
                    (None, None, 0)
                ),
                SummaryVersion::V2 => {
                    assert_eq!((t.defect_qty, t.production_cost), (Some(40), None))
                }
                SummaryVersion::V3 => assert_eq!(t, totals),
            }
        }
    }

    #[test]
    fn garbage_is_not_a_summary() {
        assert!(from_value(&Value::Null).is_none());
        assert!(from_value(&Value::Record(vec![("year".into(), Value::Int(2000))])).is_none());
    }
}
