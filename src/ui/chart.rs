//! Small SVG bar charts, drawn from Rust: labelled axes, a tooltip per bar,
//! colours from a colour-blind-safe palette (Okabe–Ito).

use leptos::prelude::*;

/// Okabe–Ito colours.
pub const BLUE: &str = "#0072B2";
/// Okabe–Ito vermillion.
pub const VERMILLION: &str = "#D55E00";

/// One bar (or a pair of bars) of a chart.
#[derive(Clone, Debug, PartialEq)]
pub struct Bar {
    /// Label under the bar.
    pub label: String,
    /// Values (one per series).
    pub values: Vec<f64>,
}

/// A grouped bar chart. `series` names each value of a bar (legend).
#[component]
pub fn BarChart(
    /// Heading of the chart, also its accessible name.
    title: String,
    /// Unit of the values, for the axis and tooltips.
    unit: String,
    /// Series names with their colours.
    series: Vec<(String, &'static str)>,
    /// The bars.
    bars: Vec<Bar>,
    /// Test hook.
    #[prop(optional)]
    testid: &'static str,
) -> impl IntoView {
    let (w, h, left, bottom) = (560.0, 180.0, 64.0, 28.0);
    let max = bars
        .iter()
        .flat_map(|b| b.values.iter().copied())
        .fold(0.0f64, f64::max)
        .max(1.0);
    let n = bars.len().max(1) as f64;
    let slot = (w - left) / n;
    let k = series.len().max(1) as f64;
    let bar_w = (slot * 0.8 / k).max(1.0);
    let label_every = ((bars.len() as f64) / 8.0).ceil().max(1.0) as usize;
    let rects = bars
        .iter()
        .enumerate()
        .flat_map(|(i, b)| {
            let series = series.clone();
            let unit = unit.clone();
            b.values.iter().enumerate().map(move |(j, v)| {
                let bh = (v / max) * (h - bottom - 8.0);
                let x = left + i as f64 * slot + slot * 0.1 + j as f64 * bar_w;
                let y = h - bottom - bh;
                let name = series.get(j).map(|s| s.0.clone()).unwrap_or_default();
                let colour = series.get(j).map_or(BLUE, |s| s.1);
                let tip = format!("{}: {name} {v:.0} {unit}", b.label);
                view! { <rect x=x y=y width=bar_w height=bh fill=colour><title>{tip}</title></rect> }
            }).collect::<Vec<_>>()
        })
        .collect::<Vec<_>>();
    let labels = bars
        .iter()
        .enumerate()
        .filter(|(i, _)| i % label_every == 0)
        .map(|(i, b)| {
            let x = left + i as f64 * slot + slot / 2.0;
            view! { <text x=x y=h - 10.0 text-anchor="middle" class="axis">{b.label.clone()}</text> }
        })
        .collect::<Vec<_>>();
    let legend = series
        .iter()
        .map(|(name, colour)| view! { <span class="legend-item"><span class="swatch" style=format!("background:{colour}")></span>{name.clone()}</span> })
        .collect::<Vec<_>>();
    let max_label = format!("{max:.0} {unit}");
    view! {
        <figure class="chart" data-testid=testid>
            <figcaption>{title.clone()} <span class="legend">{legend}</span></figcaption>
            <svg viewBox=format!("0 0 {w} {h}") role="img" aria-label=title>
                <line x1=left y1=h - bottom x2=w y2=h - bottom class="axis-line" />
                <line x1=left y1=8 x2=left y2=h - bottom class="axis-line" />
                <text x=left - 4.0 y=14 text-anchor="end" class="axis">{max_label}</text>
                <text x=left - 4.0 y=h - bottom text-anchor="end" class="axis">"0"</text>
                {rects}
                {labels}
            </svg>
        </figure>
    }
}
