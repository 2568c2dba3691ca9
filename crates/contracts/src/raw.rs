//! `raw-data-in`: one hour of production of one SKU, in schema v1, v2 or v3.
//!
//! v1 has `sku`, `manufactured_qty`, `year`, `month`, `day`, `hour`; v2 adds `defect_qty`; v3
//! adds `sku_manufacturing_cost` (both `["null", "int"]`, default null). A reader resolves any
//! version to v3: fields an older writer lacked are `null`, unknown, never zero. Validation
//! turns impossible values into an [`Invalid`] reason (the backend's dead-letter reason).

use apache_avro::Schema;
use apache_avro::types::Value;

use crate::fields::{get, optional};
use crate::topics::days_in_month;
use crate::{SchemaError, Version};

/// Field names, in the order the schemas declare them.
pub mod field {
    /// SKU name.
    pub const SKU: &str = "sku";
    /// Units made.
    pub const MANUFACTURED_QTY: &str = "manufactured_qty";
    /// Year.
    pub const YEAR: &str = "year";
    /// Month, 1-12.
    pub const MONTH: &str = "month";
    /// Day of month.
    pub const DAY: &str = "day";
    /// Hour of day.
    pub const HOUR: &str = "hour";
    /// Defective units (v2+).
    pub const DEFECT_QTY: &str = "defect_qty";
    /// Unit cost (v3).
    pub const UNIT_COST: &str = "sku_manufacturing_cost";
}

/// The schema text of `version`, as in `schemas/raw-data-in/`.
pub fn text(version: Version) -> &'static str {
    match version {
        Version::V1 => include_str!("../../../schemas/raw-data-in/v1.avsc"),
        Version::V2 => include_str!("../../../schemas/raw-data-in/v2.avsc"),
        Version::V3 => include_str!("../../../schemas/raw-data-in/v3.avsc"),
    }
}

/// The parsed schema of `version`.
pub fn schema(version: Version) -> Result<Schema, SchemaError> {
    let name = match version {
        Version::V1 => "raw-data-in/v1",
        Version::V2 => "raw-data-in/v2",
        Version::V3 => "raw-data-in/v3",
    };
    crate::parse(name, text(version))
}

/// The schema every reader resolves raw records to (the newest).
pub fn reader_schema() -> Result<Schema, SchemaError> {
    schema(Version::V3)
}

/// One hour of production of one SKU, valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawRecord {
    /// SKU.
    pub sku: String,
    /// Units made.
    pub manufactured_qty: i32,
    /// Year.
    pub year: i32,
    /// Month, 1-12.
    pub month: u32,
    /// Day of month.
    pub day: u32,
    /// Hour of day.
    pub hour: u32,
    /// Defective units, when the writer knew them (v2+).
    pub defect_qty: Option<i32>,
    /// Unit cost, when the writer knew it (v3).
    pub unit_cost: Option<i32>,
}

/// The record as an Avro value of `version`: the version decides which fields are written
/// (an unknown `defect_qty` or cost is written as `null`).
pub fn value(version: Version, r: &RawRecord) -> Value {
    let mut fields = vec![
        (field::SKU.to_owned(), Value::String(r.sku.clone())),
        (
            field::MANUFACTURED_QTY.to_owned(),
            Value::Int(r.manufactured_qty),
        ),
        (field::YEAR.to_owned(), Value::Int(r.year)),
        (field::MONTH.to_owned(), Value::Int(r.month as i32)),
        (field::DAY.to_owned(), Value::Int(r.day as i32)),
        (field::HOUR.to_owned(), Value::Int(r.hour as i32)),
    ];
    if version >= Version::V2 {
        fields.push((
            field::DEFECT_QTY.to_owned(),
            optional(r.defect_qty.map(Value::Int)),
        ));
    }
    if version >= Version::V3 {
        fields.push((
            field::UNIT_COST.to_owned(),
            optional(r.unit_cost.map(Value::Int)),
        ));
    }
    Value::Record(fields)
}

