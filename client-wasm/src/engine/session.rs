//! A launched session: the tokens and launch context, kept in the app's chosen
//! storage, and the one place that sends the access token.
//!
//! Refresh happens ahead of expiry and after a 401. Either way exactly one refresh
//! runs at a time: concurrent requests await the same shared future, then retry
//! once with the new token. A refresh that fails ends the session
//! (`session_expired`).

use std::cell::RefCell;
use std::rc::Rc;

use futures_util::FutureExt;
use futures_util::future::{LocalBoxFuture, Shared};
use smart_protocol::{
    AccessToken, ClientSecret, DecodeError, FhirContextItem, IdToken, LaunchContext, Members, RefreshToken,
    Scopes, TokenResponse,
};

use super::error::{Error, ErrorCode};
use super::fhir::FhirRequest;
use super::launch::PendingLaunch;
use super::platform::{HttpRequest, Json, Platform, Response, Signal, Storage};
use super::token::{ClientAuth, request_token, revoke};

/// Each session is kept under its own key (`…session:{id}`), so two sessions (two
/// servers, or two patients in two tabs) never overwrite each other.
pub const SESSION_KEY_PREFIX: &str = "smart-fhir-client:session:";
/// The id of the session this tab is on ([`Storage::set_tab`]): what `ready()` resumes.
const CURRENT_KEY: &str = "smart-fhir-client:current";
/// The id of the newest session in the storage: what a new tab resumes.
const LATEST_KEY: &str = "smart-fhir-client:latest";

fn session_key(id: &str) -> String {
    format!("{SESSION_KEY_PREFIX}{id}")
}

/// Refresh this long before expiry (or a tenth of the token's lifetime, if shorter).
const REFRESH_MARGIN_SECS: u64 = 60;

/// Everything the app may read about its session, and what the client needs to
/// continue it after a page load. (A client secret is never part of it.)
#[derive(Clone, Debug)]
pub struct SessionState<J> {
    /// The session's key in storage: the `state` of the launch that began it.
    pub id: String,
    pub fhir_base: String,
    pub client_id: String,
    pub token_endpoint: String,
    pub revocation_endpoint: Option<String>,
    pub access_token: AccessToken,
    pub refresh_token: Option<RefreshToken>,
    pub id_token: Option<IdToken>,
    pub scope: Option<Scopes>,
    /// Seconds since the epoch.
    pub expires_at: Option<u64>,
    /// The lifetime the server gave the current access token, in seconds.
    pub lifetime: Option<u64>,
    pub context: LaunchContext,
    /// The claims of the verified id_token.
    pub id_token_claims: Option<J>,
    /// From the verified id_token only.
    pub fhir_user: Option<String>,
    pub confidential: bool,
}

impl<J: Json> SessionState<J> {
    pub fn new(
        now: u64,
        id: &str,
        pending: &PendingLaunch,
        response: TokenResponse,
        id_token_claims: Option<J>,
    ) -> Self {
        let fhir_user = id_token_claims
            .as_ref()
            .and_then(|c| c.get("fhirUser"))
            .and_then(|u| u.as_string());
        SessionState {
            id: id.to_owned(),
            fhir_base: pending.fhir_base.clone(),
            client_id: pending.client_id.clone(),
            token_endpoint: pending.token_endpoint.clone(),
            revocation_endpoint: pending.revocation_endpoint.clone(),
            access_token: response.access_token,
            refresh_token: response.refresh_token,
            id_token: response.id_token,
            scope: response.scope,
            expires_at: response.expires_in.map(|s| now + s),
            lifetime: response.expires_in,
            context: response.context,
            id_token_claims,
            fhir_user,
            confidential: pending.confidential,
        }
    }

    fn needs_refresh(&self, now: u64) -> bool {
        let (Some(expires_at), Some(_)) = (self.expires_at, &self.refresh_token) else {
            return false;
        };
        let margin = self
            .lifetime
            .map_or(REFRESH_MARGIN_SECS, |l| (l / 10).min(REFRESH_MARGIN_SECS));
        now + margin >= expires_at
    }

