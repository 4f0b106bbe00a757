//! Offline and updates: the service worker (`sw.js`, written by the build
//! with the list of this version's files) caches the whole app on the first
//! visit. A new version installs beside the running one and is offered; it
//! takes over only when the user says so, and then for the whole page at
//! once — never a mix of old and new files.

use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{ServiceWorker, ServiceWorkerRegistration, ServiceWorkerState};

/// What the page knows about its service worker.
#[derive(Clone, Copy)]
pub struct Updates {
    /// Whether the app works offline, in words.
    pub offline: RwSignal<String>,
    /// A new version is installed and waiting.
    pub waiting: RwSignal<bool>,
    registration: StoredValue<Option<ServiceWorkerRegistration>, LocalStorage>,
    reloading: StoredValue<bool, LocalStorage>,
}

fn container() -> Option<web_sys::ServiceWorkerContainer> {
    let navigator = web_sys::window()?.navigator();
    // Absent where service workers are not allowed (plain http off localhost).
    js_sys::Reflect::has(&navigator, &"serviceWorker".into())
        .ok()
        .filter(|has| *has)
        .map(|_| navigator.service_worker())
}

impl Updates {
    /// Register the service worker and watch for new versions.
    pub fn start() -> Updates {
        let updates = Updates {
            offline: RwSignal::new("checking…".into()),
            waiting: RwSignal::new(false),
            registration: StoredValue::new_local(None),
            reloading: StoredValue::new_local(false),
        };
        let Some(sw) = container() else {
            updates
                .offline
                .set("not available: this browser allows no service worker here (it needs https or localhost)".into());
            return updates;
        };
        // The new version took over (because the user asked): load it whole.
        let on_controller = Closure::<dyn FnMut()>::new(move || {
            if updates.reloading.get_value() {
                if let Some(w) = web_sys::window() {
                    let _ = w.location().reload();
                }
            }
        });
        sw.set_oncontrollerchange(Some(on_controller.as_ref().unchecked_ref()));
        on_controller.forget();
        spawn_local(async move {
            let registered = JsFuture::from(sw.register("sw.js")).await;
            let registration: ServiceWorkerRegistration = match registered {
                Ok(r) => r.unchecked_into(),
                Err(e) => {
                    let why = js_sys::Reflect::get(&e, &"message".into())
                        .ok()
                        .and_then(|m| m.as_string())
                        .unwrap_or_else(|| format!("{e:?}"));
                    updates.offline.set(format!("not available: {why}"));
                    return;
                }
            };
            updates.watch(&registration);
            updates.registration.set_value(Some(registration));
            let ready = match sw.ready() {
                Ok(p) => JsFuture::from(p).await.is_ok(),
                Err(_) => false,
            };
            if ready {
                updates.offline.set(
                    "ready: this version is stored in the browser and works without a network"
                        .into(),
                );
            }
        });
        updates
    }

    fn watch(self, registration: &ServiceWorkerRegistration) {
        let has_controller = || container().and_then(|c| c.controller()).is_some();
        if registration.waiting().is_some() && has_controller() {
            self.waiting.set(true);
        }
        let reg = registration.clone();
        let on_found = Closure::<dyn FnMut()>::new(move || {
            let Some(installing) = reg.installing() else {
                return;
            };
            let worker = installing.clone();
            let on_state = Closure::<dyn FnMut()>::new(move || {
                // Installed beside a running version: offer it.
                if worker.state() == ServiceWorkerState::Installed && has_controller() {
                    self.waiting.set(true);
                }
            });
            installing.set_onstatechange(Some(on_state.as_ref().unchecked_ref()));
            on_state.forget();
        });
        registration.set_onupdatefound(Some(on_found.as_ref().unchecked_ref()));
        on_found.forget();
    }

    /// Ask the server whether there is a new version.
    pub fn check(self) {
        let Some(registration) = self.registration.get_value() else {
            return;
        };
        spawn_local(async move {
            if let Ok(p) = registration.update() {
                let _ = JsFuture::from(p).await;
            }
        });
    }

    /// Switch to the waiting version: it takes over, then the page reloads.
    pub fn apply(self) {
        let waiting: Option<ServiceWorker> =
            self.registration.get_value().and_then(|r| r.waiting());
        if let Some(w) = waiting {
            self.reloading.set_value(true);
            let _ = w.post_message(&"skip-waiting".into());
        }
    }
}

/// "A new version is ready", with the button that loads it.
#[component]
pub fn UpdateBanner() -> impl IntoView {
    let updates = expect_context::<Updates>();
    view! {
        <Show when=move || updates.waiting.get()>
            <div class="update" role="status" data-testid="update-banner">
                <p>"A new version of Retrace is ready. It will load whole when you reload; your log stays as it is."</p>
                <button data-testid="update-apply" on:click=move |_| updates.apply()>"Reload to update"</button>
            </div>
        </Show>
    }
}
