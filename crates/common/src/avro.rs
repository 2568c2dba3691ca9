//! Confluent-framed Avro (magic byte 0, 4-byte big-endian schema id, Avro binary) through any
//! Confluent-compatible schema registry, reached only over HTTP with `schema_registry_converter`.
//!
//! Production producers never register schemas: `schemas apply` does that once per release, and
//! a producer looks its pinned schema up with [`lookup`] to learn the id.

use std::collections::HashMap;
use std::error::Error as _;
use std::time::Duration;

use apache_avro::Schema;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::types::Value;
use schema_registry_converter::async_impl::schema_registry::{
    SrSettings, get_schema_by_id, perform_sr_call,
};
use schema_registry_converter::schema_registry_common::{RawError, SrCall};
use tokio::runtime::Handle;

use crate::{Error, Result, Secret};

/// How to reach the schema registry.
#[derive(Clone, Debug, clap::Args)]
pub struct RegistryArgs {
    /// Schema registry base URL(s), comma-separated; later ones are tried when earlier ones fail.
    #[arg(
        long = "schema-registry-url",
        env = "SCHEMA_REGISTRY_URL",
        value_delimiter = ',',
        default_value = "http://localhost:8081"
    )]
    pub urls: Vec<String>,
    /// Bearer token for the registry.
    #[arg(
        long = "schema-registry-token",
        env = "SCHEMA_REGISTRY_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<Secret>,
    /// File holding the bearer token (a mounted Secret), instead of `--schema-registry-token`.
    #[arg(
        long = "schema-registry-token-file",
        env = "SCHEMA_REGISTRY_TOKEN_FILE",
        value_name = "PATH",
        value_parser = Secret::from_file,
        conflicts_with = "token"
    )]
    pub token_file: Option<Secret>,
    /// Basic-auth user for the registry (Confluent Cloud: the API key).
    #[arg(long = "schema-registry-user", env = "SCHEMA_REGISTRY_USER")]
    pub user: Option<String>,
    /// Basic-auth password for the registry (Confluent Cloud: the API secret).
    #[arg(
        long = "schema-registry-password",
        env = "SCHEMA_REGISTRY_PASSWORD",
        hide_env_values = true
    )]
    pub password: Option<Secret>,
    /// File holding the basic-auth password, instead of `--schema-registry-password`.
    #[arg(
        long = "schema-registry-password-file",
        env = "SCHEMA_REGISTRY_PASSWORD_FILE",
        value_name = "PATH",
        value_parser = Secret::from_file,
        conflicts_with = "password"
    )]
    pub password_file: Option<Secret>,
    /// Timeout of one registry call, in seconds.
    #[arg(
        long = "schema-registry-timeout-secs",
        env = "SCHEMA_REGISTRY_TIMEOUT_SECS",
        default_value_t = 10
    )]
    pub timeout_secs: u64,
}

impl RegistryArgs {
    /// Arguments for an unauthenticated registry at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            urls: vec![url.into()],
            token: None,
            token_file: None,
            user: None,
            password: None,
            password_file: None,
            timeout_secs: 10,
        }
    }

    /// The bearer token, given directly or read from its file.
    pub fn bearer(&self) -> Option<&Secret> {
        Secret::either(self.token.as_ref(), self.token_file.as_ref())
    }

    /// The basic-auth password, given directly or read from its file.
    pub fn basic_password(&self) -> Option<&Secret> {
        Secret::either(self.password.as_ref(), self.password_file.as_ref())
    }

    /// Settings for `schema_registry_converter`'s encoders, decoders and calls.
    pub fn settings(&self) -> Result<SrSettings> {
        let mut urls = self.urls.iter().map(|u| u.trim_end_matches('/').to_owned());
        let first = urls
            .next()
            .unwrap_or_else(|| "http://localhost:8081".to_owned());
        let mut builder = SrSettings::new_builder(first);
        for url in urls {
            builder.add_url(url);
        }
        if let Some(token) = self.bearer() {
            builder.set_token_authorization(token.expose());
        } else if let Some(user) = &self.user {
            builder.set_basic_authorization(user, self.basic_password().map(Secret::expose));
        }
        builder.set_timeout(Duration::from_secs(self.timeout_secs));
        Ok(builder.build()?)
    }
}