/// Why a record cannot be aggregated (the `reason` header of its dead letter).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    /// Not an Avro record.
    #[error("not a record")]
    NotARecord,
    /// A required field is missing or has another type.
    #[error("field {0} is missing or has the wrong type")]
    Field(&'static str),
    /// Month outside 1..=12.
    #[error("month {0} is not 1-12")]
    Month(i32),
    /// Day that does not exist in its month.
    #[error("day {0} does not exist in {1}-{2:02}")]
    Day(i32, i32, i32),
    /// Hour outside 0..=23.
    #[error("hour {0} is not 0-23")]
    Hour(i32),
    /// Negative quantity.
    #[error("manufactured_qty {0} is negative")]
    NegativeQuantity(i32),
    /// Defects outside 0..=manufactured.
    #[error("defect_qty {0} is not within 0..={1}")]
    Defects(i32, i32),
    /// Negative unit cost.
    #[error("sku_manufacturing_cost {0} is negative")]
    NegativeCost(i32),
}

impl Invalid {
    /// A short, stable label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Invalid::NotARecord => "not_a_record",
            Invalid::Field(_) => "missing_field",
            Invalid::Month(_) | Invalid::Day(..) | Invalid::Hour(_) => "bad_timestamp",
            Invalid::NegativeQuantity(_) | Invalid::Defects(..) | Invalid::NegativeCost(_) => {
                "bad_quantity"
            }
        }
    }
}

fn int(fields: &[(String, Value)], name: &'static str) -> Result<i32, Invalid> {
    match get(fields, name) {
        Some(Value::Int(v)) => Ok(*v),
        _ => Err(Invalid::Field(name)),
    }
}

fn optional_int(fields: &[(String, Value)], name: &'static str) -> Result<Option<i32>, Invalid> {
    match get(fields, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Union(_, inner)) => match inner.as_ref() {
            Value::Null => Ok(None),
            Value::Int(v) => Ok(Some(*v)),
            _ => Err(Invalid::Field(name)),
        },
        Some(Value::Int(v)) => Ok(Some(*v)),
        Some(_) => Err(Invalid::Field(name)),
    }
}

impl RawRecord {
    /// Validates a decoded value (resolved to any raw schema version).
    pub fn from_value(value: &Value) -> Result<RawRecord, Invalid> {
        let Value::Record(fields) = value else {
            return Err(Invalid::NotARecord);
        };
        let sku = match get(fields, field::SKU) {
            Some(Value::String(s)) => s.clone(),
            _ => return Err(Invalid::Field(field::SKU)),
        };
        RawRecord::checked(Fields {
            sku,
            year: int(fields, field::YEAR)?,
            month: int(fields, field::MONTH)?,
            day: int(fields, field::DAY)?,
            hour: int(fields, field::HOUR)?,
            manufactured_qty: int(fields, field::MANUFACTURED_QTY)?,
            defect_qty: optional_int(fields, field::DEFECT_QTY)?,
            unit_cost: optional_int(fields, field::UNIT_COST)?,
        })
    }

    /// Validates decoded fields: the one place impossible values are refused.
    pub fn checked(f: Fields) -> Result<RawRecord, Invalid> {
        if !(1..=12).contains(&f.month) {
            return Err(Invalid::Month(f.month));
        }
        if f.day < 1 || f.day > days_in_month(f.year, f.month) {
            return Err(Invalid::Day(f.day, f.year, f.month));
        }
        if !(0..=23).contains(&f.hour) {
            return Err(Invalid::Hour(f.hour));
        }
        if f.manufactured_qty < 0 {
            return Err(Invalid::NegativeQuantity(f.manufactured_qty));
        }
        if let Some(d) = f.defect_qty
            && !(0..=f.manufactured_qty).contains(&d)
        {
            return Err(Invalid::Defects(d, f.manufactured_qty));
        }
        if let Some(c) = f.unit_cost
            && c < 0
        {
            return Err(Invalid::NegativeCost(c));
        }
        // The checks above keep these in range; the casts cannot wrap.
        Ok(RawRecord {
            sku: f.sku,
            manufactured_qty: f.manufactured_qty,
            year: f.year,
            month: f.month as u32,
            day: f.day as u32,
            hour: f.hour as u32,
            defect_qty: f.defect_qty,
            unit_cost: f.unit_cost,
        })
    }
}

/// A raw record's fields as decoded, before validation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fields {
    /// SKU.
    pub sku: String,
    /// Units made.
    pub manufactured_qty: i32,
    /// Year.
    pub year: i32,
    /// Month.
    pub month: i32,
    /// Day.
    pub day: i32,
    /// Hour.
    pub hour: i32,
    /// Defective units (v2+).
    pub defect_qty: Option<i32>,
    /// Unit cost (v3).
    pub unit_cost: Option<i32>,
}

#[cfg(test)]
mod tests;
