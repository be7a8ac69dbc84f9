//! Two `ccri-mock` processes on one PostgreSQL database serve as one: an
//! authorization begun on one replica finishes on the other, what one writes the
//! other reads, a code or a version named by If-Match is used once across both, and
//! a revocation on one holds on the other. And what a replica does when its database
//! is away: a clear start error without the password, 503s, recovery without a restart.

use std::process::Stdio;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::{ETAG, IF_MATCH};
use serde_json::{Value, json};

use crate::binary::{self, Binary, free_port};
use crate::common::{APP_REDIRECT, Page, assert_oauth_error, code_exchange, page, pkce};
use crate::postgres_server::Postgres;

/// The one origin both replicas stand behind, as behind a load balancer: the `iss`
/// and `aud` of their tokens, and the `aud` an app asks for. The test itself talks
/// to each replica on its own port.
const PUBLIC_ORIGIN: &str = "http://ccri.localhost:8080";

/// The demo app's scope: bernie's own record, read and write, with a refresh token.
const SCOPE: &str = "launch/patient offline_access patient/*.cruds";

/// How often each race is run: a single run may happen not to overlap.
const ROUNDS: usize = 5;

/// A replica on `postgres`'s database, serving on `port`.
async fn replica(postgres: &Postgres, port: u16) -> Binary {
    let store = postgres.url();
    Binary::start(port, ["--store", &store, "--public-url", PUBLIC_ORIGIN]).await
}

/// Two replicas, started at once: both find the database empty, and must still
/// agree on one schema, one copy of the built-in data and one signing key.
async fn replicas(postgres: &Postgres) -> (Binary, Binary) {
    let a = free_port();
    let b = std::iter::repeat_with(free_port).find(|&port| port != a).unwrap();
    tokio::join!(replica(postgres, a), replica(postgres, b))
}

/// A client that gives up after 20 s: a replica whose database is away must answer,
/// not keep the test waiting.
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// What a replica answered: its status, ETag and body (JSON, or the text if not JSON).
struct Answer {
    status: StatusCode,
    etag: Option<String>,
    body: Value,
}

async fn answer(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.unwrap();
    let status = response.status();
    let etag = response
        .headers()
        .get(ETAG)
        .map(|tag| tag.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Answer { status, etag, body }
}

async fn fhir_get(at: &Binary, path: &str, token: &str) -> Answer {
    answer(http().get(at.fhir(path)).bearer_auth(token)).await
}

/// POSTs `form` to `at`'s token endpoint as the demo app (a public client).
async fn token(at: &Binary, form: &[(&str, &str)]) -> Answer {
    answer(http().post(at.auth("token")).form(form)).await
}

async fn exchange(at: &Binary, code: &str, verifier: &str) -> Answer {
    token(at, &code_exchange(code, verifier)).await
}

async fn refresh(at: &Binary, refresh_token: &str) -> Answer {
    token(
        at,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", "demo-app"),
        ],
    )
    .await
}

async fn post_page(browser: &reqwest::Client, at: &Binary, endpoint: &str, form: &[(&str, &str)]) -> Page {
    page(browser.post(at.auth(endpoint)).form(form).send().await.unwrap()).await
}

/// The demo app's standalone launch as bernie, begun (GET authorize) on `begun` and
/// finished (login, consent) on `finished`: the code and its PKCE verifier.
async fn authorization_code(begun: &Binary, finished: &Binary) -> (String, String) {
    // One browser: its cookie, set by `begun`, goes to `finished` too, since cookies
    // are per host and not per port, as they are per name behind a load balancer.
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let (verifier, challenge) = pkce();
    let aud = format!("{PUBLIC_ORIGIN}/ccri-fhir/R4");
    let login = page(
        browser
            .get(begun.auth("authorize"))
            .query(&[
                ("response_type", "code"),
                ("client_id", "demo-app"),
                ("redirect_uri", APP_REDIRECT),
                ("scope", SCOPE),
                ("state", "replicas"),
                ("aud", &aud),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(login.html.contains("Log in"), "{}: {}", login.status, login.html);
    let txn = login.txn();
    let consent = post_page(
        &browser,
        finished,
        "authorize/login",
        &[("txn", &txn), ("username", "bernie"), ("password", "password")],
    )
    .await;
    assert!(
        consent.html.contains("Allow"),
        "{}: {}",
        consent.status,
        consent.html
    );
    let done = post_page(
        &browser,
        finished,
        "authorize/consent",
        &[("txn", &txn), ("decision", "allow")],
    )
    .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.html);
    assert_eq!(done.redirect_param("state").as_deref(), Some("replicas"));
    (done.redirect_param("code").expect("a code"), verifier)
}

/// A launch begun on `begun`, finished and redeemed on `finished`: the token response.
async fn launch(begun: &Binary, finished: &Binary) -> Value {
    let (code, verifier) = authorization_code(begun, finished).await;
    let tokens = exchange(finished, &code, &verifier).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.body);
    tokens.body
}

fn text<'a>(tokens: &'a Value, name: &str) -> &'a str {
    tokens[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {tokens}"))
}

