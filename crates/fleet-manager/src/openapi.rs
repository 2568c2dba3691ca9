//! The OpenAPI 3 document of the API (`GET /api/kafkas_mgmt/v1/openapi`), kept beside the
//! code and checked against the routes by the tests.

/// The document (JSON).
pub const DOCUMENT: &str = include_str!("openapi.json");
