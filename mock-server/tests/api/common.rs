//! Shared by the integration tests: an in-process ccri-mock on a free port, an HTTP
//! client (one browser: it keeps cookies, follows no redirects), and the steps of each OAuth flow.

use base64::Engine;
use ccri_mock::{ClientConfig, Config, PATIENT_ACCESS_SECRET};
use ccri_mock::{RunningServer, TokenKind};
use reqwest::StatusCode;
use reqwest::header::LOCATION;
use serde_json::Value;
use sha2::{Digest, Sha256};

pub(crate) use ccri_mock::testing::KEY;

pub(crate) const APP_REDIRECT: &str = "http://127.0.0.1:5173/";

pub(crate) struct Mock {
    pub server: RunningServer,
    pub http: reqwest::Client,
}

pub(crate) async fn start() -> Mock {
    start_with(|_| {}).await
}

pub(crate) async fn start_with(adjust: impl FnOnce(&mut Config)) -> Mock {
    let server = ccri_mock::testing::start(adjust).await;
    // One browser per test: it keeps the cookie that binds an authorization to it.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap();
    Mock { server, http }
}

/// A mock whose demo app logs bernie in and consents without showing a page.
pub(crate) async fn start_without_pages() -> Mock {
    start_with(|config| {
        let demo = config
            .clients
            .iter_mut()
            .find(|c| c.client_id == "demo-app")
            .unwrap();
        demo.skip_login = Some("bernie".into());
        demo.skip_auth = true;
    })
    .await
}

impl Mock {
    pub(crate) fn auth(&self, endpoint: &str) -> String {
        self.server.urls.auth(endpoint)
    }

    pub(crate) fn fhir(&self, path: &str) -> String {
        format!("{}/{path}", self.server.urls.fhir_base)
    }

    /// POST a form to `endpoint`, as `client_id:secret` Basic auth if given.
    async fn post_form(
        &self,
        endpoint: &str,
        basic: Option<(&str, &str)>,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = self.http.post(self.auth(endpoint)).form(form);
        if let Some((id, secret)) = basic {
            request = request.basic_auth(id, Some(secret));
        }
        request.send().await.unwrap()
    }

    /// POST a form to the token endpoint, as `client_id:secret` Basic auth if given.
    pub(crate) async fn token(
        &self,
        basic: Option<(&str, &str)>,
        form: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let response = self.post_form("token", basic, form).await;
        let status = response.status();
        (status, response.json().await.unwrap())
    }

    /// POST a form to the revocation endpoint (RFC 7009); the status.
    pub(crate) async fn revoke(&self, basic: Option<(&str, &str)>, form: &[(&str, &str)]) -> StatusCode {
        self.post_form("revoke", basic, form).await.status()
    }

    /// CCRI's quickstart: patient-access with Basic auth.
    pub(crate) async fn patient_access_token(&self) -> String {
        let (status, body) = self
            .token(
                Some(("patient-access", PATIENT_ACCESS_SECRET)),
                &[("grant_type", "client_credentials")],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// GET `url` (no token, no redirect followed) as a [`Page`].
    pub(crate) async fn get_page(&self, url: &str) -> Page {
        page(self.http.get(url).send().await.unwrap()).await
    }

    /// GET `url` (no token) and the text of the page, such as the inspector's.
    pub(crate) async fn get_text(&self, url: &str) -> String {
        self.http.get(url).send().await.unwrap().text().await.unwrap()
    }

    /// GET `url` (no token) and its JSON body.
    pub(crate) async fn get_json(&self, url: &str) -> Value {
        self.http.get(url).send().await.unwrap().json().await.unwrap()
    }

    pub(crate) async fn get_with_token(&self, url: &str, token: &str) -> (StatusCode, Value) {
        let response = self.http.get(url).bearer_auth(token).send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Registers a client for tests, straight into the configuration-free registry.
    pub(crate) async fn register(&self, metadata: Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.auth("register"))
            .json(&metadata)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap())
    }
}

/// An OAuth error answer: `status` with `{"error": code}`.
#[track_caller]
pub(crate) fn assert_oauth_error(status: StatusCode, body: &Value, expected: StatusCode, code: &str) {
    assert_eq!((status, body["error"].as_str()), (expected, Some(code)), "{body}");
}

/// The claims of a JWT, unverified.
pub(crate) fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

/// The header of a JWT.
pub(crate) fn header_of(token: &str) -> Value {
    let header = token.split('.').next().unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap(),
    )
    .unwrap()
}

