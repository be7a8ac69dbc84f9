//! Reading the plain option objects JavaScript passes in, with an
//! `invalid_options` error naming the member that is wrong.

use js_sys::{Array, Reflect};
use wasm_bindgen::{JsCast, JsValue};

use super::error::invalid_options;

pub(super) struct Options<'a>(pub &'a JsValue);

impl Options<'_> {
    fn get(&self, name: &str) -> JsValue {
        if self.0.is_object() {
            Reflect::get(self.0, &name.into()).unwrap_or(JsValue::UNDEFINED)
        } else {
            JsValue::UNDEFINED
        }
    }

    pub(super) fn raw(&self, name: &str) -> JsValue {
        self.get(name)
    }

    /// The member, unless it is absent, `undefined` or `null`.
    fn present(&self, name: &str) -> Option<JsValue> {
        let value = self.get(name);
        (!value.is_undefined() && !value.is_null()).then_some(value)
    }

    pub(super) fn string(&self, name: &str) -> Result<Option<String>, JsValue> {
        let Some(value) = self.present(name) else {
            return Ok(None);
        };
        value
            .as_string()
            .map(Some)
            .ok_or_else(|| invalid_options(format!("{name} must be a string")))
    }

    pub(super) fn required(&self, name: &str) -> Result<String, JsValue> {
        self.string(name)?
            .ok_or_else(|| invalid_options(format!("{name} is required")))
    }

    pub(super) fn boolean(&self, name: &str) -> Result<bool, JsValue> {
        let Some(value) = self.present(name) else {
            return Ok(false);
        };
        value
            .as_bool()
            .ok_or_else(|| invalid_options(format!("{name} must be true or false")))
    }

    /// A whole number of seconds, say.
    pub(super) fn unsigned(&self, name: &str) -> Result<Option<u64>, JsValue> {
        let Some(value) = self.present(name) else {
            return Ok(None);
        };
        value
            .as_f64()
            .filter(|n| n.fract() == 0.0 && *n >= 0.0 && *n <= u32::MAX as f64)
            .map(|n| Some(n as u64))
            .ok_or_else(|| invalid_options(format!("{name} must be a whole number, 0 or more")))
    }

    pub(super) fn strings(&self, name: &str) -> Result<Option<Vec<String>>, JsValue> {
        let Some(value) = self.present(name) else {
            return Ok(None);
        };
        let array: Array = value
            .dyn_into()
            .map_err(|_| invalid_options(format!("{name} must be an array of strings")))?;
        array
            .iter()
            .map(|item| {
                item.as_string()
                    .ok_or_else(|| invalid_options(format!("{name} must be an array of strings")))
            })
            .collect::<Result<_, _>>()
            .map(Some)
    }
}

/// Query parameters from `{ name: value | value[] }`, numbers and booleans as
/// text; an array repeats the parameter (AND, in a search). `what` names them in
/// errors.
pub(super) fn params_object(params: &JsValue, what: &str) -> Result<Vec<(String, String)>, JsValue> {
    if params.is_undefined() || params.is_null() {
        return Ok(Vec::new());
    }
    if !params.is_object() {
        return Err(invalid_options(format!("{what} must be an object")));
    }
    let text = |name: &str, value: JsValue| {
        value
            .as_string()
            // JavaScript formats the number (Rust's float formatting would cost ~10 KB).
            .or_else(|| {
                value
                    .as_f64()
                    .and_then(|_| js_sys::Number::from(value.clone()).to_string_with_radix(10).ok())
                    .map(String::from)
            })
            .or_else(|| value.as_bool().map(|b| b.to_string()))
            .ok_or_else(|| invalid_options(format!("{what}: {name} must be a string, number or boolean")))
    };
    let mut pairs = Vec::new();
    for entry in js_sys::Object::entries(params.unchecked_ref()).iter() {
        let entry: Array = entry.unchecked_into();
        let name = entry.get(0).as_string().unwrap_or_default();
        let value = entry.get(1);
        if value.is_undefined() {
            continue;
        }
        match value.dyn_into::<Array>() {
            Ok(values) => {
                for value in values.iter() {
                    pairs.push((name.clone(), text(&name, value)?));
                }
            }
            Err(value) => pairs.push((name.clone(), text(&name, value)?)),
        }
    }
    Ok(pairs)
}
