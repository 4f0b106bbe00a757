//! Models: run the standard backtest on the current log in the training
//! worker, read the table, see MAE by prefix length, download the report.

use super::browser::download;
use super::chart::{Bar, BarChart, BLUE, VERMILLION};
use super::live::Live;
use super::trainer::Trainer;
use super::Log;
use crate::log::NewEvent;
use crate::ml::backtest::{default_specs, Report};
use crate::ml::feedback_loop::{entry_event, log_time, training_cases};
use crate::ml::models::{Algorithm, Model, Spec};
use crate::ml::protocol::{FromWorker, ToWorker};
use crate::ml::registry::ModelTrained;
use crate::projection::feedback::MarkerKind;
use crate::projection::training_set::Finished;
use crate::store::idb::IdbStore;
use crate::store::{EventStore, ExpectedVersion};
use leptos::prelude::*;
use leptos::task::spawn_local;
use std::rc::Rc;

/// Every closed case the projections hold, in log order (the order they opened).
fn closed_cases(live: Live) -> Vec<Finished> {
    live.with_view(|set| training_cases(set, 0))
}

fn algorithm_of(name: &str) -> Spec {
    match name {
        "knn" => Spec::new(Algorithm::Knn),
        "ridge" => Spec::new(Algorithm::Ridge),
        "linear" => Spec::new(Algorithm::Linear),
        _ => Spec::new(Algorithm::RandomForest),
    }
}

