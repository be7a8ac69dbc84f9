//! `GET|POST {auth}/authorize`: the start of an authorization code launch
//! (RFC 6749 §4.1.1, RFC 7636, SMART App Launch 2.2 §"Obtain authorization code").
//!
//! The request is checked in the order RFC 6749 §4.1.2.1 demands: while the client
//! or its `redirect_uri` are in doubt the answer is an error page (never a redirect,
//! or the server becomes an open redirector); after that, every error goes back to
//! the app as `?error=…&state=…`.
//!
//! A valid request becomes an [`Authorization`] that the pages move forward
//! (login → patient picker → consent) through the state machine in `flow.rs`.

pub(crate) mod consent;
pub(crate) mod login;
pub(crate) mod picker;

use askama::Template;
use axum::Router;
use axum::extract::{RawForm, RawQuery, State};
use axum::http::{Method, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum_extra::extract::CookieJar;
use smart_protocol::discovery::{CodeChallengeMethod, GrantType};
use smart_protocol::{AuthorizeRequest, OAuthErrorCode, Scope, Scopes};

use super::claims::now;
use super::flow::{self, Authorization, Browser, EncounterChoice, Prompt, Stage};
use super::grants::{LaunchFor, LinkClient, Pkce, random_token};
use super::launcher;
use super::simulate::SimulatedError;
use super::uri::check_redirect_uri;
use crate::config::{ClientConfig, DEFAULT_SCOPE};
use crate::lint::{Lint, Lints};
use crate::state::AppState;

/// How long a person has to get through the pages, in seconds.
const PENDING_TTL: u64 = 10 * 60;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/authorize", get(authorize).post(authorize))
        .route("/authorize/login", post(login::submit))
        .route("/authorize/patient", post(picker::submit))
        .route("/authorize/consent", post(consent::submit))
}

