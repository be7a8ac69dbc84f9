//! Property tests: parsing never panics, and parse → print → parse is the identity.

use proptest::prelude::*;
use smart_protocol::{Scope, Scopes};

fn resource_scope() -> impl Strategy<Value = String> {
    let context = prop::sample::select(vec!["patient", "user", "system"]);
    let resource = prop::sample::select(vec!["*", "Observation", "Patient", "MedicationRequest", "X1"]);
    let v1 = prop::sample::select(vec!["read", "write", "*"]).prop_map(str::to_owned);
    let v2 = (1u8..32).prop_map(|bits| {
        "cruds"
            .chars()
            .enumerate()
            .filter(|(i, _)| bits & (1 << i) != 0)
            .map(|(_, c)| c)
            .collect::<String>()
    });
    let constraint =
        ("[a-z][a-z-]{0,10}", "[!#-\\[\\]-~&&[^&= ?]]{1,20}").prop_map(|(n, v)| format!("{n}={v}"));
    let constraints = prop::collection::vec(constraint, 0..3);
    (
        context,
        resource,
        prop_oneof![v1.prop_map(|p| (p, false)), v2.prop_map(|p| (p, true))],
        constraints,
    )
        .prop_map(|(context, resource, (permissions, v2), constraints)| {
            let query = if v2 && !constraints.is_empty() {
                format!("?{}", constraints.join("&"))
            } else {
                String::new()
            };
            format!("{context}/{resource}.{permissions}{query}")
        })
}

fn any_valid_scope() -> impl Strategy<Value = String> {
    prop_oneof![
        resource_scope(),
        prop::sample::select(Scope::NAMED.to_vec()).prop_map(str::to_owned),
        "[a-z][a-z_:.]{0,15}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parsing_arbitrary_text_never_panics(text in "\\PC{0,60}") {
        let _ = text.parse::<Scope>();
        let _ = text.parse::<Scopes>();
    }

    #[test]
    fn parsing_scope_shaped_text_never_panics(text in "(patient|user|system)/[A-Za-z*]{0,5}[.]?[cruds*readwit]{0,6}[?]?[a-z=&|]{0,8}") {
        let _ = text.parse::<Scope>();
    }

    #[test]
    fn valid_scopes_print_as_written(text in any_valid_scope()) {
        let scope: Scope = text.parse().unwrap();
        prop_assert_eq!(scope.to_string(), text);
    }

    #[test]
    fn parse_print_parse_is_identity(texts in prop::collection::vec(any_valid_scope(), 0..6)) {
        let scopes: Scopes = texts.join(" ").parse().unwrap();
        let reparsed: Scopes = scopes.to_string().parse().unwrap();
        prop_assert_eq!(reparsed, scopes);
    }

    #[test]
    fn whatever_parses_prints_back_to_the_same_scope(text in "\\PC{1,40}") {
        if let Ok(scope) = text.parse::<Scope>() {
            prop_assert_eq!(scope.to_string().parse::<Scope>().unwrap(), scope);
        }
    }
}
