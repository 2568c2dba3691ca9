//! Bearer tokens: RS256 JWTs verified against the keys of a JWKS file. Anything else (`alg`
//! `none` or `HS256`, an unknown `kid`, a bad signature, no or a past `exp`, a future `nbf`,
//! the wrong issuer) is refused. The caller is the `username` claim (`preferred_username` as a
//! fallback), in organisation `org_id`, an organisation admin if `is_org_admin`.
//!
//! [`DevKeys`] makes a key pair and mints tokens for the local demo and the tests
//! (`fleet-manager dev-keys`, `fleet-manager dev-token`).

use std::collections::HashMap;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private, Public};
use openssl::rsa::Rsa;
use openssl::sign::{Signer, Verifier as RsaVerifier};
use serde::Deserialize;
use serde_json::{Value, json};

/// Who is calling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The owner of what they create.
    pub username: String,
    /// Their organisation, if the token names one.
    pub org_id: Option<String>,
    /// Whether they administer their organisation (may change or delete its instances).
    pub is_org_admin: bool,
    /// Whether they are in the fleet manager's admin list (`GET /clusters`).
    pub is_admin: bool,
}

impl Caller {
    /// Whose instances the caller sees: the organisation's, else their own.
    pub fn scope(&self) -> String {
        match &self.org_id {
            Some(org) => format!("org:{org}"),
            None => format!("user:{}", self.username),
        }
    }
}

/// Why a token was refused (the caller gets 401 with this reason).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// No `Authorization: Bearer` header.
    #[error("no bearer token")]
    Missing,
    /// Not three base64url parts of JSON.
    #[error("the token is malformed")]
    Malformed,
    /// `alg` other than RS256.
    #[error("token algorithm {0:?} is not accepted (RS256 only)")]
    Algorithm(String),
    /// No key of that id (or several keys and no `kid`).
    #[error("no key for the token's kid {0:?}")]
    UnknownKey(Option<String>),
    /// The signature does not verify.
    #[error("the token's signature does not verify")]
    Signature,
    /// Past `exp` (or none).
    #[error("the token has expired")]
    Expired,
    /// Future `nbf`.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// `iss` is not the configured issuer.
    #[error("the token's issuer is not accepted")]
    Issuer,
    /// No `username` or `preferred_username`.
    #[error("the token names no user")]
    NoUser,
}

/// A JWKS file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Unreadable.
    #[error("{0}: {1}")]
    Read(String, std::io::Error),
    /// Not a JWKS of RSA keys.
    #[error("{0}: {1}")]
    Invalid(String, String),
    /// OpenSSL refused a key.
    #[error("key: {0}")]
    OpenSsl(#[from] openssl::error::ErrorStack),
}

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    n: String,
    #[serde(default)]
    e: String,
}

/// The keys tokens are verified with.
pub struct TokenVerifier {
    keys: HashMap<Option<String>, PKey<Public>>,
    issuer: Option<String>,
    leeway: i64,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("keys", &self.keys.len())
            .field("issuer", &self.issuer)
            .finish()
    }
}

fn b64(part: &str) -> Result<Vec<u8>, TokenError> {
    B64.decode(part).map_err(|_| TokenError::Malformed)
}

impl TokenVerifier {
    /// Keys from a JWKS document (`{"keys": [{"kty": "RSA", "kid", "n", "e"}]}`).
    pub fn from_jwks(text: &str, issuer: Option<String>) -> Result<Self, KeyError> {
        let jwks: Jwks = serde_json::from_str(text)
            .map_err(|e| KeyError::Invalid("jwks".into(), e.to_string()))?;
        let mut keys = HashMap::new();
        for k in jwks.keys.iter().filter(|k| k.kty == "RSA") {
            let n = B64
                .decode(&k.n)
                .map_err(|e| KeyError::Invalid("jwks".into(), format!("n: {e}")))?;
            let e = B64
                .decode(&k.e)
                .map_err(|e| KeyError::Invalid("jwks".into(), format!("e: {e}")))?;
            let rsa =
                Rsa::from_public_components(BigNum::from_slice(&n)?, BigNum::from_slice(&e)?)?;
            keys.insert(k.kid.clone(), PKey::from_rsa(rsa)?);
        }
        if keys.is_empty() {
            return Err(KeyError::Invalid("jwks".into(), "no RSA keys".into()));
        }
        Ok(Self {
            keys,
            issuer,
            leeway: 30,
        })
    }

