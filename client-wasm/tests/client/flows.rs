//! Every flow of the client, natively, against an in-process ccri-mock: the same
//! code the browser runs, with a reqwest platform instead of fetch.

use std::rc::Rc;

use crate::support::*;
use serde_json::{Value, json};
use smart_fhir_client::engine::fhir::{BundleKind, FhirRequest, IfMatch, InContext};
use smart_fhir_client::engine::launch::{AuthorizeOptions, LAUNCH_KEY_PREFIX, authorize};
use smart_fhir_client::engine::session::SESSION_KEY_PREFIX;
use smart_fhir_client::engine::{MemoryStorage, Method, Platform, SmartClient, Storage, callback, discovery};

const REDIRECT: &str = "http://127.0.0.1:5173/";

fn options(fhir_base: &str, scope: &str) -> AuthorizeOptions {
    AuthorizeOptions {
        iss: fhir_base.to_owned(),
        client_id: "demo-app".into(),
        scope: scope.into(),
        redirect_uri: REDIRECT.into(),
        ..AuthorizeOptions::default()
    }
}

type Client = SmartClient<Rc<TestPlatform>, Rc<MemoryStorage>>;

/// The authorize URL of a standalone launch of the demo app.
async fn launch_url<P: Platform<Json = Value>, S: Storage>(
    platform: &P,
    storage: &S,
    fhir_base: &str,
    scope: &str,
) -> String {
    authorize(platform, storage, &options(fhir_base, scope))
        .await
        .unwrap()
        .url()
}

/// A complete standalone launch as `bernie` through the mock's pages.
async fn launch(
    platform: &Rc<TestPlatform>,
    storage: &Rc<MemoryStorage>,
    fhir_base: &str,
    scope: &str,
) -> Client {
    let url = launch_url(platform, storage, fhir_base, scope).await;
    let callback_url = walk_pages(&url, "bernie", "allow").await;
    let state = callback::ready(platform, storage, &callback_url, None)
        .await
        .unwrap();
    SmartClient::new(platform.clone(), storage.clone(), state, None).unwrap()
}

#[tokio::test]
async fn discovery_prefers_well_known_and_falls_back_to_the_capability_statement() {
    let mock = start_mock(|_| {}).await;
    let platform = TestPlatform::new();
    let config = discovery::discover(&platform, &mock.urls.fhir_base)
        .await
        .unwrap();
    assert_eq!(config.token_endpoint, mock.urls.auth("token"));
    assert_eq!(platform.count("/metadata"), 0);

    platform.answer(".well-known/smart-configuration", 404, None);
    let config = discovery::discover(&platform, &mock.urls.fhir_base)
        .await
        .unwrap();
    assert_eq!(config.token_endpoint, mock.urls.auth("token"));
    assert_eq!(
        config.authorization_endpoint.as_deref(),
        Some(mock.urls.auth("authorize").as_str())
    );

    platform.answer(
        "/metadata",
        200,
        Some(json!({"resourceType": "CapabilityStatement", "rest": []})),
    );
    let error = discovery::discover(&platform, &mock.urls.fhir_base)
        .await
        .unwrap_err();
    assert_eq!(error.code_text(), "discovery_failed");
    assert!(error.message.contains("HTTP 404"), "{}", error.message);
}

#[tokio::test]
async fn refuses_to_launch_without_s256() {
    let mock = start_mock(|_| {}).await;
    let platform = TestPlatform::new();
    let mut config = serde_json::to_value(
        discovery::discover(&platform, &mock.urls.fhir_base)
            .await
            .unwrap(),
    )
    .unwrap();
    config["code_challenge_methods_supported"] = json!(["plain"]);
    platform.answer(".well-known/smart-configuration", 200, Some(config));
    let error = authorize(
        &platform,
        &MemoryStorage::default(),
        &options(&mock.urls.fhir_base, "launch/patient"),
    )
    .await
    .unwrap_err();
    assert_eq!(error.code_text(), "pkce_unsupported");
}

#[tokio::test]
async fn without_webcrypto_the_launch_stops_before_storing_anything() {
    let mock = start_mock(|_| {}).await;
    let platform = TestPlatform::new();
    platform.no_subtle_crypto.set(true);
    let storage = MemoryStorage::default();
    let error = authorize(
        &platform,
        &storage,
        &options(&mock.urls.fhir_base, "launch/patient"),
    )
    .await
    .unwrap_err();
    assert_eq!(error.code_text(), "crypto_unavailable");
    assert!(
        error.message.contains("https or from localhost"),
        "{}",
        error.message
    );
    assert!(
        storage.is_empty(),
        "no launch is kept for a launch that never started"
    );
}

