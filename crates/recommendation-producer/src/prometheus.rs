//! A Prometheus datasource over its HTTP API: instant and range queries with optional bearer or
//! basic auth and a private CA, bounded concurrency, timeouts and retries with backoff.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use rivulet_common::Secret;
use serde::Deserialize;
use tokio::sync::Semaphore;

mod reads;

pub use reads::{Reads, go_duration_ms};

/// Credentials for a datasource.
#[derive(Clone, Debug, Default)]
pub enum Auth {
    /// None.
    #[default]
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(Secret),
    /// Basic auth: user and password.
    Basic(String, Secret),
}

/// Why a query failed. The job-level notification follows the variant (503 or 504).
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The datasource could not be reached.
    #[error("Unable to connect to the data source: {0}")]
    Unreachable(String),
    /// It did not answer in time.
    #[error("request timed out waiting for a data source response: {0}")]
    Timeout(String),
    /// It answered with an error.
    #[error("the data source refused the query ({status}): {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// Prometheus's error text.
        message: String,
    },
    /// The answer was not a Prometheus result.
    #[error("unreadable data source answer: {0}")]
    Unreadable(String),
}

impl QueryError {
    /// The datasource refused with `status`: the start of its answer `body` says why.
    fn refused(status: u16, body: &[u8]) -> QueryError {
        QueryError::Refused {
            status,
            message: String::from_utf8_lossy(body).chars().take(300).collect(),
        }
    }

    fn retryable(&self) -> bool {
        match self {
            QueryError::Unreachable(_) | QueryError::Timeout(_) => true,
            QueryError::Refused { status, .. } => transient(*status),
            QueryError::Unreadable(_) => false,
        }
    }
}

/// Whether an answer with `status` says "not now" (overloaded, restarting): worth asking again.
fn transient(status: u16) -> bool {
    status >= 500 || status == 429
}

/// One series of a result: its labels and samples `(unix seconds, value)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Samples, oldest first (one for an instant query).
    pub samples: Vec<(f64, f64)>,
}

impl Series {
    /// A label's value ("" when absent).
    pub fn label(&self, name: &str) -> &str {
        self.labels.get(name).map_or("", String::as_str)
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    status: Cow<'a, str>,
    #[serde(default, borrow)]
    data: Option<Data<'a>>,
    #[serde(default)]
    error: Option<String>,
}

/// A vector or matrix result, read straight from the response bytes: sample values are
/// parsed as they are read, not allocated (a 15-day fetch holds millions of them).
#[derive(Deserialize)]
struct Data<'a> {
    #[serde(rename = "resultType", borrow)]
    result_type: Cow<'a, str>,
    result: Vec<Raw>,
}

#[derive(Deserialize)]
struct Raw {
    metric: BTreeMap<String, String>,
    #[serde(default)]
    value: Option<(f64, Value)>,
    #[serde(default)]
    values: Option<Vec<(f64, Value)>>,
}

/// A sample value: Prometheus writes it as a string (`"0.25"`, `"NaN"`, `"+Inf"`); parsed as
/// it is read, so a fetch's millions of samples take 16 bytes each from the start and the
/// vector is reused as the series' samples (`(f64, Value)` and `(f64, f64)` have one layout).
/// What does not parse is NaN.
#[derive(Clone, Copy)]
struct Value(f64);

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Value;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a sample value as a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
                Ok(Value(v.parse().unwrap_or(f64::NAN)))
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

/// A datasource.
#[derive(Clone)]
pub struct Prometheus {
    base: String,
    auth: Auth,
    client: reqwest::Client,
    permits: Arc<Semaphore>,
    retries: u32,
    queries: Counter,
    windows: Windows,
    /// What [`Windows::Auto`] found: closed windows or not (read once, when it could be).
    detected: Arc<tokio::sync::OnceCell<bool>>,
    /// How samples are read ([`Reads`]); under `Auto`, cleared when the datasource turns out
    /// not to answer remote reads with streamed chunks.
    reads: Reads,
    remote: Arc<std::sync::atomic::AtomicBool>,
    /// The datasource's lookback delta, ms (read once, when it could be).
    lookback: Arc<tokio::sync::OnceCell<i64>>,
}

/// Which samples a 15-minute interval ending at `t` holds. Prometheus 2.x range selectors
/// (what the reference's `*_over_time(…[15m])` queries run on) include both ends,
/// `[t − 15m, t]`; Prometheus 3 excludes the start, `(t − 15m, t]`. With a 60 s scrape a sample
/// lands on every boundary, so the two differ in practice: each datasource is read the way its
/// own version would compute the reference's queries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Windows {
    /// From the datasource's version (`/api/v1/status/buildinfo`): closed below 3, left-open
    /// from 3; closed (the 2.x semantics) when the version cannot be read.
    #[default]
    Auto,
    /// `[t − 15m, t]` (Prometheus 2.x).
    Closed,
    /// `(t − 15m, t]` (Prometheus 3).
    LeftOpen,
}

