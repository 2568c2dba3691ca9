//! What one record's bytes are, and how they are shown: Confluent-framed Avro decoded with the
//! schema it was written with, JSON as it is, anything else as base64. Pure, apart from the
//! registry lookups behind [`Writers`].

use std::collections::HashMap;

use apache_avro::Schema;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::types::Value as Avro;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

/// Where a record sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Create (or log-append) time in milliseconds since the epoch, when the broker gave one.
    pub timestamp: Option<i64>,
}

/// Why a writer schema could not be had.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Missing {
    /// The registry answered that it has no schema with this id.
    #[error("schema id {0} is not registered")]
    Unknown(u32),
    /// The registry could not be asked (down, slow, refused the credentials).
    #[error("schema registry unavailable: {0}")]
    Unavailable(String),
    /// The registry's text is not an Avro schema this tool can parse.
    #[error("schema id {id} is not a usable Avro schema: {why}")]
    Unparsable {
        /// The id.
        id: u32,
        /// The parser's words.
        why: String,
    },
}

/// Writer schemas by id, fetched once each. An unavailable registry is asked again for the
/// next record; a definite answer (unknown id, unparsable text) is kept.
pub struct Writers<F> {
    fetch: F,
    known: HashMap<u32, Result<Schema, Missing>>,
}

impl<F: FnMut(u32) -> Result<String, Missing>> Writers<F> {
    /// Writers fetched with `fetch` (the schema's text for an id).
    pub fn new(fetch: F) -> Self {
        Self {
            fetch,
            known: HashMap::new(),
        }
    }

    fn get(&mut self, id: u32) -> Result<&Schema, Missing> {
        if !self.known.contains_key(&id) {
            let parsed = match (self.fetch)(id) {
                Ok(text) => Schema::parse_str(&text).map_err(|e| Missing::Unparsable {
                    id,
                    why: e.to_string(),
                }),
                Err(Missing::Unavailable(why)) => return Err(Missing::Unavailable(why)),
                Err(definite) => Err(definite),
            };
            self.known.insert(id, parsed);
        }
        match &self.known[&id] {
            Ok(schema) => Ok(schema),
            Err(e) => Err(e.clone()),
        }
    }
}

/// One record as a JSON line: `partition`, `offset`, `timestamp`, `key`, `schema_id`, `value`,
/// `format` (`avro`, `json`, `bytes`, `tombstone`), and for a value that could not be decoded
/// `error` with the reason and `value_base64` with its bytes.
pub fn line<F: FnMut(u32) -> Result<String, Missing>>(
    at: Position,
    key: Option<&[u8]>,
    payload: Option<&[u8]>,
    writers: &mut Writers<F>,
) -> Value {
    let mut out = Map::new();
    out.insert("partition".into(), at.partition.into());
    out.insert("offset".into(), at.offset.into());
    out.insert("timestamp".into(), at.timestamp.into());
    match key {
        None => out.insert("key".into(), Value::Null),
        Some(k) => match std::str::from_utf8(k) {
            Ok(text) => out.insert("key".into(), text.into()),
            Err(_) => {
                out.insert("key".into(), Value::Null);
                out.insert("key_base64".into(), STANDARD.encode(k).into())
            }
        },
    };
    let (format, schema_id, value, error) = value(payload, writers);
    out.insert("schema_id".into(), schema_id.into());
    out.insert("value".into(), value);
    out.insert("format".into(), format.into());
    if let Some(why) = error {
        out.insert("error".into(), why.into());
        out.insert(
            "value_base64".into(),
            STANDARD.encode(payload.unwrap_or_default()).into(),
        );
    }
    Value::Object(out)
}

