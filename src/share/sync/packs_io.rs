//! Packs on the server ([`crate::share::packs`]): listing them,
//! downloading one (its ends checked against the log's stream; the engine
//! checks its digest and commits it), and putting one there.

use super::team::{ensure, get};
use crate::share::env::Env;
use crate::share::gate::{self, Admitted};
use crate::share::jetstream::{
    self, answer, GetRequest, PubAck, EXPECTED_LAST_SUBJECT_SEQUENCE, MSG_ID, WRONG_LAST_SEQUENCE,
};
use crate::share::objects::{self, Listed, Meta};
use crate::share::packs;
use crate::share::packs::PackMade;
use crate::share::proto::{Headers, Message};
use crate::share::seal::{object_context, Seal};
use crate::share::socket::{Socket, Wire};
use std::collections::VecDeque;

/// Chunks sent before their answers are awaited.
const WINDOW: usize = 16;

/// The events each pack on the server holds (none when there is no bucket,
/// or the server will not say). Error: the connection.
pub async fn listed(socket: &mut Socket<impl Wire>, log: &str) -> Result<Vec<(u64, u64)>, String> {
    let bucket = packs::bucket(log);
    let body = serde_json::json!({ "subjects_filter": objects::metas_in(&bucket) }).to_string();
    let got = socket
        .request(
            &jetstream::info_subject(&objects::stream_of(&bucket)),
            None,
            body.as_bytes(),
        )
        .await?;
    Ok(match answer::<Listed>(&got.payload)? {
        Ok(listed) => listed
            .names_in(&bucket)
            .iter()
            .filter_map(|n| packs::range_of(n))
            .collect(),
        // No bucket yet, or the server will not say: no packs.
        Err(_) => Vec::new(),
    })
}

/// Download pack `from..=to`: its bytes and the SHA-256 its description
/// gives them (the engine checks and reads them), or why it cannot be used
/// (then the log's stream is read instead). Outer error: the connection.
pub async fn fetch(
    socket: &mut Socket<impl Wire>,
    env: &dyn Env,
    log: &str,
    (from, to): (u64, u64),
    seal: Option<&Seal>,
) -> Result<Result<((String, Vec<packs::Packed>), Vec<u8>), String>, String> {
    let bucket = packs::bucket(log);
    let stream = objects::stream_of(&bucket);
    let name = packs::name(from, to);
    let ask = GetRequest {
        last_by_subj: Some(objects::meta_in(&bucket, &name)),
        ..Default::default()
    };
    let Some(described) = get(socket, &stream, &ask).await? else {
        return Ok(Err(format!("pack {name} is gone from the server")));
    };
    let meta: Meta = match described
        .payload()
        .and_then(|p| serde_json::from_slice(&p).map_err(|e| e.to_string()))
    {
        Ok(meta) => meta,
        Err(e) => return Ok(Err(format!("pack {name}'s description: {e}"))),
    };
    let holds = match packs::holds(&meta) {
        Ok(h) if (h.from, h.to) == (from, to) => h,
        Ok(_) => return Ok(Err(format!("pack {name} is described as other events"))),
        Err(e) => return Ok(Err(e)),
    };
    if let Err(e) = meta.plausible(objects::MAX_PACK_BYTES, objects::CHUNK) {
        return Ok(Err(e));
    }
    // The stream is the truth: the pack's ends must be its events.
    for (seq, id) in [(holds.from, &holds.first_id), (holds.to, &holds.last_id)] {
        let ask = GetRequest {
            seq: Some(seq),
            ..Default::default()
        };
        let stored = get(socket, &jetstream::stream_name(log), &ask).await?;
        let stored_id = stored
            .and_then(|m| m.headers().ok().flatten())
            .and_then(|h| h.get(MSG_ID).map(str::to_owned));
        if stored_id.as_deref() != Some(id.as_str()) {
            return Ok(Err(format!(
                "pack {name} does not match the log on the server at event {seq}"
            )));
        }
    }
    // And at places inside it the packer could not know: the stream's
    // events there, as the gate reads them, for the engine to compare.
    let mut samples = Vec::new();
    for seq in packs::sample_places(from, to, packs::SAMPLES, || env.random()) {
        let ask = GetRequest {
            seq: Some(seq),
            ..Default::default()
        };
        let Some(stored) = get(socket, &jetstream::stream_name(log), &ask).await? else {
            continue;
        };
        let message = Message {
            subject: stored.subject.clone(),
            sid: 0,
            reply: None,
            headers: stored.headers()?,
            payload: stored.payload()?,
        };
        samples.push(match gate::admit_with(log, seq, &message, seal) {
            Admitted::Event(shared) => (seq, shared.stream, shared.event),
            Admitted::Refused(r) => {
                let (stream, event) = gate::into_event(r, 0);
                (seq, stream, event)
            }
        });
    }
    // Its chunks, in order, through a consumer of their subject.
    let inbox = format!("{}.{}.pack", socket.inbox_prefix, env.random_token());
    let sid = socket.conn.subscribe(&inbox);
    let chunks = objects::chunks_in(&bucket, &meta.nuid);
    let body = crate::share::consumer::of_subject(&stream, &inbox, &chunks).to_string();
    let created = socket
        .request(
            &crate::share::consumer::create_subject(&stream),
            None,
            body.as_bytes(),
        )
        .await?;
    if let Err(e) = answer::<serde_json::Value>(&created.payload)? {
        socket.conn.unsubscribe(sid);
        return Ok(Err(format!("pack {name} could not be read: {e}")));
    }
    let mut bytes = Vec::with_capacity(meta.size as usize);
    let mut got = 0;
    while got < meta.chunks {
        let m = socket.message_to(sid).await?;
        match m.headers.as_ref().and_then(|h| h.status) {
            // Flow control, answered; a heartbeat (nothing more to
            // send for a while) before the last chunk: it is missing.
            Some(100) => match m.reply.as_deref().filter(|r| !r.is_empty()) {
                Some(reply) => socket.conn.publish(reply, b""),
                None => {
                    socket.conn.unsubscribe(sid);
                    return Ok(Err(format!(
                        "pack {name} on the server is incomplete ({got} of {} parts)",
                        meta.chunks
                    )));
                }
            },
            Some(code) => {
                socket.conn.unsubscribe(sid);
                return Ok(Err(format!(
                    "the server stopped sending pack {name} ({code})"
                )));
            }
            None => {
                bytes.extend_from_slice(&m.payload);
                got += 1;
            }
        }
    }
    socket.conn.unsubscribe(sid);
    if bytes.len() as u64 != meta.size {
        return Ok(Err(format!(
            "pack {name} arrived with {} bytes, its description says {}",
            bytes.len(),
            meta.size
        )));
    }
    // An encrypted log's pack opens with the team's key, for this name only.
    let bytes = match seal {
        None => bytes,
        Some(seal) => match seal.open(&object_context(&bucket, &name), &bytes) {
            Ok(plain) => plain,
            Err(e) => return Ok(Err(format!("pack {name} is not readable: {e}"))),
        },
    };
    Ok(Ok(((meta.digest, samples), bytes)))
}

