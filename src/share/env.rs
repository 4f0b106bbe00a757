//! What the shared log's sync needs of the world besides the network and
//! the store: a clock, a timer, randomness, and a way to run work beside
//! itself. The browser's [`Env`] lives at the edge (`host`); a native test
//! brings its own, with time it moves by hand.

use futures::future::LocalBoxFuture;
use std::rc::Rc;

/// The sync's clock, timers and randomness.
pub trait Env {
    /// A clock that only moves forward, ms (deadlines, pacing).
    fn now_ms(&self) -> f64;
    /// Wall-clock time, ms since the Unix epoch (what a salt is made of).
    fn wall_ms(&self) -> f64;
    /// A fresh random token: unique inbox names and object ids.
    fn random_token(&self) -> String;
    /// A uniform random number in `[0, 1)`.
    fn random(&self) -> f64;
    /// Resolves once `ms` have passed.
    fn sleep(&self, ms: u32) -> LocalBoxFuture<'static, ()>;
    /// Resolves once other work on this thread had a turn.
    fn yield_now(&self) -> LocalBoxFuture<'static, ()>;
    /// Whether the machine believes it is online.
    fn online(&self) -> bool;
    /// Runs `work` to its end beside the caller, whether or not anybody
    /// waits for it (a commit must not stop half way because a connection did).
    fn spawn(&self, work: LocalBoxFuture<'static, ()>);
}

/// A long piece of work on a shared thread that lets the others run every
/// [`Pace::SLICE_MS`]: call [`Pace::step`] once per unit of work.
pub struct Pace {
    env: Rc<dyn Env>,
    since: f64,
    steps: u32,
    every: u32,
}

impl Pace {
    /// The longest the work holds the thread before it yields, ms.
    pub const SLICE_MS: f64 = 40.0;

    /// Counting from now.
    pub fn new(env: Rc<dyn Env>) -> Pace {
        let since = env.now_ms();
        Pace {
            env,
            since,
            steps: 0,
            every: 64,
        }
    }

    /// One unit done: whether the slice is used up (the clock is read every
    /// 64 units). Then do what must happen before others run, and
    /// [`Pace::give_way`].
    pub fn due(&mut self) -> bool {
        self.steps = self.steps.wrapping_add(1);
        self.steps.is_multiple_of(self.every) && self.env.now_ms() - self.since >= Self::SLICE_MS
    }

    /// Let the others run, then count a new slice.
    pub async fn give_way(&mut self) {
        self.env.yield_now().await;
        self.since = self.env.now_ms();
    }

    /// One unit done: yield if the slice is used up.
    pub async fn step(&mut self) {
        if self.due() {
            self.give_way().await;
        }
    }
}

/// A clock moved by hand (or by a fixed step at every reading) that counts
/// the yields, for unit tests of what reads an [`Env`].
#[cfg(test)]
pub(crate) mod testing {
    use super::Env;
    use futures::future::LocalBoxFuture;
    use std::cell::Cell;
    use std::rc::Rc;

    #[derive(Default)]
    pub struct Manual {
        pub now: Cell<f64>,
        /// Added to the clock at every reading.
        pub step: Cell<f64>,
        pub yields: Rc<Cell<u32>>,
    }

    impl Env for Manual {
        fn now_ms(&self) -> f64 {
            let t = self.now.get();
            self.now.set(t + self.step.get());
            t
        }
        fn wall_ms(&self) -> f64 {
            self.now.get()
        }
        fn random_token(&self) -> String {
            "token".into()
        }
        fn random(&self) -> f64 {
            0.5
        }
        fn sleep(&self, _ms: u32) -> LocalBoxFuture<'static, ()> {
            Box::pin(async {})
        }
        fn yield_now(&self) -> LocalBoxFuture<'static, ()> {
            let yields = self.yields.clone();
            Box::pin(async move { yields.set(yields.get() + 1) })
        }
        fn online(&self) -> bool {
            true
        }
        fn spawn(&self, work: LocalBoxFuture<'static, ()>) {
            futures::executor::block_on(work)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::Manual;
    use super::*;

    #[test]
    fn pace_yields_only_once_a_slice_is_used_up_and_then_counts_afresh() {
        let env = Rc::new(Manual::default());
        env.now.set(1_000.0);
        let yields = env.yields.clone();
        let mut pace = Pace::new(env.clone());
        futures::executor::block_on(async {
            // A slice's worth of units in no time: nobody else needs a turn.
            for _ in 0..1_000 {
                pace.step().await;
            }
            assert_eq!(yields.get(), 0);
            // The clock is read every 64 units: the slice ends at the next.
            env.now.set(1_000.0 + Pace::SLICE_MS);
            for _ in 0..63 {
                pace.step().await;
            }
            assert_eq!(yields.get(), 1, "one yield once the slice is used up");
            // A new slice counts from the yield: no second yield at once.
            for _ in 0..640 {
                pace.step().await;
            }
            assert_eq!(yields.get(), 1);
            env.now.set(1_000.0 + 2.0 * Pace::SLICE_MS);
            for _ in 0..64 {
                pace.step().await;
            }
            assert_eq!(yields.get(), 2);
        });
    }
}
