//! SMART enforcement: for each kind of token, the exact status of each request and
//! the guarantee that no resource of another patient ever appears, whether read,
//! searched, included, reverse-included or found on a later page.

use crate::common::*;
use ccri_mock::PATIENT_ACCESS_SECRET;
use ccri_mock::TokenKind;
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};

const LAB: &str = "http://terminology.hl7.org/CodeSystem/observation-category|laboratory";

/// Every resource of a Bundle, across all its pages.
async fn all_pages(mock: &Mock, token: &str, query: &str) -> Vec<Value> {
    let (status, mut bundle) = mock.fhir_get(query, token).await;
    assert_eq!(status, StatusCode::OK, "{query}: {bundle}");
    let mut resources = Vec::new();
    loop {
        resources.extend(
            bundle["entry"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["resource"].clone()),
        );
        let Some(next) = link(&bundle, "next") else { break };
        bundle = mock.fhir_get(&next, token).await.1;
    }
    resources
}

/// The patient a resource belongs to, as the compartment rules define it.
fn owner(resource: &Value) -> Option<String> {
    if resource["resourceType"] == "Patient" {
        return resource["id"].as_str().map(str::to_owned);
    }
    ["subject", "patient"].iter().find_map(|f| {
        resource[*f]["reference"]
            .as_str()?
            .strip_prefix("Patient/")
            .map(str::to_owned)
    })
}

/// The searches whose every result, with includes and on every page, must be Bernie's.
const SEARCHES: &[&str] = &[
    "Observation?_count=7",
    "Observation?patient=3",
    "Observation?subject=Patient/3",
    "Patient",
    "Patient?_id=3",
    "Patient?_revinclude=Observation:patient&_revinclude=Condition:patient",
    "Observation?_include=Observation:patient&_count=4",
    "Condition?_include=Condition:patient",
    "Encounter?_count=2",
    "Immunization",
    "AllergyIntolerance?patient=1,3",
];

