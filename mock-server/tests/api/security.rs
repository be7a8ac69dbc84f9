//! The hostile review of ccri-mock: one test per finding, each named after what it
//! protects. A person's login, their choice of patient and their consent cannot be
//! skipped or made for them; a patient sees only their record; nothing an anonymous
//! caller sends grows the server without bound or breaks a response.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::*;
use reqwest::StatusCode;
use reqwest::header::{SET_COOKIE, WWW_AUTHENTICATE};
use serde_json::{Value, json};

/// A second browser: no cookies of its own, redirects not followed.
fn other_browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn post_as(http: &reqwest::Client, url: String, form: &[(&str, &str)]) -> Page {
    page(http.post(url).form(form).send().await.unwrap()).await
}

/// The token a standalone launch as `username` ends with.
async fn launch_token(mock: &Mock, scope: &str, username: &str, patient: Option<&str>) -> Value {
    let (code, verifier) = mock.code_for(scope, username, patient).await;
    let (status, body) = mock.exchange(&code, &verifier).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn count(mock: &Mock, query: &str, token: &str) -> (StatusCode, u64) {
    let (status, body) = mock.fhir_get(query, token).await;
    (status, body["total"].as_u64().unwrap_or_default())
}

fn is_code_redirect(page: &Page) -> bool {
    page.status == StatusCode::SEE_OTHER && page.redirect_param("code").is_some()
}

// 1. Login skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_and_picker_cannot_be_posted_before_login() {
    let mock = start().await;
    let (_, challenge) = pkce();
    let login = mock
        .authorize(&authorize_params(
            &mock,
            "launch/patient user/*.cruds",
            &challenge,
        ))
        .await;
    let txn = login.txn();
    let consent = mock.decide(&txn, "allow").await;
    assert!(!is_code_redirect(&consent), "consent before login gave a code");
    assert_eq!(consent.status, StatusCode::BAD_REQUEST, "{}", consent.html);
    let picked = mock.pick(&txn, "3").await;
    assert_eq!(picked.status, StatusCode::BAD_REQUEST, "{}", picked.html);
    let consent = mock.decide(&txn, "allow").await;
    assert!(
        !is_code_redirect(&consent),
        "picker then consent before login gave a code"
    );
    // The authorization is still at its login step: a real login goes on normally.
    let done = mock.walk(login, "dr.harrison", Some("3"), "allow").await;
    assert!(is_code_redirect(&done), "{}", done.html);
}

// 2. A patient picks someone else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patient_user_cannot_choose_another_patient() {
    let mock = start().await;
    let (verifier, challenge) = pkce();
    let login = mock
        .authorize(&authorize_params(
            &mock,
            "launch/patient patient/*.rs",
            &challenge,
        ))
        .await;
    let txn = login.txn();
    let consent = mock.log_in(&txn, "bernie").await;
    assert!(consent.html.contains("Allow"), "{}", consent.html);
    let picked = mock.pick(&txn, "3").await;
    assert_eq!(picked.status, StatusCode::BAD_REQUEST, "{}", picked.html);
    let done = mock.decide(&txn, "allow").await;
    let (status, body) = mock
        .exchange(&done.redirect_param("code").unwrap(), &verifier)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["patient"], "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ehr_launch_for_another_patient_refuses_a_patient_login() {
    let mock = start().await;
    let launched = mock
        .post_page(
            "launcher",
            &[
                ("launch_url", "http://127.0.0.1:5173/app"),
                ("client_id", "demo-app"),
                ("patient", "4"),
                ("practitioner", ""),
            ],
        )
        .await;
    let launch = launched.redirect_param("launch").expect("a launch id");
    let (_, challenge) = pkce();
    let mut params = authorize_params(&mock, "launch patient/*.rs", &challenge);
    params.push(("launch".into(), launch));
    let login = mock.authorize(&params).await;
    let after = mock.log_in(&login.txn(), "bernie").await;
    assert!(
        !is_code_redirect(&after) && !after.html.contains("Allow"),
        "{}",
        after.html
    );
    assert!(
        after.html.contains("Patient/4"),
        "the login page says why: {}",
        after.html
    );
}

