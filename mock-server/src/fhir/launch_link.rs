//! `{fhir}/launch/<link>/…`: a launch link (made on the launcher, signed by this
//! mock) used as the FHIR base of a standalone launch. An app given it as its `iss`
//! discovers, authorizes and reads through it: its `aud` names the link, which is
//! how `/authorize` finds the launch to reproduce. So the alias serves the whole
//! API: before routing, its path becomes this server's own, and the alias is kept
//! as the request's [`FhirBase`] for the URLs in the answer.

use axum::extract::{Request, State};
use axum::http::Uri;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::PATH;
use super::outcome::Outcome;
use crate::auth::launcher;
use crate::state::{AppState, FhirBase, LINK_PATH};

/// Serves a request under a launch link's base as one under this server's.
pub(crate) async fn rewrite(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let Some(rest) = request
        .uri()
        .path()
        .strip_prefix(PATH)
        .and_then(|rest| rest.strip_prefix(LINK_PATH))
    else {
        return next.run(request).await;
    };
    let (link, path) = rest.split_once('/').unwrap_or((rest, ""));
    if launcher::verify_link(&state, link).is_none() {
        return Outcome::not_found(
            "this launch link was not made by this mock (or was changed since): make a new one on the launcher",
        )
        .at("launch")
        .into_response();
    }
    let base = FhirBase::new(&state.urls.link_base(link));
    let path = match path {
        "" => PATH.to_owned(),
        path => format!("{PATH}/{path}"),
    };
    let uri = match request.uri().query() {
        Some(query) => format!("{path}?{query}"),
        None => path,
    };
    match uri.parse::<Uri>() {
        Ok(uri) => *request.uri_mut() = uri,
        Err(e) => return Outcome::invalid(format!("malformed path: {e}")).into_response(),
    }
    request.extensions_mut().insert(base);
    next.run(request).await
}
