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
use wasm_bindgen_futures::{JsFuture, future_to_promise};

use crate::engine::fhir::{BundleKind, FhirRequest, IfMatch, InContext};
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
  /** With several registrations (authorize([…])): this one is used when the launch's iss
   * (the page's `iss` parameter, else this registration's `iss`) equals the string, passes
   * the RegExp, or makes the function return true. A registration without it matches any iss. */
  issMatch?: string | RegExp | ((iss: string) => boolean);
  /** Where the authorize page opens. "_self" (default), "_top" and "_parent" navigate that
   * window; "_blank" a new tab; "popup" a popup window of width × height; another string is a
   * named frame or window; a Window is navigated. A popup hands the result back to this page
   * (which then goes to the redirect URI), unless completeInTarget. A blocked popup falls
   * back to this window, with a console warning. */
  target?: "_self" | "_top" | "_parent" | "_blank" | "popup" | (string & {}) | Window;
  width?: number;
  height?: number;
  /** Finish the launch in the popup itself (it becomes the app) instead of in this page.
   * "_blank" and frames always finish where they are; they need storage they share with
   * this page ("local") unless the browser copies sessionStorage to them, as it does for popups. */
  completeInTarget?: boolean;
  /** "POST": send the authorize parameters as a form POST, when the server advertises
   * authorize-post (SMART 2.2); otherwise, and by default, a GET. */
  method?: "GET" | "POST";
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
  /** The session's key in storage (the state of its launch): each session has its own, so
   * two servers, or two patients in two tabs, never overwrite each other. */
  id: string;
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
/** What every FHIR method takes as its last argument. */
export interface RequestOptions {
  /** More request headers (Prefer, If-None-Match, …). Authorization is the client's own. */
  headers?: Record<string, string>;
  /** Cancels the request, and the reads of resolveReferences: the promise rejects with code "aborted". */
  signal?: AbortSignal;
  /** Resolve to { status, headers, body } instead of the body alone. */
  includeResponse?: boolean;
  /** References to read and nest, as paths into each resource: "subject", "performer",
   * "encounter.serviceProvider" (after "encounter"). A Bundle's `_include`d resources and
   * contained ones are used first; each other reference is read once. A reference the
   * token may not read (4xx) stays a Reference. */
  resolveReferences?: string | string[];
  /** true: put resolved and `_include`d resources in place of the References that point at
   * them (without resolveReferences: every Reference to an `_include`d resource).
   * false: leave them, and resolve to { data, references: { "Type/id": resource } }.
   * Default: true when resolveReferences is given. */
  graph?: boolean;
}
/** The answer with `includeResponse: true`. */
export interface FhirResponse<T = any> {
  status: number;
  /** As the server sent them: ETag, Location, Content-Location, Last-Modified… */
  headers: Headers;
  body: T;
}
/** `client.patient`: call it for the Patient in context; its other methods stay in that
 * patient's record. Without a patient in context, every one rejects with no_patient. */
export interface PatientApi {
  (options?: RequestOptions): Promise<any>;
  /** The id of the patient in context, as client.patientId. */
  readonly id?: string;
  read(options?: RequestOptions): Promise<any>;
  /** A search limited to the patient: the type's patient parameter (the first of patient,
   * subject, requester, member, actor, beneficiary that the server's CapabilityStatement
   * lists; _id for Patient) is set to the patient in context. */
  search(type: string, params?: SearchParams, options?: RequestOptions): Promise<any>;
  /** The same for a search written as a path: "Observation?code=8867-4". */
  request(path: string, options?: RequestOptions): Promise<any>;
}
/** With graph: false. */
export interface ResolvedReferences<T = any> { data: T; references: Record<string, any>; }
export interface FhirRequestInit extends RequestOptions {
  method?: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  /** JSON. A PATCH with an array body is a JSON Patch. */
  body?: object;
}
export interface UpdateOptions extends RequestOptions {
  /** The version the change is conditional on (If-Match), or false for none. Default for
   * update(): the resource's meta.versionId, so a stale copy gets http_412, not a lost write. */
  ifMatch?: string | false;
}
export interface PagesOptions extends RequestOptions {
  /** Stop after this many pages. */
  pageLimit?: number;
}
/** One operation of a JSON Patch (RFC 6902). */
export interface JsonPatchOperation {
  op: "add" | "remove" | "replace" | "move" | "copy" | "test";
  path: string;
  value?: unknown;
  from?: string;
}
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
 * server (RFC 9207); crypto_unavailable: no WebCrypto (the page is not https or localhost);
 * aborted: the request's signal cancelled it. */
