//! The RESTful interactions over HTTP: each handler turns its request into a
//! [`Call`], has [`rest`](super::rest) perform it, and renders the [`Reply`] with
//! `ETag`, `Location`, `Last-Modified` and `Prefer: return=minimal` as the spec says.

use std::collections::HashMap;

use axum::extract::{FromRequestParts, OriginalUri, Path, RawForm, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::access::Authorized;
use super::body::{PatchBody, ResourceBody};
use super::outcome::{Outcome, fhir_text};
use super::rest::{self, Call, Change, Lookup, Query, Reply, Target};
use super::store::Version;
use crate::auth::verify::AccessContext;
use crate::state::{AppState, FhirBase};

type Answer = Result<Response, Outcome>;

/// Performs `call` for an HTTP request and renders its reply.
fn answer(
    state: &AppState,
    access: &AccessContext,
    base: &FhirBase,
    call: Call,
    headers: &HeaderMap,
) -> Answer {
    let reply = rest::perform(state, access, base, call)?;
    Ok(render(base, reply, headers))
}

fn render(base: &FhirBase, reply: Reply, headers: &HeaderMap) -> Response {
    let status = reply.status();
    match reply {
        Reply::Bundle(bytes) => fhir_text(status, bytes),
        Reply::Deleted(version) => {
            let mut response = status.into_response();
            if let Some(version) = version {
                insert(&mut response, header::ETAG, version.etag());
            }
            response
        }
        Reply::Found(version) => {
            if headers
                .get(header::IF_NONE_MATCH)
                .is_some_and(|tag| tag.as_bytes() == version.etag().as_bytes())
            {
                let mut response = StatusCode::NOT_MODIFIED.into_response();
                insert(&mut response, header::ETAG, version.etag());
                return response;
            }
            resource(status, &version)
        }
        Reply::Written { version, .. } => {
            let mut response = if prefers(headers, "return=minimal") {
                status.into_response()
            } else {
                resource(status, &version)
            };
            let (kind, id) = version.key();
            let location = format!("{}/{kind}/{id}/_history/{}", base.as_str(), version.version_id);
            insert(&mut response, header::LOCATION, location);
            insert(&mut response, header::ETAG, version.etag());
            response
        }
    }
}

/// A resource with its `ETag` and `Last-Modified`.
fn resource(status: StatusCode, version: &Version) -> Response {
    let mut response = fhir_text(status, version.json.clone());
    insert(&mut response, header::ETAG, version.etag());
    // httpdate writes the IMF-fixdate directly; chrono's strftime parses its
    // pattern on every call, a visible share of a read.
    let modified = httpdate::fmt_http_date(version.last_updated.into());
    insert(&mut response, header::LAST_MODIFIED, modified);
    response
}

/// Sets a header to a value made for it (its text becomes the header's, not copied).
fn insert(response: &mut Response, name: header::HeaderName, value: String) {
    if let Ok(value) = HeaderValue::try_from(value) {
        response.headers_mut().insert(name, value);
    }
}

pub(crate) fn query_pairs(query: Option<&str>) -> Result<Query, Outcome> {
    serde_urlencoded::from_str(query.unwrap_or_default())
        .map_err(|e| Outcome::invalid(format!("malformed query string: {e}")))
}

/// Whether a `Prefer` header asks for `preference` (`return=minimal`, …).
pub(crate) fn prefers(headers: &HeaderMap, preference: &str) -> bool {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.replace(' ', "").split([',', ';']).any(|p| p == preference))
}

/// `If-Match: W/"3"` → 3.
fn if_match(headers: &HeaderMap) -> Result<Option<u64>, Outcome> {
    headers
        .get(header::IF_MATCH)
        .map(|value| rest::version_tag(value.to_str().unwrap_or_default()).map_err(|e| e.at("If-Match")))
        .transpose()
}

