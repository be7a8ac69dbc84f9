//! `smart-fhir-client`: SMART App Launch 2.x for web apps, as a WebAssembly npm
//! package.
//!
//! - [`engine`]: the protocol (discovery, launch, callback, session, FHIR requests),
//!   plain Rust and natively tested;
//! - `web` (wasm32 only): the `#[wasm_bindgen]` facade JavaScript imports.

pub mod engine;
#[cfg(target_arch = "wasm32")]
pub mod web;

// std's dlmalloc was 7 KB of the package; talc (MIRI-checked, faster in wasm by its
// benchmarks) is under 2 KB. The page is single-threaded (no atomics).
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();
