//! A raw record as the backend sees it, whatever schema version wrote it.
//!
//! Values arrive resolved to the newest reader schema (v3), so fields a v1 or v2 writer did not
//! have are `null`: unknown, never zero. Validation turns impossible values into a reason for
//! the dead-letter topic instead of a total.

use apache_avro::types::Value;

/// One hour of production of one SKU.
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

fn field<'a>(fields: &'a [(String, Value)], name: &'static str) -> Option<&'a Value> {
    fields.iter().find(|(n, _)| n == name).map(|(_, v)| v)
}

fn int(fields: &[(String, Value)], name: &'static str) -> Result<i32, Invalid> {
    match field(fields, name) {
        Some(Value::Int(v)) => Ok(*v),
        _ => Err(Invalid::Field(name)),
    }
}

fn optional_int(fields: &[(String, Value)], name: &'static str) -> Result<Option<i32>, Invalid> {
    match field(fields, name) {
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

/// Days in `month` of `year` (Gregorian calendar); 31 for a month outside 1..=12.
pub fn days_in_month(year: i32, month: i32) -> i32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

impl RawRecord {
    /// Validates a decoded value (resolved to any raw schema version).
    pub fn from_value(value: &Value) -> Result<RawRecord, Invalid> {
        let Value::Record(fields) = value else {
            return Err(Invalid::NotARecord);
        };
        let sku = match field(fields, "sku") {
            Some(Value::String(s)) => s.clone(),
            _ => return Err(Invalid::Field("sku")),
        };
        let (year, month, day, hour) = (
            int(fields, "year")?,
            int(fields, "month")?,
            int(fields, "day")?,
            int(fields, "hour")?,
        );
        let manufactured_qty = int(fields, "manufactured_qty")?;
        let defect_qty = optional_int(fields, "defect_qty")?;
        let unit_cost = optional_int(fields, "sku_manufacturing_cost")?;
        RawRecord::checked(Fields {
            sku,
            manufactured_qty,
            year,
            month,
            day,
            hour,
            defect_qty,
            unit_cost,
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
mod tests {
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
}
