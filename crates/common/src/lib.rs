//! Plumbing shared by every Rivulet binary.
//!
//! A binary never builds an rdkafka `ClientConfig`, a registry client, a tracing subscriber or a
//! signal handler itself: it flattens the argument groups defined here into its own clap `Config`
//! and calls the constructors.
//!
//! # Layout
//! - [`kafka`]: [`KafkaArgs`] (bootstrap servers, security, client profile) and the one producer,
//!   consumer and admin constructor.
//! - [`avro`]: [`RegistryArgs`] and Confluent-framed Avro through `schema_registry_converter`.
//! - [`telemetry`]: [`init_tracing`] with text or JSON output.
//! - [`shutdown`]: a cancellation token cancelled on SIGTERM or Ctrl-C.
//! - [`health`]: an axum router serving `/healthz`, `/readyz` and `/metrics`.
//! - [`secret`]: [`Secret`], a string whose `Debug` and `Display` hide it, also read from a file.
//! - [`credentials`]: what a server accepts in `Authorization` (bearer or basic).

pub mod avro;
pub mod credentials;
pub mod env;
mod error;
pub mod health;
pub mod http;
pub mod kafka;
pub mod registry;
pub mod secret;
pub mod shutdown;
pub mod telemetry;

pub use avro::RegistryArgs;
pub use credentials::Credentials;
pub use error::{Error, Result};
pub use health::Health;
pub use kafka::KafkaArgs;
pub use registry::RegistryClient;
pub use secret::Secret;
pub use shutdown::shutdown_token;
pub use telemetry::{LogArgs, init_tracing};
