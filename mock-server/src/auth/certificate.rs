//! `GET {auth}/certificate.pem`: with `--tls`, the server's certificate, so a phone
//! can download and trust it (its fingerprint is in the start-up banner to compare).
//! 404 without `--tls`.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

pub(crate) async fn certificate(State(state): State<AppState>) -> Response {
    match &state.tls_certificate {
        Some(pem) => ([(header::CONTENT_TYPE, "application/x-pem-file")], pem.clone()).into_response(),
        None => (StatusCode::NOT_FOUND, "this server runs without --tls").into_response(),
    }
}