// 3. `user/` means everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_scopes_of_a_patient_reach_only_their_own_record() {
    let mock = start().await;
    let body = launch_token(&mock, "openid fhirUser user/*.rs", "bernie", None).await;
    let token = body["access_token"].as_str().unwrap();
    let (status, _) = mock.fhir_get("Patient/3", token).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = mock.fhir_get("Patient/1", token).await;
    assert_eq!(status, StatusCode::OK);
    let everyone = mock.mint("user/*.rs", None);
    let (_, bernies) = count(&mock, "Observation?patient=1&_summary=count", &everyone).await;
    let (_, all) = count(&mock, "Observation?_summary=count", &everyone).await;
    assert!(bernies > 0 && bernies < all);
    assert_eq!(
        count(&mock, "Observation?_summary=count", token).await,
        (StatusCode::OK, bernies)
    );
    let (status, found) = mock.fhir_get("Observation?patient=3", token).await;
    assert_eq!(status, StatusCode::OK);
    assert!(entries(&found).is_empty(), "{found}");
    // A practitioner's user/ scopes still reach every patient.
    let body = launch_token(&mock, "openid fhirUser user/*.rs", "dr.harrison", None).await;
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(
        count(&mock, "Observation?_summary=count", token).await,
        (StatusCode::OK, all)
    );
}

async fn register_redirect(mock: &Mock, uri: &str, method: &str) -> (StatusCode, Value) {
    mock.register(json!({
        "client_name": "redirect test",
        "redirect_uris": [uri],
        "token_endpoint_auth_method": method,
    }))
    .await
}

// 4. Redirect URIs with userinfo.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_uris_cannot_send_codes_elsewhere() {
    let mock = start().await;
    for uri in [
        "http://127.0.0.1:1@evil.example/cb",
        "http://localhost:@evil.example/",
        "http://[::1]:x@evil.example/",
        "https://user:pw@app.example/cb",
        "http://app.example/cb",
        "http://127.0.0.1.evil.example/cb",
        "https://app.example/cb#fragment",
        "javascript:alert(1)",
        "/relative/cb",
    ] {
        let (status, body) = register_redirect(&mock, uri, "none").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri} accepted: {body}");
        assert_eq!(body["error"], "invalid_redirect_uri", "{uri}");
    }
    for uri in [
        "http://127.0.0.1:5173/cb",
        "http://localhost/cb",
        "http://[::1]:8000/cb",
        "https://app.example/cb?x=1",
        "com.example.app:/oauth2redirect",
    ] {
        let (status, body) = register_redirect(&mock, uri, "none").await;
        assert_eq!(status, StatusCode::CREATED, "{uri} refused: {body}");
    }
    // A custom scheme proves nothing about who receives it: public clients only.
    let (status, body) =
        register_redirect(&mock, "com.example.app:/oauth2redirect", "client_secret_basic").await;
    assert_oauth_error(status, &body, StatusCode::BAD_REQUEST, "invalid_redirect_uri");
}

// 5. Header injection → 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_never_reach_a_location_header() {
    let mock = start().await;
    for uri in [
        "http://127.0.0.1/cb\r\nSet-Cookie: x=1",
        "http://127.0.0.1/c\u{7}b",
        "http://127.0.0.1/é",
    ] {
        let (status, body) = register_redirect(&mock, uri, "none").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri:?} accepted: {body}");
        assert_eq!(body["error"], "invalid_redirect_uri");
    }
    let launched = mock
        .post_page(
            "launcher",
            &[
                ("launch_url", "http://x/\r\nSet-Cookie: x=1"),
                ("client_id", "demo-app"),
                ("patient", "1"),
            ],
        )
        .await;
    assert_eq!(launched.status, StatusCode::BAD_REQUEST, "{}", launched.html);
    assert!(launched.html.contains("launch URL"), "{}", launched.html);
}