    /// The session as the app reads it (`client.state`) and as it is stored.
    pub fn to_json(&self) -> J {
        let text = |s: &str| Some(J::text(s));
        let number = |n: u64| Some(J::number(n as f64));
        let context = &self.context;
        let fhir_context = context.fhir_context.iter().map(|item| {
            let identifier = item.identifier.as_ref().map(|i| {
                J::object(vec![
                    ("system", i.system.as_deref().and_then(text)),
                    ("value", i.value.as_deref().and_then(text)),
                ])
            });
            J::object(vec![
                ("reference", item.reference.as_deref().and_then(text)),
                ("canonical", item.canonical.as_deref().and_then(text)),
                ("identifier", identifier),
                ("type", item.resource_type.as_deref().and_then(text)),
                ("role", item.role.as_deref().and_then(text)),
            ])
        });
        J::object(vec![
            ("id", text(&self.id)),
            ("serverUrl", text(&self.fhir_base)),
            ("clientId", text(&self.client_id)),
            ("tokenEndpoint", text(&self.token_endpoint)),
            (
                "revocationEndpoint",
                self.revocation_endpoint.as_deref().and_then(text),
            ),
            ("accessToken", text(self.access_token.secret())),
            (
                "refreshToken",
                self.refresh_token.as_ref().and_then(|t| text(t.secret())),
            ),
            ("idToken", self.id_token.as_ref().and_then(|t| text(t.secret()))),
            ("scope", self.scope.as_ref().and_then(|s| text(&s.to_string()))),
            ("expiresAt", self.expires_at.and_then(number)),
            ("lifetime", self.lifetime.and_then(number)),
            ("patient", context.patient.as_deref().and_then(text)),
            ("encounter", context.encounter.as_deref().and_then(text)),
            ("fhirContext", Some(J::array(fhir_context.collect()))),
            ("needPatientBanner", context.need_patient_banner.map(J::flag)),
            ("smartStyleUrl", context.smart_style_url.as_deref().and_then(text)),
            ("intent", context.intent.as_deref().and_then(text)),
            ("tenant", context.tenant.as_deref().and_then(text)),
            ("idTokenClaims", self.id_token_claims.clone()),
            ("fhirUser", self.fhir_user.as_deref().and_then(text)),
            ("confidential", Some(J::flag(self.confidential))),
        ])
    }

    /// Reads back what [`SessionState::to_json`] wrote.
    pub fn from_json(json: &J) -> Result<Self, DecodeError> {
        let m = Members::of(json);
        m.finish(SessionState {
            id: m.required("id"),
            fhir_base: m.required("serverUrl"),
            client_id: m.required("clientId"),
            token_endpoint: m.required("tokenEndpoint"),
            revocation_endpoint: m.string("revocationEndpoint"),
            access_token: AccessToken::new(m.required("accessToken")),
            refresh_token: m.string("refreshToken").map(RefreshToken::new),
            id_token: m.string("idToken").map(IdToken::new),
            scope: m.decoded("scope", Scopes::from_json),
            expires_at: m.unsigned("expiresAt"),
            lifetime: m.unsigned("lifetime"),
            context: LaunchContext {
                patient: m.string("patient"),
                encounter: m.string("encounter"),
                fhir_context: m.list("fhirContext", FhirContextItem::from_json),
                need_patient_banner: m.boolean("needPatientBanner"),
                smart_style_url: m.string("smartStyleUrl"),
                intent: m.string("intent"),
                tenant: m.string("tenant"),
            },
            id_token_claims: json.get("idTokenClaims"),
            fhir_user: m.string("fhirUser"),
            confidential: m.boolean("confidential").unwrap_or(false),
        })
    }
}

type RefreshFuture<J> = Shared<LocalBoxFuture<'static, Result<(), Error<J>>>>;

struct Inner<P: Platform, S> {
    platform: P,
    storage: S,
    state: RefCell<SessionState<P::Json>>,
    /// Held in memory only: a confidential client's secret for refreshes.
    client_secret: Option<ClientSecret>,
    refreshing: RefCell<Option<RefreshFuture<P::Json>>>,
}

/// An authorised FHIR client.
pub struct SmartClient<P: Platform, S> {
    inner: Rc<Inner<P, S>>,
}

/// The session holds tokens: nothing of it is printed.
impl<P: Platform, S> std::fmt::Debug for SmartClient<P, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmartClient").finish_non_exhaustive()
    }
}

