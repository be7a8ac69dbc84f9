//! The inspector: the last requests that reached the auth server or the FHIR API,
//! newest first, so a developer sees what their app actually sent and what it got.
//! `GET {auth}/inspector` shows them (filter with `?client_id=`), and
//! `GET {auth}/inspector/requests` returns the same records as JSON for tests.
//!
//! Each record is the method, the path with its query, the status, the time taken,
//! what went wrong as the response said it (an OAuth error, an OperationOutcome's
//! diagnostics, a refused bearer token: the renderers of those attach a
//! [`Problem`]) and the client the request names (its bearer token's `client_id`, a `client_id`
//! parameter, or Basic credentials). Secrets never reach a record: the values of
//! code, token, secret, verifier, assertion and password parameters are replaced
//! by `[redacted]`, and no header or body is kept.
//!
//! Each record also lists its [lints](crate::lint): what is wrong with the request
//! and which spec says so.
//!
//! The records live in a ring buffer (`inspector_size`, 2,000 by default; 0 turns
//! the inspector off), behind the small API below.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use askama::Template;
use axum::extract::{Query, Request, State};
use axum::http::{Extensions, HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::lint::{self, Found, Lints, Severity};
use crate::state::AppState;

/// Query parameters whose values are credentials.
const SECRET_PARAMS: [&str; 12] = [
    "code",
    "code_verifier",
    "access_token",
    "refresh_token",
    "id_token",
    "token",
    "client_secret",
    "client_assertion",
    "password",
    "registration_access_token",
    "assertion",
    "launch",
];

/// One request as the inspector shows it (and as `…/inspector/requests` returns it).
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Record {
    pub(crate) id: u64,
    /// RFC 3339, milliseconds.
    pub(crate) at: String,
    pub(crate) method: String,
    /// Path and query, secrets redacted.
    pub(crate) path: String,
    pub(crate) status: u16,
    pub(crate) duration_ms: f64,
    pub(crate) client_id: Option<String>,
    /// The error the response carried, e.g. `invalid_grant: code expired`.
    pub(crate) problem: Option<String>,
    /// What is wrong with the request, by [`crate::lint`].
    pub(crate) lints: Vec<LintRecord>,
}

/// A lint as a record shows it.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct LintRecord {
    pub(crate) id: &'static str,
    pub(crate) severity: Severity,
    pub(crate) message: &'static str,
    pub(crate) spec: &'static str,
    /// What in the request it is about.
    pub(crate) detail: String,
}

/// What went wrong, as an error response says it: its renderer attaches this to the
/// response's extensions for the inspector to keep.
#[derive(Clone, Debug)]
pub(crate) struct Problem(pub(crate) String);

impl Problem {
    /// Attaches `code: description` to `response`.
    pub(crate) fn attach(response: &mut Response, code: &str, description: &str) {
        response
            .extensions_mut()
            .insert(Problem(format!("{code}: {description}")));
    }
}

/// What is kept per request. Secrets are redacted here, on the request path, so
/// that none is ever held in the buffer (a query with one is re-encoded; a bearer
/// token is not parsed again, its check notes the client); times and the rest are
/// formatted into a [`Record`] only when someone looks.
#[derive(Debug)]
struct Entry {
    id: u64,
    at: SystemTime,
    method: Method,
    path: String,
    status: u16,
    duration: Duration,
    client_id: Option<String>,
    problem: Option<String>,
    lints: Vec<Found>,
}

impl Entry {
    fn record(&self) -> Record {
        Record {
            id: self.id,
            at: chrono::DateTime::<chrono::Utc>::from(self.at)
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            method: self.method.to_string(),
            path: self.path.clone(),
            status: self.status,
            duration_ms: self.duration.as_secs_f64() * 1_000.0,
            client_id: self.client_id.clone(),
            problem: self.problem.clone(),
            lints: self
                .lints
                .iter()
                .map(|found| LintRecord {
                    id: found.lint.id(),
                    severity: found.lint.severity(),
                    message: found.lint.advice(),
                    spec: found.lint.spec(),
                    detail: found.detail.clone(),
                })
                .collect(),
        }
    }
}

