//! Optional authentication of the write endpoints (or of everything).
//!
//! A request passes with `Authorization: Bearer <token>` matching the configured token, or
//! `Authorization: Basic <base64 user:password>` matching the configured user (the rules of
//! `rivulet_common::Credentials`, shared with the recommender).

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rivulet_common::Credentials;
pub use rivulet_common::credentials::Scope;

use crate::error::ApiError;

/// The configured credentials and which requests need them.
#[derive(Clone, Debug, Default)]
pub struct Auth {
    /// Accepted credentials (`rivulet_common::Credentials`).
    pub credentials: Credentials,
    /// Which requests need them.
    pub scope: Scope,
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

/// Middleware: answers 401 when a protected request lacks valid credentials.
pub async fn require_auth(State(auth): State<Auth>, request: Request, next: Next) -> Response {
    let protected = auth.scope == Scope::All || is_write(request.method(), request.uri().path());
    if protected && !auth.credentials.allows(request.headers()) {
        return ApiError::unauthorized().into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

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
