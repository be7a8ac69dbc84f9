//! `GET|POST {auth}/authorize`: the start of an authorization code launch
//! (RFC 6749 §4.1.1, RFC 7636, SMART App Launch 2.2 §"Obtain authorization code").
//!
//! The request is checked in the order RFC 6749 §4.1.2.1 demands: while the client
//! or its `redirect_uri` are in doubt the answer is an error page (never a redirect,
//! or the server becomes an open redirector); after that, every error goes back to
//! the app as `?error=…&state=…`.
//!
//! A valid request becomes a [`Pending`] authorization that the pages move forward
//! (login → patient picker → consent), each posting its hidden `txn` id back;
//! [`advance`] decides which page comes next and finally redirects with a code.

mod consent;
mod login;
mod picker;

pub use crate::fhir::summary::PatientRow;

use std::time::{Duration, Instant};

use askama::Template;
use axum::Router;
use axum::extract::{RawForm, RawQuery, State};
use axum::http::{Method, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use smart_protocol::discovery::CodeChallengeMethod;
use smart_protocol::{AuthorizeRequest, LaunchContext, OAuthErrorCode, Scope, Scopes};

use super::grants::{Grant, Launch, random_token};
use super::simulate::SimulatedError;
use crate::config::{ClientConfig, UserConfig};
use crate::state::AppState;

/// How long a person has to get through the pages.
const PENDING_TTL: Duration = Duration::from_secs(10 * 60);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/authorize", get(authorize).post(authorize))
        .route("/authorize/login", post(login::submit))
        .route("/authorize/patient", post(picker::submit))
        .route("/authorize/consent", post(consent::submit))
}

/// An authorization request that passed validation and waits for a person.
#[derive(Clone, Debug)]
pub struct Pending {
    pub client: ClientConfig,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub scopes: Scopes,
    pub code_challenge: String,
    /// The EHR launch this request continues, if any.
    pub launch: Option<Launch>,
    pub user: Option<UserConfig>,
    pub patient: Option<String>,
    pub expires_at: Instant,
}

impl Pending {
    /// The failure to simulate: the launch's, else the client's.
    fn simulate(&self) -> Option<SimulatedError> {
        self.launch
            .as_ref()
            .and_then(|l| l.simulate)
            .or(self.client.simulate_error)
    }

    fn skip_consent(&self) -> bool {
        self.client.skip_auth || self.launch.as_ref().is_some_and(|l| l.skip_auth)
    }

    /// A practitioner launching standalone with `launch/patient` must pick one.
    fn needs_patient_choice(&self) -> bool {
        self.scopes.contains(&Scope::LaunchPatient) && self.patient.is_none()
    }

    /// The redirect back to the app with `params` and the app's `state`.
    fn redirect(&self, params: &[(&str, &str)]) -> Response {
        let mut pairs: Vec<(&str, &str)> = params.to_vec();
        if let Some(state) = &self.state {
            pairs.push(("state", state));
        }
        let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        let separator = if self.redirect_uri.contains('?') { '&' } else { '?' };
        Redirect::to(&format!("{}{separator}{query}", self.redirect_uri)).into_response()
    }

    pub fn redirect_error(&self, code: OAuthErrorCode, description: &str) -> Response {
        self.redirect(&[("error", code.as_str()), ("error_description", description)])
    }
}