/// `If-None-Exist: identifier=…` (a search, with or without its `?`).
fn if_none_exist(headers: &HeaderMap) -> Result<Option<Query>, Outcome> {
    headers
        .get("if-none-exist")
        .map(|value| {
            let text = value
                .to_str()
                .map_err(|_| Outcome::invalid("If-None-Exist is not text").at("If-None-Exist"))?;
            query_pairs(Some(text.trim_start_matches('?'))).map_err(|e| e.at("If-None-Exist"))
        })
        .transpose()
}

/// A conditional update, patch or delete needs criteria in its query string.
fn condition(kind: &str, query: Option<&str>) -> Result<Target, Outcome> {
    let query = query_pairs(query)?;
    if query.is_empty() {
        return Err(Outcome::invalid(format!(
            "a conditional request on {kind} needs search criteria, such as {kind}?identifier=…; \
             to change one resource, name it: {kind}/<id>"
        ))
        .at(kind));
    }
    Ok(Target::Condition(query))
}

pub(crate) async fn read(
    State(state): State<AppState>,
    Authorized(access): Authorized,
    base: FhirBase,
    Path((kind, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Answer {
    let call = match id.strip_prefix('$') {
        Some(operation) => Call::Lookup(rest::operation(
            &kind,
            None,
            operation,
            query_pairs(query.as_deref())?,
        )?),
        None => Call::Lookup(Lookup::Read { kind, id }),
    };
    answer(&state, &access, &base, call, &headers)
}

pub(crate) async fn vread(
    State(state): State<AppState>,
    Authorized(access): Authorized,
    base: FhirBase,
    Path((kind, id, version)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Answer {
    answer(
        &state,
        &access,
        &base,
        Call::Lookup(Lookup::Vread { kind, id, version }),
        &headers,
    )
}

/// `GET {type}/{id}/$operation`.
pub(crate) async fn instance_operation(
    State(state): State<AppState>,
    Authorized(access): Authorized,
    base: FhirBase,
    Path((kind, id, operation)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Answer {
    let Some(name) = operation.strip_prefix('$') else {
        return Err(Outcome::not_found(format!(
            "no FHIR interaction at {kind}/{id}/{operation}"
        )));
    };
    let call = rest::operation(&kind, Some(id), name, query_pairs(query.as_deref())?)?;
    answer(&state, &access, &base, Call::Lookup(call), &headers)
}

/// `_history` of `{type}/{id}`, of `{type}`, or of the server: the path says which.
pub(crate) async fn history(
    State(state): State<AppState>,
    Authorized(access): Authorized,
    base: FhirBase,
    Path(mut params): Path<HashMap<String, String>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Answer {
    let call = Lookup::History {
        kind: params.remove("kind"),
        id: params.remove("id"),
        query: query_pairs(query.as_deref())?,
    };
    answer(&state, &access, &base, Call::Lookup(call), &headers)
}

pub(crate) async fn search_get(
    State(state): State<AppState>,
    Authorized(access): Authorized,
    base: FhirBase,
    Path(kind): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Answer {
    let query = query_pairs(query.as_deref())?;
    search(&state, &access, &base, kind, query, &headers)
}

/// A search, `Prefer: handling=lenient` honoured.
fn search(
    state: &AppState,
    access: &AccessContext,
    base: &FhirBase,
    kind: String,
    query: Query,
    headers: &HeaderMap,
) -> Answer {
    let lenient = prefers(headers, "handling=lenient");
    answer(
        state,
        access,
        base,
        Call::Lookup(Lookup::Search { kind, query, lenient }),
        headers,
    )
}

/// `POST {type}/_search`: parameters in a form body (and the query string).
pub(crate) async fn search_post(
    State(state): State<AppState>,
    Authorized(access): Authorized,
    base: FhirBase,
    Path(kind): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    RawForm(form): RawForm,
) -> Answer {
    let form_encoded = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form_encoded && !form.is_empty() {
        return Err(Outcome::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not-supported",
            "_search takes application/x-www-form-urlencoded parameters",
        ));
    }
    let mut query = query_pairs(query.as_deref())?;
    let body: Query = serde_urlencoded::from_bytes(&form)
        .map_err(|e| Outcome::invalid(format!("malformed form body: {e}")))?;
    query.extend(body);
    search(&state, &access, &base, kind, query, &headers)
}

pub(crate) async fn create(
    State(state): State<AppState>,
    Authorized(access): Authorized,
    base: FhirBase,
    Path(kind): Path<String>,
    headers: HeaderMap,
    ResourceBody(resource): ResourceBody,
) -> Answer {
    let call = Change::Create {
        kind,
        id: super::new_id(),
        resource,
        if_none_exist: if_none_exist(&headers)?,
    };
    answer(&state, &access, &base, Call::Change(call), &headers)
}

/// The resource a change is about: `{type}/{id}`, or the one `{type}?criteria`
/// finds (a conditional update, patch or delete).
pub(crate) struct Addressed {
    kind: String,
    target: Target,
}

impl FromRequestParts<AppState> for Addressed {
    type Rejection = Outcome;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Outcome> {
        let Path(mut params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|e| Outcome::invalid(e.body_text()))?;
        let kind = params.remove("kind").unwrap_or_default();
        let target = match params.remove("id") {
            Some(id) => Target::Id(id),
            None => condition(&kind, parts.uri.query())?,
        };
        Ok(Addressed { kind, target })
    }
}

/// `PUT {type}/{id}` or `PUT {type}?criteria`.
pub(crate) async fn update(
    State(state): State<AppState>,
    Authorized(access): Authorized,
    base: FhirBase,
    Addressed { kind, target }: Addressed,
    headers: HeaderMap,
    ResourceBody(resource): ResourceBody,
) -> Answer {
    let if_match = if_match(&headers)?;
    let call = Change::Update {
        kind,
        target,
        resource,
        if_match,
    };
    answer(&state, &access, &base, Call::Change(call), &headers)
}

/// `PATCH {type}/{id}` or `PATCH {type}?criteria`.
pub(crate) async fn patch(
    State(state): State<AppState>,
    Authorized(access): Authorized,
    base: FhirBase,
    Addressed { kind, target }: Addressed,
    headers: HeaderMap,
    PatchBody(patch): PatchBody,
) -> Answer {
    let if_match = if_match(&headers)?;
    let call = Change::Patch {
        kind,
        target,
        patch,
        if_match,
    };
    answer(&state, &access, &base, Call::Change(call), &headers)
}

/// `DELETE {type}/{id}` or `DELETE {type}?criteria`.
pub(crate) async fn delete(
    State(state): State<AppState>,
    Authorized(access): Authorized,
    base: FhirBase,
    Addressed { kind, target }: Addressed,
    headers: HeaderMap,
) -> Answer {
    let if_match = if_match(&headers)?;
    let call = Change::Delete {
        kind,
        target,
        if_match,
    };
    answer(&state, &access, &base, Call::Change(call), &headers)
}

/// `POST` to the base: a batch or transaction Bundle.
pub(crate) async fn bundle(
    State(state): State<AppState>,
    Authorized(access): Authorized,
    base: FhirBase,
    headers: HeaderMap,
    ResourceBody(bundle): ResourceBody,
) -> Answer {
    let minimal = prefers(&headers, "return=minimal");
    let response = super::transaction::process(&state, &access, &base, bundle, minimal)?;
    Ok(super::outcome::fhir_json(StatusCode::OK, &response))
}

/// Any other path under the FHIR base.
pub(crate) async fn unknown(_: Authorized, OriginalUri(uri): OriginalUri) -> Outcome {
    let path = uri.path();
    if let Some(operation) = path.split('/').find(|segment| segment.starts_with('$')) {
        return rest::unsupported_operation(operation.trim_start_matches('$'));
    }
    Outcome::not_found(format!("no FHIR interaction at {path}"))
}

/// A method the path does not take: an OperationOutcome, not an empty 405.
pub(crate) async fn not_allowed(_: Authorized, method: axum::http::Method, uri: axum::http::Uri) -> Outcome {
    Outcome::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "not-supported",
        format!("{method} is not supported on {}", uri.path()),
    )
}
