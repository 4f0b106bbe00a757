//! Log statistics: counts, cases per day, how long cases take, changes.

use super::chart::{Bar, BarChart, BLUE, VERMILLION};
use super::format;
use super::live::Live;
use crate::projection::stats::DURATION_BUCKETS_H;
use leptos::prelude::*;

fn bucket_label(i: usize) -> String {
    match DURATION_BUCKETS_H.get(i) {
        Some(h) if *h < 48.0 => format!("≤{h:.0}h"),
        Some(h) => format!("≤{:.0}d", h / 24.0),
        None => "more".into(),
    }
}

/// The statistics panel.
#[component]
pub fn StatsPanel() -> impl IntoView {
    let live = expect_context::<Live>();
    let summary = move || {
        live.views.with(|v| {
            let s = &v.stats;
            let types = s
                .types
                .iter()
                .map(|(t, n)| format!("{t}: {n}"))
                .collect::<Vec<_>>()
                .join(" · ");
            let mean = s
                .mean_hours
                .map_or("—".into(), |h| format::duration((h * 3_600_000.0) as i64));
            (s.events, s.closed, mean, types)
        })
    };
    let per_day = move || {
        live.views.with(|v| {
            v.stats
                .per_day
                .iter()
                .map(|(d, o, c)| Bar {
                    label: format::date(*d)[5..].to_string(),
                    values: vec![*o as f64, *c as f64],
                })
                .collect::<Vec<_>>()
        })
    };
    let durations = move || {
        live.views.with(|v| {
            v.stats
                .durations
                .iter()
                .enumerate()
                .map(|(i, n)| Bar {
                    label: bucket_label(i),
                    values: vec![*n as f64],
                })
                .collect::<Vec<_>>()
        })
    };
    let changes = move || {
        live.views.with(|v| {
            v.stats
                .changes
                .iter()
                .map(|c| {
                    format!(
                        "seq {} · {} · {}",
                        c.seq,
                        format::datetime(c.at),
                        c.description
                    )
                })
                .collect::<Vec<_>>()
        })
    };
    view! {
        <section class="card wide" aria-labelledby="stats-heading">
            <h2 id="stats-heading">"Log statistics"</h2>
            <dl class="facts">
                <dt>"Events"</dt><dd data-testid="stats-events">{move || summary().0}</dd>
                <dt>"Cases closed"</dt><dd data-testid="stats-closed">{move || summary().1}</dd>
                <dt>"Mean case duration"</dt><dd>{move || summary().2}</dd>
                <dt>"By type"</dt><dd data-testid="stats-by-type">{move || summary().3}</dd>
            </dl>
            <div class="charts">
                {move || view! {
                    <BarChart title="Cases per day (last 30 days)".to_string() unit="cases".to_string()
                        series=vec![("opened".to_string(), BLUE), ("closed".to_string(), VERMILLION)] bars=per_day() testid="per-day-chart" />
                }}
                {move || view! {
                    <BarChart title="How long cases take".to_string() unit="cases".to_string()
                        series=vec![("closed cases".to_string(), BLUE)] bars=durations() testid="duration-chart" />
                }}
            </div>
            <h3>"Process changes"</h3>
            <ul data-testid="changes">
                {move || changes().into_iter().map(|c| view! { <li>{c}</li> }).collect::<Vec<_>>()}
            </ul>
        </section>
    }
}
