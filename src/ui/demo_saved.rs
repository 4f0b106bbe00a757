//! This browser's demo setting (localStorage): whether the page shows the
//! demo's log, which database that is, and where the demo stood. A leaf:
//! the log chooser (`shared::database`) and the page's policy read it
//! without reaching the demo's controls (`super::demo`).

use serde::{Deserialize, Serialize};

const KEY: &str = "retrace.demo";

/// This browser's demo, as saved.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Saved {
    /// The page shows the demo's log.
    pub on: bool,
    /// Its database (a new one for every fresh demo).
    pub database: String,
    /// Once the story is told (the run stopped until *Run on*): what
    /// happened, in a line.
    pub told: Option<String>,
    /// The user paused the demo (or its story ended it): a reload keeps it so.
    #[serde(default)]
    pub paused: bool,
    /// The user ran on after the story: it is not told again.
    #[serde(default)]
    pub ran_on: bool,
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

/// What this browser's demo setting says.
pub fn saved() -> Saved {
    storage()
        .and_then(|s| s.get_item(KEY).ok().flatten())
        .and_then(|j| serde_json::from_str(&j).ok())
        .unwrap_or_default()
}

/// Write this browser's demo setting.
pub fn save(saved: &Saved) {
    if let Some(s) = storage() {
        let _ = s.set_item(KEY, &serde_json::to_string(saved).unwrap_or_default());
    }
}

/// Whether the page shows the demo's log.
pub fn shown() -> bool {
    let s = saved();
    s.on && !s.database.is_empty()
}
