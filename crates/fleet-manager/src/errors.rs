//! The error catalogue (`GET /errors`) and the error body every failure answers with:
//! `{"kind": "Error", "id": "7", "href": …, "code": "KAFKAS-MGMT-7", "reason": …,
//! "operation_id": …}`. Codes and HTTP statuses are the reference's, so a client that branches
//! on `code` works unchanged; the reasons are Rivulet's words. One code is Rivulet's own:
//! `KAFKAS-MGMT-503`, the database cannot be reached (the reference answers 500 there).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Where the catalogue lives.
pub const ERRORS_PATH: &str = "/api/kafkas_mgmt/v1/errors";

/// One entry of the catalogue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    Forbidden,
    MaxAllowedInstanceReached,
    Conflict,
    NotFound,
    Validation,
    General,
    NotImplemented,
    Unauthorized,
    Unauthenticated,
    MalformedRequest,
    BadRequest,
    FailedToParseSearch,
    TooManyKafkaInstancesReached,
    SyncActionNotSupported,
    InsufficientQuota,
    ProviderNotSupported,
    RegionNotSupported,
    MalformedKafkaClusterName,
    MaximumFieldLength,
    DuplicateKafkaClusterName,
    InstanceTypeNotSupported,
    InstancePlanNotSupported,
    Unavailable,
}

impl Code {
    /// Every code, in the catalogue's order.
    pub const ALL: [Code; 23] = [
        Code::Forbidden,
        Code::MaxAllowedInstanceReached,
        Code::Conflict,
        Code::NotFound,
        Code::Validation,
        Code::General,
        Code::NotImplemented,
        Code::Unauthorized,
        Code::Unauthenticated,
        Code::MalformedRequest,
        Code::BadRequest,
        Code::FailedToParseSearch,
        Code::TooManyKafkaInstancesReached,
        Code::ProviderNotSupported,
        Code::RegionNotSupported,
        Code::MalformedKafkaClusterName,
        Code::MaximumFieldLength,
        Code::DuplicateKafkaClusterName,
        Code::InstanceTypeNotSupported,
        Code::InstancePlanNotSupported,
        Code::SyncActionNotSupported,
        Code::InsufficientQuota,
        Code::Unavailable,
    ];

    /// The number in `KAFKAS-MGMT-n`.
    pub fn number(self) -> u16 {
        match self {
            Code::Forbidden => 4,
            Code::MaxAllowedInstanceReached => 5,
            Code::Conflict => 6,
            Code::NotFound => 7,
            Code::Validation => 8,
            Code::General => 9,
            Code::NotImplemented => 10,
            Code::Unauthorized => 11,
            Code::Unauthenticated => 15,
            Code::MalformedRequest => 17,
            Code::BadRequest => 21,
            Code::FailedToParseSearch => 23,
            Code::TooManyKafkaInstancesReached => 24,
            Code::ProviderNotSupported => 30,
            Code::RegionNotSupported => 31,
            Code::MalformedKafkaClusterName => 32,
            Code::MaximumFieldLength => 34,
            Code::DuplicateKafkaClusterName => 36,
            Code::InstanceTypeNotSupported => 41,
            Code::InstancePlanNotSupported => 42,
            Code::SyncActionNotSupported => 103,
            Code::InsufficientQuota => 120,
            Code::Unavailable => 503,
        }
    }

    /// The HTTP status it answers with.
    pub fn status(self) -> StatusCode {
        match self {
            Code::Forbidden
            | Code::MaxAllowedInstanceReached
            | Code::Unauthorized
            | Code::TooManyKafkaInstancesReached
            | Code::InsufficientQuota => StatusCode::FORBIDDEN,
            Code::Conflict | Code::DuplicateKafkaClusterName => StatusCode::CONFLICT,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::General => StatusCode::INTERNAL_SERVER_ERROR,
            Code::NotImplemented => StatusCode::METHOD_NOT_ALLOWED,
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Code::Validation
            | Code::MalformedRequest
            | Code::BadRequest
            | Code::FailedToParseSearch
            | Code::ProviderNotSupported
            | Code::RegionNotSupported
            | Code::MalformedKafkaClusterName
            | Code::MaximumFieldLength
            | Code::InstanceTypeNotSupported
            | Code::InstancePlanNotSupported
            | Code::SyncActionNotSupported => StatusCode::BAD_REQUEST,
        }
    }

