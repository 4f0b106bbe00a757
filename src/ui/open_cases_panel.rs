//! Open cases with their progress so far and, when the loop runs, the
//! champion's newest prediction of the time each has left.

use super::format;
use super::live::Live;
use leptos::prelude::*;

/// Rows shown.
const ROWS: usize = 15;

/// The open cases table.
#[component]
pub fn OpenCasesPanel() -> impl IntoView {
    let live = expect_context::<Live>();
    let rows = move || {
        live.with_view(|set| {
            let now = set.stats.state.span.map_or(0, |(_, b)| b);
            let open = &set.open_cases.state;
            let feedback = &set.feedback.state;
            // The newest prediction of the model that was champion when it was made.
            let predicted = |case: &str| {
                feedback
                    .pending
                    .get(case)
                    .and_then(|p| p.iter().rev().find(|w| !w.prediction.shadow))
                    .map(|w| {
                        let hour = crate::domain::calendar::HOUR as f64;
                        let left = |h: f64| {
                            format::duration((h * hour - (now - w.made_at) as f64).max(0.0) as i64)
                        };
                        let p = &w.prediction;
                        match (p.low_h, p.high_h) {
                            (Some(lo), Some(hi)) => {
                                format!("{} ({}–{})", left(p.predicted_h), left(lo), left(hi))
                            }
                            _ => left(p.predicted_h),
                        }
                    })
                    .unwrap_or_else(|| "—".into())
            };
            let mut cases: Vec<_> = open.cases.values().collect();
            cases.sort_by_key(|c| c.opened_at);
            let rows: Vec<_> = cases
                .into_iter()
                .take(ROWS)
                .map(|c| {
                    let last = c
                        .steps
                        .last()
                        .map_or("opened".to_string(), |s| s.activity.to_string());
                    let what = ["category", "priority"]
                        .iter()
                        .filter_map(|k| c.attribute(k).map(|v| v.as_text()))
                        .collect::<Vec<_>>()
                        .join(", ");
                    (
                        c.case.clone(),
                        format::datetime(c.opened_at),
                        format::duration(now - c.opened_at),
                        last,
                        c.steps.len(),
                        what,
                        predicted(&c.case),
                    )
                })
                .collect();
            (open.cases.len(), rows)
        })
    };
    view! {
        <section class="card" aria-labelledby="open-heading">
            <h2 id="open-heading">"Open cases " <span class="count" data-testid="open-count">{move || rows().0}</span></h2>
            <div class="scroll" tabindex="0">
                <table>
                    <thead><tr><th scope="col">"case"</th><th scope="col">"opened"</th><th scope="col">"age"</th><th scope="col">"last step"</th><th scope="col">"steps"</th><th scope="col">"kind"</th><th scope="col">"predicted left (80 % interval)"</th></tr></thead>
                    <tbody>
                        {move || rows().1.into_iter().map(|(case, opened, age, last, steps, what, left)| view! {
                            <tr data-testid="open-row"><td>{case}</td><td>{opened}</td><td class="num">{age}</td><td>{last}</td><td class="num">{steps}</td><td>{what}</td><td class="num">{left}</td></tr>
                        }).collect::<Vec<_>>()}
                    </tbody>
                </table>
            </div>
        </section>
    }
}
