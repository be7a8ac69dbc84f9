//! Search values, extracted once from each resource version when it is written
//! (FHIR R4 §3.1.1.4: what each parameter type indexes). A search then compares
//! rows, never walks JSON.
//!
//! An [`Entry`] is a plain row — parameter name and a typed value — so a SQL table
//! (type, parameter, value columns, id, version) could hold the same thing.

use std::collections::{BTreeSet, HashMap};
use std::hash::BuildHasher;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use unicode_normalization::UnicodeNormalization;

use super::definitions::{Component, ParamType, R4};
use super::fhirpath::Item;
use super::search::date::{self, Range};
use crate::reference;

/// Index text: most of an index is the same few systems, codes, names and
/// reference types again and again, so each distinct text is stored once
/// ([`Text::new`]) and every row holds a pointer to it — a thin one, 8 bytes, where
/// an `Arc<str>` takes 16: the index is most of the store's memory.
#[derive(Clone, Copy)]
#[allow(
    clippy::borrowed_box,
    reason = "the point: a `&str` is a fat pointer, twice the size"
)]
pub(crate) struct Text(&'static Box<str>);

impl Text {
    /// The shared copy of `text`. A set of our own, not a crate: the store never
    /// forgets a version (history keeps them all), so its texts live as long as
    /// the process and are never freed.
    ///
    /// Every core loading `--data`, and every SQLite read, asks here: the set is
    /// split in shards, each under its own lock, so they rarely wait for each
    /// other (one lock was a fifth of a SQLite search's time), and hashed with
    /// foldhash, not SipHash.
    pub(crate) fn new(text: &str) -> Text {
        type Shard = Mutex<HashMap<&'static str, Text, foldhash::fast::FixedState>>;
        static TEXTS: LazyLock<[Shard; 64]> = LazyLock::new(|| std::array::from_fn(|_| Shard::default()));
        // A hash of its own seed: the maps' own would give a shard's keys equal bits.
        let shard = &TEXTS[(foldhash::fast::FixedState::with_seed(64).hash_one(text) % 64) as usize];
        let mut texts = shard.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(shared) = texts.get(text) {
            return *shared;
        }
        let shared = Text(Box::leak(Box::new(Box::from(text))));
        texts.insert(shared.0, shared);
        shared
    }

    /// The text, which lives as long as the process (see [`Text::new`]).
    pub(crate) fn as_str(&self) -> &'static str {
        self.0
    }
}

impl std::ops::Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        self.0
    }
}

impl std::borrow::Borrow<str> for Text {
    fn borrow(&self) -> &str {
        self.0
    }
}

impl From<&str> for Text {
    fn from(text: &str) -> Text {
        Text::new(text)
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Text) -> bool {
        // Interned: the same text is the same pointer.
        std::ptr::eq(self.0, other.0)
    }
}

impl Eq for Text {}

impl std::hash::Hash for Text {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // As a `str`, so a map keyed by texts can be asked with a `&str`.
        (**self).hash(state)
    }
}

impl PartialOrd for Text {
    fn partial_cmp(&self, other: &Text) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Text {
    fn cmp(&self, other: &Text) -> std::cmp::Ordering {
        (**self).cmp(&**other)
    }
}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        **self == *other
    }
}

impl Serialize for Text {
    fn serialize<S: Serializer>(&self, to: S) -> Result<S::Ok, S::Error> {
        to.serialize_str(self)
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(from: D) -> Result<Text, D::Error> {
        struct Shared;
        impl serde::de::Visitor<'_> for Shared {
            type Value = Text;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("text")
            }
            fn visit_str<E>(self, text: &str) -> Result<Text, E> {
                Ok(Text::new(text))
            }
        }
        from.deserialize_str(Shared)
    }
}

impl std::fmt::Display for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self)
    }
}

impl std::fmt::Debug for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

/// One value of one parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum IndexValue {
    /// `folded` for the default and `:contains` matches, `exact` for `:exact`.
    String {
        folded: Text,
        exact: Text,
    },
    /// A code with its system; `text` (folded display or CodeableConcept.text) for `:text`.
    Token {
        system: Option<Text>,
        code: Option<Text>,
        text: Option<Text>,
    },
    Date(Range),
    Number(f64),
    /// `code` is the UCUM (or other) code, else the unit as written.
    Quantity {
        value: f64,
        system: Option<Text>,
        code: Option<Text>,
    },
    /// A literal reference: `kind`/`id` when it names them, and the text as written.
    Reference {
        kind: Option<Text>,
        id: Option<Text>,
        url: Text,
    },
    /// `Reference.identifier`, for `:identifier`.
    Identifier {
        system: Option<Text>,
        value: Text,
    },
    Uri(Text),
    /// One value of a composite: each component's values, in component order.
    /// Boxed slices, not vectors: a composite's parts hold one or two values, and a
    /// vector's spare capacity would be a third of the index.
    Composite(Box<[Box<[IndexValue]>]>),
}