async fn authorize(
    State(state): State<AppState>,
    method: Method,
    RawQuery(query): RawQuery,
    RawForm(form): RawForm,
) -> Response {
    // authorize-post: the same parameters as a form body.
    let parsed = if method == Method::POST {
        serde_urlencoded::from_bytes::<AuthorizeRequest>(&form)
    } else {
        serde_urlencoded::from_str::<AuthorizeRequest>(query.as_deref().unwrap_or_default())
    };
    let request = match parsed {
        Ok(request) => request,
        Err(e) => {
            return error_page(OAuthErrorCode::InvalidRequest, &format!("malformed request: {e}"));
        }
    };
    // While the client or its redirect_uri are in doubt: an error page, never a redirect.
    let client = match trusted_client(&state, &request) {
        Ok(client) => client,
        Err(description) => return error_page(OAuthErrorCode::InvalidRequest, &description),
    };
    let mut pending = Pending {
        client,
        redirect_uri: request.redirect_uri.clone(),
        state: request.state.clone(),
        scopes: Scopes::default(),
        code_challenge: String::new(),
        launch: None,
        user: None,
        patient: None,
        expires_at: Instant::now() + PENDING_TTL,
    };
    if let Some(launch_id) = &request.launch {
        pending.launch = state.grants().launches.get(launch_id).cloned();
    }
    match pending.simulate() {
        Some(SimulatedError::AuthInvalidClientId) => {
            return error_page(
                OAuthErrorCode::InvalidRequest,
                "unknown client_id (simulated error)",
            );
        }
        Some(SimulatedError::AuthInvalidRedirectUri) => {
            return error_page(
                OAuthErrorCode::InvalidRequest,
                "redirect_uri is not registered (simulated error)",
            );
        }
        _ => {}
    }
    // From here on the redirect_uri is trusted: errors go back to the app.
    if let Err((code, description)) = validate(&state, request, &mut pending) {
        return pending.redirect_error(code, &description);
    }
    let txn = random_token();
    state.grants().pending.insert(txn.clone(), pending);
    advance(&state, &txn)
}

/// The registered client, if `redirect_uri` is exactly one of its own.
fn trusted_client(state: &AppState, request: &AuthorizeRequest) -> Result<ClientConfig, String> {
    let client = state.grants().client(&request.client_id).cloned();
    let client = client.ok_or_else(|| format!("unknown client_id {:?}", request.client_id))?;
    if !client.redirect_uris.contains(&request.redirect_uri) {
        return Err(format!(
            "redirect_uri {:?} is not registered for client {}",
            request.redirect_uri, client.client_id
        ));
    }
    Ok(client)
}

/// Checks the rest of the request and fills `pending` from it.
fn validate(
    state: &AppState,
    request: AuthorizeRequest,
    pending: &mut Pending,
) -> Result<(), (OAuthErrorCode, String)> {
    use OAuthErrorCode::{InvalidRequest, InvalidScope, UnsupportedResponseType};
    if request.response_type != "code" {
        return Err((UnsupportedResponseType, "response_type must be code".into()));
    }
    if pending.state.as_deref().is_none_or(str::is_empty) {
        return Err((InvalidRequest, "state is required".into()));
    }
    pending.code_challenge = match (
        request.code_challenge.as_deref().map(str::trim),
        &request.code_challenge_method,
    ) {
        (None | Some(""), _) => return Err((InvalidRequest, "code_challenge is required (PKCE)".into())),
        (Some(challenge), Some(CodeChallengeMethod::S256)) => challenge.to_owned(),
        _ => return Err((InvalidRequest, "code_challenge_method must be S256".into())),
    };
    match request.aud.as_deref().or(request.resource.as_deref()) {
        Some(aud) if aud.trim_end_matches('/') == state.urls.fhir_base => {}
        Some(other) => {
            return Err((
                InvalidRequest,
                format!(
                    "aud {other} is not this server's FHIR base {}",
                    state.urls.fhir_base
                ),
            ));
        }
        None => return Err((InvalidRequest, "aud (the FHIR base URL) is required".into())),
    }
    pending.scopes = request
        .scope
        .as_deref()
        .unwrap_or_default()
        .parse()
        .map_err(|e| (InvalidScope, format!("{e}")))?;
    if pending.scopes.is_empty() {
        return Err((InvalidScope, "scope is required".into()));
    }
    if !pending.scopes.is_within(&pending.client.scope) {
        let allowed = &pending.client.scope;
        return Err((
            InvalidScope,
            format!("{} may be granted at most: {allowed}", pending.client.client_id),
        ));
    }
    if pending.simulate() == Some(SimulatedError::AuthInvalidScope) {
        return Err((InvalidScope, "scope not allowed (simulated error)".into()));
    }
    if let Some(launch_id) = &request.launch {
        let launch = pending.launch.clone();
        let launch = launch.ok_or_else(|| (InvalidRequest, format!("unknown launch {launch_id}")))?;
        if !pending.scopes.contains(&Scope::Launch) {
            return Err((InvalidScope, "an EHR launch needs the `launch` scope".into()));
        }
        pending.patient = launch.context.patient.clone();
        pending.user = launch
            .fhir_user
            .as_deref()
            .and_then(|f| state.config.users.iter().find(|u| u.fhir_user == f))
            .cloned();
    }
    Ok(())
}

