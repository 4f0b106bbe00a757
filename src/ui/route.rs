//! Views in the URL: `#/live`, `#/models`, `#/log`, `#/settings`. The hash,
//! not the path, so any static host serves every view from one index.html
//! — a reload or a bookmark of `…/retrace/#/models` needs no rewrite rule.

use leptos::prelude::*;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;

/// One of the app's views.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    /// The stream, open cases, the feedback loop.
    Live,
    /// Registry, training, backtests.
    Models,
    /// Import, export, statistics, time travel.
    Log,
    /// Storage and the app itself.
    Settings,
}

impl View {
    /// Every view, in navigation order.
    pub const ALL: [View; 4] = [View::Live, View::Models, View::Log, View::Settings];

    /// The view a location hash names (the live view for anything else).
    pub fn from_hash(hash: &str) -> View {
        match hash.trim_start_matches('#').trim_start_matches('/') {
            "models" => View::Models,
            "log" => View::Log,
            "settings" => View::Settings,
            _ => View::Live,
        }
    }

    /// Its link.
    pub fn href(self) -> &'static str {
        match self {
            View::Live => "#/live",
            View::Models => "#/models",
            View::Log => "#/log",
            View::Settings => "#/settings",
        }
    }

    /// Its name in the navigation.
    pub fn title(self) -> &'static str {
        match self {
            View::Live => "Live",
            View::Models => "Models",
            View::Log => "Log",
            View::Settings => "Settings",
        }
    }
}

fn hash() -> String {
    web_sys::window()
        .and_then(|w| w.location().hash().ok())
        .unwrap_or_default()
}

/// The current view, following the location hash.
pub fn current() -> ReadSignal<View> {
    let title = |v: View| {
        if let Some(d) = web_sys::window().and_then(|w| w.document()) {
            d.set_title(&format!("Retrace · {}", v.title()));
        }
    };
    let first = View::from_hash(&hash());
    title(first);
    let (view, set_view) = signal(first);
    let on_change = Closure::<dyn FnMut()>::new(move || {
        let v = View::from_hash(&hash());
        set_view.set(v);
        title(v);
    });
    if let Some(w) = web_sys::window() {
        let _ =
            w.add_event_listener_with_callback("hashchange", on_change.as_ref().unchecked_ref());
    }
    on_change.forget();
    view
}

/// Go to `view`.
pub fn go(view: View) {
    if let Some(w) = web_sys::window() {
        let _ = w.location().set_hash(view.href());
    }
}
