//! Optional authentication of the write endpoints (or of everything).
//!
//! A request passes with `Authorization: Bearer <token>` matching the configured token, or
//! `Authorization: Basic <base64 user:password>` matching the configured user. Comparison takes
//! the same time whatever the first differing byte, so a token cannot be guessed byte by byte.

use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use rivulet_common::Secret;

use crate::error::ApiError;

/// Which requests need credentials.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Scope {
    /// Registrations, deletions and config or mode changes.
    #[default]
    Writes,
    /// Every API request (health and metrics stay open for probes).
    All,
}

/// The configured credentials.
#[derive(Clone, Debug, Default)]
pub struct Auth {
    /// Accepted bearer token.
    pub token: Option<Secret>,
    /// Accepted basic-auth user and password.
    pub basic: Option<(String, Secret)>,
    /// Which requests need them.
    pub scope: Scope,
}

impl Auth {
    /// Whether any credentials are configured.
    pub fn enabled(&self) -> bool {
        self.token.is_some() || self.basic.is_some()
    }

    fn accepts(&self, authorization: Option<&str>) -> bool {
        let Some(value) = authorization else {
            return false;
        };
        let (scheme, credentials) = value.split_once(' ').unwrap_or((value, ""));
        if scheme.eq_ignore_ascii_case("bearer") {
            return self
                .token
                .as_ref()
                .is_some_and(|t| same(t.expose().as_bytes(), credentials.trim().as_bytes()));
        }
        if scheme.eq_ignore_ascii_case("basic") {
            let Some((user, password)) = &self.basic else {
                return false;
            };
            let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(credentials.trim())
            else {
                return false;
            };
            let expected = format!("{user}:{}", password.expose());
            return same(expected.as_bytes(), &decoded);
        }
        false
    }
}

/// Whether a request changes state: what [`Scope::Writes`] protects.
fn is_write(method: &Method, path: &str) -> bool {
    match *method {
        Method::PUT | Method::DELETE => true,
        // POST /subjects/{s} is a look-up and POST /compatibility/... a check: both read.
        Method::POST => path.starts_with("/subjects/") && path.ends_with("/versions"),
        _ => false,
    }
}

fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Middleware: answers 401 when a protected request lacks valid credentials.
pub async fn require_auth(State(auth): State<Auth>, request: Request, next: Next) -> Response {
    let protected = auth.enabled()
        && (auth.scope == Scope::All || is_write(request.method(), request.uri().path()));
    if protected {
        let header = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if !auth.accepts(header) {
            return ApiError::unauthorized().into_response();
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_matching_credentials() {
        let auth = Auth {
            token: Some(Secret::new("tok")),
            basic: Some(("u".into(), Secret::new("p"))),
            scope: Scope::Writes,
        };
        assert!(auth.accepts(Some("Bearer tok")));
        assert!(!auth.accepts(Some("Bearer to")));
        assert!(!auth.accepts(None));
        let basic = base64::engine::general_purpose::STANDARD.encode("u:p");
        assert!(auth.accepts(Some(&format!("Basic {basic}"))));
        assert!(!auth.accepts(Some("Basic !!!")));
    }

    #[test]
    fn writes_are_recognised() {
        assert!(is_write(&Method::POST, "/subjects/a/versions"));
        assert!(!is_write(&Method::POST, "/subjects/a"));
        assert!(!is_write(
            &Method::POST,
            "/compatibility/subjects/a/versions"
        ));
        assert!(is_write(&Method::DELETE, "/subjects/a"));
        assert!(is_write(&Method::PUT, "/config"));
        assert!(!is_write(&Method::GET, "/schemas/ids/1"));
    }
}
