//! Import a log (CSV with column mapping, XES, a Retrace export) and export
//! the log (CloudEvents NDJSON) or its cases (CSV).

use super::browser::bytes_blob;
use super::live::Live;
use super::Log;
use crate::engine::api::{detect_format, sniff, Completion, CsvMapping, Format, TimeFormat};
use crate::engine::imports::{ImportNews, ImportOrder};
use crate::web::blob_slice;
use futures::StreamExt;
use leptos::prelude::*;
use leptos::task::spawn_local;

/// Where an import (or an export) stands, as the panel shows it.
#[derive(Clone, Debug, PartialEq)]
enum Status {
    /// Nothing chosen.
    Idle,
    /// A file is loaded and waits for the user to check and start.
    Ready,
    /// Working, in words.
    Busy(String),
    /// Finished, in words.
    Done(String),
    /// The same file was imported before: ask.
    Duplicate(String),
    /// Failed; `skippable` when bad rows could be skipped.
    Failed {
        /// What went wrong and what to do.
        message: String,
        /// Bad rows could be skipped.
        skippable: bool,
    },
}

/// The chosen file's name and contents (read a slice at a time).
type ChosenFile = (String, web_sys::Blob);

/// Bytes looked at to tell the format and guess the CSV columns.
const HEAD_BYTES: u64 = 64 * 1024;
/// The Web Lock one import at a time holds (across tabs: they share the
/// staging area).
const IMPORT_LOCK: &str = "retrace-import";

fn column_select(
    label: &'static str,
    testid: &'static str,
    mapping: RwSignal<Option<CsvMapping>>,
    get: fn(&CsvMapping) -> Option<usize>,
    set: fn(&mut CsvMapping, Option<usize>),
    optional: bool,
) -> impl IntoView {
    let options = move || {
        let columns = mapping.with(|m| m.as_ref().map(|m| m.columns.clone()).unwrap_or_default());
        let chosen = mapping.with(|m| m.as_ref().and_then(get));
        let mut out = Vec::new();
        if optional {
            out.push(
                view! { <option value="" selected=chosen.is_none()>"(none)"</option> }.into_any(),
            );
        }
        for (i, c) in columns.into_iter().enumerate() {
            out.push(
                view! { <option value=i.to_string() selected=chosen == Some(i)>{c}</option> }
                    .into_any(),
            );
        }
        out
    };
    view! {
        <label>{label}" "
            <select data-testid=testid on:change=move |ev| {
                let v = event_target_value(&ev).parse::<usize>().ok();
                mapping.update(|m| if let Some(m) = m { set(m, v) });
            }>{options}</select>
        </label>
    }
}

