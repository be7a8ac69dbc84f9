//! `GET|POST {auth}/clients`: self-service client registration in the browser, as
//! CCRI's "+ New Client". The form goes through the same validation as
//! `POST {auth}/register`. The list is paged: anyone may register, so it can be long.
//!
//! `GET|POST {auth}/clients/{client_id}`: the same client's redirect URIs and scopes
//! edited, or the client deleted, by whoever holds its registration access token
//! (shown once, when it is registered): the page is RFC 7592 management in a form.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use smart_protocol::ClientMetadata;
use smart_protocol::discovery::{AuthMethod, GrantType};

use super::authorize::render;
use super::form_lines;
use super::register::{register_client, validated};
use crate::config::{ClientConfig, DEFAULT_SCOPE};
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
    /// (client_id, client_secret, registration access token) of the client just registered.
    registered: Option<(String, Option<String>, String)>,
    /// What the last edit did.
    notice: Option<String>,
    error: Option<String>,
    inspector: String,
}

#[derive(Template)]
#[template(path = "client_edit.html")]
struct EditPage<'a> {
    action: String,
    client_id: &'a str,
    name: &'a str,
    redirect_uris: String,
    scope: String,
    error: Option<String>,
}

/// Clients a page lists.
const PER_PAGE: usize = 50;

fn render_page(
    state: &AppState,
    page: usize,
    registered: Option<(String, Option<String>, String)>,
    notice: Option<String>,
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
        notice,
        error,
        inspector: state.urls.auth("inspector"),
    })
}

#[derive(Deserialize)]
pub(crate) struct PageQuery {
    #[serde(default)]
    page: Option<usize>,
}

pub(crate) async fn page(State(state): State<AppState>, Query(query): Query<PageQuery>) -> Response {
    render_page(&state, query.page.unwrap_or(1).max(1), None, None, None)
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
            Err(e) => return render_page(&state, 1, None, None, Some(format!("{e}"))),
        },
    };
    let method = if form.confidential.is_some() {
        AuthMethod::ClientSecretBasic
    } else {
        AuthMethod::None
    };
    let metadata = ClientMetadata {
        client_name: Some(form.client_name),
        redirect_uris: form_lines(&form.redirect_uris).map(str::to_owned).collect(),
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
                registration
                    .registration_access_token
                    .map(|t| t.secret().to_owned())
                    .unwrap_or_default(),
            )),
            None,
            None,
        ),
        Err(rejection) => render_page(&state, 1, None, None, Some(rejection.0.to_string())),
    }
}

fn unknown_client(state: &AppState, client_id: &str) -> Response {
    render_page(
        state,
        1,
        None,
        None,
        Some(format!("{client_id} is not a client of this mock")),
    )
}

/// The edit page of a registered client, filled with its current settings.
pub(crate) async fn edit_page(State(state): State<AppState>, Path(client_id): Path<String>) -> Response {
    let Some(client) = state.grants().client(&client_id).cloned() else {
        return unknown_client(&state, &client_id);
    };
    render_edit(&state, &client, None)
}

fn render_edit(state: &AppState, client: &ClientConfig, error: Option<String>) -> Response {
    let mut response = render(&EditPage {
        action: state.urls.auth(&format!("clients/{}", client.client_id)),
        client_id: &client.client_id,
        name: client.display_name(),
        redirect_uris: client.redirect_uris.join("\n"),
        scope: client.scope.to_string(),
        error: error.clone(),
    });
    if error.is_some() {
        *response.status_mut() = StatusCode::BAD_REQUEST;
    }
    response
}

#[derive(Deserialize)]
pub(crate) struct EditForm {
    registration_access_token: String,
    #[serde(default)]
    redirect_uris: String,
    #[serde(default)]
    scope: String,
    /// `save` or `delete`.
    decision: String,
}

pub(crate) async fn edit(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    Form(form): Form<EditForm>,
) -> Response {
    let managed = state
        .grants()
        .managed(&client_id, form.registration_access_token.trim())
        .map(|(client, registration)| (client.clone(), registration.metadata.clone()));
    let Some((client, mut metadata)) = managed else {
        let Some(client) = state.grants().client(&client_id).cloned() else {
            return unknown_client(&state, &client_id);
        };
        let refused = "that is not this client's registration access token (configured clients have none)";
        return render_edit(&state, &client, Some(refused.into()));
    };
    if form.decision == "delete" {
        state.grants().unregister(&client_id);
        return render_page(
            &state,
            1,
            None,
            Some(format!("Deleted {client_id}; its tokens no longer work.")),
            None,
        );
    }
    metadata.redirect_uris = form_lines(&form.redirect_uris).map(str::to_owned).collect();
    metadata.scope = match form.scope.trim() {
        "" => None,
        text => match text.parse() {
            Ok(scope) => Some(scope),
            Err(e) => return render_edit(&state, &client, Some(format!("{e}"))),
        },
    };
    match validated(
        &state,
        client.client_id.clone(),
        metadata,
        client.client_secret.clone(),
    )
    .await
    {
        Ok((updated, metadata)) => {
            state.grants().update_registration(updated, metadata);
            render_page(&state, 1, None, Some(format!("Saved {client_id}.")), None)
        }
        Err(rejection) => render_edit(&state, &client, Some(rejection.0.to_string())),
    }
}
