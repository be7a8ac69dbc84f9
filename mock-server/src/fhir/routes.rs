//! The RESTful interactions over HTTP: each handler turns its request into a
//! [`Call`], has [`rest`](super::rest) perform it, and renders the [`Reply`] with
//! `ETag`, `Location`, `Last-Modified` and `Prefer: return=minimal` as the spec says.

use std::collections::HashMap;
use std::io::Write;

use axum::extract::{FromRequestParts, OriginalUri, Path, RawForm, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
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
fn answer(state: &AppState, access: &AccessContext, base: &FhirBase, call: Call, asked: &Asked) -> Answer {
    let reply = rest::perform(state, access, base, call)?;
    Ok(render(base, reply, asked))
}

fn render(base: &FhirBase, reply: Reply, asked: &Asked) -> Response {
    let status = reply.status();
    match reply {
        Reply::Bundle(bytes) => fhir_text(status, bytes),
        Reply::Deleted(version) => {
            let mut response = status.into_response();
            if let Some(version) = version {
                insert(&mut response, header::ETAG, version.etag().as_str());
            }
            response
        }
        Reply::Found(version) => {
            if asked
                .if_none_match
                .as_ref()
                .is_some_and(|tag| tag.as_bytes() == version.etag().as_str().as_bytes())
            {
                let mut response = StatusCode::NOT_MODIFIED.into_response();
                insert(&mut response, header::ETAG, version.etag().as_str());
                return response;
            }
            resource(status, &version)
        }
        Reply::Written { version, .. } => {
            let mut response = if asked.minimal {
                status.into_response()
            } else {
                resource(status, &version)
            };
            let (kind, id) = version.key();
            let location = format!("{}/{kind}/{id}/_history/{}", base.as_str(), version.version_id);
            insert(&mut response, header::LOCATION, &location);
            insert(&mut response, header::ETAG, version.etag().as_str());
            response
        }
    }
}

/// A resource with its `ETag` and `Last-Modified`.
fn resource(status: StatusCode, version: &Version) -> Response {
    let mut response = fhir_text(status, version.json.clone());
    insert(&mut response, header::ETAG, version.etag().as_str());
    // httpdate writes the IMF-fixdate directly (chrono's strftime parses its
    // pattern on every call, a visible share of a read), here into a buffer on the
    // stack: the header copies it once, as it must. The date is always 29 bytes.
    let modified = httpdate::HttpDate::from(std::time::SystemTime::from(version.last_updated));
    let mut text = [0; 29];
    if write!(&mut text[..], "{modified}").is_ok()
        && let Ok(value) = HeaderValue::from_bytes(&text)
    {
        response.headers_mut().insert(header::LAST_MODIFIED, value);
    }
    response
}

/// Sets a header. Copied from a `&str` into exactly the bytes it needs: a `String`
/// made with `format!` has room to spare, and the header would allocate again to
/// share it.
fn insert(response: &mut Response, name: HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
}

pub(crate) fn query_pairs(query: Option<&str>) -> Result<Query, Outcome> {
    serde_urlencoded::from_str(query.unwrap_or_default())
        .map_err(|e| Outcome::invalid(format!("malformed query string: {e}")))
}

/// The headers that shape an interaction: its conditions (`If-Match`,
/// `If-None-Match`, `If-None-Exist`) and preferences (`Prefer`). Read in place:
/// a handler taking the whole `HeaderMap` would clone it on every request.
pub(crate) struct Asked {
    if_match: Option<HeaderValue>,
    if_none_match: Option<HeaderValue>,
    if_none_exist: Option<HeaderValue>,
    content_type: Option<HeaderValue>,
    /// `Prefer: return=minimal`: a write answers without the resource.
    minimal: bool,
    /// `Prefer: handling=lenient`: a search ignores parameters it does not know.
    lenient: bool,
}

impl<S: Sync> FromRequestParts<S> for Asked {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        // Names made once: a name given as text is parsed again on every lookup.
        const PREFER: HeaderName = HeaderName::from_static("prefer");
        const IF_NONE_EXIST: HeaderName = HeaderName::from_static("if-none-exist");
        let headers = &parts.headers;
        let mut asked = Asked {
            if_match: headers.get(header::IF_MATCH).cloned(),
            if_none_match: headers.get(header::IF_NONE_MATCH).cloned(),
            if_none_exist: headers.get(IF_NONE_EXIST).cloned(),
            content_type: headers.get(header::CONTENT_TYPE).cloned(),
            minimal: false,
            lenient: false,
        };
        // `Prefer: return=minimal, handling=lenient` (RFC 7240), in one header or several.
        let preferences = headers
            .get_all(PREFER)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split([',', ';']));
        for preference in preferences {
            let is = |wanted: &str| preference.chars().filter(|c| *c != ' ').eq(wanted.chars());
            asked.minimal |= is("return=minimal");
            asked.lenient |= is("handling=lenient");
        }
        Ok(asked)
    }
}

impl Asked {
    /// `If-Match: W/"3"` → 3.
    fn if_match(&self) -> Result<Option<u64>, Outcome> {
        self.if_match
            .as_ref()
            .map(|value| rest::version_tag(value.to_str().unwrap_or_default()).map_err(|e| e.at("If-Match")))
            .transpose()
    }