    /// Keys from a JWKS file.
    pub fn from_file(path: &Path, issuer: Option<String>) -> Result<Self, KeyError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| KeyError::Read(path.display().to_string(), e))?;
        Self::from_jwks(&text, issuer).map_err(|e| match e {
            KeyError::Invalid(_, why) => KeyError::Invalid(path.display().to_string(), why),
            other => other,
        })
    }

    /// The claims of a valid token, at `now` (Unix seconds).
    pub fn verify(&self, token: &str, now: i64) -> Result<Value, TokenError> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let header: Value = serde_json::from_slice(&b64(h)?).map_err(|_| TokenError::Malformed)?;
        let alg = header["alg"].as_str().unwrap_or_default();
        if alg != "RS256" {
            return Err(TokenError::Algorithm(alg.to_owned()));
        }
        let kid = header["kid"].as_str().map(str::to_owned);
        let key = match self.keys.get(&kid) {
            Some(k) => k,
            None if kid.is_none() && self.keys.len() == 1 => self
                .keys
                .values()
                .next()
                .ok_or(TokenError::UnknownKey(None))?,
            None => return Err(TokenError::UnknownKey(kid)),
        };
        let signature = b64(s)?;
        let mut verifier =
            RsaVerifier::new(MessageDigest::sha256(), key).map_err(|_| TokenError::Signature)?;
        let signed = &token[..h.len() + 1 + p.len()];
        let ok = verifier
            .verify_oneshot(&signature, signed.as_bytes())
            .unwrap_or(false);
        if !ok {
            return Err(TokenError::Signature);
        }
        let claims: Value = serde_json::from_slice(&b64(p)?).map_err(|_| TokenError::Malformed)?;
        match claims["exp"].as_i64() {
            Some(exp) if exp + self.leeway > now => {}
            _ => return Err(TokenError::Expired),
        }
        if let Some(nbf) = claims["nbf"].as_i64()
            && nbf - self.leeway > now
        {
            return Err(TokenError::NotYetValid);
        }
        if let Some(issuer) = &self.issuer
            && claims["iss"].as_str() != Some(issuer)
        {
            return Err(TokenError::Issuer);
        }
        Ok(claims)
    }

    /// The caller a token names; `admins` are the fleet manager's admin usernames.
    pub fn caller(&self, token: &str, now: i64, admins: &[String]) -> Result<Caller, TokenError> {
        let claims = self.verify(token, now)?;
        caller_of(&claims, admins)
    }
}

