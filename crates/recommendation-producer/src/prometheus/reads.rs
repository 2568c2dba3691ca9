//! Remote reads ([`crate::remote_read`]) of a datasource, and what they need to know of it:
//! whether it answers them, and its lookback delta.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use serde::Deserialize;

use super::{Prometheus, QueryError, transient};
use crate::remote_read;

/// How the per-pod series are read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Reads {
    /// Prometheus's remote-read API (stored chunks, [`crate::remote_read`]) where the
    /// datasource answers it with streamed chunks, else the query API.
    #[default]
    Auto,
    /// The query API only.
    Query,
}

impl Prometheus {
    /// Reads the per-pod series as `reads` says (the default: [`Reads::Auto`]).
    pub fn with_reads(mut self, reads: Reads) -> Prometheus {
        self.reads = reads;
        self
    }

    /// Whether remote reads are to be tried.
    pub fn remote_reads(&self) -> bool {
        self.reads == Reads::Auto && self.remote.load(Ordering::Relaxed)
    }

    /// The samples of `queries` through the remote-read API, or `None` when this datasource
    /// does not answer it with streamed chunks (then remembered: the query API is used).
    pub async fn read(
        &self,
        queries: &[remote_read::Query],
    ) -> Result<Option<Vec<remote_read::Series>>, QueryError> {
        let sent = self
            .retrying(|| async {
                let request = self
                    .client
                    .post(format!("{}/api/v1/read", self.base))
                    .header("Content-Encoding", "snappy")
                    .header("Content-Type", "application/x-protobuf")
                    .header("X-Prometheus-Remote-Read-Version", "0.1.0")
                    .body(remote_read::request(queries));
                let sent = self.send(request).await?;
                // Tried again as a query would be; but 501 says the API is absent (the query
                // API answers instead, below).
                if transient(sent.status) && sent.status != 501 {
                    return Err(QueryError::refused(sent.status, &sent.body));
                }
                Ok(sent)
            })
            .await?;
        let streamed = sent
            .content_type
            .starts_with("application/x-streamed-protobuf");
        if matches!(sent.status, 404 | 405 | 415 | 501) || (sent.status == 200 && !streamed) {
            tracing::warn!(
                status = sent.status,
                "The datasource does not answer remote reads with streamed chunks; using its query API."
            );
            self.remote.store(false, Ordering::Relaxed);
            return Ok(None);
        }
        if sent.status != 200 {
            return Err(QueryError::refused(sent.status, &sent.body));
        }
        let ranges: Vec<(i64, i64)> = queries.iter().map(|q| (q.start_ms, q.end_ms)).collect();
        remote_read::decode(&sent.body, &ranges)
            .map(Some)
            .map_err(|e| QueryError::Unreadable(e.to_string()))
    }

    /// The datasource's lookback delta in ms (`query.lookback-delta` of
    /// `/api/v1/status/flags`); Prometheus's default, 5 minutes, when it cannot be read.
    pub async fn lookback_ms(&self) -> i64 {
        const DEFAULT: i64 = 300_000;
        let found = self
            .lookback
            .get_or_try_init(|| async {
                #[derive(Deserialize)]
                struct Flags {
                    data: BTreeMap<String, String>,
                }
                let request = self
                    .client
                    .get(format!("{}/api/v1/status/flags", self.base));
                let response = self
                    .authorised(request)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                let flags: Flags = response.json().await.map_err(|e| e.to_string())?;
                let value = flags
                    .data
                    .get("query.lookback-delta")
                    .ok_or("no query.lookback-delta")?;
                go_duration_ms(value).ok_or_else(|| format!("lookback delta {value:?}"))
            })
            .await;
        match found {
            Ok(&ms) => ms,
            Err(error) => {
                // Not cached: the next job asks again.
                tracing::warn!(%error, "Cannot read the datasource's lookback delta; using 5m.");
                DEFAULT
            }
        }
    }
}

/// Milliseconds of a Go duration as Prometheus prints it (`5m`, `1m30s`, `2h0m0s`, `500ms`).
pub fn go_duration_ms(text: &str) -> Option<i64> {
    let mut total = 0i64;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let n: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let ms = match &rest[..unit] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            "y" => 31_536_000_000,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(ms)?)?;
        rest = &rest[unit..];
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_read_as_prometheus_prints_them() {
        assert_eq!(go_duration_ms("5m"), Some(300_000));
        assert_eq!(go_duration_ms("1m30s"), Some(90_000));
        assert_eq!(go_duration_ms("2h0m0s"), Some(7_200_000));
        assert_eq!(go_duration_ms("500ms"), Some(500));
        for bad in ["", "5", "m", "5x", "-5m", "99999999999999999999y"] {
            assert_eq!(go_duration_ms(bad), None, "{bad}");
        }
    }
}
