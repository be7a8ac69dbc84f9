//! The FHIR REST API: interactions, search parameters by type, paging, errors.

use crate::common::*;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, ETAG, IF_MATCH, LOCATION};
use serde_json::{Value, json};

const ALL: &str = "user/*.cruds";

fn observation(patient: &str, code: &str, when: &str) -> Value {
    json!({
        "resourceType": "Observation", "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "effectiveDateTime": when,
        "valueQuantity": {"value": 70, "unit": "beats/minute"}
    })
}

async fn send(
    mock: &Mock,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = mock.http.request(method, mock.fhir(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request
            .header(CONTENT_TYPE, "application/fhir+json")
            .body(body.to_string());
    }
    request.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_read_update_history_vread_delete() {
    let mock = start().await;
    let token = mock.mint(ALL, None);
    let created = send(
        &mock,
        reqwest::Method::POST,
        "Observation",
        &token,
        Some(observation("1", "8867-4", "2025-01-02")),
    )
    .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let location = created.headers()[LOCATION].to_str().unwrap().to_owned();
    assert_eq!(created.headers()[ETAG], "W/\"1\"");
    let body: Value = created.json().await.unwrap();
    let id = body["id"].as_str().unwrap().to_owned();
    assert_eq!(location, mock.fhir(&format!("Observation/{id}/_history/1")));
    assert_eq!(body["meta"]["versionId"], "1");
    assert!(body["meta"]["lastUpdated"].as_str().unwrap().ends_with('Z'));

    let (status, read) = mock.fhir_get(&format!("Observation/{id}"), &token).await;
    assert_eq!((status, &read["id"]), (StatusCode::OK, &json!(id)));

    let mut changed = read.clone();
    changed["status"] = json!("amended");
    let stale = mock
        .http
        .put(mock.fhir(&format!("Observation/{id}")))
        .bearer_auth(&token)
        .header(CONTENT_TYPE, "application/fhir+json")
        .header(IF_MATCH, "W/\"7\"")
        .body(changed.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::PRECONDITION_FAILED);
    let outcome: Value = stale.json().await.unwrap();
    assert_eq!(outcome["resourceType"], "OperationOutcome");

    let updated = mock
        .http
        .put(mock.fhir(&format!("Observation/{id}")))
        .bearer_auth(&token)
        .header(CONTENT_TYPE, "application/fhir+json")
        .header(IF_MATCH, "W/\"1\"")
        .header("Prefer", "return=minimal")
        .body(changed.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(updated.status(), StatusCode::OK);
    assert_eq!(updated.headers()[ETAG], "W/\"2\"");
    assert!(updated.text().await.unwrap().is_empty(), "Prefer: return=minimal");

    let (status, history) = mock.fhir_get(&format!("Observation/{id}/_history"), &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(history["type"], "history");
    assert_eq!(history["total"], 2);
    assert_eq!(history["entry"][0]["resource"]["status"], "amended");
    let (status, first) = mock
        .fhir_get(&format!("Observation/{id}/_history/1"), &token)
        .await;
    assert_eq!((status, &first["status"]), (StatusCode::OK, &json!("final")));
    let (status, _) = mock
        .fhir_get(&format!("Observation/{id}/_history/9"), &token)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let deleted = send(
        &mock,
        reqwest::Method::DELETE,
        &format!("Observation/{id}"),
        &token,
        None,
    )
    .await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let (status, outcome) = mock.fhir_get(&format!("Observation/{id}"), &token).await;
    assert_eq!(
        (status, &outcome["resourceType"]),
        (StatusCode::GONE, &json!("OperationOutcome"))
    );
    let again = send(
        &mock,
        reqwest::Method::DELETE,
        &format!("Observation/{id}"),
        &token,
        None,
    )
    .await;
    assert_eq!(again.status(), StatusCode::GONE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_creates_when_absent() {
    let mock = start().await;
    let token = mock.mint(ALL, None);
    let mut resource = observation("1", "8867-4", "2025-01-02");
    resource["id"] = json!("my-own-id");
    let response = send(
        &mock,
        reqwest::Method::PUT,
        "Observation/my-own-id",
        &token,
        Some(resource),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(
        mock.fhir_get("Observation/my-own-id", &token).await.0,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_is_an_operation_outcome() {
    let mock = start().await;
    let token = mock.mint(ALL, None);
    let outcome = |response: reqwest::Response| async move {
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["resourceType"], "OperationOutcome", "{status}: {body}");
        assert!(!body["issue"][0]["diagnostics"].as_str().unwrap().is_empty());
        status
    };
    let get = |path: &str| mock.http.get(mock.fhir(path)).bearer_auth(&token).send();
    assert_eq!(
        outcome(get("Spaceship/1").await.unwrap()).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        outcome(get("Patient/nope").await.unwrap()).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        outcome(get("Patient?shoe-size=9").await.unwrap()).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        outcome(get("Observation?date=yesterday").await.unwrap()).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        outcome(get("Observation?code:in=http://x.org/vs").await.unwrap()).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        outcome(get("Observation?code-value-quantity=8480-6").await.unwrap()).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        outcome(get("Patient?gender:fuzzy=f").await.unwrap()).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        outcome(get("Patient?_count=lots").await.unwrap()).await,
        StatusCode::BAD_REQUEST
    );
    // An exponent that overflowed the implicit-precision arithmetic (a panic
    // before): the value is 0, which no quantity here equals.
    let (status, bundle) = mock
        .fhir_get("Observation?value-quantity=1.5e-2147483648", &token)
        .await;
    assert_eq!(
        (status, &bundle["total"]),
        (StatusCode::OK, &json!(0)),
        "{bundle}"
    );
    assert_eq!(
        outcome(get("Patient?_sort=shoe-size").await.unwrap()).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        outcome(get("Patient?_include=Observation:patient").await.unwrap()).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        outcome(get("Patient/1/_history/x").await.unwrap()).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        outcome(get("Patient/1/what/ever").await.unwrap()).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        outcome(get("Patient/1/$validate").await.unwrap()).await,
        StatusCode::NOT_IMPLEMENTED
    );
    let patch = mock.http.patch(mock.fhir("Patient/1")).bearer_auth(&token).send();
    assert_eq!(
        outcome(patch.await.unwrap()).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    let options = mock
        .http
        .request(reqwest::Method::TRACE, mock.fhir("Patient/1"))
        .bearer_auth(&token)
        .send();
    assert_eq!(
        outcome(options.await.unwrap()).await,
        StatusCode::METHOD_NOT_ALLOWED
    );
    // `path` "" is the base itself, where batches and transactions go.
    let post = |path: &str, content_type: &str, body: String| {
        mock.http
            .post(mock.fhir(path).trim_end_matches('/'))
            .bearer_auth(&token)
            .header(CONTENT_TYPE, content_type)
            .body(body)
            .send()
    };
    let collection = json!({"resourceType": "Bundle", "type": "collection"}).to_string();
    assert_eq!(
        outcome(post("", "application/fhir+json", collection).await.unwrap()).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        outcome(
            post("Observation", "application/fhir+json", "{not json".into())
                .await
                .unwrap()
        )
        .await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        outcome(
            post("Observation", "application/fhir+json", "[1,2]".into())
                .await
                .unwrap()
        )
        .await,
        StatusCode::BAD_REQUEST
    );
    let patient = json!({"resourceType": "Patient"}).to_string();
    assert_eq!(
        outcome(
            post("Observation", "application/fhir+json", patient.clone())
                .await
                .unwrap()
        )
        .await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        outcome(post("Patient", "text/plain", patient).await.unwrap()).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    let huge = json!({"resourceType": "Patient", "text": {"div": "x".repeat(2 * 1024 * 1024)}}).to_string();
    assert_eq!(
        outcome(post("Patient", "application/fhir+json", huge).await.unwrap()).await,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    // …which a Bundle may be: its route raises the limit the whole API has.
    let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": [{
        "resource": {"resourceType": "Patient", "name": [{"text": "x".repeat(2 * 1024 * 1024)}]},
        "request": {"method": "POST", "url": "Patient"},
    }]});
    let response = post("", "application/fhir+json", bundle.to_string())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(
        answer["entry"][0]["response"]["status"], "201 Created",
        "{answer}"
    );

    let put = |path: &str, body: Value| {
        mock.http
            .put(mock.fhir(path))
            .bearer_auth(&token)
            .header(CONTENT_TYPE, "application/fhir+json")
            .body(body.to_string())
            .send()
    };
    assert_eq!(
        outcome(
            put("Patient/1", json!({"resourceType": "Patient", "id": "2"}))
                .await
                .unwrap()
        )
        .await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        outcome(
            put("Patient/1", json!({"resourceType": "Patient"}))
                .await
                .unwrap()
        )
        .await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        outcome(
            put(
                "Patient/bad_id!",
                json!({"resourceType": "Patient", "id": "bad_id!"})
            )
            .await
            .unwrap()
        )
        .await,
        StatusCode::BAD_REQUEST
    );
    // The server still answers after all that.
    assert_eq!(mock.fhir_get("Patient/1", &token).await.0, StatusCode::OK);
}

async fn ids(mock: &Mock, token: &str, query: &str) -> Vec<String> {
    let (status, bundle) = mock.fhir_get(query, token).await;
    assert_eq!(status, StatusCode::OK, "{query}: {bundle}");
    entries(&bundle)
        .into_iter()
        .filter(|(_, mode)| mode == "match")
        .map(|(id, _)| id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_parameters() {
    let mock = start().await;
    let token = mock.mint(ALL, None);
    let heart_rates = ids(
        &mock,
        &token,
        "Observation?patient=1&code=http://loinc.org|8867-4&_count=100",
    )
    .await;
    assert_eq!(heart_rates.len(), 9, "one per visit");
    assert_eq!(
        ids(&mock, &token, "Observation?patient=1&code=8867-4&_count=100").await,
        heart_rates
    );
    assert_eq!(
        ids(
            &mock,
            &token,
            "Observation?patient=1&code=http://snomed.info/sct|8867-4"
        )
        .await
        .len(),
        0
    );
    assert_eq!(
        ids(&mock, &token, "Observation?patient=1&code=|8867-4")
            .await
            .len(),
        0,
        "the coding has a system"
    );
    let loinc = ids(
        &mock,
        &token,
        "Observation?patient=1&code=http://loinc.org|&_count=100",
    )
    .await;
    assert_eq!(loinc.len(), 41);
    let either = ids(
        &mock,
        &token,
        "Observation?patient=1&code=8867-4,29463-7&_count=100",
    )
    .await;
    assert_eq!(either.len(), 18);
    let labs = ids(
        &mock,
        &token,
        "Observation?patient=1&category=laboratory&_count=100",
    )
    .await;
    assert_eq!(labs.len(), 5);
    assert_eq!(
        ids(
            &mock,
            &token,
            "Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9876543210"
        )
        .await,
        ["Patient/1"]
    );
    assert_eq!(
        ids(&mock, &token, "Patient?identifier=9876543210").await,
        ["Patient/1"]
    );
    let women = ids(&mock, &token, "Patient?gender=female").await;
    assert!(women.contains(&"Patient/1".to_owned()) && !women.contains(&"Patient/3".to_owned()));
    assert_eq!(
        ids(&mock, &token, "Patient?_id=1,3").await,
        ["Patient/1", "Patient/3"]
    );
    assert_eq!(
        ids(&mock, &token, "Patient?email=bernie.kanfeld@example.nhs.uk").await,
        ["Patient/1"]
    );
    assert_eq!(
        ids(&mock, &token, "Condition?patient=3&clinical-status=active")
            .await
            .len(),
        2
    );
    assert_eq!(
        ids(
            &mock,
            &token,
            "Organization?identifier=https://fhir.nhs.uk/Id/ods-organization-code|C81010"
        )
        .await,
        ["Organization/C81010"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn string_parameters() {
    let mock = start().await;
    let token = mock.mint(ALL, None);
    assert_eq!(ids(&mock, &token, "Patient?name=kan").await, ["Patient/1"]);
    assert_eq!(ids(&mock, &token, "Patient?family=KANFELD").await, ["Patient/1"]);
    assert_eq!(
        ids(&mock, &token, "Patient?family:exact=Kanfeld").await,
        ["Patient/1"]
    );
    assert!(
        ids(&mock, &token, "Patient?family:exact=kanfeld")
            .await
            .is_empty()
    );
    assert!(
        ids(&mock, &token, "Patient?family=feld").await.is_empty(),
        "prefix, not substring"
    );
    assert_eq!(
        ids(&mock, &token, "Patient?family:contains=NFEL").await,
        ["Patient/1"]
    );
    assert_eq!(
        ids(&mock, &token, "Patient?given=zoe").await,
        ["Patient/4"],
        "accent-insensitive"
    );
    assert_eq!(ids(&mock, &token, "Patient?given=Zo%C3%AB").await, ["Patient/4"]);
    assert_eq!(
        ids(&mock, &token, "Patient?address-postalcode=S11").await,
        ["Patient/1"]
    );
    assert_eq!(
        ids(&mock, &token, "Organization?name=the%20moir").await,
        ["Organization/C81010"]
    );
    assert_eq!(
        ids(&mock, &token, "Practitioner?name=harr").await,
        ["Practitioner/2"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn date_parameters_and_sorting() {
    let mock = start().await;
    let token = mock.mint(ALL, None);
    let all = ids(&mock, &token, "Observation?patient=1&_count=100").await;
    let in_2023 = ids(&mock, &token, "Observation?patient=1&date=2023&_count=100").await;
    let from_2024 = ids(
        &mock,
        &token,
        "Observation?patient=1&date=ge2024-01-01&_count=100",
    )
    .await;
    let before_2024 = ids(&mock, &token, "Observation?patient=1&date=lt2024&_count=100").await;
    assert!(!in_2023.is_empty() && !from_2024.is_empty());
    assert_eq!(
        in_2023, before_2024,
        "all of Bernie's observations are from 2023 on"
    );
    assert_eq!(in_2023.len() + from_2024.len(), all.len());
    let not_2023 = ids(&mock, &token, "Observation?patient=1&date=ne2023&_count=100").await;
    assert_eq!(not_2023.len(), from_2024.len());
    let window = ids(
        &mock,
        &token,
        "Observation?patient=1&date=ge2023-05&date=le2023-05&_count=100",
    )
    .await;
    assert_eq!(
        window,
        ids(&mock, &token, "Observation?patient=1&date=2023-05&_count=100").await
    );
    assert_eq!(
        ids(&mock, &token, "Patient?birthdate=1998-03-19").await,
        ["Patient/1"]
    );
    assert_eq!(
        ids(&mock, &token, "Patient?birthdate=gt2010").await,
        ["Patient/10"]
    );
    assert!(
        ids(&mock, &token, "Patient?birthdate=1998-03-19T10:00:00Z")
            .await
            .is_empty(),
        "a day is not contained in a second"
    );

    let (_, newest_first) = mock
        .fhir_get("Observation?patient=1&_sort=-date&_count=100", &token)
        .await;
    let dates: Vec<&str> = newest_first["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["effectiveDateTime"].as_str().unwrap())
        .collect();
    let mut sorted = dates.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(dates, sorted);
    let (_, by_update) = mock
        .fhir_get("Encounter?_sort=_lastUpdated&_count=5", &token)
        .await;
    assert_eq!(by_update["entry"].as_array().unwrap().len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_is_stable_under_concurrent_writes() {
    let mock = start().await;
    let token = mock.mint(ALL, None);
    let (_, first) = mock
        .fhir_get("Observation?patient=1&_count=10&_sort=date", &token)
        .await;
    assert_eq!(first["total"], 41);
    assert!(link(&first, "previous").is_none());
    let mut seen = entries(&first);
    // Someone writes while we page.
    send(
        &mock,
        reqwest::Method::POST,
        "Observation",
        &token,
        Some(observation("1", "8867-4", "2000-01-01")),
    )
    .await;
    let mut next = link(&first, "next");
    let mut pages = 1;
    while let Some(url) = next {
        let (status, page) = mock.fhir_get(&url, &token).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(page["total"], 41, "a later page sees the first page's snapshot");
        assert!(link(&page, "previous").is_some());
        seen.extend(entries(&page));
        next = link(&page, "next");
        pages += 1;
    }
    assert_eq!(pages, 5);
    let unique: std::collections::HashSet<_> = seen.iter().collect();
    assert_eq!((seen.len(), unique.len()), (41, 41));
    let (_, fresh) = mock.fhir_get("Observation?patient=1&_count=10", &token).await;
    assert_eq!(fresh["total"], 42);
    for entry in fresh["entry"].as_array().unwrap() {
        assert!(
            entry["fullUrl"]
                .as_str()
                .unwrap()
                .starts_with(&mock.server.urls.fhir_base)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn includes_summary_total_and_post_search() {
    let mock = start().await;
    let token = mock.mint(ALL, None);
    let (_, bundle) = mock
        .fhir_get(
            "Patient?_id=1&_revinclude=Observation:patient&_include=Patient:general-practitioner&_count=5",
            &token,
        )
        .await;
    let got = entries(&bundle);
    assert_eq!(got[0], ("Patient/1".to_owned(), "match".to_owned()));
    assert!(got.contains(&("Practitioner/2".to_owned(), "include".to_owned())));
    assert_eq!(
        got.iter()
            .filter(|(id, mode)| id.starts_with("Observation/") && mode == "include")
            .count(),
        41
    );
    let (_, with_patient) = mock
        .fhir_get("Observation?patient=3&_include=Observation:patient", &token)
        .await;
    assert!(entries(&with_patient).contains(&("Patient/3".to_owned(), "include".to_owned())));

    let (_, count) = mock
        .fhir_get("Observation?patient=1&_summary=count", &token)
        .await;
    assert_eq!(count["total"], 41);
    assert!(count["entry"].as_array().unwrap().is_empty());
    let (_, no_total) = mock.fhir_get("Observation?patient=1&_total=none", &token).await;
    assert!(no_total.get("total").is_none());

    let response = mock
        .http
        .post(mock.fhir("Observation/_search"))
        .bearer_auth(&token)
        .form(&[("patient", "1"), ("code", "8867-4")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let bundle: Value = response.json().await.unwrap();
    assert_eq!(bundle["total"], 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_lists_what_is_served() {
    let mock = start().await;
    let response = mock.http.get(mock.fhir("metadata")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    let exposed = response.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap();
    for header in ["etag", "last-modified", "location", "www-authenticate"] {
        assert!(exposed.contains(header), "{header} in {exposed}");
    }
    let statement: Value = response.json().await.unwrap();
    let rest = &statement["rest"][0];
    assert_eq!(
        rest["security"]["service"][0]["coding"][0]["code"],
        "SMART-on-FHIR"
    );
    let uris = smart_protocol::OAuthUris::from_capability_statement(&statement).unwrap();
    assert_eq!(uris.token, mock.auth("token"));
    let types: Vec<&str> = rest["resource"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    // Every R4 resource type, from the official definitions.
    assert!(types.len() >= 145, "{}", types.len());
    for kind in [
        "Patient",
        "DiagnosticReport",
        "CarePlan",
        "Claim",
        "ExplanationOfBenefit",
        "Provenance",
    ] {
        assert!(types.contains(&kind), "{kind}");
    }
    let observation = rest["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "Observation")
        .unwrap();
    let params: Vec<(&str, &str)> = observation["searchParam"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p["type"].as_str().unwrap()))
        .collect();
    for expected in [
        ("_id", "token"),
        ("_lastUpdated", "date"),
        ("_tag", "token"),
        ("code", "token"),
        ("code-value-quantity", "composite"),
        ("date", "date"),
        ("patient", "reference"),
        ("performer", "reference"),
        ("value-quantity", "quantity"),
    ] {
        assert!(params.contains(&expected), "{expected:?} in {params:?}");
    }
    // Full-text parameters have no expression in R4, and are not offered.
    assert!(
        !params
            .iter()
            .any(|(name, _)| *name == "_text" || *name == "_content")
    );
    assert!(
        observation["searchInclude"]
            .as_array()
            .unwrap()
            .contains(&json!("Observation:performer"))
    );
    assert_eq!(observation["conditionalCreate"], true);
    assert_eq!(observation["conditionalDelete"], "multiple");
    let interactions: Vec<&str> = rest["interaction"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["code"].as_str().unwrap())
        .collect();
    assert_eq!(interactions, ["transaction", "batch", "history-system"]);
    // The statement is valid R4: the server's own validation accepts it as a resource.
    let stored = mock
        .http
        .post(mock.fhir("CapabilityStatement"))
        .bearer_auth(mock.mint("user/*.cruds", None))
        .header(CONTENT_TYPE, "application/fhir+json")
        .body(statement.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(
        stored.status(),
        StatusCode::CREATED,
        "{}",
        stored.text().await.unwrap()
    );
    let patient = rest["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "Patient")
        .unwrap();
    assert!(
        patient["searchRevInclude"]
            .as_array()
            .unwrap()
            .contains(&json!("Observation:subject"))
    );

    let response = mock
        .http
        .get(mock.fhir(".well-known/smart-configuration"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
    let config: smart_protocol::SmartConfiguration = response.json().await.unwrap();
    assert_eq!(
        config.code_challenge_methods_supported,
        [smart_protocol::CodeChallengeMethod::S256]
    );
    assert_eq!(config.capabilities.len(), 18);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inspector_shows_each_request_with_its_client_and_no_secret() {
    let mock = start().await;
    let token = mock.patient_access_token().await;
    let (status, _) = mock.get_with_token(&mock.fhir("Patient/1"), &token).await;
    assert_eq!(status, StatusCode::OK);
    // A token in a URL is a mistake the inspector must show without repeating it.
    let leaked = mock.fhir("metadata?access_token=very-secret");
    mock.http.get(&leaked).send().await.unwrap();

    let records = mock.get_json(&mock.auth("inspector/requests")).await;
    let records = records.as_array().unwrap();
    let line = |r: &Value| format!("{} {} {}", r["method"], r["path"].as_str().unwrap(), r["status"]);
    let lines: Vec<String> = records.iter().map(line).collect();
    assert_eq!(
        lines[1..3],
        [
            r#""GET" /ccri-fhir/R4/Patient/1 200"#.to_owned(),
            r#""POST" /ccri-auth/token 200"#.to_owned(),
        ],
        "newest first"
    );
    // A secret becomes a fingerprint: the same for the same secret, nothing to recover.
    let leaked_path = records[0]["path"].as_str().unwrap();
    let fingerprint = leaked_path
        .strip_prefix("/ccri-fhir/R4/metadata?access_token=redacted-")
        .unwrap();
    assert!(
        fingerprint.len() == 10 && fingerprint.bytes().all(|b| b.is_ascii_hexdigit()),
        "{leaked_path}"
    );
    mock.http.get(&leaked).send().await.unwrap();
    let again = mock.get_json(&mock.auth("inspector/requests")).await;
    assert_eq!(again[0]["path"], leaked_path);
    assert_eq!(
        records[1]["credentials"].as_str().map(str::len),
        Some(10),
        "the bearer token's fingerprint"
    );
    assert_eq!(records[1]["client_id"], "patient-access", "from the bearer token");
    assert_eq!(
        records[2]["client_id"], "patient-access",
        "from Basic credentials"
    );
    let only = mock
        .get_json(&mock.auth("inspector/requests?client_id=patient-access"))
        .await;
    assert_eq!(only.as_array().unwrap().len(), 2);
    let page = mock.get_text(&mock.auth("inspector")).await;
    assert!(page.contains("/ccri-fhir/R4/Patient/1"), "{page}");
    for text in [page, Value::Array(records.clone()).to_string()] {
        assert!(
            !text.contains("very-secret") && !text.contains(&token),
            "a secret was shown"
        );
    }

    // Each failure shows what the response said.
    mock.token(
        Some(("patient-access", "wrong")),
        &[("grant_type", "client_credentials")],
    )
    .await;
    mock.get_with_token(&mock.fhir("Patient/nope"), &token).await;
    mock.get_with_token(&mock.fhir("Patient/1"), "not-a-token").await;
    let records = mock.get_json(&mock.auth("inspector/requests")).await;
    let problems: Vec<&str> = records.as_array().unwrap()[..3]
        .iter()
        .map(|r| r["problem"].as_str().unwrap())
        .collect();
    assert!(problems[0].starts_with("login: "), "{problems:?}");
    assert!(problems[1].starts_with("not-found: "), "{problems:?}");
    assert_eq!(problems[2], "invalid_client: client authentication failed");

    let off = start_with(|config| config.inspector_size = 0).await;
    off.http.get(off.fhir("metadata")).send().await.unwrap();
    assert_eq!(
        off.get_json(&off.auth("inspector/requests")).await,
        serde_json::json!([])
    );
}

/// What each request did wrong, with the lint's stable id, as a CI job reads it.
fn lint_ids(record: &Value) -> Vec<&str> {
    record["lints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap())
        .collect()
}

/// One launch is one group: its authorize request, pages, token requests and FHIR
/// calls share a launch id; the records come live and as a HAR; the lints that need
/// history (a reused state, a refresh storm) are found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inspector_groups_each_launch_follows_live_and_exports_har() {
    let mock = start().await;
    let mut live = mock
        .http
        .get(mock.auth("inspector/events?client_id=demo-app"))
        .send()
        .await
        .unwrap();
    assert_eq!(live.headers()[CONTENT_TYPE], "text/event-stream");

    let (code, verifier) = mock
        .code_for("launch/patient offline_access patient/*.rs", "bernie", None)
        .await;
    let (status, tokens) = mock.exchange(&code, &verifier).await;
    assert_eq!(status, StatusCode::OK);
    let access = tokens["access_token"].as_str().unwrap();
    mock.fhir_get("Patient/1", access).await;
    // Refreshed seconds into a 90-minute token: a storm.
    mock.refresh(tokens["refresh_token"].as_str().unwrap(), None)
        .await;
    // Another launch, as another group.
    mock.code_for("launch/patient patient/*.rs", "bernie", None).await;

    let records = mock.get_json(&mock.auth("inspector/requests")).await;
    let records = records.as_array().unwrap();
    let launch_of = |fragment: &str| {
        records
            .iter()
            .rev()
            .find(|r| r["path"].as_str().unwrap().contains(fragment))
            .and_then(|r| r["launch"].as_str())
            .unwrap_or_else(|| panic!("no launch on {fragment}: {records:#?}"))
            .to_owned()
    };
    let first = launch_of("/ccri-auth/authorize?");
    for fragment in [
        "/ccri-auth/authorize/login",
        "/ccri-auth/authorize/consent",
        "/ccri-auth/token",
        "/ccri-fhir/R4/Patient/1",
    ] {
        assert_eq!(
            launch_of(fragment),
            first,
            "{fragment} belongs to the first launch"
        );
    }
    let second = records
        .iter()
        .find(|r| r["path"].as_str().unwrap().contains("/ccri-auth/authorize?"))
        .unwrap()["launch"]
        .as_str()
        .unwrap();
    assert_ne!(second, first);
    let grouped = mock
        .get_json(&mock.auth(&format!("inspector/requests?launch={first}")))
        .await;
    assert_eq!(
        grouped.as_array().unwrap().len(),
        6,
        "authorize, login, consent, token, read, refresh: {grouped:#?}"
    );
    let refresh = &grouped[0];
    assert_eq!(lint_ids(refresh), ["refresh-too-early"]);
    let page = mock.get_text(&mock.auth("inspector")).await;
    assert!(
        page.contains(&format!("?launch={first}")),
        "the page lists the launch"
    );

    // The same state twice from one client.
    let (_, challenge) = pkce();
    let params = authorize_params(&mock, "launch/patient patient/*.rs", &challenge);
    mock.authorize(&params).await;
    mock.authorize(&params).await;
    let records = mock.get_json(&mock.auth("inspector/requests")).await;
    assert_eq!(lint_ids(&records[0]), ["state-reused"]);
    assert!(lint_ids(&records[1]).is_empty());

    // A token sent again after its 401; a search made twice instead of paged.
    for _ in 0..2 {
        mock.fhir_get("Patient/1", "not-a-token").await;
        mock.fhir_get("Observation?patient=1&_count=5", access).await;
    }
    let records = mock.get_json(&mock.auth("inspector/requests")).await;
    let found: Vec<Vec<&str>> = records.as_array().unwrap()[..4].iter().map(lint_ids).collect();
    assert_eq!(
        found,
        [
            vec!["search-repeated"],
            vec!["token-used-after-401"],
            vec![],
            vec![]
        ]
    );

    // Live: the stream carried this client's requests as they happened.
    let mut seen = String::new();
    while !seen.contains("/ccri-fhir/R4/Patient/1") {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(5), live.chunk())
            .await
            .expect("a live record")
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("event: record\ndata: {"), "{seen}");

    // HAR 1.2, oldest first, nothing secret.
    let har = mock.get_json(&mock.auth("inspector/export.har")).await;
    assert_eq!(har["log"]["version"], "1.2");
    let entries = har["log"]["entries"].as_array().unwrap();
    assert_eq!(
        entries.len(),
        mock.get_json(&mock.auth("inspector/requests"))
            .await
            .as_array()
            .unwrap()
            .len()
    );
    let exchange = entries
        .iter()
        .find(|e| {
            e["request"]["url"]
                .as_str()
                .unwrap()
                .ends_with("/ccri-auth/token")
        })
        .unwrap();
    assert_eq!(exchange["request"]["method"], "POST");
    assert_eq!(exchange["response"]["status"], 200);
    assert!(exchange["startedDateTime"].as_str().unwrap().ends_with('Z'));
    // Nothing secret from the whole launch in the export, the JSON or the page.
    let json = mock.get_json(&mock.auth("inspector/requests")).await.to_string();
    let page = mock.get_text(&mock.auth("inspector")).await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    for text in [har.to_string(), json, page] {
        for secret in [code.as_str(), verifier.as_str(), access, refresh_token] {
            assert!(!text.contains(secret), "a secret was shown");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inspector_says_what_is_wrong_with_each_request() {
    let mock = start().await;
    // A sloppy authorization request: no PKCE, no aud, no state.
    mock.http
        .get(mock.auth("authorize"))
        .query(&[
            ("response_type", "code"),
            ("client_id", "demo-app"),
            ("redirect_uri", APP_REDIRECT),
            ("scope", "patient/*.rs launch/patient"),
        ])
        .send()
        .await
        .unwrap();
    let token = mock.mint("patient/Patient.rs", Some("1"));
    mock.fhir_get("Patient?shoe-size=9", &token).await;
    mock.fhir_get("Patient?_count=5000", &token).await;
    mock.fhir_get("Observation?patient=1", &token).await;
    mock.http
        .get(mock.fhir("Patient/1"))
        .query(&[("access_token", token.as_str())])
        .header("authorization", format!("Token {token}"))
        .send()
        .await
        .unwrap();
    // A careful request has none.
    mock.fhir_get("Patient/1", &token).await;

    let records = mock.get_json(&mock.auth("inspector/requests")).await;
    let records = records.as_array().unwrap();
    let found: Vec<Vec<&str>> = records[..6].iter().map(lint_ids).collect();
    assert_eq!(
        found,
        [
            vec![],
            vec!["token-in-query", "authorization-not-bearer"],
            vec!["scope-refused"],
            vec!["count-above-limit"],
            vec!["unknown-search-parameter"],
            vec![
                "authorize-without-pkce",
                "authorize-without-aud",
                "authorize-without-state"
            ],
        ]
    );
    let unknown = &records[4]["lints"][0];
    assert_eq!(unknown["severity"], "error");
    assert_eq!(unknown["detail"], "Patient?shoe-size");
    assert!(unknown["spec"].as_str().unwrap().starts_with("FHIR R4"));
    assert!(
        records[2]["lints"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("patient/Observation.")
    );
    let page = mock.get_text(&mock.auth("inspector")).await;
    assert!(page.contains("authorize-without-pkce"), "{page}");
    assert!(!page.contains(&token), "the token in the URL is not shown");

    // Misspelt and inconsistent scopes; a code exchanged with another launch's verifier.
    let (_, challenge) = pkce();
    let mut params = authorize_params(&mock, "launch patient/Observation.reed", &challenge);
    params.retain(|(name, _)| name != "state");
    params.push(("state".into(), "s".into()));
    mock.authorize(&params).await;
    let (code, _) = mock.code_for("launch/patient patient/*.rs", "bernie", None).await;
    let (other_verifier, _) = pkce();
    let (status, _) = mock.exchange(&code, &other_verifier).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let records = mock.get_json(&mock.auth("inspector/requests")).await;
    let records = records.as_array().unwrap();
    assert_eq!(records[0]["path"], "/ccri-auth/token");
    assert_eq!(lint_ids(&records[0]), ["pkce-verifier-mismatch"]);
    let sloppy = records
        .iter()
        .find(|r| r["path"].as_str().unwrap().contains("Observation.reed"))
        .unwrap();
    assert_eq!(
        lint_ids(sloppy),
        ["unknown-scope", "launch-without-launch-parameter"]
    );
    assert_eq!(
        sloppy["lints"][0]["detail"],
        "patient/Observation.reed (closest: patient/Observation.read)"
    );

    // A redirect_uri one character off: the page and the lint name the registered one.
    let (_, challenge) = pkce();
    let mut params = authorize_params(&mock, "launch/patient patient/*.rs", &challenge);
    params.retain(|(name, _)| name != "redirect_uri");
    params.push(("redirect_uri".into(), APP_REDIRECT.trim_end_matches('/').into()));
    let refused = mock.authorize(&params).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(
        refused
            .html
            .contains(&format!("closest registered: {APP_REDIRECT}")),
        "{}",
        refused.html
    );
    let records = mock.get_json(&mock.auth("inspector/requests")).await;
    assert_eq!(lint_ids(&records[0]), ["redirect-uri-not-registered"]);

    // Only the problems: errors and linted requests; then a clean slate.
    let problems = mock
        .get_json(&mock.auth("inspector/requests?problems=true"))
        .await;
    let problems = problems.as_array().unwrap();
    assert!(problems.len() < records.as_array().unwrap().len());
    assert!(
        problems
            .iter()
            .all(|r| r["status"].as_u64().unwrap() >= 400 || !lint_ids(r).is_empty())
    );
    let page = mock.get_text(&mock.auth("inspector?problems=on")).await;
    assert!(page.contains("Patient?shoe-size=9</code>"), "{page}");
    assert!(
        !page.contains("/ccri-fhir/R4/Patient/1</code>"),
        "a clean read is not a problem"
    );
    let all = mock.get_text(&mock.auth("inspector")).await;
    assert!(all.contains("/ccri-fhir/R4/Patient/1</code>"), "{all}");
    let cleared = mock.http.post(mock.auth("inspector/clear")).send().await.unwrap();
    assert_eq!(cleared.status(), StatusCode::SEE_OTHER, "back to the page");
    assert_eq!(mock.get_json(&mock.auth("inspector/requests")).await, json!([]));
}

// Several worker threads: the concurrent creates below must really overlap.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conditional_create_never_makes_a_duplicate() {
    let mock = start().await;
    let token = mock.mint(ALL, None);
    // A Patient whose identifier is the condition's value.
    let post = |condition: &str| {
        let value = condition.rsplit('|').next().unwrap_or(condition);
        mock.http
            .post(mock.fhir("Patient"))
            .bearer_auth(&token)
            .header(CONTENT_TYPE, "application/fhir+json")
            .header("if-none-exist", condition)
            .body(
                json!({"resourceType": "Patient", "identifier": [{"system": "https://example.org/mrn", "value": value}]})
                    .to_string(),
            )
            .send()
    };
    let condition = "identifier=https://example.org/mrn|42";
    let first = post(condition).await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    // Two more, one at a time and then at once: each finds the first.
    let again = post(condition).await.unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.json::<Value>().await.unwrap()["id"], first["id"]);
    let (a, b) = tokio::join!(post(condition), post(condition));
    assert_eq!(
        (a.unwrap().status(), b.unwrap().status()),
        (StatusCode::OK, StatusCode::OK)
    );
    let (_, bundle) = mock.fhir_get(&format!("Patient?{condition}"), &token).await;
    assert_eq!(bundle["total"], 1);
    // Racing from nothing, round after round: one creates, the others find it.
    for round in 0..8 {
        let condition = format!("identifier=https://example.org/mrn|race-{round}");
        let (a, b, c) = tokio::join!(post(&condition), post(&condition), post(&condition));
        let statuses = [a.unwrap().status(), b.unwrap().status(), c.unwrap().status()];
        let created = statuses.iter().filter(|s| **s == StatusCode::CREATED).count();
        assert_eq!(created, 1, "round {round}: {statuses:?}");
        let (_, bundle) = mock.fhir_get(&format!("Patient?{condition}"), &token).await;
        assert_eq!(bundle["total"], 1, "round {round}");
    }

    let many = post("gender=female").await.unwrap();
    assert_eq!(many.status(), StatusCode::PRECONDITION_FAILED);
    let outcome: Value = many.json().await.unwrap();
    assert_eq!(outcome["issue"][0]["expression"], json!(["If-None-Exist"]));
    assert_eq!(
        post("shoe-size=9").await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(post("_count=1").await.unwrap().status(), StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_may_send_the_conditional_headers() {
    let mock = start().await;
    let preflight = mock
        .http
        .request(reqwest::Method::OPTIONS, mock.fhir("Patient"))
        .header("origin", "http://localhost:5173")
        .header("access-control-request-method", "PATCH")
        .header(
            "access-control-request-headers",
            "authorization,if-none-exist,if-match,if-none-match,prefer",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), StatusCode::OK);
    let allowed = preflight.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_owned();
    for header in [
        "authorization",
        "if-none-exist",
        "if-match",
        "if-none-match",
        "prefer",
    ] {
        assert!(allowed.contains(header), "{header} in {allowed}");
    }
    let methods = preflight.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap();
    assert!(methods.contains("PATCH"), "{methods}");
}
