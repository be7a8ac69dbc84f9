//! The JavaScript API in headless Chromium (`wasm-pack test --headless --chrome`)
//! against the ccri-mock that `make test` starts; its FHIR base comes in at build
//! time as `CCRI_MOCK_FHIR`.
//!
//! A launch is completed without a person: the test registers a client with the
//! mock's `skip_login` and `skip_auth` switches, and follows the authorize URL with
//! `fetch`, which reads where the redirects end. (An iframe cannot: the test
//! runner's page is cross-origin isolated, so it may not embed the mock's pages.)
//! The redirect_uri is the mock's own CORS-enabled `metadata`, so every hop is
//! readable; `ready()` only needs the callback URL's query.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use js_sys::{Promise, Reflect};
use sha2::Digest;
use smart_fhir_client::web::{SmartClient, authorize, client_credentials, register};
use wasm_bindgen::convert::TryFromJsValue;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

const FHIR: &str = match option_env!("CCRI_MOCK_FHIR") {
    Some(url) => url,
    None => "http://127.0.0.1:18090/ccri-fhir/R4",
};
/// Mocks that sign with PS256 and ES256, also started by `make test`.
const PS256_FHIR: &str = match option_env!("CCRI_MOCK_PS256_FHIR") {
    Some(url) => url,
    None => "http://127.0.0.1:18091/ccri-fhir/R4",
};
const ES256_FHIR: &str = match option_env!("CCRI_MOCK_ES256_FHIR") {
    Some(url) => url,
    None => "http://127.0.0.1:18092/ccri-fhir/R4",
};

fn obj(pairs: &[(&str, JsValue)]) -> JsValue {
    let object = js_sys::Object::new();
    for (key, value) in pairs {
        Reflect::set(&object, &(*key).into(), value).unwrap();
    }
    object.into()
}

fn get(value: &JsValue, path: &str) -> JsValue {
    path.split('.')
        .fold(value.clone(), |v, key| match key.parse::<u32>() {
            Ok(index) => Reflect::get_u32(&v, index).unwrap(),
            Err(_) => Reflect::get(&v, &key.into()).unwrap(),
        })
}

/// `ready(options)`, and the SmartClient it resolves to.
async fn ready(options: JsValue) -> Result<SmartClient, JsValue> {
    let client = smart_fhir_client::web::ready(Some(options.unchecked_into())).await?;
    Ok(SmartClient::try_from_js_value(client).expect("ready() resolves to a SmartClient"))
}

/// The `code` of a SmartError.
fn code_of(error: &JsValue) -> String {
    get(error, "code").as_string().unwrap_or_default()
}

fn redirect_uri() -> String {
    redirect_uri_at(FHIR)
}

fn redirect_uri_at(fhir: &str) -> String {
    format!("{fhir}/metadata")
}

async fn register_test_client() -> String {
    register_test_client_at(FHIR).await
}

async fn register_test_client_at(fhir: &str) -> String {
    register_test_client_as(fhir, "bernie").await
}

/// A public client whose launches log `user` in without a form.
async fn register_test_client_as(fhir: &str, user: &str) -> String {
    let metadata = obj(&[
        ("client_name", "wasm tests".into()),
        (
            "redirect_uris",
            js_sys::Array::of1(&redirect_uri_at(fhir).into()).into(),
        ),
        ("token_endpoint_auth_method", "none".into()),
        ("skip_login", user.into()),
        ("skip_auth", true.into()),
    ]);
    let registration = register(fhir.into(), metadata).await.unwrap();
    get(&registration, "client_id").as_string().unwrap()
}

async fn authorize_url(client_id: &str, scope: &str) -> String {
    authorize_url_in(client_id, scope, JsValue::UNDEFINED).await
}

async fn authorize_url_in(client_id: &str, scope: &str, storage: JsValue) -> String {
    authorize_url_at(FHIR, client_id, scope, storage).await
}

