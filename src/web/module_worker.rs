//! Starting a worker of this app's own module: the page starts the
//! engine's worker, and the engine's worker starts its training and checks'
//! workers — all three the same module, told apart by what they are sent.

use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Worker, WorkerOptions, WorkerType};

/// The worker module's loader. In a worker, the module that runs it (a
/// nested worker is the same module); on the page, the one
/// `worker/manifest.json` names, which the build writes.
pub async fn url() -> Result<String, String> {
    let global = js_sys::global();
    if let Some(scope) = global.dyn_ref::<web_sys::DedicatedWorkerGlobalScope>() {
        return Ok(scope.location().href());
    }
    let failed = |e: String| format!("the worker could not be loaded: {e}");
    let window = web_sys::window().ok_or_else(|| failed("no window".into()))?;
    let response: web_sys::Response = JsFuture::from(window.fetch_with_str("worker/manifest.json"))
        .await
        .map_err(|_| failed("worker/manifest.json could not be loaded".into()))?
        .unchecked_into();
    if !response.ok() {
        return Err(failed(format!(
            "worker/manifest.json answered {}",
            response.status()
        )));
    }
    let json = JsFuture::from(response.json().map_err(|e| format!("{e:?}"))?)
        .await
        .map_err(|e| format!("{e:?}"))?;
    let loader = js_sys::Reflect::get(&json, &"loader".into())
        .ok()
        .and_then(|v| v.as_string())
        .ok_or("worker/manifest.json names no loader")?;
    Ok(format!("worker/{loader}"))
}

/// Start the module at `url` as a module worker; `what` names it in the
/// error ("the engine's worker").
pub fn start(url: &str, what: &str) -> Result<Worker, String> {
    let options = WorkerOptions::new();
    options.set_type(WorkerType::Module);
    Worker::new_with_options(url, &options).map_err(|e| format!("{what} did not start: {e:?}"))
}
