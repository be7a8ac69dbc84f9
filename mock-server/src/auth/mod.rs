//! The OAuth 2.0 / SMART authorisation server under `/ccri-auth`, one file per
//! endpoint. The FHIR side depends only on [`verify`]; this side never imports the
//! FHIR side (it reads patients through [`patients::PatientDirectory`]).

pub mod authorize;
pub mod claims;
pub mod client_auth;
pub(crate) mod client_keys;
pub mod clients_page;
pub mod discovery;
pub mod error;
pub(crate) mod flow;
pub mod grants;
pub mod introspect;
pub mod jwks;
pub mod keys;
pub mod launcher;
pub mod patients;
pub mod register;
pub mod revoke;
pub mod simulate;
pub mod token;
pub(crate) mod uri;
pub mod userinfo;
pub mod verify;

use axum::Router;
use axum::routing::{get, post};

use crate::state::AppState;

/// Routes relative to the auth base.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(authorize::router())
        .route("/token", post(token::token))
        .route("/register", post(register::register))
        .route("/introspect", post(introspect::introspect))
        .route("/revoke", post(revoke::revoke))
        .route("/jwk", get(jwks::jwks))
        .route("/userinfo", get(userinfo::userinfo))
        .route("/.well-known/openid-configuration", get(discovery::openid))
        .route("/smart-style.json", get(discovery::style))
        .route("/launcher", get(launcher::page).post(launcher::launch))
        .route("/clients", get(clients_page::page).post(clients_page::create))
}
