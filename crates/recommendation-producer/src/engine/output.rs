//! The recommendations document (the reference's `recommendations` object).

use std::collections::BTreeMap;

use serde::Serialize;

use super::notify::Notifications;
use super::plots::Plots;

/// An amount with its unit.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Amount {
    /// Value.
    pub amount: f64,
    /// `cores` or `bytes`.
    pub format: &'static str,
}

/// `cpu` and/or `memory`.
pub type Resources = BTreeMap<&'static str, Amount>;

/// Requests and limits; a side without items is left out.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Config {
    /// Requests.
    #[serde(skip_serializing_if = "Resources::is_empty")]
    pub requests: Resources,
    /// Limits.
    #[serde(skip_serializing_if = "Resources::is_empty")]
    pub limits: Resources,
}

/// One model's result in one term.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Engine {
    /// Pods behind the figures.
    pub pods_count: i64,
    /// Data points present ÷ expected in the term's window.
    pub confidence_level: f64,
    /// Recommended requests and limits.
    pub config: Config,
    /// Recommended − current.
    pub variation: Config,
    /// Engine-level notifications.
    pub notifications: Notifications,
}

/// Both models.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Engines {
    /// Cost model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<Engine>,
    /// Performance model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub performance: Option<Engine>,
}

/// One term.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TermResult {
    /// Hours of data in the window, capped at the term length.
    pub duration_in_hours: f64,
    /// Term-level notifications.
    pub notifications: Notifications,
    /// Start of the window (terms with enough data).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monitoring_start_time: Option<String>,
    /// The models (terms with enough data).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recommendation_engines: Option<Engines>,
    /// Box plots (terms with enough data, when plots are on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plots: Option<Plots>,
}

/// The terms, in output order.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Terms {
    /// Last day.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub short_term: Option<TermResult>,
    /// Last week.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub medium_term: Option<TermResult>,
    /// Last 15 days.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub long_term: Option<TermResult>,
}

/// Everything at the monitoring end time.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AtTime {
    /// Timestamp-level notifications.
    pub notifications: Notifications,
    /// The latest data point.
    pub monitoring_end_time: String,
    /// The container's current requests and limits.
    pub current: Config,
    /// The terms.
    pub recommendation_terms: Terms,
}

/// A container's recommendations.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Recommendations {
    /// Document version, `1.0`.
    pub version: &'static str,
    /// Recommendations-level notifications.
    pub notifications: Notifications,
    /// One entry keyed by the monitoring end time, or none.
    pub data: BTreeMap<String, AtTime>,
}
