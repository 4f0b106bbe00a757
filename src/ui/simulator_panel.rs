//! Simulator controls: seed, rate, start / pause / stop, inject drift.

use super::live::Live;
use super::sim::{Sim, Status};
use super::Log;
use crate::domain::simulator::Drift;
use leptos::prelude::*;

fn drift_choice(name: &str) -> Drift {
    match name {
        "leave" => Drift::ResourceLeaves("Chen".into()),
        "rework" => Drift::ReworkAdded("installation".into()),
        "parts" => Drift::PartsWait("repair".into()),
        _ => Drift::WorkDoubles("repair".into()),
    }
}

/// The simulator's controls.
#[component]
pub fn SimulatorPanel() -> impl IntoView {
    let log = expect_context::<Log>();
    let live = expect_context::<Live>();
    let sim = expect_context::<Sim>();
    let (seed, rate, status) = (sim.seed, sim.rate, sim.status);
    let drift = RwSignal::new("double".to_string());
    let start = move |_| sim.start(log, live, None);
    let pause = move |_| sim.pause();
    let stop = move |_| sim.stop();
    let inject = move |_| sim.inject(drift_choice(&drift.get_untracked()));

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
                        <option value="parts">"repairs wait for parts"</option>
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