// 6. Unbounded state from anonymous callers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_callers_cannot_grow_the_server_without_bound() {
    let mock = start().await;
    let huge = "x".repeat(60_000);
    for metadata in [
        json!({"client_name": huge, "redirect_uris": [APP_REDIRECT], "token_endpoint_auth_method": "none"}),
        json!({"redirect_uris": [format!("{APP_REDIRECT}{huge}")], "token_endpoint_auth_method": "none"}),
        json!({"redirect_uris": (0..100).map(|i| format!("{APP_REDIRECT}{i}")).collect::<Vec<_>>(),
               "token_endpoint_auth_method": "none"}),
    ] {
        let (status, body) = mock.register(metadata).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    }
    // Abandoned authorizes: past the cap per client, the oldest is dropped.
    let (_, challenge) = pkce();
    let params = authorize_params(&mock, "patient/*.rs", &challenge);
    let first = mock.authorize(&params).await.txn();
    for _ in 0..ccri_mock::MAX_PENDING_PER_CLIENT {
        assert_eq!(mock.authorize(&params).await.status, StatusCode::OK);
    }
    let gone = mock.log_in(&first, "bernie").await;
    assert_eq!(gone.status, StatusCode::BAD_REQUEST, "{}", gone.html);
    assert!(gone.html.contains("expired"), "{}", gone.html);
    // The clients page is paged.
    for i in 0..60 {
        let (status, _) = register_redirect(&mock, &format!("{APP_REDIRECT}{i}"), "none").await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let listed = page(mock.http.get(mock.auth("clients")).send().await.unwrap()).await;
    let rows = listed.html.matches("<tr><td><code>").count();
    assert!((1..=50).contains(&rows), "{rows} rows on one page");
    assert!(listed.html.contains("clients?page=2"), "a link to the next page");
}