pub use rivulet_contracts::topics::value_subject;

/// A schema as the registry knows it.
#[derive(Clone, Debug)]
pub struct RegisteredSchema {
    /// Global schema id (what goes into the frame).
    pub id: u32,
    /// Version within the subject.
    pub version: u32,
    /// The parsed schema.
    pub schema: Schema,
}

/// Looks `schema` up under `subject` without registering it (`POST /subjects/{subject}`).
/// Fails when the registry does not know this exact schema under the subject.
pub async fn lookup(
    settings: &SrSettings,
    subject: &str,
    schema: &Schema,
) -> Result<RegisteredSchema> {
    // The full form, defaults included: registries identify schemas by it (Parsing Canonical
    // Form drops defaults, and would find nothing or the wrong schema).
    let text = serde_json::to_string(schema)?;
    let body = serde_json::json!({ "schema": text, "schemaType": "AVRO" }).to_string();
    let raw = perform_sr_call(settings, SrCall::PostForVersion(subject, &body)).await?;
    match (raw.id, raw.version) {
        (Some(id), Some(version)) => Ok(RegisteredSchema {
            id,
            version,
            schema: schema.clone(),
        }),
        _ => Err(Error::Framing(
            "registry answered a look-up without id or version",
        )),
    }
}

/// Why a pinned schema could not be found.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// The registry answered: it does not have this exact schema under the subject.
    #[error("not registered under {subject} (run `schema-registry apply` first)")]
    NotRegistered {
        /// The subject asked.
        subject: String,
    },
    /// The registry could not be asked (down, unreachable, refusing the credentials, ...).
    #[error("the schema registry could not be asked about {subject}: {source}")]
    Unavailable {
        /// The subject asked.
        subject: String,
        /// Why.
        #[source]
        source: Error,
    },
}

/// [`lookup`] for a schema a binary pins at start-up: "not registered" (the registry said so)
/// and "unavailable" (it could not be asked) are told apart, so the message names the right fix.
pub async fn lookup_pinned(
    settings: &SrSettings,
    subject: &str,
    schema: &Schema,
) -> std::result::Result<RegisteredSchema, LookupError> {
    lookup(settings, subject, schema).await.map_err(|source| {
        let code = match &source {
            Error::Registry(e) => e
                .source()
                .and_then(|s| s.downcast_ref::<RawError>())
                .map(|r| r.error_code),
            _ => None,
        };
        match code {
            // 40401: no such subject; 40403: no such schema under it.
            Some(40401 | 40403) => LookupError::NotRegistered {
                subject: subject.to_owned(),
            },
            _ => LookupError::Unavailable {
                subject: subject.to_owned(),
                source,
            },
        }
    })
}

/// Encodes `value` with `schema` and prefixes the Confluent frame for schema `id`.
pub fn encode(id: u32, schema: &Schema, value: Value) -> Result<Vec<u8>> {
    Ok(frame(id, &rivulet_contracts::to_bytes(schema, value)?))
}

/// Prefixes an unframed Avro `body` with the Confluent frame for schema `id`.
pub fn frame(id: u32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + body.len());
    out.push(0);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// Splits a Confluent-framed payload into its schema id and Avro body.
pub fn unframe(bytes: &[u8]) -> Result<(u32, &[u8])> {
    match bytes {
        [0, a, b, c, d, rest @ ..] => Ok((u32::from_be_bytes([*a, *b, *c, *d]), rest)),
        [_, _, _, _, _, ..] => Err(Error::Framing("first byte is not the magic byte 0")),
        _ => Err(Error::Framing("shorter than the 5-byte header")),
    }
}