/// Whether a Prometheus of `version` (as `/api/v1/status/buildinfo` gives it, e.g. `2.42.0`,
/// `2.42.0+ds`, `v3.1.0`) uses closed windows; `None` when it is not a version.
pub fn closed_windows_of(version: &str) -> Option<bool> {
    let major: u32 = version
        .trim()
        .trim_start_matches('v')
        .split('.')
        .next()?
        .parse()
        .ok()?;
    Some(major < 3)
}

impl Prometheus {
    /// A datasource at `url` (e.g. `http://prometheus:9090`) with at most `concurrency`
    /// queries in flight, each limited to `timeout`.
    pub fn new(
        url: &str,
        auth: Auth,
        ca_pem: Option<&[u8]>,
        concurrency: usize,
        timeout: Duration,
    ) -> Result<Prometheus, QueryError> {
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5));
        if let Some(pem) = ca_pem {
            let cert = reqwest::Certificate::from_pem(pem)
                .map_err(|e| QueryError::Unreadable(format!("CA certificate: {e}")))?;
            builder = builder.add_root_certificate(cert);
        }
        let client = builder
            .build()
            .map_err(|e| QueryError::Unreachable(e.to_string()))?;
        Ok(Prometheus {
            base: url.trim_end_matches('/').to_owned(),
            auth,
            client,
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            retries: 3,
            queries: Counter::default(),
            windows: Windows::Auto,
            detected: Arc::default(),
            reads: Reads::Auto,
            remote: Arc::new(std::sync::atomic::AtomicBool::new(true)),
            lookback: Arc::default(),
        })
    }

    /// Reads intervals as `windows` says (the default: [`Windows::Auto`]).
    pub fn with_windows(mut self, windows: Windows) -> Prometheus {
        self.windows = windows;
        self
    }

    /// Whether this datasource's intervals are closed, `[t − 15m, t]` ([`Windows`]).
    pub async fn closed_windows(&self) -> bool {
        match self.windows {
            Windows::Closed => true,
            Windows::LeftOpen => false,
            Windows::Auto => {
                let found = self
                    .detected
                    .get_or_try_init(|| async {
                        let version = self.version().await?;
                        let closed = closed_windows_of(&version).ok_or_else(|| {
                            QueryError::Unreadable(format!("version {version:?}"))
                        })?;
                        tracing::info!(%version, closed, "Datasource windows from its version.");
                        Ok::<bool, QueryError>(closed)
                    })
                    .await;
                match found {
                    Ok(&closed) => closed,
                    Err(error) => {
                        // Not cached: the next job asks again.
                        tracing::warn!(%error, "Cannot read the datasource's version; using Prometheus 2.x windows (--datasource-windows to choose).");
                        true
                    }
                }
            }
        }
    }

    /// The datasource's version, from `/api/v1/status/buildinfo`.
    pub async fn version(&self) -> Result<String, QueryError> {
        #[derive(Deserialize)]
        struct Build {
            data: BuildData,
        }
        #[derive(Deserialize)]
        struct BuildData {
            version: String,
        }
        let request = self
            .client
            .get(format!("{}/api/v1/status/buildinfo", self.base));
        let response = self
            .authorised(request)
            .send()
            .await
            .map_err(|e| QueryError::Unreachable(e.to_string()))?;
        if !response.status().is_success() {
            return Err(QueryError::Unreadable(format!(
                "buildinfo answered {}",
                response.status()
            )));
        }
        let build: Build = response
            .json()
            .await
            .map_err(|e| QueryError::Unreadable(format!("buildinfo: {e}")))?;
        Ok(build.data.version)
    }

    fn authorised(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.auth {
            Auth::None => request,
            Auth::Bearer(token) => request.bearer_auth(token.expose()),
            Auth::Basic(user, password) => request.basic_auth(user, Some(password.expose())),
        }
    }

    /// Counts every query sent (retries included) in `counter`.
    pub fn counting(mut self, counter: Counter) -> Prometheus {
        self.queries = counter;
        self
    }

    /// The reference's reachability probe: the query `up` must answer.
    pub async fn handshake(&self) -> Result<(), QueryError> {
        self.instant("up", None).await.map(|_| ())
    }

    /// An instant query, at `time` (Unix seconds) or now.
    pub async fn instant(&self, query: &str, time: Option<i64>) -> Result<Vec<Series>, QueryError> {
        let mut params = vec![("query", query.to_owned())];
        if let Some(t) = time {
            params.push(("time", t.to_string()));
        }
        self.get("/api/v1/query", &params).await
    }

    /// A range query from `start` to `end` every `step` seconds.
    pub async fn range(
        &self,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<Vec<Series>, QueryError> {
        let params = [
            ("query", query.to_owned()),
            ("start", start.to_string()),
            ("end", end.to_string()),
            ("step", step.to_string()),
        ];
        self.get("/api/v1/query_range", &params).await
    }

    async fn get(&self, path: &str, params: &[(&str, String)]) -> Result<Vec<Series>, QueryError> {
        self.retrying(|| self.get_once(path, params)).await
    }

    /// `once` under a concurrency permit, again with backoff while it fails in a way worth
    /// retrying.
    async fn retrying<T, F: Future<Output = Result<T, QueryError>>>(
        &self,
        once: impl Fn() -> F,
    ) -> Result<T, QueryError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| QueryError::Unreachable(e.to_string()))?;
        let mut attempt = 0;
        loop {
            match once().await {
                Err(e) if e.retryable() && attempt < self.retries => {
                    attempt += 1;
                    let backoff = Duration::from_millis(200 * 2u64.pow(attempt));
                    tracing::debug!(error = %e, attempt, "Retrying a Prometheus query.");
                    tokio::time::sleep(backoff).await;
                }
                other => return other,
            }
        }
    }

    /// Sends `request` (authorised): its status and body.
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Sent, QueryError> {
        self.queries.inc();
        let response = self.authorised(request).send().await.map_err(|e| {
            if e.is_timeout() {
                QueryError::Timeout(e.to_string())
            } else {
                QueryError::Unreachable(e.to_string())
            }
        })?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = response
            .bytes()
            .await
            .map_err(|e| QueryError::Timeout(e.to_string()))?;
        Ok(Sent {
            status,
            content_type,
            body,
        })
    }

    async fn get_once(
        &self,
        path: &str,
        params: &[(&str, String)],
    ) -> Result<Vec<Series>, QueryError> {
        let request = self
            .client
            .get(format!("{}{path}", self.base))
            .query(params);
        let sent = self.send(request).await?;
        parse(sent.status, &sent.body)
    }
}

