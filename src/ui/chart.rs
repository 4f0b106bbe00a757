//! Small SVG bar charts, drawn from Rust: labelled axes, a tooltip per bar,
//! colours from a colour-blind-safe palette (Okabe–Ito).

use leptos::prelude::*;
use std::cell::RefCell;
use std::collections::HashMap;

thread_local! {
    /// The width each chart was last drawn at (by test id): a chart drawn
    /// again with new data starts at its real width, not the default.
    static WIDTHS: RefCell<HashMap<&'static str, f64>> = RefCell::new(HashMap::new());
}

/// A chart's drawing width in CSS pixels, so its text is drawn at its real
/// size (11 px) on a phone as on a laptop: the browser says it once the
/// figure is laid out, and again whenever that width changes (the window
/// resized, the view shown: a hidden chart has no width); `fallback`
/// until then. It is heard from a `ResizeObserver`, which the browser
/// calls after its own layout: reading the width as a chart is set up
/// forced a layout in the middle of every update of the views (1.8 s of
/// 20 s of the running loop on the page's thread, profiled).
fn measured(
    figure: NodeRef<leptos::html::Figure>,
    key: &'static str,
    fallback: f64,
) -> RwSignal<f64> {
    use wasm_bindgen::closure::Closure;
    use wasm_bindgen::JsCast;
    let known = WIDTHS.with(|w| w.borrow().get(key).copied());
    let width = RwSignal::new(known.unwrap_or(fallback));
    Effect::new(move |_| {
        let Some(f) = figure.get() else { return };
        let element: web_sys::Element = f.clone().into();
        let on_resize = Closure::<dyn FnMut(js_sys::Array)>::new(move |_: js_sys::Array| {
            // Laid out already: reading the width costs nothing now.
            let px = f64::from(element.client_width());
            // Hidden (another view): keep the last width.
            if px >= 120.0 && (px - width.get_untracked()).abs() >= 1.0 {
                if !key.is_empty() {
                    WIDTHS.with(|w| w.borrow_mut().insert(key, px));
                }
                // Drawn again in a task of its own: the browser calls
                // this for every chart in one turn of its rendering.
                leptos::task::spawn_local(async move {
                    super::browser::yield_now().await;
                    // The chart may be gone, or drawn at this width, by now.
                    if width
                        .try_get_untracked()
                        .is_some_and(|w| (px - w).abs() >= 1.0)
                    {
                        let _ = width.try_set(px);
                    }
                });
            }
        });
        let Ok(observer) = web_sys::ResizeObserver::new(on_resize.as_ref().unchecked_ref()) else {
            return;
        };
        observer.observe(&f);
        // Stopped, and its callback let go, when the chart goes.
        let held = StoredValue::new_local((observer, on_resize));
        on_cleanup(move || {
            let _ = held.try_with_value(|(observer, _)| observer.disconnect());
        });
    });
    width
}

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
    let figure = NodeRef::<leptos::html::Figure>::new();
    let width = measured(figure, testid, 560.0);
    let legend = series
        .iter()
        .map(|(name, colour)| view! { <span class="legend-item"><span class="swatch" style=format!("background:{colour}")></span>{name.clone()}</span> })
        .collect::<Vec<_>>();
    let caption = title.clone();
    let draw = move |w: f64| bar_svg(&title, &unit, &series, &bars, w);
    view! {
        <figure class="chart" data-testid=testid node_ref=figure>
            <figcaption>{caption} <span class="legend">{legend}</span></figcaption>
            {move || draw(width.get())}
        </figure>
    }
}

