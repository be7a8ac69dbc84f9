//! `{fhir}/launch/<link>/…`: a launch link (made on the launcher, signed by this
//! mock) used as the FHIR base of a standalone launch. An app given it as its `iss`
//! discovers, authorizes and reads through it: its `aud` names the link, which is
//! how `/authorize` finds the launch to reproduce. So the alias serves the whole
//! API: before routing, its path becomes this server's own, and the alias is kept
//! as the request's [`FhirBase`] for the URLs in the answer.

use axum::extract::Request;
use axum::http::Uri;

use super::PATH;
use super::outcome::Outcome;
use crate::auth::launcher;
use crate::state::{AppState, FhirBase, LINK_PATH};

/// A request under a launch link's base, as one under this server's: applied to
/// every request before routing, so plain and cheap (no future, nothing boxed).
/// A request under a link this mock did not make is left as it came, for
/// [`refused`] to answer.
pub(crate) fn rewrite(state: &AppState, mut request: Request) -> Request {
    let Some((base, uri)) = rewritten(state, request.uri()) else {
        return request;
    };
    *request.uri_mut() = uri;
    request.extensions_mut().insert(base);
    request
}

/// The base of the link in `uri` and the URI it stands for, if this mock made the link.
fn rewritten(state: &AppState, uri: &Uri) -> Option<(FhirBase, Uri)> {
    let rest = uri.path().strip_prefix(PATH)?.strip_prefix(LINK_PATH)?;
    let (link, path) = rest.split_once('/').unwrap_or((rest, ""));
    launcher::verify_link(state, link)?;
    let path = match path {
        "" => PATH.to_owned(),
        path => format!("{PATH}/{path}"),
    };
    let uri = match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path,
    };
    Some((FhirBase::new(&state.urls.link_base(link)), uri.parse().ok()?))
}

/// `{fhir}/launch/…` that [`rewrite`] left: a link this mock did not make, or one
/// changed since. (A good link's URI always becomes a valid one: it only loses
/// segments.)
pub(crate) async fn refused() -> Outcome {
    Outcome::not_found(
        "this launch link was not made by this mock (or was changed since): make a new one on the launcher",
    )
    .at("launch")
}
