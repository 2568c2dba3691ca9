//! Konsumerator's `prometheus` metrics provider: three instant queries (messages behind,
//! production rate, consumption rate), each answering one series per partition (the partition
//! in `partitionLabel`); every address is asked in parallel and the first answer wins. A query
//! that no address answers fails the sync (the previous decision stays).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;

use crate::crd::{PrometheusSpec, QuerySpec};
use crate::metrics::{self, Metrics as Exported};
use crate::predict::Metrics;

/// Why a sync failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No address answered the query.
    #[error("no Prometheus of {addresses:?} answered the {kind} query: {last}")]
    Unanswered {
        /// `offset`, `production_rate` or `consumption_rate`.
        kind: &'static str,
        /// The addresses asked.
        addresses: Vec<String>,
        /// The last error seen.
        last: String,
    },
}

/// Per partition, the value of each series of a Prometheus query answer (`vector` or
/// `matrix`: a matrix's last sample), truncated to an integer as the reference does; series
/// without a numeric partition label are skipped.
pub fn parse(body: &serde_json::Value, label: &str) -> Result<BTreeMap<i32, i64>, String> {
    if body["status"] != "success" {
        return Err(format!(
            "status {}: {}",
            body["status"],
            body["error"].as_str().unwrap_or("no error given")
        ));
    }
    let data = &body["data"];
    let result = data["result"].as_array().ok_or("no data.result array")?;
    let mut out = BTreeMap::new();
    for series in result {
        let Some(partition) = series["metric"][label]
            .as_str()
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        let sample = match data["resultType"].as_str() {
            Some("vector") => &series["value"],
            Some("matrix") => series["values"]
                .as_array()
                .and_then(|v| v.last())
                .unwrap_or(&serde_json::Value::Null),
            other => return Err(format!("unsupported result type {other:?}")),
        };
        let Some(value) = sample[1].as_str().and_then(|v| v.parse::<f64>().ok()) else {
            continue;
        };
        if value.is_finite() {
            out.insert(partition, value as i64);
        }
    }
    Ok(out)
}

/// Asks Prometheus servers.
#[derive(Clone)]
pub struct Provider {
    http: reqwest::Client,
    timeout: Duration,
}

impl Provider {
    /// A provider whose each HTTP request gives up after `timeout`.
    pub fn new(timeout: Duration) -> Self {
        Self {
            http: reqwest::Client::new(),
            timeout,
        }
    }

    async fn ask(&self, address: &str, query: &QuerySpec) -> Result<BTreeMap<i32, i64>, String> {
        let url = format!("{}/api/v1/query", address.trim_end_matches('/'));
        let response = self
            .http
            .get(&url)
            .query(&[("query", query.query.as_str())])
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| format!("{address}: {e}"))?;
        let status = response.status();
        let body: serde_json::Value = response
            .json()
            .await
            .map_err(|e| format!("{address}: HTTP {status}, not a Prometheus answer: {e}"))?;
        parse(&body, &query.partition_label).map_err(|e| format!("{address}: {e}"))
    }

    async fn query(
        &self,
        consumer: &str,
        spec: &PrometheusSpec,
        kind: &'static str,
        query: &QuerySpec,
        m: &Exported,
    ) -> Result<BTreeMap<i32, i64>, Error> {
        let started = Instant::now();
        m.prom_requests
            .get_or_create(&metrics::with(consumer, "type", kind))
            .inc();
        let mut asked: FuturesUnordered<_> = spec
            .address
            .iter()
            .map(|address| async move {
                let labels = metrics::with(consumer, "addr", address.clone());
                m.prom_sub_requests.get_or_create(&labels).inc();
                let t = Instant::now();
                let r = self.ask(address, query).await;
                match &r {
                    Ok(_) => m
                        .prom_sub_request_duration
                        .observe(&labels, t.elapsed().as_secs_f64()),
                    Err(_) => {
                        m.prom_sub_request_errors.get_or_create(&labels).inc();
                    }
                }
                r
            })
            .collect();
        let mut last = String::from("no address configured");
        while let Some(answer) = asked.next().await {
            match answer {
                Ok(values) => {
                    let labels = metrics::with(consumer, "type", kind);
                    m.prom_request_duration
                        .observe(&labels, started.elapsed().as_secs_f64());
                    m.samples_received
                        .get_or_create(&labels)
                        .set(values.len() as i64);
                    return Ok(values);
                }
                Err(e) => last = e,
            }
        }
        m.prom_request_errors
            .get_or_create(&metrics::with(consumer, "type", kind))
            .inc();
        Err(Error::Unanswered {
            kind,
            addresses: spec.address.clone(),
            last,
        })
    }

    /// One sync: the three queries.
    pub async fn sync(
        &self,
        consumer: &str,
        spec: &PrometheusSpec,
        m: &Exported,
    ) -> Result<Metrics, Error> {
        let (behind, production, consumption) = tokio::try_join!(
            self.query(consumer, spec, "offset", &spec.offset, m),
            self.query(consumer, spec, "production_rate", &spec.production, m),
            self.query(consumer, spec, "consumption_rate", &spec.consumption, m),
        )?;
        Ok(Metrics {
            production,
            consumption,
            behind,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_and_matrices_by_partition() {
        let vector = serde_json::json!({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {"partition": "0"}, "value": [1.0, "20000.7"]},
            {"metric": {"partition": "1"}, "value": [1.0, "NaN"]},
            {"metric": {"partition": "x"}, "value": [1.0, "5"]},
            {"metric": {}, "value": [1.0, "5"]},
            {"metric": {"partition": "2"}, "value": [1.0, "12"]}
        ]}});
        assert_eq!(
            parse(&vector, "partition"),
            Ok([(0, 20000), (2, 12)].into())
        );
        let matrix = serde_json::json!({"status": "success", "data": {"resultType": "matrix", "result": [
            {"metric": {"p": "3"}, "values": [[1.0, "1"], [2.0, "7"]]}
        ]}});
        assert_eq!(parse(&matrix, "p"), Ok([(3, 7)].into()));
        let error = serde_json::json!({"status": "error", "error": "parse error"});
        assert!(parse(&error, "p").unwrap_err().contains("parse error"));
        let scalar = serde_json::json!({"status": "success", "data": {"resultType": "scalar", "result": []}});
        assert_eq!(
            parse(&scalar, "p"),
            Ok(BTreeMap::new()),
            "no series, nothing to say"
        );
    }
}