export type ErrorCode = "discovery_failed" | "pkce_unsupported" | "iss_not_allowed" | "invalid_options" | "state_mismatch" | "issuer_mismatch" | "id_token_invalid" | "session_expired" | "network_error" | "aborted" | "invalid_response" | "unsafe_url" | "storage_error" | "crypto_unavailable" | "registration_unsupported" | "no_session" | "no_patient" | "no_encounter" | "no_user";
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
    #[wasm_bindgen(typescript_type = "RequestOptions")]
    pub type RequestOptions;
    #[wasm_bindgen(typescript_type = "UpdateOptions")]
    pub type UpdateOptions;
    #[wasm_bindgen(typescript_type = "PagesOptions")]
    pub type PagesOptions;
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
/// and sends the browser to the authorize endpoint in the chosen `target` (or
/// returns its URL with `noRedirect`). Given several registrations, uses the first
/// whose `issMatch` matches the launch's `iss`.
#[wasm_bindgen(unchecked_return_type = "Promise<string | undefined>")]
pub fn authorize(
    #[wasm_bindgen(unchecked_param_type = "AuthorizeOptions | AuthorizeOptions[]")] options: JsValue,
) -> Promise {
    spawn(Task::Authorize(options))
}

async fn authorize_task(options: JsValue) -> Result<JsValue, JsValue> {
    let options = if js_sys::Array::is_array(&options) {
        let iss = page_param("iss");
        let chosen = pick_registration(&options, iss.as_deref());
        if chosen.is_undefined() {
            return Err(to_js_error(engine::Error::new(
                engine::error::ErrorCode::IssNotAllowed,
                format!(
                    "no registration's issMatch matches iss {}",
                    iss.as_deref().unwrap_or("(none given)")
                ),
            )));
        }
        chosen
    } else {
        options
    };
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
        post: match o.string("method")?.as_deref() {
            None | Some("GET") => false,
            Some("POST") => true,
            Some(other) => {
                return Err(invalid_options(format!(
                    "method must be GET or POST, not {other}"
                )));
            }
        },
    };
    let target = o.raw("target");
    if !(target.is_undefined() || target.is_string() || target.is_object()) {
        return Err(invalid_options(
            "target must be _self, _top, _parent, _blank, popup, a frame's name or a Window",
        ));
    }
    let request = launch::authorize(&platform(), &storage, &engine_options)
        .await
        .map_err(to_js_error)?;
    if o.boolean("noRedirect")? {
        return Ok(request.url().into());
    }
    if location().is_none() {
        return Err(invalid_options("no page to navigate: pass noRedirect: true"));
    }
    navigate(&request.endpoint, &request.params, request.post, &options)?;
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
        // A popup hands its callback to the page that opened it, then closes.
        if hand_over(&url) {
            std::future::pending::<()>().await;
        }
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
/// functions above and every [`SmartClient`] method) runs through [`run`], so
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
        Task::Client(client, call) => call_client(client, call).await,
    }
}

/// An authorised FHIR client for one launched session.
#[wasm_bindgen]
#[derive(Debug)]
pub struct SmartClient {
    inner: Engine,
}

type Request = FhirRequest<web_sys::AbortSignal>;
type EngineResult<T> = Result<T, engine::Error<JsJson>>;

/// One call of a [`SmartClient`] method, run as a [`Task::Client`].
enum Call {
    /// A FHIR request, and the app's [`RequestOptions`] that shape its answer.
    Send(Request, JsValue),
    Refresh,
    Revoke,
}

async fn call_client(client: Engine, call: Call) -> Result<JsValue, JsValue> {
    let (request, options) = match call {
        Call::Send(request, options) => (request, options),
        Call::Refresh => {
            return client
                .refresh()
                .await
                .map(|()| JsValue::UNDEFINED)
                .map_err(to_js_error);
        }
        Call::Revoke => {
            return client
                .revoke()
                .await
                .map(|()| JsValue::UNDEFINED)
                .map_err(to_js_error);
        }
    };
    let response = client.send(request).await.map_err(to_js_error)?;
    let body = response.body.map_or(JsValue::NULL, |b| b.0);
    if !options.is_object() {
        return Ok(body);
    }
    let shaped = respond(
        SmartClient { inner: client },
        response.status,
        response.headers,
        body,
        &options,
    );
    JsFuture::from(shaped).await
}

