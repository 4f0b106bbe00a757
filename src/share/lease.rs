//! Who drives a shared log's feedback loop: a lease in a JetStream
//! key-value bucket. The key is the log; its value names the browser that
//! holds it. Taking and renewing are writes that expect the key's last
//! revision (`Nats-Expected-Last-Subject-Sequence`), so two browsers can
//! never both succeed; the bucket keeps an entry for [`TTL_MS`] only
//! (`max_age`), so a holder that stops renewing — closed, crashed, cut off
//! — loses the lease on the server's clock, and another browser takes it.
//!
//! The holder counts its time from when it *sent* each renewal, not from
//! when it was answered, and stops driving well before the server could
//! have let the entry go: two drivers at once would record every
//! prediction twice.

use super::jetstream::subject_token;
use serde::{Deserialize, Serialize};

/// The bucket of loop leases (one key per shared log).
pub const BUCKET: &str = "retrace_loop";
/// How long an entry lives on the server without renewal.
pub const TTL_MS: f64 = 10_000.0;
/// The holder renews this often.
pub const RENEW_MS: f64 = TTL_MS / 4.0;
/// Without a renewal answered for this long, the holder stops driving.
pub const GIVE_UP_MS: f64 = TTL_MS * 0.7;
/// A browser waiting for the lease looks this often.
pub const LOOK_MS: f64 = 1_000.0;

/// The bucket's stream.
pub fn stream() -> String {
    format!("KV_{BUCKET}")
}

/// The subject of the lease of shared log `log`.
pub fn key(log: &str) -> String {
    format!("$KV.{BUCKET}.{}", subject_token(log))
}

/// The bucket's configuration, as `nats kv add` would make it: one value
/// per key, each gone [`TTL_MS`] after it was written.
pub fn bucket_config(replicas: u32) -> serde_json::Value {
    let ttl_ns = (TTL_MS as u64) * 1_000_000;
    serde_json::json!({
        "name": stream(),
        "subjects": [format!("$KV.{BUCKET}.>")],
        "storage": "file",
        "num_replicas": replicas,
        "max_msgs_per_subject": 1,
        "max_age": ttl_ns,
        "duplicate_window": ttl_ns,
        "discard": "new",
        "allow_rollup_hdrs": true,
        "deny_delete": true,
        "allow_direct": true,
    })
}

/// Who holds a lease: a browser (its id outlives reloads) and what the
/// others are shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// A random id kept by the browser.
    pub browser: String,
    /// Shown to the others.
    pub name: String,
}

/// The key's newest entry on the server.
#[derive(Clone, Debug, PartialEq)]
pub enum Entry {
    /// No entry (never taken, or gone with its time to live).
    Empty,
    /// Let go by its holder, at this revision.
    Released(u64),
    /// Held, written at this revision.
    Held(u64, Holder),
}

impl Entry {
    /// The entry from the key's newest message: its revision (stream
    /// sequence), payload, and whether it is a delete marker.
    pub fn of(revision: u64, payload: &[u8], deleted: bool) -> Entry {
        if deleted || payload.is_empty() {
            return Entry::Released(revision);
        }
        match serde_json::from_slice::<Holder>(payload) {
            Ok(holder) => Entry::Held(revision, holder),
            // Not ours to read: treat it as held by somebody unknown.
            Err(_) => Entry::Held(
                revision,
                Holder {
                    browser: String::new(),
                    name: "an unknown client".into(),
                },
            ),
        }
    }
}

/// What to do about the lease now.
#[derive(Clone, Debug, PartialEq)]
pub enum Ask {
    /// Nothing.
    Nothing,
    /// Read the key's newest entry, then [`Lease::looked`].
    Look,
    /// Write this browser's name expecting revision `expected` (0: none),
    /// then [`Lease::answered`].
    Write { expected: u64 },
    /// Write a delete marker expecting `expected`: the lease is let go.
    Release { expected: u64 },
}

