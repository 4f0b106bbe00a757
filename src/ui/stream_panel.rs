//! The live event stream, newest first.

use super::format;
use super::live::Live;
use leptos::prelude::*;

/// The newest events.
#[component]
pub fn StreamPanel() -> impl IntoView {
    let live = expect_context::<Live>();
    view! {
        <section class="card wide" aria-labelledby="stream-heading">
            <h2 id="stream-heading">"Event stream"</h2>
            <div class="scroll" tabindex="0">
                <table data-testid="stream">
                    <thead><tr><th scope="col">"seq"</th><th scope="col">"time"</th><th scope="col">"event"</th><th scope="col">"case"</th><th scope="col">"detail"</th></tr></thead>
                    <tbody>
                        <For each=move || live.stream.get() key=|r| r.seq let:row>
                            <tr data-testid="stream-row">
                                <td class="num">{row.seq}</td>
                                <td>{format::datetime(row.at)}</td>
                                <td>{row.event_type.clone()}</td>
                                <td>{row.case.clone()}</td>
                                <td>{row.detail.clone()}</td>
                            </tr>
                        </For>
                    </tbody>
                </table>
            </div>
        </section>
    }
}
