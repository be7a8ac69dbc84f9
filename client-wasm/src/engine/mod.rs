//! The SMART App Launch client as plain Rust: no browser types, generic over a
//! [`Platform`](platform::Platform) and a [`Storage`](platform::Storage), so every
//! flow is tested natively against an in-process ccri-mock. The `web` module only
//! adapts it to JavaScript.

pub mod backend;
pub mod callback;
pub mod discovery;
pub mod error;
pub mod fhir;
pub mod launch;
pub mod platform;
pub mod session;
pub mod token;

pub use error::Error;
pub use platform::{
    HttpRequest, HttpResponse, Json, JsonValue, MemoryStorage, Method, Platform, Response, Signal, Storage,
};
pub use session::{SessionState, SmartClient};
