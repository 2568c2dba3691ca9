//! The recommendation engine: from a container's 15-minute intervals to its recommendations,
//! as the reference computes them (`shared/specs/recommendations.md`, section 4), with three
//! quirks fixed on purpose: `duration_in_hours` is the data actually present (capped at the
//! term), `confidence_level` is points present ÷ points expected in the term's window, and the
//! minimum-data walk steps evenly. Pure: no I/O.

pub mod data;
pub mod model;
pub mod notify;
pub mod output;
pub mod plots;
pub mod stats;
pub mod terms;

use chrono::{DateTime, SecondsFormat};

use self::data::{Interval, Series};
use self::model::{Model, NoCpu, cpu_request, memory_request, pods_count};
use self::notify::{Notifications, add, code};
use self::output::{Amount, AtTime, Config, Engine, Engines, Recommendations, TermResult, Terms};
use self::terms::Term;

/// What a recommendation is asked for.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// Terms to compute.
    pub terms: Vec<Term>,
    /// Models to compute.
    pub models: Vec<Model>,
    /// A recommendation within this many **percent** of the current value keeps the current
    /// value (the reference's unit: 0.1 means 0.1 %). Null or ≤ 0 means 0.1.
    pub threshold: Option<f64>,
    /// Compute box plots.
    pub plots: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            terms: Term::ALL.to_vec(),
            models: Model::ALL.to_vec(),
            threshold: None,
            plots: true,
        }
    }
}

/// `yyyy-MM-ddTHH:mm:ss.SSSZ`.
pub fn stamp(secs: i64) -> String {
    DateTime::from_timestamp(secs, 0)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_default()
}

const CPU: &str = "cpu";
const MEMORY: &str = "memory";

/// The container's current requests and limits (the interval at the end time, `avg`) and the
/// timestamp-level notifications about what is missing or invalid.
fn current(end: &Interval, notes: &mut Notifications) -> Config {
    let mut config = Config::default();
    let items = [
        (end.cpu_request().avg, true, CPU, code::CPU_REQUEST_NOT_SET),
        (end.cpu_limit().avg, false, CPU, code::CPU_LIMIT_NOT_SET),
        (
            end.memory_request().avg,
            true,
            MEMORY,
            code::MEMORY_REQUEST_NOT_SET,
        ),
        (
            end.memory_limit().avg,
            false,
            MEMORY,
            code::MEMORY_LIMIT_NOT_SET,
        ),
    ];
    for (value, request, resource, not_set) in items {
        let (missing, invalid, format) = if resource == CPU {
            (code::CPU_AMOUNT_MISSING, code::CPU_AMOUNT_INVALID, "cores")
        } else {
            (
                code::MEMORY_AMOUNT_MISSING,
                code::MEMORY_AMOUNT_INVALID,
                "bytes",
            )
        };
        match value {
            None => {
                add(notes, not_set);
                add(notes, missing);
            }
            Some(v) if v <= 0.0 => add(notes, invalid),
            Some(amount) => {
                let side = if request {
                    &mut config.requests
                } else {
                    &mut config.limits
                };
                side.insert(resource, Amount { amount, format });
            }
        }
    }
    config
}

