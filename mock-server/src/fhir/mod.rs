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
use axum::routing::{get, post};

use crate::auth::discovery;
use crate::state::AppState;

/// Where the API is served, under this server's origin.
pub(crate) const PATH: &str = "/ccri-fhir/R4";

pub(crate) const NHS_NUMBER_SYSTEM: &str = "https://fhir.nhs.uk/Id/nhs-number";

/// Largest resource accepted by create and update.
pub(crate) const BODY_LIMIT: usize = 1024 * 1024;

/// Largest batch or transaction Bundle: a Synthea patient's record is a few MiB.
pub(crate) const BUNDLE_LIMIT: usize = 64 * 1024 * 1024;

/// Routes that need no token: how to find the authorisation server.
pub(crate) fn public_router() -> Router<AppState> {
    Router::new()
        .route("/.well-known/smart-configuration", get(discovery::smart))
        .route("/metadata", get(metadata::capability_statement))
}

/// Routes that need a bearer token.
pub(crate) fn protected_router() -> Router<AppState> {
    Router::new()
        .route(
            "/",
            post(routes::bundle).layer(DefaultBodyLimit::max(BUNDLE_LIMIT)),
        )
        .route("/_history", get(routes::history))
        .route(
            "/{kind}",
            get(routes::search_get)
                .post(routes::create)
                .put(routes::update)
                .patch(routes::patch)
                .delete(routes::delete),
        )
        .route("/{kind}/_search", post(routes::search_post))
        .route("/{kind}/_history", get(routes::history))
        .route(
            "/{kind}/{id}",
            get(routes::read)
                .put(routes::update)
                .patch(routes::patch)
                .delete(routes::delete),
        )
        .route("/{kind}/{id}/_history", get(routes::history))
        .route("/{kind}/{id}/_history/{version}", get(routes::vread))
        .route("/{kind}/{id}/{operation}", get(routes::instance_operation))
        .fallback(routes::unknown)
        .method_not_allowed_fallback(routes::not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
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