/// An Observation of bernie's, coded `code`.
fn observation(code: &str) -> Value {
    json!({"resourceType": "Observation", "status": "final",
           "code": {"coding": [{"system": "https://example.org/replicas", "code": code}]},
           "subject": {"reference": "Patient/1"}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authorization_begun_on_one_replica_finishes_on_the_other() {
    let postgres = Postgres::start();
    let (a, b) = replicas(&postgres).await;
    let jwks = |at: &Binary| answer(http().get(at.auth("jwk")));
    let (jwks_a, jwks_b) = tokio::join!(jwks(&a), jwks(&b));
    assert_eq!(jwks_a.status, StatusCode::OK);
    assert_eq!(jwks_a.body, jwks_b.body, "one signing key");

    // Authorize on A; login, consent and the code's redemption on B.
    let tokens = launch(&a, &b).await;
    assert_eq!(tokens["patient"], "1", "{tokens}");
    // B's token is good on A.
    let patient = fhir_get(&a, "Patient/1", text(&tokens, "access_token")).await;
    assert_eq!(patient.status, StatusCode::OK, "{}", patient.body);
    assert_eq!(patient.body["id"], "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_one_replica_writes_the_other_reads() {
    let postgres = Postgres::start();
    let (a, b) = replicas(&postgres).await;
    let tokens = launch(&b, &b).await;
    let access = text(&tokens, "access_token");
    // The built-in data is there once, though both replicas found the database empty.
    let history = fhir_get(&a, "Patient/1/_history", access).await;
    assert_eq!(history.status, StatusCode::OK, "{}", history.body);
    assert_eq!(history.body["total"], 1, "{}", history.body);

    let created = answer(
        http()
            .post(b.fhir("Observation"))
            .bearer_auth(access)
            .json(&observation("written-on-b")),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = text(&created.body, "id");
    let read = fhir_get(&a, &format!("Observation/{id}"), access).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.body);
    assert_eq!(read.body["code"], created.body["code"]);
    assert_eq!(read.etag.as_deref(), Some("W/\"1\""));
    // A's search finds it too: the index rows are shared, not only the resource.
    let found = fhir_get(&a, "Observation?patient=1&code=written-on-b", access).await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.body);
    let ids: Vec<&str> = found.body["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|entry| entry["resource"]["id"].as_str())
        .collect();
    assert_eq!(ids, [id], "{}", found.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_sent_to_both_replicas_at_once_is_redeemed_once() {
    let postgres = Postgres::start();
    let (a, b) = replicas(&postgres).await;
    for round in 0..ROUNDS {
        let (code, verifier) = authorization_code(&a, &b).await;
        let (on_a, on_b) = tokio::join!(exchange(&a, &code, &verifier), exchange(&b, &code, &verifier));
        let (won, lost) = if on_a.status == StatusCode::OK {
            (on_a, on_b)
        } else {
            (on_b, on_a)
        };
        assert_eq!(
            won.status,
            StatusCode::OK,
            "round {round}: neither redeemed it: {} / {}",
            won.body,
            lost.body
        );
        assert!(won.body["access_token"].is_string(), "{}", won.body);
        // Both 200 would fail here: the code was redeemed twice.
        assert_oauth_error(lost.status, &lost.body, StatusCode::BAD_REQUEST, "invalid_grant");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_token_revoked_on_one_replica_is_refused_on_the_other() {
    let postgres = Postgres::start();
    let (a, b) = replicas(&postgres).await;
    let tokens = launch(&a, &a).await;
    let (access, refresh_token) = (text(&tokens, "access_token"), text(&tokens, "refresh_token"));
    // A has used both already: nothing it remembers of them may outlive the revocation.
    let refreshed = refresh(&a, refresh_token).await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.body);
    assert_eq!(fhir_get(&a, "Patient/1", access).await.status, StatusCode::OK);

    let revoked = answer(
        http()
            .post(b.auth("revoke"))
            .form(&[("token", refresh_token), ("client_id", "demo-app")]),
    )
    .await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.body);

    let refused = refresh(&a, refresh_token).await;
    assert_oauth_error(
        refused.status,
        &refused.body,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    );
    // Revoking the refresh token revoked its grant, and so the access token A has verified before.
    let read = fhir_get(&a, "Patient/1", access).await;
    assert_eq!(read.status, StatusCode::UNAUTHORIZED, "{}", read.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_if_match_update_sent_to_both_replicas_at_once_is_applied_once() {
    let postgres = Postgres::start();
    let (a, b) = replicas(&postgres).await;
    let tokens = launch(&a, &b).await;
    let access = text(&tokens, "access_token");
    let created = answer(
        http()
            .post(a.fhir("Observation"))
            .bearer_auth(access)
            .json(&observation("raced")),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let path = format!("Observation/{}", text(&created.body, "id"));

    for round in 0..ROUNDS {
        let current = fhir_get(&b, &path, access).await;
        assert_eq!(current.status, StatusCode::OK, "{}", current.body);
        let tag = current.etag.expect("an ETag");
        assert_eq!(
            tag,
            format!("W/\"{}\"", round + 1),
            "one version a round, no more"
        );
        let update = |at: &Binary, by: &str| {
            let mut changed = current.body.clone();
            changed["valueString"] = json!(by);
            http()
                .put(at.fhir(&path))
                .bearer_auth(access)
                .header(IF_MATCH, tag.as_str())
                .json(&changed)
        };
        let (on_a, on_b) = tokio::join!(answer(update(&a, "A")), answer(update(&b, "B")));
        let (won, lost, winner) = if on_a.status == StatusCode::OK {
            (on_a, on_b, "A")
        } else {
            (on_b, on_a, "B")
        };
        assert_eq!(
            won.status,
            StatusCode::OK,
            "round {round}: neither applied: {} / {}",
            won.body,
            lost.body
        );
        assert_eq!(
            lost.status,
            StatusCode::PRECONDITION_FAILED,
            "round {round}: both applied: {}",
            lost.body
        );
        assert_eq!(lost.body["resourceType"], "OperationOutcome", "{}", lost.body);
        let version = format!("W/\"{}\"", round + 2);
        assert_eq!(won.etag.as_deref(), Some(version.as_str()));
        // Both replicas read the winner's version.
        for at in [&a, &b] {
            let now = fhir_get(at, &path, access).await;
            assert_eq!(now.status, StatusCode::OK, "{}", now.body);
            assert_eq!(now.etag.as_deref(), Some(version.as_str()));
            assert_eq!(now.body["valueString"], winner, "round {round}");
        }
    }
    let history = fhir_get(&a, &format!("{path}/_history"), access).await;
    assert_eq!(history.body["total"], ROUNDS + 1, "{}", history.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_is_down_at_start_is_a_clear_error_without_the_password() {
    const PASSWORD: &str = "not-to-be-printed-7f3a";
    // Nothing listens on this port.
    let port = free_port();
    let url = format!("postgres://ccri:{PASSWORD}@127.0.0.1:{port}/ccri");
    let mut child = binary::command()
        .args(["--port", &free_port().to_string(), "--bind", "127.0.0.1"])
        // From the environment, as a deployment passes a secret (argv is visible to ps).
        .env("CCRI_MOCK_STORE", &url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the binary kept running without its database");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let output = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(!output.status.success(), "{stderr}");
    // The user and where the database was looked for, with the password replaced.
    assert!(stderr.contains("postgres://ccri:"), "{stderr}");
    assert!(stderr.contains(&format!("@127.0.0.1:{port}/ccri")), "{stderr}");
    assert!(
        !stderr.contains(PASSWORD) && !stdout.contains(PASSWORD),
        "the password was printed: {stdout}{stderr}"
    );
}

/// A FHIR read and a refresh both succeed on `at`.
async fn assert_serves(at: &Binary, access: &str, refresh_token: &str, when: &str) {
    let read = fhir_get(at, "Patient/1", access).await;
    assert_eq!(read.status, StatusCode::OK, "{when}: {}", read.body);
    let refreshed = refresh(at, refresh_token).await;
    assert_eq!(refreshed.status, StatusCode::OK, "{when}: {}", refreshed.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_answers_503_while_its_database_is_away_and_recovers_after() {
    let postgres = Postgres::start();
    let a = replica(&postgres, free_port()).await;
    let tokens = launch(&a, &a).await;
    let (access, refresh_token) = (text(&tokens, "access_token"), text(&tokens, "refresh_token"));
    assert_serves(&a, access, refresh_token, "at first").await;

    // The server ends the replica's connections (as a restarted pooler or an idle
    // timeout would): the replica connects again rather than failing with them,
    // from the very next request.
    let ended = postgres.psql(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    );
    assert_ne!(ended, "0", "the replica kept no connection to end");
    assert_serves(&a, access, refresh_token, "after its connections were ended").await;

    postgres.stop();
    let read = fhir_get(&a, "Patient/1", access).await;
    assert_eq!(read.status, StatusCode::SERVICE_UNAVAILABLE, "{}", read.body);
    assert_eq!(read.body["resourceType"], "OperationOutcome", "{}", read.body);
    let refreshed = refresh(&a, refresh_token).await;
    assert_oauth_error(
        refreshed.status,
        &refreshed.body,
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
    );

    postgres.start_again();
    assert_serves(&a, access, refresh_token, "after the database came back").await;
}
