//! The widget contracts' wire format, byte for byte: one framed record per topic and schema
//! version, checked against `schemas/golden/` (see `rivulet_testkit::golden`). The files were
//! written by the code as it was before the contracts moved into one crate; the same bytes must
//! come out after.

#![allow(clippy::unwrap_used)] // tests

use apache_avro::Schema;
use rivulet_backend::aggregate::{MonthKey, Totals};
use rivulet_backend::summary::SummaryVersion;
use rivulet_common::avro::encode;
use rivulet_raw_data_generator::model::Model;
use rivulet_raw_data_generator::wire::SchemaVersion;
use rivulet_testkit::golden::{check, check_text};

#[test]
fn raw_records_of_every_version() {
    // The first record of a seeded sweep: the model is reproducible (ChaCha8), so this also pins
    // the generator's first record.
    let record = Model::new(7, 3).sweep().next().unwrap();
    for (version, id, name) in [
        (SchemaVersion::V1, 1, "v1"),
        (SchemaVersion::V2, 2, "v2"),
        (SchemaVersion::V3, 3, "v3"),
    ] {
        let schema = version.schema().unwrap();
        let framed = encode(id, &schema, version.value(&record)).unwrap();
        check(&format!("raw-data-in/{name}.hex"), &framed);
    }
}

#[test]
fn summaries_of_every_version_and_their_key() {
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
    let unknown = Totals {
        defect_qty: None,
        production_cost: None,
        records_with_defects: 0,
        records_with_cost: 0,
        ..totals
    };
    for (version, id, name) in [
        (SummaryVersion::V1, 11, "v1"),
        (SummaryVersion::V2, 12, "v2"),
        (SummaryVersion::V3, 13, "v3"),
    ] {
        let schema = version.schema().unwrap();
        let framed = encode(id, &schema, version.value(&key, &totals)).unwrap();
        check(&format!("summary-stats/{name}.hex"), &framed);
        let framed = encode(id, &schema, version.value(&key, &unknown)).unwrap();
        check(&format!("summary-stats/{name}-unknown.hex"), &framed);
    }
    check_text("summary-stats/key.txt", &format!("{}\n", key.kafka_key()));
}

#[test]
fn base_costs() {
    let schema = Schema::parse_str(rivulet_raw_data_generator::costs::SCHEMA).unwrap();
    let framed = encode(
        21,
        &schema,
        rivulet_raw_data_generator::costs::value(2003, 311),
    )
    .unwrap();
    check("base-costs/v1.hex", &framed);
}
