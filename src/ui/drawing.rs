//! The app's panels are built one per task once the log has opened: the
//! shown view's first, then the others', each after the browser had a turn.
//! Built all at once they made one task of 120–140 ms (a trace of a fresh
//! load); a panel at a time, no one task builds more than one panel, and
//! hidden views are ready a moment later without a page of their own.
//!
//! Each [`Panel`] puts itself on the list as the markup is set up, so the
//! order follows the markup: nothing counts the panels by hand.

use super::browser::yield_now;
use super::route::View;
use leptos::prelude::*;
use std::collections::BTreeSet;

/// Which panels may be drawn so far, and in which order.
#[derive(Clone, Copy)]
pub struct Drawing {
    /// How many panels of the order have been let through.
    drawn: RwSignal<usize>,
    /// The view the page opened on: its panels come first.
    first: View,
    /// Every panel of the page, in drawing order: (rank of its view, nth).
    panels: StoredValue<BTreeSet<(usize, usize)>>,
    /// The run is over: a panel set up later is drawn at once.
    finished: StoredValue<bool>,
}

impl Drawing {
    /// The order for a page that opened on `first`.
    pub fn new(first: View) -> Drawing {
        Drawing {
            drawn: RwSignal::new(0),
            first,
            panels: StoredValue::new(BTreeSet::new()),
            finished: StoredValue::new(false),
        }
    }

    /// The views in drawing order: the first view, then the others as
    /// the navigation lists them.
    fn views(self) -> impl Iterator<Item = View> {
        let first = self.first;
        std::iter::once(first).chain(View::ALL.into_iter().filter(move |v| *v != first))
    }

    /// Where `view`'s panels stand in the order.
    fn key(self, view: View, nth: usize) -> (usize, usize) {
        let rank = self
            .views()
            .position(|v| v == view)
            .unwrap_or(View::ALL.len());
        (rank, nth)
    }

    /// Draw every panel on the list, one per task. Called as the markup
    /// holding the panels is let in: its first turn comes after that markup
    /// was set up (the reactive system's microtasks run before it).
    pub async fn run(self) {
        let performance = web_sys::window().and_then(|w| w.performance());
        loop {
            yield_now().await;
            let drawn = self.drawn.get_untracked();
            if let (Some(p), Some(was)) = (&performance, drawn.checked_sub(1)) {
                // The panel just drawn, in the browser's timeline (user
                // timing: `make bench` and a trace name the slow ones).
                let _ = p.measure_with_start_mark(&self.name(was), "retrace panel");
            }
            if drawn >= self.panels.with_value(BTreeSet::len) {
                break;
            }
            if let Some(p) = &performance {
                let _ = p.mark("retrace panel");
            }
            self.drawn.set(drawn + 1);
        }
        // The measures stay (the timeline's record); the mark that started
        // them is let go.
        if let Some(p) = &performance {
            p.clear_marks_with_mark_name("retrace panel");
        }
        self.finished.set_value(true);
    }

    /// The `i`-th panel of the order, named as the user finds it.
    fn name(self, i: usize) -> String {
        let (rank, nth) = self
            .panels
            .with_value(|p| p.iter().nth(i).copied())
            .unwrap_or_default();
        let view = self.views().nth(rank).unwrap_or(self.first);
        format!("retrace panel {} {nth}", view.title())
    }

    /// Put the `nth` panel of `view` on the list; whether it may be drawn
    /// (once true, stays so).
    fn enter(self, view: View, nth: usize) -> Memo<bool> {
        if self.finished.get_value() {
            return Memo::new(|_| true);
        }
        let key = self.key(view, nth);
        self.panels.update_value(|p| {
            p.insert(key);
        });
        let (drawn, panels) = (self.drawn, self.panels);
        Memo::new(move |was: Option<&bool>| {
            let drawn = drawn.get();
            was == Some(&true)
                || (drawn > 0 && panels.with_value(|p| p.range(..key).count()) < drawn)
        })
    }
}

/// The `nth` panel of `view`, drawn in its turn.
#[component]
pub fn Panel(view: View, nth: usize, children: ChildrenFn) -> impl IntoView {
    let ready = expect_context::<Drawing>().enter(view, nth);
    view! { <Show when=move || ready.get()>{children()}</Show> }
}
