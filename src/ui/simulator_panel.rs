//! Simulator controls: seed, rate, start / pause / stop, inject drift.

use super::live::Live;
use super::Log;
use crate::domain::simulator::{Drift, Settings, Simulator};
use crate::store::{EventStore, ExpectedVersion, StreamAppend};
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Stopped,
    Running,
    Paused,
}

const TICK_MS: i32 = 200;

fn drift_choice(name: &str) -> Drift {
    match name {
        "leave" => Drift::ResourceLeaves("Chen".into()),
        "rework" => Drift::ReworkAdded("installation".into()),
        _ => Drift::WorkDoubles("repair".into()),
    }
}

/// Group consecutive events of one stream into one part of a batch.
fn to_batch(events: Vec<(String, crate::log::NewEvent)>) -> Vec<StreamAppend> {
    let mut batch: Vec<StreamAppend> = Vec::new();
    for (stream, event) in events {
        match batch.last_mut() {
            Some(part) if part.stream == stream => part.events.push(event),
            _ => batch.push(StreamAppend::new(stream, ExpectedVersion::Any, vec![event])),
        }
    }
    batch
}

/// The simulator's controls.
#[component]
pub fn SimulatorPanel() -> impl IntoView {
    let log = expect_context::<Log>();
    let live = expect_context::<Live>();
    let seed = RwSignal::new(42u64);
    let rate = RwSignal::new(20.0f64);
    let status = RwSignal::new(Status::Stopped);
    let drift = RwSignal::new("double".to_string());
    let sim: StoredValue<Option<Simulator>, LocalStorage> = StoredValue::new_local(None);
    let carry = StoredValue::new_local(0.0f64);

    // One timer for the panel's life: each tick produces rate × tick events.
    let tick = Closure::<dyn FnMut()>::new(move || {
        if status.get_untracked() != Status::Running {
            return;
        }
        let Some(store) = log.get() else { return };
        let due = carry.get_value() + rate.get_untracked() * TICK_MS as f64 / 1000.0;
        let n = due.floor();
        carry.set_value(due - n);
        if n < 1.0 {
            return;
        }
        let events = sim
            .try_update_value(|s| s.as_mut().map(|s| s.next_events(n as usize)))
            .flatten()
            .unwrap_or_default();
        if events.is_empty() {
            return;
        }
        spawn_local(async move {
            match store.append_batch(to_batch(events)).await {
                Ok(c) => log.head.update(|h| *h = (*h).max(c.last_seq)),
                Err(e) => {
                    status.set(Status::Paused);
                    log.fail(e);
                }
            }
        });
    });
    if let Some(w) = web_sys::window() {
        let _ = w.set_interval_with_callback_and_timeout_and_arguments_0(
            tick.as_ref().unchecked_ref(),
            TICK_MS,
        );
    }
    tick.forget();

    let start = move |_| {
        if sim.with_value(|s| s.is_none()) {
            // A new run continues the log's domain time, with its own case ids.
            let last = live.with_view(|set| set.stats.state.span.map(|(_, b)| b));
            let defaults = Settings::default();
            let settings = Settings {
                seed: seed.get_untracked(),
                run: format!("r{}", log.head.get_untracked()),
                start_ms: last.map_or(defaults.start_ms, |t| t + 1),
                ..defaults
            };
            sim.set_value(Some(Simulator::new(settings)));
        }
        status.set(Status::Running);
    };
    let pause = move |_| status.set(Status::Paused);
    let stop = move |_| {
        status.set(Status::Stopped);
        sim.set_value(None);
    };
    let inject = move |_| {
        let d = drift_choice(&drift.get_untracked());
        sim.update_value(|s| {
            if let Some(s) = s {
                s.inject(d)
            }
        });
    };

    view! {
        <section class="card" aria-labelledby="sim-heading">
            <h2 id="sim-heading">"Simulator"</h2>
            <p class="hint">"A seeded service process: six people, four kinds of order, queues, rework, working hours."</p>
            <div class="form-row">
                <label>"Seed " <input type="number" min="0" data-testid="sim-seed"
                    prop:value=move || seed.get().to_string()
                    on:input=move |ev| { if let Ok(v) = event_target_value(&ev).parse() { seed.set(v) } } /></label>
                <label>"Events per second " <input type="number" min="1" max="5000" data-testid="sim-rate"
                    prop:value=move || rate.get().to_string()
                    on:input=move |ev| { if let Ok(v) = event_target_value(&ev).parse::<f64>() { rate.set(v.clamp(0.1, 5000.0)) } } /></label>
            </div>
            <div class="actions">
                <button data-testid="sim-start" on:click=start disabled=move || status.get() == Status::Running>
                    {move || if status.get() == Status::Paused { "Resume" } else { "Start" }}
                </button>
                <button data-testid="sim-pause" on:click=pause disabled=move || status.get() != Status::Running>"Pause"</button>
                <button data-testid="sim-stop" on:click=stop disabled=move || status.get() == Status::Stopped>"Stop"</button>
            </div>
            <div class="form-row">
                <label>"Drift "
                    <select data-testid="drift-kind" on:change=move |ev| drift.set(event_target_value(&ev))>
                        <option value="double">"repair work takes twice as long"</option>
                        <option value="leave">"Chen leaves the team"</option>
                        <option value="rework">"installations need a second review"</option>
                    </select>
                </label>
                <button data-testid="drift-inject" on:click=inject disabled=move || status.get() == Status::Stopped>"Inject drift now"</button>
            </div>
            <p data-testid="sim-status" class="status">{move || match status.get() {
                Status::Running => "running",
                Status::Paused => "paused",
                Status::Stopped => "stopped",
            }}</p>
        </section>
    }
}