async fn authorize_url_at(fhir: &str, client_id: &str, scope: &str, storage: JsValue) -> String {
    let options = obj(&[
        ("iss", fhir.into()),
        ("clientId", client_id.into()),
        ("scope", scope.into()),
        ("redirectUri", redirect_uri_at(fhir).into()),
        ("noRedirect", true.into()),
        ("storage", storage),
    ]);
    authorize(options).await.unwrap().as_string().unwrap()
}

/// Follows `url` through its redirects and returns where it ends.
async fn land(url: &str) -> String {
    let response = JsFuture::from(web_sys::window().unwrap().fetch_with_str(url))
        .await
        .unwrap();
    response.unchecked_into::<web_sys::Response>().url()
}

async fn launched(scope: &str) -> SmartClient {
    launched_at(FHIR, scope).await
}

async fn launched_at(fhir: &str, scope: &str) -> SmartClient {
    launched_as(fhir, "bernie", scope).await
}

async fn launched_as(fhir: &str, user: &str, scope: &str) -> SmartClient {
    let client_id = register_test_client_as(fhir, user).await;
    let callback = land(&authorize_url_at(fhir, &client_id, scope, JsValue::UNDEFINED).await).await;
    assert!(callback.starts_with(&redirect_uri_at(fhir)), "{callback}");
    ready(obj(&[("url", callback.into())])).await.unwrap()
}

async fn resolve(promise: Promise) -> Result<JsValue, JsValue> {
    JsFuture::from(promise).await
}

#[wasm_bindgen_test]
async fn authorize_url_has_pkce_s256_and_state() {
    let url = authorize_url("demo-app", "launch/patient patient/*.rs").await;
    assert!(
        url.starts_with(FHIR.replace("/ccri-fhir/R4", "/ccri-auth/authorize").as_str()),
        "{url}"
    );
    for part in ["code_challenge_method=S256", "code_challenge=", "state=", "aud="] {
        assert!(url.contains(part), "{url}");
    }

    // The challenge WebCrypto made is BASE64URL(SHA256(verifier)) of the verifier
    // stored for this launch's state, checked here with the sha2 crate.
    let query = url.split_once('?').unwrap().1;
    let param = |name: &str| {
        let mut pairs = form_urlencoded::parse(query.as_bytes());
        pairs.find(|(k, _)| k == name).unwrap().1.into_owned()
    };
    let session = web_sys::window().unwrap().session_storage().unwrap().unwrap();
    let stored = session
        .get_item(&format!("smart-fhir-client:launch:{}", param("state")))
        .unwrap()
        .expect("the launch is stored under its state");
    let verifier = get(&js_sys::JSON::parse(&stored).unwrap(), "code_verifier")
        .as_string()
        .unwrap();
    assert_eq!(verifier.len(), 43);
    let expected = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    assert_eq!(param("code_challenge"), expected);
}

#[wasm_bindgen_test]
async fn launch_read_search_page_and_refresh() {
    let client = launched("openid fhirUser launch/patient offline_access patient/*.rs").await;
    let state = client.state();
    assert_eq!(get(&state, "patient").as_string().as_deref(), Some("1"));
    assert_eq!(get(&state, "needPatientBanner").as_bool(), Some(true));
    assert!(
        get(&state, "fhirUser")
            .as_string()
            .unwrap()
            .ends_with("/Patient/1")
    );
    assert_eq!(client.patient_id().as_deref(), Some("1"));

    let read_patient: js_sys::Function = client.patient().unchecked_into();
    let patient = resolve(read_patient.call0(&JsValue::NULL).unwrap().unchecked_into())
        .await
        .unwrap();
    assert_eq!(
        get(&patient, "name.0.family").as_string().as_deref(),
        Some("Kanfeld")
    );
    let params = obj(&[("patient", "1".into()), ("_count", 10.into())]);
    let bundle = resolve(client.search("Observation".into(), Some(params.unchecked_into()), None))
        .await
        .unwrap();
    assert_eq!(get(&bundle, "total").as_f64(), Some(41.0));
    let second = resolve(client.next_page(bundle, None)).await.unwrap();
    assert_eq!(
        get(&second, "entry.0.resource.resourceType")
            .as_string()
            .as_deref(),
        Some("Observation")
    );

    let before = get(&client.state(), "accessToken").as_string();
    resolve(client.refresh()).await.unwrap();
    assert_ne!(get(&client.state(), "accessToken").as_string(), before);
    assert_eq!(
        get(
            &resolve(client.read("Patient".into(), "1".into(), None))
                .await
                .unwrap(),
            "id"
        )
        .as_string()
        .as_deref(),
        Some("1")
    );
}

