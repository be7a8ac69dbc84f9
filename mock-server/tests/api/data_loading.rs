//! `--data DIR`: loading FHIR JSON files, Synthea's transaction Bundles included,
//! with errors that name the file and the JSON path.

use std::path::PathBuf;

use crate::common::*;
use ccri_mock::load_dir;
use reqwest::StatusCode;
use serde_json::json;

fn data_dir(name: &str, files: &[(&str, String)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ccri-mock-data-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (file, text) in files {
        std::fs::write(dir.join(file), text).unwrap();
    }
    dir
}

fn synthea_bundle() -> String {
    json!({
        "resourceType": "Bundle", "type": "transaction",
        "entry": [
            {"fullUrl": "urn:uuid:7f4a-patient", "resource": {"resourceType": "Patient", "name": [{"family": "Synthea"}]},
             "request": {"method": "POST", "url": "Patient"}},
            {"fullUrl": "urn:uuid:9c1e-obs", "resource": {"resourceType": "Observation", "status": "final",
             "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
             "subject": {"reference": "urn:uuid:7f4a-patient"}},
             "request": {"method": "POST", "url": "Observation"}},
            {"fullUrl": "urn:uuid:aa-claim", "resource": {"resourceType": "Claim", "status": "active", "use": "claim",
             "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "institutional"}]},
             "patient": {"reference": "urn:uuid:7f4a-patient"}, "created": "2024-05-01",
             "provider": {"display": "A clinic"}, "priority": {"coding": [{"code": "normal"}]},
             "insurance": [{"sequence": 1, "focal": true, "coverage": {"display": "Cigna"}}]}}
        ]
    })
    .to_string()
}

#[tokio::test]
async fn synthea_transaction_bundles_and_single_resources_load() {
    let dir = data_dir(
        "ok",
        &[
            ("a.json", synthea_bundle()),
            (
                "b.json",
                json!({"resourceType": "Organization", "id": "X1", "name": "Elsewhere"}).to_string(),
            ),
            ("notes.txt", "not JSON, not loaded".into()),
        ],
    );
    let loaded = load_dir(&dir, false).unwrap();
    // Every R4 type loads, Claim included.
    assert_eq!(loaded.resources.len(), 4);
    assert!(loaded.skipped.is_empty(), "{:?}", loaded.skipped);
    let observation = loaded
        .resources
        .iter()
        .find(|r| r["resourceType"] == "Observation")
        .unwrap();
    assert_eq!(observation["subject"]["reference"], "Patient/7f4a-patient");

    let mock = start_with(|config| config.data = Some(loaded.resources)).await;
    let token = mock.mint("user/*.rs", None);
    let (status, bundle) = mock.fhir_get("Observation?patient=7f4a-patient", &token).await;
    assert_eq!((status, &bundle["total"]), (StatusCode::OK, &json!(1)));
    assert_eq!(
        mock.fhir_get("Patient/1", &token).await.0,
        StatusCode::NOT_FOUND,
        "the built-in data is replaced"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bad_files_are_named_with_their_json_path() {
    let cases = [
        ("{\"resourceType\": \"Patient\",\n \"id\": }", "line 2, column"),
        ("{\"id\": \"1\"}", "$.resourceType"),
        (&json!({"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Patient", "id": "ok"}},
                                                      {"resource": {"id": "2"}}]}).to_string(), "$.entry[1].resource.resourceType"),
        (&json!({"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Patient", "id": "no spaces"}}]}).to_string(), "$.entry[0].resource.id"),
        (&json!({"resourceType": "Bundle", "entry": [{"request": {}}]}).to_string(), "$.entry[0].resource"),
        // Not valid R4: the JSON schema's verdict, at the element it is about.
        (&json!({"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Patient", "id": "p", "gender": "blue"}}]}).to_string(),
         "$.entry[0].resource.gender: \"blue\" is not one of"),
        (&json!({"resourceType": "Patient", "id": "p", "name": [{"famly": "Typo"}]}).to_string(), "$.name[0].famly"),
    ];
    for (index, (text, path)) in cases.iter().enumerate() {
        let dir = data_dir(
            &format!("bad{index}"),
            &[("good.json", synthea_bundle()), ("z-bad.json", text.to_string())],
        );
        let error = load_dir(&dir, false).unwrap_err();
        assert!(error.file.ends_with("z-bad.json"), "{error}");
        assert!(error.to_string().contains(path), "{error} should name {path}");
        // --lenient: the good file loads and the bad one is reported.
        let loaded = load_dir(&dir, true).unwrap();
        assert_eq!((loaded.resources.len(), loaded.errors.len()), (3, 1));
        std::fs::remove_dir_all(dir).unwrap();
    }
    let missing = load_dir(std::path::Path::new("/no/such/dir"), false).unwrap_err();
    assert!(missing.to_string().contains("/no/such/dir"));
}
