//! The JavaScript API (`#[wasm_bindgen]`), a thin layer over [`crate::engine`]:
//! options in, promises and JS errors out. Nothing here decides protocol questions.

mod error;
mod options;
mod platform;
mod storage;

use std::rc::Rc;

use js_sys::Promise;
use smart_protocol::{ClientSecret, PrivateJwk};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::engine::{self, Json, Method, backend, callback, launch};
use error::{invalid_options, to_js_error};
use options::{Options, params_object};
use platform::{BrowserPlatform, JsJson};
use storage::WebStorage;

type Engine = engine::SmartClient<Rc<BrowserPlatform>, WebStorage>;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &str = r#"
/** Where launches and sessions are kept. Default "session" (one tab). */
export type StorageOption = "session" | "local" | "memory" | StorageLike;
/** Anything with the Web Storage methods (e.g. a wrapper over IndexedDB). */
export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}
export interface AuthorizeOptions {
  /** FHIR base URL. Default: the `iss` query parameter (EHR launch). */
  iss?: string;
  clientId: string;
  /** Space-separated scopes, e.g. "openid fhirUser launch/patient patient/*.rs offline_access". */
  scope: string;
  /** Where the server sends the browser back. Default: this page without its query. */
  redirectUri?: string;
  /** The EHR's launch id. Default: the `launch` query parameter. */
  launch?: string;
  /** The resource server the token is for, sent as `aud`. Default: iss. Requests always go to iss. */
  aud?: string;
  /** A confidential client's secret: used, never stored. Pass it to ready() too. */
  clientSecret?: string;
  storage?: StorageOption;
  /** If given, refuse any iss not in this list (recommended for EHR launch). */
  issAllowList?: string[];
  /** Return the authorize URL instead of navigating to it. */
  noRedirect?: boolean;
  /** OpenID `prompt`. Default: "consent" when scope has both openid and offline_access
   * (OpenID Connect Core §11: otherwise a server may drop offline_access). */
  prompt?: "none" | "login" | "consent" | "select_account" | (string & {});
  /** More authorize parameters (login_hint, ui_locales, …); none the launch sets itself. */
  extraParams?: Record<string, string | number | boolean>;
  /** Seconds the id_token's exp and iat may be off this device's clock. Default 60. */
  clockTolerance?: number;
}
export interface ReadyOptions {
  /** The callback URL. Default: location.href (which is then cleaned of code and state). */
  url?: string;
  clientSecret?: string;
  storage?: StorageOption;
}
export interface FhirContextItem {
  reference?: string; canonical?: string; identifier?: { system?: string; value?: string }; type?: string; role?: string;
}
/** The session, as kept in the chosen storage. */
export interface SessionState {
  serverUrl: string;
  clientId: string;
  tokenEndpoint: string;
  revocationEndpoint?: string;
  accessToken: string;
  refreshToken?: string;
  idToken?: string;
  scope?: string;
  /** Seconds since the epoch. */
  expiresAt?: number;
  /** The access token's lifetime in seconds, as the server gave it. */
  lifetime?: number;
  patient?: string;
  encounter?: string;
  fhirContext: FhirContextItem[];
  needPatientBanner?: boolean;
  smartStyleUrl?: string;
  intent?: string;
  tenant?: string;
  /** Claims of the id_token, after its signature, iss, aud and exp were verified. */
  idTokenClaims?: Record<string, unknown>;
  /** The user's FHIR URL, from the verified id_token only. */
  fhirUser?: string;
  /** The launch authenticated with a client secret (which is never stored). */
  confidential: boolean;
}
export type SearchParams = Record<string, string | number | boolean | Array<string | number | boolean>>;
export interface FhirRequestInit { method?: "GET" | "POST" | "PUT" | "DELETE"; body?: object; }
export interface ClientCredentialsOptions {
  /** The token endpoint, or give iss to discover it. */
  tokenUrl?: string;
  iss?: string;
  clientId: string;
  /** CCRI's flow: the secret, sent with HTTP Basic. */
  clientSecret?: string;
  /** SMART Backend Services: a private RSA (RS384) or P-384 (ES384) key as a JWK, with its kid. */
  privateJwk?: JsonWebKey & { kid?: string };
  scope?: string;
}
/** The package's own error codes. issuer_mismatch: the authorization response names another
 * server (RFC 9207); crypto_unavailable: no WebCrypto (the page is not https or localhost). */
