//! The inspector: the last requests that reached the auth server or the FHIR API,
//! newest first, so a developer sees what their app actually sent and what it got.
//! `GET {auth}/inspector` shows them (filter with `?client_id=`), and
//! `GET {auth}/inspector/requests` returns the same records as JSON for tests.
//!
//! Each record is the method, the path with its query, the status, the time taken,
//! what went wrong as the response said it (an OAuth error, an OperationOutcome's
//! diagnostics, a refused bearer token: the renderers of those attach a
//! [`Problem`]), the client the request names (its bearer token's `client_id`, a
//! `client_id` parameter, or Basic credentials) and the launch it belongs to: one
//! authorization, from `/authorize` through its pages, the token requests and the
//! FHIR calls made with its tokens (the handlers note it, as a [`LaunchNote`] or through
//! the bearer check's [`note_verified`]). Secrets never reach a record: the values of
//! code, token, secret, verifier, assertion and password parameters, and the
//! credentials of the `Authorization` header, become [`Fingerprint`]s, which match
//! one request to another without revealing anything; no header or body is kept.
//!
//! Pages follow along live through `GET {auth}/inspector/events` (Server-Sent
//! Events), and `GET {auth}/inspector/export.har` is the same records as an HTTP
//! Archive for a bug report or the browser's dev tools.
//!
//! Each record also lists its [lints](crate::lint): what is wrong with the request
//! and which spec says so.
//!
//! The records live in a ring buffer (`inspector_size`, 2,000 by default; 0 turns
//! the inspector off), behind the small API below.