/// Where this browser stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Standing {
    /// It does not want the lease.
    Idle,
    /// It wants it and has not heard who holds it.
    Asking,
    /// It holds it: it drives the loop.
    Ours,
    /// Another browser holds it.
    Theirs(Holder),
}

impl Standing {
    /// Its name in the page's `data-standing` attribute.
    pub fn name(&self) -> &'static str {
        match self {
            Standing::Idle => "idle",
            Standing::Asking => "asking",
            Standing::Ours => "ours",
            Standing::Theirs(_) => "theirs",
        }
    }
}

/// This browser's side of the lease.
#[derive(Clone, Debug)]
pub struct Lease {
    me: Holder,
    wanted: bool,
    /// The revision held and when the write that made it was sent.
    held: Option<(u64, f64)>,
    /// The revision at which this browser took the lease (renewals keep
    /// it): what names its term.
    taken: Option<u64>,
    /// A write sent, not yet answered, and when.
    sent: Option<f64>,
    looked_at: f64,
    theirs: Option<Holder>,
}

impl Lease {
    /// Nobody's lease yet, for browser `me`.
    pub fn new(me: Holder) -> Lease {
        Lease {
            me,
            wanted: false,
            held: None,
            taken: None,
            sent: None,
            looked_at: f64::NEG_INFINITY,
            theirs: None,
        }
    }

    /// What this browser writes as the key's value.
    pub fn value(&self) -> Vec<u8> {
        serde_json::to_vec(&self.me).expect("a holder encodes")
    }

    /// The user wants this browser to drive the loop, or no longer does.
    pub fn want(&mut self, on: bool) {
        self.wanted = on;
        if !on {
            self.theirs = None;
        }
    }

    /// What to do at `now` (ms on this browser's clock).
    pub fn next(&mut self, now: f64) -> Ask {
        if let Some((_, since)) = self.held {
            if now - since >= GIVE_UP_MS {
                // Not renewed in time (answers slow or lost): stop driving
                // now, before the server lets the entry go.
                self.held = None;
                self.looked_at = now;
                return Ask::Nothing;
            }
        }
        if self.sent.is_some() {
            return Ask::Nothing;
        }
        match self.held {
            Some((revision, _)) if !self.wanted => {
                self.held = None;
                Ask::Release { expected: revision }
            }
            Some((revision, since)) if now - since >= RENEW_MS => {
                self.sent = Some(now);
                Ask::Write { expected: revision }
            }
            Some(_) => Ask::Nothing,
            None if self.wanted && now - self.looked_at >= LOOK_MS => {
                self.looked_at = now;
                Ask::Look
            }
            None => Ask::Nothing,
        }
    }

    /// The key's newest entry, read at `now`: what to write, if anything.
    pub fn looked(&mut self, entry: Entry, now: f64) -> Ask {
        if !self.wanted || self.held.is_some() || self.sent.is_some() {
            return Ask::Nothing;
        }
        let expected = match entry {
            Entry::Empty => 0,
            Entry::Released(revision) => revision,
            // Ours from before a reload: take it on from its revision.
            Entry::Held(revision, holder) if holder.browser == self.me.browser => revision,
            Entry::Held(_, holder) => {
                self.theirs = Some(holder);
                return Ask::Nothing;
            }
        };
        self.sent = Some(now);
        Ask::Write { expected }
    }

    /// The server's answer to a write: stored at `revision`, or refused
    /// (somebody else wrote the key first) — `None`.
    pub fn answered(&mut self, revision: Option<u64>, now: f64) {
        let Some(sent) = self.sent.take() else { return };
        if revision.is_none() || self.held.is_none() {
            // Taken now (or not at all): a new term.
            self.taken = revision;
        }
        match revision {
            Some(r) if self.wanted => {
                self.held = Some((r, sent));
                self.theirs = None;
            }
            Some(r) => {
                // Switched off while asking: let it go at the next step.
                self.held = Some((r, sent));
            }
            None => {
                self.held = None;
                self.looked_at = now - LOOK_MS; // look at once who has it
            }
        }
    }