impl<P: Platform, S> Clone for SmartClient<P, S> {
    fn clone(&self) -> Self {
        SmartClient {
            inner: self.inner.clone(),
        }
    }
}

impl<P: Platform + 'static, S: Storage + 'static> SmartClient<P, S> {
    /// A client for a session, which is saved to `storage` and becomes the one
    /// this tab (and a new tab) resumes.
    pub fn new(
        platform: P,
        storage: S,
        state: SessionState<P::Json>,
        client_secret: Option<ClientSecret>,
    ) -> Result<Self, Error<P::Json>> {
        let client = SmartClient {
            inner: Rc::new(Inner {
                platform,
                storage,
                state: RefCell::new(state),
                client_secret,
                refreshing: RefCell::new(None),
            }),
        };
        client.save()?;
        let storage = &client.inner.storage;
        let id = client.inner.state.borrow().id.clone();
        storage.set_tab(CURRENT_KEY, &id).map_err(Error::storage)?;
        storage.set(LATEST_KEY, &id).map_err(Error::storage)?;
        Ok(client)
    }

    /// The session this tab was on, or else the newest one in `storage`, if any.
    pub fn restore(platform: P, storage: S, client_secret: Option<ClientSecret>) -> Option<Self> {
        let stored = [storage.get_tab(CURRENT_KEY), storage.get(LATEST_KEY)]
            .into_iter()
            .flatten()
            .find_map(|id| storage.get(&session_key(&id)))?;
        let state = SessionState::from_json(&P::Json::parse(&stored).ok()?).ok()?;
        SmartClient::new(platform, storage, state, client_secret).ok()
    }

    pub fn state(&self) -> SessionState<P::Json> {
        self.inner.state.borrow().clone()
    }

    fn save(&self) -> Result<(), Error<P::Json>> {
        let state = self.inner.state.borrow();
        let text = state.to_json().to_text().map_err(Error::storage)?;
        self.inner
            .storage
            .set(&session_key(&state.id), &text)
            .map_err(Error::storage)
    }

    /// How this client authenticates: with its in-memory secret, if it has one.
    fn client_auth<'a>(&'a self, client_id: &'a str) -> ClientAuth<'a> {
        match &self.inner.client_secret {
            Some(secret) => ClientAuth::Secret(client_id, secret),
            None => ClientAuth::Public(client_id),
        }
    }

    /// Gets a new access token with the refresh token. Concurrent callers share one
    /// refresh.
    pub async fn refresh(&self) -> Result<(), Error<P::Json>> {
        let refresh = {
            let mut slot = self.inner.refreshing.borrow_mut();
            match slot.as_ref() {
                Some(running) => running.clone(),
                None => {
                    let client = self.clone();
                    let running = async move {
                        let result = client.refresh_now().await;
                        *client.inner.refreshing.borrow_mut() = None;
                        result
                    }
                    .boxed_local()
                    .shared();
                    *slot = Some(running.clone());
                    running
                }
            }
        };
        refresh.await
    }

    async fn refresh_now(&self) -> Result<(), Error<P::Json>> {
        let (refresh_token, token_endpoint, client_id, scope) = {
            let state = self.inner.state.borrow();
            let refresh_token = state.refresh_token.clone().ok_or_else(|| {
                Error::session_expired("no refresh token; ask for offline_access or online_access to get one")
            })?;
            (
                refresh_token,
                state.token_endpoint.clone(),
                state.client_id.clone(),
                state.scope.clone(),
            )
        };
        let auth = self.client_auth(&client_id);
        let mut form = vec![
            ("grant_type", "refresh_token".to_owned()),
            ("refresh_token", refresh_token.secret().to_owned()),
        ];
        if let Some(scope) = scope {
            form.push(("scope", scope.to_string()));
        }
        let response = request_token(&self.inner.platform, &token_endpoint, &auth, form)
            .await
            .map_err(|error| {
                let mut expired = Error::session_expired(&error.message);
                let error = error.into_details();
                expired.status = error.status;
                expired.oauth = error.oauth;
                expired
            })?;
        {
            let now = self.inner.platform.now();
            let mut state = self.inner.state.borrow_mut();
            state.access_token = response.access_token;
            state.expires_at = response.expires_in.map(|s| now + s);
            state.lifetime = response.expires_in;
            if response.scope.is_some() {
                state.scope = response.scope;
            }
            if response.refresh_token.is_some() {
                state.refresh_token = response.refresh_token;
            }
        }
        self.save()
    }

