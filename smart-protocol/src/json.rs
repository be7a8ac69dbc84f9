//! Reading JSON without choosing a parser.
//!
//! The messages a client receives (token response, smart-configuration, OAuth
//! errors) decode themselves from any [`JsonValue`]: a `serde_json::Value` on the
//! server and in native code, a JavaScript object made by the browser's own
//! `JSON.parse` in the wasm client. The npm package so carries no JSON parser: in
//! wasm, serde_json with serde's derived decoders was half of the package.
//!
//! Each type still implements serde's `Deserialize` (through `from_json`), so
//! native code keeps `reqwest`'s `.json()` and there is one decoder per message.

use std::cell::Cell;
use std::fmt;

/// A parsed JSON value, read-only.
pub trait JsonValue: Sized {
    /// A member of an object; `None` if it is absent or `null`, or this is no object.
    fn get(&self, name: &str) -> Option<Self>;
    fn as_string(&self) -> Option<String>;
    fn as_number(&self) -> Option<f64>;
    fn as_boolean(&self) -> Option<bool>;
    /// The items of an array.
    fn items(&self) -> Option<Vec<Self>>;
    /// An object (not an array, not `null`).
    fn is_object(&self) -> bool;

    /// A string member, if there is one.
    fn member_string(&self, name: &str) -> Option<String> {
        self.get(name)?.as_string()
    }
}

/// Reads the members of one JSON object for a decoder written as a plain struct
/// literal. A missing or mistyped member is remembered (the first one) instead of
/// returned at once, and [`Members::finish`] reports it: in wasm, an early return
/// after every member made each decoder several times bigger, as every exit drops
/// each string read so far.
pub struct Members<'a, J> {
    json: &'a J,
    problem: Cell<Option<DecodeError>>,
}

impl<J> fmt::Debug for Members<'_, J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Members").finish_non_exhaustive()
    }
}

impl<'a, J: JsonValue> Members<'a, J> {
    pub fn of(json: &'a J) -> Self {
        let problem = (!json.is_object()).then(|| DecodeError("the message is not a JSON object".to_owned()));
        Members {
            json,
            problem: Cell::new(problem),
        }
    }

    fn fail(&self, problem: DecodeError) {
        let first = self.problem.take().unwrap_or(problem);
        self.problem.set(Some(first));
    }

    /// A member converted by `convert`, which gives `None` for a value that is not `expected`.
    fn typed<T>(&self, name: &str, expected: &str, convert: impl FnOnce(&J) -> Option<T>) -> Option<T> {
        let value = self.json.get(name)?;
        let converted = convert(&value);
        if converted.is_none() {
            self.fail(DecodeError(format!("`{name}` must be {expected}")));
        }
        converted
    }

    pub fn string(&self, name: &str) -> Option<String> {
        self.typed(name, "a string", J::as_string)
    }

    /// A string member that must be there.
    pub fn required(&self, name: &str) -> String {
        let value = self.string(name);
        if value.is_none() {
            self.fail(DecodeError(format!("`{name}` is missing")));
        }
        value.unwrap_or_default()
    }

    /// A non-negative integer (a lifetime, a time).
    pub fn unsigned(&self, name: &str) -> Option<u64> {
        self.typed(name, "a non-negative integer", |v| {
            v.as_number()
                .filter(|n| *n >= 0.0 && n.fract() == 0.0 && *n <= MAX_SAFE_INTEGER)
                .map(|n| n as u64)
        })
    }

    pub fn boolean(&self, name: &str) -> Option<bool> {
        self.typed(name, "true or false", J::as_boolean)
    }

    /// A member decoded by `decode` (a nested object).
    pub fn decoded<T>(&self, name: &str, decode: impl FnOnce(&J) -> Result<T, DecodeError>) -> Option<T> {
        decode(&self.json.get(name)?).map_err(|e| self.fail(e)).ok()
    }

    /// An array, each item decoded by `item`; absent is empty.
    pub fn list<T>(&self, name: &str, item: impl Fn(&J) -> Result<T, DecodeError>) -> Vec<T> {
        let items = self.typed(name, "an array", J::items).unwrap_or_default();
        items
            .iter()
            .filter_map(|i| item(i).map_err(|e| self.fail(e)).ok())
            .collect()
    }

    /// An array of strings; absent is empty.
    pub fn strings(&self, name: &str) -> Vec<String> {
        self.typed(name, "an array of strings", |v| {
            v.items()?.iter().map(J::as_string).collect()
        })
        .unwrap_or_default()
    }

    /// The decoded value, or the first problem met while reading it.
    pub fn finish<T>(&self, value: T) -> Result<T, DecodeError> {
        match self.problem.take() {
            Some(problem) => Err(problem),
            None => Ok(value),
        }
    }
}

/// 2^53 - 1: larger numbers are not exact in JSON parsed by JavaScript.
pub const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// Why a message could not be decoded: which member, and what it should have been.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DecodeError {}

impl JsonValue for serde_json::Value {
    fn get(&self, name: &str) -> Option<Self> {
        self.as_object()?.get(name).filter(|v| !v.is_null()).cloned()
    }

    fn as_string(&self) -> Option<String> {
        self.as_str().map(str::to_owned)
    }

    fn as_number(&self) -> Option<f64> {
        self.as_f64()
    }

    fn as_boolean(&self) -> Option<bool> {
        self.as_bool()
    }

    fn items(&self) -> Option<Vec<Self>> {
        self.as_array().cloned()
    }

    fn is_object(&self) -> bool {
        self.is_object()
    }
}

/// serde's `Deserialize` through the type's `from_json`.
macro_rules! deserialize_with_from_json {
    ($($name:ty),* $(,)?) => {$(
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = <serde_json::Value as serde::Deserialize>::deserialize(deserializer)?;
                Self::from_json(&value).map_err(serde::de::Error::custom)
            }
        }
    )*};
}