fn bar_svg(
    title: &str,
    unit: &str,
    series: &[(String, &'static str)],
    bars: &[Bar],
    w: f64,
) -> impl IntoView {
    let (h, left, bottom) = (180.0, 64.0, 28.0);
    let title = title.to_owned();
    let unit = unit.to_owned();
    let series = series.to_vec();
    let max = bars
        .iter()
        .flat_map(|b| b.values.iter().copied())
        .fold(0.0f64, f64::max)
        .max(1.0);
    let n = bars.len().max(1) as f64;
    let slot = (w - left) / n;
    let k = series.len().max(1) as f64;
    let bar_w = (slot * 0.8 / k).max(1.0);
    // As many labels as fit: one per 70 px at most.
    let room = ((w - left) / 70.0).floor().max(1.0);
    let label_every = ((bars.len() as f64) / room).ceil().max(1.0) as usize;
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
    let max_label = format!("{max:.0} {unit}");
    view! {
            <svg viewBox=format!("0 0 {w} {h}") role="img" aria-label=title>
                <line x1=left y1=h - bottom x2=w y2=h - bottom class="axis-line" />
                <line x1=left y1=8 x2=left y2=h - bottom class="axis-line" />
                <text x=left - 4.0 y=14 text-anchor="end" class="axis">{max_label}</text>
                <text x=left - 4.0 y=h - bottom text-anchor="end" class="axis">"0"</text>
                {rects}
                {labels}
            </svg>
    }
}

/// Okabe–Ito orange.
pub const ORANGE: &str = "#E69F00";
/// Okabe–Ito bluish green.
pub const GREEN: &str = "#009E73";
/// Okabe–Ito reddish purple.
pub const PURPLE: &str = "#CC79A7";
/// Okabe–Ito sky blue.
pub const SKY: &str = "#56B4E9";
/// Near black, for neutral marks.
pub const GREY: &str = "#555555";

/// Colours for lines, in order.
pub const LINE_COLOURS: [&str; 6] = [BLUE, ORANGE, GREEN, PURPLE, SKY, VERMILLION];

/// Up to about `n` round tick values covering `lo..=hi`.
pub fn ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    let span = (hi - lo).max(f64::EPSILON);
    let raw = span / n.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    let first = (lo / step).ceil() * step;
    (0..=n * 2 + 1)
        .map(|i| first + i as f64 * step)
        .take_while(|v| *v <= hi + step * 1e-9)
        .collect()
}

/// A tick value with as many decimals as its step needs.
pub fn tick_label(v: f64, step: f64) -> String {
    let decimals = if step >= 1.0 {
        0
    } else if step >= 0.1 {
        1
    } else {
        2
    };
    format!("{v:.decimals$}")
}

/// One line of a [`LineChart`].
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    /// Legend name.
    pub name: String,
    /// Colour.
    pub colour: &'static str,
    /// (x, y) points, x ascending.
    pub points: Vec<(f64, f64)>,
    /// Drawn as dots instead of a line.
    pub dots: bool,
}

/// A vertical marker on a [`LineChart`].
#[derive(Clone, Debug, PartialEq)]
pub struct Mark {
    /// Where.
    pub x: f64,
    /// Colour.
    pub colour: &'static str,
    /// Dashed (`true`) or solid.
    pub dashed: bool,
    /// Tooltip.
    pub text: String,
}

const W: f64 = 520.0;
const H: f64 = 220.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 30.0;

/// Lines (and dots) over a numeric x axis, with vertical markers: readable
/// axes with round ticks, a legend, and tooltips on markers and points.
#[component]
pub fn LineChart(
    /// Heading, also the accessible name.
    title: String,
    /// Unit of the y values.
    y_unit: String,
    /// The lines.
    lines: Vec<Line>,
    /// Vertical markers.
    #[prop(optional)]
    marks: Vec<Mark>,
    /// Legend entries for the markers: (colour, dashed, name).
    #[prop(optional)]
    mark_legend: Vec<(&'static str, bool, &'static str)>,
    /// How an x value reads on the axis and in tooltips.
    x_label: fn(f64) -> String,
    /// Draw the diagonal y = x (predicted vs actual).
    #[prop(optional)]
    diagonal: bool,
    /// Span the whole row of a chart grid.
    #[prop(optional)]
    wide: bool,
    /// Test hook.
    #[prop(optional)]
    testid: &'static str,
) -> impl IntoView {
    let figure = NodeRef::<leptos::html::Figure>::new();
    let width = measured(figure, testid, if wide { 1100.0 } else { W });
    let legend = lines
        .iter()
        .map(|l| view! { <span class="legend-item"><span class="swatch" style=format!("background:{}", l.colour)></span>{l.name.clone()}</span> }.into_any())
        .chain(mark_legend.iter().map(|(colour, dashed, name)| {
            let style = format!("border-left:2px {} {colour}", if *dashed { "dashed" } else { "solid" });
            view! { <span class="legend-item"><span class="mark-swatch" style=style></span>{*name}</span> }.into_any()
        }))
        .collect::<Vec<_>>();
    let caption = title.clone();
    let draw = move |w: f64| line_svg(&title, &y_unit, &lines, &marks, x_label, diagonal, w);
    view! {
        <figure class=if wide { "chart wide" } else { "chart" } data-testid=testid node_ref=figure>
            <figcaption>{caption} <span class="legend">{legend}</span></figcaption>
            {move || draw(width.get())}
        </figure>
    }
}

