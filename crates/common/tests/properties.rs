//! Property tests of the Confluent framing and Avro decode path every consumer runs on bytes
//! from outside: arbitrary, truncated and mutated messages are refused with a reason, never a
//! panic, and valid ones decode to what was written. `PROPTEST_CASES` sets the number of cases
//! (`scripts/fuzz` runs them for minutes); failures found are kept in `proptest-regressions/`.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use apache_avro::types::Value;
use proptest::prelude::*;
use rivulet_common::avro::{self, Resolver};
use rivulet_contracts::Version;
use rivulet_contracts::raw::{self, RawRecord};

/// A resolver that knows the raw v1, v2 and v3 schemas under ids 1, 2 and 3 (no registry call:
/// the URL points nowhere and is never used for these ids).
fn resolver(runtime: &tokio::runtime::Runtime) -> Resolver {
    let settings = schema_registry_converter::async_impl::schema_registry::SrSettings::new(
        "http://127.0.0.1:9".into(),
    );
    let mut resolver = Resolver::new(
        settings,
        runtime.handle().clone(),
        raw::reader_schema().unwrap(),
    );
    for (id, version) in [(1, Version::V1), (2, Version::V2), (3, Version::V3)] {
        resolver.insert(id, raw::schema(version).unwrap()).unwrap();
    }
    resolver
}

fn record() -> impl Strategy<Value = (u32, RawRecord)> {
    (
        1u32..=3,
        "[A-Za-z0-9_-]{1,20}",
        any::<i32>(),
        1900i32..2100,
        1u32..=12,
        1u32..=28,
        0u32..24,
        proptest::option::of(any::<i32>()),
        proptest::option::of(any::<i32>()),
    )
        .prop_map(|(id, sku, qty, year, month, day, hour, defects, cost)| {
            let record = RawRecord {
                sku,
                manufactured_qty: qty,
                year,
                month,
                day,
                hour,
                defect_qty: defects.filter(|_| id >= 2),
                unit_cost: cost.filter(|_| id >= 3),
            };
            (id, record)
        })
}

fn version(id: u32) -> Version {
    [Version::V1, Version::V2, Version::V3][id as usize - 1]
}

proptest! {
    #[test]
    fn unframe_splits_or_refuses_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        match avro::unframe(&bytes) {
            Ok((id, body)) => {
                prop_assert_eq!(bytes[0], 0);
                prop_assert_eq!(id, u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]));
                prop_assert_eq!(body, &bytes[5..]);
            }
            Err(_) => prop_assert!(bytes.len() < 5 || bytes[0] != 0),
        }
    }

    #[test]
    fn arbitrary_bodies_never_panic(id in 1u32..=3, body in proptest::collection::vec(any::<u8>(), 0..256)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let mut resolver = resolver(&runtime);
        let mut framed = vec![0];
        framed.extend(id.to_be_bytes());
        framed.extend(body);
        let _ = resolver.decode(Some(&framed));
    }

    #[test]
    fn valid_records_round_trip_and_damaged_ones_are_refused_or_read(
        (id, record) in record(),
        cut in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
        mask in 1u8..=255,
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let mut resolver = resolver(&runtime);
        let schema = raw::schema(version(id)).unwrap();
        let bytes = avro::encode(id, &schema, raw::value(version(id), &record)).unwrap();
        let decoded = resolver.decode(Some(&bytes)).unwrap();
        let Value::Record(fields) = &decoded else { panic!("{decoded:?}") };
        prop_assert_eq!(&fields[0].1, &Value::String(record.sku.clone()));
        // Any prefix and any one damaged byte: an answer, never a panic.
        let prefix = &bytes[..cut.index(bytes.len())];
        let _ = resolver.decode(Some(prefix));
        // (The body only: a damaged id is an unknown one, a registry question, not decoding.)
        let mut damaged = bytes.clone();
        let at = 5 + flip.index(damaged.len() - 5);
        damaged[at] ^= mask;
        let _ = resolver.decode(Some(&damaged));
    }

    /// A length prefix claiming gigabytes is refused without reserving them.
    #[test]
    fn huge_length_prefixes_are_refused(len in (avro::MAX_DECODE_ALLOCATION as u64 + 1)..(1u64 << 40)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let mut resolver = resolver(&runtime);
        let mut framed = vec![0, 0, 0, 0, 1];
        // The SKU string's length, zig-zag varint encoded.
        let mut n = len << 1;
        while n >= 0x80 {
            framed.push((n as u8) | 0x80);
            n >>= 7;
        }
        framed.push(n as u8);
        prop_assert!(resolver.decode(Some(&framed)).is_err());
        prop_assert_eq!(avro::bound_allocations(), avro::MAX_DECODE_ALLOCATION);
    }
}
