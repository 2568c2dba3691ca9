//! Whole-engine scenarios; the formulas have their own tests beside them.

use super::data::{Agg, Parts};
use super::*;

const END: i64 = 1_760_000_400; // a multiple of 15 minutes

/// `points` intervals back from END with CPU `cpu` cores and memory `mem` bytes, requests and
/// limits as given.
fn container(
    points: i64,
    cpu: f64,
    mem: f64,
    requests: Option<(f64, f64)>,
    limits: Option<(f64, f64)>,
) -> Series {
    (0..points)
        .map(|k| {
            let mut i = Parts {
                cpu_usage: Agg {
                    avg: Some(cpu),
                    min: Some(cpu / 2.0),
                    max: Some(cpu),
                    sum: Some(cpu),
                },
                memory_usage: Agg {
                    avg: Some(mem),
                    min: Some(mem - 1000.0),
                    max: Some(mem),
                    sum: Some(mem),
                },
                memory_rss: Agg::flat(mem / 2.0),
                ..Parts::default()
            };
            if let Some((c, m)) = requests {
                (i.cpu_request, i.memory_request) = (Agg::flat(c), Agg::flat(m));
            }
            if let Some((c, m)) = limits {
                (i.cpu_limit, i.memory_limit) = (Agg::flat(c), Agg::flat(m));
            }
            (END - k * terms::STEP_SECS, Interval::from(i))
        })
        .collect()
}

fn codes(n: &Notifications) -> Vec<u32> {
    n.values().map(|x| x.code).collect()
}

#[test]
fn a_day_of_data_gives_the_short_term_only() {
    let r = recommend(
        &container(97, 0.5, 1e8, Some((1.0, 2e8)), Some((2.0, 4e8))),
        &Settings::default(),
    );
    assert_eq!(codes(&r.notifications), vec![code::AVAILABLE]);
    let at = &r.data[&stamp(END)];
    assert_eq!(codes(&at.notifications), vec![code::SHORT_TERM]);
    let short = at.recommendation_terms.short_term.as_ref().unwrap();
    assert_eq!(short.duration_in_hours, 24.0);
    assert_eq!(
        codes(&short.notifications),
        vec![code::COST, code::PERFORMANCE]
    );
    let cost = short
        .recommendation_engines
        .as_ref()
        .unwrap()
        .cost
        .as_ref()
        .unwrap();
    assert_eq!(cost.config.requests[CPU].amount, 0.5);
    assert_eq!(cost.variation.requests[CPU].amount, 0.5 - 1.0);
    assert_eq!(cost.variation.limits[CPU].amount, 0.5 - 2.0);
    // Memory: min(1e8 × 1.2, 1e8 + ceil(spike 1000) × 1.05).
    assert_eq!(cost.config.limits[MEMORY].amount, 1e8 + 1050.0);
    assert_eq!((cost.pods_count, cost.confidence_level), (1, 1.0));
    let medium = at.recommendation_terms.medium_term.as_ref().unwrap();
    assert_eq!(codes(&medium.notifications), vec![code::NOT_ENOUGH_DATA]);
    assert_eq!(
        medium.duration_in_hours, 24.25,
        "the data present, not the cap"
    );
    assert!(medium.recommendation_engines.is_none() && medium.plots.is_none());
    assert_eq!(short.plots.as_ref().unwrap().datapoints, 4);
}

#[test]
fn missing_limits_and_optimised_requests_are_reported() {
    // Requests equal to what would be recommended: kept, variation 0, optimised notices.
    let series = container(200, 0.5, 1e8, Some((0.5, 1e8 + 1050.0)), None);
    let r = recommend(&series, &Settings::default());
    let at = &r.data[&stamp(END)];
    assert_eq!(
        codes(&at.notifications),
        vec![
            code::SHORT_TERM,
            code::MEDIUM_TERM,
            code::CPU_AMOUNT_MISSING,
            code::MEMORY_AMOUNT_MISSING,
            code::CPU_LIMIT_NOT_SET,
            code::MEMORY_LIMIT_NOT_SET
        ]
    );
    assert!(at.current.limits.is_empty());
    let medium = at.recommendation_terms.medium_term.as_ref().unwrap();
    let perf = medium
        .recommendation_engines
        .as_ref()
        .unwrap()
        .performance
        .as_ref()
        .unwrap();
    assert_eq!(
        codes(&perf.notifications),
        vec![
            code::CPU_REQUESTS_OPTIMISED,
            code::MEMORY_REQUESTS_OPTIMISED
        ]
    );
    assert_eq!(perf.variation.requests[CPU].amount, 0.0);
    assert_eq!(
        perf.variation.limits[CPU].amount, 0.5,
        "no current limit: the variation is the recommendation"
    );
    assert_eq!(
        perf.confidence_level, 0.2976,
        "200 of 672 points in the week"
    );
}

#[test]
fn idle_cpu_and_no_data() {
    let r = recommend(
        &container(10, 0.0005, 1e6, None, None),
        &Settings::default(),
    );
    let short = r.data[&stamp(END)]
        .recommendation_terms
        .short_term
        .clone()
        .unwrap();
    let cost = short.recommendation_engines.unwrap().cost.unwrap();
    assert_eq!(codes(&cost.notifications), vec![code::CPU_IDLE]);
    assert!(!cost.config.requests.contains_key(CPU) && cost.config.requests.contains_key(MEMORY));

    let none = recommend(&Series::new(), &Settings::default());
    assert_eq!(codes(&none.notifications), vec![code::NOT_ENOUGH_DATA]);
    assert!(none.data.is_empty());
    let one = recommend(&container(1, 1.0, 1e6, None, None), &Settings::default());
    assert_eq!(codes(&one.notifications), vec![code::NOT_ENOUGH_DATA]);
}

#[test]
fn the_document_has_the_reference_shape() {
    let settings = Settings {
        terms: vec![Term::Short],
        plots: false,
        ..Settings::default()
    };
    let r = recommend(
        &container(4, 0.25, 5e7, Some((1.0, 1e8)), Some((1.0, 1e8))),
        &settings,
    );
    let json = serde_json::to_value(&r).unwrap();
    let at = &json["data"][stamp(END)];
    assert_eq!(json["version"], "1.0");
    assert_eq!(at["monitoring_end_time"], stamp(END));
    assert_eq!(
        at["current"]["requests"]["cpu"],
        serde_json::json!({"amount": 1.0, "format": "cores"})
    );
    let short = &at["recommendation_terms"]["short_term"];
    assert_eq!(short["monitoring_start_time"], stamp(END - 86_400));
    assert_eq!(
        short["recommendation_engines"]["cost"]["config"]["limits"]["memory"]["format"],
        "bytes"
    );
    assert_eq!(short["notifications"]["112101"]["type"], "info");
    assert!(short.get("plots").is_none());
    assert!(at["recommendation_terms"].get("long_term").is_none());
    assert_eq!(stamp(0), "1970-01-01T00:00:00.000Z");
}