/// A [`LineChart`]'s drawing, `w` CSS pixels wide.
fn line_svg(
    title: &str,
    y_unit: &str,
    lines: &[Line],
    marks: &[Mark],
    x_label: fn(f64) -> String,
    diagonal: bool,
    w: f64,
) -> impl IntoView {
    let title = title.to_owned();
    let y_unit = y_unit.to_owned();
    let xs = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.0))
        .chain(marks.iter().map(|m| m.x));
    let (mut x0, mut x1) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
        (a.min(x), b.max(x))
    });
    if !x0.is_finite() {
        (x0, x1) = (0.0, 1.0);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    let mut y1 = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .fold(0.0f64, f64::max)
        .max(f64::EPSILON);
    if diagonal {
        y1 = y1.max(x1);
        x0 = 0.0;
        x1 = y1;
    }
    let y_ticks = ticks(0.0, y1, 4);
    let step = y_ticks.get(1).copied().unwrap_or(1.0) - y_ticks.first().copied().unwrap_or(0.0);
    let y1 = y_ticks.last().copied().unwrap_or(y1).max(y1);
    let sx = move |x: f64| LEFT + (x - x0) / (x1 - x0) * (w - LEFT - RIGHT);
    let sy = move |y: f64| H - BOTTOM - y / y1 * (H - TOP - BOTTOM);
    let grid = y_ticks
        .iter()
        .map(|v| {
            let y = sy(*v);
            view! {
                <line x1=LEFT y1=y x2=w - RIGHT y2=y class="grid-line" />
                <text x=LEFT - 4.0 y=y + 4.0 text-anchor="end" class="axis">{tick_label(*v, step)}</text>
            }
        })
        .collect::<Vec<_>>();
    // As many x labels as fit side by side, each as wide as the longest
    // (about 6.5 px a character at 11 px) with a gap between them.
    let label_px = [x0, x1]
        .iter()
        .map(|x| x_label(*x).chars().count())
        .max()
        .unwrap_or(8) as f64
        * 6.5;
    let gap = 16.0;
    let ticks_x = ((((w - LEFT - RIGHT) + gap) / (label_px + gap)).floor() as usize)
        .saturating_sub(1)
        .clamp(1, 8);
    let x_ticks = if diagonal {
        y_ticks.clone()
    } else {
        (0..=ticks_x)
            .map(|i| x0 + (x1 - x0) * i as f64 / ticks_x as f64)
            .collect()
    };
    let x_axis = x_ticks
        .iter()
        .map(|v| {
            let anchor = if *v <= x0 {
                "start"
            } else if *v >= x1 {
                "end"
            } else {
                "middle"
            };
            view! { <text x=sx(*v) y=H - 10.0 text-anchor=anchor class="axis">{x_label(*v)}</text> }
        })
        .collect::<Vec<_>>();
    let marks_view = marks
        .iter()
        .map(|m| {
            let x = sx(m.x);
            let dash = if m.dashed { "4 3" } else { "none" };
            view! {
                <line x1=x y1=TOP x2=x y2=H - BOTTOM stroke=m.colour stroke-width="2" stroke-dasharray=dash>
                    <title>{format!("{}: {}", x_label(m.x), m.text)}</title>
                </line>
            }
        })
        .collect::<Vec<_>>();
    let lines_view = lines
        .iter()
        .map(|l| {
            if l.dots {
                l.points
                    .iter()
                    .map(|(x, y)| {
                        let tip = format!("{}: {} → {y:.2}", l.name, x_label(*x));
                        view! { <circle cx=sx(*x) cy=sy(*y) r="2.5" fill=l.colour fill-opacity="0.6"><title>{tip}</title></circle> }
                        .into_any()
                    })
                    .collect::<Vec<_>>()
            } else {
                let d: String = l
                    .points
                    .iter()
                    .enumerate()
                    .map(|(i, (x, y))| format!("{}{:.1},{:.1}", if i == 0 { "M" } else { "L" }, sx(*x), sy(*y)))
                    .collect();
                vec![view! { <path d=d fill="none" stroke=l.colour stroke-width="2"><title>{l.name.clone()}</title></path> }.into_any()]
            }
        })
        .collect::<Vec<_>>();
    let diagonal_view = diagonal.then(|| {
        view! { <line x1=sx(0.0) y1=sy(0.0) x2=sx(y1) y2=sy(y1) class="grid-line diagonal"><title>"predicted = actual"</title></line> }
    });
    view! {
            <svg viewBox=format!("0 0 {w} {H}") role="img" aria-label=title>
                {grid}
                <line x1=LEFT y1=H - BOTTOM x2=w - RIGHT y2=H - BOTTOM class="axis-line" />
                <line x1=LEFT y1=TOP x2=LEFT y2=H - BOTTOM class="axis-line" />
                <text x=8 y=TOP + 4.0 class="axis">{y_unit}</text>
                {diagonal_view}
                {marks_view}
                {lines_view}
                {x_axis}
            </svg>
    }
}