use std::cell::OnceCell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use askama::Template;
use axum::extract::{Query, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use base64::Engine;
use futures_util::future::Either;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tokio::task::futures::TaskLocalFuture;
use tower::{Layer, Service};

use crate::lint::{self, Found, Lint, Lints, Severity};
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

/// A secret's stand-in: the first 10 hex digits of its SHA-256, enough to tell two
/// apart and to match one across requests, never to recover it. Plain bytes, not a
/// `String`: every request makes one or two, and records and lints copy them.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Fingerprint([u8; 10]);

impl Fingerprint {
    pub(crate) fn of(secret: &str) -> Self {
        use sha2::Digest;
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let digest = sha2::Sha256::digest(secret.as_bytes());
        let mut digits = [0; 10];
        for (pair, byte) in digits.chunks_exact_mut(2).zip(&digest) {
            pair.copy_from_slice(&[HEX[usize::from(byte >> 4)], HEX[usize::from(byte & 15)]]);
        }
        Fingerprint(digits)
    }

    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("hex digits")
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Fingerprint {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// One request as the inspector shows it (and as `…/inspector/requests` returns it).
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Record {
    pub(crate) id: u64,
    /// RFC 3339, milliseconds.
    pub(crate) at: String,
    pub(crate) method: String,
    /// Path and query, secret values replaced by `redacted-{fingerprint}`.
    pub(crate) path: String,
    pub(crate) status: u16,
    pub(crate) duration_ms: f64,
    pub(crate) client_id: Option<String>,
    /// The [`Fingerprint`] of the authorization the request belongs to.
    pub(crate) launch: Option<Fingerprint>,
    /// The [`Fingerprint`] of the `Authorization` header's credentials.
    pub(crate) credentials: Option<Fingerprint>,
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

/// The authorization a response belongs to (its id, which a grant and its tokens
/// keep): the auth server's handlers attach it, as [`Problem`]s are attached.
#[derive(Clone, Debug)]
pub(crate) struct LaunchNote(Fingerprint);

impl LaunchNote {
    pub(crate) fn attach(response: &mut Response, authorization_id: &str) {
        response
            .extensions_mut()
            .insert(LaunchNote(Fingerprint::of(authorization_id)));
    }
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
    client_id: Option<Arc<str>>,
    launch: Option<Fingerprint>,
    credentials: Option<Fingerprint>,
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
            client_id: self.client_id.as_deref().map(str::to_owned),
            launch: self.launch,
            credentials: self.credentials,
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
/// What the lints about an app's habits remember beyond the records: which
/// credentials were refused, and when each search was last made with each. Bounded:
/// past [`MEMORY_LIMIT`] entries it starts again.
#[derive(Debug, Default)]
struct Memory {
    refused: HashSet<Fingerprint>,
    searches: HashMap<(Fingerprint, String), Instant>,
}

const MEMORY_LIMIT: usize = 10_000;
/// A search made again within this long is a `search-repeated`.
const REPEAT_WINDOW: Duration = Duration::from_secs(60);

impl Memory {
    /// The lints of a FHIR request sent with `credentials` (a fingerprint) to `path`.
    fn recall(&mut self, credentials: Fingerprint, path: &str, search: bool, now: Instant) -> Vec<Found> {
        let mut found = Vec::new();
        if self.refused.contains(&credentials) {
            found.push(Found {
                lint: Lint::TokenUsedAfter401,
                detail: format!("credentials {credentials}"),
            });
        }
        if search {
            if self.searches.len() >= MEMORY_LIMIT {
                self.searches.clear();
            }
            let key = (credentials, path.to_owned());
            if let Some(before) = self.searches.insert(key, now)
                && now.duration_since(before) < REPEAT_WINDOW
            {
                let seconds = now.duration_since(before).as_secs();
                found.push(Found {
                    lint: Lint::SearchRepeated,
                    detail: format!("made {seconds} s before"),
                });
            }
        }
        found
    }

    fn refused(&mut self, credentials: Fingerprint) {
        if self.refused.len() >= MEMORY_LIMIT {
            self.refused.clear();
        }
        self.refused.insert(credentials);
    }
}

#[derive(Debug)]
pub(crate) struct Inspector {
    capacity: usize,
    /// Behind one lock, taken once per request: the two workers of a busy server
    /// queue on each lock they share, so each one more is felt.
    log: Mutex<Log>,
}

#[derive(Debug)]
struct Log {
    /// The id of the last record kept.
    last_id: u64,
    entries: VecDeque<Entry>,
    memory: Memory,
    /// Each new record, for the pages that follow along (`…/inspector/events`);
    /// taken when the server stops, which ends their streams.
    live: Option<broadcast::Sender<Record>>,
}

/// What the lints about an app's habits learn from a FHIR request sent with
/// credentials.
struct Habit {
    credentials: Fingerprint,
    search: bool,
    /// Its bearer token was refused: one not to send again.
    refused: bool,
    at: Instant,
}

impl Inspector {
    pub(crate) fn new(capacity: usize) -> Self {
        Inspector {
            capacity,
            log: Mutex::new(Log {
                last_id: 0,
                entries: VecDeque::with_capacity(capacity.min(4_096)),
                memory: Memory::default(),
                live: Some(broadcast::channel(256).0),
            }),
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.capacity > 0
    }

    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps `entry` (its id assigned here), dropping the oldest past capacity,
    /// with the lints its `habit` shows (a token sent again after a 401, a search
    /// repeated), which it then remembers.
    fn push(&self, mut entry: Entry, habit: Option<Habit>) {
        let mut log = self.log();
        if let Some(habit) = habit {
            let recalled = log
                .memory
                .recall(habit.credentials, &entry.path, habit.search, habit.at);
            entry.lints.extend(recalled);
            if habit.refused {
                log.memory.refused(habit.credentials);
            }
        }
        log.last_id += 1;
        entry.id = log.last_id;
        if log.entries.len() == self.capacity {
            log.entries.pop_front();
        }
        // Formatted only while a page follows along.
        if let Some(live) = &log.live
            && live.receiver_count() > 0
        {
            let _ = live.send(entry.record());
        }
        log.entries.push_back(entry);
    }

    /// New records from now on, until the server stops.
    fn follow(&self) -> Option<broadcast::Receiver<Record>> {
        self.log().live.as_ref().map(broadcast::Sender::subscribe)
    }

    /// Ends the live streams, so that a stopping server is not held open by them.
    pub(crate) fn close(&self) {
        self.log().live.take();
    }

    /// The records, newest first, that `filter` lets through.
    pub(crate) fn recent(&self, filter: &Filter) -> Vec<Record> {
        self.log()
            .entries
            .iter()
            .rev()
            .filter(|e| filter.admits(e))
            .map(Entry::record)
            .collect()
    }

    /// Whether `client_id` sent an authorization request with this `state` before
    /// (an app must make a new one for each: RFC 9700 §4.7.1).
    fn state_seen(&self, client_id: &str, state: &str) -> bool {
        let needle = format!(
            "state={}",
            url::form_urlencoded::byte_serialize(state.as_bytes()).collect::<String>()
        );
        self.log().entries.iter().any(|e| {
            e.client_id.as_deref() == Some(client_id)
                && e.path.contains("/ccri-auth/authorize?")
                && e.path.split(['?', '&']).any(|pair| pair == needle)
        })
    }

    /// Forgets every record (the ids go on counting).
    fn clear(&self) {
        self.log().entries.clear();
    }
}

tokio::task_local! {
    /// Where the bearer-token check of the request being recorded notes the client
    /// and the grant it verified, so the inspector need not parse the token again.
    /// A task-local rather than a request extension: it is set up in place, where
    /// an extension is two allocations more on every request (its box, and the
    /// request's extension map grown for it).
    static VERIFIED: OnceCell<(Arc<str>, Fingerprint)>;
}

/// Notes the client and grant fingerprint (the launch) of a verified bearer token
/// for the record of the request being answered, if the inspector is recording it.
pub(crate) fn note_verified(client_id: &Arc<str>, launch: Fingerprint) {
    let _ = VERIFIED.try_with(|slot| slot.set((client_id.clone(), launch)));
}

/// The layer that records every request but the inspector's own, around the whole
/// app. Written out rather than made by `axum::middleware::from_fn`, which boxes
/// the inner service once more and a future of its own for every request: a share
/// of a FHIR read's time that bench/fhir.sh shows. Here what is known before the
/// answer is gathered when the request is handed on, and [`Recorded`] is the
/// answer's own future with the rest of the record to make when it is ready.
#[derive(Clone)]
pub(crate) struct RecordLayer(pub(crate) AppState);

impl<S> Layer<S> for RecordLayer {
    type Service = Recording<S>;

    fn layer(&self, inner: S) -> Recording<S> {
        Recording {
            state: self.0.clone(),
            inner,
        }
    }
}

#[derive(Clone)]
pub(crate) struct Recording<S> {
    state: AppState,
    inner: S,
}

impl<S> Service<Request> for Recording<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<S::Future, Recorded<S::Future>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if !self.state.inspector.enabled() || request.uri().path().contains("/ccri-auth/inspector") {
            return Either::Left(self.inner.call(request));
        }
        let sent = Sent::of(&self.state, &request);
        Either::Right(Recorded {
            answering: VERIFIED.scope(OnceCell::new(), self.inner.call(request)),
            sent: Some(sent),
            state: self.state.clone(),
        })
    }
}

/// What is known of a request before its answer: all of its record but what the
/// answer tells.
struct Sent {
    at: SystemTime,
    started: Instant,
    method: Method,
    /// Path and query, secrets redacted.
    path: String,
    /// The client its Basic credentials or `client_id` parameter name.
    named: Option<String>,
    credentials: Option<Fingerprint>,
    bearer: bool,
    fhir_call: bool,
    search: bool,
    lints: Vec<Found>,
}

impl Sent {
    fn of(state: &AppState, request: &Request) -> Sent {
        let (at, started) = (SystemTime::now(), Instant::now());
        let method = request.method().clone();
        // The query, parsed once for the redaction, the lints and the client.
        let params: Option<Vec<(String, String)>> = request
            .uri()
            .query()
            .map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect());
        let params = params.as_deref();
        let path = redacted(request.uri().path(), params);
        // Read once for the lints, the client and the credentials' fingerprint.
        let authorization = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(crate::auth::verify::header_text);
        let mut lints = lint::of_request(
            &method,
            request.uri().path(),
            params.unwrap_or_default(),
            authorization,
            &state.urls,
        );
        let named = client_named(authorization, params.unwrap_or_default());
        if let (Some(client_id), Some(params)) = (&named, params)
            && method == Method::GET
            && request.uri().path().ends_with("/ccri-auth/authorize")
            && let Some((_, sent)) = params.iter().find(|(name, _)| name == "state")
            && state.inspector.state_seen(client_id, sent)
        {
            lints.push(Found {
                lint: Lint::StateReused,
                detail: format!("state={sent}"),
            });
        }
        let authorization = authorization.and_then(|v| v.split_once(' '));
        // A JWT ends in its signature and a random token is random throughout, so the
        // last 55 characters tell two apart; hashing only those (one SHA-256 block)
        // keeps a FHIR read's overhead down (a whole RS256 token is ~800 bytes).
        let credentials = authorization.map(|(_, credentials)| {
            let credentials = credentials.trim();
            let tail = credentials.len().saturating_sub(55);
            Fingerprint::of(credentials.get(tail..).unwrap_or(credentials))
        });
        Sent {
            at,
            started,
            search: method == Method::GET && params.is_some(),
            method,
            path,
            named,
            credentials,
            bearer: authorization.is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer")),
            fhir_call: request.uri().path().contains("/ccri-fhir/"),
            lints,
        }
    }

    /// Its record, given its `response` and what its bearer check noted, and
    /// what the lints about the app's habits learn from it.
    fn answered(
        self,
        response: &Response,
        verified: Option<(Arc<str>, Fingerprint)>,
    ) -> (Entry, Option<Habit>) {
        let Sent {
            at,
            started,
            method,
            path,
            named,
            credentials,
            bearer,
            fhir_call,
            search,
            mut lints,
        } = self;
        if let Some(found) = response.extensions().get::<Lints>() {
            lints.extend(found.0.iter().cloned());
        }
        let habit = credentials.filter(|_| fhir_call).map(|credentials| Habit {
            credentials,
            search,
            // Only a Bearer token refused is one not to send again (another scheme is
            // refused for itself).
            refused: bearer && response.status() == StatusCode::UNAUTHORIZED,
            at: started,
        });
        let (client_id, launch) = match verified {
            Some((client_id, launch)) => (Some(client_id), Some(launch)),
            None => (
                named.map(Arc::from),
                response.extensions().get::<LaunchNote>().map(|l| l.0),
            ),
        };
        let entry = Entry {
            id: 0,
            at,
            method,
            path,
            status: response.status().as_u16(),
            duration: started.elapsed(),
            client_id,
            launch,
            credentials,
            problem: response.extensions().get::<Problem>().map(|p| p.0.clone()),
            lints,
        };
        (entry, habit)
    }
}

pin_project_lite::pin_project! {
    /// A request's answer on its way, recorded when it comes.
    pub(crate) struct Recorded<F> {
        #[pin]
        answering: TaskLocalFuture<OnceCell<(Arc<str>, Fingerprint)>, F>,
        sent: Option<Sent>,
        state: AppState,
    }
}

impl<F> Future for Recorded<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let Ok(response) = std::task::ready!(this.answering.as_mut().poll(cx));
        let verified = this.answering.take_value().and_then(OnceCell::into_inner);
        if let Some(sent) = this.sent.take() {
            let (entry, habit) = sent.answered(&response, verified);
            this.state.inspector.push(entry, habit);
        }
        Poll::Ready(Ok(response))
    }
}

/// `path?query` with the values of secret parameters replaced.
fn redacted(path: &str, params: Option<&[(String, String)]>) -> String {
    let Some(params) = params else {
        return path.to_owned();
    };
    let pairs = params.iter().map(|(name, value)| {
        let value = if SECRET_PARAMS.contains(&name.as_str()) {
            format!("redacted-{}", Fingerprint::of(value))
        } else {
            value.clone()
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
/// its verification instead ([`note_verified`]).
fn client_named(authorization: Option<&str>, params: &[(String, String)]) -> Option<String> {
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

/// Which records to show: one client's, one launch's, and only those with a
/// problem (an error status or a lint).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Filter {
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    launch: Option<String>,
    #[serde(default, deserialize_with = "checkbox")]
    problems: bool,
}

impl Filter {
    fn client(&self) -> Option<&str> {
        self.client_id.as_deref().filter(|c| !c.is_empty())
    }

    fn launch(&self) -> Option<&str> {
        self.launch.as_deref().filter(|l| !l.is_empty())
    }

    fn admits(&self, entry: &Entry) -> bool {
        self.lets_through(
            entry.client_id.as_deref(),
            entry.launch.as_ref().map(Fingerprint::as_str),
            entry.status >= 400 || !entry.lints.is_empty(),
        )
    }

    fn lets_through(&self, client_id: Option<&str>, launch: Option<&str>, problem: bool) -> bool {
        self.client().is_none_or(|id| client_id == Some(id))
            && self.launch().is_none_or(|id| launch == Some(id))
            && (!self.problems || problem)
    }

    /// This filter as a query string, for the page's links.
    fn query(&self) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        if let Some(id) = self.client() {
            query.append_pair("client_id", id);
        }
        if let Some(id) = self.launch() {
            query.append_pair("launch", id);
        }
        if self.problems {
            query.append_pair("problems", "on");
        }
        query.finish()
    }
}

/// An HTML checkbox's `on`, or `true`/`1` from a script.
fn checkbox<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    let text = String::deserialize(deserializer)?;
    Ok(matches!(text.as_str(), "on" | "true" | "1"))
}

/// A launch as the page lists it: the records of one authorization.
struct LaunchGroup {
    id: Fingerprint,
    client_id: Option<String>,
    first: String,
    last: String,
    requests: usize,
    problems: usize,
}

/// The launches among `records` (newest first), newest first.
fn launches(records: &[Record]) -> Vec<LaunchGroup> {
    let mut groups: Vec<LaunchGroup> = Vec::new();
    for record in records {
        let Some(id) = record.launch else { continue };
        let problem = usize::from(record.status >= 400 || !record.lints.is_empty());
        match groups.iter_mut().find(|g| g.id == id) {
            Some(group) => {
                group.first = record.at.clone();
                group.requests += 1;
                group.problems += problem;
                group.client_id = group.client_id.take().or_else(|| record.client_id.clone());
            }
            None => groups.push(LaunchGroup {
                id,
                client_id: record.client_id.clone(),
                first: record.at.clone(),
                last: record.at.clone(),
                requests: 1,
                problems: problem,
            }),
        }
    }
    groups
}

#[derive(Template)]
#[template(path = "inspector.html")]
struct InspectorPage {
    launches: Vec<LaunchGroup>,
    records: Vec<Record>,
    client_id: Option<String>,
    launch: Option<String>,
    problems: bool,
    enabled: bool,
    /// The filter as a query, for the JSON, HAR and live links.
    query: String,
}

async fn page(State(state): State<AppState>, Query(filter): Query<Filter>) -> Response {
    let records = state.inspector.recent(&filter);
    crate::auth::authorize::render(&InspectorPage {
        launches: launches(&records),
        records,
        client_id: filter.client().map(str::to_owned),
        launch: filter.launch().map(str::to_owned),
        problems: filter.problems,
        enabled: state.inspector.enabled(),
        query: filter.query(),
    })
}

async fn requests(State(state): State<AppState>, Query(filter): Query<Filter>) -> Response {
    Json(state.inspector.recent(&filter)).into_response()
}

/// `GET {auth}/inspector/events`: each new record the filter lets through, as a
/// Server-Sent Event whose data is the record's JSON.
async fn events(State(state): State<AppState>, Query(filter): Query<Filter>) -> Response {
    let Some(receiver) = state.inspector.follow() else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let stream = futures_util::stream::unfold((receiver, filter), |(mut receiver, filter)| async move {
        loop {
            match receiver.recv().await {
                Ok(record) => {
                    let problem = record.status >= 400 || !record.lints.is_empty();
                    if !filter.lets_through(
                        record.client_id.as_deref(),
                        record.launch.as_ref().map(Fingerprint::as_str),
                        problem,
                    ) {
                        continue;
                    }
                    let event = Event::default().event("record").json_data(&record);
                    return Some((event, (receiver, filter)));
                }
                // A page that fell behind misses some records; the list is still there on reload.
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
}

/// `GET {auth}/inspector/export.har`: the records as an HTTP Archive (HAR 1.2),
/// oldest first as HAR has it. Headers and bodies were never kept, so each entry
/// has none; the problem and the lints are the entry's comment.
async fn export_har(State(state): State<AppState>, Query(filter): Query<Filter>) -> Response {
    let origin = &state.urls.origin;
    let entries: Vec<serde_json::Value> = state
        .inspector
        .recent(&filter)
        .into_iter()
        .rev()
        .map(|record| har_entry(origin, &record))
        .collect();
    let har = serde_json::json!({
        "log": {
            "version": "1.2",
            "creator": { "name": "ccri-mock", "version": env!("CARGO_PKG_VERSION") },
            "entries": entries,
        }
    });
    let disposition = "attachment; filename=\"ccri-mock.har\"";
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        Json(har),
    )
        .into_response()
}

fn har_entry(origin: &str, record: &Record) -> serde_json::Value {
    let url = format!("{origin}{}", record.path);
    let query: Vec<serde_json::Value> = record
        .path
        .split_once('?')
        .map(|(_, query)| {
            url::form_urlencoded::parse(query.as_bytes())
                .map(|(name, value)| serde_json::json!({ "name": name, "value": value }))
                .collect()
        })
        .unwrap_or_default();
    let mut comment: Vec<String> = record.problem.iter().cloned().collect();
    comment.extend(
        record
            .lints
            .iter()
            .map(|l| format!("{} ({}): {} {}", l.id, l.detail, l.message, l.spec)),
    );
    let status_text = StatusCode::from_u16(record.status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or_default();
    serde_json::json!({
        "startedDateTime": record.at,
        "time": record.duration_ms,
        "request": {
            "method": record.method, "url": url, "httpVersion": "HTTP/1.1",
            "cookies": [], "headers": [], "queryString": query, "headersSize": -1, "bodySize": -1,
        },
        "response": {
            "status": record.status, "statusText": status_text, "httpVersion": "HTTP/1.1",
            "cookies": [], "headers": [], "content": { "size": -1, "mimeType": "" },
            "redirectURL": "", "headersSize": -1, "bodySize": -1,
        },
        "cache": {},
        "timings": { "send": 0, "wait": record.duration_ms, "receive": 0 },
        "comment": comment.join("\n"),
        "_clientId": record.client_id,
        "_launch": record.launch,
    })
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
        .route("/inspector/events", axum::routing::get(events))
        .route("/inspector/export.har", axum::routing::get(export_har))
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
            format!(
                "/ccri-auth/authorize?client_id=app&code=redacted-{}&state=s1&access_token=redacted-{}",
                Fingerprint::of("abc"),
                Fingerprint::of("t")
            )
        );
        // SHA-256("abc") begins ba7816bf8f (FIPS 180-2's test vector).
        assert_eq!(Fingerprint::of("abc").as_str(), "ba7816bf8f");
        let inspector = Inspector::new(3);
        for n in 0..5 {
            inspector.push(
                Entry {
                    id: 0,
                    at: SystemTime::now(),
                    method: Method::GET,
                    path: format!("/{n}"),
                    status: 200,
                    duration: Duration::ZERO,
                    client_id: (n % 2 == 0).then(|| "even".into()),
                    launch: None,
                    credentials: None,
                    problem: None,
                    lints: Vec::new(),
                },
                None,
            );
        }
        let paths: Vec<String> = inspector
            .recent(&Filter::default())
            .into_iter()
            .map(|r| r.path)
            .collect();
        assert_eq!(paths, ["/4", "/3", "/2"]);
        let even = Filter {
            client_id: Some("even".into()),
            ..Filter::default()
        };
        assert_eq!(inspector.recent(&even).len(), 2);
        let problems = Filter {
            problems: true,
            ..Filter::default()
        };
        assert!(inspector.recent(&problems).is_empty());
        inspector.clear();
        assert!(inspector.recent(&Filter::default()).is_empty());
    }
}
