//! Time travel: a slider over the log moves every panel to a past position.

use super::live::Live;
use leptos::prelude::*;

/// The slider, the live button and the boot line.
#[component]
pub fn TimeTravel() -> impl IntoView {
    let live = expect_context::<Live>();
    let entered_at = RwSignal::new(0u64);
    let on_input = move |ev| {
        let Ok(v) = event_target_value(&ev).parse::<u64>() else {
            return;
        };
        let head = live.seq.get_untracked();
        if v >= head {
            live.travel(None);
        } else {
            if live.past.get_untracked().is_none() {
                entered_at.set(head);
            }
            live.travel(Some(v));
        }
    };
    view! {
        <section class="card wide" aria-labelledby="travel-heading">
            <h2 id="travel-heading">"Time travel"</h2>
            <div class="form-row">
                <label class="grow">"Position in the log "
                    <input type="range" min="0" data-testid="travel-slider"
                        prop:max=move || live.seq.get().to_string()
                        prop:value=move || live.past.get().unwrap_or_else(|| live.seq.get()).to_string()
                        on:input=on_input />
                </label>
                <button data-testid="travel-live" on:click=move |_| live.travel(None) disabled=move || live.past.get().is_none()>"Live"</button>
            </div>
            <p data-testid="travel-position" aria-live="polite">{move || match live.past.get() {
                None => format!("live at seq {}", live.seq.get()),
                Some(at) => format!("viewing seq {at} of {} · {} new events since you went back", live.seq.get(), live.seq.get().saturating_sub(entered_at.get())),
            }}</p>
            <div class="form-row">
                <label>"Snapshot every "
                    <input type="number" min="100" step="100" data-testid="snapshot-every"
                        prop:value=move || live.snapshot_every.get().to_string()
                        on:input=move |ev| { if let Ok(v) = event_target_value(&ev).parse::<u64>() { live.snapshot_every.set(v.max(100)) } } />
                    " events"
                </label>
                <button data-testid="snapshot-now" on:click=move |_| live.snapshot_now()>"Snapshot now"</button>
            </div>
            <p class="hint" data-testid="boot-line">{move || live.boot.get().unwrap_or_else(|| "booting…".into())}</p>
            <Show when=move || !live.notes.get().is_empty()>
                <ul class="notes" data-testid="snapshot-notes">
                    {move || live.notes.get().into_iter().map(|n| view! { <li>{n}</li> }).collect::<Vec<_>>()}
                </ul>
            </Show>
        </section>
    }
}
