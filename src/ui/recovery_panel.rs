//! Recovering a damaged log (Settings): read every record that still
//! decodes, say what is wrong and where, and — once the user agrees —
//! download everything readable and keep the log up to its last good event.

use super::browser::{random_id, Parts};
use super::Log;
use crate::domain::events::LogRecovered;
use crate::io::cloudevents::to_line;
use crate::log::NewEvent;
use crate::store::{ExpectedVersion, StreamAppend};
use leptos::prelude::*;
use leptos::task::spawn_local;

/// The file everything readable is exported to.
const EXPORT_FILE: &str = "retrace-recovered.ndjson";

/// The recovery card.
#[component]
pub fn RecoveryPanel() -> impl IntoView {
    let log = expect_context::<Log>();
    let status = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let done = RwSignal::new(false);

    let recover = move |_| {
        let Some(store) = log.get() else { return };
        busy.set(true);
        status.set(Some("reading every record…".into()));
        spawn_local(async move {
            let mut parts = Parts::default();
            let mut readable = 0u64;
            let salvage = store
                .salvage(|events| {
                    let mut text = String::new();
                    for e in events {
                        text.push_str(&to_line(e));
                        text.push('\n');
                    }
                    readable += events.len() as u64;
                    parts.push(&text);
                })
                .await;
            busy.set(false);
            let salvage = match salvage {
                Ok(s) => s,
                Err(e) => return status.set(Some(format!("The log could not be read: {e}"))),
            };
            let Some(problem) = salvage.problem.clone() else {
                return status.set(Some(format!(
                    "Nothing to recover: all {} events read and keep the log's rules.",
                    salvage.last_good()
                )));
            };
            let kept = salvage.last_good();
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
            let payload = LogRecovered {
                kept_to: kept,
                old_head: salvage.head,
                problem: problem.clone(),
                exported_after_cut: salvage.readable_after,
                export_file: EXPORT_FILE.into(),
            };
            let record = StreamAppend::new(
                LogRecovered::STREAM,
                ExpectedVersion::Any,
                vec![NewEvent::new(
                    random_id(),
                    LogRecovered::TYPE,
                    LogRecovered::SCHEMA,
                    js_sys::Date::now() as i64,
                    &payload,
                )],
            );
            match store.cut_after(&salvage, record).await {
                Ok(c) => {
                    log.head.set(c.last_seq);
                    log.error.set(None);
                    done.set(true);
                    status.set(Some(format!(
                        "Recovered: kept events 1–{kept} and recorded the cut as event {}; \
                         {readable} readable events were exported to {EXPORT_FILE}. \
                         Reload to rebuild the views from the kept log.",
                        c.last_seq
                    )));
                }
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