impl IndexValue {
    /// The `(type, id)` a literal reference names.
    pub(crate) fn target(&self) -> Option<(&str, &str)> {
        match self {
            IndexValue::Reference {
                kind: Some(kind),
                id: Some(id),
                ..
            } => Some((kind, id)),
            _ => None,
        }
    }

    /// The id of the Patient a literal reference names.
    fn patient(&self) -> Option<Text> {
        match self {
            IndexValue::Reference {
                kind: Some(kind),
                id: Some(id),
                ..
            } if **kind == *"Patient" => Some(*id),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    /// The definition's name: a thin pointer, as [`Text`] is.
    pub param: &'static String,
    pub value: IndexValue,
}

/// The rows of one resource version, ordered by parameter, and the patients whose
/// compartments it is in. Cloned with its version, so shared, not copied; kept in
/// the version itself, so a search reaches the rows in one step from it.
#[derive(Debug, Default, Clone)]
pub(crate) struct Index {
    entries: Arc<[Entry]>,
    patients: Arc<[Text]>,
}

impl Index {
    /// Indexes `resource` by every parameter its type has.
    pub(crate) fn of(resource: &Value) -> Index {
        let kind = resource
            .get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let mut entries = Vec::new();
        for param in R4.params(kind) {
            let Some(expression) = &param.expression else {
                continue;
            };
            for item in expression.evaluate(resource, &R4.choices) {
                extract(
                    param.param_type,
                    &param.components,
                    item,
                    resource,
                    &mut |value| {
                        entries.push(Entry {
                            param: &param.name,
                            value,
                        })
                    },
                );
            }
        }
        entries.dedup();
        let mut index = Index {
            entries: entries.into(),
            patients: Arc::default(),
        };
        let id = resource.get("id").and_then(Value::as_str).unwrap_or_default();
        index.patients = index.compartments(kind, id).into_iter().collect();
        index
    }

    /// The rows as bytes, for a store to keep beside the resource: reading them
    /// back is several times faster than extracting them again. The first byte is
    /// [`BYTES_FORMAT`].
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Kept<'a> {
            entries: Vec<(&'a str, &'a IndexValue)>,
            patients: &'a [Text],
        }
        let kept = Kept {
            entries: self
                .entries
                .iter()
                .map(|e| (e.param.as_str(), &e.value))
                .collect(),
            patients: &self.patients,
        };
        postcard::to_extend(&kept, vec![BYTES_FORMAT]).unwrap_or_default()
    }