async fn assert_only_bernie(mock: &Mock, token: &str, what: &str) {
    for query in SEARCHES {
        for resource in all_pages(mock, token, query).await {
            assert_eq!(
                owner(&resource).as_deref(),
                Some("1"),
                "{what}: {query} returned {}",
                resource["id"]
            );
        }
    }
    assert_eq!(
        mock.fhir_get("Patient/1", token).await.0,
        StatusCode::OK,
        "{what}"
    );
    for other in [
        "Patient/3",
        "Observation/obs-3-1",
        "Condition/cond-3-1",
        "Patient/3/_history",
        "Patient/3/_history/1",
    ] {
        assert_eq!(
            mock.fhir_get(other, token).await.0,
            StatusCode::FORBIDDEN,
            "{what}: {other}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patient_scopes_v1_and_v2_see_only_the_patient_in_context() {
    let mock = start().await;
    for scope in [
        "launch/patient patient/*.read",
        "patient/*.rs",
        "patient/*.cruds",
        "patient/*.*",
    ] {
        let token = mock.mint(scope, Some("1"));
        assert_only_bernie(&mock, &token, scope).await;
        assert_eq!(all_pages(&mock, &token, "Observation").await.len(), 41, "{scope}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patient_scope_without_a_patient_sees_nothing() {
    let mock = start().await;
    let token = mock.mint("patient/*.rs", None);
    let (status, body) = mock.fhir_get("Observation", &token).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("launch/patient")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn granular_v2_scope_narrows_to_matching_resources() {
    let mock = start().await;
    let token = mock.mint(
        &format!("patient/Observation.rs?category={LAB} patient/Patient.rs"),
        Some("1"),
    );
    let observations = all_pages(&mock, &token, "Observation").await;
    assert_eq!(observations.len(), 5);
    for observation in &observations {
        assert_eq!(owner(observation).as_deref(), Some("1"));
        assert_eq!(observation["category"][0]["coding"][0]["code"], "laboratory");
    }
    // The search that states the constraint itself gets the same.
    assert_eq!(
        all_pages(&mock, &token, &format!("Observation?category={LAB}"))
            .await
            .len(),
        5
    );
    // A vital sign of the same patient is not readable, nor is another patient's lab.
    let vital = observations
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect::<Vec<_>>();
    assert!(!vital.contains(&"obs-1-1"));
    assert_eq!(
        mock.fhir_get("Observation/obs-1-1", &token).await.0,
        StatusCode::FORBIDDEN
    );
    let (status, conditions) = mock.fhir_get("Condition", &token).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{conditions}");
    assert!(
        conditions["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("patient/Condition.s")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_and_system_scopes_see_every_patient() {
    let mock = start().await;
    for scope in [
        "user/*.rs",
        "user/Observation.read user/Patient.read",
        "system/*.rs",
        "system/*.read",
    ] {
        let token = mock.mint(scope, None);
        assert_eq!(
            mock.fhir_get("Patient/3", &token).await.0,
            StatusCode::OK,
            "{scope}"
        );
        assert!(
            all_pages(&mock, &token, "Observation?patient=3").await.len() > 5,
            "{scope}"
        );
        let patients = all_pages(&mock, &token, "Patient").await;
        assert_eq!(patients.len(), 10, "{scope}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_need_write_scopes_and_stay_in_the_compartment() {
    let mock = start().await;
    let observation = |patient: &str| {
        json!({"resourceType": "Observation", "status": "final", "code": {"text": "note"},
               "subject": {"reference": format!("Patient/{patient}")}})
    };
    let post = |token: String, body: Value| {
        mock.http
            .post(mock.fhir("Observation"))
            .bearer_auth(token)
            .header(CONTENT_TYPE, "application/fhir+json")
            .body(body.to_string())
            .send()
    };
    for read_only in ["patient/*.read", "patient/*.rs", "user/*.read", "system/*.rs"] {
        let token = mock.mint(read_only, Some("1"));
        let response = post(token.clone(), observation("1")).await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{read_only}");
        let delete = mock
            .http
            .delete(mock.fhir("Observation/obs-1-1"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(delete.status(), StatusCode::FORBIDDEN, "{read_only}");
    }
    let writer = mock.mint("patient/*.cruds", Some("1"));
    assert_eq!(
        post(writer.clone(), observation("1")).await.unwrap().status(),
        StatusCode::CREATED
    );
    assert_eq!(
        post(writer.clone(), observation("3")).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    // Moving Bernie's observation to another patient is a write outside the compartment.
    let (_, mut moved) = mock.fhir_get("Observation/obs-1-1", &writer).await;
    moved["subject"]["reference"] = json!("Patient/3");
    let response = mock
        .http
        .put(mock.fhir("Observation/obs-1-1"))
        .bearer_auth(&writer)
        .header(CONTENT_TYPE, "application/fhir+json")
        .body(moved.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let delete = mock
        .http
        .delete(mock.fhir("Observation/obs-3-1"))
        .bearer_auth(&writer)
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), StatusCode::FORBIDDEN);
    // v1 `.write` writes but never reads.
    let write_only = mock.mint("user/*.write", None);
    assert_eq!(
        post(write_only.clone(), observation("3")).await.unwrap().status(),
        StatusCode::CREATED
    );
    assert_eq!(
        mock.fhir_get("Observation/obs-3-1", &write_only).await.0,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_expired_and_revoked_tokens_are_401() {
    let mock = start().await;
    let response = mock.http.get(mock.fhir("Patient/1")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let response = mock
        .http
        .get(mock.fhir("Observation?patient=1"))
        .header("authorization", "Basic abc")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    let now = jsonwebtoken::get_current_timestamp();
    let expired = KEY.sign(TokenKind::Access, &json!({
        "iss": mock.server.urls.auth_base, "aud": mock.server.urls.fhir_base, "sub": "x", "client_id": "demo-app",
        "scope": "user/*.rs", "exp": now - 5, "iat": now - 100, "jti": "old", "grant": "g"
    }));
    let (status, body) = mock.fhir_get("Patient/1", &expired).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("expired")
    );

    let token = mock.patient_access_token().await;
    assert_eq!(
        mock.fhir_get("Patient/1", &token).await.0,
        StatusCode::OK,
        "and now cached"
    );
    let basic = Some(("patient-access", PATIENT_ACCESS_SECRET));
    assert_eq!(mock.revoke(basic, &[("token", &token)]).await, StatusCode::OK);
    let (status, body) = mock.fhir_get("Patient/1", &token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insufficient_scope_names_what_is_missing() {
    let mock = start().await;
    let token = mock.mint("patient/Patient.rs", Some("1"));
    let (status, body) = mock.fhir_get("Observation?patient=1", &token).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let diagnostics = body["issue"][0]["diagnostics"].as_str().unwrap();
    assert!(diagnostics.contains("patient/Observation.s"), "{diagnostics}");
    assert_eq!(body["issue"][0]["code"], "forbidden");
}
