//! Ground truth without a broker: a month written partly by v1, v2 and v3 producers, framed and
//! decoded as on the wire (resolved to the v3 reader schema), aggregates to exactly what the
//! generator's model says.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use apache_avro::reader::datum::GenericDatumReader;
use rivulet_backend::aggregate::Aggregator;
use rivulet_common::avro;
use rivulet_contracts::Version;
use rivulet_contracts::raw::{self, RawRecord};
use rivulet_contracts::summary::MonthKey;
use rivulet_testkit::model::Model;

#[test]
fn a_month_mixing_v1_v2_and_v3_aggregates_exactly() {
    let model = Model::new(11, 4);
    let reader = raw::schema(Version::V3).unwrap();
    let month: Vec<_> = model
        .sweep()
        .take_while(|r| (r.year, r.month) == (2000, 1))
        .collect();
    assert_eq!(month.len(), 31 * 12 * 4);
    let mut agg = Aggregator::default();
    let versions = [Version::V1, Version::V2, Version::V3];
    for (i, record) in month.iter().enumerate() {
        // The producers upgrade during the month: first third v1, then v2, then v3.
        let version = versions[i * 3 / month.len()];
        let writer = raw::schema(version).unwrap();
        let bytes = avro::encode(i as u32, &writer, raw::value(version, &record.raw())).unwrap();
        let (_, mut body) = avro::unframe(&bytes).unwrap();
        let value = GenericDatumReader::builder(&writer)
            .reader_schema(&reader)
            .build()
            .unwrap()
            .read_value(&mut body)
            .unwrap();
        agg.add(&RawRecord::from_value(&value).unwrap()).unwrap();
    }
    for (sku_index, sku) in model.skus.iter().enumerate() {
        let mine: Vec<(usize, &_)> = month
            .iter()
            .enumerate()
            .filter(|(_, r)| r.sku_index == sku_index)
            .collect();
        let version_of = |i: usize| versions[i * 3 / month.len()];
        let qty: i64 = mine
            .iter()
            .map(|(_, r)| i64::from(r.manufactured_qty))
            .sum();
        let defects: i64 = mine
            .iter()
            .filter(|(i, _)| version_of(*i) >= Version::V2)
            .map(|(_, r)| i64::from(r.defect_qty))
            .sum();
        let cost: i64 = mine
            .iter()
            .filter(|(i, _)| version_of(*i) == Version::V3)
            .map(|(_, r)| i64::from(r.manufactured_qty) * r.unit_cost)
            .sum();
        let totals = agg
            .get(&MonthKey {
                year: 2000,
                month: 1,
                sku: sku.name.clone(),
            })
            .unwrap();
        assert_eq!(totals.manufactured_qty, qty);
        assert_eq!(totals.defect_qty, Some(defects));
        assert_eq!(totals.production_cost, Some(cost));
        assert_eq!(totals.records, mine.len() as i64);
        assert_eq!(
            totals.records_with_defects,
            mine.iter()
                .filter(|(i, _)| version_of(*i) >= Version::V2)
                .count() as i64
        );
        assert_eq!(
            totals.records_with_cost,
            mine.iter()
                .filter(|(i, _)| version_of(*i) == Version::V3)
                .count() as i64
        );
    }
}