    /// The index [`Self::to_bytes`] wrote for a `kind`; `None` if it was written in
    /// another format, or names a parameter that is no longer one of `kind`'s
    /// (written by a mock of other definitions): the caller indexes the resource again.
    pub(crate) fn from_bytes(kind: &str, bytes: &[u8]) -> Option<Index> {
        let bytes = bytes.strip_prefix(&[BYTES_FORMAT])?;
        #[derive(Deserialize)]
        struct Kept<'a> {
            #[serde(borrow)]
            entries: Vec<(&'a str, IndexValue)>,
            patients: Vec<Text>,
        }
        let kept: Kept<'_> = postcard::from_bytes(bytes).ok()?;
        let entries = kept
            .entries
            .into_iter()
            .map(|(name, value)| {
                Some(Entry {
                    param: &R4.param(kind, name)?.name,
                    value,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Index {
            entries: entries.into(),
            patients: kept.patients.into(),
        })
    }

    /// The patients whose compartments the resource is in.
    pub(crate) fn patients(&self) -> &[Text] {
        &self.patients
    }

    /// Every patient the resource refers to, through any reference parameter (a
    /// superset of [`Self::patients`], less the Patient itself).
    pub(crate) fn referenced_patients(&self) -> impl Iterator<Item = Text> {
        self.entries.iter().filter_map(|e| e.value.patient())
    }

    /// The `(type, id)` of every literal reference the resource makes through a
    /// reference parameter (repeated when several parameters hold it).
    pub(crate) fn targets(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().filter_map(|e| e.value.target())
    }

    /// `(parameter, code)` of every token value with a code, but `_id`'s.
    pub(crate) fn codes(&self) -> impl Iterator<Item = (&'static str, &Text)> {
        self.entries.iter().filter_map(|e| match &e.value {
            IndexValue::Token { code: Some(code), .. } if *e.param != "_id" => Some((e.param.as_str(), code)),
            _ => None,
        })
    }

    /// The values of `param`.
    pub(crate) fn values(&self, param: &str) -> impl Iterator<Item = &IndexValue> {
        // A scan, not a binary search: a resource has a few dozen rows at most, and
        // a search reads them from memory that is not in the cache; a scan's reads
        // do not wait on each other, a binary search's each wait on the last.
        self.entries
            .iter()
            .skip_while(move |e| *e.param != param)
            .take_while(move |e| *e.param == param)
            .map(|e| &e.value)
    }

    /// The `(type, id)` of each literal reference among the values of `param`.
    pub(crate) fn references(&self, param: &str) -> impl Iterator<Item = (&str, &str)> {
        self.values(param).filter_map(IndexValue::target)
    }

    /// By the CompartmentDefinition: an Observation's `subject` and `performer`, …
    /// A Patient is in its own.
    fn compartments(&self, kind: &str, id: &str) -> BTreeSet<Text> {
        if kind == "Patient" {
            return BTreeSet::from([Text::new(id)]);
        }
        R4.compartment(kind)
            .unwrap_or_default()
            .iter()
            .flat_map(|param| self.values(param))
            .filter_map(IndexValue::patient)
            .collect()
    }
}

/// The form of [`Index::to_bytes`]. Raise it whenever [`IndexValue`] changes, or
/// what a parameter's values are (extraction, folding): rows kept in another form
/// are then extracted again from the resource instead of read wrongly.
const BYTES_FORMAT: u8 = 1;

/// Case- and accent-insensitive form of a string: NFD, combining marks dropped, lower case.
pub(crate) fn fold(text: &str) -> String {
    text.nfd()
        .filter(|c| !('\u{0300}'..='\u{036f}').contains(c))
        .flat_map(char::to_lowercase)
        .collect()
}

/// The parts of a HumanName or Address a string search looks in.
const NAME_PARTS: &[&str] = &[
    "text",
    "family",
    "given",
    "prefix",
    "suffix",
    "line",
    "city",
    "district",
    "state",
    "postalCode",
    "country",
];

fn text(value: &Value, key: &str) -> Option<Text> {
    value.get(key).and_then(Value::as_str).map(Text::new)
}

/// The index values one element gives a parameter of `param_type`.
fn extract(
    param_type: ParamType,
    components: &[Component],
    item: Item<'_>,
    resource: &Value,
    push: &mut dyn FnMut(IndexValue),
) {
    let value = item.value;
    match param_type {
        ParamType::String => {
            let mut string = |s: &str| {
                push(IndexValue::String {
                    folded: Text::new(&fold(s)),
                    exact: Text::new(s),
                })
            };
            match value {
                Value::String(s) => string(s),
                Value::Object(object) => {
                    for part in NAME_PARTS.iter().filter_map(|k| object.get(*k)) {
                        match part {
                            Value::String(s) => string(s),
                            Value::Array(items) => {
                                items.iter().filter_map(Value::as_str).for_each(&mut string)
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        ParamType::Token => token(value, push),
        ParamType::Date => {
            // Timing: its events.
            match value.get("event") {
                Some(Value::Array(events)) => events
                    .iter()
                    .filter_map(date::of_element)
                    .for_each(|r| push(IndexValue::Date(r))),
                _ => date::of_element(value)
                    .into_iter()
                    .for_each(|r| push(IndexValue::Date(r))),
            }
        }
        ParamType::Number => {
            if let Some(n) = value.as_f64() {
                push(IndexValue::Number(n));
            }
        }
        ParamType::Quantity => {
            if let Some(number) = value.get("value").and_then(Value::as_f64) {
                // Money has a currency where a Quantity has a code.
                let (system, code) = match text(value, "currency") {
                    Some(currency) => (Some(Text::new("urn:iso:std:iso:4217")), Some(currency)),
                    None => (
                        text(value, "system"),
                        text(value, "code").or_else(|| text(value, "unit")),
                    ),
                };
                push(IndexValue::Quantity {
                    value: number,
                    system,
                    code,
                });
            }
        }
        ParamType::Reference => match value {
            // canonical and uri targets
            Value::String(url) => push(reference_value(url)),
            Value::Object(_) => {
                if let Some(url) = value.get("reference").and_then(Value::as_str) {
                    push(reference_value(url));
                }
                if let Some(identifier) = value.get("identifier")
                    && let Some(id_value) = text(identifier, "value")
                {
                    push(IndexValue::Identifier {
                        system: text(identifier, "system"),
                        value: id_value,
                    });
                }
            }
            _ => {}
        },
        ParamType::Uri => {
            if let Some(uri) = value.as_str() {
                push(IndexValue::Uri(Text::new(uri)));
            }
        }
        ParamType::Composite => {
            let parts = components
                .iter()
                .map(|component| {
                    let mut values = Vec::new();
                    for element in component.expression.evaluate_in(value, resource, &R4.choices) {
                        extract(component.param_type, &[], element, resource, &mut |v| {
                            values.push(v)
                        });
                    }
                    values.into_boxed_slice()
                })
                .collect::<Box<[_]>>();
            // A composite matches only when every part does: one with an empty
            // part (an Observation without a CodeableConcept value, for
            // code-value-concept) can never match, and is not kept.
            if parts.iter().all(|part| !part.is_empty()) {
                push(IndexValue::Composite(parts));
            }
        }
        ParamType::Special => {}
    }
}

fn reference_value(url: &str) -> IndexValue {
    let parts = reference::parts(url);
    IndexValue::Reference {
        kind: parts.map(|(kind, _)| Text::new(kind)),
        id: parts.map(|(_, id)| Text::new(id)),
        url: Text::new(url),
    }
}

/// Codes, Codings, CodeableConcepts, Identifiers and ContactPoints, booleans.
fn token(value: &Value, push: &mut dyn FnMut(IndexValue)) {
    let code = |code: &str| IndexValue::Token {
        system: None,
        code: Some(Text::new(code)),
        text: None,
    };
    match value {
        Value::String(s) => push(code(s)),
        Value::Bool(b) => push(code(&b.to_string())),
        Value::Number(n) => push(code(&n.to_string())),
        Value::Object(object) => {
            if let Some(Value::Array(codings)) = object.get("coding") {
                codings.iter().for_each(|coding| token(coding, push));
                if let Some(t) = text(value, "text") {
                    push(IndexValue::Token {
                        system: None,
                        code: None,
                        text: Some(Text::new(&fold(&t))),
                    });
                }
                return;
            }
            // Coding has `code` and `display`; Identifier and ContactPoint have `value`.
            let code = text(value, "code").or_else(|| text(value, "value"));
            let label = value
                .get("display")
                .or_else(|| value.pointer("/type/text"))
                .and_then(Value::as_str);
            if code.is_some() || label.is_some() {
                push(IndexValue::Token {
                    system: text(value, "system"),
                    code,
                    text: label.map(|t| Text::new(&fold(t))),
                });
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_observation_is_indexed_by_its_parameters() {
        let observation = json!({
            "resourceType": "Observation", "id": "o1", "status": "final",
            "meta": {"lastUpdated": "2024-05-02T10:00:00Z", "tag": [{"system": "s", "code": "t"}]},
            "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9", "display": "Blood pressure"}], "text": "BP"},
            "subject": {"reference": "Patient/1"},
            "performer": [{"reference": "Patient/2"}, {"reference": "Practitioner/3"}],
            "effectiveDateTime": "2024-05-02",
            "component": [
                {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]}, "valueQuantity": {"value": 120, "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}}
            ]
        });
        let index = Index::of(&observation);
        let codes: Vec<_> = index.values("code").collect();
        assert!(codes.contains(&&IndexValue::Token {
            system: Some("http://loinc.org".into()),
            code: Some("85354-9".into()),
            text: Some("blood pressure".into())
        }));
        assert!(matches!(index.values("date").next(), Some(IndexValue::Date(_))));
        assert_eq!(index.values("_id").count(), 1);
        assert_eq!(index.values("_tag").count(), 1);
        assert!(matches!(
            index.values("component-value-quantity").next(),
            Some(IndexValue::Quantity { value, .. }) if *value == 120.0
        ));
        let composite = index.values("component-code-value-quantity").next().unwrap();
        assert!(matches!(composite, IndexValue::Composite(parts) if parts.len() == 2 && parts[1].len() == 1));
        // The compartment comes from the CompartmentDefinition: subject and performer.
        assert_eq!(index.patients(), [Text::new("1"), Text::new("2")]);

        // As a store keeps it: every row back, composites and dates included.
        let kept = Index::from_bytes("Observation", &index.to_bytes()).unwrap();
        assert_eq!(kept.entries, index.entries);
        assert_eq!(kept.patients, index.patients);
        // Rows of parameters another type does not have are refused, not misread;
        // so are rows of another format.
        assert!(Index::from_bytes("Patient", &index.to_bytes()).is_none());
        let mut other = index.to_bytes();
        other[0] = BYTES_FORMAT + 1;
        assert!(Index::from_bytes("Observation", &other).is_none());
    }

    #[test]
    fn names_and_addresses_are_searched_by_their_parts() {
        let patient = json!({"resourceType": "Patient", "id": "p",
            "name": [{"use": "official", "family": "Kanfeld", "given": ["Bernie", "Zoë"]}],
            "address": [{"postalCode": "LS1 4HR", "city": "Leeds"}]});
        let index = Index::of(&patient);
        let folded: Vec<_> = index
            .values("name")
            .map(|v| match v {
                IndexValue::String { folded, .. } => &**folded,
                _ => "",
            })
            .collect();
        assert_eq!(folded, ["kanfeld", "bernie", "zoe"]);
        assert_eq!(index.values("address-postalcode").count(), 1);
        assert_eq!(index.patients(), [Text::new("p")]);
    }
}