export type ErrorCode = "discovery_failed" | "pkce_unsupported" | "iss_not_allowed" | "invalid_options" | "state_mismatch" | "issuer_mismatch" | "id_token_invalid" | "session_expired" | "network_error" | "invalid_response" | "unsafe_url" | "storage_error" | "crypto_unavailable" | "registration_unsupported" | "no_session" | "no_patient" | "no_encounter" | "no_user";
/** The server's OAuth error codes (RFC 6749 §4.1.2.1, §5.2; RFC 7591 §3.2.2; RFC 7009 §2.2.1;
 * OpenID Connect Core §3.1.2.6), or another it sent. */
export type OAuthErrorCode = "invalid_request" | "invalid_client" | "invalid_grant" | "unauthorized_client" | "unsupported_grant_type" | "invalid_scope" | "access_denied" | "unsupported_response_type" | "server_error" | "temporarily_unavailable" | "invalid_redirect_uri" | "invalid_client_metadata" | "unsupported_token_type" | "login_required" | "consent_required" | "interaction_required" | (string & {});
/** Every rejection of this package is a SmartError. */
export interface SmartError extends Error {
  name: "SmartError";
  /** Stable: one of the package's codes, the server's OAuth error, or http_<status> for a FHIR request. */
  code: ErrorCode | OAuthErrorCode | `http_${number}`;
  status?: number;
  /** The server's OAuth error body. */
  oauth?: { error: OAuthErrorCode; error_description?: string; error_uri?: string };
  /** The body of a failed FHIR request, usually an OperationOutcome. */
  body?: any;
}
"#;

// Types of parameters JavaScript may leave out (`options?: ReadyOptions`).
#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(typescript_type = "ReadyOptions")]
    pub type ReadyOptions;
    #[wasm_bindgen(typescript_type = "SearchParams")]
    pub type SearchParams;
    #[wasm_bindgen(typescript_type = "FhirRequestInit")]
    pub type FhirRequestInit;
}

fn or_undefined(value: Option<impl Into<JsValue>>) -> JsValue {
    value.map(Into::into).unwrap_or(JsValue::UNDEFINED)
}

fn platform() -> Rc<BrowserPlatform> {
    Rc::new(BrowserPlatform)
}

fn location() -> Option<web_sys::Location> {
    Some(web_sys::window()?.location())
}

