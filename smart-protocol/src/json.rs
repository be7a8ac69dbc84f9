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

    /// An optional string member.
    fn string(&self, name: &str) -> Result<Option<String>, DecodeError> {
        self.get(name)
            .map(|v| v.as_string().ok_or_else(|| DecodeError::member(name, "a string")))
            .transpose()
    }

    /// A string member that must be there.
    fn required(&self, name: &str) -> Result<String, DecodeError> {
        self.string(name)?
            .ok_or_else(|| DecodeError(format!("`{name}` is missing")))
    }

    /// An optional non-negative integer member (a lifetime, a time).
    fn unsigned(&self, name: &str) -> Result<Option<u64>, DecodeError> {
        self.get(name)
            .map(|v| {
                v.as_number()
                    .filter(|n| *n >= 0.0 && n.fract() == 0.0 && *n <= MAX_SAFE_INTEGER)
                    .map(|n| n as u64)
                    .ok_or_else(|| DecodeError::member(name, "a non-negative integer"))
            })
            .transpose()
    }

    fn boolean(&self, name: &str) -> Result<Option<bool>, DecodeError> {
        self.get(name)
            .map(|v| {
                v.as_boolean()
                    .ok_or_else(|| DecodeError::member(name, "true or false"))
            })
            .transpose()
    }

    /// An optional array member, each item decoded by `item`; absent is empty.
    fn list<T>(
        &self,
        name: &str,
        item: impl Fn(&Self) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        let Some(value) = self.get(name) else {
            return Ok(Vec::new());
        };
        let items = value
            .items()
            .ok_or_else(|| DecodeError::member(name, "an array"))?;
        items.iter().map(item).collect()
    }

    /// An optional array of strings; absent is empty.
    fn strings(&self, name: &str) -> Result<Vec<String>, DecodeError> {
        self.list(name, |v| {
            v.as_string()
                .ok_or_else(|| DecodeError::member(name, "an array of strings"))
        })
    }
}

/// 2^53 - 1: larger numbers are not exact in JSON parsed by JavaScript.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// Why a message could not be decoded: which member, and what it should have been.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl DecodeError {
    fn member(name: &str, expected: &str) -> Self {
        DecodeError(format!("`{name}` must be {expected}"))
    }

    /// The message is not a JSON object.
    pub fn not_an_object() -> Self {
        DecodeError("the message is not a JSON object".to_owned())
    }
}

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