#[wasm_bindgen_test]
async fn errors_are_js_errors_with_codes() {
    let client = launched("launch/patient patient/Patient.rs").await;
    let error = resolve(client.search("Observation".into(), None, None))
        .await
        .unwrap_err();
    assert!(error.is_instance_of::<js_sys::Error>());
    assert_eq!(code_of(&error), "http_403");
    assert_eq!(
        get(&error, "body.resourceType").as_string().as_deref(),
        Some("OperationOutcome")
    );

    let forged = format!("{}?code=abc&state=forged", redirect_uri());
    let Err(error) = ready(obj(&[("url", forged.into())])).await else {
        panic!("accepted")
    };
    assert_eq!(code_of(&error), "state_mismatch");
    assert_eq!(get(&error, "name").as_string().as_deref(), Some("SmartError"));

    // Bad arguments reject the promise, as every other failure does.
    let params = obj(&[("patient", js_sys::Object::new().into())]);
    let error = resolve(client.search("Observation".into(), Some(params.unchecked_into()), None))
        .await
        .unwrap_err();
    assert_eq!(code_of(&error), "invalid_options");
    let init = obj(&[("method", "TRACE".into())]);
    let error = resolve(client.request("Patient/1".into(), Some(init.unchecked_into())))
        .await
        .unwrap_err();
    assert_eq!(code_of(&error), "invalid_options");

    // No server answers on port 9: fetch itself fails.
    let options = obj(&[
        ("tokenUrl", "http://127.0.0.1:9/token".into()),
        ("clientId", "nobody".into()),
        ("clientSecret", "secret".into()),
    ]);
    let error = resolve(client_credentials(options)).await.unwrap_err();
    assert_eq!(code_of(&error), "network_error");
    let message = get(&error, "message").as_string().unwrap();
    assert!(message.contains("no response from the server: "), "{message}");
}

#[wasm_bindgen_test]
async fn bad_options_and_no_session() {
    let options = obj(&[
        ("iss", FHIR.into()),
        ("clientId", "demo-app".into()),
        ("scope", "launch/patient".into()),
        ("storage", "cookies".into()),
        ("noRedirect", true.into()),
    ]);
    let error = authorize(options).await.unwrap_err();
    assert_eq!(code_of(&error), "invalid_options");
    let missing = obj(&[("iss", FHIR.into()), ("scope", "launch/patient".into())]);
    let error = authorize(missing).await.unwrap_err();
    assert!(get(&error, "message").as_string().unwrap().contains("clientId"));

    let nothing = obj(&[("url", redirect_uri().into()), ("storage", "memory".into())]);
    let Err(error) = ready(nothing).await else {
        panic!("a session from nowhere")
    };
    assert_eq!(code_of(&error), "no_session");
}