#[tokio::test]
async fn standalone_launch_reads_the_record() {
    let mock = start_mock(|_| {}).await;
    let (platform, storage) = (Rc::new(TestPlatform::new()), Rc::new(MemoryStorage::default()));
    let url = launch_url(
        &platform,
        &storage,
        &mock.urls.fhir_base,
        "openid fhirUser launch/patient patient/*.rs offline_access",
    )
    .await;
    assert!(url.starts_with(&mock.urls.auth("authorize")));
    for expected in [
        "code_challenge_method=S256",
        "response_type=code",
        "client_id=demo-app",
        "aud=",
    ] {
        assert!(url.contains(expected), "{url}");
    }
    let callback_url = walk_pages(&url, "bernie", "allow").await;
    let state = callback::ready(&platform, &storage, &callback_url, None)
        .await
        .unwrap();
    assert_eq!(state.context.patient.as_deref(), Some("1"));
    assert_eq!(state.context.need_patient_banner, Some(true));
    assert_eq!(
        state.fhir_user.as_deref(),
        Some(format!("{}/Patient/1", mock.urls.fhir_base).as_str())
    );
    assert_eq!(state.id_token_claims.as_ref().unwrap()["aud"], "demo-app");
    assert!(state.refresh_token.is_some());
    assert!(format!("{state:?}").contains("[redacted]"));

    let client = SmartClient::new(platform.clone(), storage.clone(), state, None).unwrap();
    let patient = client
        .fhir(client.context_read(InContext::Patient))
        .await
        .unwrap();
    assert_eq!(patient["name"][0]["family"], "Kanfeld");
    assert_eq!(
        client.fhir(client.context_read(InContext::User)).await.unwrap()["id"],
        "1"
    );
    let params = [("patient".into(), "1".into()), ("_count".into(), "10".into())];
    let bundle = client
        .fhir(FhirRequest::search("Observation", &params))
        .await
        .unwrap();
    assert_eq!(bundle["total"], 41);
    let mut pages = 1;
    let mut next = FhirRequest::next_page(&bundle);
    while let Some(request) = next {
        let page = client.fhir(Ok(request)).await.unwrap();
        next = FhirRequest::next_page(&page);
        pages += 1;
    }
    assert_eq!(pages, 5);

    let error = client.fhir(FhirRequest::read("Patient", "3")).await.unwrap_err();
    assert_eq!(
        (error.code_text().to_string(), error.status),
        ("http_403".into(), Some(403))
    );
    assert!(error.message.contains("compartment"), "{}", error.message);
    assert_eq!(error.body.as_ref().unwrap()["resourceType"], "OperationOutcome");
    for (kind, id) in [
        ("Patient/1", "1"),
        ("patient", "1"),
        ("Patient", "../3"),
        ("Patient", "1?x=y"),
    ] {
        assert_eq!(
            client
                .fhir(FhirRequest::read(kind, id))
                .await
                .unwrap_err()
                .code_text(),
            "invalid_options",
            "{kind} {id}"
        );
    }
    let foreign = client
        .fhir(Ok(FhirRequest::new(
            Method::Get,
            "https://evil.example/ccri-fhir/R4/Patient",
        )))
        .await
        .unwrap_err();
    assert_eq!(foreign.code_text(), "unsafe_url");
}