/// The caller of verified claims.
pub fn caller_of(claims: &Value, admins: &[String]) -> Result<Caller, TokenError> {
    let username = claims["username"]
        .as_str()
        .or_else(|| claims["preferred_username"].as_str())
        .filter(|u| !u.is_empty())
        .ok_or(TokenError::NoUser)?
        .to_owned();
    let org_id = match &claims["org_id"] {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    Ok(Caller {
        is_admin: admins.contains(&username),
        is_org_admin: claims["is_org_admin"].as_bool().unwrap_or(false) && org_id.is_some(),
        org_id,
        username,
    })
}

/// A signing key pair for local use: the demo's and the tests' tokens.
pub struct DevKeys {
    key: PKey<Private>,
    kid: String,
}

impl DevKeys {
    /// A new 2048-bit RSA key.
    pub fn generate(kid: &str) -> Result<DevKeys, KeyError> {
        Ok(DevKeys {
            key: PKey::from_rsa(Rsa::generate(2048)?)?,
            kid: kid.to_owned(),
        })
    }

    /// The key from PEM (`dev-keys` writes `key.pem`).
    pub fn from_pem(pem: &[u8], kid: &str) -> Result<DevKeys, KeyError> {
        Ok(DevKeys {
            key: PKey::private_key_from_pem(pem)?,
            kid: kid.to_owned(),
        })
    }

    /// The private key in PEM.
    pub fn private_pem(&self) -> Result<Vec<u8>, KeyError> {
        Ok(self.key.private_key_to_pem_pkcs8()?)
    }

    /// The public key as a JWKS document.
    pub fn jwks(&self) -> Result<Value, KeyError> {
        let rsa = self.key.rsa()?;
        Ok(json!({"keys": [{
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid,
            "n": B64.encode(rsa.n().to_vec()), "e": B64.encode(rsa.e().to_vec()),
        }]}))
    }

    /// A signed token with `claims` (`exp` is the caller's to set).
    pub fn sign(&self, claims: &Value) -> Result<String, KeyError> {
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": self.kid});
        let signed = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let mut signer = Signer::new(MessageDigest::sha256(), &self.key)?;
        let signature = signer.sign_oneshot_to_vec(signed.as_bytes())?;
        Ok(format!("{signed}.{}", B64.encode(signature)))
    }

    /// A token for `username` in `org_id`, valid for `ttl_secs` from `now`.
    pub fn token(
        &self,
        username: &str,
        org_id: Option<&str>,
        org_admin: bool,
        now: i64,
        ttl_secs: i64,
    ) -> Result<String, KeyError> {
        let mut claims = json!({
            "iss": "rivulet-dev", "sub": username, "username": username,
            "iat": now, "exp": now + ttl_secs, "is_org_admin": org_admin,
        });
        if let Some(org) = org_id {
            claims["org_id"] = Value::String(org.to_owned());
        }
        self.sign(&claims)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn pair() -> (DevKeys, TokenVerifier) {
        let keys = DevKeys::generate("k1").unwrap();
        let v = TokenVerifier::from_jwks(&keys.jwks().unwrap().to_string(), None).unwrap();
        (keys, v)
    }

    #[test]
    fn a_valid_token_names_its_caller() {
        let (keys, v) = pair();
        let t = keys.token("alice", Some("42"), true, NOW, 60).unwrap();
        let c = v.caller(&t, NOW, &["alice".into()]).unwrap();
        assert_eq!(c.username, "alice");
        assert_eq!(c.org_id.as_deref(), Some("42"));
        assert!(c.is_org_admin && c.is_admin);
        assert_eq!(c.scope(), "org:42");
        let t = keys.token("bob", None, true, NOW, 60).unwrap();
        let c = v.caller(&t, NOW, &[]).unwrap();
        assert!(!c.is_org_admin, "no organisation, no organisation admin");
        assert_eq!(c.scope(), "user:bob");
    }

    #[test]
    fn bad_tokens_are_refused() {
        let (keys, v) = pair();
        let expired = keys.token("a", None, false, NOW - 3600, 60).unwrap();
        assert_eq!(v.verify(&expired, NOW), Err(TokenError::Expired));
        let (other, _) = pair();
        let wrong_key = other.token("a", None, false, NOW, 60).unwrap();
        assert_eq!(v.verify(&wrong_key, NOW), Err(TokenError::Signature));
        let good = keys.token("a", None, false, NOW, 60).unwrap();
        let payload = good.split('.').nth(1).unwrap();
        let none = format!("{}.{payload}.", B64.encode(r#"{"alg":"none","typ":"JWT"}"#));
        assert_eq!(
            v.verify(&none, NOW),
            Err(TokenError::Algorithm("none".into()))
        );
        let hs = format!("{}.{payload}.c2ln", B64.encode(r#"{"alg":"HS256"}"#));
        assert_eq!(
            v.verify(&hs, NOW),
            Err(TokenError::Algorithm("HS256".into()))
        );
        // The claims changed after signing.
        let forged_claims = B64.encode(r#"{"username":"root","exp":9999999999}"#);
        let mut parts: Vec<&str> = good.split('.').collect();
        parts[1] = &forged_claims;
        assert_eq!(v.verify(&parts.join("."), NOW), Err(TokenError::Signature));
        assert_eq!(v.verify("a.b", NOW), Err(TokenError::Malformed));
        assert_eq!(v.verify("!!.!!.!!", NOW), Err(TokenError::Malformed));
        let strict =
            TokenVerifier::from_jwks(&keys.jwks().unwrap().to_string(), Some("x".into())).unwrap();
        assert_eq!(strict.verify(&good, NOW), Err(TokenError::Issuer));
        let no_user = keys.sign(&json!({"exp": NOW + 60})).unwrap();
        assert_eq!(v.caller(&no_user, NOW, &[]), Err(TokenError::NoUser));
    }

    #[test]
    fn keys_survive_pem() {
        let (keys, v) = pair();
        let again = DevKeys::from_pem(&keys.private_pem().unwrap(), "k1").unwrap();
        let t = again.token("a", None, false, NOW, 60).unwrap();
        assert!(v.verify(&t, NOW).is_ok());
    }
}
