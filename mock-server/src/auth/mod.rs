//! The OAuth 2.0 / SMART authorisation server under `/ccri-auth`, one file per
//! endpoint. The FHIR side depends only on [`verify`]; this side never imports the
//! FHIR side (it reads patients through [`patients::PatientDirectory`]).

pub(crate) mod authorize;
pub(crate) mod certificate;
pub(crate) mod claims;
pub(crate) mod client_auth;
pub(crate) mod client_keys;
pub(crate) mod clients_page;
pub(crate) mod discovery;
pub(crate) mod error;
pub(crate) mod flow;
pub(crate) mod grants;
pub(crate) mod introspect;
pub(crate) mod jwks;
pub(crate) mod keys;
pub(crate) mod launcher;
pub(crate) mod manage;
pub(crate) mod patients;
pub(crate) mod register;
pub(crate) mod revoke;
pub(crate) mod simulate;
pub(crate) mod token;
pub(crate) mod uri;
pub(crate) mod userinfo;
pub(crate) mod verify;

use axum::Router;
use axum::routing::{get, post};

use crate::state::AppState;

/// Routes relative to the auth base.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .merge(authorize::router())
        .route("/token", post(token::token))
        .route("/register", post(register::register))
        .route(
            "/register/{client_id}",
            get(manage::read).put(manage::update).delete(manage::delete),
        )
        .route("/introspect", post(introspect::introspect))
        .route("/revoke", post(revoke::revoke))
        .route("/jwk", get(jwks::jwks))
        .route("/certificate.pem", get(certificate::certificate))
        .route("/userinfo", get(userinfo::userinfo))
        .route("/.well-known/openid-configuration", get(discovery::openid))
        .route("/smart-style.json", get(discovery::style))
        .route("/launcher", get(launcher::page).post(launcher::launch))
        .route("/launcher/open", get(launcher::open_link))
        .route("/launcher/link", get(launcher::make_link))
        .route("/launch/{link}", get(launcher::open_signed))
        .route("/clients", get(clients_page::page).post(clients_page::create))
        .route(
            "/clients/{client_id}",
            get(clients_page::edit_page).post(clients_page::edit),
        )
}

/// The non-empty lines of a form's textarea, trimmed: one redirect URI, or one
/// fhirContext reference, a line.
fn form_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().map(str::trim).filter(|l| !l.is_empty())
}
