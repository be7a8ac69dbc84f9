//! Does one indexed value match one search value? By parameter type, as FHIR R4
//! §3.1.1.4 describes each; `:not` and `:missing` are decided a level up, over all
//! of a resource's values.

use super::date::{Prefix, Range};
use crate::fhir::index::IndexValue;

/// One search value, parsed for its parameter's type.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum SearchValue {
    /// Folded (see [`crate::fhir::index::fold`]) unless the modifier is `:exact`.
    String(String),
    /// `code`, `system|code`, `|code` (no system), `system|` (any code).
    Token {
        system: Option<String>,
        code: Option<String>,
    },
    Date {
        prefix: Prefix,
        range: Range,
    },
    /// `[prefix]number[|system|code]`; `low..high` is what `eq` accepts, from the
    /// number's precision (`100` is 99.5 up to 100.5).
    Number {
        prefix: Prefix,
        value: f64,
        low: f64,
        high: f64,
        system: Option<String>,
        code: Option<String>,
    },
    /// `id`, `Type/id`, or an absolute URL ending in `Type/id`.
    Reference {
        kind: Option<String>,
        id: String,
    },
    /// A URL that names no `Type/id` (a canonical), compared as written.
    Url(String),
    Uri(String),
    /// `a$b`: one value per component.
    Composite(Vec<SearchValue>),
}

/// The modifiers of R4 search the mock implements (§3.1.1.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Modifier {
    None,
    Exact,
    Contains,
    /// Token: the display or text starts with the value.
    Text,
    /// Token: no value matches.
    Not,
    Above,
    Below,
    /// Reference: `Reference.identifier` matches the token.
    Identifier,
    /// Reference: the target is of this type.
    Type(String),
}

pub(crate) fn matches(search: &SearchValue, modifier: &Modifier, indexed: &IndexValue) -> bool {
    match (search, indexed) {
        (SearchValue::String(wanted), IndexValue::String { folded, exact }) => match modifier {
            Modifier::Exact => **exact == **wanted,
            Modifier::Contains => folded.contains(wanted.as_str()),
            _ => folded.starts_with(wanted.as_str()),
        },
        // `:text` parses its value as a folded string.
        (SearchValue::String(wanted), IndexValue::Token { text: Some(text), .. }) => {
            text.starts_with(wanted.as_str())
        }
        (
            SearchValue::Token { system, code },
            IndexValue::Token {
                system: s, code: c, ..
            },
        ) => token(system.as_deref(), code.as_deref(), s.as_deref(), c.as_deref()),
        (SearchValue::Token { system, code }, IndexValue::Identifier { system: s, value }) => {
            token(system.as_deref(), code.as_deref(), s.as_deref(), Some(value))
        }
        (SearchValue::Date { prefix, range }, IndexValue::Date(target)) => prefix.matches(*range, *target),
        (
            SearchValue::Number {
                prefix,
                value,
                low,
                high,
                system,
                code,
            },
            IndexValue::Number(n) | IndexValue::Quantity { value: n, .. },
        ) => {
            let (s, c) = match indexed {
                IndexValue::Quantity { system, code, .. } => (system.as_deref(), code.as_deref()),
                _ => (None, None),
            };
            system.as_deref().is_none_or(|wanted| s == Some(wanted))
                && code.as_deref().is_none_or(|wanted| c == Some(wanted))
                && compare(*prefix, *value, *low, *high, *n)
        }
        (
            SearchValue::Reference { kind, id },
            IndexValue::Reference {
                kind: k, id: Some(i), ..
            },
        ) => {
            let kind_ok = match modifier {
                Modifier::Type(wanted) => k.as_deref() == Some(wanted.as_str()),
                _ => kind.as_deref().is_none_or(|wanted| k.as_deref() == Some(wanted)),
            };
            **i == **id && kind_ok
        }
        (SearchValue::Url(wanted), IndexValue::Reference { url, .. }) => **url == **wanted,
        (SearchValue::Uri(wanted), IndexValue::Uri(uri)) => match modifier {
            Modifier::Above => wanted.starts_with(&**uri),
            Modifier::Below => uri.starts_with(wanted.as_str()),
            _ => **uri == **wanted,
        },
        (SearchValue::Composite(parts), IndexValue::Composite(values)) => {
            parts.len() == values.len()
                && parts
                    .iter()
                    .zip(values)
                    .all(|(part, values)| values.iter().any(|v| matches(part, &Modifier::None, v)))
        }
        _ => false,
    }
}

/// `system|code` against an indexed pair: `|code` wants no system, `system|` any code.
fn token(
    system: Option<&str>,
    code: Option<&str>,
    indexed_system: Option<&str>,
    indexed_code: Option<&str>,
) -> bool {
    let system_ok = match system {
        None => true,
        Some("") => indexed_system.is_none(),
        Some(wanted) => indexed_system == Some(wanted),
    };
    system_ok && code.is_none_or(|wanted| indexed_code == Some(wanted))
}

