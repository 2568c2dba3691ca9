//! The summary service: consumes `summary-stats` and `base-costs` and answers questions about
//! monthly totals. So far: the in-memory [`index`] and the month totals computed from it; the
//! Kafka consumers, the REST API and the dashboard come next (issue 3).

pub mod index;
