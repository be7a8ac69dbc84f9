//! The consent page: the requested scopes in words, Allow or Deny.
//! Deny sends the app `error=access_denied` (RFC 6749 §4.1.2.1).

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use smart_protocol::scope::{Context, Permissions, ResourceScope, ResourceType};
use smart_protocol::{OAuthErrorCode, Scope};

use super::{Pending, expired_page, finish, render, take_pending};
use crate::config::UserConfig;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentPage<'a> {
    action: String,
    txn: &'a str,
    client_name: String,
    user_name: &'a str,
    patient: Option<String>,
    scopes: Vec<(String, String)>,
}

pub fn page(state: &AppState, txn: &str, pending: &Pending, user: &UserConfig) -> Response {
    let patient = pending.patient.as_ref().map(|id| {
        state
            .fhir
            .patient_summaries()
            .into_iter()
            .find(|p| &p.id == id)
            .map(|p| p.name)
            .unwrap_or_else(|| format!("Patient/{id}"))
    });
    render(&ConsentPage {
        action: state.urls.auth("authorize/consent"),
        txn,
        client_name: pending
            .client
            .name
            .clone()
            .unwrap_or_else(|| pending.client.client_id.clone()),
        user_name: &user.name,
        patient,
        scopes: pending
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
pub struct ConsentForm {
    txn: String,
    decision: String,
}

pub async fn submit(State(state): State<AppState>, Form(form): Form<ConsentForm>) -> Response {
    let Some(pending) = take_pending(&state, &form.txn) else {
        return expired_page();
    };
    if form.decision == "allow" {
        finish(&state, pending)
    } else {
        pending.redirect_error(OAuthErrorCode::AccessDenied, "the user denied access")
    }
}
