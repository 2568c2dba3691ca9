//! The recommendation producer: bulk right-sizing jobs in the style of Kruize's Bulk API.
//! A job discovers the containers of a Prometheus datasource, computes CPU and memory
//! recommendations for each and publishes them to Kafka (`recommendations-topic`,
//! `error-topic`, `summary-topic`).
//!
//! # Layout
//! - [`engine`]: the recommendation engine, pure: terms, cost and performance models,
//!   current configuration and variation, notifications, box plots, the output document.
//! - [`prometheus`]: the datasource client; [`queries`]: the PromQL; [`collect`]: discovery
//!   and the per-namespace fetch into the engine's input.
//! - [`synthetic`]: a synthetic cluster as OpenMetrics, with its ground truth (tests, benchmarks).
//!
//! Being built (issue 4): the job store in PostgreSQL, the REST API and the Kafka publishing.

pub mod collect;
pub mod engine;
pub mod prometheus;
pub mod queries;
pub mod synthetic;