/// One model in one term's window.
fn engine(
    model: Model,
    window: &[&Interval],
    current: &Config,
    threshold: f64,
    points: usize,
    term: Term,
) -> Engine {
    let mut notes = Notifications::new();
    let mut recommended = Vec::new();
    match cpu_request(model, window) {
        Ok(v) => recommended.push((
            CPU,
            Amount {
                amount: v,
                format: "cores",
            },
        )),
        Err(NoCpu::Zero) => add(&mut notes, code::CPU_ZERO),
        Err(NoCpu::Idle) => add(&mut notes, code::CPU_IDLE),
    }
    match memory_request(model, window) {
        Some(v) => recommended.push((
            MEMORY,
            Amount {
                amount: v,
                format: "bytes",
            },
        )),
        None => add(&mut notes, code::MEMORY_ZERO),
    }
    let mut config = Config::default();
    let mut variation = Config::default();
    for (resource, rec) in recommended {
        for request in [true, false] {
            let now = if request {
                &current.requests
            } else {
                &current.limits
            };
            let cur = now.get(resource).map(|a| a.amount);
            let mut amount = rec.amount;
            if let Some(cur) = cur
                && ((amount - cur) / cur * 100.0).abs() <= threshold
            {
                amount = cur;
                add(
                    &mut notes,
                    match (resource, request) {
                        (CPU, true) => code::CPU_REQUESTS_OPTIMISED,
                        (CPU, false) => code::CPU_LIMITS_OPTIMISED,
                        (_, true) => code::MEMORY_REQUESTS_OPTIMISED,
                        (_, false) => code::MEMORY_LIMITS_OPTIMISED,
                    },
                );
            }
            let (c, v) = if request {
                (&mut config.requests, &mut variation.requests)
            } else {
                (&mut config.limits, &mut variation.limits)
            };
            c.insert(
                resource,
                Amount {
                    amount,
                    format: rec.format,
                },
            );
            v.insert(
                resource,
                Amount {
                    amount: amount - cur.unwrap_or(0.0),
                    format: rec.format,
                },
            );
        }
    }
    let pods = pods_count(window);
    if pods == 0 {
        add(&mut notes, code::PODS_ZERO);
    }
    Engine {
        pods_count: pods,
        confidence_level: term.confidence(points),
        config,
        variation,
        notifications: notes,
    }
}

/// The recommendations for a container's intervals.
pub fn recommend(series: &Series, settings: &Settings) -> Recommendations {
    let mut top = Notifications::new();
    let Some((&end, last)) = series.last_key_value() else {
        add(&mut top, code::NOT_ENOUGH_DATA);
        return Recommendations {
            version: "1.0",
            notifications: top,
            data: Default::default(),
        };
    };
    let mut at_notes = Notifications::new();
    let current = current(last, &mut at_notes);
    let threshold = settings.threshold.filter(|t| *t > 0.0).unwrap_or(0.1);
    let mut terms = Terms::default();
    let mut any = false;
    for &term in &settings.terms {
        let window = term.window(series, end);
        let duration = term.duration_in_hours(window.len());
        let result = if term.has_enough_data(series, end) {
            any = true;
            add(&mut at_notes, term.available_code());
            let mut notes = Notifications::new();
            let mut engines = Engines::default();
            for &model in &settings.models {
                let e = engine(model, &window, &current, threshold, window.len(), term);
                match model {
                    Model::Cost => {
                        add(&mut notes, code::COST);
                        engines.cost = Some(e);
                    }
                    Model::Performance => {
                        add(&mut notes, code::PERFORMANCE);
                        engines.performance = Some(e);
                    }
                }
            }
            TermResult {
                duration_in_hours: duration,
                notifications: notes,
                monitoring_start_time: Some(stamp(term.start(end))),
                recommendation_engines: Some(engines),
                plots: settings
                    .plots
                    .then(|| plots::plots(term, series, end, stamp)),
            }
        } else {
            TermResult {
                duration_in_hours: duration,
                notifications: notify::of(&[code::NOT_ENOUGH_DATA]),
                monitoring_start_time: None,
                recommendation_engines: None,
                plots: None,
            }
        };
        match term {
            Term::Short => terms.short_term = Some(result),
            Term::Medium => terms.medium_term = Some(result),
            Term::Long => terms.long_term = Some(result),
        }
    }
    if !any {
        add(&mut top, code::NOT_ENOUGH_DATA);
        return Recommendations {
            version: "1.0",
            notifications: top,
            data: Default::default(),
        };
    }
    add(&mut top, code::AVAILABLE);
    let at = AtTime {
        notifications: at_notes,
        monitoring_end_time: stamp(end),
        current,
        recommendation_terms: terms,
    };
    Recommendations {
        version: "1.0",
        notifications: top,
        data: [(stamp(end), at)].into_iter().collect(),
    }
}

#[cfg(test)]
mod tests;