#[wasm_bindgen_test]
async fn two_launches_in_session_storage_do_not_mix() {
    let client_id = register_test_client().await;
    let first = authorize_url(&client_id, "launch/patient patient/*.rs").await;
    let second = authorize_url(&client_id, "launch/patient patient/Patient.rs").await;
    let second_done = ready(obj(&[("url", land(&second).await.into())])).await.unwrap();
    let first_done = ready(obj(&[("url", land(&first).await.into())])).await.unwrap();
    assert_eq!(
        get(&second_done.state(), "scope").as_string().as_deref(),
        Some("launch/patient patient/Patient.rs")
    );
    assert_eq!(
        get(&first_done.state(), "scope").as_string().as_deref(),
        Some("launch/patient patient/*.rs")
    );
    // Each launch's entry was removed when used.
    let storage = web_sys::window().unwrap().session_storage().unwrap().unwrap();
    for index in 0..storage.length().unwrap() {
        assert!(
            !storage
                .key(index)
                .unwrap()
                .unwrap()
                .starts_with("smart-fhir-client:launch:")
        );
    }
}

#[wasm_bindgen(inline_js = r#"
const check = (ok, what) => { if (!ok) throw new Error(what); };
const codeOf = (promise) => promise.then(() => "resolved", (e) => e.code);

// The FHIR API as an app writes it; throws at the first thing that is not so.
export async function fhirApi(client) {
  const mood = { resourceType: "Observation", status: "final", code: { text: "mood" }, subject: { reference: "Patient/1" } };
  const created = await client.create(mood, { includeResponse: true });
  check(created.status === 201 && created.headers.get("ETag") === 'W/"1"', `create: ${created.status} ${created.headers.get("ETag")}`);
  check(created.headers.get("Location").includes(`/Observation/${created.body.id}/_history/1`), "create: Location");
  const id = created.body.id;

  const replace = [{ op: "replace", path: "/status", value: "amended" }];
  const patched = await client.patch("Observation", id, replace, { ifMatch: "1" });
  check(patched.status === "amended" && patched.meta.versionId === "2", "patch with If-Match");
  check((await codeOf(client.patch("Observation", id, replace, { ifMatch: "1" }))) === "http_412", "stale patch");
  check((await codeOf(client.update({ ...created.body, status: "cancelled" }))) === "http_412", "stale update");
  check((await codeOf(client.update({ ...created.body, status: "cancelled" }, { ifMatch: false }))) === "resolved", "unconditional update");
  check((await codeOf(client.request(`Observation/${id}`, { method: "PATCH", body: [{ op: "test", path: "/status", value: "final" }] }))) === "http_422", "failed JSON Patch test");

  const batch = await client.batch([{ request: { method: "GET", url: "Patient/1" } }, { request: { method: "GET", url: "Patient/3" } }]);
  check(batch.type === "batch-response", "batch type");
  check(batch.entry[0].response.status.startsWith("200") && batch.entry[1].response.status.startsWith("403"), "batch answers each entry");
  const transaction = await client.transaction({ resourceType: "Bundle", type: "transaction", entry: [{ request: { method: "DELETE", url: `Observation/${id}` } }] });
  check(transaction.type === "transaction-response", "transaction");
  check((await codeOf(client.read("Observation", id))) === "http_410", "deleted in the transaction");
  check((await codeOf(client.batch({ resourceType: "Bundle", type: "transaction" }))) === "invalid_options", "batch of a transaction Bundle");

  const controller = new AbortController();
  const pending = client.read("Patient", "1", { signal: controller.signal });
  controller.abort();
  check((await codeOf(pending)) === "aborted", "aborted");
  check((await codeOf(client.read("Patient", "1", { signal: "stop" }))) === "invalid_options", "signal must be an AbortSignal");
  check((await codeOf(client.read("Patient", "1", { headers: { Authorization: "Bearer x" } }))) === "invalid_options", "Authorization is the client's");

  const first = await client.request("Patient/1", { includeResponse: true });
  const again = await client.request("Patient/1", { headers: { "If-None-Match": first.headers.get("ETag") }, includeResponse: true });
  check(again.status === 304 && again.body === null, `If-None-Match: ${again.status}`);

  // References: nested where they can be read, left as they are where they cannot.
  const observation = await client.read("Observation", "obs-1-1", { resolveReferences: ["subject", "encounter", "encounter.subject", "performer"] });
  check(observation.subject.resourceType === "Patient" && observation.encounter.resourceType === "Encounter", "graph");
  check(observation.encounter.subject.resourceType === "Patient", "a path through a resolved reference");
  check(observation.performer[0].reference === "Practitioner/2", "a reference the token may not read stays");
  const { data, references } = await client.search("Observation", { patient: "1", _count: 2 }, { resolveReferences: "encounter", graph: false });
  check(data.entry[0].resource.encounter.reference === "Encounter/enc-1" && references["Encounter/enc-1"].resourceType === "Encounter", "graph: false");
  const included = await client.search("Observation", { _id: "obs-1-1", _include: "Observation:encounter" }, { graph: true });
  check(included.entry[0].resource.encounter.resourceType === "Encounter", "graph nests _include results");

  // client.patient: the patient in context, and searches kept to their record.
  check(client.patient.id === "1" && (await client.patient()).id === "1", "client.patient()");
  const own = await client.patient.search("Observation", { _count: 50, patient: "3" });
  check(own.total === 41 && own.entry.every((e) => e.resource.subject.reference === "Patient/1"), "patient.search");
  const vitals = await client.patient.request("Observation?category=vital-signs&_count=1");
  check(vitals.entry[0].resource.subject.reference === "Patient/1", "patient.request");
  check((await client.patient.search("Patient")).entry[0].resource.id === "1", "patient.search(Patient)");

  let pages = 0;
  for await (const page of client.pages("Observation", { patient: "1", _count: 10 }, { pageLimit: 2 })) pages += page.entry.length > 0;
  check(pages === 2, `pageLimit: ${pages} pages`);
}

