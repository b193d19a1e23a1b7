//! API keys. A key is an id and a secret; clients send them as
//! `Authorization: Basic base64(id:secret)` (as the reference API does) or
//! `Authorization: Bearer id.secret`. Only SHA-256 of the secret is stored.

use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sluice_store::{ApiKeyRecord, NewApiKey, Role, Store};
use subtle::ConstantTimeEq;

use crate::problem::Problem;
use crate::AppState;

/// A freshly minted key; the secret exists only in this value and the one
/// response that shows it.
pub struct MintedKey {
    pub id: String,
    pub secret: String,
}

impl MintedKey {
    pub fn generate() -> Self {
        let mut id = [0u8; 10];
        let mut secret = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut id);
        rand::rngs::OsRng.fill_bytes(&mut secret);
        Self {
            id: format!(
                "sk{}",
                id.iter().map(|b| format!("{b:02x}")).collect::<String>()
            ),
            secret: URL_SAFE_NO_PAD.encode(secret),
        }
    }

    /// Parses `<id>.<secret>` (the Bearer token form).
    pub fn parse_token(token: &str) -> Option<Self> {
        let (id, secret) = token.trim().split_once('.')?;
        let id_ok = id.len() == 22
            && id.starts_with("sk")
            && id[2..].bytes().all(|b| b.is_ascii_hexdigit());
        (id_ok && secret.len() >= 32).then(|| Self {
            id: id.to_owned(),
            secret: secret.to_owned(),
        })
    }

    pub fn token(&self) -> String {
        format!("{}.{}", self.id, self.secret)
    }

    pub fn basic(&self) -> String {
        STANDARD.encode(format!("{}:{}", self.id, self.secret))
    }

    pub fn hash(&self) -> Vec<u8> {
        hash_secret(&self.secret)
    }
}

fn hash_secret(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Makes sure an admin key exists: the one given in
/// `SLUICE_BOOTSTRAP_ADMIN_KEY`, or, on a database without keys, a new one
/// that is returned so the caller can show it once.
pub async fn bootstrap_admin_key(
    store: &Store,
    given: Option<&str>,
) -> anyhow::Result<Option<MintedKey>> {
    if let Some(token) = given {
        let key = MintedKey::parse_token(token).ok_or_else(|| {
            anyhow::anyhow!("SLUICE_BOOTSTRAP_ADMIN_KEY must look like sk<20 hex digits>.<secret of 32+ characters>")
        })?;
        store
            .insert_api_key_if_absent(NewApiKey {
                id: &key.id,
                name: "bootstrap admin",
                role: Role::Admin,
                secret_hash: &key.hash(),
            })
            .await?;
        return Ok(None);
    }
    if store.count_api_keys().await? > 0 {
        return Ok(None);
    }
    let key = MintedKey::generate();
    store
        .insert_api_key(NewApiKey {
            id: &key.id,
            name: "first admin",
            role: Role::Admin,
            secret_hash: &key.hash(),
        })
        .await?;
    Ok(Some(key))
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key_id: String,
    pub role: Role,
}

impl Caller {
    pub fn require(&self, role: Role) -> Result<(), Problem> {
        if self.role >= role {
            Ok(())
        } else {
            Err(Problem::forbidden(format!(
                "this API key has role {}; the request needs {}",
                self.role.as_str(),
                role.as_str()
            )))
        }
    }
}

fn credentials(parts: &Parts) -> Result<(String, String), Problem> {
    let header = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
        Problem::unauthorized(
            "send an API key: Authorization: Basic base64(keyId:secret) or Bearer keyId.secret",
        )
    })?;
    let value = header
        .to_str()
        .map_err(|_| Problem::unauthorized("the Authorization header is not ASCII"))?;
    let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = STANDARD
            .decode(rest)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| Problem::unauthorized("Basic credentials are not valid base64"))?;
        let (id, secret) = decoded
            .split_once(':')
            .ok_or_else(|| Problem::unauthorized("Basic credentials must be keyId:secret"))?;
        Ok((id.to_owned(), secret.to_owned()))
    } else if scheme.eq_ignore_ascii_case("bearer") {
        let (id, secret) = rest
            .split_once('.')
            .ok_or_else(|| Problem::unauthorized("a Bearer token must be keyId.secret"))?;
        Ok((id.to_owned(), secret.to_owned()))
    } else {
        Err(Problem::unauthorized(
            "unsupported authorization scheme; use Basic or Bearer",
        ))
    }
}

fn verify(record: &ApiKeyRecord, secret: &str) -> bool {
    bool::from(record.secret_hash.ct_eq(&hash_secret(secret)))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let (id, secret) = credentials(parts)?;
        let invalid = || Problem::unauthorized("the API key is not valid");
        if id.len() > 64 {
            return Err(invalid());
        }
        let record = state.store.api_key(&id).await?.ok_or_else(invalid)?;
        if !verify(&record, &secret) {
            return Err(invalid());
        }
        if record.revoked_at.is_some() {
            return Err(Problem::unauthorized("the API key was revoked"));
        }
        if let Err(e) = state.store.touch_api_key(&record.id).await {
            tracing::warn!(error = %e, "recording API key use failed");
        }
        Ok(Caller {
            key_id: record.id,
            role: record.role,
        })
    }
}

/// Extractors that authenticate and require a minimum role, so a handler's
/// signature states who may call it.
macro_rules! role_extractor {
    ($name:ident, $role:expr) => {
        pub struct $name(#[allow(dead_code)] pub Caller);

        impl FromRequestParts<AppState> for $name {
            type Rejection = Problem;

            async fn from_request_parts(
                parts: &mut Parts,
                state: &AppState,
            ) -> Result<Self, Problem> {
                let caller = Caller::from_request_parts(parts, state).await?;
                caller.require($role)?;
                Ok($name(caller))
            }
        }
    };
}

role_extractor!(Viewer, Role::Viewer);
role_extractor!(Developer, Role::Developer);
role_extractor!(Admin, Role::Admin);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        let key = MintedKey::generate();
        let parsed = MintedKey::parse_token(&key.token()).unwrap();
        assert_eq!(parsed.id, key.id);
        assert_eq!(parsed.secret, key.secret);
        assert_eq!(parsed.hash(), key.hash());
        assert!(MintedKey::parse_token("nope").is_none());
        assert!(MintedKey::parse_token("sk00.short").is_none());
    }
}
