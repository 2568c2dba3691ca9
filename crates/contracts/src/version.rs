//! The schema version of a contract that has several (`raw-data-in`, `summary-stats`).

/// A contract's schema version. Each version adds fields to the one before; a reader of a
/// newer version reads an older writer's record with the added fields unknown (`null`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Version {
    /// The first version.
    V1,
    /// v1 + defects.
    V2,
    /// v2 + costs.
    V3,
}

impl Version {
    /// Every version, oldest first.
    pub const ALL: [Version; 3] = [Version::V1, Version::V2, Version::V3];

    /// `v1`, `v2` or `v3` (metric labels, file names, the UI's `schema_version`).
    pub fn label(self) -> &'static str {
        match self {
            Version::V1 => "v1",
            Version::V2 => "v2",
            Version::V3 => "v3",
        }
    }

    /// The version of a label written by [`Version::label`].
    pub fn from_label(label: &str) -> Option<Version> {
        Version::ALL.into_iter().find(|v| v.label() == label)
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip_and_order_follows_the_versions() {
        for v in Version::ALL {
            assert_eq!(Version::from_label(v.label()), Some(v));
        }
        assert_eq!(Version::from_label("v4"), None);
        assert!(Version::V1 < Version::V2 && Version::V2 < Version::V3);
    }
}
