//! A native [`Platform`] for the client's tests: reqwest against an in-process
//! ccri-mock, with counters and overrides to observe and provoke what a browser
//! would meet.

use std::cell::RefCell;
use std::collections::HashMap;

use serde_json::Value;
use smart_fhir_client::engine::fhir::FhirRequest;
use smart_fhir_client::engine::{
    Error, HttpRequest, HttpResponse, Method, Platform, Signal, SmartClient, Storage,
};

pub(crate) use ccri_mock::testing::start as start_mock;

#[derive(Default)]
pub(crate) struct TestPlatform {
    http: reqwest::Client,
    /// Every URL fetched, in order.
    pub log: RefCell<Vec<String>>,
    /// The JSON body of every answer from the server, with its URL, in order.
    pub answers: RefCell<Vec<(String, Option<Value>)>>,
    /// How many responses were 401.
    pub unauthorized: std::cell::Cell<usize>,
    /// URL substring → the response to give instead of asking the server.
    pub overrides: RefCell<HashMap<String, (u16, Option<Value>)>>,
    /// kid → the key `sign` uses for a private JWK with that kid (a test double for
    /// WebCrypto's JWK import, which the browser tests exercise for real).
    pub signing_keys: RefCell<HashMap<String, jsonwebtoken::EncodingKey>>,
    /// Act as a page without WebCrypto's `crypto.subtle` (not a secure context).
    pub no_subtle_crypto: std::cell::Cell<bool>,
}

impl TestPlatform {
    pub(crate) fn new() -> Self {
        TestPlatform {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            ..Default::default()
        }
    }

    pub(crate) fn count(&self, fragment: &str) -> usize {
        self.log
            .borrow()
            .iter()
            .filter(|url| url.contains(fragment))
            .count()
    }

    pub(crate) fn answer(&self, fragment: &str, status: u16, body: Option<Value>) {
        self.overrides
            .borrow_mut()
            .insert(fragment.to_owned(), (status, body));
    }
}

/// An `AbortSignal` stand-in: abort it before a request to see the request cancelled.
#[derive(Clone, Debug, Default)]
pub(crate) struct TestSignal(pub std::rc::Rc<std::cell::Cell<bool>>);

impl Signal for TestSignal {
    fn aborted(&self) -> bool {
        self.0.get()
    }
}

impl Platform for TestPlatform {
    type Json = Value;
    type Headers = reqwest::header::HeaderMap;
    type Signal = TestSignal;

    async fn fetch(
        &self,
        request: HttpRequest<TestSignal>,
    ) -> Result<HttpResponse<Value, reqwest::header::HeaderMap>, String> {
        self.log.borrow_mut().push(request.url.clone());
        if request.signal.as_ref().is_some_and(Signal::aborted) {
            return Err("AbortError: signal is aborted without reason".into());
        }
        let overridden = self
            .overrides
            .borrow()
            .iter()
            .find(|(fragment, _)| request.url.contains(fragment.as_str()))
            .map(|(_, r)| r.clone());
        if let Some((status, body)) = overridden {
            let headers = Default::default();
            return Ok(HttpResponse {
                status,
                headers,
                body,
            });
        }
        let method = match request.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Patch => reqwest::Method::PATCH,
            Method::Delete => reqwest::Method::DELETE,
        };
        let mut builder = self.http.request(method, &request.url);
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        if let Some(body) = request.body {
            builder = builder.body(body);
        }
        let response = builder.send().await.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        if status == 401 {
            self.unauthorized.set(self.unauthorized.get() + 1);
        }
        let text = response.text().await.map_err(|e| e.to_string())?;
        let body: Option<Value> = serde_json::from_str(&text).ok();
        self.answers
            .borrow_mut()
            .push((request.url.clone(), body.clone()));
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }

    fn random_bytes(&self, out: &mut [u8]) {
        getrandom::fill(out).unwrap();
    }

    fn now(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    async fn sha256(&self, data: &[u8]) -> Result<Vec<u8>, String> {
        use sha2::Digest;
        if self.no_subtle_crypto.get() {
            return Err("WebCrypto is only available to pages served over https or from localhost".into());
        }
        Ok(sha2::Sha256::digest(data).to_vec())
    }

    async fn verify(&self, alg: &str, jwk: &Value, message: &[u8], signature: &[u8]) -> Result<bool, String> {
        use base64::Engine;
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone()).map_err(|e| e.to_string())?;
        let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).map_err(|e| e.to_string())?;
        let algorithm: jsonwebtoken::Algorithm = alg.parse().map_err(|_| format!("unsupported alg {alg}"))?;
        let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signature);
        jsonwebtoken::crypto::verify(&signature, message, &key, algorithm).map_err(|e| e.to_string())
    }

    async fn sign(&self, alg: &str, private_jwk: &str, message: &[u8]) -> Result<Vec<u8>, String> {
        use base64::Engine;
        let jwk: Value = serde_json::from_str(private_jwk).map_err(|e| e.to_string())?;
        let keys = self.signing_keys.borrow();
        let key = keys
            .get(jwk["kid"].as_str().unwrap_or_default())
            .ok_or("no key with that kid")?;
        let algorithm = match alg {
            "RS384" => jsonwebtoken::Algorithm::RS384,
            "ES384" => jsonwebtoken::Algorithm::ES384,
            other => return Err(format!("unsupported {other}")),
        };
        let signature = jsonwebtoken::crypto::sign(message, key, algorithm).map_err(|e| e.to_string())?;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|e| e.to_string())
    }
}

/// Follows the mock's pages as a person would: login as `username`, then `decision`
/// on the consent page. Returns the URL the browser lands on (the app's callback).
pub(crate) async fn walk_pages(authorize_url: &str, username: &str, decision: &str) -> String {
    // A browser: the mock binds the pages to the cookie it sets at /authorize.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap();
    let txn_of = |html: &str| {
        let start = html.find("name=\"txn\" value=\"").expect("a page with a txn") + 18;
        html[start..].split('"').next().unwrap().to_owned()
    };
    let origin = authorize_url.split("/ccri-auth/").next().unwrap();
    let login = http
        .get(authorize_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let txn = txn_of(&login);
    http.post(format!("{origin}/ccri-auth/authorize/login"))
        .form(&[
            ("txn", txn.as_str()),
            ("username", username),
            ("password", "password"),
        ])
        .send()
        .await
        .unwrap();
    let done = http
        .post(format!("{origin}/ccri-auth/authorize/consent"))
        .form(&[("txn", txn.as_str()), ("decision", decision)])
        .send()
        .await
        .unwrap();
    done.headers()["location"].to_str().unwrap().to_owned()
}

/// A FHIR request from [`FhirRequest`]'s constructors, sent: its body, or `null`.
#[allow(async_fn_in_trait)]
pub(crate) trait Fhir {
    async fn fhir(
        &self,
        request: Result<FhirRequest<TestSignal>, Error<Value>>,
    ) -> Result<Value, Error<Value>>;
}

impl<S: Storage + 'static> Fhir for SmartClient<std::rc::Rc<TestPlatform>, S> {
    async fn fhir(
        &self,
        request: Result<FhirRequest<TestSignal>, Error<Value>>,
    ) -> Result<Value, Error<Value>> {
        let response = self.send(request?).await?;
        Ok(response.body.unwrap_or(Value::Null))
    }
}