type Shown = (&'static str, Option<u32>, Value, Option<String>);

fn value<F: FnMut(u32) -> Result<String, Missing>>(
    payload: Option<&[u8]>,
    writers: &mut Writers<F>,
) -> Shown {
    let Some(bytes) = payload else {
        return ("tombstone", None, Value::Null, None);
    };
    // The Confluent frame: magic byte 0, a 4-byte big-endian schema id, the Avro body. JSON
    // never starts with a NUL byte, so nothing else is mistaken for a frame.
    if let [0, a, b, c, d, body @ ..] = bytes {
        let id = u32::from_be_bytes([*a, *b, *c, *d]);
        let schema = match writers.get(id) {
            Ok(schema) => schema,
            Err(missing) => return ("avro", Some(id), Value::Null, Some(missing.to_string())),
        };
        let mut reader = body;
        let read = GenericDatumReader::builder(schema)
            .build()
            .and_then(|r| r.read_value(&mut reader));
        return match read {
            Ok(_) if !reader.is_empty() => (
                "avro",
                Some(id),
                Value::Null,
                Some(format!(
                    "{} bytes left after the value written with schema id {id}",
                    reader.len()
                )),
            ),
            Ok(decoded) => ("avro", Some(id), to_json(decoded), None),
            Err(e) => (
                "avro",
                Some(id),
                Value::Null,
                Some(format!("not a value of schema id {id}: {e}")),
            ),
        };
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(json) => ("json", None, json, None),
        Err(_) => (
            "bytes",
            None,
            json!({"base64": STANDARD.encode(bytes)}),
            None,
        ),
    }
}

/// An Avro value as plain JSON: unions unwrapped, enums as their symbol, bytes and fixed as
/// base64 strings, logical types as their underlying number, non-finite floats as strings.
pub fn to_json(value: Avro) -> Value {
    let float = |f: f64| {
        serde_json::Number::from_f64(f).map_or_else(|| Value::String(f.to_string()), Value::Number)
    };
    match value {
        Avro::Null => Value::Null,
        Avro::Boolean(b) => b.into(),
        Avro::Int(i) | Avro::Date(i) | Avro::TimeMillis(i) => i.into(),
        Avro::Long(l)
        | Avro::TimeMicros(l)
        | Avro::TimestampMillis(l)
        | Avro::TimestampMicros(l)
        | Avro::TimestampNanos(l)
        | Avro::LocalTimestampMillis(l)
        | Avro::LocalTimestampMicros(l)
        | Avro::LocalTimestampNanos(l) => l.into(),
        Avro::Float(f) => float(f64::from(f)),
        Avro::Double(d) => float(d),
        Avro::Bytes(b) | Avro::Fixed(_, b) => STANDARD.encode(b).into(),
        Avro::String(s) | Avro::Enum(_, s) => s.into(),
        Avro::Union(_, inner) => to_json(*inner),
        Avro::Array(items) => items.into_iter().map(to_json).collect(),
        Avro::Map(entries) => {
            Value::Object(entries.into_iter().map(|(k, v)| (k, to_json(v))).collect())
        }
        Avro::Record(fields) => {
            Value::Object(fields.into_iter().map(|(k, v)| (k, to_json(v))).collect())
        }
        Avro::Uuid(u) => u.as_hyphenated().to_string().into(),
        Avro::Decimal(d) => Vec::<u8>::try_from(&d)
            .map(|b| STANDARD.encode(b).into())
            .unwrap_or(Value::Null),
        Avro::BigDecimal(d) => d.to_string().into(),
        Avro::Duration(d) => STANDARD.encode(<[u8; 12]>::from(d)).into(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests
    use super::*;

    const SCHEMA: &str = r#"{"type":"record","name":"R","fields":[
        {"name":"n","type":"long"},{"name":"s","type":["null","string"]},
        {"name":"b","type":"bytes"},{"name":"e","type":{"type":"enum","name":"E","symbols":["A","B"]}},
        {"name":"m","type":{"type":"map","values":"double"}}]}"#;

    fn frame(id: u32, body: &[u8]) -> Vec<u8> {
        let mut out = vec![0];
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    fn body() -> Vec<u8> {
        let schema = Schema::parse_str(SCHEMA).unwrap();
        let value = Avro::Record(vec![
            ("n".into(), Avro::Long(-3)),
            (
                "s".into(),
                Avro::Union(1, Box::new(Avro::String("x".into()))),
            ),
            ("b".into(), Avro::Bytes(vec![1, 2, 255])),
            ("e".into(), Avro::Enum(1, "B".into())),
            (
                "m".into(),
                Avro::Map([("k".to_owned(), Avro::Double(0.5))].into()),
            ),
        ]);
        rivulet_common::avro::encode(1, &schema, value).unwrap()[5..].to_vec()
    }

    const AT: Position = Position {
        partition: 2,
        offset: 7,
        timestamp: Some(1000),
    };

    fn registry(id: u32) -> Result<String, Missing> {
        match id {
            1 => Ok(SCHEMA.into()),
            2 => Ok("{not a schema".into()),
            9 => Err(Missing::Unavailable("connection refused".into())),
            _ => Err(Missing::Unknown(id)),
        }
    }

    #[test]
    fn avro_is_decoded_with_its_writer_schema() {
        let mut writers = Writers::new(registry);
        let got = line(AT, Some(b"k"), Some(&frame(1, &body())), &mut writers);
        assert_eq!(
            got,
            json!({"partition": 2, "offset": 7, "timestamp": 1000, "key": "k", "schema_id": 1,
                   "format": "avro",
                   "value": {"n": -3, "s": "x", "b": "AQL/", "e": "B", "m": {"k": 0.5}}})
        );
    }

    #[test]
    fn what_cannot_be_decoded_says_why_and_keeps_its_bytes() {
        let mut writers = Writers::new(registry);
        let cases = [
            (frame(5, &body()), "schema id 5 is not registered"),
            (frame(2, &body()), "not a usable Avro schema"),
            (
                frame(9, &body()),
                "registry unavailable: connection refused",
            ),
            (frame(1, &[0x80]), "not a value of schema id 1"),
            (frame(1, &[body(), vec![0]].concat()), "1 bytes left"),
        ];
        for (payload, why) in cases {
            let got = line(AT, None, Some(&payload), &mut writers);
            assert!(got["error"].as_str().unwrap().contains(why), "{got}");
            assert_eq!(got["value"], Value::Null);
            assert_eq!(
                STANDARD
                    .decode(got["value_base64"].as_str().unwrap())
                    .unwrap(),
                payload
            );
        }
    }

    #[test]
    fn an_unavailable_registry_is_asked_again_and_a_definite_answer_is_kept() {
        let mut calls = 0;
        let mut writers = Writers::new(|id| {
            calls += 1;
            if calls == 1 {
                Err(Missing::Unavailable("down".into()))
            } else {
                registry(id)
            }
        });
        let framed = frame(1, &body());
        assert!(line(AT, None, Some(&framed), &mut writers)["error"].is_string());
        assert!(line(AT, None, Some(&framed), &mut writers)["error"].is_null());
        assert!(line(AT, None, Some(&framed), &mut writers)["error"].is_null());
        drop(writers);
        assert_eq!(calls, 2);
    }

    #[test]
    fn json_bytes_and_tombstones() {
        let mut writers = Writers::new(registry);
        let json = line(AT, Some(&[0xff]), Some(br#"{"a":[1]}"#), &mut writers);
        assert_eq!(
            (json["format"].as_str(), &json["value"]),
            (Some("json"), &json!({"a": [1]}))
        );
        assert_eq!(
            (&json["key"], json["key_base64"].as_str()),
            (&Value::Null, Some("/w=="))
        );
        let bytes = line(AT, None, Some(b"\x01\x02not json"), &mut writers);
        assert_eq!(bytes["format"], "bytes");
        assert_eq!(
            bytes["value"]["base64"],
            STANDARD.encode(b"\x01\x02not json")
        );
        assert!(bytes["error"].is_null());
        let gone = line(AT, Some(b"k"), None, &mut writers);
        assert_eq!(
            (gone["format"].as_str(), &gone["value"]),
            (Some("tombstone"), &Value::Null)
        );
        // Too short to be a frame: four bytes after the magic byte are needed.
        let short = line(AT, None, Some(&[0, 0, 1]), &mut writers);
        assert_eq!(short["format"], "bytes");
    }
}
