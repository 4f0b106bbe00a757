//! Settings: the app itself — version, offline readiness, updates — and
//! removing this browser's data.

use super::update::Updates;
use super::Log;
use leptos::prelude::*;
use wasm_bindgen::JsCast;

/// The settings panel.
#[component]
pub fn SettingsPanel() -> impl IntoView {
    let log = expect_context::<Log>();
    let updates = expect_context::<Updates>();
    let erase = move |_| {
        let Some(window) = web_sys::window() else {
            return;
        };
        let sure = window
            .confirm_with_message(
                "Delete this browser's Retrace log, snapshots and models? This cannot be undone.",
            )
            .unwrap_or(false);
        if !sure {
            return;
        }
        // The engine's worker closes the log when asked to let it go (its
        // store gives way to a deletion).
        let deleted = window
            .indexed_db()
            .ok()
            .flatten()
            .and_then(|f| f.delete_database(&super::shared::database()).ok());
        match deleted {
            Some(request) => {
                let reload = wasm_bindgen::closure::Closure::<dyn FnMut()>::new(move || {
                    if let Some(w) = web_sys::window() {
                        let _ = w.location().reload();
                    }
                });
                request.set_onsuccess(Some(reload.as_ref().unchecked_ref()));
                request.set_onblocked(Some(reload.as_ref().unchecked_ref()));
                reload.forget();
            }
            None => log.fail("this browser would not delete the database"),
        }
    };
    let demo = expect_context::<super::demo::Demo>();
    let shown = if demo.shown {
        view! {
            "the demo's log, a database of its own (yours is untouched) "
            <button data-testid="settings-leave-demo" on:click=|_| super::demo::leave()>"Back to your log"</button>
        }
        .into_any()
    } else if super::shared::connected() {
        format!(
            "the shared log “{}” (this browser's own log is kept apart: Disconnect under Shared log to see it)",
            super::shared::settings().log
        )
        .into_any()
    } else {
        "this browser's own log".into_any()
    };
    view! {
        <section class="card" aria-labelledby="settings-heading">
            <h2 id="settings-heading">"Retrace"</h2>
            <dl class="facts">
                <dt>"Version"</dt><dd>{env!("CARGO_PKG_VERSION")}</dd>
                <dt>"Offline"</dt><dd data-testid="offline-ready">{move || updates.offline.get()}</dd>
                <dt>"Log shown"</dt><dd data-testid="settings-log-shown">{shown}</dd>
            </dl>
            <div class="actions">
                <button data-testid="update-check" on:click=move |_| updates.check()>"Check for a new version"</button>
            </div>
            <h3>"This browser's data"</h3>
            <p class="hint">"Everything Retrace knows is in this browser's IndexedDB. Export the log first (Log → Export) if you want to keep it."</p>
            <button class="danger" data-testid="erase" on:click=erase>"Delete the log, snapshots and models"</button>
        </section>
    }
}
