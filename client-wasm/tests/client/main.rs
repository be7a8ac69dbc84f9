//! smart-fhir-client's tests, in one binary per target: natively, every flow
//! against an in-process ccri-mock (`support`); in headless Chromium, the
//! JavaScript API against the mock `make test` starts (`browser`).

#[cfg(not(target_arch = "wasm32"))]
mod support;

#[cfg(not(target_arch = "wasm32"))]
mod backend;
#[cfg(target_arch = "wasm32")]
mod browser;
#[cfg(not(target_arch = "wasm32"))]
mod flows;

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);