    /// While held: the moment (this browser's clock) this browser stops
    /// driving unless a renewal is stored before. Whatever it waits for
    /// meanwhile must not outlast it.
    pub fn deadline(&self) -> Option<f64> {
        self.held.map(|(_, since)| since + GIVE_UP_MS)
    }

    /// While held: the revision at which it was taken, and the deadline.
    pub fn held(&self) -> Option<(u64, f64)> {
        Some((self.taken?, self.deadline()?))
    }

    /// This browser's id and name.
    pub fn me(&self) -> &Holder {
        &self.me
    }

    /// The connection ended: nothing held can be renewed.
    pub fn lost(&mut self) {
        self.held = None;
        self.sent = None;
        self.looked_at = f64::NEG_INFINITY;
    }

    /// Where this browser stands.
    pub fn standing(&self) -> Standing {
        match (&self.held, &self.theirs) {
            (Some(_), _) if self.wanted => Standing::Ours,
            _ if !self.wanted => Standing::Idle,
            (None, Some(h)) => Standing::Theirs(h.clone()),
            _ => Standing::Asking,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> Holder {
        Holder {
            browser: "b1".into(),
            name: "alice".into(),
        }
    }

    fn other() -> Holder {
        Holder {
            browser: "b2".into(),
            name: "bob".into(),
        }
    }

    fn taken(lease: &mut Lease, at: f64) {
        lease.want(true);
        assert_eq!(lease.next(at), Ask::Look);
        assert_eq!(lease.looked(Entry::Empty, at), Ask::Write { expected: 0 });
        lease.answered(Some(4), at + 5.0);
    }

    #[test]
    fn a_free_key_is_taken_with_no_revision_expected_and_renewed_from_its_own() {
        let mut lease = Lease::new(me());
        assert_eq!(lease.next(0.0), Ask::Nothing, "not wanted: nothing asked");
        taken(&mut lease, 0.0);
        assert_eq!(lease.standing(), Standing::Ours);
        assert_eq!(lease.next(RENEW_MS - 1.0), Ask::Nothing);
        assert_eq!(lease.next(RENEW_MS), Ask::Write { expected: 4 });
        lease.answered(Some(9), RENEW_MS + 3.0);
        assert_eq!(lease.next(2.0 * RENEW_MS), Ask::Write { expected: 9 });
    }

    #[test]
    fn the_term_is_the_revision_it_was_taken_at_and_changes_only_with_a_new_take() {
        let mut lease = Lease::new(me());
        assert_eq!(lease.held(), None);
        taken(&mut lease, 0.0);
        assert_eq!(lease.held(), Some((4, GIVE_UP_MS)));
        assert_eq!(lease.next(RENEW_MS), Ask::Write { expected: 4 });
        lease.answered(Some(9), RENEW_MS + 3.0);
        let (term, deadline) = lease.held().expect("held");
        assert_eq!(term, 4, "a renewal keeps the term");
        assert_eq!(
            deadline,
            RENEW_MS + GIVE_UP_MS,
            "counted from when the renewal was sent"
        );
        // Not renewed in time: given up, then taken again — a new term.
        assert_eq!(lease.next(deadline), Ask::Nothing);
        assert_eq!(lease.held(), None);
        assert_eq!(lease.next(deadline + LOOK_MS), Ask::Look);
        assert_eq!(
            lease.looked(Entry::Held(9, me()), deadline + LOOK_MS),
            Ask::Write { expected: 9 }
        );
        lease.answered(Some(15), deadline + LOOK_MS + 1.0);
        assert_eq!(lease.held().map(|h| h.0), Some(15));
    }

    #[test]
    fn held_by_another_it_waits_and_looks_again_until_the_entry_is_gone() {
        let mut lease = Lease::new(me());
        lease.want(true);
        assert_eq!(lease.next(0.0), Ask::Look);
        assert_eq!(lease.looked(Entry::Held(7, other()), 0.0), Ask::Nothing);
        assert_eq!(lease.standing(), Standing::Theirs(other()));
        assert_eq!(lease.next(LOOK_MS - 1.0), Ask::Nothing);
        assert_eq!(lease.next(LOOK_MS), Ask::Look);
        // The holder went away: its entry's time ran out on the server.
        assert_eq!(
            lease.looked(Entry::Empty, LOOK_MS),
            Ask::Write { expected: 0 }
        );
        lease.answered(Some(12), LOOK_MS + 2.0);
        assert_eq!(lease.standing(), Standing::Ours);
    }

    #[test]
    fn two_browsers_writing_at_once_one_is_refused_and_shown_the_other() {
        let mut lease = Lease::new(me());
        lease.want(true);
        lease.next(0.0);
        lease.looked(Entry::Empty, 0.0);
        // The other wrote first: the expected revision no longer holds.
        lease.answered(None, 3.0);
        assert_ne!(lease.standing(), Standing::Ours);
        assert_eq!(lease.next(3.0), Ask::Look, "looks at once who has it");
        lease.looked(Entry::Held(1, other()), 4.0);
        assert_eq!(lease.standing(), Standing::Theirs(other()));
    }

    #[test]
    fn a_holder_whose_renewals_go_unanswered_stops_before_the_server_lets_go() {
        let mut lease = Lease::new(me());
        taken(&mut lease, 0.0);
        assert_eq!(lease.next(RENEW_MS), Ask::Write { expected: 4 });
        // No answer comes: still ours until GIVE_UP_MS after the last
        // write that was stored, then not. A late answer counts from when
        // its write was sent, never from when it came.
        assert_eq!(lease.standing(), Standing::Ours);
        assert_eq!(lease.next(GIVE_UP_MS), Ask::Nothing);
        assert_ne!(lease.standing(), Standing::Ours);
        lease.answered(Some(5), GIVE_UP_MS + 1.0);
        lease.next(RENEW_MS + GIVE_UP_MS);
        assert_ne!(lease.standing(), Standing::Ours);
        let mut lease = Lease::new(me());
        taken(&mut lease, 0.0);
        assert_eq!(
            lease.deadline(),
            Some(GIVE_UP_MS),
            "what a wait may not outlast"
        );
        assert_eq!(lease.next(GIVE_UP_MS), Ask::Nothing);
        assert_ne!(lease.standing(), Standing::Ours);
        assert_eq!(lease.deadline(), None);
        const { assert!(GIVE_UP_MS < TTL_MS) };
    }

    #[test]
    fn a_reloaded_holder_takes_its_own_entry_on_and_a_switched_off_one_lets_go() {
        let mut lease = Lease::new(me());
        lease.want(true);
        lease.next(0.0);
        assert_eq!(
            lease.looked(Entry::Held(5, me()), 0.0),
            Ask::Write { expected: 5 }
        );
        lease.answered(Some(6), 1.0);
        lease.want(false);
        assert_eq!(lease.next(2.0), Ask::Release { expected: 6 });
        assert_eq!(lease.standing(), Standing::Idle);
        assert_eq!(
            Entry::of(7, b"", true),
            Entry::Released(7),
            "a delete marker lets go"
        );
        let mut again = Lease::new(other());
        again.want(true);
        again.next(0.0);
        assert_eq!(
            again.looked(Entry::Released(7), 0.0),
            Ask::Write { expected: 7 }
        );
    }

    #[test]
    fn the_connection_lost_nothing_is_held() {
        let mut lease = Lease::new(me());
        taken(&mut lease, 0.0);
        lease.lost();
        assert_eq!(lease.standing(), Standing::Asking);
        assert_eq!(lease.next(1.0), Ask::Look);
    }
}
