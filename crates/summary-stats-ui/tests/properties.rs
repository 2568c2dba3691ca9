//! Property tests of the summary query parser: any query string gets an answer (a query or a
//! message), never a panic, and every well-formed query reads back as written.
//! `PROPTEST_CASES` sets the number of cases (`scripts/fuzz` runs them for minutes).

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use proptest::prelude::*;
use rivulet_summary_stats_ui::query::{self, SummaryQuery};

proptest! {
    #[test]
    fn any_query_string_is_answered(raw in ".{0,200}") {
        let _ = query::summary(Some(&raw));
    }

    #[test]
    fn any_bytes_percent_encoded_are_answered(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
        let encoded: String = bytes.iter().map(|b| format!("%{b:02X}")).collect();
        for raw in [format!("sku={encoded}"), format!("year={encoded}&month={encoded}"), encoded] {
            if let Ok(q) = query::summary(Some(&raw)) {
                // Whatever is accepted is within the documented bounds.
                prop_assert!(q.year.is_none_or(|y| (1..=9999).contains(&y)));
                prop_assert!(q.month.is_none_or(|m| (1..=12).contains(&m)));
                prop_assert!(q.sku.is_none_or(|s| !s.is_empty() && s.chars().count() <= 64 && !s.contains('|') && !s.chars().any(char::is_control)));
            }
        }
    }

    #[test]
    fn well_formed_queries_read_back(
        year in proptest::option::of(1i32..=9999),
        month in proptest::option::of(1u32..=12),
        sku in proptest::option::of("[A-Za-z0-9 ._~-]{1,64}"),
    ) {
        let sku = sku.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
        let mut parts = Vec::new();
        if let Some(y) = year { parts.push(format!("year={y}")); }
        if let Some(m) = month { parts.push(format!("month={m}")); }
        if let Some(s) = &sku {
            let encoded: String = form_urlencoded::byte_serialize(s.as_bytes()).collect();
            parts.push(format!("sku={encoded}"));
        }
        let parsed = query::summary(Some(&parts.join("&"))).unwrap();
        prop_assert_eq!(parsed, SummaryQuery { year, month, sku });
    }
}
