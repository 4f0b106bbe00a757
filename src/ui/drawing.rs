//! The app's panels are built one per task once the log has opened: the
//! shown view's first, then the others', each after the browser had a turn.
//! Built all at once they made one task of 120–140 ms (a trace of a fresh
//! load); a panel at a time, no one task builds more than one panel, and
//! hidden views are ready a moment later without a page of their own.

use super::browser::yield_now;
use super::route::View;
use leptos::prelude::*;

/// Panels per view, in the order they stand on it.
pub const PANELS: [(View, usize); 4] = [
    (View::Live, 6),
    (View::Models, 2),
    (View::Log, 3),
    (View::Settings, 4),
];

/// How many panels may be drawn so far, and in which order the views come.
#[derive(Clone, Copy)]
pub struct Drawing {
    drawn: RwSignal<usize>,
    first: View,
}

impl Drawing {
    /// The order for a page that opened on `first`.
    pub fn new(first: View) -> Drawing {
        Drawing {
            drawn: RwSignal::new(0),
            first,
        }
    }

    /// The place of the `nth` panel of `view` in the drawing order.
    fn slot(self, view: View, nth: usize) -> usize {
        let order =
            std::iter::once(self.first).chain(View::ALL.into_iter().filter(|v| *v != self.first));
        let mut before = 0;
        for v in order {
            if v == view {
                return before + nth;
            }
            before += PANELS.iter().find(|(p, _)| *p == v).map_or(0, |(_, n)| *n);
        }
        before
    }

    /// Draw every panel, one per task.
    pub async fn run(self) {
        let total: usize = PANELS.iter().map(|(_, n)| n).sum();
        for n in 1..=total {
            self.drawn.set(n);
            yield_now().await;
        }
    }

    /// Whether the `nth` panel of `view` may be drawn (once true, stays so).
    pub fn ready(self, view: View, nth: usize) -> Memo<bool> {
        let slot = self.slot(view, nth);
        let drawn = self.drawn;
        Memo::new(move |_| drawn.get() > slot)
    }
}

/// The `nth` panel of `view`, drawn in its turn.
#[component]
pub fn Panel(view: View, nth: usize, children: ChildrenFn) -> impl IntoView {
    let ready = expect_context::<Drawing>().ready(view, nth);
    view! { <Show when=move || ready.get()>{children()}</Show> }
}
