//! In-process decode + aggregate, no broker: the per-record work of the backend on one core.
//! Used by `scripts/bench-decode`. Usage: `decode_aggregate [RECORDS] [RUNS]`.

#![allow(clippy::unwrap_used)] // a benchmark tool: a failed unwrap is a failed run

use std::time::Instant;

use apache_avro::reader::datum::GenericDatumReader;
use rivulet_backend::aggregate::Aggregator;
use rivulet_backend::decode::Decoder;
use rivulet_common::RegistryArgs;
use rivulet_contracts::Version;
use rivulet_contracts::raw::{self, RawRecord};
use rivulet_testkit::model::Model;

fn main() {
    let mut args = std::env::args().skip(1);
    let count: usize = args.next().map_or(2_118_240, |s| s.parse().unwrap());
    let runs: usize = args.next().map_or(3, |s| s.parse().unwrap());
    let versions = [Version::V1, Version::V2, Version::V3];
    let schemas: Vec<_> = versions.iter().map(|v| raw::schema(*v).unwrap()).collect();
    let reader_schema = raw::schema(Version::V3).unwrap();
    // A third of the records in each version, framed as on the wire (ids 1, 2, 3).
    let model = Model::new(1, 20);
    let payloads: Vec<Vec<u8>> = model
        .sweep()
        .take(count)
        .enumerate()
        .map(|(i, r)| {
            let v = i % 3;
            rivulet_common::avro::encode(
                v as u32 + 1,
                &schemas[v],
                raw::value(versions[v], &r.raw()),
            )
            .unwrap()
        })
        .collect();
    let readers: Vec<_> = schemas
        .iter()
        .map(|w| {
            GenericDatumReader::builder(w)
                .reader_schema(&reader_schema)
                .build()
                .unwrap()
        })
        .collect();
    // The backend's decoder, taught the three writer schemas (no registry is asked).
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let settings = RegistryArgs::new("http://127.0.0.1:9").settings().unwrap();
    let mut decoder = Decoder::new(settings, runtime.handle().clone(), reader_schema.clone());
    for (i, schema) in schemas.iter().enumerate() {
        decoder.know(i as u32 + 1, schema.clone()).unwrap();
    }
    println!("records={count} versions=v1/v2/v3 mixed, validate + aggregate, 1 thread");
    for (label, specialised) in [
        ("generic apache-avro resolution", false),
        ("backend decoder (specialised plans)", true),
    ] {
        let mut rates = Vec::new();
        for run in 1..=runs {
            let started = Instant::now();
            let mut aggregator = Aggregator::default();
            for payload in &payloads {
                let record = if specialised {
                    decoder.decode(Some(payload)).unwrap()
                } else {
                    let (id, mut body) = rivulet_common::avro::unframe(payload).unwrap();
                    let value = readers[id as usize - 1].read_value(&mut body).unwrap();
                    RawRecord::from_value(&value).unwrap()
                };
                let _ = aggregator.add(&record);
            }
            let secs = started.elapsed().as_secs_f64();
            let rate = count as f64 / secs;
            println!(
                "{label} run {run}: {secs:.3} s  {rate:.0} records/s  {:.3} us/record  keys={}",
                secs * 1e6 / count as f64,
                aggregator.len()
            );
            rates.push(rate);
        }
        rates.sort_by(f64::total_cmp);
        println!(
            "{label}: median {:.0} records/s (min {:.0}, max {:.0})",
            rates[rates.len() / 2],
            rates[0],
            rates[rates.len() - 1]
        );
    }
    println!("target for the backend decoder: >= 4,000,000 records/s on one core");
}
