//! Where the app keeps launches and sessions: `"session"` (the default: per tab),
//! `"local"`, `"memory"`, or any object with `getItem`/`setItem`/`removeItem`.
//!
//! All four are the same thing to the client, a Web Storage-shaped JS object
//! (`"memory"` is a page-wide `Map` behind that shape, in helpers.js), so there is
//! one code path.

use js_sys::{Function, Reflect};
use wasm_bindgen::prelude::*;

use super::error::message_of;
use crate::engine::Storage;

#[wasm_bindgen(module = "/src/web/helpers.js")]
extern "C" {
    #[wasm_bindgen(thread_local_v2, js_name = memoryStorage)]
    static MEMORY: JsValue;
}

/// The chosen store, and where this tab's own pointer goes: `sessionStorage`
/// when the page has one, else the chosen store.
#[derive(Clone)]
pub(super) struct WebStorage {
    store: JsValue,
    tab: JsValue,
}

impl WebStorage {
    pub(super) fn from_option(option: &JsValue) -> Result<Self, String> {
        let store = if option.is_undefined() || option.is_null() {
            Self::named("session")?
        } else if let Some(name) = option.as_string() {
            Self::named(&name)?
        } else {
            option.clone()
        };
        let has = |method: &str| Reflect::get(&store, &method.into()).is_ok_and(|f| f.is_function());
        if has("getItem") && has("setItem") && has("removeItem") {
            let tab = Self::named("session").unwrap_or_else(|_| store.clone());
            Ok(WebStorage { store, tab })
        } else {
            Err("storage must be \"session\", \"local\", \"memory\" or an object with getItem, setItem and removeItem".into())
        }
    }

    fn named(name: &str) -> Result<JsValue, String> {
        if name == "memory" {
            return Ok(MEMORY.with(JsValue::clone));
        }
        if name != "session" && name != "local" {
            return Err(format!("unknown storage \"{name}\""));
        }
        // `sessionStorage` throws where storage is blocked (sandboxed frames, some
        // privacy modes); outside a page there is no such global.
        let store = Reflect::get(&js_sys::global(), &format!("{name}Storage").into()).unwrap_or_default();
        if store.is_object() {
            Ok(store)
        } else {
            Err(format!(
                "{name}Storage is not available: use storage: \"memory\" or your own store"
            ))
        }
    }
}

/// `store.method(key[, value])`.
fn call(store: &JsValue, method: &str, key: &str, value: Option<&str>) -> Result<JsValue, String> {
    let function: Function = Reflect::get(store, &method.into())
        .map_err(|_| method.to_owned())?
        .unchecked_into();
    let key = JsValue::from_str(key);
    let result = match value {
        Some(value) => function.call2(store, &key, &value.into()),
        None => function.call1(store, &key),
    };
    result.map_err(|e| format!("{method} failed: {}", message_of(e)))
}

impl Storage for WebStorage {
    fn get(&self, key: &str) -> Option<String> {
        call(&self.store, "getItem", key, None).ok()?.as_string()
    }

    fn set(&self, key: &str, value: &str) -> Result<(), String> {
        call(&self.store, "setItem", key, Some(value)).map(|_| ())
    }

    fn remove(&self, key: &str) {
        let _ = call(&self.store, "removeItem", key, None);
    }

    fn get_tab(&self, key: &str) -> Option<String> {
        call(&self.tab, "getItem", key, None).ok()?.as_string()
    }

    fn set_tab(&self, key: &str, value: &str) -> Result<(), String> {
        call(&self.tab, "setItem", key, Some(value)).map(|_| ())
    }

    fn remove_tab(&self, key: &str) {
        let _ = call(&self.tab, "removeItem", key, None);
    }
}
