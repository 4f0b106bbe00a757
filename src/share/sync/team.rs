//! What a browser does for the team beside sending and receiving events,
//! once a second while connected: it takes, renews or lets go of the lease
//! on the shared log's feedback loop ([`crate::share::lease`]) as the user
//! wants the loop here, and it trades model bytes with the server's object
//! store ([`crate::share::objects`]) — the models this browser trained go
//! up, the models others trained come down into its registry, so whoever
//! drives the loop next can load the champion.

use crate::domain::model::ModelTrained;
use crate::share::env::Env;
use crate::share::jetstream::{
    self, answer, GetAnswer, GetRequest, PubAck, NO_MESSAGE, STREAM_NOT_FOUND, WRONG_LAST_SEQUENCE,
};
use crate::share::lease::{self, Ask, Entry, Holder, Lease, Standing};
use crate::share::objects::{self, Listed, Meta};
use crate::share::proto::Headers;
use crate::share::seal::{object_context, Seal};
use crate::share::socket::{Socket, Wire};
use crate::share::status::Held;
use crate::store::replica::{ModelStore, ReplicaStore};
use std::collections::BTreeSet;
use std::rc::Rc;

/// How long a request about the lease may wait for its answer: well under
/// the time between the last renewal and the lease's end on the server.
const LEASE_ANSWER_MS: f64 = lease::TTL_MS - lease::GIVE_UP_MS;

/// Models are looked at this often even when nothing says they changed.
const MODELS_EVERY_MS: f64 = 10_000.0;

/// What the team's round needs of the replica's store.
pub trait Store: ReplicaStore + ModelStore {}
impl<S: ReplicaStore + ModelStore> Store for S {}

/// The models the log registered, and those whose bytes it let go.
pub type LogModels<'a> = (
    &'a std::collections::BTreeMap<String, ModelTrained>,
    &'a BTreeSet<String>,
);

/// The lease and the models' state, kept across connections.
pub struct Team {
    lease: Lease,
    /// The lease bucket exists (checked once per connection).
    bucket: bool,
    /// Something says the models may differ from the server's.
    models_due: bool,
    listed_at: f64,
    env: Rc<dyn Env>,
}

impl Team {
    /// `me`: this browser, as the lease names it.
    pub fn new(me: Holder, env: Rc<dyn Env>) -> Team {
        Team {
            env,
            lease: Lease::new(me),
            bucket: false,
            models_due: true,
            listed_at: f64::NEG_INFINITY,
        }
    }

    /// A model arrived in the log, or this browser registered one.
    pub fn models_changed(&mut self) {
        self.models_due = true;
    }

    /// The connection ended: the lease cannot be renewed, the buckets are
    /// looked at again on the next.
    pub fn disconnected(&mut self) -> Standing {
        self.lease.lost();
        self.bucket = false;
        self.models_due = true;
        self.lease.standing()
    }

    /// Where this browser stands on the lease.
    pub fn standing(&self) -> Standing {
        self.lease.standing()
    }

    /// While this browser drives: who it is, the lease's revision when it
    /// was taken, and how long it is surely held from now (ms).
    pub fn held(&self) -> Option<Held> {
        if self.lease.standing() != Standing::Ours {
            return None;
        }
        let (taken, deadline) = self.lease.held()?;
        Some(Held {
            holder: self.lease.me().clone(),
            taken,
            left_ms: deadline - self.env.now_ms(),
        })
    }

    /// One round: the lease as `wanted`, then the models if due (those
    /// the log registered and those whose bytes it let go). A note for
    /// the status line, or an error of the connection.
    pub async fn round(
        &mut self,
        socket: &mut Socket<impl Wire>,
        log: &str,
        store: &impl Store,
        wanted: bool,
        (logged, released): LogModels<'_>,
        seal: Option<&Seal>,
    ) -> Result<Option<String>, String> {
        self.lease.want(wanted);
        let mut note = self.lease_round(socket, log).await?;
        let t = self.env.now_ms();
        if self.models_due || t - self.listed_at >= MODELS_EVERY_MS {
            self.models_due = false;
            self.listed_at = t;
            // While this browser drives, nothing it waits for may outlast
            // its lease: the wait ends (and the connection with it) when
            // the lease would have to be given up.
            socket.answer_ms = self
                .lease
                .deadline()
                .map_or(crate::share::socket::ANSWER_MS, |d| {
                    (d - self.env.now_ms())
                        .clamp(LEASE_ANSWER_MS / 3.0, crate::share::socket::ANSWER_MS)
                });
            let models = self
                .models(socket, log, store, logged, released, seal)
                .await;
            socket.answer_ms = crate::share::socket::ANSWER_MS;
            if let Some(n) = models? {
                note = Some(n);
            }
        }
        Ok(note)
    }

