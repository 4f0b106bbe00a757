//! End-to-end encryption of a shared log: the server stores and relays
//! what it cannot read.
//!
//! A team that sets a passphrase gets a key derived from it and from a salt
//! kept in the stream's metadata (PBKDF2-HMAC-SHA256). Every payload —
//! events, packs, model bytes — is sealed with AES-256-GCM-SIV before it
//! leaves the browser; subjects, ids, sequences and the concurrency headers
//! stay readable, so the server still orders, de-duplicates and refuses
//! conflicting writes. The nonce is derived from the key and the payload's
//! *context* (the subject and id of an event, the name of a pack or model),
//! and the context is bound as associated data, so:
//!
//! - the same event re-sent gives the same bytes (the server's
//!   de-duplication and the outbox's comparison still work);
//! - a sealed payload moved to another subject or id does not open there;
//! - GCM-SIV stays safe if a nonce ever repeats (it then reveals only that
//!   two plaintexts were equal), which a nonce derived from content needs.
//!
//! A browser with the wrong passphrase finds out before it reads or writes
//! anything: the stream's metadata carries a check value only the right key
//! reproduces. Pure code (RustCrypto), the same natively and in the page.

use aes_gcm_siv::aead::{Aead, KeyInit, Payload};
use aes_gcm_siv::{Aes256GcmSiv, Nonce};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Sealed payloads begin so (the format's version is its last byte).
pub const MAGIC: &[u8; 4] = b"RTS1";
/// Bytes a sealed payload has beyond its plaintext: magic, nonce, tag.
pub const OVERHEAD: usize = 4 + 12 + 16;
/// PBKDF2 rounds: about a quarter of a second in the page, once per connect.
pub const ROUNDS: u32 = 100_000;

/// Stream metadata keys.
pub const META_SALT: &str = "retrace_seal_salt";
/// The key's check value (hex).
pub const META_CHECK: &str = "retrace_seal_check";

/// A team's key.
pub struct Seal {
    cipher: Aes256GcmSiv,
    nonces: [u8; 32],
    check: String,
}

impl std::fmt::Debug for Seal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Seal(…)")
    }
}

/// Why a payload did not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// Plain bytes where a sealed payload belongs.
    #[error("it is not encrypted, and this shared log's messages are")]
    NotSealed,
    /// The tag did not verify.
    #[error("it does not decrypt with the team's key: written with another passphrase, moved from another subject, or altered")]
    Forged,
}

impl Seal {
    /// The key of `passphrase` with `salt`.
    pub fn derive(passphrase: &str, salt: &[u8]) -> Seal {
        let mut keys = [0u8; 64];
        pbkdf2::pbkdf2_hmac::<Sha256>(passphrase.as_bytes(), salt, ROUNDS, &mut keys);
        let cipher = Aes256GcmSiv::new_from_slice(&keys[..32]).expect("a 32-byte key");
        let mut nonces = [0u8; 32];
        nonces.copy_from_slice(&keys[32..]);
        let check = crate::util::hex(&mac(&nonces, b"retrace: the team's key")[..16]);
        Seal {
            cipher,
            nonces,
            check,
        }
    }

    /// The value a browser with the same key computes too.
    pub fn check(&self) -> &str {
        &self.check
    }

