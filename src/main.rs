//! Mounts the app.

#[cfg(target_arch = "wasm32")]
fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(retrace::ui::App);
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!(
        "Retrace runs in the browser: `make run` builds it and serves it at http://127.0.0.1:8080"
    );
}
