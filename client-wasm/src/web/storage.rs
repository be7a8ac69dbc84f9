//! Where the app keeps launches and sessions: `"session"` (the default: per tab),
//! `"local"`, `"memory"`, or any object with `getItem`/`setItem`/`removeItem`.

use std::rc::Rc;

use js_sys::{Function, Reflect};
use wasm_bindgen::{JsCast, JsValue};

use crate::core::{MemoryStorage, Storage};

thread_local! {
    /// One memory store per page, so `ready()` finds what `authorize()` kept.
    static MEMORY: Rc<MemoryStorage> = Rc::new(MemoryStorage::default());
}

#[derive(Clone)]
pub enum WebStorage {
    Browser(web_sys::Storage),
    Memory(Rc<MemoryStorage>),
    /// An app's own store (`StorageLike`).
    Custom(JsValue),
}

impl WebStorage {
    pub fn from_option(option: &JsValue) -> Result<Self, String> {
        let window =
            || web_sys::window().ok_or("no window: use storage: \"memory\" or your own store outside a page");
        if option.is_undefined() || option.is_null() {
            return Self::from_name("session", window);
        }
        if let Some(name) = option.as_string() {
            return Self::from_name(&name, window);
        }
        let has = |method: &str| Reflect::get(option, &method.into()).is_ok_and(|f| f.is_function());
        if has("getItem") && has("setItem") && has("removeItem") {
            return Ok(WebStorage::Custom(option.clone()));
        }
        Err("storage must be \"session\", \"local\", \"memory\" or an object with getItem, setItem and removeItem".into())
    }

    fn from_name(
        name: &str,
        window: impl Fn() -> Result<web_sys::Window, &'static str>,
    ) -> Result<Self, String> {
        let browser = |storage: Result<Option<web_sys::Storage>, JsValue>| {
            storage
                .ok()
                .flatten()
                .map(WebStorage::Browser)
                .ok_or_else(|| format!("{name}Storage is not available"))
        };
        match name {
            "session" => browser(window()?.session_storage()),
            "local" => browser(window()?.local_storage()),
            "memory" => Ok(WebStorage::Memory(MEMORY.with(Rc::clone))),
            other => Err(format!("unknown storage \"{other}\"")),
        }
    }

    fn call(store: &JsValue, method: &str, args: &[&str]) -> Result<JsValue, String> {
        let function: Function = Reflect::get(store, &method.into())
            .map_err(|_| method.to_owned())?
            .unchecked_into();
        let args: js_sys::Array = args.iter().map(|a| JsValue::from_str(a)).collect();
        function
            .apply(store, &args)
            .map_err(|e| format!("{method} failed: {e:?}"))
    }
}

impl Storage for WebStorage {
    fn get(&self, key: &str) -> Option<String> {
        match self {
            WebStorage::Browser(storage) => storage.get_item(key).ok().flatten(),
            WebStorage::Memory(memory) => memory.get(key),
            WebStorage::Custom(store) => Self::call(store, "getItem", &[key]).ok()?.as_string(),
        }
    }

    fn set(&self, key: &str, value: &str) -> Result<(), String> {
        match self {
            WebStorage::Browser(storage) => storage.set_item(key, value).map_err(|e| format!("{e:?}")),
            WebStorage::Memory(memory) => memory.set(key, value),
            WebStorage::Custom(store) => Self::call(store, "setItem", &[key, value]).map(|_| ()),
        }
    }

    fn remove(&self, key: &str) {
        match self {
            WebStorage::Browser(storage) => {
                let _ = storage.remove_item(key);
            }
            WebStorage::Memory(memory) => memory.remove(key),
            WebStorage::Custom(store) => {
                let _ = Self::call(store, "removeItem", &[key]);
            }
        }
    }
}
