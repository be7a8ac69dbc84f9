//! smart-protocol's tests, in one binary. `messages` and `scopes` also run in
//! headless Chromium (`wasm-pack test --headless --chrome`), the browser the
//! client ships to; the property tests run natively.

mod messages;
#[cfg(not(target_arch = "wasm32"))]
mod properties;
mod scopes;

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);
