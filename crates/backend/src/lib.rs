//! The backend: raw widget records in, exact monthly totals per SKU out.
//!
//! Consumes `raw-data-in` written with any registered schema version (v1, v2, v3) and emits
//! the *current* totals of each (year, month, SKU) to `summary-stats` as upserts keyed
//! `YYYY-MM|SKU`, never increments, so a re-delivered summary cannot double count.
//!
//! # Layout
//! - [`record`]: a decoded raw record and the validation that sends bad ones to the DLQ.
//! - [`aggregate`]: the totals and the per-key state, pure.
//! - [`summary`]: totals as the `summary-stats` Avro record (any version) and back.

pub mod aggregate;
pub mod record;
pub mod summary;
