//! Table-driven tests of the scope grammar. They run natively and, through
//! `wasm-pack test --headless --chrome`, in the browser the client ships to.

use smart_protocol::scope::{Access, Context, Interaction, Permissions, ResourceType, Syntax};
use smart_protocol::{Scope, ScopeErrorKind, Scopes};

use Interaction::*;

/// Valid scopes: each must parse and print back exactly as written.
const VALID: &[&str] = &[
    "openid",
    "fhirUser",
    "profile",
    "launch",
    "launch/patient",
    "launch/encounter",
    "offline_access",
    "online_access",
    "patient/Observation.read",
    "patient/Observation.write",
    "patient/Observation.*",
    "user/*.write",
    "user/*.read",
    "system/*.*",
    "patient/*.*",
    "patient/Observation.rs",
    "patient/Observation.c",
    "patient/Observation.r",
    "patient/Observation.u",
    "patient/Observation.d",
    "patient/Observation.s",
    "patient/Observation.cud",
    "system/*.cruds",
    "user/Patient.cruds",
    "user/MedicationRequest.crs",
    "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory",
    "patient/Observation.rs?category=laboratory&code=http://loinc.org|85354-9",
    "patient/Condition.rs?category=http://terminology.hl7.org/CodeSystem/condition-category|problem-list-item",
    "user/Bundle.read",
    // Not SMART, but valid scope tokens: kept verbatim.
    "launch/observation",
    "email",
    "fhir:read",
    "https://example.org/custom",
    "foo/bar.baz",
    "smart/orchestrate_launch",
];

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn valid_scopes_round_trip() {
    for text in VALID {
        let scope: Scope = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(scope.to_string(), *text);
    }
}

