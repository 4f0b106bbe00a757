//! The browser's clock, timers and randomness, as the sync asks for them.

use crate::share::env::Env;
use futures::future::LocalBoxFuture;
use wasm_bindgen::JsCast;

/// The [`Env`] of a browser context (the engine's worker).
pub struct WebEnv {
    /// The context's monotonic clock, looked up once: the sync reads the
    /// clock several times per event it receives, and looking it up on the
    /// global object each time is several calls into JavaScript.
    performance: Option<web_sys::Performance>,
}

impl WebEnv {
    pub fn new() -> WebEnv {
        let performance = js_sys::Reflect::get(&js_sys::global(), &"performance".into())
            .ok()
            .and_then(|p| p.dyn_into::<web_sys::Performance>().ok());
        WebEnv { performance }
    }
}

impl Default for WebEnv {
    fn default() -> Self {
        WebEnv::new()
    }
}

impl Env for WebEnv {
    fn now_ms(&self) -> f64 {
        match &self.performance {
            Some(p) => p.now(),
            None => js_sys::Date::now(),
        }
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