// authorize([…]): the first registration whose issMatch matches the launch's iss.
export async function registrations(fhir, clientId, authorize) {
  const common = { iss: fhir, scope: "launch/patient patient/*.rs", redirectUri: `${fhir}/metadata`, noRedirect: true };
  const chosen = (url) => new URL(url).searchParams.get("client_id");
  const list = [
    { ...common, issMatch: "https://elsewhere.example/fhir", clientId: "by-string" },
    { ...common, issMatch: /elsewhere/, clientId: "by-regexp" },
    { ...common, issMatch: (iss) => iss === fhir, clientId },
    { ...common, clientId: "catch-all" },
  ];
  check(chosen(await authorize(list)) === clientId, "the function matched");
  check(chosen(await authorize([{ ...common, issMatch: new RegExp(new URL(fhir).host), clientId: "by-regexp" }])) === "by-regexp", "a RegExp");
  check(chosen(await authorize(list.slice(0, 2).concat(list[3]))) === "catch-all", "no issMatch matches any iss");
  check((await codeOf(authorize(list.slice(0, 2)))) === "iss_not_allowed", "nothing matches");
}

// The id_token's iat and exp against this device's clock, with clockTolerance.
export async function clockSkew(fhir, clientId, authorize, ready) {
  const launch = async (skewSeconds, clockTolerance) => {
    const url = await authorize({
      iss: fhir, clientId, scope: "openid fhirUser launch/patient patient/*.rs",
      redirectUri: `${fhir}/metadata`, noRedirect: true, clockTolerance,
    });
    const callback = (await fetch(url)).url;
    const real = Date.now;
    Date.now = () => real.call(Date) + skewSeconds * 1000;
    try {
      return await ready({ url: callback }).then(() => "ready", (e) => e.code);
    } finally {
      Date.now = real;
    }
  };
  check((await launch(-50)) === "ready", "a clock 50 s slow is within the default 60 s");
  check((await launch(-120)) === "id_token_invalid", "a clock 120 s slow: the id_token is issued in the future");
  check((await launch(-120, 180)) === "ready", "within a tolerance of 180 s");
}

// A session without a patient in context.
export async function noPatient(client) {
  check(client.patient.id === undefined, "no patient id");
  for (const call of [() => client.patient(), () => client.patient.search("Observation"), () => client.patient.request("Observation")]) {
    check((await codeOf(call())) === "no_patient", "no_patient");
  }
}

