//! What the registry's operations take and give back.

use crate::error::ApiError;
use crate::schema::Reference;

/// A schema as submitted for registration, look-up or a compatibility check.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Submission {
    /// The schema text.
    #[serde(default)]
    pub schema: String,
    /// `AVRO` when absent.
    #[serde(default)]
    pub schema_type: Option<String>,
    /// References to other subjects' schemas.
    #[serde(default)]
    pub references: Vec<Reference>,
    /// Explicit id (IMPORT mode only).
    #[serde(default)]
    pub id: Option<u32>,
    /// Explicit version (IMPORT mode only).
    #[serde(default)]
    pub version: Option<u32>,
}

/// A version selector from a URL: a number or `latest` (also `-1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VersionSpec {
    /// The newest live version.
    Latest,
    /// A version number.
    Number(u32),
}

impl VersionSpec {
    /// Parses a URL segment; anything else is 42202.
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        if text.eq_ignore_ascii_case("latest") || text == "-1" {
            return Ok(Self::Latest);
        }
        match text.parse::<u32>() {
            Ok(n) if (1..=i32::MAX as u32).contains(&n) => Ok(Self::Number(n)),
            _ => Err(ApiError::invalid_version(text)),
        }
    }
}

/// One subject version with its schema, as the read endpoints return it.
#[derive(Clone, Debug)]
pub struct Found {
    /// Subject.
    pub subject: String,
    /// Version.
    pub version: u32,
    /// Schema id.
    pub id: u32,
    /// Schema text.
    pub schema: String,
    /// References.
    pub references: Vec<Reference>,
    /// Soft-deleted.
    pub deleted: bool,
}
