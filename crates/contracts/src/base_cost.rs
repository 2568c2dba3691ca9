//! `base-costs`: the hourly base cost of a year, keyed by the year as decimal text, on a
//! compacted topic (the latest value per year is the cost).

use apache_avro::Schema;
use apache_avro::types::Value;

use crate::SchemaError;
use crate::fields::get;

/// The `BaseCost` schema text, as in `schemas/base-costs/v1.avsc`.
pub const TEXT: &str = include_str!("../../../schemas/base-costs/v1.avsc");

/// The parsed schema.
pub fn schema() -> Result<Schema, SchemaError> {
    crate::parse("base-costs/v1", TEXT)
}

/// The Kafka key of `year`'s cost.
pub fn key(year: i32) -> String {
    year.to_string()
}

/// The year of a key written by [`key`].
pub fn parse_key(key: &str) -> Option<i32> {
    key.trim().parse().ok()
}

/// The `BaseCost` record of `year`.
pub fn value(year: i32, cost: i64) -> Value {
    Value::Record(vec![
        ("year".into(), Value::Int(year)),
        ("hourly_base_cost".into(), Value::Long(cost)),
    ])
}

/// (year, hourly base cost) of a `BaseCost` value; `None` for anything else or a negative cost.
pub fn from_value(value: &Value) -> Option<(i32, i64)> {
    let Value::Record(fields) = value else {
        return None;
    };
    match (get(fields, "year")?, get(fields, "hourly_base_cost")?) {
        (Value::Int(year), Value::Long(cost)) if *cost >= 0 => Some((*year, *cost)),
        (Value::Int(year), Value::Int(cost)) if *cost >= 0 => Some((*year, i64::from(*cost))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests
    use super::*;

    #[test]
    fn base_costs_round_trip_and_refuse_garbage() {
        let schema = schema().unwrap();
        let bytes = crate::to_bytes(&schema, value(2001, 300)).unwrap();
        let read = crate::from_bytes(&schema, None, &bytes).unwrap();
        assert_eq!(from_value(&read), Some((2001, 300)));
        let negative = value(2001, -1);
        assert_eq!(from_value(&negative), None);
        assert_eq!(from_value(&Value::Null), None);
        assert_eq!(parse_key(&key(2020)), Some(2020));
        assert_eq!(parse_key("x"), None);
    }
}
