//! A plain client of a Confluent-compatible registry's REST API, for the calls
//! `schema_registry_converter` does not make (configs, compatibility checks): the same URLs,
//! fail-over order, authentication and timeout as [`RegistryArgs::settings`].

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::avro::RegistryArgs;
use crate::{Error, Result};

/// The registry's media type for requests with a body.
pub const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// A REST client of the registry at [`RegistryArgs::urls`]: a call goes to the first URL and,
/// when that one cannot be reached (connection refused, timeout), to the next. An answer of any
/// status is final: another replica would give the same one.
#[derive(Clone, Debug)]
pub struct RegistryClient {
    http: reqwest::Client,
    urls: Vec<String>,
    auth: Option<crate::Secret>,
}

impl RegistryArgs {
    /// A REST client with these URLs, credentials and timeout.
    pub fn client(&self) -> Result<RegistryClient> {
        let urls: Vec<String> = self
            .urls
            .iter()
            .map(|u| u.trim_end_matches('/').to_owned())
            .filter(|u| !u.is_empty())
            .collect();
        if urls.is_empty() {
            return Err(Error::NoRegistryUrl);
        }
        let auth = if let Some(token) = self.bearer() {
            Some(crate::Secret::new(format!("Bearer {}", token.expose())))
        } else {
            self.user.as_ref().map(|user| {
                use base64::Engine;
                let password = self
                    .basic_password()
                    .map(|p| p.expose())
                    .unwrap_or_default();
                let pair = format!("{user}:{password}");
                crate::Secret::new(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                ))
            })
        };
        let timeout = Duration::from_secs(self.timeout_secs);
        let http = reqwest::Client::builder()
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .timeout(timeout)
            .build()
            .map_err(|e| Error::RegistryHttp(e.to_string()))?;
        Ok(RegistryClient { http, urls, auth })
    }
}

impl RegistryClient {
    /// The URLs, in fail-over order.
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// Sends `method path` with `body` (JSON) and returns the status and the JSON answer
    /// (`null` when the answer is not JSON).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value)> {
        let mut last = None;
        for base in &self.urls {
            let mut request = self.http.request(method.clone(), format!("{base}{path}"));
            if let Some(body) = body {
                request = request
                    .header("content-type", CONTENT_TYPE)
                    .body(body.to_string());
            }
            if let Some(auth) = &self.auth {
                request = request.header("authorization", auth.expose());
            }
            match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let value = response.json::<Value>().await.unwrap_or(Value::Null);
                    return Ok((status, value));
                }
                Err(error) => {
                    tracing::warn!(url = %base, %error, "Schema registry unreachable; trying the next URL.");
                    last = Some(format!("{base}: {error}"));
                }
            }
        }
        Err(Error::RegistryHttp(last.unwrap_or_default()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests
    use super::*;

    #[tokio::test]
    async fn the_next_url_answers_when_the_first_is_down() {
        // One port nobody listens on, then a tiny server that answers every request with JSON.
        let down = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let down_url = format!("http://{}", down.local_addr().unwrap());
        drop(down);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let up_url = format!("http://{}", listener.local_addr().unwrap());
        let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let record = seen.clone();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = vec![0; 4096];
            let n = socket.read(&mut buf).await.unwrap();
            *record.lock().unwrap() = String::from_utf8_lossy(&buf[..n]).into_owned();
            let body = r#"{"compatibilityLevel":"FULL"}"#;
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            socket.write_all(answer.as_bytes()).await.unwrap();
        });
        let mut args = RegistryArgs::new(down_url);
        args.urls.push(format!("{up_url}/"));
        args.token = Some(crate::Secret::new("t0k"));
        let client = args.client().unwrap();
        let (status, value) = client.send(Method::GET, "/config", None).await.unwrap();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(value["compatibilityLevel"], "FULL");
        let request = seen.lock().unwrap().clone();
        assert!(request.starts_with("GET /config "), "{request}");
        assert!(
            request.to_lowercase().contains("authorization: bearer t0k"),
            "{request}"
        );
        assert!(
            !format!("{client:?}").contains("t0k"),
            "Debug hides the credentials"
        );
    }

    #[test]
    fn no_url_is_an_error() {
        let mut args = RegistryArgs::new("");
        args.urls.clear();
        assert!(matches!(args.client(), Err(Error::NoRegistryUrl)));
    }
}