    /// `If-None-Exist: identifier=…` (a search, with or without its `?`).
    fn if_none_exist(&self) -> Result<Option<Query>, Outcome> {
        self.if_none_exist
            .as_ref()
            .map(|value| {
                let text = value
                    .to_str()
                    .map_err(|_| Outcome::invalid("If-None-Exist is not text").at("If-None-Exist"))?;
                query_pairs(Some(text.trim_start_matches('?'))).map_err(|e| e.at("If-None-Exist"))
            })
            .transpose()
    }

    fn form_encoded(&self) -> bool {
        self.content_type
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
    }
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
    asked: Asked,
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
    answer(&state, &access, &base, call, &asked)
}

pub(crate) async fn vread(
    State(state): State<AppState>,
    Authorized(access): Authorized,
    base: FhirBase,
    Path((kind, id, version)): Path<(String, String, String)>,
    asked: Asked,
) -> Answer {
    answer(
        &state,
        &access,
        &base,
        Call::Lookup(Lookup::Vread { kind, id, version }),
        &asked,
    )
}

/// `GET {type}/{id}/$operation`.
pub(crate) async fn instance_operation(
    State(state): State<AppState>,
    Authorized(access): Authorized,
    base: FhirBase,
    Path((kind, id, operation)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
    asked: Asked,
) -> Answer {
    let Some(name) = operation.strip_prefix('$') else {
        return Err(Outcome::not_found(format!(
            "no FHIR interaction at {kind}/{id}/{operation}"
        )));
    };
    let call = rest::operation(&kind, Some(id), name, query_pairs(query.as_deref())?)?;
    answer(&state, &access, &base, Call::Lookup(call), &asked)
}

/// `_history` of `{type}/{id}`, of `{type}`, or of the server: the path says which.
pub(crate) async fn history(
    State(state): State<AppState>,
    Authorized(access): Authorized,
    base: FhirBase,
    Path(mut params): Path<HashMap<String, String>>,
    RawQuery(query): RawQuery,
    asked: Asked,
) -> Answer {
    let call = Lookup::History {
        kind: params.remove("kind"),
        id: params.remove("id"),
        query: query_pairs(query.as_deref())?,
    };
    answer(&state, &access, &base, Call::Lookup(call), &asked)
}

pub(crate) async fn search_get(
    State(state): State<AppState>,
    Authorized(access): Authorized,
    base: FhirBase,
    Path(kind): Path<String>,
    RawQuery(query): RawQuery,
    asked: Asked,
) -> Answer {
    let query = query_pairs(query.as_deref())?;
    search(&state, &access, &base, kind, query, &asked)
}

/// A search, `Prefer: handling=lenient` honoured.
fn search(
    state: &AppState,
    access: &AccessContext,
    base: &FhirBase,
    kind: String,
    query: Query,
    asked: &Asked,
) -> Answer {
    let lenient = asked.lenient;
    answer(
        state,
        access,
        base,
        Call::Lookup(Lookup::Search { kind, query, lenient }),
        asked,
    )
}

/// `POST {type}/_search`: parameters in a form body (and the query string).
pub(crate) async fn search_post(
    State(state): State<AppState>,
    Authorized(access): Authorized,
    base: FhirBase,
    Path(kind): Path<String>,
    RawQuery(query): RawQuery,
    asked: Asked,
    RawForm(form): RawForm,
) -> Answer {
    if !asked.form_encoded() && !form.is_empty() {
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
    search(&state, &access, &base, kind, query, &asked)
}

pub(crate) async fn create(
    State(state): State<AppState>,
    Authorized(access): Authorized,
    base: FhirBase,
    Path(kind): Path<String>,
    asked: Asked,
    ResourceBody(resource): ResourceBody,
) -> Answer {
    let call = Change::Create {
        kind,
        id: super::new_id(),
        resource,
        if_none_exist: asked.if_none_exist()?,
    };
    answer(&state, &access, &base, Call::Change(call), &asked)
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
    asked: Asked,
    ResourceBody(resource): ResourceBody,
) -> Answer {
    let if_match = asked.if_match()?;
    let call = Change::Update {
        kind,
        target,
        resource,
        if_match,
    };
    answer(&state, &access, &base, Call::Change(call), &asked)
}

/// `PATCH {type}/{id}` or `PATCH {type}?criteria`.
pub(crate) async fn patch(
    State(state): State<AppState>,
    Authorized(access): Authorized,
    base: FhirBase,
    Addressed { kind, target }: Addressed,
    asked: Asked,
    PatchBody(patch): PatchBody,
) -> Answer {
    let if_match = asked.if_match()?;
    let call = Change::Patch {
        kind,
        target,
        patch,
        if_match,
    };
    answer(&state, &access, &base, Call::Change(call), &asked)
}

/// `DELETE {type}/{id}` or `DELETE {type}?criteria`.
pub(crate) async fn delete(
    State(state): State<AppState>,
    Authorized(access): Authorized,
    base: FhirBase,
    Addressed { kind, target }: Addressed,
    asked: Asked,
) -> Answer {
    let if_match = asked.if_match()?;
    let call = Change::Delete {
        kind,
        target,
        if_match,
    };
    answer(&state, &access, &base, Call::Change(call), &asked)
}

/// `POST` to the base: a batch or transaction Bundle.
pub(crate) async fn bundle(
    State(state): State<AppState>,
    Authorized(access): Authorized,
    base: FhirBase,
    asked: Asked,
    ResourceBody(bundle): ResourceBody,
) -> Answer {
    let response = super::transaction::process(&state, &access, &base, bundle, asked.minimal)?;
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
