//! `--data DIR`: loading FHIR JSON files, Synthea's transaction Bundles included,
//! with errors that name the file and the JSON path.

use std::path::{Path, PathBuf};

use crate::common::*;
use ccri_mock::{Config, DataDir, Seeded, StartError, Storage, load_dir};
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

fn data(dir: &Path, lenient: bool) -> DataDir {
    DataDir {
        dir: dir.to_owned(),
        lenient,
    }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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
    let (records, loaded) = load_dir(&data(&dir, false)).unwrap();
    // Every R4 type loads, Claim included.
    assert_eq!((records.len(), loaded.count), (4, 4));
    assert!(loaded.skipped.is_empty(), "{:?}", loaded.skipped);
    let observation = records
        .iter()
        .find(|r| r.kind() == "Observation")
        .unwrap()
        .resource();
    assert_eq!(observation["subject"]["reference"], "Patient/7f4a-patient");

    let mock = start_with(|config| config.data = Some(data(&dir, false))).await;
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

/// A Bundle the quick first pass cannot read (a `fullUrl` that is not text) is
/// read whole, and its `urn:uuid:` references are still rewritten.
#[test]
fn a_bundle_read_whole_still_has_its_urn_references_rewritten() {
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:5f1c", "resource": {"resourceType": "Patient"}},
        {"fullUrl": 7, "resource": {"resourceType": "Observation", "id": "o", "status": "final",
                                    "code": {"text": "x"}, "subject": {"reference": "urn:uuid:5f1c"}}}]});
    let dir = data_dir("whole", &[("a.json", bundle.to_string())]);
    let (records, _) = load_dir(&data(&dir, false)).unwrap();
    let observation = records.iter().find(|r| r.kind() == "Observation").unwrap();
    assert_eq!(observation.resource()["subject"]["reference"], "Patient/5f1c");
    assert!(records.iter().any(|r| r.kind() == "Patient" && r.id() == "5f1c"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bad_files_are_named_with_their_json_path() {
    let cases = [
        ("{\"resourceType\": \"Patient\",\n \"id\": }", "line 2, column"),
        ("{\"id\": \"1\"}", "$.resourceType"),
        // An array is no Bundle, even one whose first element says so.
        ("[\"Bundle\", {\"entry\": []}]", "$.resourceType"),
        (&json!({"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Patient", "id": "ok"}},
                                                      {"resource": {"id": "2"}}]}).to_string(), "$.entry[1].resource.resourceType"),
        (&json!({"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Patient", "id": "no spaces"}}]}).to_string(), "$.entry[0].resource.id"),
        (&json!({"resourceType": "Bundle", "entry": [{"request": {}}]}).to_string(), "$.entry[0].resource"),
        // An entry that is not an object: the Bundle is read whole, and the entry still named.
        (&json!({"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Patient", "id": "ok"}}, 3]}).to_string(), "$.entry[1].resource"),
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
        let error = load_dir(&data(&dir, false)).unwrap_err();
        assert!(error.file.ends_with("z-bad.json"), "{error}");
        assert!(error.to_string().contains(path), "{error} should name {path}");
        // --lenient: the good file loads and the bad one is reported.
        let (_, loaded) = load_dir(&data(&dir, true)).unwrap();
        assert_eq!((loaded.count, loaded.errors.len()), (3, 1));
        std::fs::remove_dir_all(dir).unwrap();
    }
    let missing = load_dir(&data(Path::new("/no/such/dir"), false)).unwrap_err();
    assert!(missing.to_string().contains("/no/such/dir"));
}

