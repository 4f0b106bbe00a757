//! The user interface (Leptos, client-side rendered). Panels read signals;
//! the log and everything derived from it stay in the pure core.

mod backtest_panel;
pub mod browser;
mod chart;
pub mod demo;
mod demo_saved;
mod drawing;
mod engine_worker;
mod export;
mod format;
mod import_panel;
pub mod live;
mod log_panel;
mod loop_panel;
mod open_cases_panel;
mod recovery_panel;
mod registry_panel;
pub mod route;
mod settings;
pub mod shared;
pub mod sim;
mod simulator_panel;
mod stats_panel;
mod storage;
mod stream_panel;
mod time_travel;
mod update;
mod web_lock;
mod welcome;
mod workload_panel;

use leptos::prelude::*;

use backtest_panel::BacktestPanel;
use drawing::Panel;
use import_panel::ImportPanel;
use live::Live;
pub use log_panel::LogPanel;
use loop_panel::FeedbackPanel;
use open_cases_panel::OpenCasesPanel;
use registry_panel::RegistryPanel;
use simulator_panel::SimulatorPanel;
use stats_panel::StatsPanel;
use stream_panel::StreamPanel;
use time_travel::TimeTravel;
use workload_panel::WorkloadPanel;

/// The name of the app's database.
pub const DATABASE: &str = "retrace";

/// The log as this tab shows it, shared by every panel (the log itself
/// is the engine's worker's to open).
#[derive(Clone, Copy)]
pub struct Log {
    /// The engine has said where the log stands (or why it could not
    /// open it): until then the page says it is opening the log.
    pub open: RwSignal<bool>,
    /// The head as this tab last saw it; bumps when anything commits.
    pub head: RwSignal<u64>,
    /// The latest error, in words, for the banner.
    pub error: RwSignal<Option<String>>,
}

impl Log {
    /// Show an error to the user.
    pub fn fail(&self, err: impl std::fmt::Display) {
        self.error.set(Some(err.to_string()));
    }
}

/// A file for the import panel to import at once (the bundled sample).
#[derive(Clone, Copy)]
pub struct ImportRequest(pub RwSignal<Option<(String, std::sync::Arc<Vec<u8>>)>>);

/// The whole app.
#[component]
pub fn App() -> impl IntoView {
    let log = Log {
        open: RwSignal::new(false),
        head: RwSignal::new(0),
        error: RwSignal::new(None),
    };
    provide_context(log);
    let shared_state = shared::Shared::new();
    provide_context(shared_state);
    let live = Live::new(shared_state);
    provide_context(live);
    provide_context(live.engine_worker());
    let sim = sim::Sim::new(log, live);
    provide_context(sim);
    let demo = demo::Demo::new();
    provide_context(demo);
    provide_context(ImportRequest(RwSignal::new(None)));
    provide_context(update::Updates::start());
    let view = route::current();
    provide_context(view);
    let drawing = drawing::Drawing::new(view.get_untracked());
    provide_context(drawing);
    // The panels are let in once the log has opened: drawn from then on,
    // one per task (all at once they made one task of 130–165 ms).
    Effect::new(move |started: Option<bool>| {
        if started == Some(true) || !log.open.get() {
            return started.unwrap_or(false);
        }
        leptos::task::spawn_local(drawing.run());
        true
    });
    leptos::task::spawn_local(async move {
        // Only the engine's worker opens the log: the page hears its head,
        // its views and what went wrong.
        live.boot(log).await;
        if demo.shown {
            demo.run(log, live, sim);
        } else if shared::connected() {
            shared::run(live.engine_worker());
        }
        log_panel::check_at_start(live, log).await;
    });
    let shown = move |v: route::View| view.get() == v;
    // Which log the page shows, named in the header.
    let shown_log = if demo.shown {
        "Demo log".to_owned()
    } else if shared::connected() {
        format!("Shared log “{}”", shared::settings().log)
    } else {
        "Your log".to_owned()
    };
    view! {
        <a class="skip" href="#main">"Skip to the content"</a>
        <header class="top">
            <h1>"Retrace"</h1>
            <nav aria-label="Views">
                {route::View::ALL.iter().map(|v| {
                    let v = *v;
                    view! {
                        <a href=v.href() aria-current=move || shown(v).then_some("page")>{v.title()}</a>
                    }
                }).collect::<Vec<_>>()}
            </nav>
            <p class="status-bar" aria-live="off">
                <span data-testid="log-shown">{shown_log}</span>
                {demo.shown.then(|| view! {
                    " "<button class="link" data-testid="header-leave-demo" on:click=|_| demo::leave()>"back to your log"</button>
                })}
                // The count appears once the engine has said where the log
                // stands: a "0" before that would be a claim about the log.
                " · "<Show when=move || log.open.get() fallback=|| "opening the log">
                    <span data-testid="event-count">{move || log.head.get()}</span>" events"
                </Show>
                {move || live.predicting.get().then_some(" · loop on")}
                " · "<span data-testid="views-behind">{move || {
                    let behind = log.head.get().saturating_sub(live.seq.get());
                    if let Some(seq) = live.past.get() {
                        format!("viewing the past at event {seq}")
                    } else if behind == 0 { "views current".to_string() } else { format!("views {behind} events behind") }
                }}</span>
            </p>
        </header>
        <update::UpdateBanner/>
        <main id="main" tabindex="-1" data-seq=move || live.seq.get()>
            <Show when=move || log.error.get().is_some()>
                <div class="error" role="alert" data-testid="error">
                    <p>{move || log.error.get().unwrap_or_default()}</p>
                    <button on:click=move |_| log.error.set(None)>"Dismiss"</button>
                </div>
            </Show>
            <Show when=move || log.open.get() fallback=|| view! { <p data-testid="opening">"Opening the log…"</p> }>
                <div class="grid" hidden=move || !shown(route::View::Live) data-view="live">
                    <Panel view=route::View::Live nth=0>
                        <Show when=move || log.head.get() == 0 && !demo.shown>
                            <welcome::Welcome/>
                        </Show>
                    </Panel>
                    <Panel view=route::View::Live nth=1><FeedbackPanel/></Panel>
                    <Panel view=route::View::Live nth=2><SimulatorPanel/></Panel>
                    <Panel view=route::View::Live nth=3><StreamPanel/></Panel>
                    <Panel view=route::View::Live nth=4><OpenCasesPanel/></Panel>
                    <Panel view=route::View::Live nth=5><WorkloadPanel/></Panel>
                </div>
                <div class="grid" hidden=move || !shown(route::View::Models) data-view="models">
                    <Panel view=route::View::Models nth=0><RegistryPanel/></Panel>
                    <Panel view=route::View::Models nth=1><BacktestPanel/></Panel>
                </div>
                <div class="grid" hidden=move || !shown(route::View::Log) data-view="log">
                    <Panel view=route::View::Log nth=0><ImportPanel/></Panel>
                    <Panel view=route::View::Log nth=1><StatsPanel/></Panel>
                    <Panel view=route::View::Log nth=2><TimeTravel/></Panel>
                </div>
                <div class="grid" hidden=move || !shown(route::View::Settings) data-view="settings">
                    <Panel view=route::View::Settings nth=0><LogPanel/></Panel>
                    <Panel view=route::View::Settings nth=1><settings::SettingsPanel/></Panel>
                    <Panel view=route::View::Settings nth=2><shared::SharedLogCard/></Panel>
                    <Panel view=route::View::Settings nth=3><recovery_panel::RecoveryPanel/></Panel>
                </div>
            </Show>
        </main>
    }
}