/// Invalid scopes and the error each must give.
const INVALID: &[(&str, ScopeErrorKind)] = &[
    ("", ScopeErrorKind::Empty),
    ("patient/Observation", ScopeErrorKind::MissingPermissions),
    ("user/*", ScopeErrorKind::MissingPermissions),
    ("patient/observation.read", ScopeErrorKind::InvalidResourceType),
    ("patient/.read", ScopeErrorKind::InvalidResourceType),
    ("patient/Obs-ervation.read", ScopeErrorKind::InvalidResourceType),
    ("patient/**.read", ScopeErrorKind::InvalidResourceType),
    ("patient/Observation.", ScopeErrorKind::InvalidPermissions),
    ("patient/Observation.READ", ScopeErrorKind::InvalidPermissions),
    ("patient/Observation.reads", ScopeErrorKind::InvalidPermissions),
    ("patient/Observation.x", ScopeErrorKind::InvalidPermissions),
    ("patient/Observation.rsx", ScopeErrorKind::InvalidPermissions),
    ("patient/Observation.all", ScopeErrorKind::InvalidPermissions),
    ("patient/Observation.sr", ScopeErrorKind::PermissionsOutOfOrder),
    ("patient/Observation.rr", ScopeErrorKind::PermissionsOutOfOrder),
    ("system/*.scrud", ScopeErrorKind::PermissionsOutOfOrder),
    ("user/Patient.dc", ScopeErrorKind::PermissionsOutOfOrder),
    (
        "patient/Observation.read?category=laboratory",
        ScopeErrorKind::ConstraintOnV1,
    ),
    ("patient/Observation.*?code=1", ScopeErrorKind::ConstraintOnV1),
    ("patient/Observation.rs?", ScopeErrorKind::InvalidConstraint),
    (
        "patient/Observation.rs?category",
        ScopeErrorKind::InvalidConstraint,
    ),
    (
        "patient/Observation.rs?=laboratory",
        ScopeErrorKind::InvalidConstraint,
    ),
    (
        "patient/Observation.rs?category=",
        ScopeErrorKind::InvalidConstraint,
    ),
    (
        "patient/Observation.rs?a=1&&b=2",
        ScopeErrorKind::InvalidConstraint,
    ),
    (
        "patient/Observation.\"rs\"",
        ScopeErrorKind::InvalidCharacter('"'),
    ),
    ("user\\Patient.read", ScopeErrorKind::InvalidCharacter('\\')),
    (
        "patient/Obs\u{e9}rvation.read",
        ScopeErrorKind::InvalidCharacter('\u{e9}'),
    ),
    ("open\tid", ScopeErrorKind::InvalidCharacter('\t')),
];

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn invalid_scopes_give_typed_errors() {
    for (text, kind) in INVALID {
        let error = text.parse::<Scope>().expect_err(text);
        assert_eq!(&error.kind, kind, "{text}");
        assert_eq!(error.scope, *text);
        assert!(!error.to_string().is_empty());
    }
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn v1_maps_to_v2() {
    for (v1, v2) in [
        ("patient/Observation.read", "patient/Observation.rs"),
        ("user/*.write", "user/*.cud"),
        ("system/Patient.*", "system/Patient.cruds"),
        ("patient/Observation.rs", "patient/Observation.rs"),
    ] {
        let Scope::Resource(scope) = v1.parse().unwrap() else {
            panic!("{v1}")
        };
        assert_eq!(scope.to_v2().to_string(), v2);
    }
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn resource_scope_fields() {
    let Scope::Resource(scope) = "patient/Observation.rs?category=laboratory".parse().unwrap() else {
        panic!()
    };
    assert_eq!(scope.context, Context::Patient);
    assert_eq!(scope.resource_type, ResourceType::Named("Observation".into()));
    assert_eq!(scope.permissions, Permissions::V1_READ);
    assert_eq!(scope.syntax, Syntax::V2);
    assert_eq!(
        scope.constraints,
        vec![("category".to_owned(), "laboratory".to_owned())]
    );
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn scope_sets_parse_print_and_reject_as_a_whole() {
    let scopes: Scopes = "openid  fhirUser launch/patient patient/*.read".parse().unwrap();
    assert_eq!(
        scopes.to_string(),
        "openid fhirUser launch/patient patient/*.read"
    );
    assert!(scopes.contains(&Scope::LaunchPatient));
    assert!("".parse::<Scopes>().unwrap().is_empty());
    let error = "openid patient/Observation.sr".parse::<Scopes>().unwrap_err();
    assert_eq!(error.scope, "patient/Observation.sr");
}

/// granted scopes, context, interaction, resource type, search params, expected access
type PermitCase = (
    &'static str,
    Context,
    Interaction,
    &'static str,
    &'static [(&'static str, &'static str)],
    Access,
);

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn permits_matrix() {
    use Context::*;
    let lab = || Access::Filtered(vec![vec![("category".into(), "laboratory".into())]]);
    let cases: Vec<PermitCase> = vec![
        (
            "patient/Observation.read",
            Patient,
            Read,
            "Observation",
            &[],
            Access::Full,
        ),
        (
            "patient/Observation.read",
            Patient,
            Search,
            "Observation",
            &[],
            Access::Full,
        ),
        (
            "patient/Observation.read",
            Patient,
            Vread,
            "Observation",
            &[],
            Access::Full,
        ),
        (
            "patient/Observation.read",
            Patient,
            History,
            "Observation",
            &[],
            Access::Full,
        ),
        // `.read` never allows a write.
        (
            "patient/Observation.read",
            Patient,
            Create,
            "Observation",
            &[],
            Access::Denied,
        ),
        (
            "patient/Observation.read",
            Patient,
            Update,
            "Observation",
            &[],
            Access::Denied,
        ),
        (
            "patient/Observation.read",
            Patient,
            Delete,
            "Observation",
            &[],
            Access::Denied,
        ),
        // `.write` never allows a read.
        ("user/*.write", User, Read, "Patient", &[], Access::Denied),
        ("user/*.write", User, Update, "Patient", &[], Access::Full),
        (
            "patient/Observation.read",
            User,
            Read,
            "Observation",
            &[],
            Access::Denied,
        ),
        (
            "patient/Observation.read",
            Patient,
            Read,
            "Condition",
            &[],
            Access::Denied,
        ),
        ("patient/*.rs", Patient, Search, "Condition", &[], Access::Full),
        (
            "patient/Observation.r",
            Patient,
            Search,
            "Observation",
            &[],
            Access::Denied,
        ),
        (
            "patient/Observation.s",
            Patient,
            Read,
            "Observation",
            &[],
            Access::Denied,
        ),
        ("system/*.cruds", System, Delete, "Flag", &[], Access::Full),
        ("system/*.cruds", User, Delete, "Flag", &[], Access::Denied),
        (
            "patient/Observation.rs?category=laboratory",
            Patient,
            Search,
            "Observation",
            &[],
            lab(),
        ),
        (
            "patient/Observation.rs?category=laboratory",
            Patient,
            Search,
            "Observation",
            &[("patient", "1"), ("category", "laboratory")],
            Access::Full,
        ),
        (
            "patient/Observation.rs?category=laboratory",
            Patient,
            Read,
            "Observation",
            &[],
            lab(),
        ),
        (
            "patient/Observation.rs?category=laboratory patient/Observation.rs",
            Patient,
            Search,
            "Observation",
            &[],
            Access::Full,
        ),
        (
            "openid fhirUser launch",
            Patient,
            Read,
            "Patient",
            &[],
            Access::Denied,
        ),
    ];
    for (granted, context, interaction, resource_type, params, expected) in cases {
        let scopes: Scopes = granted.parse().unwrap();
        assert_eq!(
            scopes.permits(context, interaction, resource_type, params),
            expected,
            "{granted} {context:?} {interaction:?} {resource_type}"
        );
    }
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn narrowing_a_grant() {
    let granted: Scopes = "openid offline_access patient/*.read user/Observation.rs?category=laboratory"
        .parse()
        .unwrap();
    for (wanted, within) in [
        ("openid", true),
        ("patient/Observation.read", true),
        ("patient/Observation.rs", true),
        ("patient/Observation.r", true),
        ("patient/*.rs", true),
        ("user/Observation.rs?category=laboratory&code=1", true),
        ("user/Observation.rs", false),
        ("patient/Observation.write", false),
        ("patient/Observation.cruds", false),
        ("fhirUser", false),
        ("user/Patient.read", false),
    ] {
        assert_eq!(
            wanted.parse::<Scopes>().unwrap().is_within(&granted),
            within,
            "{wanted}"
        );
    }
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn every_named_scope_parses_to_its_own_variant() {
    let parsed: Vec<Scope> = Scope::NAMED.iter().map(|s| s.parse().unwrap()).collect();
    for (text, scope) in Scope::NAMED.iter().zip(&parsed) {
        assert!(
            !matches!(scope, Scope::Other(_) | Scope::Resource(_)),
            "{text} is not a named scope"
        );
        assert_eq!(scope.to_string(), *text);
    }
    let distinct: std::collections::HashSet<_> = parsed.iter().collect();
    assert_eq!(distinct.len(), Scope::NAMED.len());
}
