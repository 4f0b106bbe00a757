//! Open cases with their progress so far and, when the loop runs, the
//! champion's newest prediction of the time each has left.

use super::format;
use super::live::Live;
use leptos::prelude::*;

/// The open cases table.
#[component]
pub fn OpenCasesPanel() -> impl IntoView {
    let live = expect_context::<Live>();
    let rows = move || {
        live.views.with(|v| {
            let now = v.newest_at.unwrap_or(0);
            let hour = crate::domain::calendar::HOUR as f64;
            // Time left now (ms, negative once passed), by a prediction
            // made at `made_at`.
            let left = |made_at: i64, h: f64| h * hour - (now - made_at) as f64;
            let said = |ms: f64| format::duration(ms.max(0.0) as i64);
            let rows: Vec<_> = v
                .open
                .rows
                .iter()
                .map(|c| {
                    // Once the predicted time has passed, say so rather
                    // than "0 h"; once the interval has, the case is overdue.
                    let predicted = c.predicted.as_ref().map_or("—".into(), |p| {
                        let mid = left(p.made_at, p.hours);
                        match p.interval {
                            Some((lo, hi)) => {
                                let high = left(p.made_at, hi);
                                if high < 0.0 {
                                    format!("overdue: its 80 % interval ended {} ago", said(-high))
                                } else if mid <= 0.0 {
                                    format!("any time now (at most {})", said(high))
                                } else {
                                    format!(
                                        "{} ({}–{})",
                                        said(mid),
                                        said(left(p.made_at, lo)),
                                        said(high)
                                    )
                                }
                            }
                            None if mid <= 0.0 => "any time now".into(),
                            None => said(mid),
                        }
                    });
                    (
                        c.case.clone(),
                        format::datetime(c.opened_at),
                        format::duration(now - c.opened_at),
                        c.last.clone().unwrap_or_else(|| "opened".into()),
                        c.steps,
                        c.kind.clone(),
                        predicted,
                    )
                })
                .collect();
            (v.open.count, rows)
        })
    };
    view! {
        <section class="card" aria-labelledby="open-heading">
            <h2 id="open-heading">"Open cases " <span class="count" data-testid="open-count">{move || rows().0}</span></h2>
            <div class="scroll" tabindex="0">
                <table>
                    <thead><tr><th scope="col">"case"</th><th scope="col">"predicted left (80 % interval)"</th><th scope="col">"age"</th><th scope="col">"last step"</th><th scope="col">"steps"</th><th scope="col">"kind"</th><th scope="col">"opened"</th></tr></thead>
                    <tbody>
                        {move || rows().1.into_iter().map(|(case, opened, age, last, steps, what, left)| view! {
                            <tr data-testid="open-row"><td>{case}</td><td class="num">{left}</td><td class="num">{age}</td><td>{last}</td><td class="num">{steps}</td><td>{what}</td><td>{opened}</td></tr>
                        }).collect::<Vec<_>>()}
                    </tbody>
                </table>
            </div>
        </section>
    }
}