    /// The catalogue's general reason.
    pub fn reason(self) -> &'static str {
        match self {
            Code::Forbidden => "The caller may not do this",
            Code::MaxAllowedInstanceReached => "The caller's instance limit is reached",
            Code::Conflict => "The request conflicts with the resource's current state",
            Code::NotFound => "No such resource",
            Code::Validation => "The request is not valid",
            Code::General => "Unexpected failure",
            Code::NotImplemented => "Not supported",
            Code::Unauthorized => "The caller is not allowed to use this resource",
            Code::Unauthenticated => "The request carries no valid credentials",
            Code::MalformedRequest => "The request body cannot be read",
            Code::BadRequest => "Bad request",
            Code::FailedToParseSearch => "The search expression cannot be parsed",
            Code::TooManyKafkaInstancesReached => "The region has no capacity left",
            Code::ProviderNotSupported => "Cloud provider not supported",
            Code::RegionNotSupported => "Region not supported",
            Code::MalformedKafkaClusterName => "The instance name is not valid",
            Code::MaximumFieldLength => "A field is too long",
            Code::DuplicateKafkaClusterName => "An instance of this name exists already",
            Code::InstanceTypeNotSupported => "Instance type not supported",
            Code::InstancePlanNotSupported => "Instance plan not supported",
            Code::SyncActionNotSupported => "Only asynchronous requests are supported (async=true)",
            Code::InsufficientQuota => "Not enough quota",
            Code::Unavailable => "The service's database cannot be reached: try again later",
        }
    }

    /// The code of a number (`GET /errors/{id}`).
    pub fn from_number(n: u16) -> Option<Code> {
        Code::ALL.into_iter().find(|c| c.number() == n)
    }

    /// The catalogue entry (`kind: Error` with the general reason).
    pub fn entry(self) -> Value {
        let n = self.number();
        json!({
            "kind": "Error",
            "id": n.to_string(),
            "href": format!("{ERRORS_PATH}/{n}"),
            "code": format!("KAFKAS-MGMT-{n}"),
            "reason": self.reason(),
        })
    }
}

/// A failed request: a code and what exactly went wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// The catalogue entry.
    pub code: Code,
    /// The specific reason (the general one when empty).
    pub reason: String,
}

impl ApiError {
    /// An error with a specific reason.
    pub fn new(code: Code, reason: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.into(),
        }
    }

    /// `404` for a Kafka instance.
    pub fn not_found(id: &str) -> Self {
        Self::new(Code::NotFound, format!("Kafka instance {id} not found"))
    }

    /// The error body, with the request's operation id.
    pub fn body(&self, operation_id: &str) -> Value {
        let mut v = self.code.entry();
        if !self.reason.is_empty() {
            v["reason"] = Value::String(self.reason.clone());
        }
        v["operation_id"] = Value::String(operation_id.to_owned());
        v
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KAFKAS-MGMT-{}: {}", self.code.number(), self.reason)
    }
}

/// A failure of the database: unreachable (pool timeout, I/O) is 503, anything else 500.
/// The details go to the log, not to the caller.
impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        if crate::store::is_unavailable(&e) {
            tracing::warn!(error = %e, "The database cannot be reached.");
            ApiError::new(Code::Unavailable, "")
        } else {
            tracing::error!(error = %e, "Database query failed.");
            ApiError::new(Code::General, "")
        }
    }
}

/// An [`ApiError`] with the operation id of its request: the response.
#[derive(Debug)]
pub struct Failure {
    /// What failed.
    pub error: ApiError,
    /// The request's operation id.
    pub operation_id: String,
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let status = self.error.code.status();
        let mut response =
            (status, axum::Json(self.error.body(&self.operation_id))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_unique_and_found_again() {
        let mut seen = std::collections::HashSet::new();
        for c in Code::ALL {
            assert!(seen.insert(c.number()), "{c:?}");
            assert_eq!(Code::from_number(c.number()), Some(c));
        }
        assert_eq!(Code::from_number(1), None);
    }

    #[test]
    fn body_has_the_reference_shape() {
        let e = ApiError::new(Code::NotFound, "Kafka instance x not found");
        let b = e.body("op-1");
        assert_eq!(b["kind"], "Error");
        assert_eq!(b["id"], "7");
        assert_eq!(b["code"], "KAFKAS-MGMT-7");
        assert_eq!(b["href"], "/api/kafkas_mgmt/v1/errors/7");
        assert_eq!(b["reason"], "Kafka instance x not found");
        assert_eq!(b["operation_id"], "op-1");
        assert_eq!(Code::Unauthenticated.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(Code::InsufficientQuota.status(), StatusCode::FORBIDDEN);
    }
}
