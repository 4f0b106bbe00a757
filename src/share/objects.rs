//! Model bytes for the team: a JetStream object store bucket per shared
//! log, in the layout NATS's own clients use (`nats object get` reads it):
//! the bytes in chunks on `$O.<bucket>.C.<nuid>`, then one description on
//! `$O.<bucket>.M.<name in base64url>` naming the chunks, their size and
//! SHA-256. A reader trusts only a description that was written after its
//! chunks and bytes that match it.
//!
//! The name is the model's id; the model's record (its `ModelTrained`)
//! travels in the description's metadata, so a browser can register a model
//! without reading the log.

use super::jetstream::subject_token;
use crate::domain::model::ModelTrained;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Bytes per chunk (what NATS's clients use).
pub const CHUNK: usize = 128 * 1024;
/// The models to fetch from the server: those it holds that this browser
/// lacks and that the log registered (`logged`, by id), except those whose
/// bytes the log let go (`released`: a newcomer would only delete them
/// again). An object nobody's `ModelTrained` names is never fetched.
pub fn to_fetch<'a>(
    on_server: &std::collections::BTreeSet<String>,
    here: &std::collections::BTreeSet<String>,
    logged: &'a BTreeMap<String, ModelTrained>,
    released: &std::collections::BTreeSet<String>,
) -> Vec<&'a ModelTrained> {
    on_server
        .difference(here)
        .filter(|id| !released.contains(*id))
        .filter_map(|id| logged.get(id))
        .collect()
}

/// The largest model a browser downloads (the forest of helpdesk is about
/// 2 MB; the ensemble a little more).
pub const MAX_MODEL_BYTES: u64 = 64 << 20;
/// The largest pack a browser downloads (a pack holds at most about 200,000
/// events, a few tens of megabytes gzipped).
pub const MAX_PACK_BYTES: u64 = 512 << 20;
/// The metadata key of the model's record.
const RECORD: &str = "retrace-record";

/// The bucket of shared log `log`'s models.
pub fn bucket(log: &str) -> String {
    format!("retrace_models_{}", subject_token(log))
}

/// The bucket's stream.
pub fn stream(log: &str) -> String {
    stream_of(&bucket(log))
}

/// The subject of one object's chunks.
pub fn chunk_subject(log: &str, nuid: &str) -> String {
    chunks_in(&bucket(log), nuid)
}

/// The subject of the description of object `name`.
pub fn meta_subject(log: &str, name: &str) -> String {
    meta_in(&bucket(log), name)
}

/// Every description's subject.
pub fn metas(log: &str) -> String {
    metas_in(&bucket(log))
}

/// The name a description's subject stands for.
pub fn name_of(log: &str, subject: &str) -> Option<String> {
    name_in(&bucket(log), subject)
}

/// The bucket's configuration, as `nats object add` would make it.
pub fn bucket_config(log: &str, replicas: u32) -> serde_json::Value {
    config_of(&bucket(log), replicas)
}

/// The stream behind object store bucket `bucket`.
pub fn stream_of(bucket: &str) -> String {
    format!("OBJ_{bucket}")
}

/// The subject of the chunks of the object stored under `nuid` in `bucket`.
pub fn chunks_in(bucket: &str, nuid: &str) -> String {
    format!("$O.{bucket}.C.{nuid}")
}

/// The subject of the description of object `name` in `bucket`.
pub fn meta_in(bucket: &str, name: &str) -> String {
    format!("$O.{bucket}.M.{}", base64_url(name.as_bytes()))
}

/// Every description's subject in `bucket`.
pub fn metas_in(bucket: &str) -> String {
    format!("$O.{bucket}.M.>")
}

/// The object name a description's subject in `bucket` stands for.
pub fn name_in(bucket: &str, subject: &str) -> Option<String> {
    let prefix = format!("$O.{bucket}.M.");
    let encoded = subject.strip_prefix(&prefix)?;
    let standard: String = encoded
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    String::from_utf8(super::jetstream::decode_base64(&standard).ok()?).ok()
}

/// The configuration of bucket `bucket`'s stream, as `nats object add`
/// would make it.
pub fn config_of(bucket: &str, replicas: u32) -> serde_json::Value {
    serde_json::json!({
        "name": stream_of(bucket),
        "subjects": [format!("$O.{bucket}.C.>"), format!("$O.{bucket}.M.>")],
        "storage": "file",
        "num_replicas": replicas,
        "discard": "new",
        "allow_rollup_hdrs": true,
        "allow_direct": true,
    })
}