/// Writes as apps make them: create, version reads, preconditions, JSON Patch, delete,
/// Bundles, their own headers and the response's, and cancelling.
#[tokio::test]
async fn conditional_writes_patches_bundles_headers_and_abort() {
    let mock = start_mock(|_| {}).await;
    let (platform, storage) = (Rc::new(TestPlatform::new()), Rc::new(MemoryStorage::default()));
    let client = launch(
        &platform,
        &storage,
        &mock.urls.fhir_base,
        "launch/patient patient/*.cruds",
    )
    .await;
    let observation = json!({"resourceType": "Observation", "status": "final", "code": {"text": "mood"},
                             "subject": {"reference": "Patient/1"}});
    let created = client
        .send(FhirRequest::create(&observation).unwrap())
        .await
        .unwrap();
    assert_eq!(created.status, 201);
    assert_eq!(created.headers["etag"], "W/\"1\"");
    assert!(
        created.headers["location"]
            .to_str()
            .unwrap()
            .contains("/Observation/")
    );
    let stale = created.body.unwrap();
    let id = stale["id"].as_str().unwrap().to_owned();

    // update() is conditional on the copy's version: a stale copy cannot overwrite.
    let mut newer = stale.clone();
    newer["status"] = json!("amended");
    let newer = client
        .fhir(FhirRequest::update(&newer, IfMatch::ResourceVersion))
        .await
        .unwrap();
    assert_eq!(newer["meta"]["versionId"], "2");
    let mut lost = stale.clone();
    lost["status"] = json!("cancelled");
    let refused = client
        .fhir(FhirRequest::update(&lost, IfMatch::ResourceVersion))
        .await
        .unwrap_err();
    assert_eq!(refused.code_text(), "http_412");
    let forced = client
        .fhir(FhirRequest::update(&lost, IfMatch::Never))
        .await
        .unwrap();
    assert_eq!(forced["meta"]["versionId"], "3");
    assert_eq!(
        client
            .fhir(FhirRequest::vread("Observation", &id, "1"))
            .await
            .unwrap()["status"],
        "final",
        "every version stays readable"
    );

    // JSON Patch, with and without a precondition.
    let replace = json!([{"op": "replace", "path": "/status", "value": "corrected"}]);
    let patch_version_3 = || FhirRequest::patch("Observation", &id, &replace, IfMatch::Version("3".into()));
    let patched = client.fhir(patch_version_3()).await.unwrap();
    assert_eq!(
        (patched["status"].as_str(), patched["meta"]["versionId"].as_str()),
        (Some("corrected"), Some("4"))
    );
    // The same patch again: version 3 is no longer the current one.
    let stale_patch = client.fhir(patch_version_3()).await.unwrap_err();
    assert_eq!(stale_patch.code_text(), "http_412");
    client
        .fhir(FhirRequest::delete("Observation", &id))
        .await
        .unwrap();
    let deleted = client
        .fhir(FhirRequest::read("Observation", &id))
        .await
        .unwrap_err();
    assert_eq!(deleted.code_text(), "http_410");
    let not_a_patch =
        FhirRequest::<TestSignal>::patch("Observation", &id, &json!({"op": "add"}), IfMatch::Never);
    assert_eq!(not_a_patch.unwrap_err().code_text(), "invalid_options");

    // A transaction is all or nothing; a batch answers entry by entry.
    let entry = |status: &str| {
        json!({"fullUrl": "urn:uuid:0a7b2e4e-5a36-4a4c-9c43-0a4c9e3b1c11", "request": {"method": "POST", "url": "Observation"},
               "resource": {"resourceType": "Observation", "status": status, "code": {"text": "mood"},
                            "subject": {"reference": "Patient/1"}}})
    };
    let done = client
        .fhir(FhirRequest::bundle(
            BundleKind::Transaction,
            &json!([entry("final")]),
        ))
        .await
        .unwrap();
    assert_eq!(done["type"], "transaction-response");
    assert_eq!(done["entry"][0]["response"]["status"], "201 Created");
    let invalid = client
        .fhir(FhirRequest::bundle(
            BundleKind::Transaction,
            &json!([entry("final"), entry("no-such-status")]),
        ))
        .await
        .unwrap_err();
    assert_eq!(invalid.code_text(), "http_400");
    let batch = client
        .fhir(FhirRequest::bundle(
            BundleKind::Batch,
            &json!({"resourceType": "Bundle", "type": "batch", "entry": [entry("final"), entry("no-such-status")]}),
        ))
        .await
        .unwrap();
    assert_eq!(batch["entry"][0]["response"]["status"], "201 Created");
    assert!(
        batch["entry"][1]["response"]["status"]
            .as_str()
            .unwrap()
            .starts_with("400")
    );
    let mismatched = FhirRequest::<TestSignal>::bundle(
        BundleKind::Batch,
        &json!({"resourceType": "Bundle", "type": "transaction"}),
    );
    assert_eq!(mismatched.unwrap_err().code_text(), "invalid_options");
    assert!(
        platform.log.borrow().contains(&mock.urls.fhir_base),
        "Bundles go to the base itself"
    );

    // The app's headers go along; the token stays the client's.
    let minimal = FhirRequest::create(&observation)
        .unwrap()
        .with_headers::<Value>(vec![("Prefer".into(), "return=minimal".into())])
        .unwrap();
    let response = client.send(minimal).await.unwrap();
    assert_eq!((response.status, response.body), (201, None));
    let smuggled = FhirRequest::<TestSignal>::read::<Value>("Patient", "1")
        .unwrap()
        .with_headers::<Value>(vec![("authorization".into(), "Bearer stolen".into())]);
    assert_eq!(smuggled.unwrap_err().code_text(), "invalid_options");
    let etag = client
        .send(FhirRequest::read::<Value>("Patient", "1").unwrap())
        .await
        .unwrap()
        .headers["etag"]
        .to_str()
        .unwrap()
        .to_owned();
    let unchanged = FhirRequest::read::<Value>("Patient", "1")
        .unwrap()
        .with_headers::<Value>(vec![("If-None-Match".into(), etag)])
        .unwrap();
    let response = client.send(unchanged).await.unwrap();
    assert_eq!((response.status, response.body), (304, None));

    // A cancelled request is `aborted`, not a network error.
    let signal = TestSignal::default();
    signal.0.set(true);
    let mut cancelled = FhirRequest::read::<Value>("Patient", "1").unwrap();
    cancelled.signal = Some(signal);
    assert_eq!(client.send(cancelled).await.unwrap_err().code_text(), "aborted");
}

