//! A shared log in the page: the settings card (server, log name, token),
//! and, while connected, a replica of the shared log in a local database of
//! its own beside this browser's own log — downloaded from the server on
//! joining, then followed live. The page switches to the replica when it
//! connects and back to its own log when it disconnects (a reload each
//! time: every view, the loop's worker and the snapshots follow the
//! database the page opened). The replica is written only by the sync, in
//! the server's order, so `seq` is the stream's sequence in every browser.
//!
//! Writes wait in the replica's outbox until the server has them; the
//! feedback loop runs in the browser holding the team's lease, and models
//! travel as bytes through the server — all of it the work of the sync in
//! the engine's worker, which this page starts and whose news
//! ([`crate::engine::api::News`]) it shows.

use crate::engine::api::{subject_token, Conflict, Connect, Holder, News};
pub use crate::engine::api::{Counts, Held, Settings, Standing};
use crate::engine::messages::HostCommand;
use crate::ui::engine_worker::EngineWorker;
use leptos::prelude::*;

const SETTINGS: &str = "retrace.shared";
const TOKEN: &str = "retrace.shared.token";
const PASSPHRASE: &str = "retrace.shared.passphrase";

fn local() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

fn session() -> Option<web_sys::Storage> {
    web_sys::window()?.session_storage().ok().flatten()
}

/// The saved settings (the token is kept apart, for this browser session
/// only: it is never written into the log, an export or localStorage).
pub fn settings() -> Settings {
    local()
        .and_then(|s| s.get_item(SETTINGS).ok().flatten())
        .and_then(|j| serde_json::from_str(&j).ok())
        .unwrap_or_default()
}

fn save(settings: &Settings, token: &str, passphrase: &str) {
    if let Some(s) = local() {
        let _ = s.set_item(
            SETTINGS,
            &serde_json::to_string(settings).unwrap_or_default(),
        );
    }
    if let Some(s) = session() {
        let _ = s.set_item(TOKEN, token);
        let _ = s.set_item(PASSPHRASE, passphrase);
    }
}

/// The team's passphrase, kept like the token: for this browser session
/// only, never in the log, an export or localStorage.
pub fn passphrase() -> String {
    session()
        .and_then(|s| s.get_item(PASSPHRASE).ok().flatten())
        .unwrap_or_default()
}

fn token() -> String {
    session()
        .and_then(|s| s.get_item(TOKEN).ok().flatten())
        .unwrap_or_default()
}

/// Events per pack: [`crate::engine::api::PACK_EVENTS`], or what the
/// page's storage says under `retrace-pack-events` (the end-to-end tests
/// pack small logs).
fn pack_events() -> u64 {
    local()
        .and_then(|s| s.get_item("retrace-pack-events").ok().flatten())
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(crate::engine::api::PACK_EVENTS)
}

/// This browser's lasting id and a name the others are shown.
fn me() -> Holder {
    const KEY: &str = "retrace.browser";
    let storage = local();
    let saved = storage
        .as_ref()
        .and_then(|s| s.get_item(KEY).ok().flatten());
    let browser = saved.unwrap_or_else(|| {
        let id = crate::web::random_token();
        if let Some(s) = &storage {
            let _ = s.set_item(KEY, &id);
        }
        id
    });
    let name = format!("browser {}", &browser[..browser.len().min(6)]);
    Holder { browser, name }
}

/// Start the sync of the shared log this page shows, in this tab's log
/// engine (its worker): the page shows what it says.
pub fn run(engine: StoredValue<EngineWorker, LocalStorage>) {
    let connect = HostCommand::Connect(Box::new(Connect {
        settings: settings(),
        token: token(),
        passphrase: passphrase(),
        pack_events: pack_events(),
        holder: me(),
    }));
    engine.with_value(|e| e.post(connect));
}

