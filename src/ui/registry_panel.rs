//! The model registry: every model the log registered, with its part in
//! the loop now; train one by hand.

use super::live::Live;
use super::Log;
use crate::engine::messages::HostCommand;
use crate::ml::models::{Algorithm, Spec};
use leptos::prelude::*;
use leptos::task::spawn_local;

/// The spec the form asks for; None: choose on validation.
fn algorithm_of(name: &str) -> Option<Spec> {
    match name {
        "boosted" => Some(Spec::new(Algorithm::Boosted)),
        "forest" => Some(Spec::new(Algorithm::RandomForest)),
        "knn" => Some(Spec::new(Algorithm::Knn)),
        "ridge" => Some(Spec::new(Algorithm::Ridge)),
        "linear" => Some(Spec::new(Algorithm::Linear)),
        _ => None,
    }
}

/// The model registry: train, list, retrain.
#[component]
pub fn RegistryPanel() -> impl IntoView {
    let log = expect_context::<Log>();
    let live = expect_context::<Live>();
    // What this browser's registry holds (bytes that can be loaded here),
    // by model id, as the engine read it; the list itself comes from the log.
    let stored = live.stored_models;
    let algorithm = RwSignal::new("choose".to_string());
    let status = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let refresh = move || live.tell_engine(HostCommand::ListModels);
    // The registered models and their roles, as the log says now.
    let registered = Memo::new(move |_| live.views.with(|v| v.registered.clone()));
    // Look at this browser's stored bytes again when a model is registered
    // (and once the store is open).
    Effect::new(move |_| {
        registered.with(|r| r.len());
        log.head.track();
        if stored.with_untracked(|s| s.len()) < registered.with_untracked(|r| r.len()) {
            refresh();
        }
    });
    // Trained, registered and let into the loop (champion if there is
    // none, else a challenger) in the engine's worker.
    let train = move |spec: Option<Spec>| {
        busy.set(true);
        spawn_local(async move {
            let result = live
                .train_by_hand(spec, 0, Some("manual".into()), move |m| status.set(m))
                .await;
            busy.set(false);
            status.set(match result {
                Ok((_, line)) => line,
                Err(e) => e.to_string(),
            });
            refresh();
        });
    };
    let released = Memo::new(move |_| live.views.with(|v| v.released.clone()));
    let rows = move || {
        let here = stored.get();
        let released = released.get();
        registered
            .get()
            .into_iter()
            .map(|(r, role)| {
                let id = r.id.clone();
                let status = match here.get(&id) {
                    _ if released.contains(&id) => view! { <td data-testid="model-released" title="Only the newest retired models keep their bytes (Live: the loop's settings); this one's record and scores stay in the log.">"retired; bytes released"</td> }.into_any(),
                    Some(Ok(s)) if s.compatible() => view! { <td>"ready"</td> }.into_any(),
                    Some(Ok(_)) => {
                        let spec = r.spec.clone();
                        view! { <td>"older model format: "<button on:click=move |_| train(Some(spec.clone()))>"Retrain from the log"</button></td> }.into_any()
                    }
                    Some(Err(why)) => view! { <td>{why.clone()}</td> }.into_any(),
                    None => view! { <td>"bytes not in this browser"</td> }.into_any(),
                };
                view! {
                    <tr data-testid="model-row" data-model=id.clone()>
                        <td>{id.clone()}</td><td>{r.algorithm.clone()}</td><td data-testid="model-role">{role.label()}</td><td class="num">{r.trained_to_seq}</td>
                        <td class="num">{r.train_cases + r.holdout_cases}</td><td class="num">{r.rows}</td><td class="num" title=format!("on its newest {} cases, held out of its training", r.holdout_cases)>{format!("{:.2}", r.holdout_mae_days)}</td>
                        <td class="num">{format!("{:.2}", r.baseline_mae_days)}</td><td class="num">{format!("{:.0} KB", r.size_bytes as f64 / 1000.0)}</td>
                        <td><code>{r.rows_hash.clone()}</code></td>{status}
                    </tr>
                }
            })
            .collect::<Vec<_>>()
    };
    view! {
        <section class="card wide" aria-labelledby="registry-heading">
            <h2 id="registry-heading">"Models: registry"</h2>
            <div class="form-row">
                <label>"Algorithm "
                    <select data-testid="train-algorithm" on:change=move |ev| algorithm.set(event_target_value(&ev))>
                        <option value="choose" selected>"choose for me (validated)"</option>
                        <option value="boosted">"boosted trees (log target)"</option>
                        <option value="forest">"random forest (log target)"</option>
                        <option value="knn">"k nearest neighbours (log target)"</option>
                        <option value="ridge">"ridge regression (log target)"</option>
                        <option value="linear">"linear regression (log target)"</option>
                    </select>
                </label>
                <button data-testid="train-run" disabled=move || busy.get() on:click=move |_| train(algorithm_of(&algorithm.get_untracked()))>"Train on the current log"</button>
                <button data-testid="train-cancel" disabled=move || !busy.get() on:click=move |_| live.cancel_training()>"Cancel"</button>
            </div>
            <p data-testid="train-status" aria-live="polite">{move || status.get()}</p>
            <p class="hint">"Each model's holdout and median MAE are measured on its own newest cases, held out of its training — models trained at different times are measured on different cases. The Live view's loop table scores every model on the same outcomes."</p>
            <div class="scroll" tabindex="0">
                <table>
                    <thead><tr><th scope="col">"id"</th><th scope="col">"algorithm"</th><th scope="col">"role"</th><th scope="col">"trained to seq"</th><th scope="col">"cases"</th><th scope="col">"rows"</th>
                        <th scope="col">"holdout MAE (d)"</th><th scope="col">"median MAE (d)"</th><th scope="col">"size"</th><th scope="col">"rows hash"</th><th scope="col">"status"</th></tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
            {move || {
                // How the newest chosen model was chosen.
                let chosen = registered.get().into_iter().find(|(r, _)| !r.validation.is_empty())?.0;
                let folds = chosen.validation.iter().map(|c| c.folds.len()).max().unwrap_or(0);
                let why = if chosen.choice.is_empty() { "the best on validation".to_string() } else { chosen.choice.clone() };
                Some(view! {
                    <h3>{format!("How {} was chosen", chosen.id)}</h3>
                    <p class="hint">{format!(
                        "Every candidate trained on the older cases and was scored on {} newer block{} of cases ({} cases in the newest); the choice was retrained on all {} cases, and its 80 % intervals are calibrated on its errors on the blocks. Chosen: {}.",
                        folds.max(1), if folds > 1 { "s" } else { "" }, chosen.holdout_cases, chosen.train_cases + chosen.holdout_cases, why
                    )}</p>
                    <div class="scroll" tabindex="0"><table data-testid="validation-table">
                        <thead><tr><th scope="col">"candidate"</th><th scope="col">"validation MAE (d)"</th><th scope="col">"by fold (d)"</th><th scope="col">""</th></tr></thead>
                        <tbody>
                            {chosen.validation.iter().map(|c| view! {
                                <tr><td>{c.name.clone()}</td><td class="num">{format!("{:.2}", c.validation_mae_days)}</td>
                                <td class="num">{c.folds.iter().map(|f| format!("{f:.2}")).collect::<Vec<_>>().join(" / ")}</td>
                                <td>{(c.name == chosen.algorithm).then_some("chosen")}</td></tr>
                            }).collect::<Vec<_>>()}
                        </tbody>
                    </table></div>
                })
            }}
        </section>
    }
}
