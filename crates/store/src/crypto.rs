//! Secrets at rest: AES-256-GCM with a random 96-bit nonce per value and the
//! owning record's id as associated data, so a sealed value copied onto
//! another row does not open.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use rand::RngCore;
use sluice_model::{Secret, SecretBag};

const FORMAT_VERSION: u8 = 1;
const NONCE_LEN: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "SLUICE_MASTER_KEY must be 32 bytes encoded as base64 (e.g. `openssl rand -base64 32`)"
    )]
    BadEnvKey,
    #[error("master key file {path} must hold 32 bytes encoded as base64")]
    BadKeyFile { path: String },
    #[error("master key file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error(
        "a sealed secret could not be opened: wrong master key, or the value was tampered with"
    )]
    Open,
    #[error("a sealed secret has an unknown format")]
    Format,
}

pub struct Cipher {
    aead: Aes256Gcm,
}

impl Cipher {
    pub fn from_key(key: &[u8; 32]) -> Self {
        Self {
            aead: Aes256Gcm::new(key.into()),
        }
    }

    /// The key comes from `SLUICE_MASTER_KEY` when given, otherwise from the
    /// key file, which is created (mode 0600) with a fresh random key on
    /// first start. Creation is atomic, so processes starting together agree
    /// on one key.
    pub fn load(env_key: Option<&str>, key_file: &Path) -> Result<Self, KeyError> {
        if let Some(encoded) = env_key.filter(|k| !k.trim().is_empty()) {
            return decode_key(encoded)
                .map(|k| Self::from_key(&k))
                .ok_or(KeyError::BadEnvKey);
        }
        let path = key_file.display().to_string();
        let io = |source| KeyError::Io {
            path: path.clone(),
            source,
        };
        if !key_file.exists() {
            let mut key = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut key);
            if let Some(parent) = key_file.parent().filter(|p| !p.as_os_str().is_empty()) {
                fs::create_dir_all(parent).map_err(io)?;
            }
            let temp = key_file.with_extension(format!("tmp{}", std::process::id()));
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&temp)
                .map_err(io)?;
            file.write_all(BASE64.encode(key).as_bytes()).map_err(io)?;
            file.sync_all().map_err(io)?;
            // hard_link fails if another process won the race; its key stands.
            let linked = fs::hard_link(&temp, key_file);
            let _ = fs::remove_file(&temp);
            match linked {
                Ok(()) => tracing::info!(path = %path, "created a new master key file"),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io(e)),
            }
        }
        let encoded = fs::read_to_string(key_file).map_err(io)?;
        decode_key(&encoded)
            .map(|k| Self::from_key(&k))
            .ok_or(KeyError::BadKeyFile { path })
    }

    pub fn seal(&self, context: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ciphertext = self
            .aead
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context,
                },
            )
            .expect("AES-GCM encryption cannot fail for inputs under 64 GiB");
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        sealed.push(FORMAT_VERSION);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        sealed
    }

    pub fn open(&self, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < 1 + NONCE_LEN || sealed[0] != FORMAT_VERSION {
            return Err(CryptoError::Format);
        }
        let (nonce, ciphertext) = sealed[1..].split_at(NONCE_LEN);
        self.aead
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context,
                },
            )
            .map_err(|_| CryptoError::Open)
    }

    /// `None` for an empty bag, so records without secrets store NULL.
    pub fn seal_bag(&self, context: &[u8], bag: &SecretBag) -> Option<Vec<u8>> {
        if bag.is_empty() {
            return None;
        }
        let plain: std::collections::BTreeMap<&str, &str> = bag
            .iter()
            .map(|(name, secret)| (name, secret.expose()))
            .collect();
        let json = serde_json::to_vec(&plain).expect("a map of strings always serializes");
        Some(self.seal(context, &json))
    }

    pub fn open_bag(
        &self,
        context: &[u8],
        sealed: Option<&[u8]>,
    ) -> Result<SecretBag, CryptoError> {
        let Some(sealed) = sealed else {
            return Ok(SecretBag::default());
        };
        let json = self.open(context, sealed)?;
        let plain: std::collections::BTreeMap<String, String> =
            serde_json::from_slice(&json).map_err(|_| CryptoError::Format)?;
        let mut bag = SecretBag::default();
        for (name, value) in plain {
            bag.insert(name, Secret::new(value));
        }
        Ok(bag)
    }
}

fn decode_key(encoded: &str) -> Option<[u8; 32]> {
    BASE64.decode(encoded.trim()).ok()?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open_round_trip_with_context() {
        let cipher = Cipher::from_key(&[7; 32]);
        let sealed = cipher.seal(b"pipe:1", b"hunter2");
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(cipher.open(b"pipe:1", &sealed).unwrap(), b"hunter2");
        assert!(matches!(
            cipher.open(b"pipe:2", &sealed),
            Err(CryptoError::Open)
        ));
        assert!(matches!(
            Cipher::from_key(&[8; 32]).open(b"pipe:1", &sealed),
            Err(CryptoError::Open)
        ));
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(cipher.open(b"pipe:1", &tampered).is_err());
        assert!(matches!(
            cipher.open(b"pipe:1", &[2, 0]),
            Err(CryptoError::Format)
        ));
        assert_ne!(
            cipher.seal(b"c", b"x"),
            cipher.seal(b"c", b"x"),
            "nonces differ"
        );
    }

    #[test]
    fn bags_round_trip() {
        let cipher = Cipher::from_key(&[1; 32]);
        assert!(cipher.seal_bag(b"x", &SecretBag::default()).is_none());
        let mut bag = SecretBag::default();
        bag.insert("password", Secret::new("pw"));
        let sealed = cipher.seal_bag(b"x", &bag).unwrap();
        assert_eq!(cipher.open_bag(b"x", Some(&sealed)).unwrap(), bag);
    }

    #[test]
    fn key_file_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/master.key");
        let a = Cipher::load(None, &path).unwrap();
        let sealed = a.seal(b"", b"v");
        let b = Cipher::load(None, &path).unwrap();
        assert_eq!(b.open(b"", &sealed).unwrap(), b"v");
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(matches!(
            Cipher::load(Some("short"), &path),
            Err(KeyError::BadEnvKey)
        ));
        let env = BASE64.encode([3u8; 32]);
        assert!(Cipher::load(Some(&env), &path).is_ok());
    }
}
