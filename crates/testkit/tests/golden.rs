//! The widget contracts' wire format, byte for byte: one framed record per topic and schema
//! version, checked against `schemas/golden/` (see `rivulet_testkit::golden`). The files were
//! written by the code as it was before the contracts moved into `rivulet-contracts` (the
//! generator's `wire`, the backend's `summary`, the generator's base-cost writer); the same
//! bytes come out of the contracts crate.

#![allow(clippy::unwrap_used)] // tests

use rivulet_common::avro::encode;
use rivulet_contracts::summary::{self, MonthKey, Totals};
use rivulet_contracts::{Version, base_cost, raw};
use rivulet_testkit::golden::{check, check_text};
use rivulet_testkit::model::Model;

#[test]
fn raw_records_of_every_version() {
    // The first record of a seeded sweep: the model is reproducible (ChaCha8), so this also pins
    // the generator's first record.
    let record = Model::new(7, 3).sweep().next().unwrap().raw();
    for (version, id) in [(Version::V1, 1), (Version::V2, 2), (Version::V3, 3)] {
        let schema = raw::schema(version).unwrap();
        let framed = encode(id, &schema, raw::value(version, &record)).unwrap();
        check(&format!("raw-data-in/{version}.hex"), &framed);
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
    for (version, id) in [(Version::V1, 11), (Version::V2, 12), (Version::V3, 13)] {
        let schema = summary::schema(version).unwrap();
        let framed = encode(id, &schema, summary::value(version, &key, &totals)).unwrap();
        check(&format!("summary-stats/{version}.hex"), &framed);
        let framed = encode(id, &schema, summary::value(version, &key, &unknown)).unwrap();
        check(&format!("summary-stats/{version}-unknown.hex"), &framed);
    }
    check_text("summary-stats/key.txt", &format!("{}\n", key.kafka_key()));
}

#[test]
fn base_costs() {
    let schema = base_cost::schema().unwrap();
    let framed = encode(21, &schema, base_cost::value(2003, 311)).unwrap();
    check("base-costs/v1.hex", &framed);
    assert_eq!(base_cost::key(2003), "2003");
}

/// The generator's model pinned record by record: a change of the random streams (a new
/// `rand` or ChaCha version, a reordered draw) changes these lines.
#[test]
fn the_generator_model_is_pinned() {
    let model = Model::new(7, 3);
    let line = |r: &rivulet_testkit::model::Record| {
        format!(
            "{} {} {:04}-{:02}-{:02} {:02}h qty={} defects={} unit_cost={}\n",
            r.seq,
            r.sku,
            r.year,
            r.month,
            r.day,
            r.hour,
            r.manufactured_qty,
            r.defect_qty,
            r.unit_cost
        )
    };
    let mut text =
        String::from("# seed 7, 3 SKUs: sweep records (every 40,000th), then random draws\n");
    for r in model.sweep().step_by(40_000) {
        text.push_str(&line(&r));
    }
    for r in model.random().take(5) {
        text.push_str(&line(&r));
    }
    text.push_str(&format!("base costs: {:?}\n", &model.base_costs[..5]));
    check_text("raw-data-in/model-seed-7.txt", &text);
}