/// The ring buffer of requests.
#[derive(Debug)]
pub(crate) struct Inspector {
    capacity: usize,
    entries: Mutex<(u64, VecDeque<Entry>)>,
}

impl Inspector {
    pub(crate) fn new(capacity: usize) -> Self {
        Inspector {
            capacity,
            entries: Mutex::new((0, VecDeque::with_capacity(capacity.min(4_096)))),
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.capacity > 0
    }

    /// Keeps `entry` (its id assigned here), dropping the oldest past capacity.
    fn push(&self, mut entry: Entry) {
        let mut guard = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let (next_id, entries) = &mut *guard;
        *next_id += 1;
        entry.id = *next_id;
        if entries.len() == self.capacity {
            entries.pop_front();
        }
        entries.push_back(entry);
    }

    /// The records, newest first, that `filter` lets through.
    pub(crate) fn recent(&self, filter: &Filter) -> Vec<Record> {
        let guard = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let client_id = filter.client();
        guard
            .1
            .iter()
            .rev()
            .filter(|e| client_id.is_none_or(|id| e.client_id.as_deref() == Some(id)))
            .filter(|e| !filter.problems || e.status >= 400 || !e.lints.is_empty())
            .map(Entry::record)
            .collect()
    }

    /// Forgets every record (the ids go on counting).
    fn clear(&self) {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).1.clear();
    }
}

/// Where the bearer-token check of a request notes the client it verified, so the
/// inspector need not parse the token again (a request extension).
#[derive(Clone, Debug, Default)]
pub(crate) struct ClientSlot(Arc<OnceLock<String>>);

impl ClientSlot {
    /// Notes `client_id` on the request `extensions` carry, if the inspector asked.
    pub(crate) fn note(extensions: &Extensions, client_id: &str) {
        if let Some(slot) = extensions.get::<ClientSlot>() {
            let _ = slot.0.set(client_id.to_owned());
        }
    }
}

/// Records every request but the inspector's own (a layer over the whole app).
pub(crate) async fn record(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    if !state.inspector.enabled() || request.uri().path().contains("/ccri-auth/inspector") {
        return next.run(request).await;
    }
    let (at, started) = (SystemTime::now(), Instant::now());
    let method = request.method().clone();
    // The query, parsed once for the redaction, the lints and the client.
    let params: Option<Vec<(String, String)>> = request
        .uri()
        .query()
        .map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect());
    let params = params.as_deref();
    let path = redacted(request.uri().path(), params);
    let mut lints = lint::of_request(
        &method,
        request.uri().path(),
        params.unwrap_or_default(),
        request.headers(),
        &state.urls.fhir_base,
    );
    let named = client_named(request.headers(), params.unwrap_or_default());
    let slot = ClientSlot::default();
    request.extensions_mut().insert(slot.clone());
    let response = next.run(request).await;
    if let Some(found) = response.extensions().get::<Lints>() {
        lints.extend(found.0.iter().cloned());
    }
    state.inspector.push(Entry {
        id: 0,
        at,
        method,
        path,
        status: response.status().as_u16(),
        duration: started.elapsed(),
        client_id: slot.0.get().cloned().or(named),
        problem: response.extensions().get::<Problem>().map(|p| p.0.clone()),
        lints,
    });
    response
}

/// `path?query` with the values of secret parameters replaced.
fn redacted(path: &str, params: Option<&[(String, String)]>) -> String {
    let Some(params) = params else {
        return path.to_owned();
    };
    let pairs = params.iter().map(|(name, value)| {
        let value = if SECRET_PARAMS.contains(&name.as_str()) {
            "[redacted]"
        } else {
            value.as_str()
        };
        (name, value)
    });
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    format!("{path}?{query}")
}

