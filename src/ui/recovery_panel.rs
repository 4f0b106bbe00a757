//! Recovering a damaged log (Settings): the engine's worker reads every
//! record that still decodes; the page says what is wrong and where and —
//! once the user agrees — downloads everything readable and has the engine
//! keep the log up to its last good event.

use super::live::Live;
use super::Log;
use crate::engine::call::{EngineError, RecoverLog};
use crate::engine::messages::Export;
use leptos::prelude::*;
use leptos::task::spawn_local;

/// The file everything readable is exported to.
const EXPORT_FILE: &str = "retrace-recovered.ndjson";

/// The recovery card.
#[component]
pub fn RecoveryPanel() -> impl IntoView {
    let log = expect_context::<Log>();
    let live = expect_context::<Live>();
    let status = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let done = RwSignal::new(false);

    let recover = move |_| {
        busy.set(true);
        status.set(Some("reading every record…".into()));
        spawn_local(async move {
            let read = super::export::read(live, Export::Salvage, &|n| {
                status.set(Some(format!("reading every record… {n} readable so far")))
            })
            .await;
            busy.set(false);
            let (parts, exported) = match read {
                Ok(r) => r,
                Err(e) => return status.set(Some(format!("The log could not be read: {e}"))),
            };
            let readable = exported.count;
            let Some(salvage) = exported.salvage else {
                return status.set(Some("The log could not be read.".into()));
            };
            let Some(problem) = salvage.problem.clone() else {
                return status.set(Some(format!(
                    "Nothing to recover: all {} events read and keep the log's rules.",
                    salvage.last_good
                )));
            };
            let kept = salvage.last_good;
            let question = format!(
                "The log is good up to event {kept}. Then: {problem}.\n\n\
                 Retrace will download every readable event ({readable}, of which {} come after event {kept}) \
                 as {EXPORT_FILE}, then keep events 1–{kept}, drop the rest ({} events), and record the cut \
                 as event {}. Continue?",
                salvage.readable_after,
                salvage.head.saturating_sub(kept),
                kept + 1
            );
            let sure = web_sys::window()
                .and_then(|w| w.confirm_with_message(&question).ok())
                .unwrap_or(false);
            if !sure {
                return status.set(Some(format!(
                    "Nothing changed. The log is good up to event {kept}; then: {problem}."
                )));
            }
            if let Err(e) = parts.download(EXPORT_FILE, "application/x-ndjson") {
                return status.set(Some(format!(
                    "The export could not be saved ({e}); nothing was cut."
                )));
            }
            let cut = live
                .call(
                    RecoverLog {
                        export_file: EXPORT_FILE.into(),
                        at: js_sys::Date::now() as i64,
                    },
                    |_| {},
                )
                .await;
            match cut {
                Ok(last_seq) => {
                    log.head.set(last_seq);
                    log.error.set(None);
                    done.set(true);
                    status.set(Some(format!(
                        "Recovered: kept events 1–{kept} and recorded the cut as event {last_seq}; \
                         {readable} readable events were exported to {EXPORT_FILE}. \
                         Reload to rebuild the views from the kept log."
                    )));
                }
                Err(e @ EngineError::NothingToCut(_)) => status.set(Some(format!("{e}."))),
                Err(e) => status.set(Some(format!("Nothing was cut: {e}"))),
            }
        });
    };
    let reload = move |_| {
        if let Some(w) = web_sys::window() {
            let _ = w.location().reload();
        }
    };

    view! {
        <section class="card" aria-labelledby="recover-heading">
            <h2 id="recover-heading">"Recover a damaged log"</h2>
            <p class="hint">"If a record of the log cannot be read (a disk or browser fault), Retrace can save everything still readable to a file and keep the log up to its last good event. It asks before changing anything."</p>
            <div class="actions">
                <button data-testid="recover" on:click=recover disabled=move || busy.get()>"Recover…"</button>
                <Show when=move || done.get()>
                    <button data-testid="recover-reload" on:click=reload>"Reload"</button>
                </Show>
            </div>
            <p data-testid="recover-status" aria-live="polite">{move || status.get()}</p>
        </section>
    }
}
