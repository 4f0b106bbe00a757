//! Work in progress per resource: now, and each resource's daily peak.

use super::chart::{Bar, BarChart, BLUE};
use super::live::Live;
use leptos::prelude::*;

/// Workload per resource.
#[component]
pub fn WorkloadPanel() -> impl IntoView {
    let live = expect_context::<Live>();
    let bars = move || {
        live.views.with(|v| {
            v.workload
                .iter()
                .map(|(r, n)| Bar {
                    label: r.to_string(),
                    values: vec![*n as f64],
                })
                .collect::<Vec<_>>()
        })
    };
    view! {
        <section class="card" aria-labelledby="workload-heading">
            <h2 id="workload-heading">"Workload"</h2>
            {move || view! {
                <BarChart title="Open cases held by each person now".to_string() unit="cases".to_string()
                    series=vec![("open cases".to_string(), BLUE)] bars=bars() testid="workload-chart" />
            }}
        </section>
    }
}