/// Train `spec` in the worker on closed `cases`; record it in the log (a
/// `ModelTrained` event, trained up to `seq`) and the registry; check that
/// the stored bytes predict what the worker did. Returns the record and a
/// line for the page.
pub async fn train_and_register(
    log: Log,
    trainer: &Trainer,
    spec: Spec,
    cases: Vec<Finished>,
    (trained_to_seq, at): (u64, i64),
    progress: impl Fn(String) + 'static,
) -> Result<(ModelTrained, String), String> {
    let store: Rc<IdbStore> = log.get().ok_or("the log is not open")?;
    if cases.len() < 10 {
        return Err(format!(
            "only {} closed cases: at least 10 are needed to train",
            cases.len()
        ));
    }
    let answer = trainer
        .request(
            move |id| ToWorker::TrainCases {
                id,
                spec,
                cases,
                holdout: 0.2,
            },
            progress,
        )
        .await?;
    let (mut record, bytes, sample) = match answer {
        FromWorker::TrainedCases {
            record,
            model,
            sample,
            ..
        } => (record, model, sample),
        FromWorker::Failed { message, .. } => return Err(message),
        _ => return Err("the training worker answered something unexpected".into()),
    };
    let existing = store.list_models().await.map_err(|e| e.to_string())?;
    record.id = format!("model-{}", existing.len() + 1);
    record.trained_to_seq = trained_to_seq;
    // Store the bytes first: a model named in the log can always be loaded.
    store
        .save_model(&record, &bytes)
        .await
        .map_err(|e| e.to_string())?;
    // Load what was stored and predict on this thread: it must agree.
    let stored = store
        .model_bytes(&record.id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the model's bytes were not stored")?;
    let model = Model::from_bytes(&stored).map_err(|e| e.to_string())?;
    let rows: Vec<Vec<f64>> = sample.iter().map(|(r, _)| r.clone()).collect();
    let here = model.predict(&rows).map_err(|e| e.to_string())?;
    let same = here.iter().zip(&sample).all(|(a, (_, b))| a == b);
    if !same {
        return Err(format!(
            "{}: the stored model predicts differently from the worker",
            record.id
        ));
    }
    let event = NewEvent::new(
        format!("{}-trained", record.id),
        ModelTrained::TYPE,
        ModelTrained::SCHEMA,
        at,
        &record,
    );
    let committed = store
        .append(&record.id, ExpectedVersion::NoStream, vec![event])
        .await
        .map_err(|e| e.to_string())?;
    log.head.update(|h| *h = (*h).max(committed.last_seq));
    let message = format!(
        "{} trained on {} cases: holdout MAE {:.2} days vs median {:.2}; the stored bytes predict the same as the worker on {} holdout rows",
        record.id,
        record.train_cases + record.holdout_cases,
        record.holdout_mae_days,
        record.baseline_mae_days,
        rows.len()
    );
    Ok((*record, message))
}

/// The model registry: train, list, retrain.
#[component]
pub fn RegistryPanel() -> impl IntoView {
    let log = expect_context::<Log>();
    let live = expect_context::<Live>();
    let trainer: StoredValue<Trainer, LocalStorage> = expect_context();
    let models = RwSignal::new(Vec::<(String, Result<ModelTrained, String>)>::new());
    let algorithm = RwSignal::new("forest".to_string());
    let status = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let refresh = move || {
        let Some(store) = log.get() else { return };
        spawn_local(async move {
            match store.list_models().await {
                Ok(list) => models.set(list),
                Err(e) => status.set(e.to_string()),
            }
        });
    };
    // List the stored models once, then again only when a model event
    // (challenger, promotion, retirement) arrives — not on every commit.
    let newest_model_event = Memo::new(move |_| {
        live.with_view(|s| {
            s.feedback
                .state
                .markers
                .iter()
                .rev()
                .find(|m| {
                    matches!(
                        m.kind,
                        MarkerKind::Challenger | MarkerKind::Promoted | MarkerKind::Retired
                    )
                })
                .map(|m| m.seq)
        })
    });
    Effect::new(move |_| {
        newest_model_event.track();
        refresh();
    });
    let train = move |spec: Spec| {
        busy.set(true);
        let trainer = trainer.get_value();
        let cases = closed_cases(live);
        let position = live.with_view(|s| (s.seq(), log_time(s)));
        spawn_local(async move {
            let result =
                train_and_register(log, &trainer, spec, cases, position, move |m| status.set(m))
                    .await;
            busy.set(false);
            match result {
                Ok((record, message)) => {
                    status.set(message);
                    // Champion if there is none, else a challenger.
                    let entry = live.with_view(|s| entry_event(s, &record, "manual"));
                    if let Some(store) = log.get() {
                        match store.append_batch(vec![entry]).await {
                            Ok(c) => log.head.update(|h| *h = (*h).max(c.last_seq)),
                            Err(e) => log.fail(e),
                        }
                    }
                }
                Err(e) if e == "cancelled" => status.set("training cancelled".into()),
                Err(e) => status.set(e),
            }
            refresh();
        });
    };
    let rows = move || {
        models
            .get()
            .into_iter()
            .map(|(id, record)| match record {
                Ok(r) if r.compatible() => view! {
                    <tr data-testid="model-row">
                        <td>{id}</td><td>{r.algorithm.clone()}</td><td class="num">{r.trained_to_seq}</td>
                        <td class="num">{r.rows}</td><td class="num">{format!("{:.2}", r.holdout_mae_days)}</td>
                        <td class="num">{format!("{:.2}", r.baseline_mae_days)}</td><td class="num">{format!("{:.0} KB", r.size_bytes as f64 / 1000.0)}</td>
                        <td><code>{r.rows_hash.clone()}</code></td><td>"ready"</td>
                    </tr>
                }.into_any(),
                Ok(r) => {
                    let spec = r.spec.clone();
                    view! {
                        <tr data-testid="model-row">
                            <td>{id}</td><td>{r.algorithm.clone()}</td><td colspan="6">"saved in an older model format; this version cannot load it"</td>
                            <td><button on:click=move |_| train(spec.clone())>"Retrain from the log"</button></td>
                        </tr>
                    }.into_any()
                }
                Err(why) => view! {
                    <tr data-testid="model-row">
                        <td>{id}</td><td colspan="7">{why}</td>
                        <td><button on:click=move |_| train(Spec::new(Algorithm::RandomForest))>"Retrain from the log"</button></td>
                    </tr>
                }.into_any(),
            })
            .collect::<Vec<_>>()
    };
    view! {
        <section class="card wide" aria-labelledby="registry-heading">
            <h2 id="registry-heading">"Models: registry"</h2>
            <div class="form-row">
                <label>"Algorithm "
                    <select data-testid="train-algorithm" on:change=move |ev| algorithm.set(event_target_value(&ev))>
                        <option value="forest">"random forest (log target)"</option>
                        <option value="knn">"k nearest neighbours (log target)"</option>
                        <option value="ridge">"ridge regression (log target)"</option>
                        <option value="linear">"linear regression (log target)"</option>
                    </select>
                </label>
                <button data-testid="train-run" disabled=move || busy.get() on:click=move |_| train(algorithm_of(&algorithm.get_untracked()))>"Train on the current log"</button>
                <button data-testid="train-cancel" disabled=move || !busy.get() on:click=move |_| trainer.get_value().cancel()>"Cancel"</button>
            </div>
            <p data-testid="train-status" aria-live="polite">{move || status.get()}</p>
            <div class="scroll" tabindex="0">
                <table>
                    <thead><tr><th scope="col">"id"</th><th scope="col">"algorithm"</th><th scope="col">"trained to seq"</th><th scope="col">"rows"</th>
                        <th scope="col">"holdout MAE (d)"</th><th scope="col">"median MAE (d)"</th><th scope="col">"size"</th><th scope="col">"rows hash"</th><th scope="col">"status"</th></tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        </section>
    }
}

/// The backtest panel.
#[component]
pub fn ModelsPanel() -> impl IntoView {
    let live = expect_context::<Live>();
    let trainer: StoredValue<Trainer, LocalStorage> = expect_context();
    let report = RwSignal::new(None::<Report>);
    let progress = RwSignal::new(String::new());
    let running = RwSignal::new(false);

    let run = move |_| {
        let cases = closed_cases(live);
        running.set(true);
        progress.set(format!(
            "sending {} closed cases to the training worker…",
            cases.len()
        ));
        let trainer = trainer.get_value();
        spawn_local(async move {
            let answer = trainer
                .request(
                    move |id| ToWorker::Backtest {
                        id,
                        cases,
                        specs: default_specs(),
                    },
                    move |m| progress.set(m),
                )
                .await;
            running.set(false);
            match answer {
                Ok(FromWorker::BacktestDone { report: r, .. }) => {
                    progress.set(format!(
                        "done: {} cases ({} train, {} test), {} prefixes evaluated",
                        r.cases, r.train_cases, r.test_cases, r.prefixes
                    ));
                    report.set(Some(*r));
                }
                Ok(FromWorker::Failed { message, .. }) => progress.set(message),
                Ok(_) => progress.set("the training worker answered something unexpected".into()),
                Err(e) if e == "cancelled" => progress.set("backtest cancelled".into()),
                Err(e) => progress.set(e),
            }
        });
    };
    let cancel = move |_| trainer.get_value().cancel();
    let save = move |_| {
        if let Some(r) = report.get_untracked() {
            if let Err(e) = download(
                "retrace-backtest.json",
                "application/json",
                &serde_json::to_string_pretty(&r).unwrap_or_default(),
            ) {
                progress.set(e);
            }
        }
    };

    let rows = move || {
        report.get().map(|r| {
            r.models
                .iter()
                .map(|m| {
                    let skill = if r.baseline_mae_days > 0.0 {
                        (1.0 - m.mae_days / r.baseline_mae_days) * 100.0
                    } else {
                        0.0
                    };
                    view! {
                        <tr>
                            <td>{m.name.clone()}</td>
                            <td class="num">{format!("{:.2}", m.mae_days)}</td>
                            <td class="num">{format!("{skill:+.1} %")}</td>
                            <td class="num">{m.train_rows}</td>
                            <td class="num">{format!("{:.2}", m.train_seconds)}</td>
                        </tr>
                    }
                })
                .collect::<Vec<_>>()
        })
    };
    let chart = move || {
        report.get().and_then(|r| {
            let best = r.best()?.clone();
            let baseline = r.models.iter().find(|m| m.name == "median baseline")?.clone();
            let bars: Vec<Bar> = best
                .by_prefix_len
                .iter()
                .map(|(len, mae, _)| {
                    let base = baseline.by_prefix_len.iter().find(|(l, _, _)| l == len).map_or(0.0, |b| b.1);
                    Bar { label: len.to_string(), values: vec![*mae, base] }
                })
                .collect();
            Some(view! {
                <BarChart title=format!("MAE by prefix length (days): {} vs the median", best.name) unit="days".to_string()
                    series=vec![(best.name.clone(), BLUE), ("median baseline".to_string(), VERMILLION)] bars=bars testid="backtest-chart" />
            })
        })
    };

    view! {
        <section class="card wide" aria-labelledby="models-heading">
            <h2 id="models-heading">"Models: backtest"</h2>
            <p class="hint">"The standard protocol on the closed cases of the current log: cases in log order, the first two thirds train, the last third test; every test prefix of length 2 … n−1; mean absolute error of the remaining time, in days. Training runs in a Web Worker."</p>
            <div class="actions">
                <button data-testid="backtest-run" on:click=run disabled=move || running.get()>"Run backtest"</button>
                <button data-testid="backtest-cancel" on:click=cancel disabled=move || !running.get()>"Cancel"</button>
                <button data-testid="backtest-download" on:click=save disabled=move || report.get().is_none()>"Download report (JSON)"</button>
            </div>
            <p data-testid="backtest-progress" aria-live="polite">{move || progress.get()}</p>
            <Show when=move || report.get().is_some()>
                <div class="scroll" tabindex="0">
                    <table data-testid="backtest-table">
                        <thead><tr><th scope="col">"model"</th><th scope="col">"MAE (days)"</th><th scope="col">"skill vs median"</th><th scope="col">"training rows"</th><th scope="col">"training (s)"</th></tr></thead>
                        <tbody>{rows}</tbody>
                    </table>
                </div>
                {chart}
            </Show>
        </section>
    }
}