/// Synthea's own output, generated now (3 patients, by the PyPI port that
/// scripts/setup.sh installs): every resource loads, none is skipped, and the
/// searches a patient app makes work on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synthea_output_loads_with_nothing_skipped() {
    let synthea = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/synthea/bin/synthea");
    assert!(
        synthea.exists(),
        "{} is missing: run scripts/setup.sh (make test does)",
        synthea.display()
    );
    let dir = data_dir("synthea", &[]);
    let generated = std::process::Command::new(&synthea)
        .args(["-p", "3", "-s", "1", "--threads", "1", "-o"])
        .arg(&dir)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(generated.success());
    let (records, loaded) = load_dir(&data(&dir.join("fhir"), false)).unwrap();
    assert!(loaded.skipped.is_empty(), "{:?}", loaded.skipped);
    assert!(loaded.count > 1000, "{} resources", loaded.count);
    let patients: Vec<_> = records
        .iter()
        .filter(|r| r.kind() == "Patient")
        .map(ccri_mock::Record::resource)
        .collect();
    assert_eq!(patients.len(), 3);
    let id = patients[0]["id"].as_str().unwrap().to_owned();
    let family = patients[0]["name"][0]["family"].as_str().unwrap().to_owned();

    let mock = start_with(|config| config.data = Some(data(&dir.join("fhir"), false))).await;
    let token = mock.mint("user/*.rs", None);
    let get = |query: String| {
        let (mock, token) = (&mock, &token);
        async move {
            let (status, bundle) = mock.fhir_get(&query, token).await;
            assert_eq!(status, StatusCode::OK, "{query}: {bundle}");
            bundle
        }
    };

    // Lab reports with their results, as a patient app's results page asks.
    let reports = get(format!(
        "DiagnosticReport?patient={id}&_include=DiagnosticReport:result&_count=5"
    ))
    .await;
    let found = entries(&reports);
    assert!(found.iter().any(|(_, mode)| mode == "match"), "{reports}");
    let included: Vec<&String> = found
        .iter()
        .filter(|(_, mode)| mode == "include")
        .map(|(key, _)| key)
        .collect();
    assert!(!included.is_empty(), "{reports}");
    assert!(
        included.iter().all(|key| key.starts_with("Observation/")),
        "{included:?}"
    );
    // The latest vital signs, newest first.
    let vitals = get(format!(
        "Observation?patient={id}&category=vital-signs&_sort=-date&_count=5"
    ))
    .await;
    let dates: Vec<&str> = vitals["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["effectiveDateTime"].as_str().unwrap())
        .collect();
    assert_eq!(dates.len(), 5);
    assert!(dates.windows(2).all(|pair| pair[0] >= pair[1]), "{dates:?}");
    // A chain reaches the same Observations as the patient's id does.
    let by_id = get(format!("Observation?patient={id}&_summary=count")).await;
    let by_name = get(format!(
        "Observation?subject:Patient.family={family}&_summary=count"
    ))
    .await;
    assert_eq!(by_name["total"], by_id["total"]);
    // Everything about the patient: at least their Observations, Encounters and Conditions.
    let everything = get(format!("Patient/{id}/$everything?_count=1000")).await;
    let mut at_least = 1;
    for kind in ["Observation", "Encounter", "Condition"] {
        at_least += get(format!("{kind}?patient={id}&_summary=count")).await["total"]
            .as_u64()
            .unwrap();
    }
    assert!(
        everything["total"].as_u64().unwrap() >= at_least,
        "{} < {at_least}",
        everything["total"]
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// A SQLite store is filled from `--data` once, all or nothing: a bad file leaves
/// it empty, and a store that holds resources does not read `--data` again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_store_loads_data_once_and_never_half() {
    let dir = data_dir(
        "sqlite",
        &[("a.json", synthea_bundle()), ("b.json", "{\"id\": 1}".into())],
    );
    let storage = Storage::Sqlite(dir.join("store").join("mock.db"));
    let spawn = |lenient: bool| {
        ccri_mock::spawn(Config {
            port: 0,
            store: storage.clone(),
            data: Some(data(&dir, lenient)),
            ..Config::default()
        })
    };
    match spawn(false).await {
        Err(StartError::Data(error)) => assert!(error.file.ends_with("b.json"), "{error}"),
        other => panic!("the bad file stops the start: {other:?}"),
    }
    // Nothing of a.json was kept: the next start loads again, leniently this time.
    let server = spawn(true).await.unwrap();
    match &server.seeded {
        Seeded::Data(loaded) => assert_eq!((loaded.count, loaded.errors.len()), (3, 1)),
        other => panic!("{other:?}"),
    }
    server.shutdown().await;
    let server = spawn(true).await.unwrap();
    assert!(matches!(server.seeded, Seeded::Kept), "{:?}", server.seeded);
    server.shutdown().await;
    // --reset with the bad file: refused, and what the store held is still there.
    let reset = ccri_mock::spawn(Config {
        port: 0,
        store: storage.clone(),
        reset: true,
        data: Some(data(&dir, false)),
        ..Config::default()
    });
    assert!(matches!(reset.await, Err(StartError::Data(_))));
    let server = ccri_mock::spawn(Config {
        port: 0,
        store: storage.clone(),
        ..Config::default()
    })
    .await
    .unwrap();
    assert!(matches!(server.seeded, Seeded::Kept), "{:?}", server.seeded);
    server.shutdown().await;
    std::fs::remove_dir_all(dir).unwrap();
}
