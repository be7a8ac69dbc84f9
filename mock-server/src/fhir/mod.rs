//! The FHIR R4 API under `/ccri-fhir/R4`. Every handler but discovery and metadata
//! takes an [`AccessContext`](crate::auth::verify::AccessContext), so an
//! unauthenticated request never reaches one, and asks [`compartment`] what the
//! token may see before it answers.

pub(crate) mod access;
pub(crate) mod body;
pub(crate) mod compartment;
pub(crate) mod definitions;
pub(crate) mod fhirpath;
pub(crate) mod index;
pub(crate) mod launch_link;
pub(crate) mod metadata;
pub(crate) mod outcome;
pub(crate) mod rest;
pub(crate) mod routes;
pub(crate) mod search;
pub(crate) mod store;
pub(crate) mod summary;
pub(crate) mod transaction;
pub(crate) mod validate;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{any, get, post};

use crate::auth::discovery;
use crate::state::{AppState, LINK_PATH};

/// Where the API is served, under this server's origin.
pub(crate) const PATH: &str = "/ccri-fhir/R4";

pub(crate) const NHS_NUMBER_SYSTEM: &str = "https://fhir.nhs.uk/Id/nhs-number";

/// Largest resource accepted by create and update (the app's default body limit).
pub(crate) const BODY_LIMIT: usize = 1024 * 1024;

/// Largest batch or transaction Bundle: a Synthea patient's record is a few MiB.
pub(crate) const BUNDLE_LIMIT: usize = 64 * 1024 * 1024;

/// The API, at its full paths: nesting it would rebuild each request's URI without
/// the prefix, work a read would pay on every request. Paths under [`PATH`] that
/// name no route get a FHIR 404; the others are left to the rest of the app.
pub(crate) fn router() -> Router<AppState> {
    public_router()
        .merge(protected_router())
        .nest(PATH, Router::new().fallback(routes::unknown))
}

/// `path` under the API's base.
fn at(path: &str) -> String {
    format!("{PATH}{path}")
}

/// Routes that need no token: how to find the authorisation server, and the
/// answer to a launch link this mock did not make.
fn public_router() -> Router<AppState> {
    Router::new()
        .route(&at("/.well-known/smart-configuration"), get(discovery::smart))
        .route(&at("/metadata"), get(metadata::capability_statement))
        .route(&format!("{PATH}{LINK_PATH}{{*rest}}"), any(launch_link::refused))
}

/// Routes that need a bearer token.
fn protected_router() -> Router<AppState> {
    Router::new()
        .route(
            PATH,
            post(routes::bundle).layer(DefaultBodyLimit::max(BUNDLE_LIMIT)),
        )
        .route(&at("/_history"), get(routes::history))
        .route(
            &at("/{kind}"),
            get(routes::search_get)
                .post(routes::create)
                .put(routes::update)
                .patch(routes::patch)
                .delete(routes::delete),
        )
        .route(&at("/{kind}/_search"), post(routes::search_post))
        .route(&at("/{kind}/_history"), get(routes::history))
        .route(
            &at("/{kind}/{id}"),
            get(routes::read)
                .put(routes::update)
                .patch(routes::patch)
                .delete(routes::delete),
        )
        .route(&at("/{kind}/{id}/_history"), get(routes::history))
        .route(&at("/{kind}/{id}/_history/{version}"), get(routes::vread))
        .route(&at("/{kind}/{id}/{operation}"), get(routes::instance_operation))
        .method_not_allowed_fallback(routes::not_allowed)
}

/// FHIR ids: `[A-Za-z0-9\-.]{1,64}`.
pub(crate) fn is_valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// A new logical id: 128 random bits in hex (FHIR ids allow `[A-Za-z0-9\-.]{1,64}`).
pub(crate) fn new_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS random source is available");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Now, as a FHIR instant.
pub(crate) fn now_instant() -> String {
    instant(chrono::Utc::now())
}

/// A time as a FHIR instant (`2026-12-02T18:20:48.123Z`).
pub(crate) fn instant(time: chrono::DateTime<chrono::Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