// 7. Chart planting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_stay_in_the_compartment_and_searches_agree() {
    let mock = start().await;
    let bernie = mock.mint("patient/*.cruds", Some("1"));
    for resource in [
        json!({"resourceType": "Immunization", "status": "completed",
               "vaccineCode": {"text": "planted"}, "occurrenceDateTime": "2024-01-01",
               "patient": {"reference": "Patient/3"}, "performer": [{"actor": {"reference": "Patient/1"}}]}),
        json!({"resourceType": "AllergyIntolerance", "code": {"text": "planted"},
               "patient": {"reference": "Patient/1"}, "recorder": {"reference": "Patient/3"}}),
    ] {
        let kind = resource["resourceType"].as_str().unwrap().to_owned();
        let response = mock
            .http
            .post(mock.fhir(&kind))
            .bearer_auth(&bernie)
            .header("content-type", "application/fhir+json")
            .body(resource.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{kind} planted");
    }
    // A practitioner's resource naming two patients is found by either, both ways.
    let gp = mock.mint("user/*.cruds", None);
    let response = mock
        .http
        .post(mock.fhir("Immunization"))
        .bearer_auth(&gp)
        .header("content-type", "application/fhir+json")
        .body(
            json!({"resourceType": "Immunization", "status": "completed",
                   "vaccineCode": {"text": "two patients"}, "occurrenceDateTime": "2024-01-01",
                   "patient": {"reference": "Patient/3"}, "performer": [{"actor": {"reference": "Patient/1"}}]})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    for patient in ["1", "3"] {
        let token = mock.mint("patient/*.rs", Some(patient));
        let (_, indexed) = mock
            .fhir_get(&format!("Immunization?patient={patient}"), &token)
            .await;
        let (_, scanned) = mock
            .fhir_get(&format!("Immunization?patient={patient},99"), &token)
            .await;
        assert_eq!(entries(&indexed), entries(&scanned), "Patient/{patient}");
    }
}

// 8. A Patient created outside the compartment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patient_token_cannot_create_a_patient() {
    let mock = start().await;
    let everyone = mock.mint("user/*.rs", None);
    let (_, before) = count(&mock, "Patient?_summary=count", &everyone).await;
    let bernie = mock.mint("patient/*.cruds", Some("1"));
    let response = mock
        .http
        .post(mock.fhir("Patient"))
        .bearer_auth(&bernie)
        .header("content-type", "application/fhir+json")
        .body(json!({"resourceType": "Patient", "id": "1", "name": [{"family": "Planted"}]}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(count(&mock, "Patient?_summary=count", &everyone).await.1, before);
}

// 9. A wrong code_verifier burns the code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_code_verifier_does_not_burn_the_code() {
    let mock = start().await;
    let (code, verifier) = mock.code_for("launch/patient patient/*.rs", "bernie", None).await;
    let (wrong, _) = pkce();
    let (status, body) = mock.exchange(&code, &wrong).await;
    assert_oauth_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    let (status, body) = mock.exchange(&code, &verifier).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

// 10. Wrapping arithmetic in paging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_links_never_wrap_around() {
    let mock = start().await;
    let token = mock.mint("user/*.rs", None);
    let (status, bundle) = mock
        .fhir_get("Observation?_count=20&_offset=18446744073709551615", &token)
        .await;
    assert_eq!(status, StatusCode::OK, "{bundle}");
    assert!(entries(&bundle).is_empty());
    assert_eq!(link(&bundle, "next"), None, "{bundle}");
    let (status, bundle) = mock.fhir_get("Observation?_count=20&_offset=100", &token).await;
    assert_eq!(status, StatusCode::OK);
    if let Some(next) = link(&bundle, "next") {
        assert!(next.contains("_offset=120"), "{next}");
    }
}

// 11. Login CSRF and framing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_pages_are_bound_to_their_browser_and_never_framed() {
    let mock = start().await;
    let (_, challenge) = pkce();
    let response = mock
        .http
        .get(mock.auth("authorize"))
        .query(&authorize_params(
            &mock,
            "launch/patient patient/*.rs",
            &challenge,
        ))
        .send()
        .await
        .unwrap();
    let headers = response.headers().clone();
    let cookie = headers
        .get(SET_COOKIE)
        .expect("the authorization is bound to a cookie")
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        cookie.contains("httponly") && cookie.contains("samesite=lax"),
        "{cookie}"
    );
    let policy = headers["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert_eq!(headers["x-frame-options"], "DENY");
    let login = page(response).await;
    let txn = login.txn();
    // Another browser (a cross-site form post carries no Lax cookie) gets nowhere.
    let stranger = other_browser();
    let forged = post_as(
        &stranger,
        mock.auth("authorize/login"),
        &[("txn", &txn), ("username", "bernie"), ("password", "password")],
    )
    .await;
    assert_eq!(forged.status, StatusCode::BAD_REQUEST, "{}", forged.html);
    let forged = post_as(
        &stranger,
        mock.auth("authorize/consent"),
        &[("txn", &txn), ("decision", "allow")],
    )
    .await;
    assert!(!is_code_redirect(&forged));
    // The browser that began it is unaffected.
    let done = mock.walk(login, "bernie", None, "allow").await;
    assert!(is_code_redirect(&done), "{}", done.html);
    // The launcher frames nothing but may be framed by itself.
    let launcher = mock.http.get(mock.auth("launcher")).send().await.unwrap();
    let policy = launcher.headers()["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("frame-ancestors 'self'"), "{policy}");
}

// 12. Introspection by anyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_needs_an_authenticated_caller() {
    let mock = start().await;
    let token = mock.patient_access_token().await;
    let response = mock
        .http
        .post(mock.auth("introspect"))
        .form(&[("token", token.as_str()), ("client_id", "demo-app")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers().contains_key(WWW_AUTHENTICATE));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    assert!(body.get("active").is_none(), "{body}");
    let response = mock
        .http
        .post(mock.auth("introspect"))
        .basic_auth("clinical-access", Some("clinical-access-secret"))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["active"], true, "{body}");
}

