//! The live feedback loop on the page: the demo button, the loop's switch
//! and policy, champion and challenger, the rolling error over domain time
//! with what happened marked on it, predicted against actual, and how one
//! case's prediction evolved.

use super::chart::{
    Line, LineChart, Mark, GREEN, GREY, LINE_COLOURS, ORANGE, PURPLE, SKY, VERMILLION,
};
use super::format;
use super::live::Live;
use super::sim::Sim;
use super::Log;
use crate::domain::calendar::{DAY, HOUR};
use crate::ml::feedback_loop::Policy;
use crate::projection::feedback::{MarkerKind, ROLLING, WINDOW_DAYS};
use leptos::prelude::*;

fn marker_style(kind: MarkerKind) -> (&'static str, bool) {
    match kind {
        MarkerKind::ProcessChanged => (GREY, true),
        MarkerKind::Drift => (VERMILLION, false),
        MarkerKind::Challenger => (SKY, true),
        MarkerKind::Promoted => (GREEN, false),
        MarkerKind::Retired => (PURPLE, true),
    }
}

fn day_label(x: f64) -> String {
    format::date(x as i64)
}

fn opt(v: Option<f64>) -> String {
    v.map_or("—".to_string(), |v| format!("{v:.2}"))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn number_input(
    label: &'static str,
    testid: &'static str,
    get: impl Fn(&Policy) -> f64 + Send + Sync + Copy + 'static,
    set: impl Fn(&mut Policy, f64) + Send + Sync + Copy + 'static,
) -> impl IntoView {
    let live = expect_context::<Live>();
    view! {
        <label>{label}" "
            <input type="number" min="0" data-testid=testid
                prop:value=move || live.policy.with(|p| get(p)).to_string()
                on:change=move |ev| {
                    if let Ok(v) = event_target_value(&ev).parse::<f64>() {
                        live.policy.update(|p| set(p, v.max(0.0)));
                    }
                } />
        </label>
    }
}

/// The feedback loop panel.
#[component]
pub fn FeedbackPanel() -> impl IntoView {
    let log = expect_context::<Log>();
    let live = expect_context::<Live>();
    let sim = expect_context::<Sim>();
    let demo = expect_context::<super::demo::Demo>();
    // On a shared log: where this browser stands on the loop's lease.
    let standing = expect_context::<super::shared::Shared>().standing;

    let roles = move || {
        live.views.with(|v| {
            let f = &v.feedback;
            (f.champion.clone(), f.challenger.clone(), f.duel)
        })
    };
    let champion_line = move || {
        match roles().0 {
        Some(c) => format!("champion: {c}"),
        None => "no champion yet: the loop trains one once enough cases have closed (or train one under Models)".into(),
    }
    };
    let challenger_line = move || {
        let k = live.policy.with(|p| p.duel_cases);
        let closed = live.views.with(|v| v.feedback.duel_closed);
        match roles() {
            (_, Some(c), Some((a, b, n))) => format!(
                "challenger: {c}, judged once {k} cases opened since it started have closed ({} so far) — {n} shared predictions, MAE {b:.2} d vs the champion's {a:.2} d",
                closed.min(k)
            ),
            (_, Some(c), None) => format!("challenger: {c}, predicting in shadow, waiting for outcomes"),
            _ => "no challenger".into(),
        }
    };
    let latency = move || {
        let mut l: Vec<f64> = live.latencies.get().into_iter().collect();
        if l.is_empty() {
            return String::new();
        }
        l.sort_by(|a, b| a.total_cmp(b));
        format!(
            "prediction latency (event committed → prediction committed), last {} commits: p50 {:.0} ms, p99 {:.0} ms",
            l.len(),
            percentile(&l, 0.5),
            percentile(&l, 0.99)
        )
    };

    // The story since the newest process change, in one line.
    let since_change = move || {
        live.views.with(|v| {
            let s = v.feedback.since_change.as_ref()?;
            Some(view! {
                "Since the process changed on " {format::date(s.at)} ": served rolling MAE peaked at "
                <span data-testid="since-peak">{format!("{:.2}", s.peak)}</span> " d, now "
                <span data-testid="since-now">{format!("{:.2}", s.now)}</span> " d; "
                {format!("{} model(s) promoted since.", s.promoted)}
            })
        })
    };

    let rows = move || {
        live.views.with(|v| {
            v.feedback
                .rows
                .iter()
                .map(|m| {
                    // A retired model's recent error describes a time it no longer predicts in.
                    let recent = |v: Option<f64>| if m.retired() { "retired".to_string() } else { opt(v) };
                    let skill = m.skill.map_or("—".to_string(), |s| format!("{:+.1} %", s * 100.0));
                    let waiting = match m.waiting {
                        (0, _) => "0".to_string(),
                        (n, Some(mean)) => format!("{n} (mean {mean:.1} d)"),
                        (n, None) => n.to_string(),
                    };
                    view! {
                        <tr data-testid="feedback-row" data-coverage=m.coverage.map(|c| c.to_string()) data-width-max=m.width_max.map(|w| w.to_string()) data-skill=m.skill.map(|s| s.to_string())>
                            <td>{m.id.clone()}</td><td>{m.role.clone()}{m.why.as_ref().map(|w| format!(": {w}"))}</td><td class="num" data-testid="feedback-outcomes">{m.outcomes}</td>
                            <td class="num">{opt(m.mae)}</td><td class="num">{recent(m.rolling)}</td><td class="num">{recent(m.window)}</td>
                            <td class="num">{opt(m.baseline)}</td><td class="num">{skill}</td><td class="num">{opt(m.bias)}</td>
                            <td class="num">{waiting}</td><td class="num">{opt(m.delay)}</td>
                            <td class="num" data-testid="feedback-drifts">{m.alarms}</td>
                            <td class="num" data-testid="feedback-coverage">{m.coverage.map_or("—".to_string(), |c| format!("{:.0} %", c * 100.0))}</td>
                            <td class="num" title=if m.scale_at_bound { "the interval's width factor is at its bound: it no longer adapts" } else { "" }>{opt(m.width)}{if m.scale_at_bound { " (at its bound)" } else { "" }}</td>
                        </tr>
                    }
                })
                .collect::<Vec<_>>()
        })
    };

    // The served intervals by stage of the case: coverage beside width.
    let stages = move || {
        live.views.with(|v| {
            let shown: Vec<_> = v
                .feedback
                .stages
                .iter()
                .filter(|(_, n, _, _)| *n > 0)
                .map(|(stage, n, coverage, width)| {
                    view! {
                        <span data-testid="loop-stage" data-stage=stage.clone() data-outcomes=n.to_string()
                            data-coverage=coverage.map(|c| c.to_string()) data-width=width.map(|w| w.to_string())>
                            {format!(
                                " {stage} done: {} inside, {} d wide ({n} outcomes);",
                                coverage.map_or("—".to_string(), |c| format!("{:.0} %", c * 100.0)),
                                opt(*width)
                            )}
                        </span>
                    }
                })
                .collect();
            (!shown.is_empty()).then(|| view! { "The served 80 % intervals, by activities done:" {shown} })
        })
    };

    let error_chart = move || {
        live.views.with(|v| {
            let f = &v.feedback;
            if f.served.is_empty() {
                return None;
            }
            let mut lines = vec![Line {
                name: "served (champion at the time)".into(),
                colour: LINE_COLOURS[0],
                points: f.served.iter().map(|(t, m)| (*t as f64, *m)).collect(),
                dots: false,
            }];
            if let Some((c, series)) = &f.challenger_series {
                lines.push(Line {
                    name: format!("{c} (challenger, shadow)"),
                    colour: ORANGE,
                    points: series.iter().map(|(t, m)| (*t as f64, *m)).collect(),
                    dots: false,
                });
            }
            let marks = f
                .markers
                .iter()
                .map(|m| {
                    let (colour, dashed) = marker_style(m.kind);
                    Mark { x: m.at as f64, colour, dashed, text: m.text.clone() }
                })
                .collect();
            let legend = [MarkerKind::ProcessChanged, MarkerKind::Drift, MarkerKind::Challenger, MarkerKind::Promoted, MarkerKind::Retired]
                .into_iter()
                .filter(|k| f.markers.iter().any(|m| m.kind == *k))
                .map(|k| {
                    let (c, d) = marker_style(k);
                    (c, d, k.label())
                })
                .collect();
            Some(view! {
                <LineChart title=format!("Rolling MAE (last {ROLLING} outcomes) over domain time") y_unit="days".to_string()
                    lines=lines marks=marks mark_legend=legend x_label=day_label wide=true testid="feedback-chart" />
            })
        })
    };

    let scatter = move || {
        live.views.with(|v| {
            let recent = &v.feedback.recent;
            if recent.is_empty() {
                return None;
            }
            let all: Vec<(f64, f64)> = recent.clone();
            // A few very long cases would squeeze the rest into a corner:
            // the axes end at the 95th percentile, and the caption says so.
            let mut sizes: Vec<f64> = all.iter().map(|(a, p)| a.max(*p)).collect();
            sizes.sort_by(f64::total_cmp);
            let limit = percentile(&sizes, 0.95).max(f64::MIN_POSITIVE);
            let points: Vec<(f64, f64)> = all.iter().copied().filter(|(a, p)| a.max(*p) <= limit).collect();
            let beyond = all.len() - points.len();
            let title = if beyond == 0 {
                format!("Predicted vs actual remaining time, last {} outcomes (days)", recent.len())
            } else {
                format!(
                    "Predicted vs actual remaining time, last {} outcomes (days; axes end at {limit:.1} d, {beyond} longer not shown)",
                    recent.len()
                )
            };
            Some(view! {
                <LineChart title=title y_unit="predicted (d)".to_string()
                    lines=vec![Line { name: "served prediction".into(), colour: LINE_COLOURS[0], points, dots: true }]
                    x_label=|x| format!("{x:.0} d actual") diagonal=true testid="scatter-chart" />
            })
        })
    };

    let chosen = RwSignal::new(None::<String>);
    let case_options = move || {
        live.views.with(|v| {
            v.feedback
                .traces
                .iter()
                .map(|t| {
                    let label = format!("{} ({} predictions)", t.case, t.points.len());
                    view! { <option value=t.case.clone()>{label}</option> }
                })
                .collect::<Vec<_>>()
        })
    };
    // The chosen case, or the newest of the recent ones with the most predictions.
    let shown_case = move || {
        chosen.get().or_else(|| {
            live.views.with(|v| {
                v.feedback
                    .traces
                    .iter()
                    .take(10)
                    .min_by_key(|t| std::cmp::Reverse(t.points.len()))
                    .map(|t| t.case.clone())
            })
        })
    };
    let case_chart = move || {
        let wanted = shown_case()?;
        live.views.with(|v| {
            let trace = v.feedback.traces.iter().find(|t| t.case == wanted)?;
            let opened = trace.points.first()?.made_at;
            let x = |t: i64| (t - opened) as f64 / HOUR as f64;
            let truth = vec![(0.0, (trace.closed_at - opened) as f64 / DAY as f64), (x(trace.closed_at), 0.0)];
            let mut models: Vec<&str> = trace.points.iter().map(|p| p.model.as_str()).collect();
            models.dedup();
            models.sort();
            models.dedup();
            let mut lines = vec![Line { name: "actual remaining".into(), colour: GREY, points: truth, dots: false }];
            for (i, m) in models.iter().enumerate() {
                lines.push(Line {
                    name: m.to_string(),
                    colour: LINE_COLOURS[(i + 1) % LINE_COLOURS.len()],
                    points: trace
                        .points
                        .iter()
                        .filter(|p| p.model == *m)
                        .map(|p| (x(p.made_at), p.predicted_h / 24.0))
                        .collect(),
                    dots: true,
                });
            }
            Some(view! {
                <LineChart title=format!("Case {}: predicted remaining time at each event", trace.case) y_unit="days".to_string()
                    lines=lines x_label=|x| format!("{x:.0} h after opening") testid="case-trace-chart" />
            })
        })
    };

    view! {
        <section class="card wide" aria-labelledby="feedback-heading">
            <h2 id="feedback-heading">"Feedback loop"</h2>
            <p class="hint">"Every new event of an open case makes the champion predict its remaining time — and a challenger, in shadow. Predictions are written to the log before the outcome is known and scored when the case closes, beside the median baseline's prediction for the same moment. When the error drifts, a challenger is trained on the new cases; it replaces the champion if it is better on the same outcomes."</p>
            <div class="actions">
                <button data-testid="demo-start" on:click=|_| super::demo::start_fresh()>
                    {if demo.shown { "Start the demo over" } else { "Start the demo" }}
                </button>
                <span class="hint">{if demo.shown {
                    "The demo runs in a log of its own: a simulated service desk where, after 400 cases, repairs start waiting about a week for parts."
                } else {
                    "In a log of its own (yours stays as it is): a simulated service desk; after 400 cases repairs start waiting about a week for parts. Watch the error rise, the detector fire, a challenger train and take over."
                }}</span>
            </div>
            <Show when=move || demo.note.get().is_some()>
                <p data-testid="demo-note" role="status">{move || demo.note.get().unwrap_or_default()}</p>
                <div class="actions">
                    <button data-testid="demo-run-on" on:click=move |_| demo.run_on(log, live, sim)>"Run on"</button>
                    <button data-testid="demo-leave" on:click=|_| super::demo::leave()>"Back to your log"</button>
                </div>
            </Show>
            <label><input type="checkbox" data-testid="predict-toggle" prop:checked=move || live.predicting.get()
                on:change=move |ev| live.predicting.set(event_target_checked(&ev)) />
                " run the loop in this tab (predict, score, detect drift, retrain, promote)"
            </label>
            <details>
                <summary>"Policy"</summary>
                <div class="form-row">
                    <label><input type="checkbox" data-testid="policy-drift" prop:checked=move || live.policy.with(|p| p.retrain_on_drift)
                        on:change=move |ev| live.policy.update(|p| p.retrain_on_drift = event_target_checked(&ev)) />" retrain on drift"</label>
                    {number_input("first model after (closed cases)", "policy-first", |p| p.first_after as f64, |p, v| p.first_after = v as u64)}
                    {number_input("retrain every (closed cases, 0 off)", "policy-every", |p| p.retrain_every as f64, |p, v| p.retrain_every = v as u64)}
                    {number_input("train on the newest (cases; 0: all kept)", "policy-window", |p| p.window as f64, |p, v| p.window = v as usize)}
                    {number_input("keep the newest (closed cases, for training and the backtest; default 5,000)", "policy-keep", |p| p.keep as f64, |p, v| p.keep = (v as usize).max(1))}
                    {number_input("after drift, wait for (new cases)", "policy-new", |p| p.min_new_cases as f64, |p, v| p.min_new_cases = v as u64)}
                    {number_input("judge a challenger on (cases opened after it)", "policy-k", |p| p.duel_cases as f64, |p, v| p.duel_cases = (v as usize).max(1))}
                    {number_input("promote if better by (%)", "policy-margin", |p| p.margin * 100.0, |p, v| p.margin = v / 100.0)}
                    {number_input("keep the bytes of the newest (retired models)", "policy-keep-retired", |p| p.keep_retired as f64, |p, v| p.keep_retired = v as usize)}
                </div>
            </details>
            <p data-testid="loop-champion">{champion_line}</p>
            <p data-testid="loop-challenger">{challenger_line}</p>
            <p data-testid="loop-status" aria-live="polite" data-busy=move || live.training_busy.get().to_string() data-engine-seq=move || live.engine_seq.get().to_string() data-standing=move || standing.get().name()>{move || live.training.get().unwrap_or_default()}</p>
            <div class="actions">
                <button data-testid="loop-train" disabled=move || !live.steers() || roles().0.is_none() || roles().1.is_some()
                    on:click=move |_| live.train("manual", live.policy.with_untracked(|p| p.window))>"Train a challenger now"</button>
                <button data-testid="loop-promote" disabled=move || !live.steers() || roles().1.is_none()
                    on:click=move |_| live.promote_now()>"Promote the challenger now"</button>
            </div>
            <p class="hint" data-testid="latency">{latency}</p>
            <div class="scroll" tabindex="0">
                <table>
                    <caption class="hint">"Errors in days. MAE: all outcomes; then over the last "{ROLLING}" outcomes and the last "{WINDOW_DAYS}" days of domain time; median: the baseline on the same predictions."</caption>
                    <thead><tr><th scope="col">"model"</th><th scope="col">"role"</th><th scope="col">"outcomes"</th><th scope="col">"MAE"</th>
                        <th scope="col" title="MAE over the last outcomes">{format!("last {ROLLING}")}</th><th scope="col" title="MAE over the last days of domain time">{format!("last {WINDOW_DAYS:.0} d")}</th>
                        <th scope="col">"median"</th><th scope="col">"skill"</th><th scope="col" title="mean of predicted − actual">"bias"</th><th scope="col" title="predictions waiting for their outcome">"waiting"</th><th scope="col" title="mean time until the outcome arrived">"delay"</th><th scope="col" title="DriftDetected events">"alarms"</th><th scope="col" title="share of outcomes inside their 80 % interval">"in 80 %"</th><th scope="col" title="mean width of the 80 % interval, days">"width"</th></tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
            <p class="hint" data-testid="loop-stages">{stages}</p>
            <p data-testid="since-change">{since_change}</p>
            <div class="charts">
                {error_chart}
                {scatter}
                <Show when=move || live.views.with(|v| !v.feedback.traces.is_empty())>
                    <div>
                        <label>"Case "
                            <select data-testid="case-select" prop:value=move || shown_case().unwrap_or_default() on:change=move |ev| chosen.set(Some(event_target_value(&ev)))>
                                {case_options}
                            </select>
                        </label>
                        {case_chart}
                    </div>
                </Show>
            </div>
        </section>
    }
}