/// The client a request names in Basic credentials or a `client_id` parameter, for
/// display only (nothing is verified here). A bearer token's client is noted by
/// its verification instead ([`ClientSlot`]).
fn client_named(headers: &HeaderMap, params: &[(String, String)]) -> Option<String> {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let from_header = authorization
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .and_then(|(_, credentials)| {
            base64::engine::general_purpose::STANDARD
                .decode(credentials.trim())
                .ok()
        })
        .and_then(|pair| String::from_utf8(pair).ok())
        .and_then(|pair| pair.split_once(':').map(|(id, _)| id.to_owned()));
    from_header.or_else(|| {
        params
            .iter()
            .find(|(name, _)| name == "client_id")
            .map(|(_, value)| value.clone())
    })
}

/// Which records to show: one client's, and only those with a problem (an error
/// status or a lint).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Filter {
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default, deserialize_with = "checkbox")]
    problems: bool,
}

impl Filter {
    fn client(&self) -> Option<&str> {
        self.client_id.as_deref().filter(|c| !c.is_empty())
    }
}

/// An HTML checkbox's `on`, or `true`/`1` from a script.
fn checkbox<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    let text = String::deserialize(deserializer)?;
    Ok(matches!(text.as_str(), "on" | "true" | "1"))
}

#[derive(Template)]
#[template(path = "inspector.html")]
struct InspectorPage {
    records: Vec<Record>,
    client_id: Option<String>,
    problems: bool,
    enabled: bool,
}

async fn page(State(state): State<AppState>, Query(filter): Query<Filter>) -> Response {
    crate::auth::authorize::render(&InspectorPage {
        records: state.inspector.recent(&filter),
        client_id: filter.client().map(str::to_owned),
        problems: filter.problems,
        enabled: state.inspector.enabled(),
    })
}

async fn requests(State(state): State<AppState>, Query(filter): Query<Filter>) -> Response {
    Json(state.inspector.recent(&filter)).into_response()
}

/// `POST {auth}/inspector/clear`: start afresh, then back to the page.
async fn clear(State(state): State<AppState>) -> Response {
    state.inspector.clear();
    axum::response::Redirect::to("../inspector").into_response()
}

/// Routes relative to the auth base.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/inspector", axum::routing::get(page))
        .route("/inspector/requests", axum::routing::get(requests))
        .route("/inspector/clear", axum::routing::post(clear))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_and_the_buffer_is_bounded() {
        assert_eq!(
            redacted(
                "/ccri-auth/authorize",
                Some(
                    &[
                        ("client_id", "app"),
                        ("code", "abc"),
                        ("state", "s1"),
                        ("access_token", "t")
                    ]
                    .map(|(n, v)| (n.to_owned(), v.to_owned()))
                )
            ),
            "/ccri-auth/authorize?client_id=app&code=%5Bredacted%5D&state=s1&access_token=%5Bredacted%5D"
        );
        let inspector = Inspector::new(3);
        for n in 0..5 {
            inspector.push(Entry {
                id: 0,
                at: SystemTime::now(),
                method: Method::GET,
                path: format!("/{n}"),
                status: 200,
                duration: Duration::ZERO,
                client_id: (n % 2 == 0).then(|| "even".to_owned()),
                problem: None,
                lints: Vec::new(),
            });
        }
        let paths: Vec<String> = inspector
            .recent(&Filter::default())
            .into_iter()
            .map(|r| r.path)
            .collect();
        assert_eq!(paths, ["/4", "/3", "/2"]);
        let even = Filter {
            client_id: Some("even".into()),
            problems: false,
        };
        assert_eq!(inspector.recent(&even).len(), 2);
        let problems = Filter {
            client_id: None,
            problems: true,
        };
        assert!(inspector.recent(&problems).is_empty());
        inspector.clear();
        assert!(inspector.recent(&Filter::default()).is_empty());
    }
}
