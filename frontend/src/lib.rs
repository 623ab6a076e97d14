#![recursion_limit = "256"]
//! The browser half of AgentKey: hydrates the server-rendered Leptos page.

/// Entry point called by the generated JS glue once the WASM module loads.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    app::install_panic_notice();
    leptos::mount::hydrate_lazy(app::App);
}