    async fn lease_round(
        &mut self,
        socket: &mut Socket<impl Wire>,
        log: &str,
    ) -> Result<Option<String>, String> {
        // The lease is fenced in time: a request about it that is not
        // answered well inside the lease's life ends the connection (and
        // with it this browser's standing) before the server could let the
        // lease go to another browser — never two drivers at once.
        socket.answer_ms = LEASE_ANSWER_MS;
        let round = self.lease_steps(socket, log).await;
        socket.answer_ms = crate::share::socket::ANSWER_MS;
        round
    }

    async fn lease_steps(
        &mut self,
        socket: &mut Socket<impl Wire>,
        log: &str,
    ) -> Result<Option<String>, String> {
        let mut ask = self.lease.next(self.env.now_ms());
        loop {
            match ask {
                Ask::Nothing => return Ok(None),
                Ask::Look => {
                    if !self.bucket {
                        if let Some(why) =
                            ensure(socket, &lease::stream(), lease::bucket_config(1)).await?
                        {
                            return Ok(Some(format!("the loop's lease: {why}")));
                        }
                        self.bucket = true;
                    }
                    let entry = match last(socket, &lease::stream(), &lease::key(log)).await? {
                        None => Entry::Empty,
                        Some(m) => {
                            let deleted = m
                                .headers()
                                .ok()
                                .flatten()
                                .and_then(|h| h.get("KV-Operation").map(str::to_owned))
                                .is_some();
                            Entry::of(m.seq, &m.payload().unwrap_or_default(), deleted)
                        }
                    };
                    ask = self.lease.looked(entry, self.env.now_ms());
                }
                Ask::Write { expected } => {
                    let value = self.lease.value();
                    let got = write(socket, &lease::key(log), expected, &value, None).await?;
                    let revision = match got {
                        Ok(seq) => Some(seq),
                        Err((code, _)) if code == WRONG_LAST_SEQUENCE => None,
                        Err((_, why)) => {
                            self.lease.answered(None, self.env.now_ms());
                            return Ok(Some(format!("the loop's lease: {why}")));
                        }
                    };
                    self.lease.answered(revision, self.env.now_ms());
                    return Ok(None);
                }
                Ask::Release { expected } => {
                    let _ = write(socket, &lease::key(log), expected, b"", Some("DEL")).await?;
                    return Ok(None);
                }
            }
        }
    }

    /// Trade model bytes with the server: up what only this browser has,
    /// down what only the server has.
    async fn models(
        &mut self,
        socket: &mut Socket<impl Wire>,
        log: &str,
        store: &impl Store,
        logged: &std::collections::BTreeMap<String, ModelTrained>,
        released: &BTreeSet<String>,
        seal: Option<&Seal>,
    ) -> Result<Option<String>, String> {
        let body = serde_json::json!({ "subjects_filter": objects::metas(log) }).to_string();
        let got = socket
            .request(
                &jetstream::info_subject(&objects::stream(log)),
                None,
                body.as_bytes(),
            )
            .await?;
        let (on_server, bucket): (BTreeSet<String>, bool) = match answer::<Listed>(&got.payload)? {
            Ok(listed) => (listed.names(log).into_iter().collect(), true),
            Err(e) if e.err_code == STREAM_NOT_FOUND => (BTreeSet::new(), false),
            Err(e) => return Ok(Some(format!("the models on the server: {e}"))),
        };
        let here = match store.list_models().await {
            Ok(rows) => rows,
            Err(e) => return Ok(Some(format!("the models here: {e}"))),
        };
        let mut notes = Vec::new();
        let here_ids: BTreeSet<String> = here.iter().map(|(id, _)| id.clone()).collect();
        if !store.is_read_only() {
            let mut bucket = bucket;
            for (id, record) in &here {
                let Ok(record) = record else { continue };
                if on_server.contains(id) {
                    continue;
                }
                if !bucket {
                    if let Some(why) = ensure(
                        socket,
                        &objects::stream(log),
                        objects::bucket_config(log, 1),
                    )
                    .await?
                    {
                        notes.push(format!("models cannot be shared: {why}"));
                        break;
                    }
                    bucket = true;
                }
                if let Err(why) = upload(socket, &*self.env, log, store, record, seal).await? {
                    notes.push(why);
                }
            }
        }
        // Only models the log registered, and only the bytes it registered:
        // a model object nobody's `ModelTrained` names is never fetched.
        for record in objects::to_fetch(&on_server, &here_ids, logged, released) {
            if let Err(why) = download(socket, log, store, record, seal).await? {
                notes.push(why);
            }
        }
        Ok((!notes.is_empty()).then(|| notes.join("; ")))
    }
}

