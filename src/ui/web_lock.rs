//! One tab drives the loop: whoever switches it on takes the Web Lock
//! `retrace-loop` and holds it until it switches off or closes; another tab
//! that tries is told so and only watches (its projections still follow
//! every commit). Without this, two tabs would record every prediction twice.

use crate::web::lock::request;
pub use crate::web::lock::{try_take, Held};
use leptos::prelude::*;

const NAME: &str = "retrace-loop";

/// Try to take the loop's lock; `done(Some(held))` if this tab has it,
/// `done(None)` if another tab does. Browsers without Web Locks always get it.
pub fn acquire(done: impl FnOnce(Option<Held>) + 'static) {
    request(NAME, true, done)
}

/// Wait in line for the loop's lock: `done(held)` once the tab holding it
/// lets it go (switches the loop off, or closes).
pub fn wait(done: impl FnOnce(Option<Held>) + 'static) {
    request(NAME, false, done)
}

/// Keep `on` true only while this tab holds the lock; say why when not.
/// `holding` is true exactly while the lock is this tab's. A tab that asked
/// for the loop while another ran it waits in line and takes the loop over
/// when that tab lets it go — switches it off, or closes, or crashes (the
/// browser releases a dead tab's locks) — so the loop goes on as long as
/// one tab that wants it is open.
pub fn guard(on: RwSignal<bool>, holding: RwSignal<bool>, status: RwSignal<Option<String>>) {
    let held: StoredValue<Option<Held>, LocalStorage> = StoredValue::new_local(None);
    let waiting: StoredValue<bool, LocalStorage> = StoredValue::new_local(false);
    Effect::new(move |_| {
        let want = on.get();
        let has = held.with_value(|h| h.is_some());
        if want && !has {
            acquire(move |got| match got {
                Some(h) if on.get_untracked() => {
                    held.set_value(Some(h));
                    holding.set(true);
                }
                Some(h) => h.release(),
                None => {
                    on.set(false);
                    status.set(Some(
                        "Another tab runs the loop; this one shows its results as they are recorded, and takes the loop over if that tab stops it or closes.".into(),
                    ));
                    if waiting.get_value() {
                        return;
                    }
                    waiting.set_value(true);
                    wait(move |got| {
                        waiting.set_value(false);
                        let Some(h) = got else { return };
                        if held.with_value(|h| h.is_some()) {
                            return h.release();
                        }
                        held.set_value(Some(h));
                        holding.set(true);
                        on.set(true);
                        status.set(Some(
                            "This tab took the loop over: the tab that ran it stopped it or closed.".into(),
                        ));
                    });
                }
            });
        } else if !want && has {
            if let Some(h) = held.try_update_value(|h| h.take()).flatten() {
                holding.set(false);
                h.release();
            }
        }
    });
}
