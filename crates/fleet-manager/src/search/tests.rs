#![allow(clippy::unwrap_used)] // tests
use super::*;

fn sql(text: &str) -> (String, Vec<String>) {
    let mut params = vec!["owner".to_owned()];
    let s = parse(text).unwrap().to_sql(&mut params);
    (s, params)
}

#[test]
fn the_reference_examples_parse() {
    let (s, p) = sql("name = my-kafka and cloud_provider = aws");
    assert_eq!(
        s,
        "(COALESCE(name, '') = $2 AND COALESCE(cloud_provider, '') = $3)"
    );
    assert_eq!(p, ["owner", "my-kafka", "aws"]);
    let (s, p) = sql("region IN ('us-east-1', eu-west-1) OR status NOT IN (failed)");
    assert_eq!(
        s,
        "(COALESCE(region, '') IN ($2, $3) OR COALESCE(status, '') NOT IN ($4))"
    );
    assert_eq!(p[1..], ["us-east-1", "eu-west-1", "failed"]);
    let (s, _) = sql("NAME like 'team-%' And owner ILIKE '%Bob%' or instance_type <> developer");
    assert_eq!(
        s,
        "((COALESCE(name, '') LIKE $2 AND COALESCE(owner, '') ILIKE $3) OR COALESCE(instance_type, '') <> $4)"
    );
    let (s, _) = sql("cluster_id = c1 and (status = ready or status = failed)");
    assert!(s.contains("AND (COALESCE(status, '') = $3 OR"), "{s}");
}

#[test]
fn quotes_are_values_never_sql() {
    let (s, p) = sql("name = 'x'' OR 1=1 --'");
    assert_eq!(s, "COALESCE(name, '') = $2");
    assert_eq!(p[1], "x' OR 1=1 --");
}

#[test]
fn what_is_not_in_the_grammar_is_refused() {
    for bad in [
        "",
        "name",
        "name =",
        "name = x and",
        "password = x",
        "name = x; DROP TABLE kafka_requests",
        "name = x) or (1 = 1",
        "name != x",
        "name < x",
        "name = 'open",
        "name in x",
        "name in (x,",
        "name not like x",
        "1 = 1",
        "name = x name = y",
        "name = and",
        "(name = x",
        "name = x -- comment",
        "name = \"x\"",
    ] {
        assert!(parse(bad).is_err(), "{bad:?} parsed");
    }
    let ten = ["name = x"; 11].join(" and ");
    assert!(parse(&ten).is_ok());
    let eleven = ["name = x"; 12].join(" or ");
    assert!(parse(&eleven).unwrap_err().0.contains("joins"));
    let deep = format!("{}name = x{}", "(".repeat(50), ")".repeat(50));
    assert!(parse(&deep).is_err());
    assert!(parse(&"a".repeat(MAX_SEARCH + 1)).is_err());
    let many = (0..=MAX_IN)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",");
    assert!(parse(&format!("name in ({many})")).is_err());
}

#[test]
fn order_by_names_columns_from_the_list_only() {
    assert_eq!(
        order_by(None).unwrap(),
        "name COLLATE \"C\" ASC NULLS LAST, id COLLATE \"C\" ASC"
    );
    assert_eq!(
        order_by(Some("created_at desc, Region")).unwrap(),
        "created_at DESC NULLS LAST, region COLLATE \"C\" ASC NULLS LAST, id COLLATE \"C\" ASC"
    );
    assert!(
        order_by(Some("version"))
            .unwrap()
            .starts_with("kafka_version")
    );
    for bad in [
        "name; drop",
        "pg_sleep(1)",
        "name up",
        "name asc asc",
        "name,,id",
        "1",
    ] {
        assert!(order_by(Some(bad)).is_err(), "{bad:?}");
    }
}

proptest::proptest! {
    #[test]
    fn any_input_is_parsed_or_refused_without_panicking(text in ".{0,200}") {
        if let Ok(f) = parse(&text) {
            let mut params = Vec::new();
            let s = f.to_sql(&mut params);
            // Nothing of the input reaches the SQL text but through a parameter.
            proptest::prop_assert!(s.chars().all(|c| c.is_ascii_alphanumeric() || " _$(),=<>'".contains(c)), "{}", s);
        }
    }
}
