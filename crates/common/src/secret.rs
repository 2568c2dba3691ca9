//! A string that never shows up in logs.

use std::fmt;
use std::str::FromStr;

/// A secret value (password, token). `Debug` and `Display` print `******`; use
/// [`Secret::expose`] at the one place the raw value is handed to a client.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The raw value, for handing to a client library.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl Secret {
    /// Reads a secret from a file, for the `--…-file` flags (a command line is readable by every
    /// user of the machine through /proc; a mounted Kubernetes Secret is a file). One trailing
    /// newline is dropped, as `echo` and most editors add one. The error names the path, never
    /// the contents.
    pub fn from_file(path: &str) -> Result<Self, String> {
        let mut text =
            std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
        if text.ends_with('\n') {
            text.pop();
            if text.ends_with('\r') {
                text.pop();
            }
        }
        if text.is_empty() {
            return Err(format!("{path} is empty"));
        }
        Ok(Self(text))
    }

    /// The value given directly or through its file flag (clap makes the two conflict).
    pub fn either<'a>(direct: Option<&'a Self>, file: Option<&'a Self>) -> Option<&'a Self> {
        direct.or(file)
    }
}

/// Whether a configuration key names a credential, so its value is redacted wherever the key
/// is shown (`--kafka-option sasl.password=…`, `ssl.key.password`, `sasl.oauthbearer.config`,
/// `sasl.jaas.config`).
pub fn is_sensitive_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["password", "secret", "token", "key", "jaas", "oauthbearer"]
        .iter()
        .any(|word| key.contains(word))
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(******)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("******")
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_read_without_their_newline_and_errors_name_only_the_path() {
        let dir = std::env::temp_dir().join(format!("rivulet-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("token");
        std::fs::write(&file, "s3cr3t\n").unwrap();
        let path = file.to_str().unwrap();
        assert_eq!(Secret::from_file(path).unwrap().expose(), "s3cr3t");
        std::fs::write(&file, "two\nlines\r\n").unwrap();
        assert_eq!(Secret::from_file(path).unwrap().expose(), "two\nlines");
        std::fs::write(&file, "\n").unwrap();
        assert!(Secret::from_file(path).unwrap_err().contains("empty"));
        let missing = dir.join("missing");
        let error = Secret::from_file(missing.to_str().unwrap()).unwrap_err();
        assert!(error.contains("missing"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn credential_keys_are_recognised() {
        for key in [
            "sasl.password",
            "ssl.key.password",
            "ssl.keystore.password",
            "sasl.jaas.config",
            "sasl.oauthbearer.client.secret",
            "SASL.OAUTHBEARER.CONFIG",
            "ssl.key.pem",
            "api_token",
        ] {
            assert!(is_sensitive_key(key), "{key}");
        }
        for key in ["linger.ms", "bootstrap.servers", "sasl.username", "acks"] {
            assert!(!is_sensitive_key(key), "{key}");
        }
    }

    #[test]
    fn debug_and_display_hide_the_value() {
        let s: Secret = "hunter2".parse().unwrap();
        assert_eq!(format!("{s:?}"), "Secret(******)");
        assert_eq!(s.to_string(), "******");
        assert_eq!(s.expose(), "hunter2");
    }
}
