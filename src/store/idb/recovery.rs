//! Recovering a damaged log: read every record that still decodes (for the
//! export), find the last good event, and cut the log after it — the cut,
//! its record and the removal of everything derived from the cut-off tail in
//! one transaction, so a recovery is never half done.

use super::request::{committed, done, js_error};
use super::{store_of, IdbStore, HEAD, META, SEGMENTS, SNAPSHOTS, STREAM_TABLE, TABLE};
use crate::log::codec::{decode_segment, encode_segment};
use crate::log::Envelope;
use crate::store::verify::{damaged_words, Checker};
use crate::store::{place_batch, Committed, StoreError, StreamAppend};
use js_sys::{Array, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{IdbKeyRange, IdbTransactionMode};

/// Segments read per transaction while salvaging.
const PAGE: u32 = 16;

/// What a salvage read found.
pub struct Salvage {
    /// The rules' state as of the last good event.
    pub checker: Checker,
    /// The head when the log was read.
    pub head: u64,
    /// What is wrong right after the last good event (None: nothing).
    pub problem: Option<String>,
    /// Events after the last good one that still decode (they go to the
    /// export, not into the kept log).
    pub readable_after: u64,
    /// The good events of the segment the cut falls inside, when the first
    /// bad event is not at the start of its segment.
    partial: Option<Vec<Envelope>>,
}

impl Salvage {
    /// The seq of the last good event: the log is kept up to here.
    pub fn last_good(&self) -> u64 {
        self.checker.good()
    }
}

impl IdbStore {
    /// Read every segment, handing each one that decodes to `on_readable`
    /// (whether before or after the damage), and find the last good event.
    pub async fn salvage(
        &self,
        mut on_readable: impl FnMut(&[Envelope]),
    ) -> Result<Salvage, StoreError> {
        let head = crate::store::EventStore::head(self).await?;
        let mut checker = Checker::default();
        let mut problem: Option<String> = None;
        let mut readable_after = 0u64;
        let mut partial = None;
        let mut lower = 1u64;
        loop {
            let tx = self.transaction(&[SEGMENTS], IdbTransactionMode::Readonly)?;
            let segments = store_of(&tx, SEGMENTS)?;
            let range = IdbKeyRange::lower_bound(&JsValue::from_f64(lower as f64))
                .map_err(|e| js_error(e, "salvaging"))?;
            let keys = segments
                .get_all_keys_with_key_and_limit(&range, PAGE)
                .map_err(|e| js_error(e, "salvaging"))?;
            let values = segments
                .get_all_with_key_and_limit(&range, PAGE)
                .map_err(|e| js_error(e, "salvaging"))?;
            let keys: Array = done(&keys, "salvaging").await?.unchecked_into();
            let values: Array = done(&values, "salvaging").await?.unchecked_into();
            if keys.length() == 0 {
                break;
            }
            for (key, value) in keys.iter().zip(values.iter()) {
                let key = key.as_f64().unwrap_or(0.0) as u64;
                lower = key + 1;
                let bytes = value
                    .dyn_ref::<Uint8Array>()
                    .map(|b| b.to_vec())
                    .unwrap_or_default();
                match decode_segment(&bytes) {
                    Ok(events) => {
                        on_readable(&events);
                        if problem.is_some() {
                            readable_after += events.len() as u64;
                            continue;
                        }
                        for (i, e) in events.iter().enumerate() {
                            if let Err(p) = checker.check(e) {
                                problem = Some(p);
                                if i > 0 {
                                    partial = Some(events[..i].to_vec());
                                }
                                readable_after += (events.len() - i) as u64;
                                break;
                            }
                        }
                    }
                    Err(err) if problem.is_none() => {
                        problem = Some(damaged_words(&StoreError::Damaged {
                            from: checker.good() + 1,
                            to: Some(key),
                            reason: err.reason(),
                        }));
                    }
                    Err(_) => {}
                }
            }
        }
        if let (Some(p), true) = (&problem, checker.newer_code()) {
            // Not damage: a newer Retrace wrote it, and a newer Retrace reads it.
            return Err(StoreError::Storage(format!("nothing to recover — {p}")));
        }
        if problem.is_none() && checker.good() < head {
            problem = Some(format!(
                "the log's head is {head} but its records end at event {}",
                checker.good()
            ));
        }
        Ok(Salvage {
            checker,
            head,
            problem,
            readable_after,
            partial,
        })
    }

    /// Keep the log up to `salvage`'s last good event and append `record`
    /// (the recovery's own event) right after it. In one transaction: the
    /// later segments go, the segment the cut falls inside is rewritten with
    /// its good events, snapshots past the cut and the stream table's
    /// checkpoint are dropped (both are rebuilt from the log). Refused if
    /// the log moved since it was salvaged.
    pub async fn cut_after(
        &self,
        salvage: &Salvage,
        record: StreamAppend,
    ) -> Result<Committed, StoreError> {
        let last_good = salvage.last_good();
        let tx = self.transaction(
            &[META, SEGMENTS, STREAM_TABLE, SNAPSHOTS],
            IdbTransactionMode::Readwrite,
        )?;
        let meta = store_of(&tx, META)?;
        let head = self.read_head(&meta).await?;
        if head != salvage.head {
            let _ = tx.abort();
            return Err(StoreError::Storage(format!(
                "the log moved from {} to {head} events while it was being checked; stop the simulator and the loop, then recover again",
                salvage.head
            )));
        }
        let recorded_at = js_sys::Date::now() as i64;
        let placed = place_batch(vec![record], last_good, recorded_at, |s| {
            salvage.checker.version(s)
        })?;
        let segments = store_of(&tx, SEGMENTS)?;
        let after = IdbKeyRange::lower_bound(&JsValue::from_f64((last_good + 1) as f64))
            .map_err(|e| js_error(e, "cutting the log"))?;
        segments
            .delete(&after)
            .map_err(|e| js_error(e, "cutting the log"))?;
        let put = |events: &[Envelope]| -> Result<(), StoreError> {
            let Some(last) = events.last() else {
                return Ok(());
            };
            segments
                .put_with_key(
                    &Uint8Array::from(encode_segment(events).as_slice()),
                    &JsValue::from_f64(last.seq as f64),
                )
                .map(|_| ())
                .map_err(|e| js_error(e, "cutting the log"))
        };
        if let Some(good) = &salvage.partial {
            put(good)?;
        }
        put(&placed)?;
        let new_head = last_good + placed.len() as u64;
        meta.put_with_key(&JsValue::from_f64(new_head as f64), &HEAD.into())
            .map_err(|e| js_error(e, "cutting the log"))?;
        store_of(&tx, STREAM_TABLE)?
            .delete(&TABLE.into())
            .map_err(|e| js_error(e, "cutting the log"))?;
        let snapshots = store_of(&tx, SNAPSHOTS)?;
        let keys = snapshots
            .get_all_keys()
            .map_err(|e| js_error(e, "cutting the log"))?;
        let keys: Array = done(&keys, "cutting the log").await?.unchecked_into();
        for key in keys.iter() {
            let seq = Array::from(&key).get(1).as_f64().unwrap_or(0.0) as u64;
            if seq > last_good {
                snapshots
                    .delete(&key)
                    .map_err(|e| js_error(e, "cutting the log"))?;
            }
        }
        committed(&tx, "cutting the log").await?;
        self.table.borrow_mut().take();
        self.read_ahead.borrow_mut().clear();
        self.announce(new_head);
        Ok(Committed {
            first_seq: last_good + 1,
            last_seq: new_head,
        })
    }
}