#[tokio::test]
async fn denied_consent_is_access_denied() {
    let mock = start_mock(|_| {}).await;
    let (platform, storage) = (TestPlatform::new(), MemoryStorage::default());
    let url = launch_url(
        &platform,
        &storage,
        &mock.urls.fhir_base,
        "launch/patient patient/*.rs",
    )
    .await;
    let callback_url = walk_pages(&url, "bernie", "deny").await;
    let error = callback::ready(&platform, &storage, &callback_url, None)
        .await
        .unwrap_err();
    assert_eq!(error.code_text(), "access_denied");
    assert_eq!(error.oauth.as_ref().unwrap().error.as_str(), "access_denied");
}

#[tokio::test]
async fn unknown_and_replayed_state_are_refused() {
    let mock = start_mock(|_| {}).await;
    let (platform, storage) = (TestPlatform::new(), MemoryStorage::default());
    let error = callback::ready(
        &platform,
        &storage,
        "http://127.0.0.1:5173/?code=x&state=forged",
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(error.code_text(), "state_mismatch");
    let error = callback::ready(&platform, &storage, "http://127.0.0.1:5173/?code=x", None)
        .await
        .unwrap_err();
    assert_eq!(error.code_text(), "state_mismatch");

    let url = launch_url(
        &platform,
        &storage,
        &mock.urls.fhir_base,
        "launch/patient patient/*.rs",
    )
    .await;
    let callback_url = walk_pages(&url, "bernie", "allow").await;
    callback::ready(&platform, &storage, &callback_url, None)
        .await
        .unwrap();
    let replay = callback::ready(&platform, &storage, &callback_url, None)
        .await
        .unwrap_err();
    assert_eq!(replay.code_text(), "state_mismatch");
}

/// Two tabs sharing one store (as `localStorage`), each with its own tab store (as
/// `sessionStorage`).
struct Tab {
    shared: Rc<MemoryStorage>,
    own: MemoryStorage,
}

impl Storage for Tab {
    fn get(&self, key: &str) -> Option<String> {
        self.shared.get(key)
    }
    fn set(&self, key: &str, value: &str) -> Result<(), String> {
        self.shared.set(key, value)
    }
    fn remove(&self, key: &str) {
        self.shared.remove(key)
    }
    fn get_tab(&self, key: &str) -> Option<String> {
        self.own.get(key)
    }
    fn set_tab(&self, key: &str, value: &str) -> Result<(), String> {
        self.own.set(key, value)
    }
    fn remove_tab(&self, key: &str) {
        self.own.remove(key)
    }
}

#[tokio::test]
async fn sessions_in_one_store_never_overwrite_each_other_and_each_tab_resumes_its_own() {
    let mock = start_mock(|_| {}).await;
    let platform = Rc::new(TestPlatform::new());
    let shared = Rc::new(MemoryStorage::default());
    let tab = || {
        Rc::new(Tab {
            shared: shared.clone(),
            own: MemoryStorage::default(),
        })
    };
    let session_in = async |tab: &Rc<Tab>, scope: &str| {
        let url = launch_url(platform.as_ref(), tab.as_ref(), &mock.urls.fhir_base, scope).await;
        let callback_url = walk_pages(&url, "bernie", "allow").await;
        let state = callback::ready(platform.as_ref(), tab.as_ref(), &callback_url, None)
            .await
            .unwrap();
        SmartClient::new(platform.clone(), tab.clone(), state, None).unwrap()
    };
    let (first_tab, second_tab) = (tab(), tab());
    let first = session_in(&first_tab, "launch/patient patient/*.rs").await;
    let second = session_in(&second_tab, "launch/patient patient/Patient.rs").await;
    let scope_of =
        |client: &SmartClient<Rc<TestPlatform>, Rc<Tab>>| client.state().scope.unwrap().to_string();
    let resumed =
        |tab: &Rc<Tab>| SmartClient::restore(platform.clone(), tab.clone(), None).map(|c| scope_of(&c));
    assert_eq!(
        resumed(&first_tab).as_deref(),
        Some("launch/patient patient/*.rs")
    );
    assert_eq!(
        resumed(&second_tab).as_deref(),
        Some("launch/patient patient/Patient.rs")
    );
    // A new tab resumes the newest; the first tab's session was not overwritten by it.
    assert_eq!(
        resumed(&tab()).as_deref(),
        Some("launch/patient patient/Patient.rs")
    );
    assert_ne!(first.state().id, second.state().id);
    // Signing out of one leaves the other.
    second.revoke().await.unwrap();
    assert_eq!(resumed(&second_tab), None);
    assert!(second_tab.own.is_empty());
    assert_eq!(resumed(&tab()), None);
    assert_eq!(
        resumed(&first_tab).as_deref(),
        Some("launch/patient patient/*.rs")
    );
    assert_eq!(
        first.fhir(first.context_read(InContext::Patient)).await.unwrap()["id"],
        "1"
    );
}

#[tokio::test]
async fn two_launches_keep_their_own_state() {
    let mock = start_mock(|_| {}).await;
    let (platform, storage) = (TestPlatform::new(), MemoryStorage::default());
    let first = launch_url(
        &platform,
        &storage,
        &mock.urls.fhir_base,
        "launch/patient patient/*.rs",
    )
    .await;
    let second = launch_url(
        &platform,
        &storage,
        &mock.urls.fhir_base,
        "launch/patient patient/Patient.rs",
    )
    .await;
    // Finish them in the opposite order: each callback finds its own launch.
    let second_state = callback::ready(
        &platform,
        &storage,
        &walk_pages(&second, "bernie", "allow").await,
        None,
    )
    .await
    .unwrap();
    let first_state = callback::ready(
        &platform,
        &storage,
        &walk_pages(&first, "bernie", "allow").await,
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        second_state.scope.unwrap().to_string(),
        "launch/patient patient/Patient.rs"
    );
    assert_eq!(
        first_state.scope.unwrap().to_string(),
        "launch/patient patient/*.rs"
    );
}

#[tokio::test]
async fn wrong_pkce_verifier_is_invalid_grant() {
    let mock = start_mock(|_| {}).await;
    let (platform, storage) = (TestPlatform::new(), MemoryStorage::default());
    let url = launch_url(
        &platform,
        &storage,
        &mock.urls.fhir_base,
        "launch/patient patient/*.rs",
    )
    .await;
    let callback_url = walk_pages(&url, "bernie", "allow").await;
    let state = callback::query_params(&callback_url)
        .into_iter()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1;
    let key = format!("{LAUNCH_KEY_PREFIX}{state}");
    let mut pending: Value = serde_json::from_str(&storage.get(&key).unwrap()).unwrap();
    pending["code_verifier"] = json!("x".repeat(43));
    storage.set(&key, &pending.to_string()).unwrap();
    let error = callback::ready(&platform, &storage, &callback_url, None)
        .await
        .unwrap_err();
    assert_eq!(error.code_text(), "invalid_grant");
}

#[tokio::test]
async fn iss_allow_list() {
    let (platform, storage) = (TestPlatform::new(), MemoryStorage::default());
    let mut opts = options("https://evil.example/fhir", "launch");
    opts.iss_allow_list = Some(vec!["http://127.0.0.1:8080/ccri-fhir/R4".into()]);
    assert_eq!(
        authorize(&platform, &storage, &opts)
            .await
            .unwrap_err()
            .code_text(),
        "iss_not_allowed"
    );
    assert!(
        platform.log.borrow().is_empty(),
        "nothing was fetched from the unlisted server"
    );
    opts.client_id.clear();
    assert_eq!(
        authorize(&platform, &storage, &opts)
            .await
            .unwrap_err()
            .code_text(),
        "invalid_options"
    );
}

#[tokio::test]
async fn concurrent_requests_after_expiry_share_one_refresh() {
    let mock = start_mock(|c| c.token_ttl_secs = 2).await;
    let (platform, storage) = (Rc::new(TestPlatform::new()), Rc::new(MemoryStorage::default()));
    let client = launch(
        &platform,
        &storage,
        &mock.urls.fhir_base,
        "launch/patient offline_access patient/*.rs",
    )
    .await;
    let before = platform.count("/ccri-auth/token");
    let old_token = client.state().access_token.secret().to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
    let reads = (0..5).map(|_| client.fhir(FhirRequest::read("Patient", "1")));
    let results = futures_util::future::join_all(reads).await;
    assert!(
        results.iter().all(Result::is_ok),
        "{:?}",
        results.iter().find(|r| r.is_err())
    );
    assert_eq!(
        platform.count("/ccri-auth/token") - before,
        1,
        "exactly one refresh"
    );
    assert_ne!(client.state().access_token.secret(), old_token);
    // The refreshed session was saved for the next page.
    let saved: Value = serde_json::from_str(
        &storage
            .get(&format!("{SESSION_KEY_PREFIX}{}", client.state().id))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(saved["accessToken"], client.state().access_token.secret());
}

#[tokio::test]
async fn a_401_refreshes_once_and_retries() {
    let mock = start_mock(|_| {}).await;
    let (platform, storage) = (Rc::new(TestPlatform::new()), Rc::new(MemoryStorage::default()));
    let client = launch(
        &platform,
        &storage,
        &mock.urls.fhir_base,
        "launch/patient offline_access patient/*.rs",
    )
    .await;
    // The server forgets the access token (as after a restart of its cache): revoke just it.
    let token = client.state().access_token.secret().to_owned();
    reqwest::Client::new()
        .post(mock.urls.auth("revoke"))
        .form(&[("token", token.as_str()), ("client_id", "demo-app")])
        .send()
        .await
        .unwrap();
    let before = platform.count("/ccri-auth/token");
    let reads = (0..5).map(|_| client.fhir(FhirRequest::read("Patient", "1")));
    let results = futures_util::future::join_all(reads).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(platform.count("/ccri-auth/token") - before, 1);
    assert_eq!(
        platform.unauthorized.get(),
        5,
        "each request met the 401, then retried once"
    );
}

#[tokio::test]
async fn failed_refresh_and_revocation_end_the_session() {
    let mock = start_mock(|c| c.token_ttl_secs = 1).await;
    let (platform, storage) = (Rc::new(TestPlatform::new()), Rc::new(MemoryStorage::default()));
    let client = launch(
        &platform,
        &storage,
        &mock.urls.fhir_base,
        "launch/patient offline_access patient/*.rs",
    )
    .await;
    client.revoke().await.unwrap();
    assert!(storage.is_empty(), "sign-out clears storage: {storage:?}");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let error = client.fhir(FhirRequest::read("Patient", "1")).await.unwrap_err();
    assert_eq!(error.code_text(), "session_expired");
    assert_eq!(error.oauth.as_ref().unwrap().error.as_str(), "invalid_grant");

    // Without a refresh token there is nothing to try.
    let client = launch(
        &platform,
        &storage,
        &mock.urls.fhir_base,
        "launch/patient patient/*.rs",
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(
        client
            .fhir(FhirRequest::read("Patient", "1"))
            .await
            .unwrap_err()
            .code_text(),
        "session_expired"
    );
}

#[tokio::test]
async fn a_tampered_id_token_is_refused() {
    let mock = start_mock(|_| {}).await;
    let (platform, storage) = (TestPlatform::new(), MemoryStorage::default());
    let url = launch_url(
        &platform,
        &storage,
        &mock.urls.fhir_base,
        "openid fhirUser launch/patient patient/*.rs",
    )
    .await;
    let callback_url = walk_pages(&url, "bernie", "allow").await;
    // Serve a JWKS with a different key: the genuine signature no longer verifies.
    let other = ccri_mock::SigningKey::generate(ccri_mock::SigningAlg::RS256).unwrap();
    platform.answer(
        "/ccri-auth/jwk",
        200,
        Some(serde_json::to_value(other.jwks()).unwrap()),
    );
    let error = callback::ready(&platform, &storage, &callback_url, None)
        .await
        .unwrap_err();
    assert_eq!(error.code_text(), "id_token_invalid");
}

/// A token endpoint that answers 200 with something other than a valid token
/// response, or an id_token that is not a JWT, is a typed error naming the problem.
#[tokio::test]
async fn malformed_token_answers_are_typed_errors() {
    let mock = start_mock(|_| {}).await;
    let (platform, storage) = (TestPlatform::new(), MemoryStorage::default());
    let token = |extra: Value| {
        let mut body = json!({"access_token": "a.b.c", "token_type": "Bearer"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    let cases = [
        (
            json!({"access_token": 7}),
            "invalid_response",
            "`access_token` must be a string",
        ),
        (
            token(json!({"expires_in": "3600"})),
            "invalid_response",
            "`expires_in` must be a non-negative integer",
        ),
        (
            token(json!({"token_type": "mac"})),
            "invalid_response",
            "token_type mac is not Bearer",
        ),
        (
            token(json!({"id_token": "not-a-jwt"})),
            "id_token_invalid",
            "not a signed JWT",
        ),
        (
            token(json!({"id_token": "!!.e30.sig"})),
            "id_token_invalid",
            "not base64url",
        ),
        (
            token(json!({"id_token": "e30.e30.sig"})),
            "id_token_invalid",
            "alg  is none of RS256",
        ),
    ];
    for (answer, code, says) in cases {
        let url = launch_url(&platform, &storage, &mock.urls.fhir_base, "openid launch/patient").await;
        let state = url.split("state=").nth(1).unwrap().split('&').next().unwrap();
        platform.answer("/ccri-auth/token", 200, Some(answer));
        let callback_url = format!("{REDIRECT}?code=any&state={state}&iss={}", mock.urls.auth_base);
        let error = callback::ready(&platform, &storage, &callback_url, None)
            .await
            .unwrap_err();
        assert_eq!(error.code_text(), code, "{}", error.message);
        assert!(error.message.contains(says), "{}", error.message);
    }
    // The tokens of the four answers that parsed (a mac token_type, three bad
    // id_tokens) were revoked; the two that did not parse held no usable token.
    assert_eq!(platform.count("/ccri-auth/revoke"), 4);
}

#[tokio::test]
async fn restore_continues_a_saved_session() {
    let mock = start_mock(|_| {}).await;
    let (platform, storage) = (Rc::new(TestPlatform::new()), Rc::new(MemoryStorage::default()));
    launch(
        &platform,
        &storage,
        &mock.urls.fhir_base,
        "launch/patient patient/*.rs",
    )
    .await;
    let restored: Client = SmartClient::restore(platform.clone(), storage.clone(), None).unwrap();
    assert_eq!(
        restored
            .fhir(restored.context_read(InContext::Patient))
            .await
            .unwrap()["id"],
        "1"
    );
}

/// The value of `name` in `url`'s query.
fn param(url: &str, name: &str) -> Option<String> {
    callback::query_params(url)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

#[tokio::test]
async fn openid_launches_send_nonce_and_prompt_and_the_options_never_override_the_protocol() {
    let mock = start_mock(|_| {}).await;
    let (platform, storage) = (TestPlatform::new(), MemoryStorage::default());
    let fhir_base = mock.urls.fhir_base.as_str();

    let url = launch_url(
        &platform,
        &storage,
        fhir_base,
        "openid fhirUser offline_access patient/*.rs",
    )
    .await;
    assert_eq!(param(&url, "nonce").map(|n| n.len()), Some(43), "{url}");
    // OpenID Connect Core §11: offline_access with openid needs prompt=consent.
    assert_eq!(param(&url, "prompt").as_deref(), Some("consent"));
    let url = launch_url(&platform, &storage, fhir_base, "launch/patient patient/*.rs").await;
    assert_eq!((param(&url, "nonce"), param(&url, "prompt")), (None, None));

    let mut chosen = options(fhir_base, "openid offline_access patient/*.rs");
    chosen.prompt = Some("login".into());
    chosen.extra_params = vec![("login_hint".into(), "bernie".into())];
    chosen.aud = Some("https://resource.example/fhir".into());
    chosen.post = true;
    let request = authorize(&platform, &storage, &chosen).await.unwrap();
    assert!(request.post, "the mock advertises authorize-post");
    assert_eq!(request.endpoint, mock.urls.auth("authorize"));
    let url = request.url();
    assert_eq!(param(&url, "prompt").as_deref(), Some("login"));
    assert_eq!(param(&url, "login_hint").as_deref(), Some("bernie"));
    assert_eq!(
        param(&url, "aud").as_deref(),
        Some("https://resource.example/fhir")
    );
    // aud is what the token is for; requests still go to iss.
    let key = format!("{LAUNCH_KEY_PREFIX}{}", param(&url, "state").unwrap());
    let pending: Value = serde_json::from_str(&storage.get(&key).unwrap()).unwrap();
    assert_eq!(pending["fhir_base"], fhir_base);

    for name in ["state", "code_challenge", "nonce", "redirect_uri"] {
        let mut sneaky = options(fhir_base, "openid");
        sneaky.extra_params = vec![(name.into(), "x".into())];
        let error = authorize(&platform, &storage, &sneaky).await.unwrap_err();
        assert_eq!(error.code_text(), "invalid_options", "{name}");
        assert!(error.message.contains(name), "{}", error.message);
    }
}

#[tokio::test]
async fn an_openid_launch_needs_an_issuer_in_discovery() {
    let mock = start_mock(|_| {}).await;
    let platform = TestPlatform::new();
    let mut config: Value = reqwest::get(format!("{}/.well-known/smart-configuration", mock.urls.fhir_base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    config.as_object_mut().unwrap().remove("issuer");
    platform.answer(".well-known/smart-configuration", 200, Some(config));
    let storage = MemoryStorage::default();
    let error = authorize(
        &platform,
        &storage,
        &options(&mock.urls.fhir_base, "openid fhirUser"),
    )
    .await
    .unwrap_err();
    assert_eq!(error.code_text(), "discovery_failed");
    assert!(error.message.contains("issuer"), "{}", error.message);
    // Without openid there is no id_token to check, and no need for one.
    authorize(
        &platform,
        &storage,
        &options(&mock.urls.fhir_base, "launch/patient"),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn an_authorization_response_from_another_issuer_is_refused() {
    let mock = start_mock(|_| {}).await;
    let (platform, storage) = (TestPlatform::new(), MemoryStorage::default());
    let scope = "launch/patient patient/*.rs";
    // ccri-mock promises RFC 9207's iss, so a response without it is refused too.
    for (forged, says) in [
        (Some("https://evil.example/auth"), "evil.example"),
        (None, "has no iss"),
    ] {
        let url = launch_url(&platform, &storage, &mock.urls.fhir_base, scope).await;
        let callback_url = walk_pages(&url, "bernie", "allow").await;
        assert_eq!(
            param(&callback_url, "iss").as_deref(),
            Some(mock.urls.auth_base.as_str())
        );
        let (base, query) = callback_url.split_once('?').unwrap();
        let mut pairs: Vec<(String, String)> = callback::query_params(&callback_url)
            .into_iter()
            .filter(|(k, _)| k != "iss")
            .collect();
        pairs.extend(forged.map(|iss| ("iss".to_owned(), iss.to_owned())));
        let tampered = format!(
            "{base}?{}",
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&pairs)
                .finish()
        );
        assert_ne!(query, tampered.split_once('?').unwrap().1);
        let error = callback::ready(&platform, &storage, &tampered, None)
            .await
            .unwrap_err();
        assert_eq!(error.code_text(), "issuer_mismatch");
        assert!(error.message.contains(says), "{}", error.message);
    }
    // An error response is checked too: a forged access_denied from another server
    // must not pass for this server's answer.
    let url = launch_url(&platform, &storage, &mock.urls.fhir_base, scope).await;
    let state = param(&url, "state").unwrap();
    let forged =
        format!("{REDIRECT}?error=access_denied&state={state}&iss=https%3A%2F%2Fevil.example%2Fauth");
    let error = callback::ready(&platform, &storage, &forged, None)
        .await
        .unwrap_err();
    assert_eq!(error.code_text(), "issuer_mismatch");
}

#[tokio::test]
async fn tokens_that_come_with_a_bad_id_token_are_revoked() {
    let mock = start_mock(|_| {}).await;
    let (platform, storage) = (TestPlatform::new(), MemoryStorage::default());
    let url = launch_url(
        &platform,
        &storage,
        &mock.urls.fhir_base,
        "openid fhirUser offline_access patient/*.rs",
    )
    .await;
    let callback_url = walk_pages(&url, "bernie", "allow").await;
    // A JWKS without the server's key: the id_token's signature cannot be checked.
    platform.answer("/ccri-auth/jwk", 200, Some(json!({"keys": []})));
    let error = callback::ready(&platform, &storage, &callback_url, None)
        .await
        .unwrap_err();
    assert_eq!(error.code_text(), "id_token_invalid");
    // The tokens the server sent are dead at the server: the refresh token, and with
    // it its grant's access token (RFC 7009 §2.1).
    assert_eq!(platform.count("/ccri-auth/revoke"), 1);
    let tokens = platform
        .answers
        .borrow()
        .iter()
        .find(|(url, _)| url.ends_with("/ccri-auth/token"))
        .and_then(|(_, body)| body.clone())
        .expect("a token response");
    let http = reqwest::Client::new();
    let refresh = http
        .post(format!("{}/token", mock.urls.auth_base))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", "demo-app"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refresh.status(), 400);
    let read = http
        .get(format!("{}/Patient/1", mock.urls.fhir_base))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 401);
}

#[tokio::test]
async fn id_tokens_signed_ps256_and_es256_are_verified_too() {
    for alg in [ccri_mock::SigningAlg::PS256, ccri_mock::SigningAlg::ES256] {
        let mock = start_mock(|config| config.signing_alg = alg).await;
        let (platform, storage) = (TestPlatform::new(), MemoryStorage::default());
        let url = launch_url(
            &platform,
            &storage,
            &mock.urls.fhir_base,
            "openid fhirUser patient/*.rs",
        )
        .await;
        let callback_url = walk_pages(&url, "bernie", "allow").await;
        let state = callback::ready(&platform, &storage, &callback_url, None)
            .await
            .unwrap_or_else(|e| panic!("{alg:?}: {}", e.message));
        assert_eq!(
            state.fhir_user.as_deref(),
            Some(format!("{}/Patient/1", mock.urls.fhir_base).as_str()),
            "{alg:?}"
        );
    }
}

#[tokio::test]
async fn the_encounter_in_context_is_read_with_encounter() {
    let mock = start_mock(|_| {}).await;
    let (platform, storage) = (Rc::new(TestPlatform::new()), Rc::new(MemoryStorage::default()));
    let client = launch(
        &platform,
        &storage,
        &mock.urls.fhir_base,
        "launch/patient launch/encounter patient/*.rs",
    )
    .await;
    // The consent page's default: the patient's latest encounter.
    let encounter = client
        .fhir(client.context_read(InContext::Encounter))
        .await
        .unwrap();
    assert_eq!(encounter["resourceType"], "Encounter");
    assert_eq!(encounter["subject"]["reference"], "Patient/1");
    let client = launch(
        &platform,
        &storage,
        &mock.urls.fhir_base,
        "launch/patient patient/*.rs",
    )
    .await;
    assert_eq!(
        client
            .fhir(client.context_read(InContext::Encounter))
            .await
            .unwrap_err()
            .code_text(),
        "no_encounter"
    );
}