/// An object's description.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// The object's name: the model's id.
    pub name: String,
    /// Its bucket.
    pub bucket: String,
    /// Where its chunks are.
    pub nuid: String,
    /// Its length in bytes.
    pub size: u64,
    /// How many chunks.
    pub chunks: u32,
    /// `SHA-256=` and the hash in base64url.
    pub digest: String,
    /// Name and value pairs; Retrace keeps the model's record here.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

impl Meta {
    /// The description of a model's bytes stored under `nuid`.
    pub fn of_model(
        log: &str,
        record: &ModelTrained,
        nuid: &str,
        bytes: &[u8],
    ) -> Result<Meta, String> {
        let json = serde_json::to_string(record).map_err(|e| e.to_string())?;
        Ok(Meta {
            name: record.id.clone(),
            bucket: bucket(log),
            nuid: nuid.to_owned(),
            size: bytes.len() as u64,
            chunks: bytes.len().div_ceil(CHUNK) as u32,
            digest: digest(bytes),
            metadata: BTreeMap::from([(RECORD.to_owned(), json)]),
        })
    }

    /// The description of a model's bytes sealed with the team's key
    /// ([`crate::share::seal`]): no record in it (the record names the
    /// model's features — activities, resources — and the log carries it
    /// sealed anyway), the size and digest those of the sealed bytes.
    pub fn of_sealed_model(log: &str, id: &str, nuid: &str, sealed: &[u8]) -> Meta {
        Meta {
            name: id.to_owned(),
            bucket: bucket(log),
            nuid: nuid.to_owned(),
            size: sealed.len() as u64,
            chunks: sealed.len().div_ceil(CHUNK) as u32,
            digest: digest(sealed),
            metadata: BTreeMap::new(),
        }
    }

    /// Whether a sealed model's description fits the model the log
    /// registered: its bytes, sealed, are the record's size plus the seal's.
    pub fn is_sealed_of(&self, logged: &ModelTrained) -> Result<(), String> {
        let expected = logged.size_bytes as u64 + crate::share::seal::OVERHEAD as u64;
        if self.name != logged.id || self.size != expected {
            return Err(format!(
                "{} on the server is not the model the log registered ({} bytes, the log's sealed {expected}): not used",
                self.name, self.size
            ));
        }
        Ok(())
    }

    /// The model's record, from the description.
    pub fn record(&self) -> Result<ModelTrained, String> {
        let json = self.metadata.get(RECORD).ok_or_else(|| {
            format!(
                "{} on the server carries no model record (was it put there by another tool?)",
                self.name
            )
        })?;
        let record: ModelTrained = serde_json::from_str(json)
            .map_err(|e| format!("{}'s record on the server is unreadable ({e})", self.name))?;
        if record.id != self.name {
            return Err(format!(
                "the object {} describes another model ({})",
                self.name, record.id
            ));
        }
        Ok(record)
    }

    /// Whether the description may be acted on before any byte is read:
    /// a size under `max` and as many chunks as that size takes. A
    /// description on the server is anybody's word; a browser allocates
    /// and reads only what a sane one promises.
    pub fn plausible(&self, max: u64, chunk: usize) -> Result<(), String> {
        if self.size > max {
            return Err(format!(
                "{} claims {} bytes, more than the {max} this browser takes: not read",
                self.name, self.size
            ));
        }
        if self.chunks as u64 != self.size.div_ceil(chunk as u64) {
            return Err(format!(
                "{} claims {} chunks for {} bytes: not read",
                self.name, self.chunks, self.size
            ));
        }
        Ok(())
    }

    /// Whether this description, and the record it carries, are of the
    /// model the log registered as `logged` (its size and the hash of its
    /// training rows): a browser stores model bytes only for that.
    pub fn is_of(&self, logged: &ModelTrained) -> Result<(), String> {
        let record = self.record()?;
        if self.size != logged.size_bytes as u64 || record.rows_hash != logged.rows_hash {
            return Err(format!(
                "{} on the server is not the model the log registered ({} bytes, rows {}; the log says {} bytes, rows {}): not used",
                self.name, self.size, record.rows_hash, logged.size_bytes, logged.rows_hash
            ));
        }
        Ok(())
    }

