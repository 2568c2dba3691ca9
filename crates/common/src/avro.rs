//! Confluent-framed Avro (magic byte 0, 4-byte big-endian schema id, Avro binary) through any
//! Confluent-compatible schema registry, reached only over HTTP with `schema_registry_converter`.
//!
//! Production producers never register schemas: `schemas apply` does that once per release, and
//! a producer looks its pinned schema up with [`lookup`] to learn the id.

use std::time::Duration;

use apache_avro::Schema;
use apache_avro::types::Value;
use schema_registry_converter::async_impl::schema_registry::{SrSettings, perform_sr_call};
use schema_registry_converter::schema_registry_common::SrCall;

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
            user: None,
            password: None,
            timeout_secs: 10,
        }
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
        if let Some(token) = &self.token {
            builder.set_token_authorization(token.expose());
        } else if let Some(user) = &self.user {
            builder.set_basic_authorization(user, self.password.as_ref().map(Secret::expose));
        }
        builder.set_timeout(Duration::from_secs(self.timeout_secs));
        Ok(builder.build()?)
    }
}

/// The subject of a topic's values under Confluent's TopicNameStrategy.
pub fn value_subject(topic: &str) -> String {
    format!("{topic}-value")
}

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

/// Encodes `value` with `schema` and prefixes the Confluent frame for schema `id`.
pub fn encode(id: u32, schema: &Schema, value: Value) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(64);
    out.push(0);
    out.extend_from_slice(&id.to_be_bytes());
    apache_avro::writer::datum::GenericDatumWriter::builder(schema)
        .build()
        .and_then(|writer| writer.write_value(&mut out, value))
        .map_err(Box::new)?;
    Ok(out)
}

/// Splits a Confluent-framed payload into its schema id and Avro body.
pub fn unframe(bytes: &[u8]) -> Result<(u32, &[u8])> {
    match bytes {
        [0, a, b, c, d, rest @ ..] => Ok((u32::from_be_bytes([*a, *b, *c, *d]), rest)),
        [_, _, _, _, _, ..] => Err(Error::Framing("first byte is not the magic byte 0")),
        _ => Err(Error::Framing("shorter than the 5-byte header")),
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
    fn settings_accept_several_urls() {
        let mut args = RegistryArgs::new("http://a:8081/");
        args.urls.push("http://b:8081".into());
        args.token = Some(Secret::new("t"));
        assert!(args.settings().is_ok());
        assert_eq!(value_subject("raw-data-in"), "raw-data-in-value");
    }
}