export function mapStorage() {
  const map = new Map();
  return { map, getItem: (k) => map.get(k) ?? null, setItem: (k, v) => map.set(k, v), removeItem: (k) => map.delete(k) };
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = mapStorage)]
    fn map_storage() -> JsValue;
    #[wasm_bindgen(js_name = fhirApi, catch)]
    async fn fhir_api(client: SmartClient) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(catch)]
    async fn registrations(
        fhir: &str,
        client_id: &str,
        authorize: &js_sys::Function,
    ) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(js_name = clockSkew, catch)]
    async fn clock_skew(
        fhir: &str,
        client_id: &str,
        authorize: &js_sys::Function,
        ready: &js_sys::Function,
    ) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(js_name = noPatient, catch)]
    async fn no_patient(client: SmartClient) -> Result<JsValue, JsValue>;
}

#[wasm_bindgen_test]
async fn several_registrations_pick_by_iss() {
    let client_id = register_test_client().await;
    let authorize = Closure::<dyn Fn(JsValue) -> Promise>::new(authorize);
    if let Err(error) = registrations(FHIR, &client_id, authorize.as_ref().unchecked_ref()).await {
        panic!("{}", get(&error, "message").as_string().unwrap_or_default());
    }
}

#[wasm_bindgen_test]
async fn id_token_times_are_checked_with_the_clock_tolerance() {
    let client_id = register_test_client().await;
    let authorize = Closure::<dyn Fn(JsValue) -> Promise>::new(authorize);
    let ready = Closure::<dyn Fn(JsValue) -> Promise>::new(|options: JsValue| {
        smart_fhir_client::web::ready(Some(options.unchecked_into()))
    });
    let result = clock_skew(
        FHIR,
        &client_id,
        authorize.as_ref().unchecked_ref(),
        ready.as_ref().unchecked_ref(),
    )
    .await;
    if let Err(error) = result {
        panic!("{}", get(&error, "message").as_string().unwrap_or_default());
    }
}

#[wasm_bindgen_test]
async fn the_fhir_api_apps_expect() {
    let client = launched("launch/patient patient/*.cruds").await;
    if let Err(error) = fhir_api(client).await {
        panic!("{}", get(&error, "message").as_string().unwrap_or_default());
    }
    // A practitioner's standalone launch without launch/patient has no patient.
    let client = launched_as(FHIR, "dr.harrison", "openid fhirUser user/*.rs").await;
    if let Err(error) = no_patient(client).await {
        panic!("{}", get(&error, "message").as_string().unwrap_or_default());
    }
}

#[wasm_bindgen_test]
async fn memory_and_custom_storage_keep_launch_and_session_where_asked() {
    let client_id = register_test_client().await;
    // "memory": the page-wide store; ready() without a callback URL resumes from it.
    let url = authorize_url_in(&client_id, "launch/patient patient/*.rs", "memory".into()).await;
    let callback = land(&url).await;
    let in_memory = obj(&[("url", callback.into()), ("storage", "memory".into())]);
    let launched = ready(in_memory).await.unwrap();
    let resumed = ready(obj(&[("storage", "memory".into())])).await.unwrap();
    assert_eq!(
        get(&resumed.state(), "accessToken").as_string(),
        get(&launched.state(), "accessToken").as_string()
    );
    // Signing out empties the store.
    resolve(resumed.revoke()).await.unwrap();
    let Err(error) = ready(obj(&[("storage", "memory".into())])).await else {
        panic!("a session after sign-out")
    };
    assert_eq!(code_of(&error), "no_session");

    // An app's own StorageLike holds the launch, then the session, and nothing else.
    let store = map_storage();
    let url = authorize_url_in(&client_id, "launch/patient patient/*.rs", store.clone()).await;
    let map: js_sys::Map = get(&store, "map").unchecked_into();
    assert_eq!(map.size(), 1);
    let callback = land(&url).await;
    let custom = obj(&[("url", callback.into()), ("storage", store.clone())]);
    let client = ready(custom).await.unwrap();
    // The launch entry was used up; the session and the pointer to the newest are
    // there (this tab's own pointer is in sessionStorage).
    assert_eq!(map.size(), 2);
    let id = get(&client.state(), "id").as_string().unwrap();
    assert_eq!(
        map.get(&"smart-fhir-client:latest".into()).as_string(),
        Some(id.clone())
    );
    let saved = map
        .get(&format!("smart-fhir-client:session:{id}").into())
        .as_string()
        .unwrap();
    assert!(saved.contains(&get(&client.state(), "accessToken").as_string().unwrap()));
}