/// A query parameter of the current page.
fn page_param(name: &str) -> Option<String> {
    let href = location()?.href().ok()?;
    callback::query_params(&href)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// Starts a standalone or EHR launch: discovers the server, prepares PKCE and state,
/// and navigates to the authorize endpoint (or returns its URL with `noRedirect`).
#[wasm_bindgen(unchecked_return_type = "Promise<string | undefined>")]
pub fn authorize(#[wasm_bindgen(unchecked_param_type = "AuthorizeOptions")] options: JsValue) -> Promise {
    spawn(Task::Authorize(options))
}

async fn authorize_task(options: JsValue) -> Result<JsValue, JsValue> {
    let o = Options(&options);
    let storage = WebStorage::from_option(&o.raw("storage")).map_err(invalid_options)?;
    let default_redirect =
        location().and_then(|l| Some(format!("{}{}", l.origin().ok()?, l.pathname().ok()?)));
    let engine_options = launch::AuthorizeOptions {
        iss: o
            .string("iss")?
            .or_else(|| page_param("iss"))
            .ok_or_else(|| invalid_options("iss is required"))?,
        client_id: o.required("clientId")?,
        scope: o.required("scope")?,
        redirect_uri: o
            .string("redirectUri")?
            .or(default_redirect)
            .ok_or_else(|| invalid_options("redirectUri is required"))?,
        launch: o.string("launch")?.or_else(|| page_param("launch")),
        aud: o.string("aud")?,
        iss_allow_list: o.strings("issAllowList")?,
        client_secret: o.string("clientSecret")?.map(ClientSecret::new),
        prompt: o.string("prompt")?,
        extra_params: params_object(&o.raw("extraParams"), "extraParams")?,
        clock_tolerance: o.unsigned("clockTolerance")?,
    };
    let url = launch::authorize(&platform(), &storage, &engine_options)
        .await
        .map_err(to_js_error)?;
    if o.boolean("noRedirect")? {
        return Ok(url.into());
    }
    location()
        .ok_or_else(|| invalid_options("no page to navigate: pass noRedirect: true"))?
        .assign(&url)?;
    Ok(JsValue::UNDEFINED)
}

/// Finishes a launch on the redirect page (or resumes the session this storage holds)
/// and returns the client.
#[wasm_bindgen(unchecked_return_type = "Promise<SmartClient>")]
pub fn ready(options: Option<ReadyOptions>) -> Promise {
    spawn(Task::Ready(or_undefined(options)))
}

async fn ready_task(options: JsValue) -> Result<SmartClient, JsValue> {
    let o = Options(&options);
    let storage = WebStorage::from_option(&o.raw("storage")).map_err(invalid_options)?;
    let secret = o.string("clientSecret")?.map(ClientSecret::new);
    let explicit_url = o.string("url")?;
    let url = match &explicit_url {
        Some(url) => url.clone(),
        None => location()
            .and_then(|l| l.href().ok())
            .ok_or_else(|| invalid_options("url is required outside a page"))?,
    };
    let is_callback = callback::query_params(&url).iter().any(|(k, _)| k == "state");
    if !is_callback {
        return engine::SmartClient::restore(platform(), storage, secret)
            .map(|inner| SmartClient { inner })
            .ok_or_else(|| {
                to_js_error(engine::Error::new(
                    engine::error::ErrorCode::NoSession,
                    "no launch callback in the URL and no saved session",
                ))
            });
    }
    if explicit_url.is_none() {
        clean_location(&url);
    }
    let state = callback::ready(&platform(), &storage, &url, secret.as_ref())
        .await
        .map_err(to_js_error)?;
    let inner = engine::SmartClient::new(platform(), storage, state, secret).map_err(to_js_error)?;
    Ok(SmartClient { inner })
}

/// Removes the code and state from the address bar, so a reload or a shared link
/// never replays them.
fn clean_location(url: &str) {
    let (Ok(url), Some(history)) = (
        web_sys::Url::new(url),
        web_sys::window().and_then(|w| w.history().ok()),
    ) else {
        return;
    };
    let params = url.search_params();
    for name in ["code", "state", "error", "error_description", "error_uri"] {
        params.delete(name);
    }
    let _ = history.replace_state_with_url(&JsValue::NULL, "", Some(&url.href()));
}

/// Client credentials (CCRI's Basic-auth flow) for service workers and back ends.
#[wasm_bindgen(js_name = clientCredentials, unchecked_return_type = "Promise<Record<string, unknown>>")]
pub fn client_credentials(
    #[wasm_bindgen(unchecked_param_type = "ClientCredentialsOptions")] options: JsValue,
) -> Promise {
    spawn(Task::ClientCredentials(options))
}

async fn client_credentials_task(options: JsValue) -> Result<JsValue, JsValue> {
    let o = Options(&options);
    let scope = match o.string("scope")? {
        Some(text) => Some(text.parse().map_err(invalid_options)?),
        None => None,
    };
    let private_jwk = o.raw("privateJwk");
    let credential = match (o.string("clientSecret")?, private_jwk.is_object()) {
        (Some(secret), false) => backend::Credential::Secret(ClientSecret::new(secret)),
        (None, true) => backend::Credential::PrivateKey(PrivateJwk::new(
            JsJson(private_jwk).to_text().map_err(invalid_options)?,
        )),
        _ => return Err(invalid_options("give exactly one of clientSecret and privateJwk")),
    };
    let engine_options = backend::ClientCredentialsOptions {
        token_url: o.string("tokenUrl")?,
        iss: o.string("iss")?,
        client_id: o.required("clientId")?,
        credential,
        scope,
    };
    let response = backend::client_credentials(&BrowserPlatform, &engine_options)
        .await
        .map_err(to_js_error)?;
    Ok(response.0)
}

/// RFC 7591 dynamic registration at the server `iss` advertises.
#[wasm_bindgen(unchecked_return_type = "Promise<Record<string, unknown>>")]
pub fn register(
    iss: String,
    #[wasm_bindgen(unchecked_param_type = "Record<string, unknown>")] metadata: JsValue,
) -> Promise {
    spawn(Task::Register(iss, metadata))
}

/// Work that answers JavaScript with a promise. Every async entry point (the four
/// functions above and the twelve [`SmartClient`] methods) runs through [`run`], so
/// the package holds one future type and one copy of the promise machinery; each
/// future type of its own cost 1–10 kB of wasm.
enum Task {
    Authorize(JsValue),
    Ready(JsValue),
    ClientCredentials(JsValue),
    Register(String, JsValue),
    Client(Engine, Call),
}

fn spawn(task: Task) -> Promise {
    future_to_promise(run(task))
}

async fn run(task: Task) -> Result<JsValue, JsValue> {
    match task {
        Task::Authorize(options) => authorize_task(options).await,
        Task::Ready(options) => ready_task(options).await.map(JsValue::from),
        Task::ClientCredentials(options) => client_credentials_task(options).await,
        Task::Register(iss, metadata) => backend::register(&BrowserPlatform, &iss, &JsJson(metadata))
            .await
            .map(|registration| registration.0)
            .map_err(to_js_error),
        Task::Client(client, call) => match call_client(client, call).await {
            Ok(body) => Ok(body.map_or(JsValue::NULL, |b| b.0)),
            Err(error) => Err(to_js_error(error)),
        },
    }
}

/// An authorised FHIR client for one launched session.
#[wasm_bindgen]
#[derive(Debug)]
pub struct SmartClient {
    inner: Engine,
}

/// One call of a [`SmartClient`] method, run as a [`Task::Client`].
enum Call {
    Read(String, String),
    Vread(String, String, String),
    Search(String, Vec<(String, String)>),
    NextPage(JsValue),
    Create(JsValue),
    Update(JsValue),
    Delete(String, String),
    Request(Method, String, Option<String>),
    Patient,
    Encounter,
    User,
    Refresh,
    Revoke,
}

/// `client.request(path, { method, body })`.
fn request_call(path: String, init: &JsValue) -> Result<Call, JsValue> {
    let o = Options(init);
    let method = match o.string("method")?.as_deref().unwrap_or("GET") {
        "GET" => Method::Get,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        other => return Err(invalid_options(format!("method {other} is not supported"))),
    };
    let body = o.raw("body");
    let body = if body.is_undefined() {
        None
    } else {
        Some(JsJson(body).to_text().map_err(invalid_options)?)
    };
    Ok(Call::Request(method, path, body))
}

async fn call_client(client: Engine, call: Call) -> Result<Option<JsJson>, engine::Error<JsJson>> {
    match call {
        Call::Read(kind, id) => client.read(&kind, &id).await.map(Some),
        Call::Vread(kind, id, version) => client.vread(&kind, &id, &version).await.map(Some),
        Call::Search(kind, params) => client.search(&kind, &params).await.map(Some),
        Call::NextPage(bundle) => match engine::fhir::next_link(&JsJson(bundle)) {
            Some(url) => client.fetch_page(&url).await.map(Some),
            None => Ok(None),
        },
        Call::Create(resource) => client.create(&JsJson(resource)).await,
        Call::Update(resource) => client.update(&JsJson(resource)).await,
        Call::Delete(kind, id) => client.delete(&kind, &id).await.map(|()| None),
        Call::Request(method, path, body) => client.request(method, &path, body).await,
        Call::Patient => client.patient().await.map(Some),
        Call::Encounter => client.encounter().await.map(Some),
        Call::User => client.user().await.map(Some),
        Call::Refresh => client.refresh().await.map(|()| None),
        Call::Revoke => client.revoke().await.map(|()| None),
    }
}

#[wasm_bindgen(module = "/src/web/helpers.js")]
extern "C" {
    #[wasm_bindgen(js_name = pages)]
    fn pages_iterator(client: SmartClient, kind: &str, params: JsValue) -> JsValue;
}

impl SmartClient {
    /// Runs `call` on this session; resolves to its JSON or rejects with a SmartError.
    fn call(&self, call: Call) -> Promise {
        spawn(Task::Client(self.inner.clone(), call))
    }
}

#[wasm_bindgen]
impl SmartClient {
    #[wasm_bindgen(getter, unchecked_return_type = "SessionState")]
    pub fn state(&self) -> JsValue {
        self.inner.state().to_json().0
    }

    /// The id of the patient in context.
    #[wasm_bindgen(getter, js_name = patientId)]
    pub fn patient_id(&self) -> Option<String> {
        self.inner.state().context.patient
    }

    #[wasm_bindgen(unchecked_return_type = "Promise<any>")]
    pub fn read(&self, kind: String, id: String) -> Promise {
        self.call(Call::Read(kind, id))
    }

    #[wasm_bindgen(unchecked_return_type = "Promise<any>")]
    pub fn vread(&self, kind: String, id: String, version: String) -> Promise {
        self.call(Call::Vread(kind, id, version))
    }

    /// A searchset Bundle.
    #[wasm_bindgen(unchecked_return_type = "Promise<any>")]
    pub fn search(&self, kind: String, params: Option<SearchParams>) -> Promise {
        match params_object(&or_undefined(params), "search parameters") {
            Ok(params) => self.call(Call::Search(kind, params)),
            Err(error) => Promise::reject(&error),
        }
    }

    /// The next page of a searchset Bundle, or null after the last.
    #[wasm_bindgen(js_name = nextPage, unchecked_return_type = "Promise<any | null>")]
    pub fn next_page(&self, bundle: JsValue) -> Promise {
        self.call(Call::NextPage(bundle))
    }

    /// `for await (const bundle of client.pages("Observation", params))`: every page.
    #[wasm_bindgen(unchecked_return_type = "AsyncIterableIterator<any>")]
    pub fn pages(&self, kind: String, params: Option<SearchParams>) -> JsValue {
        pages_iterator(
            SmartClient {
                inner: self.inner.clone(),
            },
            &kind,
            or_undefined(params),
        )
    }

    #[wasm_bindgen(unchecked_return_type = "Promise<any>")]
    pub fn create(&self, resource: JsValue) -> Promise {
        self.call(Call::Create(resource))
    }

    #[wasm_bindgen(unchecked_return_type = "Promise<any>")]
    pub fn update(&self, resource: JsValue) -> Promise {
        self.call(Call::Update(resource))
    }

    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn delete(&self, kind: String, id: String) -> Promise {
        self.call(Call::Delete(kind, id))
    }

    /// Any request to the FHIR server, with the token: `path` relative to the base.
    #[wasm_bindgen(unchecked_return_type = "Promise<any>")]
    pub fn request(&self, path: String, init: Option<FhirRequestInit>) -> Promise {
        match request_call(path, &or_undefined(init)) {
            Ok(call) => self.call(call),
            Err(error) => Promise::reject(&error),
        }
    }

    /// The Patient in context.
    #[wasm_bindgen(unchecked_return_type = "Promise<any>")]
    pub fn patient(&self) -> Promise {
        self.call(Call::Patient)
    }

    /// The Encounter in context.
    #[wasm_bindgen(unchecked_return_type = "Promise<any>")]
    pub fn encounter(&self) -> Promise {
        self.call(Call::Encounter)
    }

    /// The user (the verified id_token's fhirUser).
    #[wasm_bindgen(unchecked_return_type = "Promise<any>")]
    pub fn user(&self) -> Promise {
        self.call(Call::User)
    }

    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn refresh(&self) -> Promise {
        self.call(Call::Refresh)
    }

    /// Signs out: revokes the tokens at the server and clears the stored session.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn revoke(&self) -> Promise {
        self.call(Call::Revoke)
    }
}