    /// The bytes put together from their chunks, checked against the
    /// description.
    pub fn check(&self, bytes: &[u8]) -> Result<(), String> {
        if bytes.len() as u64 != self.size {
            return Err(format!(
                "{} arrived with {} bytes, its description says {}",
                self.name,
                bytes.len(),
                self.size
            ));
        }
        if digest(bytes) != self.digest {
            return Err(format!(
                "{}'s bytes on the server do not match their SHA-256: not used",
                self.name
            ));
        }
        Ok(())
    }
}

/// Whether `bytes` (plain, after any seal is opened) are the model the log
/// registered: its size, and its SHA-256 where the record keeps one (older
/// records do not). Whatever the server's description says, only these
/// bytes are stored.
pub fn are_registered(bytes: &[u8], logged: &ModelTrained) -> Result<(), String> {
    if bytes.len() != logged.size_bytes {
        return Err(format!(
            "{}'s bytes from the server are {} long, the log registered {}: not used",
            logged.id,
            bytes.len(),
            logged.size_bytes
        ));
    }
    if !logged.sha256.is_empty() && crate::util::hex(&Sha256::digest(bytes)) != logged.sha256 {
        return Err(format!(
            "{}'s bytes from the server are not the ones the log registered (SHA-256): not used",
            logged.id
        ));
    }
    Ok(())
}

/// `SHA-256=` and the hash of `bytes` in base64url, as NATS writes it.
pub fn digest(bytes: &[u8]) -> String {
    digest_of(&Sha256::digest(bytes))
}

/// `SHA-256=` and a SHA-256 hash in base64url.
pub fn digest_of(sha256: &[u8]) -> String {
    format!("SHA-256={}", base64_url(sha256))
}

/// base64url with padding (Go's `base64.URLEncoding`).
pub fn base64_url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let mut n = 0u32;
        for (i, b) in chunk.iter().enumerate() {
            n |= (*b as u32) << (16 - 8 * i);
        }
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The part of a stream's description that lists its subjects (asked for
/// with `subjects_filter`).
#[derive(Debug, Default, Deserialize)]
pub struct Listed {
    /// Its state.
    #[serde(default)]
    pub state: ListedState,
}

/// Subjects and their message counts.
#[derive(Debug, Default, Deserialize)]
pub struct ListedState {
    /// Each subject's count of messages.
    #[serde(default)]
    pub subjects: Option<BTreeMap<String, u64>>,
}

impl Listed {
    /// The names of the objects a listing of shared log `log`'s models holds.
    pub fn names(&self, log: &str) -> Vec<String> {
        self.names_in(&bucket(log))
    }