#[wasm_bindgen(inline_js = r#"
export async function backendKeyPair(kid, alg) {
  const params = alg === "ES384"
    ? { name: "ECDSA", namedCurve: "P-384" }
    : { name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-384" };
  const pair = await crypto.subtle.generateKey(params, true, ["sign", "verify"]);
  const privateJwk = { ...(await crypto.subtle.exportKey("jwk", pair.privateKey)), kid };
  const publicJwk = { ...(await crypto.subtle.exportKey("jwk", pair.publicKey)), kid };
  return { privateJwk, publicJwk };
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = backendKeyPair)]
    async fn backend_key_pair(kid: &str, alg: &str) -> JsValue;
}

/// SMART Backend Services from the browser: WebCrypto signs the assertion, with an
/// RSA key (RS384) and with a P-384 key (ES384).
#[wasm_bindgen_test]
async fn client_credentials_with_a_private_key() {
    for alg in ["RS384", "ES384"] {
        backend_service(alg).await;
    }
    let neither = obj(&[("iss", FHIR.into()), ("clientId", "x".into())]);
    let error = client_credentials(neither).await.unwrap_err();
    assert_eq!(code_of(&error), "invalid_options");
}

async fn backend_service(alg: &str) {
    let keys = backend_key_pair("wasm-backend", alg).await;
    let metadata = obj(&[
        ("client_name", "wasm backend".into()),
        (
            "grant_types",
            js_sys::Array::of1(&"client_credentials".into()).into(),
        ),
        ("token_endpoint_auth_method", "private_key_jwt".into()),
        (
            "jwks",
            obj(&[("keys", js_sys::Array::of1(&get(&keys, "publicJwk")).into())]),
        ),
        ("scope", "system/Patient.rs".into()),
    ]);
    let client_id = get(&register(FHIR.into(), metadata).await.unwrap(), "client_id");
    let options = obj(&[
        ("iss", FHIR.into()),
        ("clientId", client_id),
        ("privateJwk", get(&keys, "privateJwk")),
        ("scope", "system/Patient.rs".into()),
    ]);
    let token = client_credentials(options).await.unwrap();
    assert_eq!(get(&token, "token_type").as_string().as_deref(), Some("Bearer"));
    assert!(get(&token, "expires_in").as_f64().unwrap() <= 300.0, "{alg}");
}

/// WebCrypto's RSA-PSS and ECDSA parameters, against servers that sign that way.
#[wasm_bindgen_test]
async fn id_tokens_signed_ps256_and_es256_are_verified_with_webcrypto() {
    for (fhir, alg) in [(PS256_FHIR, "PS256"), (ES256_FHIR, "ES256")] {
        let client = launched_at(fhir, "openid fhirUser patient/*.rs").await;
        let state = client.state();
        let id_token = get(&state, "idToken").as_string().unwrap();
        let header = URL_SAFE_NO_PAD
            .decode(id_token.split('.').next().unwrap())
            .unwrap();
        let header = js_sys::JSON::parse(&String::from_utf8(header).unwrap()).unwrap();
        assert_eq!(get(&header, "alg").as_string().as_deref(), Some(alg));
        assert_eq!(
            get(&state, "fhirUser").as_string(),
            Some(format!("{fhir}/Patient/1")),
            "{alg}"
        );
    }
}
