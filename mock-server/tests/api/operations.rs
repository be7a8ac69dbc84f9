//! What a FHIR client does beyond one read or write: batch and transaction
//! Bundles, conditional update and delete, JSON Patch, the history of a type and
//! of the server, and `Patient/$everything`, each under the token's scopes.

use crate::common::*;
use base64::Engine as _;
use reqwest::header::{CONTENT_TYPE, ETAG, IF_MATCH, IF_NONE_MATCH};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const ALL: &str = "user/*.cruds";
const SYSTEM: &str = "https://example.org/mrn";

/// Sends `body` (JSON) with `content_type`; the status and the JSON answer (Null when empty).
async fn send(
    mock: &Mock,
    method: Method,
    path: &str,
    token: &str,
    content_type: &str,
    body: Option<Value>,
    headers: &[(reqwest::header::HeaderName, &str)],
) -> (StatusCode, Value) {
    let url = if path.is_empty() {
        mock.fhir("").trim_end_matches('/').to_owned()
    } else {
        mock.fhir(path)
    };
    let mut request = mock.http.request(method, url).bearer_auth(token);
    if let Some(body) = body {
        request = request.header(CONTENT_TYPE, content_type).body(body.to_string());
    }
    for (name, value) in headers {
        request = request.header(name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn post_bundle(mock: &Mock, token: &str, kind: &str, entries: Value) -> (StatusCode, Value) {
    let bundle = json!({"resourceType": "Bundle", "type": kind, "entry": entries});
    send(
        mock,
        Method::POST,
        "",
        token,
        "application/fhir+json",
        Some(bundle),
        &[],
    )
    .await
}

async fn put(mock: &Mock, token: &str, path: &str, resource: Value) -> (StatusCode, Value) {
    send(
        mock,
        Method::PUT,
        path,
        token,
        "application/fhir+json",
        Some(resource),
        &[],
    )
    .await
}

async fn create(mock: &Mock, token: &str, resource: Value) -> String {
    let kind = resource["resourceType"].as_str().unwrap().to_owned();
    let (status, created) = send(
        mock,
        Method::POST,
        &kind,
        token,
        "application/fhir+json",
        Some(resource),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created["id"].as_str().unwrap().to_owned()
}

fn patient(mrn: &str) -> Value {
    json!({"resourceType": "Patient", "identifier": [{"system": SYSTEM, "value": mrn}], "gender": "male",
           "name": [{"family": "Tester", "given": [mrn]}]})
}

fn observation(subject: &str) -> Value {
    json!({"resourceType": "Observation", "status": "final",
           "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
           "subject": {"reference": subject}})
}

async fn total(mock: &Mock, token: &str, query: &str) -> u64 {
    let (status, bundle) = mock.fhir_get(query, token).await;
    assert_eq!(status, StatusCode::OK, "{query}: {bundle}");
    bundle["total"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_gives_new_resources_ids_and_points_references_at_them() {
    let mock = start().await;
    let token = mock.mint(ALL, None);
    let nurse = create(
        &mock,
        &token,
        json!({"resourceType": "Practitioner", "identifier": [{"system": SYSTEM, "value": "nurse-7"}]}),
    )
    .await;
    let (status, response) = post_bundle(
        &mock,
        &token,
        "transaction",
        json!([
            {"request": {"method": "GET", "url": format!("Patient?identifier={SYSTEM}|tx-1")}},
            {"fullUrl": "urn:uuid:0f6e5c7a-0000-4000-8000-000000000001",
             "resource": observation("urn:uuid:0f6e5c7a-0000-4000-8000-000000000002")
                 .as_object().cloned().map(|mut o| { o.insert("performer".into(), json!([{"reference": format!("Practitioner?identifier={SYSTEM}|nurse-7")}])); Value::Object(o) }).unwrap(),
             "request": {"method": "POST", "url": "Observation"}},
            {"fullUrl": "urn:uuid:0f6e5c7a-0000-4000-8000-000000000002", "resource": patient("tx-1"),
             "request": {"method": "POST", "url": "Patient"}},
        ]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{response}");
    assert_eq!(response["type"], "transaction-response");
    let entry = |i: usize| &response["entry"][i];
    assert_eq!(entry(1)["response"]["status"], "201 Created");
    assert_eq!(entry(2)["response"]["status"], "201 Created");
    let patient_id = entry(2)["resource"]["id"].as_str().unwrap();
    assert_eq!(
        entry(2)["response"]["location"],
        format!("Patient/{patient_id}/_history/1")
    );
    // Both references were rewritten: the urn:uuid to the new id, the search to its one match.
    assert_eq!(
        entry(1)["resource"]["subject"]["reference"],
        format!("Patient/{patient_id}")
    );
    assert_eq!(
        entry(1)["resource"]["performer"][0]["reference"],
        format!("Practitioner/{nurse}")
    );
    // Reads run after the writes: the GET entry sees the new patient.
    assert_eq!(entry(0)["response"]["status"], "200 OK");
    assert_eq!(entry(0)["resource"]["total"], 1);
    assert_eq!(
        total(
            &mock,
            &token,
            &format!("Observation?subject=Patient/{patient_id}")
        )
        .await,
        1
    );

    // A reference to a urn:uuid no entry has is refused, naming the entry.
    let (status, outcome) = post_bundle(
        &mock,
        &token,
        "transaction",
        json!([{"resource": observation("urn:uuid:0f6e5c7a-0000-4000-8000-0000000000ff"),
                "request": {"method": "POST", "url": "Observation"}}]),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{outcome}");
    assert_eq!(outcome["issue"][0]["expression"][0], "Bundle.entry[0]");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_transaction_leaves_the_store_as_it_was() {
    let mock = start().await;
    let token = mock.mint(ALL, None);
    let kept = create(&mock, &token, patient("keep-me")).await;
    let observation_id = create(&mock, &token, observation(&format!("Patient/{kept}"))).await;
    let before = total(&mock, &token, "Patient").await;

    // A delete, a create and an update that would succeed, then an update whose
    // If-Match is stale: nothing of it may stay.
    let (status, outcome) = post_bundle(
        &mock,
        &token,
        "transaction",
        json!([
            {"request": {"method": "DELETE", "url": format!("Patient/{kept}")}},
            {"resource": patient("tx-2"), "request": {"method": "POST", "url": "Patient"}},
            {"resource": {"resourceType": "Patient", "id": "made-by-put"},
             "request": {"method": "PUT", "url": "Patient/made-by-put"}},
            {"resource": observation(&format!("Patient/{kept}")).as_object().cloned().map(|mut o| { o.insert("id".into(), json!(observation_id)); Value::Object(o) }).unwrap(),
             "request": {"method": "PUT", "url": format!("Observation/{observation_id}"), "ifMatch": "W/\"9\""}},
        ]),
    )
    .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{outcome}");
    assert_eq!(outcome["issue"][0]["expression"][0], "Bundle.entry[3]");
    assert!(
        outcome["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("If-Match"),
        "{outcome}"
    );
    assert_eq!(total(&mock, &token, "Patient").await, before);
    assert_eq!(
        total(&mock, &token, &format!("Patient?identifier={SYSTEM}|tx-2")).await,
        0
    );
    let (status, _) = mock.fhir_get(&format!("Patient/{kept}"), &token).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = mock.fhir_get("Patient/made-by-put", &token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, history) = mock.fhir_get(&format!("Patient/{kept}/_history"), &token).await;
    assert_eq!(history["total"], 1, "the rolled-back delete left no version");

    // Writes in one transaction run under the token's scopes like any other:
    // a patient token may not plant an Observation in another patient's record.
    let own = mock.mint("patient/*.cruds", Some(&kept));
    let (status, outcome) = post_bundle(
        &mock,
        &own,
        "transaction",
        json!([
            {"resource": observation(&format!("Patient/{kept}")), "request": {"method": "POST", "url": "Observation"}},
            {"resource": observation("Patient/1"), "request": {"method": "POST", "url": "Observation"}},
        ]),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{outcome}");
    assert_eq!(outcome["issue"][0]["expression"][0], "Bundle.entry[1]");
    assert_eq!(
        total(&mock, &token, &format!("Observation?subject=Patient/{kept}")).await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_answers_each_entry_on_its_own() {
    let mock = start().await;
    let token = mock.mint(ALL, None);
    let doomed = create(&mock, &token, patient("doomed")).await;
    let patch = base64::engine::general_purpose::STANDARD
        .encode(json!([{"op": "replace", "path": "/gender", "value": "female"}]).to_string());
    let (status, response) = post_bundle(
        &mock,
        &token,
        "batch",
        json!([
            {"resource": patient("batch-1"), "request": {"method": "POST", "url": "Patient"}},
            {"request": {"method": "GET", "url": "Patient/not-there"}},
            {"resource": {"resourceType": "Spaceship"}, "request": {"method": "POST", "url": "Spaceship"}},
            {"request": {"method": "DELETE", "url": format!("Patient/{doomed}")}},
            {"request": {"method": "GET", "url": format!("Patient/{doomed}/_history")}},
            {"resource": {"resourceType": "Binary", "contentType": "application/json-patch+json", "data": patch},
             "request": {"method": "PATCH", "url": format!("Patient?identifier={SYSTEM}|batch-1")}},
            {"request": {"method": "FETCH", "url": "Patient"}},
        ]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{response}");
    assert_eq!(response["type"], "batch-response");
    let statuses: Vec<&str> = response["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["response"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "201 Created",
            "404 Not Found",
            "404 Not Found",
            "204 No Content",
            "200 OK",
            "200 OK",
            "400 Bad Request"
        ]
    );
    let entry = |i: usize| &response["entry"][i];
    assert_eq!(
        entry(1)["response"]["outcome"]["resourceType"],
        "OperationOutcome"
    );
    assert_eq!(
        entry(6)["response"]["outcome"]["issue"][0]["expression"][0],
        "Bundle.entry[6]"
    );
    assert_eq!(entry(4)["resource"]["total"], 2);
    assert_eq!(entry(5)["resource"]["gender"], "female");
    let (status, _) = mock.fhir_get(&format!("Patient/{doomed}"), &token).await;
    assert_eq!(status, StatusCode::GONE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_update_and_delete_follow_the_match_count() {
    let mock = start().await;
    let token = mock.mint(ALL, None);
    let condition = format!("Patient?identifier={SYSTEM}|cond-1");

    // No match: created (with a new id, since the body has none).
    let (status, created) = put(&mock, &token, &condition, patient("cond-1")).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    // One match: updated in place.
    let mut changed = patient("cond-1");
    changed["gender"] = json!("female");
    let (status, updated) = put(&mock, &token, &condition, changed.clone()).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(
        (updated["id"].as_str().unwrap(), &updated["meta"]["versionId"]),
        (id.as_str(), &json!("2"))
    );
    // One match, but the body names another resource.
    changed["id"] = json!("someone-else");
    let (status, outcome) = put(&mock, &token, &condition, changed).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{outcome}");
    assert_eq!(outcome["issue"][0]["expression"][0], "Patient.id");
    // Several matches: an update is refused (412); a delete removes them all
    // (conditionalDelete = multiple), unless If-Match names one version.
    create(&mock, &token, patient("twin")).await;
    create(&mock, &token, patient("twin")).await;
    let twins = format!("Patient?identifier={SYSTEM}|twin");
    let (status, _) = put(&mock, &token, &twins, patient("twin")).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    let if_match = [(IF_MATCH, "W/\"1\"")];
    let (status, outcome) = send(&mock, Method::DELETE, &twins, &token, "", None, &if_match).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{outcome}");
    assert!(
        outcome["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("If-Match")
    );
    assert_eq!(total(&mock, &token, &twins).await, 2);
    let (status, _) = send(&mock, Method::DELETE, &twins, &token, "", None, &[]).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(total(&mock, &token, &twins).await, 0);
    // No criteria at all is a mistake, not "every Patient".
    let (status, outcome) = send(&mock, Method::DELETE, "Patient", &token, "", None, &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{outcome}");

    let (status, _) = send(&mock, Method::DELETE, &condition, &token, "", None, &[]).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = mock.fhir_get(&format!("Patient/{id}"), &token).await;
    assert_eq!(status, StatusCode::GONE);
    // Nothing matches any more: nothing to delete, which is not an error.
    let (status, _) = send(&mock, Method::DELETE, &condition, &token, "", None, &[]).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conditional_delete_removes_every_match_within_its_limit_and_transaction() {
    let mock = start().await;
    let token = mock.mint(ALL, None);
    let posts = |mrn: &str, count: usize| {
        let entry = json!({"resource": patient(mrn), "request": {"method": "POST", "url": "Patient"}});
        Value::Array(vec![entry; count])
    };
    let (status, _) = post_bundle(&mock, &token, "batch", posts("bulk", 1_001)).await;
    assert_eq!(status, StatusCode::OK);
    let bulk = format!("Patient?identifier={SYSTEM}|bulk");
    let (status, outcome) = send(&mock, Method::DELETE, &bulk, &token, "", None, &[]).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{outcome}");
    assert!(
        outcome["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("at most 1000")
    );
    assert_eq!(total(&mock, &token, &bulk).await, 1_001);

    // In a transaction, the matches go with the rest of it, or not at all.
    post_bundle(&mock, &token, "batch", posts("pair", 2)).await;
    let pair = format!("Patient?identifier={SYSTEM}|pair");
    let delete = json!({"request": {"method": "DELETE", "url": pair}});
    let broken = json!({"resource": {"resourceType": "Patient", "gender": "neither"},
                        "request": {"method": "POST", "url": "Patient"}});
    let (status, _) = post_bundle(&mock, &token, "transaction", json!([delete, broken])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(total(&mock, &token, &pair).await, 2, "rolled back");
    let kept = json!({"resource": patient("after"), "request": {"method": "POST", "url": "Patient"}});
    let (status, outcome) = post_bundle(&mock, &token, "transaction", json!([delete, kept])).await;
    assert_eq!(status, StatusCode::OK, "{outcome}");
    assert_eq!(total(&mock, &token, &pair).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_patch_changes_a_resource_within_the_tokens_reach() {
    let mock = start().await;
    let token = mock.mint(ALL, None);
    let id = create(&mock, &token, patient("patch-1")).await;
    let path = format!("Patient/{id}");
    let json_patch =
        |ops: Value, headers: &'static [(reqwest::header::HeaderName, &'static str)], token: String| {
            let mock = &mock;
            let path = path.clone();
            async move {
                send(
                    mock,
                    Method::PATCH,
                    &path,
                    &token,
                    "application/json-patch+json",
                    Some(ops),
                    headers,
                )
                .await
            }
        };

    let (status, patched) = json_patch(
        json!([{"op": "test", "path": "/gender", "value": "male"},
               {"op": "replace", "path": "/gender", "value": "female"},
               {"op": "add", "path": "/birthDate", "value": "1970-01-01"}]),
        &[],
        token.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(
        (&patched["gender"], &patched["birthDate"]),
        (&json!("female"), &json!("1970-01-01"))
    );
    assert_eq!(patched["meta"]["versionId"], "2");

    // A failed test changes nothing, and says which operation failed where.
    let (status, outcome) = json_patch(
        json!([{"op": "replace", "path": "/gender", "value": "other"},
               {"op": "test", "path": "/gender", "value": "male"}]),
        &[],
        token.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{outcome}");
    assert_eq!(outcome["issue"][0]["expression"][0], "Patient.gender");
    let (_, current) = mock.fhir_get(&path, &token).await;
    assert_eq!(
        (&current["gender"], &current["meta"]["versionId"]),
        (&json!("female"), &json!("2"))
    );

    // A stale If-Match, a patch that changes the id, and a patch that is no patch.
    let (status, _) = json_patch(json!([]), &[(IF_MATCH, "W/\"1\"")], token.clone()).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    let (status, _) = json_patch(
        json!([{"op": "replace", "path": "/id", "value": "x"}]),
        &[],
        token.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = json_patch(json!({"op": "replace"}), &[], token.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // A patient may patch their own Observation, but not move it to another chart.
    let observation_id = create(&mock, &token, observation(&path)).await;
    let own = mock.mint("patient/*.cruds", Some(&id));
    let (status, outcome) = send(
        &mock,
        Method::PATCH,
        &format!("Observation/{observation_id}"),
        &own,
        "application/json-patch+json",
        Some(json!([{"op": "replace", "path": "/subject/reference", "value": "Patient/1"}])),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{outcome}");
    let (status, _) = send(
        &mock,
        Method::PATCH,
        &format!("Observation/{observation_id}"),
        &own,
        "application/json-patch+json",
        Some(json!([{"op": "replace", "path": "/status", "value": "amended"}])),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // A read that names the current ETag is answered 304 Not Modified.
    let response = mock
        .http
        .get(mock.fhir(&path))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let tag = response.headers()[ETAG].to_str().unwrap().to_owned();
    let response = mock
        .http
        .get(mock.fhir(&path))
        .bearer_auth(&token)
        .header(IF_NONE_MATCH, &tag)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_of_a_type_and_of_the_server() {
    let mock = start().await;
    let token = mock.mint(ALL, None);
    // Everything from here on: the seed data was written earlier.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let since = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let id = create(&mock, &token, patient("hist-1")).await;
    let instant = || {
        chrono::Utc::now()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            .replace('+', "%2B")
    };
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let between = instant();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let mut changed = patient("hist-1");
    changed["id"] = json!(id);
    changed["gender"] = json!("female");
    put(&mock, &token, &format!("Patient/{id}"), changed).await;
    let observation_id = create(&mock, &token, observation(&format!("Patient/{id}"))).await;
    let since = since.replace('+', "%2B");

    let keys = |bundle: &Value| -> Vec<String> {
        bundle["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["response"]["location"].as_str().unwrap().to_owned())
            .collect()
    };
    let (status, history) = mock
        .fhir_get(&format!("Patient/_history?_since={since}"), &token)
        .await;
    assert_eq!(status, StatusCode::OK, "{history}");
    assert_eq!(history["type"], "history");
    assert_eq!(
        keys(&history),
        [
            format!("Patient/{id}/_history/2"),
            format!("Patient/{id}/_history/1")
        ]
    );
    assert_eq!(history["entry"][1]["request"]["method"], "POST");
    assert_eq!(history["entry"][0]["request"]["method"], "PUT");

    let (_, history) = mock
        .fhir_get(&format!("_history?_since={since}&_count=2"), &token)
        .await;
    assert_eq!(history["total"], 3);
    assert_eq!(
        keys(&history),
        [
            format!("Observation/{observation_id}/_history/1"),
            format!("Patient/{id}/_history/2")
        ]
    );
    let next = link(&history, "next").unwrap();
    let (_, rest) = mock.fhir_get(&next, &token).await;
    assert_eq!(keys(&rest), [format!("Patient/{id}/_history/1")]);

    // The patient's own token sees all three versions; another patient's none.
    let own = mock.mint("patient/*.read", Some(&id));
    let (_, history) = mock.fhir_get(&format!("_history?_since={since}"), &own).await;
    assert_eq!(history["total"], 3, "{history}");
    let other = mock.mint("patient/*.read", Some("1"));
    let (status, history) = mock.fhir_get(&format!("_history?_since={since}"), &other).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(history["total"], 0, "{history}");
    // A page link from the future is refused, as search refuses it.
    let (status, outcome) = mock.fhir_get("_history?_snapshot=999999999", &token).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{outcome}");
    // `_at`: the versions current at some moment of it.
    let at = |when: &str| format!("Patient/{id}/_history?_at={when}");
    let (_, history) = mock.fhir_get(&at(&between), &token).await;
    assert_eq!(keys(&history), [format!("Patient/{id}/_history/1")]);
    let (_, history) = mock.fhir_get(&at(&instant()), &token).await;
    assert_eq!(keys(&history), [format!("Patient/{id}/_history/2")]);
    let (_, history) = mock.fhir_get(&at("2000"), &token).await;
    assert_eq!(history["total"], 0, "not yet created in 2000");
    let (_, history) = mock
        .fhir_get(&format!("Patient/_history?_at={between}"), &token)
        .await;
    assert!(keys(&history).contains(&format!("Patient/{id}/_history/1")));
    assert!(!keys(&history).contains(&format!("Patient/{id}/_history/2")));
    let (status, outcome) = mock.fhir_get("Patient/_history?_at=soon", &token).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(outcome["issue"][0]["expression"][0], "Patient/_history?_at");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_about_a_patient_and_only_what_the_token_may_read() {
    let mock = start().await;
    let token = mock.mint(ALL, None);
    let doctor = create(
        &mock,
        &token,
        json!({"resourceType": "Practitioner", "name": [{"family": "Who"}]}),
    )
    .await;
    let id = create(&mock, &token, patient("every-1")).await;
    let other = create(&mock, &token, patient("every-2")).await;
    let me = format!("Patient/{id}");
    let mut measured = observation(&me);
    measured["performer"] = json!([{"reference": format!("Practitioner/{doctor}")}]);
    measured["effectiveDateTime"] = json!("2021-03-04");
    let measured = create(&mock, &token, measured).await;
    // In the compartment through `performer`, not `subject`.
    let mut self_reported = observation("Group/nobody");
    self_reported["performer"] = json!([{"reference": me}]);
    let self_reported = create(&mock, &token, self_reported).await;
    let visit = create(
        &mock,
        &token,
        json!({"resourceType": "Encounter", "status": "finished", "class": {"code": "AMB"}, "subject": {"reference": me}}),
    )
    .await;
    create(&mock, &token, observation(&format!("Patient/{other}"))).await;

    let keys = |bundle: &Value| -> Vec<String> { entries(bundle).into_iter().map(|(key, _)| key).collect() };
    let (status, bundle) = mock.fhir_get(&format!("{me}/$everything"), &token).await;
    assert_eq!(status, StatusCode::OK, "{bundle}");
    let mut found = keys(&bundle);
    assert_eq!(found[0], me, "the patient comes first");
    found.sort();
    let mut expected = vec![
        me.clone(),
        format!("Encounter/{visit}"),
        format!("Observation/{measured}"),
        format!("Observation/{self_reported}"),
        format!("Practitioner/{doctor}"),
    ];
    expected.sort();
    assert_eq!(found, expected);

    let (_, bundle) = mock
        .fhir_get(&format!("{me}/$everything?_type=Observation"), &token)
        .await;
    assert_eq!(bundle["total"], 2);
    let (_, first) = mock.fhir_get(&format!("{me}/$everything?_count=3"), &token).await;
    assert_eq!((first["total"].as_u64(), keys(&first).len()), (Some(5), 3));
    let (_, second) = mock.fhir_get(&link(&first, "next").unwrap(), &token).await;
    let mut paged = [keys(&first), keys(&second)].concat();
    paged.sort();
    assert_eq!(paged, expected);
    let (_, later) = mock
        .fhir_get(&format!("{me}/$everything?_since=2999-01-01"), &token)
        .await;
    assert_eq!(later["total"], 0);
    // start/end are care dates: the measured Observation is of 2021; what has no
    // care date (the patient, the undated visit and observation) is always in.
    let (_, later) = mock
        .fhir_get(&format!("{me}/$everything?start=2022"), &token)
        .await;
    assert!(
        !keys(&later).contains(&format!("Observation/{measured}")),
        "{later}"
    );
    assert!(keys(&later).contains(&me) && keys(&later).contains(&format!("Encounter/{visit}")));
    let (_, then) = mock
        .fhir_get(&format!("{me}/$everything?start=2021-01-01&end=2021-03"), &token)
        .await;
    assert!(keys(&then).contains(&format!("Observation/{measured}")), "{then}");
    let (_, earlier) = mock.fhir_get(&format!("{me}/$everything?end=2020"), &token).await;
    assert!(
        !keys(&earlier).contains(&format!("Observation/{measured}")),
        "{earlier}"
    );
    assert!(keys(&earlier).contains(&me));
    let (status, outcome) = mock
        .fhir_get(&format!("{me}/$everything?start=last-week"), &token)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        outcome["issue"][0]["expression"][0],
        format!("{me}/$everything?start")
    );

    // The patient's own token: their compartment, but not the practitioner, which
    // patient/ scopes do not reach; another patient's record is refused.
    let own = mock.mint("patient/*.read", Some(&id));
    let (_, bundle) = mock.fhir_get(&format!("{me}/$everything"), &own).await;
    assert_eq!(bundle["total"], 4, "{bundle}");
    assert!(!keys(&bundle).iter().any(|k| k.starts_with("Practitioner/")));
    let (status, _) = mock.fhir_get(&format!("Patient/{other}/$everything"), &own).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Type level: every patient the token may see.
    let system = mock.mint("system/*.read", None);
    let (status, bundle) = mock.fhir_get("Patient/$everything?_count=1000", &system).await;
    assert_eq!(status, StatusCode::OK, "{bundle}");
    let all = keys(&bundle);
    for key in expected.iter().chain([&format!("Patient/{other}")]) {
        assert!(all.contains(key), "{key}");
    }
    let (_, bundle) = mock.fhir_get("Patient/$everything", &own).await;
    assert_eq!(bundle["total"], 4, "a patient token reaches only its own patient");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_resources_are_refused_with_the_path_of_the_problem() {
    let mock = start().await;
    let token = mock.mint(ALL, None);
    let before = total(&mock, &token, "Patient").await;
    let mut bad = patient("invalid-1");
    bad["gender"] = json!("blue");
    bad["name"][0]["famly"] = json!("Typo");
    let (status, outcome) = send(
        &mock,
        Method::POST,
        "Patient",
        &token,
        "application/fhir+json",
        Some(bad.clone()),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{outcome}");
    assert_eq!(outcome["issue"][0]["expression"][0], "Patient.gender");
    let diagnostics = outcome["issue"][0]["diagnostics"].as_str().unwrap();
    assert!(
        diagnostics.contains("Patient.name[0].famly: famly: no such element"),
        "{diagnostics}"
    );

    // The same inside a transaction: the entry, then the element.
    let (status, outcome) = post_bundle(
        &mock,
        &token,
        "transaction",
        json!([{"resource": patient("fine"), "request": {"method": "POST", "url": "Patient"}},
               {"resource": bad, "request": {"method": "POST", "url": "Patient"}}]),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{outcome}");
    assert_eq!(
        outcome["issue"][0]["expression"],
        json!(["Bundle.entry[1]", "Patient.gender"])
    );
    assert_eq!(total(&mock, &token, "Patient").await, before, "nothing stored");

    // An update and a patch are checked as well.
    let id = create(&mock, &token, patient("valid")).await;
    let mut invalid_update = patient("valid");
    invalid_update["id"] = json!(id);
    invalid_update["active"] = json!("yes");
    let (status, outcome) = put(&mock, &token, &format!("Patient/{id}"), invalid_update).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{outcome}");
    assert_eq!(outcome["issue"][0]["expression"][0], "Patient.active");
    let (status, outcome) = send(
        &mock,
        Method::PATCH,
        &format!("Patient/{id}"),
        &token,
        "application/json-patch+json",
        Some(json!([{"op": "add", "path": "/birthDate", "value": "12/31/1970"}])),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{outcome}");
    assert_eq!(outcome["issue"][0]["expression"][0], "Patient.birthDate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transactions_conditions_and_mistakes() {
    let mock = start().await;
    let token = mock.mint(ALL, None);
    let existing = create(&mock, &token, patient("tx-existing")).await;
    // ifNoneExist that finds the patient: the entry answers it, and a new entry's
    // urn:uuid reference to it points at it.
    let (status, response) = post_bundle(
        &mock,
        &token,
        "transaction",
        json!([
            {"fullUrl": "urn:uuid:0f6e5c7a-0000-4000-8000-00000000000a", "resource": patient("tx-existing"),
             "request": {"method": "POST", "url": "Patient", "ifNoneExist": format!("identifier={SYSTEM}|tx-existing")}},
            {"resource": observation("urn:uuid:0f6e5c7a-0000-4000-8000-00000000000a"),
             "request": {"method": "POST", "url": "Observation"}},
        ]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{response}");
    assert_eq!(response["entry"][0]["response"]["status"], "200 OK");
    assert_eq!(response["entry"][0]["resource"]["id"], existing);
    assert_eq!(
        response["entry"][1]["resource"]["subject"]["reference"],
        format!("Patient/{existing}")
    );
    assert_eq!(
        total(&mock, &token, &format!("Patient?identifier={SYSTEM}|tx-existing")).await,
        1
    );

    // `Prefer: return=minimal`: statuses and locations, no resources.
    let bundle = json!({"resourceType": "Bundle", "type": "transaction",
                        "entry": [{"resource": patient("tx-minimal"), "request": {"method": "POST", "url": "Patient"}}]});
    let (status, response) = send(
        &mock,
        Method::POST,
        "",
        &token,
        "application/fhir+json",
        Some(bundle),
        &[(
            reqwest::header::HeaderName::from_static("prefer"),
            "return=minimal",
        )],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(response["entry"][0]["resource"].is_null(), "{response}");
    assert!(
        response["entry"][0]["response"]["location"]
            .as_str()
            .unwrap()
            .starts_with("Patient/")
    );

    // Each mistake refuses the whole transaction, naming its entry.
    let before = total(&mock, &token, "Patient").await;
    let twice = json!({"resourceType": "Patient", "id": "twice"});
    let patch = |content_type: &str, data: &str| {
        json!({"resource": {"resourceType": "Binary", "contentType": content_type, "data": data},
               "request": {"method": "PATCH", "url": format!("Patient/{existing}")}})
    };
    for (entries, expected) in [
        (
            json!([{"resource": twice, "request": {"method": "PUT", "url": "Patient/twice"}},
                   {"resource": twice, "request": {"method": "PUT", "url": "Patient/twice"}}]),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!([{"resource": patient("x"), "request": {"method": "POST", "url": "Patient"}},
                   {"resource": observation("Patient?gender=male"), "request": {"method": "POST", "url": "Observation"}}]),
            StatusCode::PRECONDITION_FAILED,
        ),
        // A conditional delete that resolves to the resource another entry updates.
        (
            json!([{"request": {"method": "DELETE", "url": format!("Patient?identifier={SYSTEM}|tx-existing")}},
                   {"resource": {"resourceType": "Patient", "id": existing, "gender": "female"},
                    "request": {"method": "PUT", "url": format!("Patient/{existing}")}}]),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!([{"resource": patient("x"), "request": {"method": "POST", "url": "Patient"}},
                   {"resource": patient("dup"), "request": {"method": "POST", "url": "Patient", "ifNoneExist": "gender=male"}}]),
            StatusCode::PRECONDITION_FAILED,
        ),
        (
            json!([{"resource": patient("x"), "request": {"method": "POST", "url": "Patient"}}, patch("text/plain", "")]),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            json!([{"resource": patient("x"), "request": {"method": "POST", "url": "Patient"}},
                   patch("application/json-patch+json", "not base64!")]),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!([{"resource": patient("x"), "request": {"method": "POST", "url": "Patient"}},
                   {"request": {"method": "DELETE", "url": "Patient"}}]),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let (status, outcome) = post_bundle(&mock, &token, "transaction", entries).await;
        assert_eq!(status, expected, "{outcome}");
        assert_eq!(
            outcome["issue"][0]["expression"][0], "Bundle.entry[1]",
            "{outcome}"
        );
    }
    assert_eq!(total(&mock, &token, "Patient").await, before, "nothing stayed");
}
