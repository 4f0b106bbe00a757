//! Numbers and times in words for the page.

use crate::domain::calendar::{DAY, HOUR};

/// `2024-01-03 14:05` (UTC).
pub fn datetime(ms: i64) -> String {
    let (y, m, d) = civil(ms.div_euclid(DAY));
    let minutes = ms.rem_euclid(DAY) / 60_000;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        minutes / 60,
        minutes % 60
    )
}

/// `2024-01-03`.
pub fn date(ms: i64) -> String {
    let (y, m, d) = civil(ms.div_euclid(DAY));
    format!("{y:04}-{m:02}-{d:02}")
}

/// A duration in hours or days: `5.5 h`, `3.2 d`.
pub fn duration(ms: i64) -> String {
    let hours = ms as f64 / HOUR as f64;
    if hours.abs() < 48.0 {
        format!("{hours:.1} h")
    } else {
        format!("{:.1} d", hours / 24.0)
    }
}

fn civil(days: i64) -> (i64, u32, u32) {
    crate::engine::api::civil_from_days(days)
}
