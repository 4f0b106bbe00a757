//! One tab drives the loop: whoever switches it on takes the Web Lock
//! `retrace-loop` and holds it until it switches off or closes; another tab
//! that tries is told so and only watches (its projections still follow
//! every commit). Without this, two tabs would record every prediction twice.

use js_sys::{Function, Object, Promise, Reflect};
use leptos::prelude::*;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};

const NAME: &str = "retrace-loop";

/// The held lock: calling `release` lets it go.
pub struct Held {
    release: Function,
}

impl Held {
    /// Let the lock go.
    pub fn release(self) {
        let _ = self.release.call0(&JsValue::NULL);
    }
}

/// Try to take the lock; `done(Some(held))` if this tab has it,
/// `done(None)` if another tab does. Browsers without Web Locks always get it.
pub fn acquire(done: impl FnOnce(Option<Held>) + 'static) {
    acquire_named(NAME, done)
}

/// Try to take the Web Lock `name` (see [`acquire`]).
pub fn acquire_named(name: &str, done: impl FnOnce(Option<Held>) + 'static) {
    request(name, true, done)
}

/// Wait in line for the loop's lock: `done(held)` once the tab holding it
/// lets it go (switches the loop off, or closes).
pub fn wait(done: impl FnOnce(Option<Held>) + 'static) {
    request(NAME, false, done)
}

fn request(name: &str, if_available: bool, done: impl FnOnce(Option<Held>) + 'static) {
    let navigator = match web_sys::window() {
        Some(w) => w.navigator(),
        None => return,
    };
    let locks = Reflect::get(&navigator, &"locks".into()).unwrap_or(JsValue::UNDEFINED);
    let request = Reflect::get(&locks, &"request".into())
        .ok()
        .and_then(|r| r.dyn_into::<Function>().ok());
    let Some(request) = request else {
        // No Web Locks here: nothing to coordinate with.
        let noop = Function::new_no_args("");
        done(Some(Held { release: noop }));
        return;
    };
    let options = Object::new();
    if if_available {
        let _ = Reflect::set(&options, &"ifAvailable".into(), &true.into());
    }
    let callback = Closure::once_into_js(move |lock: JsValue| -> JsValue {
        if lock.is_null() {
            done(None);
            return JsValue::UNDEFINED;
        }
        // Held until this promise settles.
        let mut release = None;
        let hold = Promise::new(&mut |resolve, _| release = Some(resolve));
        if let Some(release) = release {
            done(Some(Held { release }));
        }
        hold.into()
    });
    let _ = request.call3(&locks, &name.into(), &options, &callback);
}

/// Take the Web Lock `name` if no other tab holds it.
pub async fn try_take(name: &str) -> Option<Held> {
    let (tx, rx) = futures::channel::oneshot::channel();
    acquire_named(name, move |held| {
        let _ = tx.send(held);
    });
    rx.await.ok().flatten()
}

/// Wait in line for the Web Lock `name`: the lock once this tab has it.
pub async fn take_in_line(name: &str) -> Option<Held> {
    let (tx, rx) = futures::channel::oneshot::channel();
    request(name, false, move |held| {
        let _ = tx.send(held);
    });
    rx.await.ok().flatten()
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