/// The database this page opens: the demo's log while it is shown, else
/// this browser's own log, or the replica of the shared log it is
/// connected to.
pub fn database() -> String {
    let demo = super::demo_saved::saved();
    if demo.on && !demo.database.is_empty() {
        return demo.database;
    }
    let s = settings();
    if s.on && !s.log.is_empty() {
        format!("retrace-shared-{}", subject_token(&s.log))
    } else {
        super::DATABASE.to_owned()
    }
}

/// Whether the page shows a shared log (not while it shows the demo).
pub fn connected() -> bool {
    settings().on && !super::demo_saved::shown()
}

/// The sync's state, for the card and the header.
#[derive(Clone, Copy)]
pub struct Shared {
    /// `connected …` while live; otherwise what happened and what to do.
    pub status: RwSignal<String>,
    /// Cases this browser wrote to after somebody else did: the user keeps
    /// or drops their events.
    pub conflicts: RwSignal<Vec<Conflict>>,
    /// The shared log's refused messages as the log records them: how many
    /// in all, and the newest (seq, why) — set from the engine's views.
    pub refused: RwSignal<(u64, Vec<(u64, String)>)>,
    /// Events on the server, once connected.
    pub on_server: RwSignal<Option<u64>>,
    /// How an upload of this browser's own log went.
    pub upload: RwSignal<Option<String>>,
    /// The user wants the feedback loop to run here (set by the page).
    pub loop_wanted: RwSignal<bool>,
    /// Where this browser stands on the loop's lease: it drives the team's
    /// loop only while it is `Ours`.
    pub standing: RwSignal<Standing>,
    /// The loop's decisions the log set aside (not of the term in force):
    /// how many, and the newest (seq, what and why).
    pub set_aside: RwSignal<(u64, Vec<(u64, String)>)>,
    /// The sync's state as numbers.
    pub counts: RwSignal<Counts>,
    /// While this browser drives the loop: its lease, as of the last round.
    pub lease: RwSignal<Option<Held>>,
    /// This tab runs the sync (one tab per browser does).
    pub syncing: RwSignal<bool>,
}

impl Shared {
    /// The state, provided once by the app.
    pub fn new() -> Shared {
        Shared {
            status: RwSignal::new(if connected() {
                "connecting…".into()
            } else {
                "not connected: this page shows this browser's own log".into()
            }),
            conflicts: RwSignal::new(Vec::new()),
            refused: RwSignal::new((0, Vec::new())),
            on_server: RwSignal::new(None),
            upload: RwSignal::new(None),
            loop_wanted: RwSignal::new(false),
            standing: RwSignal::new(Standing::Idle),
            lease: RwSignal::new(None),
            counts: RwSignal::new(Counts::default()),
            set_aside: RwSignal::new((0, Vec::new())),
            syncing: RwSignal::new(false),
        }
    }

    /// What the sync said.
    pub fn hear(self, news: News) {
        match news {
            News::Syncing => self.syncing.set(true),
            News::Status(text) => self.status.set(text),
            News::Counts(counts) => self.counts.set(counts),
            News::OnServer(n) => self.on_server.set(Some(n)),
            News::Conflicts(now) => self.conflicts.set(now),
            News::Standing(standing) => self.standing.set(standing),
            News::Lease(held) => self.lease.set(held),
            // The page's store hears it (see `crate::ui::live`).
            News::ReadOnly(_) => {}
            News::Upload(text) => self.upload.set(Some(text)),
        }
    }
}

impl Default for Shared {
    fn default() -> Self {
        Shared::new()
    }
}

/// Connect (save, switch to the replica) or disconnect (back to the own
/// log): a reload either way.
fn switch(settings: Settings, token: &str, passphrase: &str) {
    save(&settings, token, passphrase);
    if let Some(w) = web_sys::window() {
        let _ = w.location().reload();
    }
}

