//! Client errors as JavaScript `Error`s: `name` is `SmartError`, `code` is stable
//! (`state_mismatch`, `access_denied`, `http_403`, `session_expired`…), and the
//! server's OAuth error (`oauth`) or response body (`body`, e.g. an
//! OperationOutcome) and HTTP `status` are attached.

use js_sys::Reflect;
use smart_protocol::OAuthError;
use wasm_bindgen::{JsCast, JsValue};

use super::platform::JsJson;
use crate::engine::{Error, Json};

/// The OAuth error body as the server sent it.
fn oauth_js(error: &OAuthError) -> JsValue {
    let text = |s: &str| Some(JsJson::text(s));
    JsJson::object(vec![
        ("error", text(error.error.as_str())),
        (
            "error_description",
            error.error_description.as_deref().and_then(text),
        ),
        ("error_uri", error.error_uri.as_deref().and_then(text)),
    ])
    .0
}

pub(super) fn to_js_error(error: Error<JsJson>) -> JsValue {
    let js = js_sys::Error::new(&error.to_string());
    js.set_name("SmartError");
    let set = |key: &str, value: JsValue| {
        let _ = Reflect::set(&js, &key.into(), &value);
    };
    set("code", error.code_text().as_ref().into());
    set("status", error.status.map_or(JsValue::UNDEFINED, |s| s.into()));
    set("oauth", error.oauth.as_ref().map_or(JsValue::UNDEFINED, oauth_js));
    set(
        "body",
        error.into_details().body.map_or(JsValue::UNDEFINED, |b| b.0),
    );
    js.into()
}

/// What a JavaScript exception says: an Error's message, or a thrown string.
pub(super) fn message_of(exception: JsValue) -> String {
    match exception.dyn_ref::<js_sys::Error>() {
        Some(error) => error.message().into(),
        None => exception
            .as_string()
            .unwrap_or_else(|| "an exception that is not an Error".to_owned()),
    }
}

/// An `invalid_options` error for bad arguments from JavaScript.
pub(super) fn invalid_options(message: impl std::fmt::Display) -> JsValue {
    to_js_error(Error::invalid_options(message))
}