/// Shows the next page the pending authorization needs, or finishes it.
pub fn advance(state: &AppState, txn: &str) -> Response {
    let Some(mut pending) = take_pending(state, txn) else {
        return expired_page();
    };
    if pending.user.is_none()
        && let Some(username) = &pending.client.skip_login
    {
        pending.user = state.config.user(username).cloned();
    }
    let Some(user) = pending.user.clone() else {
        return keep(state, txn, pending, |txn| login::page(state, txn, None));
    };
    if pending.patient.is_none() {
        // A patient is the patient in context of their own launch.
        pending.patient = user.patient_id().map(str::to_owned);
    }
    if pending.needs_patient_choice() {
        return keep(state, txn, pending, |txn| picker::page(state, txn));
    }
    if !pending.skip_consent() {
        let consent = consent::page(state, txn, &pending, &user);
        return keep(state, txn, pending, |_| consent);
    }
    finish(state, pending)
}

/// Issues the code and sends the browser back to the app.
pub fn finish(state: &AppState, pending: Pending) -> Response {
    let ehr_launch = pending.launch.is_some();
    let context = LaunchContext {
        patient: pending.patient.clone(),
        encounter: pending.launch.as_ref().and_then(|l| l.context.encounter.clone()),
        fhir_context: pending
            .launch
            .as_ref()
            .map(|l| l.context.fhir_context.clone())
            .unwrap_or_default(),
        // In an EHR launch the EHR shows the banner; standalone, the app must.
        need_patient_banner: pending.patient.as_ref().map(|_| !ehr_launch),
        smart_style_url: Some(state.urls.auth("smart-style.json")),
        ..LaunchContext::default()
    };
    let grant = Grant {
        id: random_token(),
        client_id: pending.client.client_id.clone(),
        scopes: pending.scopes.clone(),
        fhir_user: pending.user.as_ref().map(|u| u.fhir_user.clone()),
        context,
        simulate: pending.simulate(),
    };
    let code = state.grants().issue_code(
        grant,
        pending.redirect_uri.clone(),
        pending.code_challenge.clone(),
    );
    tracing::info!(client = %pending.client.client_id, "authorization code issued");
    pending.redirect(&[("code", &code)])
}

/// Removes and returns a live pending authorization.
pub fn take_pending(state: &AppState, txn: &str) -> Option<Pending> {
    state
        .grants()
        .pending
        .remove(txn)
        .filter(|p| Instant::now() <= p.expires_at)
}

/// Puts `pending` back under `txn` and renders the page for it.
fn keep(state: &AppState, txn: &str, pending: Pending, page: impl FnOnce(&str) -> Response) -> Response {
    state.grants().pending.insert(txn.to_owned(), pending);
    page(txn)
}

pub fn render(template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "template error").into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    code: &'a str,
    description: &'a str,
}

/// A page, login, picker or consent, posted for an authorization that is gone.
pub fn expired_page() -> Response {
    error_page(
        OAuthErrorCode::InvalidRequest,
        "this authorization has expired or was already completed; start again from the app",
    )
}

/// A page for errors that must not redirect.
pub fn error_page(code: OAuthErrorCode, description: &str) -> Response {
    let mut response = render(&ErrorPage {
        code: code.as_str(),
        description,
    });
    *response.status_mut() = StatusCode::BAD_REQUEST;
    response
}