/// The settings card.
#[component]
pub fn SharedLogCard() -> impl IntoView {
    let shared = expect_context::<Shared>();
    let saved = settings();
    let server = RwSignal::new(if saved.server.is_empty() {
        "ws://127.0.0.1:4223".to_string()
    } else {
        saved.server.clone()
    });
    let name = RwSignal::new(if saved.log.is_empty() {
        "team".to_string()
    } else {
        saved.log.clone()
    });
    let token_value = RwSignal::new(token());
    let passphrase_value = RwSignal::new(passphrase());
    let on = saved.on;
    let connect = move |_| {
        let s = Settings {
            server: server.get_untracked().trim().to_owned(),
            log: name.get_untracked().trim().to_owned(),
            on: true,
        };
        if !(s.server.starts_with("ws://") || s.server.starts_with("wss://")) {
            shared
                .status
                .set("not connected: the server's address starts with ws:// or wss://".into());
            return;
        }
        if s.log.is_empty() {
            shared
                .status
                .set("not connected: give the shared log a name".into());
            return;
        }
        switch(
            s,
            &token_value.get_untracked(),
            &passphrase_value.get_untracked(),
        );
    };
    let disconnect = move |_| {
        let s = Settings {
            on: false,
            ..settings()
        };
        switch(
            s,
            &token_value.get_untracked(),
            &passphrase_value.get_untracked(),
        );
    };
    let engine = expect_context::<StoredValue<EngineWorker, LocalStorage>>();
    let upload_own = move |_| {
        if shared.on_server.get_untracked() != Some(0) {
            shared.upload.set(Some(
                "Not uploaded: only into a new, empty shared log: this one already holds events"
                    .into(),
            ));
            return;
        }
        shared
            .upload
            .set(Some("reading this browser's own log…".into()));
        // The engine reads the own log and writes the copy's outbox.
        engine.with_value(|e| {
            e.post(HostCommand::Upload {
                from: super::DATABASE.to_owned(),
            })
        });
    };
    view! {
        <section class="card" aria-labelledby="shared-heading">
            <h2 id="shared-heading">"Shared log"</h2>
            <p class="hint">"Work on one log with your team through a NATS JetStream server (make shared-server starts one on this machine, token retrace-dev). Each shared log is a copy in this browser beside its own log, which stays as it is."</p>
            <div class="form-row">
                <label>"Server " <input type="url" data-testid="shared-server" prop:value=move || server.get() on:input=move |ev| server.set(event_target_value(&ev)) disabled=on /></label>
                <label>"Log name " <input type="text" data-testid="shared-log" prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev)) disabled=on /></label>
                <label>"Token or user:password " <input type="password" data-testid="shared-token" autocomplete="off" prop:value=move || token_value.get() on:input=move |ev| token_value.set(event_target_value(&ev)) disabled=on /></label>
                <label>"Team passphrase (optional) " <input type="password" data-testid="shared-passphrase" autocomplete="off" prop:value=move || passphrase_value.get() on:input=move |ev| passphrase_value.set(event_target_value(&ev)) disabled=on /></label>
            </div>
            <p class="hint">"With a passphrase, a new shared log is encrypted in the browser: the server stores events, packs and models it cannot read. Everyone on the team enters the same passphrase; it is kept for this browser session only."</p>
            <div class="actions">
                <button data-testid="shared-connect" on:click=connect disabled=on>"Connect"</button>
                <button data-testid="shared-disconnect" on:click=disconnect disabled=!on>"Disconnect"</button>
            </div>
            <p data-testid="sync-status" aria-live="polite"
                data-link=move || shared.counts.get().link.name()
                data-read-only=move || shared.counts.get().read_only.to_string()
                data-held-back=move || shared.counts.get().held_back.to_string()
                data-packed=move || shared.counts.get().packed.to_string()
                data-from-packs=move || shared.counts.get().from_packs.to_string()
                data-connected=move || shared.counts.get().connected.to_string()
                data-on-server=move || shared.counts.get().on_server.map(|n| n.to_string()).unwrap_or_default()
                data-received=move || shared.counts.get().received.to_string()
                data-sent=move || shared.counts.get().sent.to_string()
                data-waiting=move || shared.counts.get().waiting.to_string()
                data-outbox=move || shared.counts.get().outbox.to_string()
                data-conflicts=move || shared.counts.get().conflicts.to_string()
                data-refused=move || shared.counts.get().refused.to_string()
            >{move || shared.status.get()}</p>
            <Show when=move || on>
                <div class="actions">
                    <button data-testid="shared-upload" on:click=upload_own disabled=move || shared.on_server.get() != Some(0)>"Upload this browser's own log"</button>
                    <span class="hint">" into this shared log while it is empty: one unit, the others see all of it or none."</span>
                </div>
                <p data-testid="shared-upload-status" aria-live="polite">{move || shared.upload.get()}</p>
            </Show>
            <ul class="conflicts">
                <For each=move || shared.conflicts.get() key=|c| (c.stream.clone(), c.after, c.now) let:c>
                    <ConflictRow conflict=c/>
                </For>
            </ul>
            <Show when=move || shared.refused.with(|r| r.0 > 0)>
                <p class="hint" data-testid="sync-refused-total">{move || shared.refused.with(|(total, _)| format!(
                    "{} message{} on the server refused: not Retrace events of this log. Each keeps its place as a refusal, in every browser; nothing else is affected. Whoever can write to the server sent them: check its users and permissions.",
                    total,
                    if *total == 1 { "" } else { "s" },
                ))}</p>
                <ul class="refused" data-testid="sync-refused-list">
                    <For each=move || shared.refused.with(|r| r.1.clone()) key=|r| r.0 let:r>
                        <li data-testid="sync-refused" data-seq=r.0>{format!("event {}: {}", r.0, r.1)}</li>
                    </For>
                </ul>
            </Show>
            <Show when=move || shared.set_aside.with(|a| a.0 > 0)>
                <p class="hint" data-testid="sync-set-aside-total">{move || shared.set_aside.with(|(total, _)| format!(
                    "{} decision{} of the loop set aside: not made in the loop's term (the newest LoopTaken). A browser that had lost the loop's lease, or a client writing to the server by hand, sent {}. Every browser sets the same ones aside; the loop goes on.",
                    total,
                    if *total == 1 { "" } else { "s" },
                    if *total == 1 { "it" } else { "them" },
                ))}</p>
                <ul class="refused" data-testid="sync-set-aside-list">
                    <For each=move || shared.set_aside.with(|a| a.1.clone()) key=|a| a.0 let:a>
                        <li data-testid="sync-set-aside" data-seq=a.0>{format!("event {}: {}", a.0, a.1)}</li>
                    </For>
                </ul>
            </Show>
        </section>
    }
}

/// One case in conflict: what happened, and the two ways out.
#[component]
fn ConflictRow(conflict: Conflict) -> impl IntoView {
    let stream = conflict.stream.clone();
    let engine = expect_context::<StoredValue<EngineWorker, LocalStorage>>();
    let choose = move |keep: bool| {
        let stream = stream.clone();
        move |_| {
            let command = HostCommand::Resolve {
                stream: stream.clone(),
                keep,
            };
            engine.with_value(|e| e.post(command))
        }
    };
    let theirs = match conflict.now {
        Some(now) => format!("it is at version {now} on the server"),
        None => "the server holds a newer version".into(),
    };
    let n = conflict.waiting;
    view! {
        <li data-testid="sync-conflict">
            <p>{format!(
                "Conflict on {}: somebody else wrote to it first ({theirs}); {n} event{} written here after version {} {} not sent.",
                conflict.stream,
                if n == 1 { "" } else { "s" },
                conflict.after,
                if n == 1 { "was" } else { "were" },
            )}</p>
            <button data-testid="sync-keep" on:click=choose(true)>"Keep mine (after theirs)"</button>
            " "
            <button data-testid="sync-drop" on:click=choose(false)>"Drop mine"</button>
        </li>
    }
}
