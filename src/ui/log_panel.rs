//! The log panel: what is stored, how much room it takes, and a demo append.

use super::live::Live;
use super::storage;
use super::Log;
use crate::domain::CaseOpened;
use crate::engine::api::{ExpectedVersion, LogReport};
use crate::engine::call::{CheckLog, EngineError};
use crate::engine::messages::{Command, Reply};
use crate::log::NewEvent;
use leptos::prelude::*;
use leptos::task::spawn_local;

/// The integrity check of the whole log, in the engine's checks' worker
/// (off this thread; the page does not open the log).
async fn check_in_worker(
    live: Live,
    progress: impl Fn(String) + 'static,
) -> Result<LogReport, EngineError> {
    live.call(CheckLog, |piece| {
        if let Reply::Progress { message, .. } = piece {
            progress(message)
        }
    })
    .await
}

/// Once the page has opened the log: check all of it in the background, so
/// damage anywhere is shown at boot (the views themselves start from a
/// snapshot and read only the newest records). Only a problem found is
/// shown; a check that could not run (the worker stopped) stays quiet.
pub async fn check_at_start(live: Live, log: Log) {
    let head = log.head.get_untracked();
    match check_in_worker(live, |_| {}).await {
        // A log cut meanwhile (another tab recovered it) is not the log
        // that was checked: the page says that instead, and keeps saying it.
        Ok(_) if log.head.get_untracked() < head => {}
        Ok(report) if report.problem.is_some() => {
            log.fail(format!("The check of the log at start: {report}"))
        }
        Ok(_) => {}
        Err(e) => {
            web_sys::console::warn_1(&format!("the log check at start did not run: {e}").into())
        }
    }
}

/// Counts, storage and the demo append.
#[component]
pub fn LogPanel() -> impl IntoView {
    let log = expect_context::<Log>();
    let usage = RwSignal::new(None::<(f64, f64)>);
    let persisted = RwSignal::new(None::<bool>);
    let verified = RwSignal::new(None::<String>);

    // Storage figures follow the head while this view is shown; one
    // estimate at a time (the live loop commits several times a second).
    let view = expect_context::<ReadSignal<super::route::View>>();
    let asking = StoredValue::new_local(false);
    Effect::new(move |_| {
        log.head.track();
        if view.get() != super::route::View::Settings || asking.get_value() {
            return;
        }
        asking.set_value(true);
        spawn_local(async move {
            usage.set(storage::estimate().await);
            persisted.set(storage::persisted().await);
            asking.set_value(false);
        });
    });

    let live = expect_context::<super::live::Live>();
    let append_demo = move |_| {
        let id = super::browser::random_id();
        let case = format!("demo-{}", &id[..8]);
        let mut attributes = crate::domain::events::Attributes::new();
        attributes.insert("source".into(), "demo button".into());
        let event = NewEvent::new(
            id,
            CaseOpened::TYPE,
            CaseOpened::SCHEMA,
            js_sys::Date::now() as i64,
            &CaseOpened {
                case: case.clone(),
                attributes,
            },
        )
        .correlated(case.clone());
        // The engine writes it (the page opens the log to read only).
        live.tell_engine(Command::Append {
            stream: format!("case-{case}"),
            expected: ExpectedVersion::NoStream,
            events: vec![event],
        });
    };

    let ask_persist = move |_| {
        spawn_local(async move {
            match storage::persist().await {
                Some(granted) => persisted.set(Some(granted)),
                None => log.fail("this browser does not offer persistent storage"),
            }
        });
    };

    // The check reads the whole log: it runs in the worker, off this thread.
    let live = expect_context::<Live>();
    let verify = move |_| {
        verified.set(Some("checking…".into()));
        spawn_local(async move {
            match check_in_worker(live, move |m| verified.set(Some(m))).await {
                Ok(report) => verified.set(Some(report.to_string())),
                Err(e) => {
                    verified.set(None);
                    log.fail(e.to_string())
                }
            }
        });
    };

    view! {
        <section class="card" aria-labelledby="log-heading">
            <h2 id="log-heading">"Event log"</h2>
            <dl class="facts">
                <dt>"Head seq"</dt>
                <dd data-testid="head-seq">{move || log.head.get()}</dd>
                <dt>"Storage used"</dt>
                <dd data-testid="storage-used">
                    {move || match usage.get() {
                        Some((used, quota)) => format!("{} of {}", storage::bytes(used), storage::bytes(quota)),
                        None => "unknown".into(),
                    }}
                </dd>
                <dt>"Persistent storage"</dt>
                <dd data-testid="persisted">
                    {move || match persisted.get() {
                        Some(true) => "yes — the browser will not evict this log",
                        Some(false) => "no — the browser may evict it when space runs low",
                        None => "unknown",
                    }}
                </dd>
            </dl>
            <div class="actions">
                <button data-testid="append-demo" on:click=append_demo>"Append a demo event"</button>
                <button data-testid="persist" on:click=ask_persist>"Keep this log (persistent storage)"</button>
                <button data-testid="verify" on:click=verify>"Check the log"</button>
            </div>
            <p data-testid="verify-result" aria-live="polite">{move || verified.get()}</p>
        </section>
    }
}