fn compare(prefix: Prefix, value: f64, low: f64, high: f64, n: f64) -> bool {
    match prefix {
        Prefix::Eq => low <= n && n < high,
        Prefix::Ne => !(low <= n && n < high),
        Prefix::Gt | Prefix::Sa => n > value,
        Prefix::Lt | Prefix::Eb => n < value,
        Prefix::Ge => n >= value,
        Prefix::Le => n <= value,
        Prefix::Ap => (n - value).abs() <= value.abs() / 10.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fhir::index::fold;

    fn token(system: Option<&str>, code: Option<&str>) -> SearchValue {
        SearchValue::Token {
            system: system.map(Into::into),
            code: code.map(Into::into),
        }
    }

    fn coding(system: Option<&str>, code: &str) -> IndexValue {
        IndexValue::Token {
            system: system.map(Into::into),
            code: Some(code.into()),
            text: Some("heart rate".into()),
        }
    }

    #[test]
    fn tokens() {
        let m = |s: SearchValue, v: &IndexValue| matches(&s, &Modifier::None, v);
        let loinc = coding(Some("http://loinc.org"), "8867-4");
        assert!(m(token(Some("http://loinc.org"), Some("8867-4")), &loinc));
        assert!(m(token(None, Some("8867-4")), &loinc));
        assert!(m(token(Some("http://loinc.org"), None), &loinc));
        assert!(!m(token(Some(""), Some("8867-4")), &loinc));
        assert!(m(token(Some(""), Some("female")), &coding(None, "female")));
        assert!(!m(token(Some("http://snomed.info/sct"), Some("8867-4")), &loinc));
        assert!(matches(
            &SearchValue::String("heart".into()),
            &Modifier::Text,
            &loinc
        ));
        let identifier = IndexValue::Identifier {
            system: Some("https://fhir.nhs.uk/Id/nhs-number".into()),
            value: "9876543210".into(),
        };
        assert!(m(
            token(Some("https://fhir.nhs.uk/Id/nhs-number"), Some("9876543210")),
            &identifier
        ));
    }

    #[test]
    fn strings_fold_case_and_accents() {
        let indexed = |s: &str| IndexValue::String {
            folded: fold(s).as_str().into(),
            exact: s.into(),
        };
        let s = |t: &str| SearchValue::String(fold(t));
        assert!(matches(&s("zoe"), &Modifier::None, &indexed("Zoë")));
        assert!(matches(&s("KAN"), &Modifier::None, &indexed("Kanfeld")));
        assert!(!matches(&s("feld"), &Modifier::None, &indexed("Kanfeld")));
        assert!(matches(&s("feld"), &Modifier::Contains, &indexed("Kanfeld")));
        let exact = SearchValue::String("Kanfeld".into());
        assert!(matches(&exact, &Modifier::Exact, &indexed("Kanfeld")));
        assert!(!matches(&exact, &Modifier::Exact, &indexed("kanfeld")));
    }

    #[test]
    fn numbers_and_quantities_honour_precision_and_prefixes() {
        let number = |prefix, value: f64, half: f64| SearchValue::Number {
            prefix,
            value,
            low: value - half,
            high: value + half,
            system: None,
            code: None,
        };
        let q = IndexValue::Quantity {
            value: 100.4,
            system: Some("http://unitsofmeasure.org".into()),
            code: Some("mm[Hg]".into()),
        };
        assert!(matches(&number(Prefix::Eq, 100.0, 0.5), &Modifier::None, &q));
        assert!(!matches(&number(Prefix::Eq, 100.0, 0.05), &Modifier::None, &q));
        assert!(matches(&number(Prefix::Gt, 100.0, 0.5), &Modifier::None, &q));
        assert!(matches(&number(Prefix::Ap, 95.0, 0.5), &Modifier::None, &q));
        assert!(!matches(&number(Prefix::Lt, 100.0, 0.5), &Modifier::None, &q));
        let mut with_unit = number(Prefix::Ge, 100.0, 0.5);
        if let SearchValue::Number { code, .. } = &mut with_unit {
            *code = Some("kg".into());
        }
        assert!(!matches(&with_unit, &Modifier::None, &q));
    }

    #[test]
    fn references_and_uris() {
        let subject = IndexValue::Reference {
            kind: Some("Patient".into()),
            id: Some("1".into()),
            url: "Patient/1".into(),
        };
        let r = |k: Option<&str>, id: &str| SearchValue::Reference {
            kind: k.map(Into::into),
            id: id.into(),
        };
        assert!(matches(&r(None, "1"), &Modifier::None, &subject));
        assert!(matches(&r(Some("Patient"), "1"), &Modifier::None, &subject));
        assert!(!matches(&r(Some("Group"), "1"), &Modifier::None, &subject));
        assert!(!matches(&r(None, "10"), &Modifier::None, &subject));
        assert!(!matches(&r(None, "1"), &Modifier::Type("Group".into()), &subject));
        let uri = IndexValue::Uri("http://acme.org/fhir/ValueSet/x".into());
        let u = |s: &str| SearchValue::Uri(s.into());
        assert!(matches(&u("http://acme.org/fhir"), &Modifier::Below, &uri));
        assert!(matches(
            &u("http://acme.org/fhir/ValueSet/x/1"),
            &Modifier::Above,
            &uri
        ));
        assert!(!matches(&u("http://acme.org/fhir"), &Modifier::None, &uri));
    }
}