async fn authorize(
    State(state): State<AppState>,
    jar: CookieJar,
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
    // A standalone launch through a launch link's FHIR base: its `aud` names the link.
    let linked = request
        .aud
        .as_deref()
        .or(request.resource.as_deref())
        .and_then(|aud| launcher::linked_launch(&state, aud));
    let link_for = match (&request.launch, &linked) {
        (Some(id), _) => state.grants().launch_for(id).cloned(),
        (None, Some(Ok(launch))) => Some(launch.for_client.clone()),
        _ => None,
    };
    if let Some(for_client) = link_for {
        adopt_link_app(&state, &request, for_client);
    }
    // While the client or its redirect_uri are in doubt: an error page, never a redirect.
    let client = match trusted_client(&state, &request) {
        Ok(client) => client,
        Err(Untrusted::Client(description)) => {
            return error_page(OAuthErrorCode::InvalidRequest, &description);
        }
        Err(Untrusted::RedirectUri(description)) => {
            let mut page = error_page(OAuthErrorCode::InvalidRequest, &description);
            Lints::attach(&mut page, Lint::RedirectUriNotRegistered, description);
            return page;
        }
    };
    let (browser, jar) = Browser::of_or_new(jar, &state);
    let mut pending = Authorization {
        id: random_token(),
        client,
        redirect_uri: request.redirect_uri.clone(),
        state: request.state.clone(),
        scopes: Scopes::default(),
        code_challenge: None,
        fhir_base: state.urls.fhir_base.clone(),
        launch: None,
        nonce: request.nonce.clone(),
        prompt: Prompt::default(),
        max_age: request.max_age,
        issuer: state.urls.auth_base.clone(),
        browser,
        expires_at: now() + PENDING_TTL,
        encounter: EncounterChoice::Latest,
        stage: Stage::Login,
    };
    // A launch id is used up here, by the client it was made for, even if the rest
    // of the request is refused: a launch is one attempt. A link makes a fresh
    // launch for each request.
    let client_id = &pending.client.client_id;
    let taken = request
        .launch
        .as_deref()
        .map(|id| state.grants().take_launch(id, client_id));
    let launch = match (taken, linked) {
        (_, Some(Err(description))) => Some(Err(description)),
        (Some(taken), _) => Some(taken),
        (None, Some(Ok(launch))) if !launch.for_client.admits(client_id) => {
            Some(Err("this launch link was made for another client".to_owned()))
        }
        (None, linked) => linked,
    };
    if let Some(Ok(launch)) = &launch {
        pending.launch = Some(launch.clone());
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
    if let Some(Err(description)) = launch {
        return pending.redirect_error(OAuthErrorCode::InvalidRequest, &description);
    }
    if let Err((code, description)) = validate(&state, request, &mut pending) {
        return pending.redirect_error(code, &description);
    }
    if pending.prompt.none {
        return (jar, flow::silent(&state, pending)).into_response();
    }
    (jar, flow::show(&state, random_token(), pending)).into_response()
}

/// Why an authorization request's client cannot be trusted with a redirect.
enum Untrusted {
    Client(String),
    RedirectUri(String),
}

/// The registered client, if `redirect_uri` is exactly one of its own.
/// An app that a launch link made for no registration opened (or was given as its
/// `iss`): at its first `/authorize` with that launch, the `client_id` it presents becomes a client of
/// this mock, with the `redirect_uri` it presents, if that is on the link's origin
/// and a valid redirect URI. Otherwise nothing happens, and the request is refused
/// below as any unknown client is.
fn adopt_link_app(state: &AppState, request: &AuthorizeRequest, for_client: LaunchFor) {
    let LaunchFor::AnyAppOn { origin, client } = for_client else {
        return;
    };
    let mut grants = state.grants();
    if grants.client(&request.client_id).is_some() {
        return;
    }
    let sane_id = (1..=128).contains(&request.client_id.len())
        && request
            .client_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    let on_origin =
        url::Url::parse(&request.redirect_uri).is_ok_and(|uri| uri.origin().ascii_serialization() == origin);
    let public = client == LinkClient::Public;
    if !sane_id || !on_origin || check_redirect_uri(&request.redirect_uri, public).is_err() {
        return;
    }
    let adopted = ClientConfig {
        client_id: request.client_id.clone(),
        client_secret: None,
        client_secret_sha256: match &client {
            LinkClient::Secret(digest) => Some(digest.clone()),
            LinkClient::Public | LinkClient::Keys(_) => None,
        },
        name: Some("An app opened by a launch link".to_owned()),
        redirect_uris: vec![request.redirect_uri.clone()],
        scope: DEFAULT_SCOPE.parse().unwrap_or_default(),
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        jwks: None,
        jwks_uri: match client {
            LinkClient::Keys(url) => Some(url),
            LinkClient::Public | LinkClient::Secret(_) => None,
        },
        skip_login: None,
        skip_auth: false,
        simulate_error: None,
    };
    if let Err(full) = grants.adopt(adopted) {
        tracing::warn!("{full}");
    }
}

fn trusted_client(state: &AppState, request: &AuthorizeRequest) -> Result<ClientConfig, Untrusted> {
    let client = state.grants().client(&request.client_id).cloned();
    let client =
        client.ok_or_else(|| Untrusted::Client(format!("unknown client_id {:?}", request.client_id)))?;
    if !client.redirect_uris.contains(&request.redirect_uri) {
        // Usually a port, a trailing slash or http/https: name the nearest.
        let closest = client
            .redirect_uris
            .iter()
            .min_by_key(|uri| strsim::levenshtein(uri, &request.redirect_uri))
            .map(|uri| format!(" (closest registered: {uri})"))
            .unwrap_or_default();
        return Err(Untrusted::RedirectUri(format!(
            "redirect_uri {:?} is not registered for client {}{closest}",
            request.redirect_uri, client.client_id
        )));
    }
    Ok(client)
}

/// Checks the rest of the request and fills `pending` from it.
fn validate(
    state: &AppState,
    request: AuthorizeRequest,
    pending: &mut Authorization,
) -> Result<(), (OAuthErrorCode, String)> {
    use OAuthErrorCode::{InvalidRequest, InvalidScope, UnsupportedResponseType};
    if request.response_type != "code" {
        return Err((UnsupportedResponseType, "response_type must be code".into()));
    }
    if pending.state.as_deref().is_none_or(str::is_empty) {
        return Err((InvalidRequest, "state is required".into()));
    }
    pending.prompt = Prompt::parse(request.prompt.as_deref()).map_err(|e| (InvalidRequest, e))?;
    let app_chooses_pkce = pending
        .launch
        .as_ref()
        .is_some_and(|l| l.pkce == Pkce::AppChooses);
    pending.code_challenge = match (
        request.code_challenge.as_deref().map(str::trim),
        &request.code_challenge_method,
    ) {
        (None | Some(""), _) if app_chooses_pkce => None,
        (None | Some(""), _) => return Err((InvalidRequest, "code_challenge is required (PKCE)".into())),
        (Some(challenge), Some(CodeChallengeMethod::S256)) => Some(challenge.to_owned()),
        _ => return Err((InvalidRequest, "code_challenge_method must be S256".into())),
    };
    match request.aud.as_deref().or(request.resource.as_deref()) {
        // A launch link's base was checked above.
        Some(aud)
            if aud.trim_end_matches('/') == state.urls.fhir_base || state.urls.link_in(aud).is_some() =>
        {
            pending.fhir_base = aud.trim_end_matches('/').to_owned();
        }
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
    if request.launch.is_some() && !pending.scopes.contains(&Scope::Launch) {
        return Err((InvalidScope, "an EHR launch needs the `launch` scope".into()));
    }
    Ok(())
}

pub(crate) fn render(template: &impl Template) -> Response {
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
pub(crate) fn expired_page() -> Response {
    error_page(
        OAuthErrorCode::InvalidRequest,
        "this authorization has expired or was already completed; start again from the app",
    )
}

/// A page for errors that must not redirect.
pub(crate) fn error_page(code: OAuthErrorCode, description: &str) -> Response {
    let mut response = render(&ErrorPage {
        code: code.as_str(),
        description,
    });
    *response.status_mut() = StatusCode::BAD_REQUEST;
    response
}
