//! SMART Backend Services: clients that authenticate with a signed assertion
//! (`private_key_jwt`, RFC 7523), their keys registered by value (`jwks`) or by
//! URL (`jwks_uri`, served here by a small key server on loopback).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use axum::extract::State;
use axum::http::{StatusCode as AxumStatus, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ccri_mock::ClientConfig;
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A backend service's key pair: the private half signs assertions, the public
/// half is registered.
struct BackendKey {
    kid: &'static str,
    private: EncodingKey,
    public: Jwk,
}

impl BackendKey {
    fn generate(kid: &'static str) -> Self {
        use rsa::Generate;
        use rsa::pkcs1::EncodeRsaPrivateKey;
        let private = rsa::PrivateKey::try_generate().unwrap();
        let private = EncodingKey::from_rsa_der(private.to_pkcs1_der().unwrap().as_bytes());
        let mut public = Jwk::from_encoding_key(&private, Algorithm::RS384).unwrap();
        public.common.key_id = Some(kid.into());
        public.common.key_algorithm = Some(KeyAlgorithm::RS384);
        BackendKey { kid, private, public }
    }

    fn set(&self) -> JwkSet {
        JwkSet {
            keys: vec![self.public.clone()],
        }
    }

    /// A client assertion as SMART Backend Services describes it.
    fn assertion(&self, client_id: &str, jti: &str, exp: u64, aud: &str, alg: Algorithm) -> String {
        let mut header = Header::new(alg);
        header.kid = Some(self.kid.into());
        let claims = json!({"iss": client_id, "sub": client_id, "aud": aud, "exp": exp, "jti": jti});
        jsonwebtoken::encode(&header, &claims, &self.private).unwrap()
    }
}

fn in_four_minutes() -> u64 {
    jsonwebtoken::get_current_timestamp() + 240
}

impl Mock {
    /// A client-credentials token request authenticated by `assertion`.
    async fn token_by_assertion(&self, assertion: String) -> (StatusCode, Value) {
        self.token(
            None,
            &[
                ("grant_type", "client_credentials"),
                ("scope", "system/Patient.rs"),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", &assertion),
            ],
        )
        .await
    }

    async fn register_backend(&self, keys: (&str, Value)) -> (StatusCode, Value) {
        let mut metadata = json!({
            "client_name": "Nightly export",
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "private_key_jwt",
            "scope": "system/Patient.rs system/Observation.rs"
        });
        metadata[keys.0] = keys.1;
        self.register(metadata).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_key_jwt_with_registered_jwks_and_jti_replay() {
    let key = BackendKey::generate("backend-1");
    let mock = start().await;
    let (status, registered) = mock.register_backend(("jwks", json!(key.set()))).await;
    assert_eq!(status, StatusCode::CREATED, "{registered}");
    assert!(registered.get("client_secret").is_none());
    let client_id = registered["client_id"].as_str().unwrap();
    let token_url = mock.auth("token");
    let assertion =
        |jti: &str, exp: u64, aud: &str, alg: Algorithm| key.assertion(client_id, jti, exp, aud, alg);

    let (status, body) = mock
        .token_by_assertion(assertion(
            "jti-1",
            in_four_minutes(),
            &token_url,
            Algorithm::RS384,
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["expires_in"].as_u64().unwrap() <= 300);
    // RFC 7523 §3 lets `aud` be any value naming this server: the issuer too.
    let issuer = mock.server.urls.auth_base.clone();
    let (status, by_issuer) = mock
        .token_by_assertion(assertion("jti-0", in_four_minutes(), &issuer, Algorithm::RS384))
        .await;
    assert_eq!(status, StatusCode::OK, "aud = issuer: {by_issuer}");
    let (status, patient) = mock
        .get_with_token(&mock.fhir("Patient/3"), body["access_token"].as_str().unwrap())
        .await;
    assert_eq!((status, patient["id"].as_str()), (StatusCode::OK, Some("3")));

    let now = jsonwebtoken::get_current_timestamp();
    for (name, refused) in [
        (
            "jti replay",
            assertion("jti-1", now + 240, &token_url, Algorithm::RS384),
        ),
        (
            "exp too far",
            assertion("jti-2", now + 3600, &token_url, Algorithm::RS384),
        ),
        (
            "expired",
            assertion("jti-3", now - 10, &token_url, Algorithm::RS384),
        ),
        (
            "wrong aud",
            assertion(
                "jti-4",
                now + 240,
                "https://other.example/token",
                Algorithm::RS384,
            ),
        ),
        (
            "RS256 not allowed",
            assertion("jti-5", now + 240, &token_url, Algorithm::RS256),
        ),
    ] {
        let (status, body) = mock.token_by_assertion(refused).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_client")),
            "{name}: {body}"
        );
    }
}

/// A key server on loopback, as a backend service's developer would run one:
/// `/jwks.json` serves the current set and counts its fetches; the other paths
/// answer what a misconfigured one does.
struct KeyServer {
    base: String,
    set: Arc<Mutex<JwkSet>>,
    fetches: Arc<AtomicUsize>,
}

impl KeyServer {
    async fn start(set: JwkSet) -> Self {
        type Shared = (Arc<Mutex<JwkSet>>, Arc<AtomicUsize>);
        async fn serve(State((set, fetches)): State<Shared>) -> Response {
            fetches.fetch_add(1, Ordering::SeqCst);
            let body = serde_json::to_string(&*set.lock().unwrap()).unwrap();
            ([(header::CONTENT_TYPE, "application/jwk-set+json")], body).into_response()
        }
        let shared: Shared = (Arc::new(Mutex::new(set)), Arc::default());
        let app = axum::Router::new()
            .route("/jwks.json", get(serve))
            .route(
                "/moved",
                get(|| async { (AxumStatus::FOUND, [(header::LOCATION, "/jwks.json")]) }),
            )
            .route("/missing", get(|| async { AxumStatus::NOT_FOUND }))
            .route("/page", get(|| async { "<html>keys</html>" }))
            .route(
                "/huge",
                get(|| async { format!("{{\"keys\":[],\"x\":\"{}\"}}", "a".repeat(100_000)) }),
            )
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        KeyServer {
            base,
            set: shared.0,
            fetches: shared.1,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.base)
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_key_jwt_with_a_jwks_uri_fetched_cached_and_refetched_on_rotation() {
    let first = BackendKey::generate("backend-1");
    let second = BackendKey::generate("backend-2");
    let keys = KeyServer::start(first.set()).await;
    let mock = start().await;

    // Registration fetches the set once, so a wrong URL is refused there and then.
    let (status, registered) = mock
        .register_backend(("jwks_uri", json!(keys.url("jwks.json"))))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{registered}");
    assert_eq!(registered["jwks_uri"], keys.url("jwks.json"));
    assert_eq!(keys.fetches(), 1);
    let client_id = registered["client_id"].as_str().unwrap();
    let token_url = mock.auth("token");

    for jti in ["a", "b", "c"] {
        let assertion = first.assertion(client_id, jti, in_four_minutes(), &token_url, Algorithm::RS384);
        let (status, body) = mock.token_by_assertion(assertion).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    assert_eq!(keys.fetches(), 1, "the set is cached between assertions");

    // The service rotates its key: an assertion with the new kid fetches the set again.
    *keys.set.lock().unwrap() = second.set();
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let assertion = second.assertion(client_id, "d", in_four_minutes(), &token_url, Algorithm::RS384);
    let (status, body) = mock.token_by_assertion(assertion).await;
    assert_eq!(status, StatusCode::OK, "after rotation: {body}");
    assert_eq!(keys.fetches(), 2);

    // The old key is gone from the set; asking again at once does not fetch again.
    let assertion = first.assertion(client_id, "e", in_four_minutes(), &token_url, Algorithm::RS384);
    let (status, body) = mock.token_by_assertion(assertion).await;
    assert_oauth_error(status, &body, StatusCode::UNAUTHORIZED, "invalid_client");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("no registered key matches"),
        "{body}"
    );
    assert_eq!(
        keys.fetches(),
        2,
        "unknown kids within seconds of a fetch are not refetched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwks_uri_that_serves_no_key_set_is_refused_with_the_reason() {
    let keys = KeyServer::start(JwkSet { keys: vec![] }).await;
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let unreachable = format!("http://127.0.0.1:{closed_port}/jwks.json");
    let mock = start().await;
    for (uri, reason) in [
        (unreachable.as_str(), "could not be fetched"),
        (
            &keys.url("moved"),
            "answered 302 Found: register the URL that serves the key set itself",
        ),
        (&keys.url("missing"), "answered 404 Not Found"),
        (&keys.url("page"), "is not a JWK Set"),
        (&keys.url("huge"), "is larger than 65536 bytes"),
        (
            "http://keys.example/jwks.json",
            "must be https, or http on localhost",
        ),
        // Not a way to probe the hosts and ports of the mock's networks.
        ("https://10.0.0.5:22/", "must not name a private"),
    ] {
        let (status, body) = mock.register_backend(("jwks_uri", json!(uri))).await;
        assert_oauth_error(status, &body, StatusCode::BAD_REQUEST, "invalid_client_metadata");
        let description = body["error_description"].as_str().unwrap();
        assert!(description.contains(reason), "{uri}: {description}");
    }
    let key = BackendKey::generate("backend-1");
    let (status, body) = mock
        .register(json!({
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": key.set(),
            "jwks_uri": keys.url("jwks.json"),
        }))
        .await;
    assert_oauth_error(status, &body, StatusCode::BAD_REQUEST, "invalid_client_metadata");

    // A configured client is not fetched at start (its key server may start later):
    // a set it cannot fetch at the token endpoint is `invalid_client`, saying why.
    let mock = start_with(|config| {
        config.clients.push(ClientConfig {
            jwks_uri: Some(unreachable.parse().unwrap()),
            client_secret: None,
            client_secret_sha256: None,
            ..confidential_app("exporter", "unused")
        });
    })
    .await;
    let assertion = key.assertion(
        "exporter",
        "x",
        in_four_minutes(),
        &mock.auth("token"),
        Algorithm::RS384,
    );
    let (status, body) = mock.token_by_assertion(assertion).await;
    assert_oauth_error(status, &body, StatusCode::UNAUTHORIZED, "invalid_client");
    let description = body["error_description"].as_str().unwrap();
    assert!(
        description.contains(&format!("jwks_uri {unreachable} could not be fetched")),
        "{description}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_service_can_ask_for_the_token_endpoints_simulated_errors() {
    let key = BackendKey::generate("backend-1");
    let mock = start().await;
    let token_url = mock.auth("token");
    for (error, status, code) in [
        ("token_invalid_jti", StatusCode::UNAUTHORIZED, "invalid_client"),
        (
            "token_expired_registration_token",
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        ("token_invalid_scope", StatusCode::BAD_REQUEST, "invalid_scope"),
    ] {
        let (registered_status, registered) = mock
            .register(json!({
                "grant_types": ["client_credentials"],
                "token_endpoint_auth_method": "private_key_jwt",
                "jwks": key.set(),
                "scope": "system/Patient.rs",
                "simulate_error": error,
            }))
            .await;
        assert_eq!(registered_status, StatusCode::CREATED, "{registered}");
        let client_id = registered["client_id"].as_str().unwrap();
        let assertion = key.assertion(client_id, error, in_four_minutes(), &token_url, Algorithm::RS384);
        let (status_seen, body) = mock.token_by_assertion(assertion).await;
        assert_oauth_error(status_seen, &body, status, code);
        assert!(
            body["error_description"].as_str().unwrap().contains("simulated"),
            "{error}: {body}"
        );
    }
}

/// A launch link for an app with no registration that authenticates with signed
/// assertions: the mock adopts it with the key set URL the link names, and its
/// token request must carry an assertion signed by a key of that set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_launch_link_adopts_an_app_that_signs_its_assertions() {
    let key = BackendKey::generate("app-key");
    let keys = KeyServer::start(key.set()).await;
    let mock = start().await;
    let jwks_uri = keys.url("jwks.json");
    let (link, _) = launch_links(
        &mock,
        &[
            ("launch_url", "http://127.0.0.1:5173/app"),
            ("client_id", ""),
            ("client_type", "asymmetric"),
            ("client_jwks_uri", &jwks_uri),
            ("patient", "1"),
            ("practitioner", "Practitioner/2"),
            ("skip_auth", "true"),
        ],
    )
    .await;
    let opened = mock.get_page(&link).await;
    let launch = opened
        .redirect_param("launch")
        .expect("the app opened with a launch");

    let callback = "http://127.0.0.1:5173/app/callback";
    let (verifier, challenge) = pkce();
    let mut params = authorize_params(&mock, "launch patient/*.rs", &challenge);
    set_param(&mut params, "client_id", "signing-app");
    set_param(&mut params, "redirect_uri", callback);
    params.push(("launch".into(), launch));
    let done = mock.authorize(&params).await;
    let code = done.redirect_param("code").expect("a code");
    let redeem = async |assertion: Option<String>| {
        let mut form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.clone()),
            ("redirect_uri", callback.to_owned()),
            ("code_verifier", verifier.clone()),
            ("client_id", "signing-app".to_owned()),
        ];
        if let Some(assertion) = assertion {
            form.push((
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
            ));
            form.push(("client_assertion", assertion));
        }
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        mock.token(None, &form).await
    };
    // A confidential app must prove itself: naming itself is not enough.
    let (status, body) = redeem(None).await;
    assert_oauth_error(status, &body, StatusCode::UNAUTHORIZED, "invalid_client");
    let token_url = mock.auth("token");
    let assertion = key.assertion(
        "signing-app",
        "j-1",
        in_four_minutes(),
        &token_url,
        Algorithm::RS384,
    );
    let (status, body) = redeem(Some(assertion)).await;
    assert_eq!(
        (status, &body["patient"]),
        (StatusCode::OK, &json!("1")),
        "{body}"
    );
    assert_eq!(keys.fetches(), 1);

    // The launcher refuses a key set URL that this server would not fetch.
    let query = serde_urlencoded::to_string([
        ("launch_url", "http://127.0.0.1:5173/app"),
        ("client_id", ""),
        ("client_type", "asymmetric"),
        ("client_jwks_uri", "http://keys.example/jwks.json"),
    ])
    .unwrap();
    let refused = mock
        .get_page(&format!("{}?{query}", mock.auth("launcher/link")))
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.html.contains("JWKS URL"), "{}", refused.html);
}