/// The launcher's "Make a link" for `choices`: the EHR launch link and the FHIR
/// base a standalone launch is given as its `iss`.
pub(crate) async fn launch_links(mock: &Mock, choices: &[(&str, &str)]) -> (String, String) {
    let query = serde_urlencoded::to_string(choices).unwrap();
    let shown = mock
        .get_page(&format!("{}?{query}", mock.auth("launcher/link")))
        .await;
    let value_of = |id: &str| {
        let needle = format!("id=\"{id}\" readonly value=\"");
        let start = shown
            .html
            .find(&needle)
            .unwrap_or_else(|| panic!("{id} in {}", shown.html))
            + needle.len();
        shown.html[start..].split('"').next().unwrap().to_owned()
    };
    (value_of("launch-link"), value_of("launch-iss"))
}

/// A PKCE verifier and its S256 challenge.
pub(crate) fn pkce() -> (String, String) {
    let verifier = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand_bytes());
    let challenge =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn rand_bytes() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).unwrap();
    bytes
}

/// The parameters of a standalone launch of the demo app, with a fresh `state`
/// each, as an app must send.
pub(crate) fn authorize_params(mock: &Mock, scope: &str, challenge: &str) -> Vec<(String, String)> {
    let state = format!("state-{}", hex(&rand_bytes()[..6]));
    [
        ("response_type", "code"),
        ("client_id", "demo-app"),
        ("redirect_uri", APP_REDIRECT),
        ("scope", scope),
        ("state", &state),
        ("aud", &mock.server.urls.fhir_base),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Sets parameter `name` of `params` (an app's own client, redirect URI, `aud`…).
pub(crate) fn set_param(params: &mut [(String, String)], name: &str, value: &str) {
    match params.iter_mut().find(|(n, _)| n == name) {
        Some((_, old)) => *old = value.to_owned(),
        None => panic!("no parameter {name} to set"),
    }
}

/// The value of parameter `name` in `params`.
pub(crate) fn sent<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A page of the login/picker/consent sequence.
pub(crate) struct Page {
    pub status: StatusCode,
    pub location: Option<String>,
    pub html: String,
}

impl Page {
    pub(crate) fn txn(&self) -> String {
        let start = self
            .html
            .find("name=\"txn\" value=\"")
            .expect("a page with a txn")
            + 18;
        self.html[start..].split('"').next().unwrap().to_owned()
    }

    /// `(name, value)` of the redirect's query.
    pub(crate) fn redirect_params(&self) -> Vec<(String, String)> {
        let location = self.location.as_deref().expect("a redirect");
        let query = location.split_once('?').map(|(_, q)| q).unwrap_or_default();
        serde_urlencoded::from_str(query).unwrap()
    }

    /// The `error_description` of an error sent back to the app.
    pub(crate) fn error_description(&self) -> String {
        self.redirect_param("error_description")
            .unwrap_or_else(|| panic!("no error sent back: {:?} {}", self.location, self.html))
    }

    pub(crate) fn redirect_param(&self, name: &str) -> Option<String> {
        self.redirect_params()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}

pub(crate) async fn page(response: reqwest::Response) -> Page {
    let status = response.status();
    let location = response
        .headers()
        .get(LOCATION)
        .map(|v| v.to_str().unwrap().to_owned());
    Page {
        status,
        location,
        html: response.text().await.unwrap(),
    }
}

impl Mock {
    pub(crate) async fn authorize(&self, params: &[(String, String)]) -> Page {
        page(
            self.http
                .get(self.auth("authorize"))
                .query(params)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub(crate) async fn post_page(&self, endpoint: &str, form: &[(&str, &str)]) -> Page {
        page(
            self.http
                .post(self.auth(endpoint))
                .form(form)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// Login as `username` on `login`, pick `patient` if asked, consent with `decision`.
    pub(crate) async fn walk(
        &self,
        login: Page,
        username: &str,
        patient: Option<&str>,
        decision: &str,
    ) -> Page {
        assert!(login.html.contains("Log in"), "{}", login.html);
        let txn = login.txn();
        let mut next = self.log_in(&txn, username).await;
        if let Some(patient) = patient {
            assert!(next.html.contains("Choose a patient"), "{}", next.html);
            next = self.pick(&txn, patient).await;
        }
        assert!(next.html.contains("Allow"), "{}", next.html);
        self.decide(&txn, decision).await
    }

    /// Posts the login form of authorization `txn` as `username`.
    pub(crate) async fn log_in(&self, txn: &str, username: &str) -> Page {
        self.post_page(
            "authorize/login",
            &[("txn", txn), ("username", username), ("password", "password")],
        )
        .await
    }

    /// Posts the patient picker of authorization `txn`.
    pub(crate) async fn pick(&self, txn: &str, patient: &str) -> Page {
        self.post_page("authorize/patient", &[("txn", txn), ("patient", patient)])
            .await
    }

    /// Posts the consent form of authorization `txn`: `allow` or `deny`.
    pub(crate) async fn decide(&self, txn: &str, decision: &str) -> Page {
        self.post_page("authorize/consent", &[("txn", txn), ("decision", decision)])
            .await
    }

    /// A full standalone launch of the demo app as `username`; returns the code and verifier.
    pub(crate) async fn code_for(
        &self,
        scope: &str,
        username: &str,
        patient: Option<&str>,
    ) -> (String, String) {
        let (verifier, challenge) = pkce();
        let params = authorize_params(self, scope, &challenge);
        let login = self.authorize(&params).await;
        let done = self.walk(login, username, patient, "allow").await;
        assert_eq!(done.status, StatusCode::SEE_OTHER);
        assert_eq!(done.redirect_param("state").as_deref(), sent(&params, "state"));
        (done.redirect_param("code").expect("a code"), verifier)
    }

    /// The demo app refreshes, optionally for a narrower `scope`.
    pub(crate) async fn refresh(&self, refresh_token: &str, scope: Option<&str>) -> (StatusCode, Value) {
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", "demo-app"),
        ];
        form.extend(scope.map(|scope| ("scope", scope)));
        self.token(None, &form).await
    }

    pub(crate) async fn exchange(&self, code: &str, verifier: &str) -> (StatusCode, Value) {
        self.token(None, &code_exchange(code, verifier)).await
    }
}

/// A confidential client for tests that need one with both grants.
pub(crate) fn confidential_app(id: &str, secret: &str) -> ClientConfig {
    ClientConfig {
        client_id: id.into(),
        client_secret: Some(smart_protocol::ClientSecret::new(secret)),
        client_secret_sha256: None,
        name: None,
        redirect_uris: vec![APP_REDIRECT.into()],
        scope: "openid fhirUser launch/patient offline_access patient/*.rs user/*.rs"
            .parse()
            .unwrap(),
        grant_types: vec![
            smart_protocol::discovery::GrantType::AuthorizationCode,
            smart_protocol::discovery::GrantType::RefreshToken,
            smart_protocol::discovery::GrantType::ClientCredentials,
        ],
        jwks: None,
        jwks_uri: None,
        skip_login: None,
        skip_auth: false,
        simulate_error: None,
    }
}

impl Mock {
    /// An access token signed with the server's key, as the token endpoint would
    /// issue for `scope` (and `patient` in context): the FHIR tests need many.
    pub(crate) fn mint(&self, scope: &str, patient: Option<&str>) -> String {
        let now = jsonwebtoken::get_current_timestamp();
        KEY.sign(TokenKind::Access, &serde_json::json!({
            "iss": self.server.urls.auth_base,
            "aud": self.server.urls.fhir_base,
            "sub": "Practitioner/2",
            "client_id": "demo-app",
            "scope": scope,
            "exp": now + 600,
            "iat": now,
            "jti": format!("test-{}", rand_bytes()[0..8].iter().map(|b| format!("{b:02x}")).collect::<String>()),
            "grant": "test-grant",
            "patient": patient,
        }))
    }

    /// GET a FHIR path (relative to the base, or an absolute URL) with a token.
    pub(crate) async fn fhir_get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            self.fhir(path)
        };
        self.get_with_token(&url, token).await
    }
}

/// `Type/id` of every entry of a Bundle, with its search mode.
pub(crate) fn entries(bundle: &Value) -> Vec<(String, String)> {
    bundle["entry"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|e| {
                    let r = &e["resource"];
                    (
                        format!(
                            "{}/{}",
                            r["resourceType"].as_str().unwrap(),
                            r["id"].as_str().unwrap()
                        ),
                        e["search"]["mode"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The URL of a Bundle link.
pub(crate) fn link(bundle: &Value, relation: &str) -> Option<String> {
    bundle["link"]
        .as_array()?
        .iter()
        .find(|l| l["relation"] == relation)?["url"]
        .as_str()
        .map(str::to_owned)
}

/// The demo app's token request for `code`, with its PKCE `verifier`.
pub(crate) fn code_exchange<'a>(code: &'a str, verifier: &'a str) -> [(&'static str, &'a str); 5] {
    [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", APP_REDIRECT),
        ("code_verifier", verifier),
        ("client_id", "demo-app"),
    ]
}
