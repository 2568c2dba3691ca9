//! Metrics providers: where lag and rates come from.

pub mod kafka;
pub mod prometheus;
