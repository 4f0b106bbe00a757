//! Web Locks (`navigator.locks`), shared by every tab and worker of the
//! origin: a lock is held until released or until its holder closes (the
//! browser releases a dead tab's and a terminated worker's locks).

use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};

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

/// Ask for the Web Lock `name`: at once or not at all (`if_available`),
/// or waiting in line. `done(Some(held))` once it is this context's,
/// `done(None)` if it was not available. Without Web Locks there is
/// nothing to coordinate with: `done` gets a lock at once.
pub fn request(name: &str, if_available: bool, done: impl FnOnce(Option<Held>) + 'static) {
    // `navigator.locks`, on a page or in a worker alike.
    let locks = Reflect::get(&js_sys::global(), &"navigator".into())
        .and_then(|n| Reflect::get(&n, &"locks".into()))
        .unwrap_or(JsValue::UNDEFINED);
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

/// Take the Web Lock `name` if no one else holds it.
pub async fn try_take(name: &str) -> Option<Held> {
    let (tx, rx) = futures::channel::oneshot::channel();
    request(name, true, move |held| {
        let _ = tx.send(held);
    });
    rx.await.ok().flatten()
}

/// Wait in line for the Web Lock `name`: the lock once it is ours.
pub async fn take_in_line(name: &str) -> Option<Held> {
    let (tx, rx) = futures::channel::oneshot::channel();
    request(name, false, move |held| {
        let _ = tx.send(held);
    });
    rx.await.ok().flatten()
}