/// Why a framed message did not decode, as a value: the dead-letter reason is its `Display`
/// and the metric label its [`Reject::label`]. Every variant but [`Reject::Unavailable`] is a
/// bad message (retrying will not help); `Unavailable` means retry later.
#[derive(Debug, thiserror::Error)]
pub enum Reject {
    /// No payload at all (a tombstone where a record was expected).
    #[error("not framed: empty payload")]
    Empty,
    /// Not a Confluent frame.
    #[error("not framed: not a Confluent-framed message: {0}")]
    NotFramed(&'static str),
    /// The registry does not know the schema id (40403).
    #[error("unknown schema id {id}")]
    UnknownSchema {
        /// The id in the frame.
        id: u32,
    },
    /// The registry's schema for the id does not parse.
    #[error("undecodable: schema id {id} does not parse: {source}")]
    WriterSchema {
        /// The id in the frame.
        id: u32,
        /// Why.
        #[source]
        source: Box<apache_avro::Error>,
    },
    /// The writer schema cannot be resolved to the reader schema.
    #[error("undecodable: schema id {id} cannot be read with the reader schema: {source}")]
    Unresolvable {
        /// The id in the frame.
        id: u32,
        /// Why.
        #[source]
        source: Box<apache_avro::Error>,
    },
    /// The body does not decode with the writer schema.
    #[error("undecodable with schema id {id}: {source}")]
    Undecodable {
        /// The id in the frame.
        id: u32,
        /// Why.
        #[source]
        source: Box<apache_avro::Error>,
    },
    /// It decodes, but the raw record it holds is impossible.
    #[error("invalid value: {0}")]
    Invalid(#[from] rivulet_contracts::raw::Invalid),
    /// The registry could not be asked: retry later.
    #[error("schema registry unavailable: {0}")]
    Unavailable(String),
}

impl Reject {
    /// Short, stable label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Reject::UnknownSchema { .. } => "unknown_schema",
            Reject::Empty | Reject::NotFramed(_) => "not_framed",
            Reject::WriterSchema { .. }
            | Reject::Unresolvable { .. }
            | Reject::Undecodable { .. } => "undecodable",
            Reject::Invalid(_) => "invalid_value",
            Reject::Unavailable(_) => "registry_unavailable",
        }
    }

    /// Whether asking again later may succeed (the registry was unavailable).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Reject::Unavailable(_))
    }
}

/// Most bytes one decoded value may allocate. apache-avro's default (512 MiB) lets one malformed
/// length prefix reserve half a gigabyte; no Kafka message this project reads comes near 8 MiB
/// (the brokers' default limit is 1 MiB).
pub const MAX_DECODE_ALLOCATION: usize = 8 << 20;

/// Applies [`MAX_DECODE_ALLOCATION`] to apache-avro (a process-wide setting: the first call
/// wins, and decoding before any call would fix apache-avro's default).
pub fn bound_allocations() -> usize {
    apache_avro::util::max_allocation_bytes(MAX_DECODE_ALLOCATION)
}

/// Decodes Confluent-framed messages written with any schema the registry knows, resolved to
/// one reader schema (fields an older writer lacked take the reader's defaults).
///
/// Writer schemas are fetched by id once and kept with a prepared reader. Blocking (it may call
/// the registry through `runtime`): use it on a blocking thread, never inside async code.
pub struct Resolver {
    settings: SrSettings,
    runtime: Handle,
    reader: &'static Schema,
    readers: HashMap<u32, (&'static Schema, GenericDatumReader<'static>)>,
}

impl Resolver {
    /// A resolver reading every writer schema as `reader`.
    pub fn new(settings: SrSettings, runtime: Handle, reader: Schema) -> Self {
        bound_allocations();
        // Leaked on purpose, like the writer schemas: a handful of schemas that live as long as
        // the process, so prepared readers can borrow them.
        Self {
            settings,
            runtime,
            reader: Box::leak(Box::new(reader)),
            readers: HashMap::new(),
        }
    }

    /// The value in `payload`, resolved to the reader schema.
    pub fn decode(&mut self, payload: Option<&[u8]>) -> std::result::Result<Value, Reject> {
        let bytes = payload.ok_or(Reject::Empty)?;
        let (id, mut body) = match unframe(bytes) {
            Ok(split) => split,
            Err(Error::Framing(why)) => return Err(Reject::NotFramed(why)),
            Err(_) => return Err(Reject::NotFramed("unreadable frame")),
        };
        self.reader_for(id)?
            .1
            .read_value(&mut body)
            .map_err(|e| Reject::Undecodable {
                id,
                source: Box::new(e),
            })
    }