// 15. The launcher's launch ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_launch_id_is_single_use_and_bound_to_its_client() {
    let mock = &start_with(|config| config.clients.push(confidential_app("other-app", "other-secret"))).await;
    let launcher = page(mock.http.get(mock.auth("launcher")).send().await.unwrap()).await;
    assert!(launcher.html.contains("development tool"), "{}", launcher.html);
    let launch = |client: &'static str| async move {
        mock.post_page(
            "launcher",
            &[
                ("launch_url", "http://127.0.0.1:5173/app"),
                ("client_id", client),
                ("patient", "1"),
                ("practitioner", "Practitioner/2"),
            ],
        )
        .await
        .redirect_param("launch")
        .expect("a launch id")
    };
    let (_, challenge) = pkce();
    let with_launch = |client: &str, launch: &str| {
        let mut params = authorize_params(mock, "launch patient/*.rs", &challenge);
        for (name, value) in &mut params {
            if name == "client_id" {
                *value = client.to_owned();
            }
        }
        params.push(("launch".into(), launch.to_owned()));
        params
    };
    // Made for demo-app: another client cannot use it.
    let id = launch("demo-app").await;
    let stolen = mock.authorize(&with_launch("other-app", &id)).await;
    assert_eq!(stolen.redirect_param("error").as_deref(), Some("invalid_request"));
    let first = mock.authorize(&with_launch("demo-app", &id)).await;
    assert!(first.html.contains("Allow"), "{}", first.html);
    let again = mock.authorize(&with_launch("demo-app", &id)).await;
    assert_eq!(again.redirect_param("error").as_deref(), Some("invalid_request"));
}

/// The `ccri-mock` binary on a free port, with its output (banner, then log) kept.
struct Process {
    child: Child,
    addr: String,
    /// The rest of standard output, where the log goes; kept open so it can be written.
    output: BufReader<std::process::ChildStdout>,
}

impl Process {
    fn start() -> Process {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ccri-mock"))
            .args(["--port", "0"])
            .env("RUST_LOG", "ccri_mock=info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut output = BufReader::new(child.stdout.take().unwrap());
        let addr = (&mut output)
            .lines()
            .map(Result::unwrap)
            .find_map(|line| {
                let base = line.trim().strip_prefix("FHIR base")?.trim().to_owned();
                Some(base.strip_prefix("http://")?.split('/').next()?.to_owned())
            })
            .expect("the banner names the FHIR base");
        Process { child, addr, output }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// 13. Forged log lines.
#[test]
fn request_values_cannot_forge_log_lines() {
    let mut mock = Process::start();
    let body = "grant_type=x%0AFORGED%20line%1B[31m";
    let mut stream = TcpStream::connect(&mock.addr).unwrap();
    write!(
        stream,
        "POST /ccri-auth/token HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        mock.addr,
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    mock.signal("TERM");
    let _ = mock.child.wait();
    let mut log = String::new();
    mock.output.read_to_string(&mut log).unwrap();
    assert!(log.contains("FORGED"), "the refusal is logged: {log}");
    assert!(!log.lines().any(|line| line.starts_with("FORGED")), "{log}");
    assert!(!log.contains('\u{1b}'), "{log:?}");
}

// 14. Signals drop in-flight requests.
#[test]
fn sigterm_and_sigint_finish_requests_in_flight() {
    for signal in ["TERM", "INT"] {
        let mut mock = Process::start();
        let body = "grant_type=client_credentials";
        let mut stream = TcpStream::connect(&mock.addr).unwrap();
        write!(
            stream,
            "POST /ccri-auth/token HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{}",
            mock.addr,
            body.len(),
            &body[..5]
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        mock.signal(signal);
        std::thread::sleep(Duration::from_millis(300));
        stream.write_all(&body.as_bytes()[5..]).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 401"), "SIG{signal}: {answer:?}");
        let status = mock.child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "SIG{signal}: {status}");
    }
}
