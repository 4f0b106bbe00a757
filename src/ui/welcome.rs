//! The first-run card: an empty log offers three ways in.

use super::route::{go, View};
use super::ImportRequest;
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen_futures::JsFuture;

/// The bundled sample, beside index.html.
pub const SAMPLE: &str = "sample/helpdesk-1000.csv";

async fn fetch_bytes(url: &str) -> Result<Vec<u8>, String> {
    let response = super::browser::fetch_ok(url).await?;
    let buffer = JsFuture::from(response.array_buffer().map_err(|e| format!("{e:?}"))?)
        .await
        .map_err(|e| format!("{e:?}"))?;
    Ok(js_sys::Uint8Array::new(&buffer).to_vec())
}

/// Shown while the log is empty.
#[component]
pub fn Welcome() -> impl IntoView {
    let request = expect_context::<ImportRequest>();
    let status = RwSignal::new(String::new());
    // On a shared log, what the user adds goes to the team's server.
    let welcome_text = if super::shared::connected() {
        format!(
            "This is the shared log “{}”: what you import or simulate here goes to the team's server and to every teammate's browser (its contents sealed if the team set a passphrase). Start with one of these:",
            super::shared::settings().log
        )
    } else {
        "Retrace keeps an event log in this browser and learns from it: what is open, how long it will take, and how good those predictions turn out to be. Nothing leaves your machine. Start with one of these:".to_owned()
    };
    let sample = move |_| {
        status.set("loading the sample…".into());
        spawn_local(async move {
            match fetch_bytes(SAMPLE).await {
                Ok(bytes) => {
                    status.set(String::new());
                    request.0.set(Some((
                        "helpdesk-1000.csv".into(),
                        std::sync::Arc::new(bytes),
                    )));
                    go(View::Log);
                }
                Err(e) => status.set(e),
            }
        });
    };
    view! {
        <section class="card wide welcome" aria-labelledby="welcome-heading" data-testid="welcome">
            <h2 id="welcome-heading">"Your log is empty"</h2>
            <p>{welcome_text}</p>
            <div class="choices">
                <button class="primary" data-testid="welcome-demo" on:click=move |_| super::demo::start_fresh()>
                    <strong>"Watch the demo"</strong>
                    <span>"A simulated service desk whose process changes halfway, in a log of its own: see the model notice and retrain itself."</span>
                </button>
                <button data-testid="welcome-import" on:click=move |_| go(View::Log)>
                    <strong>"Import your log"</strong>
                    <span>"A CSV or XES export from your ERP or ticketing system."</span>
                </button>
                <button data-testid="welcome-sample" on:click=sample>
                    <strong>"Load the sample"</strong>
                    <span>"1,000 real helpdesk tickets (Verenich, Helpdesk, Mendeley Data)."</span>
                </button>
            </div>
            <p aria-live="polite">{move || status.get()}</p>
        </section>
    }
}
