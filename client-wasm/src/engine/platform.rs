//! What the protocol logic needs from its surroundings, as traits, so the same code
//! runs in the browser (fetch, Web Storage, WebCrypto) and in native tests (reqwest
//! against an in-process ccri-mock).

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Debug;

pub use smart_protocol::JsonValue;
use smart_protocol::json::MAX_SAFE_INTEGER;

/// A JSON document as the platform holds it. In the browser this is a JS value
/// that the browser parsed (`Response.json()`, `JSON.parse`) or built: FHIR
/// resources pass through to the app untouched, and the package needs no JSON
/// parser or writer of its own. Protocol messages read themselves from it
/// ([`JsonValue`]); the client builds the few documents it writes (the stored
/// session, a JWT's claims) with the constructors here.
pub trait Json: JsonValue + Clone + Debug {
    fn parse(text: &str) -> Result<Self, String>;
    /// JSON text, to send as a request body or to store.
    fn to_text(&self) -> Result<String, String>;
    fn text(value: &str) -> Self;
    fn number(value: f64) -> Self;
    /// A JSON boolean.
    fn flag(value: bool) -> Self;
    fn array(items: Vec<Self>) -> Self;
    /// An object of the members that are `Some`.
    fn object(members: Vec<(&str, Option<Self>)>) -> Self;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }

    /// A method name as an app writes it (`"patch"` too, as `fetch` accepts).
    pub fn parse(name: &str) -> Option<Method> {
        [
            Method::Get,
            Method::Post,
            Method::Put,
            Method::Patch,
            Method::Delete,
        ]
        .into_iter()
        .find(|m| m.as_str().eq_ignore_ascii_case(name))
    }
}

/// `S` is the platform's [`Signal`](Platform::Signal), which can cancel the request.
#[derive(Debug)]
pub struct HttpRequest<S> {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    pub signal: Option<S>,
}

impl<S> HttpRequest<S> {
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        HttpRequest {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: None,
            signal: None,
        }
    }

    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// A form-encoded body (token, revocation requests).
    pub fn form(mut self, pairs: &[(&str, &str)]) -> Self {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        self.body = Some(body);
        self.header("Content-Type", "application/x-www-form-urlencoded")
    }
}

/// A response: its status, its headers as the platform holds them, and, when it
/// had a JSON body, that body.
#[derive(Debug)]
pub struct HttpResponse<J, H> {
    pub status: u16,
    pub headers: H,
    pub body: Option<J>,
}

/// The response type of platform `P`.
pub type Response<P> = HttpResponse<<P as Platform>::Json, <P as Platform>::Headers>;

/// What cancels a request: in the browser, an `AbortSignal`.
pub trait Signal: Clone + Debug {
    /// The request was cancelled (so its failure is not a network error).
    fn aborted(&self) -> bool;
}

/// The browser or the test harness.
// Futures here need not be Send: the browser is single-threaded.
#[allow(async_fn_in_trait)]
pub trait Platform {
    type Json: Json;
    /// Response headers, passed to the app untouched (`includeResponse`).
    type Headers: Debug;
    type Signal: Signal;

    /// Sends a request. `Err` only when no HTTP response arrived (network, CORS,
    /// cancelled by its signal).
    async fn fetch(&self, request: HttpRequest<Self::Signal>) -> Result<Response<Self>, String>;

    /// Cryptographically random bytes.
    fn random_bytes(&self, out: &mut [u8]);

    /// Seconds since the epoch.
    fn now(&self) -> u64;

    /// SHA-256 of `data` (the PKCE S256 challenge). The browser has it in WebCrypto,
    /// so the package carries no hash code of its own.
    async fn sha256(&self, data: &[u8]) -> Result<Vec<u8>, String>;

    /// Checks a JWS signature of `alg` (RS, PS or ES with SHA-256/384/512) with a
    /// public key of the server's JWKS.
    async fn verify(
        &self,
        alg: &str,
        jwk: &Self::Json,
        message: &[u8],
        signature: &[u8],
    ) -> Result<bool, String>;

    /// Signs `message` as JWS `alg` (`RS384` or `ES384`) with a private key given as a
    /// JWK (JSON text). Returns the JWS signature bytes.
    async fn sign(&self, alg: &str, private_jwk: &str, message: &[u8]) -> Result<Vec<u8>, String>;
}

