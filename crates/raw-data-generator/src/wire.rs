//! What goes on the wire: the raw record in schema v1, v2 or v3, Confluent-framed.

use apache_avro::Schema;
use apache_avro::types::Value;

use crate::model::Record;

/// Raw-record schema version a producer writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum)]
pub enum SchemaVersion {
    /// `sku`, `manufactured_qty`, `year`, `month`, `day`, `hour`.
    V1,
    /// v1 + `defect_qty`.
    V2,
    /// v2 + `sku_manufacturing_cost`.
    V3,
}

impl SchemaVersion {
    /// The schema text, as in `schemas/raw-data-in/`.
    pub fn text(self) -> &'static str {
        match self {
            SchemaVersion::V1 => include_str!("../../../schemas/raw-data-in/v1.avsc"),
            SchemaVersion::V2 => include_str!("../../../schemas/raw-data-in/v2.avsc"),
            SchemaVersion::V3 => include_str!("../../../schemas/raw-data-in/v3.avsc"),
        }
    }

    /// The parsed schema.
    pub fn schema(self) -> Result<Schema, apache_avro::Error> {
        Schema::parse_str(self.text())
    }

    /// The record as an Avro value of this version.
    pub fn value(self, r: &Record) -> Value {
        let mut fields = vec![
            ("sku".to_owned(), Value::String(r.sku.clone())),
            (
                "manufactured_qty".to_owned(),
                Value::Int(r.manufactured_qty),
            ),
            ("year".to_owned(), Value::Int(r.year)),
            ("month".to_owned(), Value::Int(r.month as i32)),
            ("day".to_owned(), Value::Int(r.day as i32)),
            ("hour".to_owned(), Value::Int(r.hour as i32)),
        ];
        if self >= SchemaVersion::V2 {
            fields.push((
                "defect_qty".to_owned(),
                Value::Union(1, Box::new(Value::Int(r.defect_qty))),
            ));
        }
        if self >= SchemaVersion::V3 {
            // Unit costs stay far below i32::MAX (about 2,000 after 25 years of at most +10 %).
            let cost = i32::try_from(r.unit_cost).unwrap_or(i32::MAX);
            fields.push((
                "sku_manufacturing_cost".to_owned(),
                Value::Union(1, Box::new(Value::Int(cost))),
            ));
        }
        Value::Record(fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Model;

    #[test]
    fn every_version_encodes_and_reads_back_with_v3() {
        let record = Model::new(3, 2).sweep().next().unwrap();
        let v3 = SchemaVersion::V3.schema().unwrap();
        for version in [SchemaVersion::V1, SchemaVersion::V2, SchemaVersion::V3] {
            let schema = version.schema().unwrap();
            let bytes = rivulet_common::avro::encode(1, &schema, version.value(&record)).unwrap();
            let (_, mut body) = rivulet_common::avro::unframe(&bytes).unwrap();
            let value = apache_avro::reader::datum::GenericDatumReader::builder(&schema)
                .reader_schema(&v3)
                .build()
                .unwrap()
                .read_value(&mut body)
                .unwrap();
            let Value::Record(fields) = value else {
                panic!("record")
            };
            let defect = &fields[6].1;
            let cost = &fields[7].1;
            match version {
                SchemaVersion::V1 => assert_eq!(
                    (defect, cost),
                    (
                        &Value::Union(0, Box::new(Value::Null)),
                        &Value::Union(0, Box::new(Value::Null))
                    )
                ),
                SchemaVersion::V2 => assert_eq!(
                    defect,
                    &Value::Union(1, Box::new(Value::Int(record.defect_qty)))
                ),
                SchemaVersion::V3 => assert_eq!(
                    cost,
                    &Value::Union(1, Box::new(Value::Int(record.unit_cost as i32)))
                ),
            }
        }
    }
}
