//! Unit tests of the raw contract.

#![allow(clippy::unwrap_used)] // tests

use super::*;

fn raw(
    month: i32,
    day: i32,
    hour: i32,
    qty: i32,
    defects: Option<i32>,
    cost: Option<i32>,
) -> Value {
    let opt = |v: Option<i32>| match v {
        Some(v) => Value::Union(1, Box::new(Value::Int(v))),
        None => Value::Union(0, Box::new(Value::Null)),
    };
    Value::Record(vec![
        ("sku".into(), Value::String("SKU_000001".into())),
        ("manufactured_qty".into(), Value::Int(qty)),
        ("year".into(), Value::Int(2020)),
        ("month".into(), Value::Int(month)),
        ("day".into(), Value::Int(day)),
        ("hour".into(), Value::Int(hour)),
        ("defect_qty".into(), opt(defects)),
        ("sku_manufacturing_cost".into(), opt(cost)),
    ])
}

#[test]
fn valid_records_keep_unknown_as_none() {
    let r = RawRecord::from_value(&raw(2, 29, 8, 70, None, Some(150))).unwrap();
    assert_eq!(
        (r.defect_qty, r.unit_cost, r.month, r.day),
        (None, Some(150), 2, 29)
    );
}

#[test]
fn impossible_values_are_refused_with_a_reason() {
    assert_eq!(
        RawRecord::from_value(&raw(13, 1, 8, 70, None, None)),
        Err(Invalid::Month(13))
    );
    assert_eq!(
        RawRecord::from_value(&raw(2, 30, 8, 70, None, None)),
        Err(Invalid::Day(30, 2020, 2))
    );
    assert_eq!(
        RawRecord::from_value(&raw(1, 1, 24, 70, None, None)),
        Err(Invalid::Hour(24))
    );
    assert_eq!(
        RawRecord::from_value(&raw(1, 1, 8, -1, None, None)),
        Err(Invalid::NegativeQuantity(-1))
    );
    assert_eq!(
        RawRecord::from_value(&raw(1, 1, 8, 10, Some(11), None)),
        Err(Invalid::Defects(11, 10))
    );
    assert_eq!(
        RawRecord::from_value(&raw(1, 1, 8, 10, Some(-1), None)),
        Err(Invalid::Defects(-1, 10))
    );
    assert_eq!(
        RawRecord::from_value(&raw(1, 1, 8, 10, None, Some(-5))),
        Err(Invalid::NegativeCost(-5))
    );
    assert_eq!(
        RawRecord::from_value(&Value::Int(3)),
        Err(Invalid::NotARecord)
    );
    let Value::Record(mut fields) = raw(1, 1, 8, 10, None, None) else {
        unreachable!()
    };
    fields.remove(0);
    assert_eq!(
        RawRecord::from_value(&Value::Record(fields)),
        Err(Invalid::Field("sku"))
    );
    assert_eq!(Invalid::Month(0).label(), "bad_timestamp");
}

#[test]
fn every_version_encodes_and_reads_back_as_v3() {
    let record = RawRecord {
        sku: "SKU_000001".into(),
        manufactured_qty: 70,
        year: 2020,
        month: 2,
        day: 29,
        hour: 8,
        defect_qty: Some(3),
        unit_cost: Some(150),
    };
    let v3 = reader_schema().unwrap();
    for version in Version::ALL {
        let writer = schema(version).unwrap();
        let bytes = crate::to_bytes(&writer, value(version, &record)).unwrap();
        let read = crate::from_bytes(&writer, Some(&v3), &bytes).unwrap();
        let back = RawRecord::from_value(&read).unwrap();
        let want = RawRecord {
            defect_qty: (version >= Version::V2).then_some(3),
            unit_cost: (version >= Version::V3).then_some(150),
            ..record.clone()
        };
        assert_eq!(back, want, "{version}");
    }
}
