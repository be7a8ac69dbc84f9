//! Does a resource match one search criterion? Values are found by walking the
//! parameter's element paths, then compared by parameter type.

use crate::reference;
use serde_json::Value;
use unicode_normalization::UnicodeNormalization;

use super::date::{self, Prefix, Range};

/// One search value, parsed for its parameter's type.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum SearchValue {
    /// `code`, `system|code`, `|code` (no system), `system|` (any code).
    Token {
        system: Option<String>,
        code: Option<String>,
    },
    Date {
        prefix: Prefix,
        range: Range,
    },
    /// Already folded for comparison (see [`fold`]) unless the modifier is `:exact`.
    String(String),
    /// `id`, `Type/id` or an absolute URL ending in `Type/id`.
    Reference {
        kind: Option<String>,
        id: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StringMatch {
    Prefix,
    Exact,
    Contains,
}

/// Case- and accent-insensitive form of a string: NFD, combining marks dropped, lower case.
pub(crate) fn fold(text: &str) -> String {
    text.nfd()
        .filter(|c| !('\u{0300}'..='\u{036f}').contains(c))
        .flat_map(char::to_lowercase)
        .collect()
}

/// The values at `path` in `resource`, arrays flattened at every step.
pub(crate) fn values<'a>(resource: &'a Value, path: &str) -> Vec<&'a Value> {
    let mut current = vec![resource];
    for step in path.split('.') {
        let (name, filter) = match step.split_once('[') {
            Some((name, rest)) => (name, rest.strip_suffix(']').and_then(|f| f.split_once('='))),
            None => (step, None),
        };
        let mut next = Vec::new();
        for value in current {
            let children: Box<dyn Iterator<Item = &Value>> = match value.get(name) {
                Some(Value::Array(items)) => Box::new(items.iter()),
                Some(child) => Box::new(std::iter::once(child)),
                None => Box::new(std::iter::empty()),
            };
            next.extend(children.filter(|child| match filter {
                Some((member, wanted)) => child.get(member).and_then(Value::as_str) == Some(wanted),
                None => true,
            }));
        }
        current = next;
    }
    current
}

/// Whether one element value matches one search value.
pub(crate) fn element_matches(element: &Value, search: &SearchValue, mode: StringMatch) -> bool {
    match search {
        SearchValue::Token { system, code } => token_matches(element, system.as_deref(), code.as_deref()),
        SearchValue::Date { prefix, range } => {
            date::of_element(element).is_some_and(|r| prefix.matches(*range, r))
        }
        SearchValue::String(wanted) => element.as_str().is_some_and(|text| match mode {
            StringMatch::Exact => text == wanted,
            StringMatch::Prefix => fold(text).starts_with(wanted.as_str()),
            StringMatch::Contains => fold(text).contains(wanted.as_str()),
        }),
        SearchValue::Reference { kind, id } => element
            .get("reference")
            .and_then(Value::as_str)
            .and_then(reference::parts)
            .is_some_and(|(k, i)| i == id && kind.as_deref().is_none_or(|wanted| wanted == k)),
    }
}

fn token_matches(element: &Value, system: Option<&str>, code: Option<&str>) -> bool {
    let pair_matches = |element_system: Option<&str>, element_code: Option<&str>| {
        let system_ok = match system {
            None => true,
            Some("") => element_system.is_none(),
            Some(wanted) => element_system == Some(wanted),
        };
        system_ok && code.is_none_or(|wanted| element_code == Some(wanted))
    };
    match element {
        // A plain code (gender, status…): its system is implied, so only the code counts.
        Value::String(text) => code.is_some_and(|wanted| wanted == text),
        Value::Bool(flag) => code.is_some_and(|wanted| wanted == flag.to_string()),
        Value::Object(object) => {
            if let Some(Value::Array(codings)) = object.get("coding") {
                return codings.iter().any(|coding| token_matches(coding, system, code));
            }
            let element_system = object.get("system").and_then(Value::as_str);
            // Coding has `code`; Identifier and ContactPoint have `value`.
            let element_code = object
                .get("code")
                .or_else(|| object.get("value"))
                .and_then(Value::as_str);
            pair_matches(element_system, element_code)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_flatten_arrays_and_filter() {
        let patient = json!({"telecom": [{"system": "phone", "value": "0114"}, {"system": "email", "value": "b@x"}],
                             "name": [{"given": ["Bernie", "Ann"]}, {"given": ["B"]}]});
        assert_eq!(
            values(&patient, "telecom[system=email].value"),
            vec![&json!("b@x")]
        );
        assert_eq!(values(&patient, "name.given").len(), 3);
        assert!(values(&patient, "address.postalCode").is_empty());
    }

    #[test]
    fn tokens() {
        let concept = json!({"coding": [{"system": "http://loinc.org", "code": "8867-4"}]});
        let token = |s: Option<&str>, c: Option<&str>| SearchValue::Token {
            system: s.map(Into::into),
            code: c.map(Into::into),
        };
        let m = |v: &Value, t: SearchValue| element_matches(v, &t, StringMatch::Prefix);
        assert!(m(&concept, token(Some("http://loinc.org"), Some("8867-4"))));
        assert!(m(&concept, token(None, Some("8867-4"))));
        assert!(m(&concept, token(Some("http://loinc.org"), None)));
        assert!(!m(&concept, token(Some(""), Some("8867-4"))));
        assert!(!m(
            &concept,
            token(Some("http://snomed.info/sct"), Some("8867-4"))
        ));
        let identifier = json!({"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9876543210"});
        assert!(m(
            &identifier,
            token(Some("https://fhir.nhs.uk/Id/nhs-number"), Some("9876543210"))
        ));
        assert!(m(&json!("female"), token(None, Some("female"))));
        assert!(!m(&json!("female"), token(None, Some("male"))));
    }

    #[test]
    fn strings_fold_case_and_accents() {
        assert_eq!(fold("Zoë ÉLAN"), "zoe elan");
        let s = |t: &str| SearchValue::String(fold(t));
        assert!(element_matches(&json!("Zoë"), &s("zoe"), StringMatch::Prefix));
        assert!(element_matches(&json!("Kanfeld"), &s("KAN"), StringMatch::Prefix));
        assert!(!element_matches(
            &json!("Kanfeld"),
            &s("feld"),
            StringMatch::Prefix
        ));
        assert!(element_matches(
            &json!("Kanfeld"),
            &s("feld"),
            StringMatch::Contains
        ));
        let exact = SearchValue::String("Kanfeld".into());
        assert!(element_matches(&json!("Kanfeld"), &exact, StringMatch::Exact));
        assert!(!element_matches(&json!("kanfeld"), &exact, StringMatch::Exact));
    }

    #[test]
    fn references() {
        let r = |k: Option<&str>, id: &str| SearchValue::Reference {
            kind: k.map(Into::into),
            id: id.into(),
        };
        let subject = json!({"reference": "Patient/1"});
        assert!(element_matches(&subject, &r(None, "1"), StringMatch::Prefix));
        assert!(element_matches(
            &subject,
            &r(Some("Patient"), "1"),
            StringMatch::Prefix
        ));
        assert!(!element_matches(
            &subject,
            &r(Some("Group"), "1"),
            StringMatch::Prefix
        ));
        assert!(!element_matches(&subject, &r(None, "10"), StringMatch::Prefix));
    }
}