/// Make sure stream `name` exists, creating it with `config` if not: None,
/// or why it cannot be had.
pub(super) async fn ensure(
    socket: &mut Socket<impl Wire>,
    name: &str,
    config: serde_json::Value,
) -> Result<Option<String>, String> {
    let got = socket
        .request(&jetstream::info_subject(name), None, b"{}")
        .await?;
    match answer::<serde_json::Value>(&got.payload)? {
        Ok(_) => return Ok(None),
        Err(e) if e.err_code == STREAM_NOT_FOUND => {}
        Err(e) => return Ok(Some(e.to_string())),
    }
    let created = socket
        .request(
            &jetstream::create_subject(name),
            None,
            config.to_string().as_bytes(),
        )
        .await?;
    Ok(match answer::<serde_json::Value>(&created.payload)? {
        Ok(_) => None,
        Err(e) => Some(e.to_string()),
    })
}

/// The newest message of `subject` in `stream`, if any.
async fn last(
    socket: &mut Socket<impl Wire>,
    stream: &str,
    subject: &str,
) -> Result<Option<jetstream::StoredMessage>, String> {
    get(
        socket,
        stream,
        &GetRequest {
            last_by_subj: Some(subject.to_owned()),
            ..Default::default()
        },
    )
    .await
}

pub(super) async fn get(
    socket: &mut Socket<impl Wire>,
    stream: &str,
    ask: &GetRequest,
) -> Result<Option<jetstream::StoredMessage>, String> {
    let body = serde_json::to_vec(ask).map_err(|e| e.to_string())?;
    let got = socket
        .request(&jetstream::get_subject(stream), None, &body)
        .await?;
    match answer::<GetAnswer>(&got.payload)? {
        Ok(g) => Ok(Some(g.message)),
        Err(e) if e.err_code == NO_MESSAGE || e.err_code == STREAM_NOT_FOUND => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// Publish `value` to `subject` expecting its last revision `expected`
/// (a delete marker when `operation` says so): the new revision, or
/// JetStream's code and words.
async fn write(
    socket: &mut Socket<impl Wire>,
    subject: &str,
    expected: u64,
    value: &[u8],
    operation: Option<&str>,
) -> Result<Result<u64, (u32, String)>, String> {
    let expected = expected.to_string();
    let mut pairs = vec![(jetstream::EXPECTED_LAST_SUBJECT_SEQUENCE, expected.as_str())];
    if let Some(op) = operation {
        pairs.push(("KV-Operation", op));
    }
    let got = socket
        .request(subject, Some(&Headers::of(&pairs)), value)
        .await?;
    Ok(match answer::<PubAck>(&got.payload)? {
        Ok(ack) => Ok(ack.seq),
        Err(e) => Err((e.err_code, e.to_string())),
    })
}

/// Put one model's bytes in the bucket: chunks first, then the description
/// that names them. Outer error: the connection; inner: why not stored.
async fn upload(
    socket: &mut Socket<impl Wire>,
    env: &dyn Env,
    log: &str,
    store: &impl Store,
    record: &crate::domain::model::ModelTrained,
    seal: Option<&Seal>,
) -> Result<Result<(), String>, String> {
    let bytes = match store.model_bytes(&record.id).await {
        Ok(Some(b)) => b,
        // Let go here (`ModelBytesReleased`): nothing to share.
        Ok(None) => return Ok(Ok(())),
        Err(e) => return Ok(Err(e.to_string())),
    };
    let nuid = env.random_token();
    let (meta, bytes) = match seal {
        Some(seal) => {
            let sealed = seal.seal(&object_context(&objects::bucket(log), &record.id), &bytes);
            (
                Meta::of_sealed_model(log, &record.id, &nuid, &sealed),
                sealed,
            )
        }
        None => match Meta::of_model(log, record, &nuid, &bytes) {
            Ok(m) => (m, bytes),
            Err(e) => return Ok(Err(e)),
        },
    };
    for chunk in bytes.chunks(objects::CHUNK) {
        let got = socket
            .request(&objects::chunk_subject(log, &nuid), None, chunk)
            .await?;
        if let Err(e) = answer::<PubAck>(&got.payload)? {
            return Ok(Err(format!("{} was not shared: {e}", record.id)));
        }
    }
    let json = serde_json::to_vec(&meta).map_err(|e| e.to_string())?;
    let got = socket
        .request(
            &objects::meta_subject(log, &record.id),
            Some(&Headers::of(&[("Nats-Rollup", "sub")])),
            &json,
        )
        .await?;
    Ok(answer::<PubAck>(&got.payload)?
        .map(|_| ())
        .map_err(|e| format!("{} was not shared: {e}", record.id)))
}

/// Bring model `id` from the bucket into this browser's registry.
async fn download(
    socket: &mut Socket<impl Wire>,
    log: &str,
    store: &impl Store,
    logged: &ModelTrained,
    seal: Option<&Seal>,
) -> Result<Result<(), String>, String> {
    let id = logged.id.as_str();
    let stream = objects::stream(log);
    let Some(m) = last(socket, &stream, &objects::meta_subject(log, id)).await? else {
        return Ok(Ok(()));
    };
    let meta: Meta = match m
        .payload()
        .and_then(|p| serde_json::from_slice(&p).map_err(|e| e.to_string()))
    {
        Ok(meta) => meta,
        Err(e) => return Ok(Err(format!("{id}'s description on the server: {e}"))),
    };
    // A sealed model's record is the log's own; a plain one's must match it.
    let record = match seal {
        Some(_) => logged.clone(),
        None => match meta.record() {
            Ok(r) => r,
            Err(e) => return Ok(Err(e)),
        },
    };
    if let Err(e) = meta.plausible(objects::MAX_MODEL_BYTES, objects::CHUNK) {
        return Ok(Err(e));
    }
    let fits = match seal {
        Some(_) => meta.is_sealed_of(logged),
        None => meta.is_of(logged),
    };
    if let Err(e) = fits {
        return Ok(Err(e));
    }
    let mut bytes = Vec::with_capacity(meta.size as usize);
    let mut from = 1;
    let chunks = objects::chunk_subject(log, &meta.nuid);
    for _ in 0..meta.chunks {
        let ask = GetRequest {
            seq: Some(from),
            next_by_subj: Some(chunks.clone()),
            ..Default::default()
        };
        let Some(chunk) = get(socket, &stream, &ask).await? else {
            return Ok(Err(format!("{id}'s bytes on the server are incomplete")));
        };
        bytes.extend(chunk.payload()?);
        if bytes.len() as u64 > meta.size {
            return Ok(Err(format!("{id}'s chunks on the server exceed its size")));
        }
        from = chunk.seq + 1;
    }
    if let Err(e) = meta.check(&bytes) {
        return Ok(Err(e));
    }
    let bytes = match seal {
        None => bytes,
        Some(seal) => match seal.open(&object_context(&objects::bucket(log), id), &bytes) {
            Ok(plain) => plain,
            Err(e) => return Ok(Err(format!("{id} on the server is not readable: {e}"))),
        },
    };
    if let Err(e) = objects::are_registered(&bytes, logged) {
        return Ok(Err(e));
    }
    Ok(store
        .save_new_model(&record, &bytes)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string()))
}