/// Where launches and sessions are kept: sessionStorage, localStorage, memory, or
/// an app's own store.
pub trait Storage {
    fn get(&self, key: &str) -> Option<String>;
    fn set(&self, key: &str, value: &str) -> Result<(), String>;
    fn remove(&self, key: &str);

    /// What only this tab should see: which session it is on. The browser keeps it
    /// in `sessionStorage` (one per tab) whatever holds the sessions, so two tabs
    /// sharing `localStorage` each resume their own; elsewhere it is kept here.
    fn get_tab(&self, key: &str) -> Option<String> {
        self.get(key)
    }

    fn set_tab(&self, key: &str, value: &str) -> Result<(), String> {
        self.set(key, value)
    }

    fn remove_tab(&self, key: &str) {
        self.remove(key)
    }
}

/// A store that lives as long as the process (a native back end, a test).
#[derive(Default)]
pub struct MemoryStorage(RefCell<HashMap<String, String>>);

/// Lists the keys only: the values are sessions, with their tokens.
impl Debug for MemoryStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.borrow().keys()).finish()
    }
}

impl MemoryStorage {
    /// No launch and no session is kept.
    pub fn is_empty(&self) -> bool {
        self.0.borrow().is_empty()
    }
}

impl Storage for MemoryStorage {
    fn get(&self, key: &str) -> Option<String> {
        self.0.borrow().get(key).cloned()
    }

    fn set(&self, key: &str, value: &str) -> Result<(), String> {
        self.0.borrow_mut().insert(key.to_owned(), value.to_owned());
        Ok(())
    }

    fn remove(&self, key: &str) {
        self.0.borrow_mut().remove(key);
    }
}

impl<S: Storage + ?Sized> Storage for std::rc::Rc<S> {
    fn get(&self, key: &str) -> Option<String> {
        (**self).get(key)
    }

    fn set(&self, key: &str, value: &str) -> Result<(), String> {
        (**self).set(key, value)
    }

    fn remove(&self, key: &str) {
        (**self).remove(key)
    }

    fn get_tab(&self, key: &str) -> Option<String> {
        (**self).get_tab(key)
    }

    fn set_tab(&self, key: &str, value: &str) -> Result<(), String> {
        (**self).set_tab(key, value)
    }

    fn remove_tab(&self, key: &str) {
        (**self).remove_tab(key)
    }
}

/// Native platforms (tests, back ends) hold JSON as `serde_json::Value`.
impl Json for serde_json::Value {
    fn parse(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    fn to_text(&self) -> Result<String, String> {
        Ok(self.to_string())
    }

    fn text(value: &str) -> Self {
        value.into()
    }

    fn number(value: f64) -> Self {
        // Integers stay integers (`exp`, `expiresAt`), as JavaScript writes them.
        if value.fract() == 0.0 && value.abs() <= MAX_SAFE_INTEGER {
            (value as i64).into()
        } else {
            value.into()
        }
    }

    fn flag(value: bool) -> Self {
        value.into()
    }

    fn array(items: Vec<Self>) -> Self {
        items.into()
    }

    fn object(members: Vec<(&str, Option<Self>)>) -> Self {
        let members = members.into_iter().filter_map(|(k, v)| Some((k.to_owned(), v?)));
        serde_json::Value::Object(members.collect())
    }
}

/// A platform shared between the client and the code that launched it.
impl<P: Platform + ?Sized> Platform for std::rc::Rc<P> {
    type Json = P::Json;
    type Headers = P::Headers;
    type Signal = P::Signal;

    async fn fetch(&self, request: HttpRequest<Self::Signal>) -> Result<Response<Self>, String> {
        (**self).fetch(request).await
    }

    fn random_bytes(&self, out: &mut [u8]) {
        (**self).random_bytes(out)
    }

    fn now(&self) -> u64 {
        (**self).now()
    }

    async fn sha256(&self, data: &[u8]) -> Result<Vec<u8>, String> {
        (**self).sha256(data).await
    }

    async fn verify(
        &self,
        alg: &str,
        jwk: &Self::Json,
        message: &[u8],
        signature: &[u8],
    ) -> Result<bool, String> {
        (**self).verify(alg, jwk, message, signature).await
    }

    async fn sign(&self, alg: &str, private_jwk: &str, message: &[u8]) -> Result<Vec<u8>, String> {
        (**self).sign(alg, private_jwk, message).await
    }
}