    /// The writer schema registered under `id`, once it is known to resolve to the reader
    /// schema (for decoders specialised per writer).
    pub fn writer(&mut self, id: u32) -> std::result::Result<&'static Schema, Reject> {
        Ok(self.reader_for(id)?.0)
    }

    /// Adds a writer schema under `id` without asking the registry.
    pub fn insert(&mut self, id: u32, writer: Schema) -> std::result::Result<(), Reject> {
        let writer: &'static Schema = Box::leak(Box::new(writer));
        let reader = GenericDatumReader::builder(writer)
            .reader_schema(self.reader)
            .build()
            .map_err(|e| Reject::Unresolvable {
                id,
                source: Box::new(e),
            })?;
        self.readers.insert(id, (writer, reader));
        Ok(())
    }

    /// The reader schema.
    pub fn reader(&self) -> &'static Schema {
        self.reader
    }

    fn reader_for(
        &mut self,
        id: u32,
    ) -> std::result::Result<&(&'static Schema, GenericDatumReader<'static>), Reject> {
        if !self.readers.contains_key(&id) {
            let fetched = self.runtime.block_on(get_schema_by_id(id, &self.settings));
            let registered = fetched.map_err(|e| {
                let code = e
                    .source()
                    .and_then(|s| s.downcast_ref::<RawError>())
                    .map(|r| r.error_code);
                match code {
                    Some(40403) => Reject::UnknownSchema { id },
                    _ => Reject::Unavailable(e.to_string()),
                }
            })?;
            let writer =
                Schema::parse_str(&registered.schema).map_err(|e| Reject::WriterSchema {
                    id,
                    source: Box::new(e),
                })?;
            self.insert(id, writer)?;
        }
        self.readers
            .get(&id)
            .ok_or_else(|| Reject::Unavailable("reader cache".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_round_trip() {
        let schema = Schema::parse_str(
            r#"{"type":"record","name":"R","fields":[{"name":"n","type":"long"}]}"#,
        )
        .unwrap();
        let bytes = encode(
            258,
            &schema,
            Value::Record(vec![("n".into(), Value::Long(3))]),
        )
        .unwrap();
        assert_eq!(&bytes[..5], &[0, 0, 0, 1, 2]);
        let (id, body) = unframe(&bytes).unwrap();
        assert_eq!(id, 258);
        let mut reader = body;
        let value = apache_avro::reader::datum::GenericDatumReader::builder(&schema)
            .build()
            .unwrap()
            .read_value(&mut reader)
            .unwrap();
        assert_eq!(value, Value::Record(vec![("n".into(), Value::Long(3))]));
    }

    #[test]
    fn bad_frames_are_errors() {
        assert!(matches!(unframe(&[0, 0, 0]), Err(Error::Framing(_))));
        assert!(matches!(
            unframe(&[1, 0, 0, 0, 1, 2]),
            Err(Error::Framing(_))
        ));
    }

    #[test]
    fn rejects_word_their_cause_and_label_it() {
        assert_eq!(Reject::Empty.to_string(), "not framed: empty payload");
        assert_eq!(Reject::Empty.label(), "not_framed");
        let frame = match unframe(&[1, 0, 0, 0, 1]) {
            Err(Error::Framing(why)) => Reject::NotFramed(why),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            frame.to_string(),
            "not framed: not a Confluent-framed message: first byte is not the magic byte 0"
        );
        let unknown = Reject::UnknownSchema { id: 9 };
        assert_eq!(
            (unknown.to_string().as_str(), unknown.label()),
            ("unknown schema id 9", "unknown_schema")
        );
        let invalid = Reject::from(rivulet_contracts::raw::Invalid::Month(13));
        assert_eq!(invalid.to_string(), "invalid value: month 13 is not 1-12");
        assert_eq!(invalid.label(), "invalid_value");
        assert!(!invalid.is_retryable());
        assert!(Reject::Unavailable("down".into()).is_retryable());
        assert_eq!(
            Reject::Unavailable("down".into()).label(),
            "registry_unavailable"
        );
    }

    #[test]
    fn settings_accept_several_urls() {
        let mut args = RegistryArgs::new("http://a:8081/");
        args.urls.push("http://b:8081".into());
        args.token = Some(Secret::new("t"));
        assert!(args.settings().is_ok());
        assert_eq!(value_subject("raw-data-in"), "raw-data-in-value");
    }
}