/// `RequestOptions` that go into the request itself: headers and the signal. The
/// rest (includeResponse, resolveReferences, graph) shape the answer, in
/// helpers.js's `respond`.
fn with_options(request: Request, options: &JsValue) -> Result<Request, JsValue> {
    let o = Options(options);
    let mut request = request
        .with_headers(params_object(&o.raw("headers"), "headers")?)
        .map_err(to_js_error)?;
    let signal = o.raw("signal");
    if !signal.is_undefined() {
        let signal = signal
            .dyn_into::<web_sys::AbortSignal>()
            .map_err(|_| invalid_options("signal must be an AbortSignal"))?;
        request.signal = Some(signal);
    }
    Ok(request)
}

/// `ifMatch` of [`UpdateOptions`]: a versionId, or `false` for none.
fn if_match(options: &JsValue) -> Result<IfMatch, JsValue> {
    let value = Options(options).raw("ifMatch");
    match (value.as_string(), value.as_bool()) {
        (Some(version), _) => Ok(IfMatch::Version(version)),
        (None, Some(false)) => Ok(IfMatch::Never),
        _ if value.is_undefined() => Ok(IfMatch::ResourceVersion),
        _ => Err(invalid_options("ifMatch must be a versionId or false")),
    }
}

/// `client.request(path, { method, body, …options })`.
fn request_call(path: String, init: &JsValue) -> Result<Request, JsValue> {
    let o = Options(init);
    let method = o.string("method")?.unwrap_or_else(|| "GET".into());
    let method =
        Method::parse(&method).ok_or_else(|| invalid_options(format!("method {method} is not supported")))?;
    let mut request = FhirRequest::new(method, path);
    let body = o.raw("body");
    if !body.is_undefined() {
        request.body = Some(JsJson(body.clone()).to_text().map_err(invalid_options)?);
        if method == Method::Patch && js_sys::Array::is_array(&body) {
            request
                .headers
                .push(("Content-Type".into(), "application/json-patch+json".into()));
        }
    }
    with_options(request, init)
}

#[wasm_bindgen(module = "/src/web/helpers.js")]
extern "C" {
    #[wasm_bindgen(js_name = pickRegistration)]
    fn pick_registration(registrations: &JsValue, iss: Option<&str>) -> JsValue;
    #[wasm_bindgen(catch)]
    fn navigate(endpoint: &str, params: &str, post: bool, options: &JsValue) -> Result<(), JsValue>;
    #[wasm_bindgen(js_name = handOver)]
    fn hand_over(url: &str) -> bool;
    #[wasm_bindgen(js_name = pages)]
    fn pages_iterator(client: SmartClient, kind: &str, params: JsValue, options: JsValue) -> JsValue;
    fn respond(
        client: SmartClient,
        status: u16,
        headers: web_sys::Headers,
        body: JsValue,
        options: &JsValue,
    ) -> Promise;
    #[wasm_bindgen(js_name = patientApi)]
    fn patient_api(client: SmartClient, id: Option<String>, missing: JsValue) -> JsValue;
}

impl SmartClient {
    /// Sends `request` with `options` on this session; resolves to its JSON (or
    /// what the options make of it) or rejects with a SmartError.
    fn send(&self, request: EngineResult<Request>, options: JsValue) -> Promise {
        let call = request
            .map_err(to_js_error)
            .and_then(|request| with_options(request, &options));
        match call {
            Ok(request) => self.call(Call::Send(request, options)),
            Err(error) => Promise::reject(&error),
        }
    }

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
    pub fn read(&self, kind: String, id: String, options: Option<RequestOptions>) -> Promise {
        self.send(FhirRequest::read(&kind, &id), or_undefined(options))
    }

    #[wasm_bindgen(unchecked_return_type = "Promise<any>")]
    pub fn vread(
        &self,
        kind: String,
        id: String,
        version: String,
        options: Option<RequestOptions>,
    ) -> Promise {
        self.send(FhirRequest::vread(&kind, &id, &version), or_undefined(options))
    }

    /// A searchset Bundle.
    #[wasm_bindgen(unchecked_return_type = "Promise<any>")]
    pub fn search(
        &self,
        kind: String,
        params: Option<SearchParams>,
        options: Option<RequestOptions>,
    ) -> Promise {
        match params_object(&or_undefined(params), "search parameters") {
            Ok(params) => self.send(FhirRequest::search(&kind, &params), or_undefined(options)),
            Err(error) => Promise::reject(&error),
        }
    }

    /// The next page of a searchset Bundle, or null after the last.
    #[wasm_bindgen(js_name = nextPage, unchecked_return_type = "Promise<any | null>")]
    pub fn next_page(&self, bundle: JsValue, options: Option<RequestOptions>) -> Promise {
        match FhirRequest::next_page(&JsJson(bundle)) {
            Some(request) => self.send(Ok(request), or_undefined(options)),
            None => Promise::resolve(&JsValue::NULL),
        }
    }

