//! The backtest: run the standard protocol on the current log in the
//! training worker, read the table, see MAE by prefix length, download the
//! report.

use super::browser::download;
use super::chart::{Bar, BarChart, BLUE, VERMILLION};
use super::live::Live;
use crate::engine::call::{EngineError, RunBacktest};
use crate::engine::messages::{HostCommand, Reply};
use crate::ml::backtest::Report;
use leptos::prelude::*;
use leptos::task::spawn_local;

/// The backtest panel.
#[component]
pub fn BacktestPanel() -> impl IntoView {
    let live = expect_context::<Live>();
    let report = RwSignal::new(None::<Report>);
    let progress = RwSignal::new(String::new());
    let running = RwSignal::new(false);

    let run = move |_| {
        running.set(true);
        spawn_local(async move {
            progress.set("asking the engine for the closed cases…".into());
            let answer = live
                .call(RunBacktest, |piece| {
                    if let Reply::Progress { message, .. } = piece {
                        progress.set(message)
                    }
                })
                .await;
            running.set(false);
            let closed = live.views.with_untracked(|v| v.stats.closed);
            match answer {
                Ok(r) => {
                    let kept = r.cases;
                    let which = if (kept as u64) < closed {
                        format!(
                            "the newest {kept} of the log's {closed} closed cases (the loop's policy keeps the newest {} for training)",
                            live.policy.with_untracked(|p| p.keep)
                        )
                    } else {
                        format!("all {kept} closed cases")
                    };
                    progress.set(format!(
                        "done on {which}: {} cases ({} train, {} test), {} prefixes evaluated",
                        r.cases, r.train_cases, r.test_cases, r.prefixes
                    ));
                    report.set(Some(r));
                }
                Err(EngineError::Cancelled) => progress.set("backtest cancelled".into()),
                Err(e) => progress.set(e.to_string()),
            }
        });
    };
    let cancel = move |_| live.tell_engine(HostCommand::CancelChecks);
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
                <p data-testid="backtest-selected">{move || report.get().and_then(|r| {
                    let s = r.selected?;
                    Some(format!(
                        "Retrace would serve {}: {:.2} days on the test cases (chosen on folds of the training cases, {:.2} days there on average: {}){}",
                        s.name,
                        s.mae_days,
                        s.validation_mae_days,
                        s.reason,
                        match (r.interval_coverage, r.interval_width_days) {
                            (Some(c), Some(w)) => format!("; its 80 % interval held the truth for {:.0} % of the test prefixes, {w:.1} days wide on average", c * 100.0),
                            _ => String::new(),
                        }
                    ))
                })}</p>
                {chart}
            </Show>
        </section>
    }
}
