//! Query-string and path parameters, parsed by hand so every mistake gets a precise message.

/// Filters of `GET /api/v1/summary`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct SummaryQuery {
    /// Year.
    pub year: Option<i32>,
    /// Month, 1-12.
    pub month: Option<u32>,
    /// SKU.
    pub sku: Option<String>,
}

/// Parses the query string of `GET /api/v1/summary`. Empty values count as absent (a form
/// left blank); unknown or repeated parameters are errors, so a typo is not a silent "all".
pub fn summary(raw: Option<&str>) -> Result<SummaryQuery, String> {
    let mut query = SummaryQuery::default();
    parameters(raw, |name, value| {
        match name {
            "year" => query.year = Some(year(value)?),
            "month" => query.month = Some(month(value)?),
            "sku" => query.sku = Some(sku(value)?),
            other => {
                return Err(format!(
                    "unknown parameter `{other}`: expected year, month and/or sku"
                ));
            }
        }
        Ok(())
    })?;
    Ok(query)
}

/// Calls `each` with every parameter that has a (trimmed) non-empty value; a repeated
/// parameter is an error.
fn parameters(
    raw: Option<&str>,
    mut each: impl FnMut(&str, &str) -> Result<(), String>,
) -> Result<(), String> {
    let mut seen = Vec::new();
    for (name, value) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        if seen.contains(&name) {
            return Err(format!("parameter `{name}` is given more than once"));
        }
        seen.push(name.clone());
        let value = value.trim();
        if !value.is_empty() {
            each(&name, value)?;
        }
    }
    Ok(())
}

/// Filters of `GET /api/v1/summary/stream`, and where a client resumes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamQuery {
    /// Year.
    pub year: Option<i32>,
    /// SKU.
    pub sku: Option<String>,
    /// The last event id seen, for clients that cannot send `Last-Event-ID`.
    pub last_event_id: Option<String>,
}

/// Parses the query string of `GET /api/v1/summary/stream`, by the rules of [`summary`].
pub fn stream(raw: Option<&str>) -> Result<StreamQuery, String> {
    let mut query = StreamQuery::default();
    parameters(raw, |name, value| {
        match name {
            "year" => query.year = Some(year(value)?),
            "sku" => query.sku = Some(sku(value)?),
            "last_event_id" if value.len() <= 4096 => query.last_event_id = Some(value.to_owned()),
            "last_event_id" => return Err("last_event_id is longer than 4096 bytes".into()),
            other => {
                return Err(format!(
                    "unknown parameter `{other}`: expected year, sku and/or last_event_id"
                ));
            }
        }
        Ok(())
    })?;
    Ok(query)
}

/// A year: 1 to 9999.
pub fn year(value: &str) -> Result<i32, String> {
    match value.parse::<i32>() {
        Ok(y) if (1..=9999).contains(&y) => Ok(y),
        _ => Err(format!(
            "year must be a whole number from 1 to 9999, got {value:?}"
        )),
    }
}

fn month(value: &str) -> Result<u32, String> {
    match value.parse::<u32>() {
        Ok(m) if (1..=12).contains(&m) => Ok(m),
        _ => Err(format!(
            "month must be a whole number from 1 to 12, got {value:?}"
        )),
    }
}

/// A SKU name: 1 to 64 characters (not bytes: what the OpenAPI document's `maxLength`
/// counts), no control character and no `|` (the key separator).
pub fn sku(value: &str) -> Result<String, String> {
    let ok = !value.is_empty()
        && value.chars().count() <= 64
        && value.chars().all(|c| !c.is_control() && c != '|');
    if ok {
        Ok(value.to_owned())
    } else {
        Err(format!(
            "sku must be 1 to 64 printable characters without '|', got {value:?}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_queries() {
        assert_eq!(summary(None), Ok(SummaryQuery::default()));
        assert_eq!(
            summary(Some("year=2020&month=3&sku=SKU_000001")),
            Ok(SummaryQuery {
                year: Some(2020),
                month: Some(3),
                sku: Some("SKU_000001".into())
            })
        );
        assert_eq!(
            summary(Some("year=2020&month=&sku=")),
            Ok(SummaryQuery {
                year: Some(2020),
                ..SummaryQuery::default()
            })
        );
        assert_eq!(
            summary(Some("sku=SKU%5F1")).map(|q| q.sku),
            Ok(Some("SKU_1".into()))
        );
    }

    #[test]
    fn bad_queries_say_why() {
        for (raw, needle) in [
            ("year=twenty", "year must be"),
            ("year=0", "year must be"),
            ("year=99999999999", "year must be"),
            ("month=13", "month must be"),
            ("month=-1", "month must be"),
            ("yaer=2020", "unknown parameter `yaer`"),
            ("year=2020&year=2021", "more than once"),
            ("sku=a%7Cb", "sku must be"),
            ("sku=a%00b", "sku must be"),
        ] {
            let error = summary(Some(raw)).unwrap_err();
            assert!(error.contains(needle), "{raw}: {error}");
        }
    }

    #[test]
    fn stream_queries() {
        assert_eq!(
            stream(Some("year=2020&sku=A&last_event_id=t%400%3A1%3B")),
            Ok(StreamQuery {
                year: Some(2020),
                sku: Some("A".into()),
                last_event_id: Some("t@0:1;".into()),
            })
        );
        for (raw, needle) in [
            ("month=3", "unknown parameter `month`"),
            ("year=x", "year must be"),
            ("sku=&sku=", "more than once"),
        ] {
            let error = stream(Some(raw)).unwrap_err();
            assert!(error.contains(needle), "{raw}: {error}");
        }
        let long = format!("last_event_id={}", "x".repeat(4097));
        assert!(stream(Some(&long)).is_err());
    }
}