    /// `for await (const bundle of client.pages("Observation", params))`: every page
    /// (or the first `pageLimit`).
    #[wasm_bindgen(unchecked_return_type = "AsyncIterableIterator<any>")]
    pub fn pages(
        &self,
        kind: String,
        params: Option<SearchParams>,
        options: Option<PagesOptions>,
    ) -> JsValue {
        pages_iterator(
            SmartClient {
                inner: self.inner.clone(),
            },
            &kind,
            or_undefined(params),
            or_undefined(options),
        )
    }

    #[wasm_bindgen(unchecked_return_type = "Promise<any>")]
    pub fn create(&self, resource: JsValue, options: Option<RequestOptions>) -> Promise {
        self.send(FhirRequest::create(&JsJson(resource)), or_undefined(options))
    }

    /// Conditional on the resource's `meta.versionId` unless `ifMatch` says otherwise.
    #[wasm_bindgen(unchecked_return_type = "Promise<any>")]
    pub fn update(&self, resource: JsValue, options: Option<UpdateOptions>) -> Promise {
        let options = or_undefined(options);
        match if_match(&options) {
            Ok(if_match) => self.send(FhirRequest::update(&JsJson(resource), if_match), options),
            Err(error) => Promise::reject(&error),
        }
    }

    /// A JSON Patch (RFC 6902), conditional on `ifMatch` when given.
    #[wasm_bindgen(unchecked_return_type = "Promise<any>")]
    pub fn patch(
        &self,
        kind: String,
        id: String,
        #[wasm_bindgen(unchecked_param_type = "JsonPatchOperation[]")] operations: JsValue,
        options: Option<UpdateOptions>,
    ) -> Promise {
        let options = or_undefined(options);
        match if_match(&options) {
            Ok(if_match) => self.send(
                FhirRequest::patch(&kind, &id, &JsJson(operations), if_match),
                options,
            ),
            Err(error) => Promise::reject(&error),
        }
    }

    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn delete(&self, kind: String, id: String, options: Option<RequestOptions>) -> Promise {
        self.send(FhirRequest::delete(&kind, &id), or_undefined(options))
    }

    /// A batch Bundle: each entry succeeds or fails on its own. `entries` is the
    /// `entry` array, or a whole Bundle of type batch. Resolves to the response Bundle.
    #[wasm_bindgen(unchecked_return_type = "Promise<any>")]
    pub fn batch(
        &self,
        #[wasm_bindgen(unchecked_param_type = "object[] | object")] entries: JsValue,
        options: Option<RequestOptions>,
    ) -> Promise {
        self.send(
            FhirRequest::bundle(BundleKind::Batch, &JsJson(entries)),
            or_undefined(options),
        )
    }

    /// A transaction Bundle: every entry or none.
    #[wasm_bindgen(unchecked_return_type = "Promise<any>")]
    pub fn transaction(
        &self,
        #[wasm_bindgen(unchecked_param_type = "object[] | object")] entries: JsValue,
        options: Option<RequestOptions>,
    ) -> Promise {
        self.send(
            FhirRequest::bundle(BundleKind::Transaction, &JsJson(entries)),
            or_undefined(options),
        )
    }

    /// Any request to the FHIR server, with the token: `path` relative to the base.
    #[wasm_bindgen(unchecked_return_type = "Promise<any>")]
    pub fn request(&self, path: String, init: Option<FhirRequestInit>) -> Promise {
        let init = or_undefined(init);
        match request_call(path, &init) {
            Ok(request) => self.call(Call::Send(request, init)),
            Err(error) => Promise::reject(&error),
        }
    }

    /// `client.patient()` reads the Patient in context; `client.patient.search(…)`
    /// searches that patient's record (helpers.js).
    #[wasm_bindgen(getter, unchecked_return_type = "PatientApi")]
    pub fn patient(&self) -> JsValue {
        let missing = self.inner.context_read(InContext::Patient).err();
        patient_api(
            SmartClient {
                inner: self.inner.clone(),
            },
            self.patient_id(),
            or_undefined(missing.map(to_js_error)),
        )
    }

    /// The Encounter in context.
    #[wasm_bindgen(unchecked_return_type = "Promise<any>")]
    pub fn encounter(&self, options: Option<RequestOptions>) -> Promise {
        self.send(
            self.inner.context_read(InContext::Encounter),
            or_undefined(options),
        )
    }

    /// The user (the verified id_token's fhirUser).
    #[wasm_bindgen(unchecked_return_type = "Promise<any>")]
    pub fn user(&self, options: Option<RequestOptions>) -> Promise {
        self.send(self.inner.context_read(InContext::User), or_undefined(options))
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
