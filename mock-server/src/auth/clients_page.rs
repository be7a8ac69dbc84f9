//! `GET|POST {auth}/clients`: self-service client registration in the browser, as
//! CCRI's "+ New Client". The form goes through the same validation as
//! `POST {auth}/register`. The list is paged: anyone may register, so it can be long.

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;
use smart_protocol::ClientMetadata;
use smart_protocol::discovery::{AuthMethod, GrantType};

use super::authorize::render;
use super::register::register_client;
use crate::config::DEFAULT_SCOPE;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "clients.html")]
struct ClientsPage<'a> {
    action: String,
    default_scope: &'a str,
    /// (client_id, name, type, redirect URIs, scopes)
    clients: Vec<(String, String, &'static str, String, String)>,
    /// This page's number (from 1), and whether there are pages before and after it.
    page: usize,
    previous: bool,
    next: bool,
    /// (client_id, client_secret) of the client just registered.
    registered: Option<(String, Option<String>)>,
    error: Option<String>,
}

/// Clients a page lists.
const PER_PAGE: usize = 50;

fn render_page(
    state: &AppState,
    page: usize,
    registered: Option<(String, Option<String>)>,
    error: Option<String>,
) -> Response {
    let grants = state.grants();
    let total = grants.client_count();
    let clients: Vec<_> = grants
        .clients()
        .skip((page - 1).saturating_mul(PER_PAGE))
        .take(PER_PAGE)
        .map(|c| {
            let kind = if c.is_confidential() {
                "confidential"
            } else {
                "public"
            };
            let name = c.name.clone().unwrap_or_default();
            (
                c.client_id.clone(),
                name,
                kind,
                c.redirect_uris.join(" "),
                c.scope.to_string(),
            )
        })
        .collect();
    drop(grants);
    render(&ClientsPage {
        action: state.urls.auth("clients"),
        default_scope: DEFAULT_SCOPE,
        clients,
        page,
        previous: page > 1,
        next: page.saturating_mul(PER_PAGE) < total,
        registered,
        error,
    })
}

#[derive(Deserialize)]
pub(crate) struct PageQuery {
    #[serde(default)]
    page: Option<usize>,
}

pub(crate) async fn page(State(state): State<AppState>, Query(query): Query<PageQuery>) -> Response {
    render_page(&state, query.page.unwrap_or(1).max(1), None, None)
}

#[derive(Deserialize)]
pub(crate) struct NewClient {
    client_name: String,
    redirect_uris: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    confidential: Option<String>,
}

pub(crate) async fn create(State(state): State<AppState>, Form(form): Form<NewClient>) -> Response {
    let scope = match form.scope.trim() {
        "" => None,
        text => match text.parse() {
            Ok(scope) => Some(scope),
            Err(e) => return render_page(&state, 1, None, Some(format!("{e}"))),
        },
    };
    let method = if form.confidential.is_some() {
        AuthMethod::ClientSecretBasic
    } else {
        AuthMethod::None
    };
    let metadata = ClientMetadata {
        client_name: Some(form.client_name),
        redirect_uris: form
            .redirect_uris
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
        token_endpoint_auth_method: Some(method),
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        scope,
        ..ClientMetadata::default()
    };
    match register_client(&state, metadata).await {
        Ok(registration) => render_page(
            &state,
            1,
            Some((
                registration.client_id,
                registration.client_secret.map(|s| s.secret().to_owned()),
            )),
            None,
        ),
        Err(rejection) => render_page(&state, 1, None, Some(rejection.0.to_string())),
    }
}
