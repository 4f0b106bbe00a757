//! The browser's clock, timers and randomness, as the sync asks for them.

use crate::share::env::Env;
use futures::future::LocalBoxFuture;

/// The [`Env`] of a browser context (the engine's worker).
pub struct WebEnv;

impl Env for WebEnv {
    fn now_ms(&self) -> f64 {
        crate::web::now()
    }
    fn wall_ms(&self) -> f64 {
        js_sys::Date::now()
    }
    fn random_token(&self) -> String {
        crate::web::random_token()
    }
    fn random(&self) -> f64 {
        js_sys::Math::random()
    }
    fn sleep(&self, ms: u32) -> LocalBoxFuture<'static, ()> {
        Box::pin(crate::web::sleep(ms))
    }
    fn yield_now(&self) -> LocalBoxFuture<'static, ()> {
        Box::pin(crate::web::yield_now())
    }
    fn online(&self) -> bool {
        crate::web::online()
    }
    fn spawn(&self, work: LocalBoxFuture<'static, ()>) {
        wasm_bindgen_futures::spawn_local(work)
    }
}
