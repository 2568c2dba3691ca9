//! Credentials a server accepts on its protected endpoints: a bearer token, a basic-auth user,
//! or both. The registry and the recommender check requests with the same rules.
//!
//! Comparison takes the same time whatever the first differing byte, so a token cannot be
//! guessed byte by byte.

use base64::Engine;

use crate::Secret;

/// Which requests of a server need credentials when authentication is on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Scope {
    /// Requests that change state (each server says which).
    #[default]
    Writes,
    /// Every API request (health and metrics stay open for probes).
    All,
}

/// What a server accepts in `Authorization`.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    /// Accepted bearer token.
    pub token: Option<Secret>,
    /// Accepted basic-auth user and password.
    pub basic: Option<(String, Secret)>,
}

impl Credentials {
    /// Credentials from a server's flags: a token, and a user with its password.
    pub fn new(token: Option<&Secret>, user: Option<&str>, password: Option<&Secret>) -> Self {
        Self {
            token: token.cloned(),
            basic: user.zip(password).map(|(u, p)| (u.to_owned(), p.clone())),
        }
    }

    /// Whether any credentials are configured (authentication is on).
    pub fn enabled(&self) -> bool {
        self.token.is_some() || self.basic.is_some()
    }

    /// Whether an `Authorization` header value matches.
    pub fn accepts(&self, authorization: Option<&str>) -> bool {
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

    /// Whether a request with these headers passes (always, when authentication is off).
    pub fn allows(&self, headers: &axum::http::HeaderMap) -> bool {
        !self.enabled()
            || self.accepts(
                headers
                    .get(axum::http::header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok()),
            )
    }
}

fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_matching_credentials() {
        let c = Credentials::new(
            Some(&Secret::new("tok")),
            Some("u"),
            Some(&Secret::new("p")),
        );
        assert!(c.accepts(Some("Bearer tok")));
        assert!(c.accepts(Some("bearer  tok ")));
        assert!(!c.accepts(Some("Bearer to")));
        assert!(!c.accepts(Some("Bearer tokk")));
        assert!(!c.accepts(None));
        let basic = base64::engine::general_purpose::STANDARD.encode("u:p");
        assert!(c.accepts(Some(&format!("Basic {basic}"))));
        let wrong = base64::engine::general_purpose::STANDARD.encode("u:q");
        assert!(!c.accepts(Some(&format!("Basic {wrong}"))));
        assert!(!c.accepts(Some("Basic !!!")));
        assert!(!c.accepts(Some("Digest tok")));
    }

    #[test]
    fn a_user_without_a_password_and_no_token_means_off() {
        let c = Credentials::new(None, Some("u"), None);
        assert!(!c.enabled());
        assert!(c.allows(&axum::http::HeaderMap::new()));
        let on = Credentials::new(Some(&Secret::new("t")), None, None);
        assert!(!on.allows(&axum::http::HeaderMap::new()));
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(
            axum::http::header::AUTHORIZATION,
            "Bearer t".parse().unwrap(),
        );
        assert!(on.allows(&headers));
    }
}
