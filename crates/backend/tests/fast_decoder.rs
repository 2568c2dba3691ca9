//! Property tests: the specialised decoder ([`rivulet_backend::fast::Plan`]) agrees with
//! apache-avro's generic resolution on random records of every writer schema it covers, and
//! never accepts bytes apache-avro would refuse or read differently.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use apache_avro::Schema;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::types::Value;
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use rivulet_backend::fast::Plan;
use rivulet_contracts::Version;
use rivulet_contracts::raw::{self, Invalid, RawRecord};

const READER: &str = include_str!("../../../schemas/raw-data-in/v3.avsc");

/// A field of a synthetic writer schema: name and JSON type.
type Field = (&'static str, &'static str);

/// The required fields as every registered version writes them.
fn required() -> Vec<Field> {
    vec![
        ("sku", r#""string""#),
        ("manufactured_qty", r#""int""#),
        ("year", r#""int""#),
        ("month", r#""int""#),
        ("day", r#""int""#),
        ("hour", r#""int""#),
    ]
}

fn writer(fields: &[Field]) -> Schema {
    let fields: Vec<String> = fields
        .iter()
        .map(|f| format!(r#"{{"name":"{}","type":{}}}"#, f.0, f.1))
        .collect();
    Schema::parse_str(&format!(
        r#"{{"type":"record","name":"RawWidget","namespace":"io.rivulet.widgets","fields":[{}]}}"#,
        fields.join(",")
    ))
    .unwrap()
}

/// Writer schemas beyond the three registered versions: reordered fields, a reversed union, an
/// optional field written as plain `int` or `null`, and extra fields of every skippable type.
fn synthetic() -> Vec<Schema> {
    let base = |extra: Vec<Field>, defects: &'static str, cost: &'static str| {
        // The required fields in reverse order, the optional ones and the extras between them.
        let mut fields = required();
        fields.reverse();
        fields.insert(3, ("defect_qty", defects));
        fields.insert(5, ("sku_manufacturing_cost", cost));
        fields.splice(2..2, extra);
        writer(&fields)
    };
    vec![
        base(vec![], r#"["int","null"]"#, r#""int""#),
        base(vec![], r#""null""#, r#"["null","int"]"#),
        base(
            vec![
                ("flag", r#""boolean""#),
                ("big", r#""long""#),
                ("ratio", r#""float""#),
                ("precise", r#""double""#),
                ("blob", r#""bytes""#),
                ("note", r#""string""#),
                ("maybe", r#"["null","string","long"]"#),
                ("nothing", r#""null""#),
            ],
            r#"["null","int"]"#,
            r#"["int","null"]"#,
        ),
    ]
}

/// A random value of `schema` (fields by type), edge values often.
fn random_value(rng: &mut ChaCha8Rng, schema: &Schema) -> Value {
    match schema {
        Schema::Null => Value::Null,
        Schema::Boolean => Value::Boolean(rng.random()),
        Schema::Int => Value::Int(match rng.random_range(0..4) {
            0 => *[0, 1, -1, i32::MIN, i32::MAX, 12, 13, 29, 31]
                .get(rng.random_range(0..9))
                .unwrap(),
            1 => rng.random_range(-5..40),
            _ => rng.random(),
        }),
        Schema::Long => Value::Long(rng.random()),
        Schema::Float => Value::Float(rng.random()),
        Schema::Double => Value::Double(rng.random()),
        Schema::Bytes => Value::Bytes((0..rng.random_range(0..20)).map(|_| rng.random()).collect()),
        Schema::String => {
            let alphabet = ['S', 'K', 'U', '_', '0', '9', 'é', '漢', '🦀', ' '];
            let n = rng.random_range(0..16);
            Value::String(
                (0..n)
                    .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                    .collect(),
            )
        }
        Schema::Union(u) => {
            let i = rng.random_range(0..u.variants().len());
            Value::Union(i as u32, Box::new(random_value(rng, &u.variants()[i])))
        }
        Schema::Record(r) => Value::Record(
            r.fields
                .iter()
                .map(|f| {
                    let value = match plausible(rng, &f.name) {
                        Some(v) if rng.random_range(0..10) < 9 => fit(v, &f.schema, rng),
                        _ => random_value(rng, &f.schema),
                    };
                    (f.name.clone(), value)
                })
                .collect(),
        ),
        other => panic!("no generator for {other:?}"),
    }
}

/// A value a real producer would write for a raw field, so most records are valid.
fn plausible(rng: &mut ChaCha8Rng, name: &str) -> Option<i32> {
    Some(match name {
        "year" => rng.random_range(2000..=2024),
        "month" => rng.random_range(1..=12),
        "day" => rng.random_range(1..=28),
        "hour" => rng.random_range(8..=19),
        "manufactured_qty" => rng.random_range(50..=100),
        "defect_qty" => rng.random_range(0..=50),
        "sku_manufacturing_cost" => rng.random_range(100..=400),
        _ => return None,
    })
}

/// `v` in the shape of `schema`: an int, or the int branch of a union (null sometimes).
fn fit(v: i32, schema: &Schema, rng: &mut ChaCha8Rng) -> Value {
    match schema {
        Schema::Union(u) => {
            let int = u.variants().iter().position(|s| *s == Schema::Int);
            match int {
                Some(i) if rng.random_range(0..4) > 0 => {
                    Value::Union(i as u32, Box::new(Value::Int(v)))
                }
                _ => random_value(rng, schema),
            }
        }
        Schema::Int => Value::Int(v),
        other => random_value(rng, other),
    }
}

fn encode(schema: &Schema, value: Value) -> Vec<u8> {
    let mut out = Vec::new();
    apache_avro::writer::datum::GenericDatumWriter::builder(schema)
        .build()
        .unwrap()
        .write_value(&mut out, value)
        .unwrap();
    out
}

/// apache-avro's answer: resolution, then the same validation as the fast path.
fn generic(writer: &Schema, reader: &Schema, bytes: &[u8]) -> Option<Result<RawRecord, Invalid>> {
    let mut body = bytes;
    let value = GenericDatumReader::builder(writer)
        .reader_schema(reader)
        .build()
        .unwrap()
        .read_value(&mut body)
        .ok()?;
    Some(RawRecord::from_value(&value))
}

fn writers() -> Vec<Schema> {
    let mut all: Vec<Schema> = [Version::V1, Version::V2, Version::V3]
        .iter()
        .map(|v| raw::schema(*v).unwrap())
        .collect();
    all.extend(synthetic());
    all
}

#[test]
fn random_records_decode_exactly_as_apache_avro_does() {
    let reader = Schema::parse_str(READER).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for writer in writers() {
        let plan = Plan::compile(&writer, &reader).expect("a plan for every covered writer");
        let (mut valid, mut invalid) = (0, 0);
        for _ in 0..20_000 {
            let bytes = encode(&writer, random_value(&mut rng, &writer));
            let fast = plan
                .decode(&bytes)
                .expect("well-formed bytes always decode");
            let want = generic(&writer, &reader, &bytes).expect("apache-avro reads them");
            let got = RawRecord::checked(fast);
            match &want {
                Ok(_) => valid += 1,
                Err(_) => invalid += 1,
            }
            assert_eq!(got, want, "writer {writer:?}, bytes {bytes:?}");
        }
        assert!(
            valid > 1_000 && invalid > 1_000,
            "both outcomes covered: {valid} / {invalid}"
        );
    }
}

#[test]
fn decoding_into_a_reused_record_forgets_the_previous_one() {
    // The pipeline decodes every record into one buffer: records of every writer, mixed, must
    // come out exactly as a fresh decode gives them (nothing left over from the one before,
    // such as a v3 cost under a v1 record).
    let reader = Schema::parse_str(READER).unwrap();
    let plans: Vec<(Schema, Plan)> = writers()
        .into_iter()
        .map(|w| {
            let plan = Plan::compile(&w, &reader).unwrap();
            (w, plan)
        })
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut reused = raw::Fields::default();
    for _ in 0..20_000 {
        let (writer, plan) = &plans[rng.random_range(0..plans.len())];
        let bytes = encode(writer, random_value(&mut rng, writer));
        plan.decode_into(&bytes, &mut reused).unwrap();
        assert_eq!(
            Some(&reused),
            plan.decode(&bytes).as_ref(),
            "writer {writer:?}"
        );
    }
}

#[test]
fn corrupted_bytes_are_never_read_differently() {
    let reader = Schema::parse_str(READER).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let (mut fast_ok, mut fast_refused) = (0, 0);
    for writer in writers() {
        let plan = Plan::compile(&writer, &reader).unwrap();
        for _ in 0..20_000 {
            let mut bytes = encode(&writer, random_value(&mut rng, &writer));
            match rng.random_range(0..4) {
                0 => bytes.truncate(rng.random_range(0..bytes.len())),
                1 => {
                    let at = rng.random_range(0..bytes.len());
                    bytes[at] = rng.random();
                }
                2 => bytes.extend((0..rng.random_range(1..8)).map(|_| rng.random::<u8>())),
                _ => bytes = (0..rng.random_range(0..40)).map(|_| rng.random()).collect(),
            }
            match plan.decode(&bytes) {
                Some(fields) => {
                    fast_ok += 1;
                    let want = generic(&writer, &reader, &bytes);
                    assert_eq!(Some(RawRecord::checked(fields)), want, "bytes {bytes:?}");
                }
                None => fast_refused += 1,
            }
        }
    }
    assert!(
        fast_ok > 10_000 && fast_refused > 10_000,
        "{fast_ok} read, {fast_refused} refused"
    );
}

#[test]
fn uncovered_schemas_get_no_plan() {
    let reader = Schema::parse_str(READER).unwrap();
    let v1 = raw::schema(Version::V1).unwrap();
    let mut long_qty = required();
    long_qty[1].1 = r#""long""#;
    let mut nested = required();
    nested.push(("where", r#"{"type":"record","name":"Site","fields":[]}"#));
    let (long_qty, nested) = (writer(&long_qty), writer(&nested));
    assert!(
        Plan::compile(&long_qty, &reader).is_none(),
        "writer long for a reader int"
    );
    assert!(
        Plan::compile(&nested, &reader).is_none(),
        "a nested record to skip"
    );
    assert!(Plan::compile(&reader, &v1).is_none(), "another reader");
}
