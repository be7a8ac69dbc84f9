//! The built-in data set: a small, internally consistent UK general practice.
//! `Patient/1` is CCRI's example patient, Miss Bernie Kanfeld.

use serde_json::Value;

/// The resources of the built-in data set.
pub fn resources() -> Vec<Value> {
    let bundle: Value =
        serde_json::from_str(include_str!("uk.json")).expect("the built-in seed is valid JSON");
    match bundle {
        Value::Object(mut bundle) => match bundle.remove("entry") {
            Some(Value::Array(entries)) => entries
                .into_iter()
                .filter_map(|mut entry| entry.get_mut("resource").map(Value::take))
                .collect(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}
