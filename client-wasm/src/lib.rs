//! `smart-fhir-client`: SMART App Launch 2.x for web apps, as a WebAssembly npm
//! package.
//!
//! - [`core`]: the protocol (discovery, launch, callback, session, FHIR requests),
//!   plain Rust and natively tested;
//! - `web` (wasm32 only): the `#[wasm_bindgen]` facade JavaScript imports.

pub mod core;
#[cfg(target_arch = "wasm32")]
pub mod web;