/// The import and export panel.
#[component]
pub fn ImportPanel() -> impl IntoView {
    let log = expect_context::<Log>();
    let live = expect_context::<Live>();
    let file: StoredValue<Option<ChosenFile>, LocalStorage> = StoredValue::new_local(None);
    let format = RwSignal::new(None::<Format>);
    let mapping = RwSignal::new(None::<CsvMapping>);
    let preview = RwSignal::new(Vec::<Vec<String>>::new());
    let completion = RwSignal::new("all".to_string());
    let end_activity = RwSignal::new(String::new());
    let stream_it = RwSignal::new(false);
    let speed = RwSignal::new(86_400.0f64);
    let status = RwSignal::new(Status::Idle);
    // How far the current pass is (for the progress bar).
    let fraction = RwSignal::new(None::<f64>);
    // The import running in the engine's worker, if one is.
    let running = StoredValue::new_local(None::<u32>);
    let export_from = RwSignal::new(String::new());
    let export_to = RwSignal::new(String::new());

    // Look at a file's first bytes: format, and for CSV the mapping and
    // preview. Returns whether it can be imported.
    let accept = move |name: String, blob: web_sys::Blob| async move {
        // Whatever was chosen before is forgotten first: a file that is
        // refused must not leave the previous one ready to import.
        file.set_value(None);
        format.set(None);
        mapping.set(None);
        preview.set(Vec::new());
        let size = blob.size() as u64;
        let mut head = match blob_slice(&blob, 0, size.min(HEAD_BYTES)).await {
            Ok(b) => b,
            Err(message) => {
                status.set(Status::Failed {
                    message,
                    skippable: false,
                });
                return false;
            }
        };
        if size > HEAD_BYTES {
            // Only whole lines: the last one was cut.
            if let Some(end) = head.iter().rposition(|&b| b == b'\n') {
                head.truncate(end + 1);
            }
        }
        let detected = match detect_format(&name, &head) {
            Ok(fmt) => fmt,
            Err(e) => {
                status.set(Status::Failed {
                    message: e,
                    skippable: false,
                });
                return false;
            }
        };
        mapping.set(None);
        preview.set(Vec::new());
        // A CSV's header and at least one row must fit in the part that is
        // looked at; a row that long is no event log (or a damaged one).
        let lines = head.iter().filter(|&&b| b == b'\n').count();
        if detected == Format::Csv && size > HEAD_BYTES && lines < 2 {
            status.set(Status::Failed {
                message: format!(
                    "{name}: its first rows are longer than {} KB; event log rows are short, so this file cannot be read as one",
                    HEAD_BYTES / 1024
                ),
                skippable: false,
            });
            return false;
        }
        if detected == Format::Csv {
            match sniff(&head) {
                Ok(s) => {
                    preview.set(s.preview);
                    mapping.set(Some(s.mapping));
                }
                Err(e) => {
                    status.set(Status::Failed {
                        message: format!("{name}: {e}"),
                        skippable: false,
                    });
                    return false;
                }
            }
        }
        format.set(Some(detected));
        file.set_value(Some((name, blob)));
        status.set(Status::Ready);
        true
    };
    let load = move |f: web_sys::File| {
        status.set(Status::Busy(format!("looking at {}…", f.name())));
        spawn_local(async move {
            accept(f.name(), f.into()).await;
        });
    };

    let on_pick = move |ev: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&ev);
        if let Some(f) = input.files().and_then(|l| l.get(0)) {
            load(f);
        }
        input.set_value("");
    };
    let on_drop = move |ev: leptos::ev::DragEvent| {
        ev.prevent_default();
        if let Some(f) = ev
            .data_transfer()
            .and_then(|d| d.files())
            .and_then(|l| l.get(0))
        {
            load(f);
        }
    };

    // Read, check, stage and write the chosen file: the engine's worker
    // does it; the panel shows its news.
    let run = move |skip_bad: bool, again: bool| {
        let Some((name, blob)) = file.get_value() else {
            return;
        };
        let Some(fmt) = format.get_untracked() else {
            return;
        };
        let order = ImportOrder {
            id: 0,
            name: name.clone(),
            format: fmt,
            mapping: mapping.get_untracked(),
            completion: match completion.get_untracked().as_str() {
                "end" => Completion::EndActivity(end_activity.get_untracked()),
                "none" => Completion::NoneComplete,
                _ => Completion::AllComplete,
            },
            stream: stream_it.get_untracked().then(|| speed.get_untracked()),
            skip_bad,
            again,
        };
        status.set(Status::Busy(format!("starting to import {name}…")));
        spawn_local(async move {
            // One import at a time, across tabs: they share the staging area.
            let Some(lock) = super::web_lock::try_take(IMPORT_LOCK).await else {
                return status.set(Status::Failed {
                    message: "Another tab is importing a file; wait until it has finished, then try again.".into(),
                    skippable: false,
                });
            };
            let (id, mut news) = live.import(order, &blob);
            running.set_value(Some(id));
            let mut last = None;
            while let Some(piece) = news.next().await {
                match piece {
                    ImportNews::Progress {
                        line,
                        fraction: done,
                    } => {
                        fraction.set(done);
                        status.set(Status::Busy(line));
                    }
                    ImportNews::Committed(head) => log.head.update(|h| *h = (*h).max(head)),
                    ImportNews::Leftover(message) => log.fail(message),
                    end => {
                        last = Some(end);
                        break;
                    }
                }
            }
            running.set_value(None);
            lock.release();
            status.set(match last {
                Some(ImportNews::Done(done)) => Status::Done(done),
                Some(ImportNews::Duplicate(question)) => Status::Duplicate(question),
                Some(ImportNews::Cancelled { streamed: true }) => {
                    Status::Done("Replay stopped; the events played so far stay in the log.".into())
                }
                Some(ImportNews::Cancelled { streamed: false }) => {
                    Status::Done("Import cancelled; the log is unchanged.".into())
                }
                Some(ImportNews::Failed { message, skippable }) => {
                    Status::Failed { message, skippable }
                }
                _ => Status::Failed {
                    message: "The import stopped without an answer: this tab's engine went away. Whatever it committed is in the log; check it, then import again if needed.".into(),
                    skippable: false,
                },
            });
        });
    };

    // A file handed over by the first-run card: look at it and import it.
    let request = expect_context::<super::ImportRequest>();
    Effect::new(move |_| {
        if let Some((name, bytes)) = request.0.get() {
            request.0.set(None);
            match bytes_blob(&bytes) {
                Ok(blob) => spawn_local(async move {
                    if accept(name, blob).await {
                        run(false, false);
                    }
                }),
                Err(message) => status.set(Status::Failed {
                    message,
                    skippable: false,
                }),
            }
        }
    });

    let exported = move |outcome: Result<String, String>| match outcome {
        Ok(done) => status.set(Status::Done(done)),
        Err(message) => status.set(Status::Failed {
            message,
            skippable: false,
        }),
    };
    let export_log = move |_| {
        let from = export_from
            .get_untracked()
            .trim()
            .parse::<u64>()
            .unwrap_or(1);
        let to = export_to
            .get_untracked()
            .trim()
            .parse::<u64>()
            .unwrap_or(u64::MAX);
        spawn_local(async move {
            let busy = move |s: String| status.set(Status::Busy(s));
            exported(super::export::log(live, from, to, &busy).await);
        });
    };
    let export_cases = move |_| {
        spawn_local(async move {
            exported(super::export::cases(live).await);
        });
    };

    let is_csv = move || format.get() == Some(Format::Csv);
    let busy = move || matches!(status.get(), Status::Busy(_));

    view! {
        <section class="card wide" aria-labelledby="import-heading">
            <h2 id="import-heading">"Import and export"</h2>
            <div class="drop" data-testid="drop-zone"
                on:dragover=move |ev: leptos::ev::DragEvent| ev.prevent_default()
                on:drop=on_drop>
                <label>"Choose a log (CSV, XES, .xes.gz, or a Retrace export) or drop it here "
                    <input type="file" data-testid="import-file" accept=".csv,.txt,.xes,.gz,.ndjson,.jsonl" on:change=on_pick />
                </label>
            </div>
            <Show when=is_csv>
                <div class="form-row">
                    {column_select("Case", "map-case", mapping, |m| m.case, |m, v| m.case = v, false)}
                    {column_select("Activity", "map-activity", mapping, |m| m.activity, |m, v| m.activity = v, false)}
                    {column_select("Timestamp", "map-timestamp", mapping, |m| m.timestamp, |m, v| m.timestamp = v, false)}
                    {column_select("Resource", "map-resource", mapping, |m| m.resource, |m, v| m.resource = v, true)}
                    <label>"Dates "
                        <select data-testid="map-format" on:change=move |ev| {
                            let f = match event_target_value(&ev).as_str() {
                                "dayfirst" => TimeFormat::DayFirst,
                                "monthfirst" => TimeFormat::MonthFirst,
                                "epochs" => TimeFormat::EpochSeconds,
                                "epochms" => TimeFormat::EpochMillis,
                                _ => TimeFormat::Iso,
                            };
                            mapping.update(|m| if let Some(m) = m { m.time_format = f });
                        }>
                            {move || {
                                let current = mapping.with(|m| m.as_ref().map(|m| m.time_format));
                                [("iso", "ISO 8601 / YYYY-MM-DD HH:MM:SS", TimeFormat::Iso), ("dayfirst", "day first (31/12/2024)", TimeFormat::DayFirst),
                                 ("monthfirst", "month first (12/31/2024)", TimeFormat::MonthFirst), ("epochs", "epoch seconds", TimeFormat::EpochSeconds),
                                 ("epochms", "epoch milliseconds", TimeFormat::EpochMillis)]
                                    .into_iter()
                                    .map(|(v, l, f)| view! { <option value=v selected=current == Some(f)>{l}</option> })
                                    .collect::<Vec<_>>()
                            }}
                        </select>
                    </label>
                    <label>"UTC offset (minutes) "
                        <input type="number" data-testid="map-tz" step="15"
                            prop:value=move || mapping.with(|m| m.as_ref().map_or(0, |m| m.tz_offset_min)).to_string()
                            on:input=move |ev| { if let Ok(v) = event_target_value(&ev).parse::<i64>() { mapping.update(|m| if let Some(m) = m { m.tz_offset_min = v }) } } />
                    </label>
                </div>
                <Show when=move || mapping.with(|m| m.as_ref().is_some_and(|m| m.ambiguous_dates))>
                    <p class="warn" data-testid="ambiguous-dates">"Every date in the sample reads both day-first and month-first: check the date order above."</p>
                </Show>
                <div class="scroll preview">
                    <table data-testid="import-preview">
                        <tbody>
                            {move || preview.get().into_iter().take(6).map(|row| view! {
                                <tr>{row.into_iter().map(|c| view! { <td>{c}</td> }).collect::<Vec<_>>()}</tr>
                            }).collect::<Vec<_>>()}
                        </tbody>
                    </table>
                </div>
            </Show>
            <Show when=move || format.get().is_some_and(|f| f != Format::CloudEvents)>
                <div class="form-row">
                    <label>"Cases "
                        <select data-testid="completion" on:change=move |ev| completion.set(event_target_value(&ev))>
                            <option value="all">"are all complete"</option>
                            <option value="end">"end with the activity…"</option>
                            <option value="none">"may still be open"</option>
                        </select>
                    </label>
                    <Show when=move || completion.get() == "end">
                        <input type="text" aria-label="Activity that ends a case" data-testid="end-activity"
                            prop:value=move || end_activity.get() on:input=move |ev| end_activity.set(event_target_value(&ev)) />
                    </Show>
                    <label><input type="checkbox" data-testid="stream-it" prop:checked=move || stream_it.get()
                        on:change=move |ev| stream_it.set(event_target_checked(&ev)) />" play it into the live views as a stream"</label>
                    <Show when=move || stream_it.get()>
                        <select aria-label="Replay speed" data-testid="stream-speed" on:change=move |ev| speed.set(event_target_value(&ev).parse().unwrap_or(86_400.0))>
                            <option value="3600">"1 hour per second"</option>
                            <option value="86400" selected>"1 day per second"</option>
                            <option value="604800">"1 week per second"</option>
                            <option value="2592000">"30 days per second"</option>
                        </select>
                    </Show>
                </div>
            </Show>
            <div class="actions">
                <button data-testid="import-start" on:click=move |_| run(false, false)
                    disabled=move || !matches!(status.get(), Status::Ready | Status::Done(_) | Status::Failed { .. }) || format.get().is_none()>"Import"</button>
                <button data-testid="import-cancel" on:click=move |_| {
                    if let Some(id) = running.get_value() {
                        live.cancel_import(id);
                    }
                } disabled=move || !busy()>"Cancel"</button>
                <button data-testid="export-log" on:click=export_log disabled=busy>"Export log (CloudEvents NDJSON)"</button>
                <button data-testid="export-cases" on:click=export_cases disabled=busy>"Export cases (CSV)"</button>
                <label>"from seq " <input type="number" min="1" class="short" data-testid="export-from" prop:value=move || export_from.get() on:input=move |ev| export_from.set(event_target_value(&ev)) /></label>
                <label>"to " <input type="number" min="1" class="short" data-testid="export-to" prop:value=move || export_to.get() on:input=move |ev| export_to.set(event_target_value(&ev)) /></label>
            </div>
            <div data-testid="import-status" role="status" aria-live="polite" class="import-status">
                {move || match status.get() {
                    Status::Idle => view! { <span>""</span> }.into_any(),
                    Status::Ready => view! { <span>"Check the mapping, then Import. Nothing is written until the whole file has been read."</span> }.into_any(),
                    Status::Busy(s) => view! {
                        <span>
                            <progress data-testid="import-progress" max="1" aria-label="Import progress"
                                value=move || fraction.get().map(|f| f.to_string())></progress>
                            " "{s}
                        </span>
                    }.into_any(),
                    Status::Done(s) => view! { <span class="ok">{s}</span> }.into_any(),
                    Status::Duplicate(s) => view! {
                        <span>{s}" "
                            <button data-testid="import-again" on:click=move |_| run(false, true)>"Import again"</button>
                            <button on:click=move |_| status.set(Status::Ready)>"No"</button>
                        </span>
                    }.into_any(),
                    Status::Failed { message, skippable } => view! {
                        <span class="error-text" data-testid="import-error">{message}" "
                            <Show when=move || skippable>
                                <button data-testid="import-skip-bad" on:click=move |_| run(true, false)>"Skip the bad rows and import the rest"</button>
                            </Show>
                        </span>
                    }.into_any(),
                }}
            </div>
        </section>
    }
}