    /// `plain`, sealed for `context`.
    pub fn seal(&self, context: &str, plain: &[u8]) -> Vec<u8> {
        let tag = mac(&self.nonces, context.as_bytes());
        let nonce = Nonce::from_slice(&tag[..12]);
        let sealed = self
            .cipher
            .encrypt(
                nonce,
                Payload {
                    msg: plain,
                    aad: context.as_bytes(),
                },
            )
            .expect("AES-GCM-SIV seals any length a message can have");
        let mut out = Vec::with_capacity(OVERHEAD + plain.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// The plaintext of `sealed`, if it was sealed with this key for
    /// `context` and not altered since.
    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        if sealed.len() < OVERHEAD || &sealed[..4] != MAGIC {
            return Err(SealError::NotSealed);
        }
        let nonce = Nonce::from_slice(&sealed[4..16]);
        self.cipher
            .decrypt(
                nonce,
                Payload {
                    msg: &sealed[16..],
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SealError::Forged)
    }
}

fn mac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key");
    m.update(data);
    m.finalize().into_bytes().into()
}

/// The context an event is sealed for: its subject and id.
pub fn event_context(subject: &str, id: &str) -> String {
    format!("event\u{0}{subject}\u{0}{id}")
}

/// The context of an object (a pack or a model) of `bucket`.
pub fn object_context(bucket: &str, name: &str) -> String {
    format!("object\u{0}{bucket}\u{0}{name}")
}

/// A salt for a new encrypted log: unique to its name and the moment it
/// was made (a salt need not be secret, only not shared with other logs).
pub fn new_salt(log: &str, now_ms: f64, entropy: &str) -> String {
    let digest = Sha256::digest(format!("{log}\u{0}{now_ms}\u{0}{entropy}").as_bytes());
    crate::util::hex(&digest[..16])
}

/// What a browser decides from the stream's metadata and its passphrase.
#[derive(Debug)]
pub enum Keyring {
    /// The log is not encrypted and no passphrase was given.
    Plain,
    /// Encrypted, and the passphrase opens it.
    Sealed(Box<Seal>),
}

/// Whether `passphrase` opens the log described by `metadata` — or why
/// this browser must neither read nor write it. Every refusal says what to
/// do.
pub fn keyring(metadata: &BTreeMap<String, String>, passphrase: &str) -> Result<Keyring, String> {
    let salt = metadata.get(META_SALT);
    match (salt, passphrase.is_empty()) {
        (None, true) => Ok(Keyring::Plain),
        (None, false) => Err("this shared log is not encrypted, so a passphrase cannot be used with it: clear the passphrase to join it as it is, or choose a new log name to start an encrypted one. Nothing was read or written.".into()),
        (Some(_), true) => Err("this shared log is encrypted: enter the team's passphrase to join it. Nothing was read or written.".into()),
        (Some(salt), false) => {
            let seal = Seal::derive(passphrase, salt.as_bytes());
            if metadata.get(META_CHECK).map(String::as_str) == Some(seal.check()) {
                Ok(Keyring::Sealed(Box::new(seal)))
            } else {
                Err("the passphrase does not open this shared log: check it with your team. Nothing was read or written.".into())
            }
        }
    }
}

/// The metadata of a new encrypted log with `salt` (see [`new_salt`]).
pub fn metadata_for(passphrase: &str, salt: &str) -> (BTreeMap<String, String>, Seal) {
    let seal = Seal::derive(passphrase, salt.as_bytes());
    let mut m = BTreeMap::new();
    m.insert(META_SALT.to_string(), salt.to_string());
    m.insert(META_CHECK.to_string(), seal.check().to_string());
    (m, seal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_payload_opens_only_with_its_key_and_its_context() {
        let (meta, seal) = metadata_for("correct horse", "salt-1");
        let sealed = seal.seal(
            &event_context("log.a.c1", "e-1"),
            b"{\"activity\":\"Repair\"}",
        );
        assert_eq!(sealed.len(), OVERHEAD + 21);
        assert!(
            !sealed.windows(6).any(|w| w == b"Repair"),
            "the plaintext is not in the bytes"
        );
        assert_eq!(
            seal.open(&event_context("log.a.c1", "e-1"), &sealed)
                .unwrap(),
            b"{\"activity\":\"Repair\"}"
        );
        // Deterministic: a re-send is byte for byte the same.
        assert_eq!(
            sealed,
            seal.seal(
                &event_context("log.a.c1", "e-1"),
                b"{\"activity\":\"Repair\"}"
            )
        );
        // Moved to another subject or id, it does not open.
        assert_eq!(
            seal.open(&event_context("log.a.c2", "e-1"), &sealed),
            Err(SealError::Forged)
        );
        assert_eq!(
            seal.open(&event_context("log.a.c1", "e-2"), &sealed),
            Err(SealError::Forged)
        );
        // One bit flipped anywhere, it does not open.
        for i in 4..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert_eq!(
                seal.open(&event_context("log.a.c1", "e-1"), &bad),
                Err(SealError::Forged)
            );
        }
        assert_eq!(
            seal.open("x", b"{\"plain\": true}"),
            Err(SealError::NotSealed)
        );
        // Another passphrase, the same salt: refused before anything is read.
        match keyring(&meta, "wrong horse") {
            Err(why) => assert!(why.contains("does not open"), "{why}"),
            Ok(_) => panic!("a wrong passphrase was accepted"),
        }
        let Ok(Keyring::Sealed(again)) = keyring(&meta, "correct horse") else {
            panic!("the right passphrase was refused");
        };
        assert!(again
            .open(&event_context("log.a.c1", "e-1"), &sealed)
            .is_ok());
        assert!(matches!(keyring(&meta, ""), Err(w) if w.contains("enter the team's passphrase")));
        assert!(matches!(keyring(&BTreeMap::new(), ""), Ok(Keyring::Plain)));
        assert!(matches!(keyring(&BTreeMap::new(), "p"), Err(w) if w.contains("not encrypted")));
    }
}
