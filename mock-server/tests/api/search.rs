//! Search as FHIR R4 defines it, over parameters read from the official
//! definitions: each parameter type and modifier, chains, `_has`, includes with
//! `:iterate`, `_summary`/`_elements`, lenient handling, and the patient
//! compartment as the CompartmentDefinition draws it.

use crate::common::*;
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};

const ALL: &str = "user/*.cruds";
const LOINC: &str = "http://loinc.org";
const UCUM: &str = "http://unitsofmeasure.org";

async fn create(mock: &Mock, token: &str, resource: Value) -> String {
    let kind = resource["resourceType"].as_str().unwrap().to_owned();
    let response = mock
        .http
        .post(mock.fhir(&kind))
        .bearer_auth(token)
        .header(CONTENT_TYPE, "application/fhir+json")
        .body(resource.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    created["id"].as_str().unwrap().to_owned()
}

/// The `Type/id`s a search matched (not those it included).
async fn matched(mock: &Mock, token: &str, query: &str) -> Vec<String> {
    let (status, bundle) = mock.fhir_get(query, token).await;
    assert_eq!(status, StatusCode::OK, "{query}: {bundle}");
    entries(&bundle)
        .into_iter()
        .filter(|(_, mode)| mode == "match")
        .map(|(key, _)| key)
        .collect()
}

async fn refused(mock: &Mock, token: &str, query: &str) -> Value {
    let (status, outcome) = mock.fhir_get(query, token).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {outcome}");
    outcome
}

fn blood_pressure(patient: &str, systolic: f64) -> Value {
    let part = |code: &str, value: f64| {
        json!({"code": {"coding": [{"system": LOINC, "code": code}]},
               "valueQuantity": {"value": value, "system": UCUM, "code": "mm[Hg]", "unit": "mmHg"}})
    };
    json!({
        "resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "85354-9", "display": "Blood pressure panel"}], "text": "BP"},
        "subject": {"reference": format!("Patient/{patient}")},
        "effectiveDateTime": "2025-03-01",
        "component": [part("8480-6", systolic), part("8462-4", 80.0)]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quantities_numbers_and_composites() {
    let mock = start().await;
    let token = mock.mint(ALL, None);
    let high = create(&mock, &token, blood_pressure("1", 150.0)).await;
    let normal = create(&mock, &token, blood_pressure("1", 118.0)).await;
    let weight = create(
        &mock,
        &token,
        json!({"resourceType": "Observation", "status": "final", "subject": {"reference": "Patient/1"},
               "code": {"coding": [{"system": LOINC, "code": "29463-7"}]},
               "valueQuantity": {"value": 172.4, "system": UCUM, "code": "kg", "unit": "kg"}}),
    )
    .await;
    let key = |id: &str| format!("Observation/{id}");

    // `172` means 171.5 up to 172.5; `172.0` is narrower.
    assert_eq!(
        matched(&mock, &token, "Observation?value-quantity=172").await,
        [key(&weight)]
    );
    assert!(
        matched(&mock, &token, "Observation?value-quantity=172.0")
            .await
            .is_empty()
    );
    assert_eq!(
        matched(
            &mock,
            &token,
            &format!("Observation?value-quantity=gt150|{UCUM}|kg")
        )
        .await,
        [key(&weight)]
    );
    assert!(
        matched(
            &mock,
            &token,
            &format!("Observation?value-quantity=gt150|{UCUM}|g")
        )
        .await
        .is_empty()
    );
    assert_eq!(
        matched(&mock, &token, "Observation?value-quantity=ap165||kg").await,
        [key(&weight)]
    );

    let systolic_over_140 = format!("Observation?component-code-value-quantity={LOINC}|8480-6$gt140");
    assert_eq!(matched(&mock, &token, &systolic_over_140).await, [key(&high)]);
    // The parts of one component must match together: 80 is diastolic, not systolic.
    assert!(
        matched(
            &mock,
            &token,
            &format!("Observation?component-code-value-quantity={LOINC}|8480-6$lt100")
        )
        .await
        .is_empty()
    );
    let mut under_120 = matched(
        &mock,
        &token,
        "Observation?component-value-quantity=lt120&_sort=_id",
    )
    .await;
    under_120.sort();
    let mut expected = vec![key(&high), key(&normal)];
    expected.sort();
    assert_eq!(under_120, expected, "both have a diastolic of 80");

    let risk = create(
        &mock,
        &token,
        json!({"resourceType": "RiskAssessment", "status": "final", "subject": {"reference": "Patient/1"},
               "prediction": [{"probabilityDecimal": 0.82}]}),
    )
    .await;
    assert_eq!(
        matched(&mock, &token, "RiskAssessment?probability=gt0.5").await,
        [format!("RiskAssessment/{risk}")]
    );
    assert!(
        matched(&mock, &token, "RiskAssessment?probability=lt0.5")
            .await
            .is_empty()
    );
    assert_eq!(
        refused(&mock, &token, "Observation?value-quantity=lots").await["issue"][0]["expression"],
        json!(["Observation?value-quantity"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_string_uri_modifiers_and_missing() {
    let mock = start().await;
    let token = mock.mint(ALL, None);
    let bp = create(&mock, &token, blood_pressure("1", 130.0)).await;
    let bp_key = format!("Observation/{bp}");
    assert_eq!(
        matched(&mock, &token, "Observation?code:text=blood%20pres").await,
        std::slice::from_ref(&bp_key)
    );
    let not_bp = matched(
        &mock,
        &token,
        &format!("Observation?patient=1&code:not={LOINC}|85354-9&_count=500"),
    )
    .await;
    assert!(!not_bp.is_empty() && !not_bp.contains(&bp_key));
    // Seeded observations all have a category; this one has none.
    assert_eq!(
        matched(&mock, &token, "Observation?category:missing=true").await,
        std::slice::from_ref(&bp_key)
    );
    let with_category = matched(&mock, &token, "Observation?category:missing=false&_count=500").await;
    assert!(!with_category.is_empty() && !with_category.contains(&bp_key));

    assert_eq!(
        matched(&mock, &token, "Patient?family:exact=Kanfeld").await,
        ["Patient/1"]
    );
    assert!(
        matched(&mock, &token, "Patient?family:exact=kanfeld")
            .await
            .is_empty()
    );
    assert_eq!(
        matched(&mock, &token, "Patient?family:contains=nfel").await,
        ["Patient/1"]
    );

    let value_set = create(
        &mock,
        &token,
        json!({"resourceType": "ValueSet", "status": "active", "url": "http://acme.org/fhir/ValueSet/colours"}),
    )
    .await;
    let vs = format!("ValueSet/{value_set}");
    assert_eq!(
        matched(
            &mock,
            &token,
            "ValueSet?url=http://acme.org/fhir/ValueSet/colours"
        )
        .await,
        std::slice::from_ref(&vs)
    );
    assert!(
        matched(&mock, &token, "ValueSet?url=http://acme.org/fhir")
            .await
            .is_empty()
    );
    assert_eq!(
        matched(&mock, &token, "ValueSet?url:below=http://acme.org/fhir").await,
        std::slice::from_ref(&vs)
    );
    assert_eq!(
        matched(
            &mock,
            &token,
            "ValueSet?url:above=http://acme.org/fhir/ValueSet/colours/v2"
        )
        .await,
        [vs]
    );
    // Not indexed, so never "missing" either.
    refused(&mock, &token, "Observation?_text:missing=true").await;
    let outcome = refused(&mock, &token, "Observation?code:in=http://acme.org/vs").await;
    assert!(
        outcome["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("terminology")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn references_chains_and_reverse_chains() {
    let mock = start().await;
    let token = mock.mint(ALL, None);
    let everyone_of = |ids: Vec<String>| ids.iter().all(|k| k.starts_with("Observation/obs-1-"));

    // Chains, one and two levels, with and without the target type.
    let kanfeld = matched(
        &mock,
        &token,
        "Observation?subject:Patient.name=kanfeld&_count=500",
    )
    .await;
    assert!(!kanfeld.is_empty() && everyone_of(kanfeld.clone()));
    assert_eq!(
        matched(&mock, &token, "Observation?subject.family=kanfeld&_count=500").await,
        kanfeld
    );
    let gp = matched(
        &mock,
        &token,
        "Observation?subject:Patient.general-practitioner:Practitioner.name=harrison&_count=500",
    )
    .await;
    // Dr Harrison is the GP of patients 1 and 3 only.
    let mut of_her_patients = matched(
        &mock,
        &token,
        "Observation?subject=Patient/1,Patient/3&_count=500",
    )
    .await;
    let mut gp = gp;
    gp.sort();
    of_her_patients.sort();
    assert_eq!(gp, of_her_patients);
    assert!(
        matched(&mock, &token, "Observation?subject:Patient.name=nobody-at-all")
            .await
            .is_empty()
    );
    let outcome = refused(&mock, &token, "Observation?subject:Patient.shoe-size=9").await;
    assert!(
        outcome["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("shoe-size")
    );

    // Reverse chain: patients with a heart-rate observation.
    let with_heart_rate = matched(
        &mock,
        &token,
        &format!("Patient?_has:Observation:subject:code={LOINC}|8867-4"),
    )
    .await;
    assert!(with_heart_rate.contains(&"Patient/1".to_owned()));
    assert!(
        matched(
            &mock,
            &token,
            "Patient?_has:Observation:subject:code=no-such-code"
        )
        .await
        .is_empty()
    );

    // :identifier and :[type].
    let report = create(
        &mock,
        &token,
        json!({"resourceType": "DiagnosticReport", "status": "final", "code": {"text": "FBC"},
               "subject": {"reference": "Patient/1"},
               "performer": [{"identifier": {"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "RHQ"}}],
               "result": [{"reference": "Observation/obs-1-1"}]}),
    )
    .await;
    let report = format!("DiagnosticReport/{report}");
    assert_eq!(
        matched(
            &mock,
            &token,
            "DiagnosticReport?performer:identifier=https://fhir.nhs.uk/Id/ods-organization-code|RHQ"
        )
        .await,
        std::slice::from_ref(&report)
    );
    assert!(
        matched(&mock, &token, "DiagnosticReport?subject:Patient=1")
            .await
            .contains(&report)
    );
    assert!(
        matched(&mock, &token, "DiagnosticReport?subject:Group=1")
            .await
            .is_empty()
    );
    assert_eq!(
        matched(&mock, &token, "DiagnosticReport?result=Observation/obs-1-1").await,
        [report]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_reveals_nothing_the_token_cannot_read() {
    let mock = start().await;
    // May search Observations, not Patients: a chain through Patient is refused,
    // rather than telling, by what it matches, whose name is what.
    let token = mock.mint("user/Observation.rs", None);
    let (status, outcome) = mock
        .fhir_get("Observation?subject:Patient.name=kanfeld", &token)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{outcome}");
    let (status, _) = mock
        .fhir_get("Patient?_has:Observation:subject:code=8867-4", &token)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A token that may read only male patients: Bernie Kanfeld is hidden from it,
    // so a chain on her name must find nothing, though her Observations are open.
    let men_only = mock.mint("user/Observation.rs user/Patient.rs?gender=male", None);
    assert!(
        !matched(&mock, &men_only, "Observation?subject=Patient/1")
            .await
            .is_empty()
    );
    assert!(
        matched(&mock, &men_only, "Observation?subject:Patient.name=kanfeld")
            .await
            .is_empty()
    );
    // `_has` looks only through Observations the token may search: heart rates are
    // vital signs, which a laboratory-only token cannot see.
    let heart_rates = "Patient?_has:Observation:subject:code=8867-4";
    let labs_only = mock.mint("user/Patient.rs user/Observation.rs?category=laboratory", None);
    assert!(matched(&mock, &labs_only, heart_rates).await.is_empty());
    let all_observations = mock.mint("user/Patient.rs user/Observation.rs", None);
    assert!(
        matched(&mock, &all_observations, heart_rates)
            .await
            .contains(&"Patient/1".to_owned())
    );
    let everyone = mock.mint("user/Observation.rs user/Patient.rs", None);
    assert!(
        !matched(&mock, &everyone, "Observation?subject:Patient.name=kanfeld")
            .await
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn includes_iterate_and_wildcards() {
    let mock = start().await;
    let token = mock.mint(ALL, None);
    let (status, bundle) = mock
        .fhir_get("Encounter?_id=enc-1-4&_include=Encounter:practitioner", &token)
        .await;
    assert_eq!(status, StatusCode::OK, "{bundle}");
    assert!(
        entries(&bundle).contains(&("Practitioner/2".into(), "include".into())),
        "{bundle}"
    );

    // Observation → its encounter → (iterate) the encounter's practitioner.
    let (_, bundle) = mock
        .fhir_get(
            "Observation?_id=obs-1-15&_include=Observation:encounter&_include:iterate=Encounter:practitioner",
            &token,
        )
        .await;
    let found = entries(&bundle);
    assert!(
        found.contains(&("Encounter/enc-1-4".into(), "include".into())),
        "{found:?}"
    );
    assert!(
        found.contains(&("Practitioner/2".into(), "include".into())),
        "{found:?}"
    );

    let (_, bundle) = mock
        .fhir_get("Observation?_id=obs-1-15&_include=Observation:*", &token)
        .await;
    let found = entries(&bundle);
    for key in ["Patient/1", "Encounter/enc-1-4", "Practitioner/2"] {
        assert!(
            found.contains(&(key.into(), "include".into())),
            "{key} in {found:?}"
        );
    }

    let (_, bundle) = mock
        .fhir_get(
            "Patient?_id=1&_revinclude=Observation:subject&_revinclude=Encounter:subject",
            &token,
        )
        .await;
    let found = entries(&bundle);
    assert!(
        found
            .iter()
            .any(|(k, m)| k.starts_with("Observation/obs-1-") && m == "include")
    );
    assert!(
        found
            .iter()
            .any(|(k, m)| k.starts_with("Encounter/enc-1-") && m == "include")
    );
    refused(&mock, &token, "Patient?_include=Observation:patient").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summary_and_elements_trim_and_tag() {
    let mock = start().await;
    let token = mock.mint(ALL, None);
    let subsetted = |resource: &Value| {
        resource["meta"]["tag"]
            .as_array()
            .is_some_and(|tags| tags.iter().any(|t| t["code"] == "SUBSETTED"))
    };
    let (_, bundle) = mock.fhir_get("Patient?_id=1&_elements=name", &token).await;
    let patient = &bundle["entry"][0]["resource"];
    assert!(patient["name"].is_array() && patient["address"].is_null() && patient["gender"].is_null());
    assert!(subsetted(patient));

    let (_, bundle) = mock.fhir_get("Patient?_id=1&_summary=true", &token).await;
    let patient = &bundle["entry"][0]["resource"];
    assert!(patient["name"].is_array() && patient["birthDate"].is_string() && subsetted(patient));
    // Patient.generalPractitioner is not a summary element.
    assert!(patient["generalPractitioner"].is_null());

    let (_, bundle) = mock
        .fhir_get("Observation?_id=obs-1-15&_summary=text", &token)
        .await;
    let observation = &bundle["entry"][0]["resource"];
    // text, and what R4 requires of an Observation: status and code.
    assert!(observation["status"].is_string() && observation["code"].is_object());
    assert!(observation["valueQuantity"].is_null() && subsetted(observation));

    let (_, bundle) = mock
        .fhir_get("Observation?patient=1&_summary=count", &token)
        .await;
    assert!(bundle["total"].as_u64().unwrap() > 10 && bundle["entry"].as_array().is_none_or(Vec::is_empty));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_parameters_are_refused_unless_lenient() {
    let mock = start().await;
    let token = mock.mint(ALL, None);
    let outcome = refused(&mock, &token, "Patient?shoe-size=9&family=Kanfeld").await;
    assert_eq!(outcome["issue"][0]["expression"], json!(["Patient?shoe-size"]));
    assert!(
        outcome["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("shoe-size")
    );

    let response = mock
        .http
        .get(mock.fhir("Patient?shoe-size=9&family=Kanfeld"))
        .bearer_auth(&token)
        // One preference of a list (RFC 7240), spaces allowed.
        .header("prefer", "return=representation, handling = lenient")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let bundle: Value = response.json().await.unwrap();
    assert_eq!(bundle["total"], 1);
    let self_link = bundle["link"][0]["url"].as_str().unwrap();
    assert!(
        self_link.contains("family=Kanfeld") && !self_link.contains("shoe-size"),
        "{self_link}"
    );
    // Lenient excuses unknown names, not bad values.
    let response = mock
        .http
        .get(mock.fhir("Patient?birthdate=yesterday"))
        .bearer_auth(&token)
        .header("prefer", "handling=lenient")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compartment_follows_the_compartment_definition() {
    let mock = start().await;
    let writer = mock.mint(ALL, None);
    // Patient 2 performed an observation about patient 1 (a carer's reading, say):
    // R4 puts it in both compartments, through `subject` and `performer`.
    let shared = create(
        &mock,
        &writer,
        json!({"resourceType": "Observation", "status": "final", "code": {"text": "carer's note"},
               "subject": {"reference": "Patient/1"}, "performer": [{"reference": "Patient/2"}]}),
    )
    .await;
    let key = format!("Observation/{shared}");
    let patient_two = mock.mint("patient/Observation.rs", Some("2"));
    assert_eq!(mock.fhir_get(&key, &patient_two).await.0, StatusCode::OK);
    assert!(
        matched(&mock, &patient_two, "Observation?_count=500")
            .await
            .contains(&key)
    );
    let patient_three = mock.mint("patient/Observation.rs", Some("3"));
    assert_eq!(mock.fhir_get(&key, &patient_three).await.0, StatusCode::FORBIDDEN);

    // Claim, which the mock did not serve before, is in the compartment of its `patient`.
    let claim = create(
        &mock,
        &writer,
        json!({"resourceType": "Claim", "status": "active", "use": "claim", "created": "2025-01-01",
               "type": {"text": "oral"}, "priority": {"text": "normal"}, "provider": {"reference": "Practitioner/2"},
               "insurance": [], "patient": {"reference": "Patient/2"}}),
    )
    .await;
    let claims = mock.mint("patient/Claim.rs", Some("2"));
    assert_eq!(matched(&mock, &claims, "Claim").await, [format!("Claim/{claim}")]);
    let other = mock.mint("patient/Claim.rs", Some("1"));
    assert!(matched(&mock, &other, "Claim").await.is_empty());
}

/// Token searches without a patient start from the store's code index; what it
/// holds must follow updates, deletes and `_id`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_searches_follow_updates_and_deletes() {
    let mock = start().await;
    let token = mock.mint(ALL, None);
    let coded = |code: &str| {
        json!({"resourceType": "Observation", "status": "final",
               "code": {"coding": [{"system": LOINC, "code": code}]}, "subject": {"reference": "Patient/1"}})
    };
    let id = create(&mock, &token, coded("1111-1")).await;
    let key = vec![format!("Observation/{id}")];
    let put = |code: &str| {
        let mut resource = coded(code);
        resource["id"] = json!(id);
        mock.http
            .put(mock.fhir(&format!("Observation/{id}")))
            .bearer_auth(&token)
            .header(CONTENT_TYPE, "application/fhir+json")
            .body(resource.to_string())
            .send()
    };
    assert_eq!(matched(&mock, &token, "Observation?code=1111-1").await, key);
    assert_eq!(put("2222-2").await.unwrap().status(), StatusCode::OK);
    assert!(matched(&mock, &token, "Observation?code=1111-1").await.is_empty());
    assert_eq!(
        matched(&mock, &token, "Observation?code=2222-2,9999-9").await,
        key
    );
    // Back to the first code: found once, not once per time it was set.
    assert_eq!(put("1111-1").await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        matched(&mock, &token, "Observation?code=1111-1,2222-2").await,
        key
    );
    assert_eq!(
        matched(
            &mock,
            &token,
            &format!("Observation?_id={id},obs-1-1&code=1111-1")
        )
        .await,
        key
    );
    let deleted = mock
        .http
        .delete(mock.fhir(&format!("Observation/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert!(matched(&mock, &token, "Observation?code=1111-1").await.is_empty());
}