/// An answer of the datasource.
struct Sent {
    status: u16,
    content_type: String,
    body: bytes::Bytes,
}

/// The series of a query's response (`status`, `body`).
fn parse(status: u16, body: &[u8]) -> Result<Vec<Series>, QueryError> {
    let envelope: Envelope = serde_json::from_slice(body).map_err(|e| {
        if status >= 400 {
            QueryError::refused(status, body)
        } else {
            QueryError::Unreadable(e.to_string())
        }
    })?;
    if envelope.status != "success" {
        return Err(QueryError::Refused {
            status,
            message: envelope.error.unwrap_or_default(),
        });
    }
    let data = envelope
        .data
        .ok_or_else(|| QueryError::Unreadable("no data".into()))?;
    let raw = match data.result_type.as_ref() {
        "vector" | "matrix" => data.result,
        other => return Err(QueryError::Unreadable(format!("result type {other}"))),
    };
    Ok(raw
        .into_iter()
        .map(|r| {
            let sample = |(t, Value(v)): (f64, Value)| (t, v);
            // Mapped in place: the parsed vector becomes the series' samples.
            let mut samples: Vec<(f64, f64)> = r
                .values
                .unwrap_or_default()
                .into_iter()
                .map(sample)
                .collect();
            samples.extend(r.value.map(sample));
            Series {
                labels: r.metric,
                samples,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_values_parse_as_they_are_read() {
        let body = br#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"pod":"a"},"values":[[1,"0.25"],[2,"NaN"],[3,"+Inf"],[4,"-Inf"],[5,"1e3"],[6,"x"],[7,"\u0032"]]},
            {"metric":{"pod":"b"},"value":[8,"7"]}]}}"#;
        let series = parse(200, body).unwrap();
        let a: Vec<f64> = series[0].samples.iter().map(|s| s.1).collect();
        assert_eq!(a[0], 0.25);
        assert!(a[1].is_nan());
        assert_eq!(
            (a[2], a[3], a[4]),
            (f64::INFINITY, f64::NEG_INFINITY, 1000.0)
        );
        assert!(a[5].is_nan(), "what does not parse is NaN");
        assert_eq!(a[6], 2.0, "an escaped string parses too");
        assert_eq!(series[0].samples[6].0, 7.0);
        assert_eq!(series[1].samples, vec![(8.0, 7.0)]);
        assert_eq!(series[1].label("pod"), "b");
        let refused = parse(400, b"{\"status\":\"error\",\"error\":\"bad query\"}");
        assert!(
            matches!(refused, Err(QueryError::Refused { status: 400, .. })),
            "{refused:?}"
        );
        assert!(matches!(parse(200, b"{"), Err(QueryError::Unreadable(_))));
    }

    #[test]
    fn windows_follow_the_major_version() {
        for (version, closed) in [
            ("2.42.0", Some(true)),
            ("2.42.0+ds", Some(true)),
            ("v2.53.1", Some(true)),
            ("3.0.0", Some(false)),
            ("v3.5.1-rc.0", Some(false)),
            ("", None),
            ("unknown", None),
        ] {
            assert_eq!(closed_windows_of(version), closed, "{version}");
        }
    }
}
