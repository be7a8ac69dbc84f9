//! The consent page: the requested scopes in words, Allow or Deny.
//! Deny sends the app `error=access_denied` (RFC 6749 §4.1.2.1).

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use smart_protocol::scope::{Context, Permissions, ResourceScope, ResourceType};
use smart_protocol::{OAuthErrorCode, Scope};

use axum_extra::extract::CookieJar;

use super::render;
use crate::auth::flow::{self, Authorization, Browser, Step};
use crate::config::UserConfig;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentPage<'a> {
    action: String,
    txn: &'a str,
    client_name: &'a str,
    user_name: &'a str,
    patient: Option<String>,
    scopes: Vec<(String, String)>,
}

pub(crate) fn page(
    state: &AppState,
    txn: &str,
    authorization: &Authorization,
    user: &UserConfig,
    patient: Option<&str>,
) -> Response {
    let patient = patient.map(|id| {
        state
            .patients()
            .patient(id)
            .map_or_else(|| format!("Patient/{id}"), |p| p.name)
    });
    render(&ConsentPage {
        action: state.urls.auth("authorize/consent"),
        txn,
        client_name: authorization.client_name(),
        user_name: &user.name,
        patient,
        scopes: authorization
            .scopes
            .iter()
            .map(|s| (s.to_string(), describe(s)))
            .collect(),
    })
}

/// A scope in words a patient understands.
fn describe(scope: &Scope) -> String {
    match scope {
        Scope::OpenId | Scope::Profile => "who you are (your name)".into(),
        Scope::FhirUser => "a link to your record as a user".into(),
        Scope::Launch => "the context the app was opened in".into(),
        Scope::LaunchPatient => "which patient is selected".into(),
        Scope::LaunchEncounter => "which encounter is selected".into(),
        Scope::OfflineAccess => "access while you are away, until you revoke it".into(),
        Scope::OnlineAccess => "access while you are logged in".into(),
        Scope::Resource(resource) => describe_resource(resource),
        Scope::Other(_) => "a permission this server does not describe".into(),
    }
}

fn describe_resource(scope: &ResourceScope) -> String {
    let mut verbs = Vec::new();
    for (bit, verb) in [
        (Permissions::READ, "read"),
        (Permissions::SEARCH, "search"),
        (Permissions::CREATE, "create"),
        (Permissions::UPDATE, "change"),
        (Permissions::DELETE, "delete"),
    ] {
        if scope.permissions.contains(bit) {
            verbs.push(verb);
        }
    }
    let what = match &scope.resource_type {
        ResourceType::Any => "all kinds of records".to_owned(),
        ResourceType::Named(name) => format!("{name} records"),
    };
    let whose = match scope.context {
        Context::Patient => "of the selected patient",
        Context::User => "you are allowed to see",
        Context::System => "on the whole server",
    };
    let only = if scope.constraints.is_empty() {
        String::new()
    } else {
        " (only some of them)".into()
    };
    format!("{} {what} {whose}{only}", verbs.join(", "))
}

#[derive(Deserialize)]
pub(crate) struct ConsentForm {
    txn: String,
    decision: String,
}

pub(crate) async fn submit(
    State(state): State<AppState>,
    jar: CookieJar,
    Form(form): Form<ConsentForm>,
) -> Response {
    let authorization = match flow::resume(&state, &form.txn, Browser::of(&jar).as_ref(), Step::Consent) {
        Ok(authorization) => authorization,
        Err(refusal) => return *refusal,
    };
    if form.decision == "allow" {
        flow::finish(&state, authorization)
    } else {
        authorization.redirect_error(OAuthErrorCode::AccessDenied, "the user denied access")
    }
}