    /// Sends a request to the FHIR server with the access token; only ever under
    /// the FHIR base ([`FhirRequest::target`] is relative to it, or an absolute URL
    /// under it such as a `next` link).
    pub async fn send(&self, request: FhirRequest<P::Signal>) -> Result<Response<P>, Error<P::Json>> {
        let url = self.resolve(&request.target)?;
        if self.inner.state.borrow().needs_refresh(self.inner.platform.now()) {
            self.refresh().await?;
        }
        let mut headers = request.headers.clone();
        if !request.has_header("Accept") {
            headers.push(("Accept".into(), "application/fhir+json".into()));
        }
        if request.body.is_some() && !request.has_header("Content-Type") {
            headers.push(("Content-Type".into(), "application/fhir+json".into()));
        }
        let mut retried = false;
        loop {
            let token = self.inner.state.borrow().access_token.secret().to_owned();
            let mut http = HttpRequest::new(request.method, &url);
            http.headers = headers.clone();
            http.headers
                .push(("Authorization".into(), format!("Bearer {token}")));
            http.body = request.body.clone();
            http.signal = request.signal.clone();
            let response = self.inner.platform.fetch(http).await.map_err(|detail| {
                if request.signal.as_ref().is_some_and(Signal::aborted) {
                    Error::new(ErrorCode::Aborted, "the request was aborted by its signal")
                } else {
                    Error::network(detail)
                }
            })?;
            if response.status == 401 && !retried {
                retried = true;
                // Another request may already have refreshed while this one was in flight.
                if self.inner.state.borrow().access_token.secret() == token {
                    self.refresh().await?;
                }
                continue;
            }
            return match response.status {
                // A 304 answers the app's own If-None-Match: there is no body to expect.
                200..=299 if request.expects_body && response.body.is_none() => {
                    Err(Error::invalid_response("the server sent no JSON body"))
                }
                200..=299 | 304 => Ok(response),
                401 => Err(Error::session_expired(
                    "the server refused the refreshed access token",
                )),
                status => {
                    let message = diagnostics(response.body.as_ref())
                        .unwrap_or_else(|| format!("{} {url} failed", request.method.as_str()));
                    Err(Error::http(status, response.body, message))
                }
            };
        }
    }

    fn resolve(&self, target: &str) -> Result<String, Error<P::Json>> {
        let base = self.inner.state.borrow().fhir_base.clone();
        if target.starts_with("http://") || target.starts_with("https://") {
            let under_base = target
                .strip_prefix(&base)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', '?']));
            return if under_base {
                Ok(target.to_owned())
            } else {
                Err(Error::new(
                    ErrorCode::UnsafeUrl,
                    format!("refusing to send the access token to {target}: it is not under {base}"),
                ))
            };
        }
        Ok(match target.trim_start_matches('/') {
            "" => base,
            path => format!("{base}/{path}"),
        })
    }

    /// Revokes the session's tokens at the server (RFC 7009) and forgets them.
    pub async fn revoke(&self) -> Result<(), Error<P::Json>> {
        let (endpoint, client_id, access, refresh) = {
            let state = self.inner.state.borrow();
            let storage = &self.inner.storage;
            storage.remove(&session_key(&state.id));
            if storage.get(LATEST_KEY).as_ref() == Some(&state.id) {
                storage.remove(LATEST_KEY);
            }
            if storage.get_tab(CURRENT_KEY).as_ref() == Some(&state.id) {
                storage.remove_tab(CURRENT_KEY);
            }
            (
                state.revocation_endpoint.clone(),
                state.client_id.clone(),
                state.access_token.clone(),
                state.refresh_token.clone(),
            )
        };
        let Some(endpoint) = endpoint else { return Ok(()) };
        let auth = self.client_auth(&client_id);
        revoke(&self.inner.platform, &endpoint, &auth, &access, refresh.as_ref()).await
    }
}

/// The first `diagnostics` of an OperationOutcome.
fn diagnostics<J: Json>(body: Option<&J>) -> Option<String> {
    body?
        .get("issue")?
        .items()?
        .iter()
        .find_map(|issue| issue.member_string("diagnostics"))
}