/// Put pack `from..=to` (made by the engine) on the server: chunks first,
/// then the description, which only the first browser to pack these events
/// gets to write (`false`: another one did; its pack is as good). Inner
/// error: why not; outer: the connection.
pub async fn upload(
    socket: &mut Socket<impl Wire>,
    env: &dyn Env,
    log: &str,
    range: (u64, u64),
    made: &PackMade,
    seal: Option<&Seal>,
) -> Result<Result<bool, String>, String> {
    let bucket = packs::bucket(log);
    let sealed;
    let bytes: &[u8] = match seal {
        None => &made.bytes,
        Some(seal) => {
            sealed = seal.seal(
                &object_context(&bucket, &packs::name(range.0, range.1)),
                &made.bytes,
            );
            &sealed
        }
    };
    let stream = objects::stream_of(&bucket);
    if let Some(why) = ensure(socket, &stream, objects::config_of(&bucket, 1)).await? {
        return Ok(Err(why));
    }
    let nuid = env.random_token();
    let meta = packs::describe(packs::Described {
        log,
        nuid: &nuid,
        size: bytes.len(),
        sha256: &made.sha256,
        range,
        ids: (&made.first_id, &made.last_id),
    });
    let subject = objects::chunks_in(&bucket, &nuid);
    let mut pieces = bytes.chunks(objects::CHUNK);
    let mut waiting = VecDeque::new();
    loop {
        while waiting.len() < WINDOW {
            match pieces.next() {
                Some(piece) => waiting.push_back(socket.conn.request(&subject, None, piece)),
                None => break,
            }
        }
        let Some(id) = waiting.pop_front() else { break };
        let got = socket.answer(id).await?;
        if let Err(e) = answer::<PubAck>(&got.payload)? {
            for id in waiting {
                socket.conn.forget(id);
            }
            purge(socket, &stream, &subject).await?;
            return Ok(Err(e.to_string()));
        }
    }
    let json = serde_json::to_vec(&meta).map_err(|e| e.to_string())?;
    let got = socket
        .request(
            &objects::meta_in(&bucket, &meta.name),
            Some(&Headers::of(&[(EXPECTED_LAST_SUBJECT_SEQUENCE, "0")])),
            &json,
        )
        .await?;
    match answer::<PubAck>(&got.payload)? {
        Ok(_) => Ok(Ok(true)),
        Err(e) => {
            purge(socket, &stream, &subject).await?;
            Ok(if e.err_code == WRONG_LAST_SEQUENCE {
                Ok(false)
            } else {
                Err(e.to_string())
            })
        }
    }
}

/// Remove the chunks of a pack that was not described.
async fn purge(socket: &mut Socket<impl Wire>, stream: &str, subject: &str) -> Result<(), String> {
    let body = serde_json::json!({ "filter": subject }).to_string();
    socket
        .request(
            &format!("$JS.API.STREAM.PURGE.{stream}"),
            None,
            body.as_bytes(),
        )
        .await
        .map(|_| ())
}
