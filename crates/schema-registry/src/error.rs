//! Errors: [`Error`] for start-up and the store, [`ApiError`] for what HTTP clients see.
//!
//! `ApiError` carries Confluent's status and `error_code` pairs so Confluent's clients react to
//! our answers as they would to Confluent's. Client mistakes are always 4xx; a 5xx is logged.

use std::time::Duration;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The content type of every JSON answer.
pub const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// Start-up and store errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Building a client failed.
    #[error(transparent)]
    Common(#[from] rivulet_common::Error),
    /// The store topic has the wrong number of partitions.
    #[error(
        "topic {topic} must have exactly one partition to be a total order, it has {partitions}"
    )]
    TopicLayout {
        /// Topic.
        topic: String,
        /// Partitions found.
        partitions: usize,
    },
    /// The log's topic is configured so that the registry could lose or misread state.
    #[error(
        "topic {topic} has {key}={} but the schema registry needs cleanup.policy=delete, retention.ms=-1 and retention.bytes=-1 (compaction or a retention limit can lose or reorder the claims it keeps; fix the topic, e.g. its KafkaTopic, and start again)",
        found.as_deref().unwrap_or("<not reported>")
    )]
    TopicConfig {
        /// Topic.
        topic: String,
        /// The unsafe setting.
        key: &'static str,
        /// What the broker reported (`None`: not reported).
        found: Option<String>,
    },
    /// The reader task stopped.
    #[error("the _schemas reader stopped")]
    ReaderStopped,
    /// The log did not catch up in time.
    #[error("timed out after {0:?} waiting for the _schemas log")]
    Timeout(Duration),
    /// The HTTP listener failed.
    #[error("http listener on {addr}: {source}")]
    Listen {
        /// Address.
        addr: std::net::SocketAddr,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An HTTP error in Confluent's shape: `{"error_code": 40401, "message": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Confluent error code.
    pub code: u32,
    /// Human-readable message.
    pub message: String,
}

impl ApiError {
    /// An error with its status and Confluent code.
    pub fn new(status: StatusCode, code: u32, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// 40401
    pub fn subject_not_found(subject: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            40401,
            format!("Subject '{subject}' not found."),
        )
    }
    /// 40402
    pub fn version_not_found(subject: &str, version: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            40402,
            format!("Version {version} not found for subject '{subject}'."),
        )
    }
    /// 40403
    pub fn schema_not_found(what: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            40403,
            format!("Schema {what} not found."),
        )
    }
    /// 40404
    pub fn subject_soft_deleted(subject: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            40404,
            format!(
                "Subject '{subject}' was soft deleted. Set permanent=true to delete permanently."
            ),
        )
    }
    /// 40405
    pub fn subject_not_soft_deleted(subject: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            40405,
            format!("Subject '{subject}' was not deleted first before being permanently deleted."),
        )
    }
    /// 40406
    pub fn version_soft_deleted(subject: &str, version: u32) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            40406,
            format!(
                "Subject '{subject}' Version {version} was soft deleted. Set permanent=true to delete permanently."
            ),
        )
    }
    /// 40407
    pub fn version_not_soft_deleted(subject: &str, version: u32) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            40407,
            format!(
                "Subject '{subject}' Version {version} was not deleted first before being permanently deleted."
            ),
        )
    }
    /// 40408
    pub fn subject_level_not_configured(subject: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            40408,
            format!("Subject '{subject}' does not have subject-level compatibility configured."),
        )
    }
    /// 40409
    pub fn subject_mode_not_configured(subject: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            40409,
            format!("Subject '{subject}' does not have subject-level mode configured."),
        )
    }
    /// 42201
    pub fn invalid_schema(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, 42201, message)
    }
    /// 42202
    pub fn invalid_version(version: &str) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            42202,
            format!(
                "The specified version '{version}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\"."
            ),
        )
    }
    /// 42203
    pub fn invalid_level(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, 42203, message)
    }
    /// 42204
    pub fn invalid_mode(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, 42204, message)
    }
    /// 42205
    pub fn not_permitted(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, 42205, message)
    }
    /// 42206
    pub fn referenced(subject: &str, version: u32) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            42206,
            format!(
                "One or more references exist to the schema {{subject={subject}, version={version}}}."
            ),
        )
    }
    /// 409
    pub fn incompatible(messages: &[String]) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            409,
            format!(
                "Schema being registered is incompatible with an earlier schema for subject: {}",
                messages.join("; ")
            ),
        )
    }
    /// 400: a malformed body.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, 400, message)
    }
    /// 422: a well-formed body of the wrong shape.
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, 422, message)
    }
    /// 401
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            401,
            "Unauthorized: this endpoint needs valid credentials.",
        )
    }
    /// 404 for an unknown route.
    pub fn no_route() -> Self {
        Self::new(StatusCode::NOT_FOUND, 404, "HTTP 404 Not Found")
    }
    /// 405
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            405,
            "HTTP 405 Method Not Allowed",
        )
    }
    /// 50001
    pub fn store(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, 50001, message)
    }

    /// Whether this is a "does not exist" answer that a catch-up with the log might change.
    pub fn is_not_found(&self) -> bool {
        matches!(self.code, 40401..=40403)
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        tracing::error!(%error, "Store error while serving a request.");
        match error {
            Error::Timeout(_) => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                50002,
                "Operation timed out",
            ),
            _ => Self::store("Error in the backend data store"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(code = self.code, message = %self.message, "Answered with a server error.");
        }
        let body =
            serde_json::json!({ "error_code": self.code, "message": self.message }).to_string();
        (self.status, [(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response()
    }
}