    /// The names of the objects a listing of `bucket` holds.
    pub fn names_in(&self, bucket: &str) -> Vec<String> {
        self.state
            .subjects
            .iter()
            .flatten()
            .filter_map(|(subject, _)| name_in(bucket, subject))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::{Algorithm, Spec};

    fn sample_record() -> ModelTrained {
        ModelTrained {
            id: "model-3".into(),
            algorithm: "forest".into(),
            spec: Spec::new(Algorithm::RandomForest),
            features: Vec::new(),
            versions: Vec::new(),
            format: 4,
            trained_to_seq: 10,
            train_cases: 5,
            rows: 20,
            rows_hash: String::new(),
            holdout_cases: 1,
            holdout_rows: 4,
            holdout_mae_days: 1.0,
            baseline_mae_days: 2.0,
            seconds: 0.1,
            size_bytes: CHUNK + 10,
            median_h: 3.0,
            validation: Vec::new(),
            choice: String::new(),
            sha256: String::new(),
        }
    }

    #[test]
    fn only_models_the_log_registered_are_fetched_and_only_their_bytes() {
        let record = |id: &str, size: usize, rows: &str| ModelTrained {
            id: id.into(),
            size_bytes: size,
            rows_hash: rows.into(),
            ..sample_record()
        };
        let logged: BTreeMap<String, ModelTrained> =
            [record("model-1", 300, "aa"), record("model-2", 10, "bb")]
                .into_iter()
                .map(|r| (r.id.clone(), r))
                .collect();
        let on_server: std::collections::BTreeSet<String> = ["model-1", "model-2", "model-9"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let here: std::collections::BTreeSet<String> = ["model-2".to_string()].into();
        let ids: Vec<&str> = to_fetch(&on_server, &here, &logged, &Default::default())
            .iter()
            .map(|r| r.id.as_str())
            .collect();
        assert_eq!(ids, ["model-1"], "model-9 is named by no ModelTrained");
        let released = ["model-1".to_string()].into();
        assert!(
            to_fetch(&on_server, &[].into(), &logged, &released)
                .iter()
                .all(|r| r.id == "model-2"),
            "a model whose bytes the log let go is not fetched"
        );
        let meta = Meta::of_model("team", &record("model-1", 300, "aa"), "n", &[0u8; 300]).unwrap();
        assert_eq!(meta.is_of(&logged["model-1"]), Ok(()));
        let other =
            Meta::of_model("team", &record("model-1", 300, "zz"), "n", &[0u8; 300]).unwrap();
        assert!(other
            .is_of(&logged["model-1"])
            .unwrap_err()
            .contains("not the model the log registered"));
        let bigger =
            Meta::of_model("team", &record("model-1", 300, "aa"), "n", &[0u8; 301]).unwrap();
        assert!(bigger.is_of(&logged["model-1"]).is_err());
    }

    #[test]
    fn a_description_promising_too_much_is_not_acted_on() {
        let meta = |size: u64, chunks: u32| Meta {
            name: "model-1".into(),
            bucket: "b".into(),
            nuid: "n".into(),
            size,
            chunks,
            digest: String::new(),
            metadata: BTreeMap::new(),
        };
        assert_eq!(meta(300_000, 3).plausible(MAX_MODEL_BYTES, CHUNK), Ok(()));
        assert_eq!(meta(0, 0).plausible(MAX_MODEL_BYTES, CHUNK), Ok(()));
        let huge = meta(3_000_000_000, 22_889).plausible(MAX_MODEL_BYTES, CHUNK);
        assert!(huge.unwrap_err().contains("claims 3000000000 bytes"));
        let odd = meta(300_000, 1).plausible(MAX_MODEL_BYTES, CHUNK);
        assert!(odd
            .unwrap_err()
            .contains("claims 1 chunks for 300000 bytes"));
    }

    #[test]
    fn names_and_subjects_are_natss_object_store_layout() {
        assert_eq!(base64_url(b"model-1"), "bW9kZWwtMQ==");
        assert_eq!(base64_url(b"\xfb\xff"), "-_8=");
        assert_eq!(
            meta_subject("team log", "model-1"),
            "$O.retrace_models_team_20log.M.bW9kZWwtMQ=="
        );
        assert_eq!(
            name_of("team log", &meta_subject("team log", "model-12")).as_deref(),
            Some("model-12")
        );
        assert_eq!(name_of("other", &meta_subject("team log", "model-1")), None);
        // The digest of nothing, as NATS's clients write it.
        assert_eq!(
            digest(b""),
            "SHA-256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }

    #[test]
    fn only_the_bytes_the_log_registered_are_stored_whatever_the_description_says() {
        let bytes = vec![7u8; 100];
        let record = ModelTrained {
            size_bytes: 100,
            sha256: crate::util::hex(&Sha256::digest(&bytes)),
            ..sample_record()
        };
        assert!(are_registered(&bytes, &record).is_ok());
        let mut other = bytes.clone();
        other[99] = 8;
        assert!(are_registered(&other, &record)
            .unwrap_err()
            .contains("SHA-256"));
        assert!(are_registered(&bytes[..99], &record)
            .unwrap_err()
            .contains("99 long"));
        // A record from before the digest was kept: the size still counts.
        let old = ModelTrained {
            sha256: String::new(),
            ..record
        };
        assert!(are_registered(&other, &old).is_ok());
    }

    #[test]
    fn bytes_that_differ_from_their_description_are_refused() {
        let record = ModelTrained {
            id: "model-3".into(),
            size_bytes: CHUNK + 10,
            ..sample_record()
        };
        let bytes = vec![7u8; CHUNK + 10];
        let meta = Meta::of_model("team", &record, "n1", &bytes).unwrap();
        assert_eq!(meta.chunks, 2);
        assert_eq!(meta.record().unwrap().id, "model-3");
        assert!(meta.check(&bytes).is_ok());
        let mut damaged = bytes.clone();
        damaged[5] ^= 1;
        assert!(meta.check(&damaged).unwrap_err().contains("SHA-256"));
        assert!(meta.check(&bytes[..10]).is_err());
        let mut other = meta.clone();
        other.name = "model-4".into();
        assert!(other.record().unwrap_err().contains("another model"));
    }
}
