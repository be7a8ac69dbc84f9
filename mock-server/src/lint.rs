//! Lints: what is wrong with a request an app sent, said so that the developer
//! knows what to change, with the spec section that says so. The inspector shows
//! them beside each request.
//!
//! Most are read from the request itself by the inspector's layer (a token in a
//! URL, an authorize request without PKCE); the rest are attached to the response
//! by the side that found them ([`Lints::attach`]), as an error's [`Problem`]
//! is: the FHIR API when a search names an unknown parameter or a token's scopes
//! refuse a request. Lints never change what the server answers.
//!
//! [`Problem`]: crate::inspector::Problem

use axum::http::Method;
use axum::response::Response;
use serde::Serialize;
use smart_protocol::scope::Syntax;
use smart_protocol::{Context, Scope};
use strum::IntoStaticStr;

use crate::state::Urls;

/// A kind of mistake. Its id (kebab case) is stable: tests may assert on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, IntoStaticStr)]
#[strum(serialize_all = "kebab-case")]
pub(crate) enum Lint {
    TokenInQuery,
    AuthorizationNotBearer,
    AuthorizeWithoutPkce,
    PkcePlain,
    AuthorizeWithoutAud,
    AudNotFhirBase,
    AuthorizeWithoutState,
    RedirectUriNotRegistered,
    UnknownScope,
    ScopeVersionsMixed,
    LaunchWithoutLaunchParameter,
    PatientScopesWithoutPatient,
    PkceVerifierMismatch,
    ExpiredTokenUsed,
    ScopeRefused,
    UnknownSearchParameter,
    CountAboveLimit,
    StateReused,
    RefreshTooEarly,
    #[strum(serialize = "token-used-after-401")]
    TokenUsedAfter401,
    SearchRepeated,
    OfflineAccessUnused,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Severity {
    /// The request breaks a MUST, or fails because of it.
    Error,
    /// It works here, and is unsafe or fragile elsewhere.
    Warning,
}

impl Lint {
    pub(crate) fn id(self) -> &'static str {
        self.into()
    }

    pub(crate) fn severity(self) -> Severity {
        match self {
            Lint::TokenInQuery
            | Lint::AuthorizeWithoutState
            | Lint::ScopeVersionsMixed
            | Lint::CountAboveLimit
            | Lint::RefreshTooEarly
            | Lint::SearchRepeated
            | Lint::OfflineAccessUnused => Severity::Warning,
            _ => Severity::Error,
        }
    }

    /// What is wrong, and what to do instead.
    pub(crate) fn advice(self) -> &'static str {
        match self {
            Lint::TokenInQuery => {
                "The access token is in the URL, where logs and browser history keep it: send it in an Authorization: Bearer header."
            }
            Lint::AuthorizationNotBearer => {
                "The Authorization header is not a Bearer token: send \"Authorization: Bearer <access_token>\"."
            }
            Lint::AuthorizeWithoutPkce => {
                "The authorization request has no code_challenge: SMART 2 requires PKCE with S256 from every app."
            }
            Lint::PkcePlain => {
                "code_challenge_method=plain protects nothing: send the S256 hash of the verifier instead."
            }
            Lint::AuthorizeWithoutAud => {
                "The authorization request has no aud: send the FHIR base URL, so a token for this server cannot be replayed elsewhere."
            }
            Lint::AudNotFhirBase => {
                "aud is not this server's FHIR base URL: send the iss the launch gave (the FHIR base)."
            }
            Lint::AuthorizeWithoutState => {
                "The authorization request has no state: send an unguessable value and check it on return (CSRF)."
            }
            Lint::RedirectUriNotRegistered => {
                "The redirect_uri is not one the client registered, character for character: register it, or send the registered one named."
            }
            Lint::UnknownScope => {
                "A requested scope is not one SMART defines: it is granted as nothing. Check its spelling against the closest one named."
            }
            Lint::ScopeVersionsMixed => {
                "The request mixes SMART v1 scopes (.read/.write) with v2 ones (.cruds): pick one form; servers differ in how they combine them."
            }
            Lint::LaunchWithoutLaunchParameter => {
                "The scope asks for launch, but there is no launch parameter: launch is for EHR launches; a standalone app asks for launch/patient."
            }
            Lint::PatientScopesWithoutPatient => {
                "patient/ scopes need a patient in context, but neither launch nor launch/patient is asked: the token will reach no patient."
            }
            Lint::PkceVerifierMismatch => {
                "The code_verifier is not the one whose S256 hash was sent as code_challenge: keep the verifier of this launch (per tab, per state) until the exchange."
            }
            Lint::ExpiredTokenUsed => {
                "The access token has expired: refresh it (or launch again) before its expires_in runs out, and retry after a 401 only with a new token."
            }
            Lint::ScopeRefused => {
                "The token's scopes do not allow this request: ask for the scope the error names, or do not make the request."
            }
            Lint::UnknownSearchParameter => {
                "The search names a parameter this resource type does not have: a server that ignored it would return more than asked."
            }
            Lint::CountAboveLimit => {
                "_count is above the largest page this server serves: ask for at most that many and follow the next links."
            }
            Lint::StateReused => {
                "This client sent the same state in an earlier authorization request: make a new unguessable state for every request, or it protects nothing."
            }
            Lint::RefreshTooEarly => {
                "The access token was refreshed while most of its lifetime was left: refresh shortly before expires_in runs out (or after a 401), not on every page load or request."
            }
            Lint::TokenUsedAfter401 => {
                "This access token was already refused with a 401: refresh it (or launch again) and retry with the new one, instead of sending it again."
            }
            Lint::SearchRepeated => {
                "The same search was made again within a minute: follow the Bundle's next link for more results, and keep the pages you fetched instead of asking again."
            }
            Lint::OfflineAccessUnused => {
                "This public app launched again while it held a refresh token it never used, whose access token had expired: refresh instead, or stop asking offline_access, so no long-lived token sits in the browser for nothing."
            }
        }
    }

    /// The specification that says so.
    pub(crate) fn spec(self) -> &'static str {
        match self {
            Lint::TokenInQuery => "RFC 6750 §2.3, RFC 9700 §4.3.2",
            Lint::AuthorizationNotBearer => "RFC 6750 §2.1",
            Lint::AuthorizeWithoutPkce | Lint::PkcePlain => {
                "SMART App Launch 2.2 §App Protection, RFC 7636 §4.2"
            }
            Lint::AuthorizeWithoutAud | Lint::AudNotFhirBase => {
                "SMART App Launch 2.2 §Obtain authorization code"
            }
            Lint::AuthorizeWithoutState => "RFC 6749 §10.12, RFC 9700 §4.7",
            Lint::RedirectUriNotRegistered => "RFC 6749 §3.1.2.3, RFC 9700 §4.1.3",
            Lint::UnknownScope | Lint::ScopeVersionsMixed | Lint::PatientScopesWithoutPatient => {
                "SMART App Launch 2.2 §Scopes and launch context"
            }
            Lint::LaunchWithoutLaunchParameter => "SMART App Launch 2.2 §EHR launch",
            Lint::PkceVerifierMismatch => "RFC 7636 §4.6",
            Lint::ExpiredTokenUsed => "RFC 6750 §3.1, SMART App Launch 2.2 §Refresh access token",
            Lint::ScopeRefused => "SMART App Launch 2.2 §Scopes and launch context",
            Lint::UnknownSearchParameter => "FHIR R4 §3.1.1.2 (Search: handling errors)",
            Lint::CountAboveLimit => "FHIR R4 §3.1.1.5.5 (_count)",
            Lint::StateReused => "RFC 6749 §10.12, RFC 9700 §4.7.1",
            Lint::RefreshTooEarly => "SMART App Launch 2.2 §Refresh access token, RFC 6749 §6",
            Lint::TokenUsedAfter401 => "RFC 6750 §3.1, SMART App Launch 2.2 §Refresh access token",
            Lint::SearchRepeated => "FHIR R4 §3.1.1.5 (Search: paging with the Bundle's links)",
            Lint::OfflineAccessUnused => {
                "SMART App Launch 2.2 §Scopes for requesting a refresh token, RFC 9700 §4.14.2"
            }
        }
    }
}

/// One lint found on one request, with what it is about (`aud=https://…`).
#[derive(Clone, Debug)]
pub(crate) struct Found {
    pub(crate) lint: Lint,
    pub(crate) detail: String,
}

/// The lints a handler found, carried on its response for the inspector.
#[derive(Clone, Debug, Default)]
pub(crate) struct Lints(pub(crate) Vec<Found>);

impl Lints {
    pub(crate) fn attach(response: &mut Response, lint: Lint, detail: impl Into<String>) {
        let found = Found {
            lint,
            detail: detail.into(),
        };
        match response.extensions_mut().get_mut::<Lints>() {
            Some(lints) => lints.0.push(found),
            None => {
                response.extensions_mut().insert(Lints(vec![found]));
            }
        }
    }
}

/// The lints a request shows by itself: its method, path, query parameters and
/// `Authorization` header. `urls` are the server's: an authorization request's
/// `aud` must name its FHIR base (or a launch link's alias of it).
pub(crate) fn of_request(
    method: &Method,
    path: &str,
    params: &[(String, String)],
    authorization: Option<&str>,
    urls: &Urls,
) -> Vec<Found> {
    let fhir_base = &urls.fhir_base;
    let mut found = Vec::new();
    let mut lint = |lint, detail: String| found.push(Found { lint, detail });
    let param = |name: &str| params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    if param("access_token").is_some() {
        lint(Lint::TokenInQuery, "access_token=…".into());
    }
    if path.contains("/ccri-fhir/")
        && let Some(authorization) = authorization
        && !authorization
            .get(..7)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("bearer "))
    {
        let scheme = authorization.split(' ').next().unwrap_or_default();
        lint(Lint::AuthorizationNotBearer, format!("Authorization: {scheme} …"));
    }
    if *method == Method::GET && path.ends_with("/ccri-auth/authorize") {
        match (param("code_challenge"), param("code_challenge_method")) {
            (None, _) => lint(Lint::AuthorizeWithoutPkce, "no code_challenge".into()),
            (Some(_), Some("plain")) => lint(Lint::PkcePlain, "code_challenge_method=plain".into()),
            _ => {}
        }
        match param("aud") {
            None => lint(Lint::AuthorizeWithoutAud, "no aud".into()),
            Some(aud) if aud.trim_end_matches('/') != fhir_base && urls.link_in(aud).is_none() => {
                lint(Lint::AudNotFhirBase, format!("aud={aud}, expected {fhir_base}"))
            }
            Some(_) => {}
        }
        if param("state").is_none_or(str::is_empty) {
            lint(Lint::AuthorizeWithoutState, "no state".into());
        }
        for (lint_found, detail) in scope_lints(param("scope").unwrap_or_default(), param("launch").is_some())
        {
            lint(lint_found, detail);
        }
    }
    found
}

/// What is wrong with an authorization request's `scope`, given whether it
/// carries a `launch` parameter.
fn scope_lints(scope: &str, has_launch: bool) -> Vec<(Lint, String)> {
    let mut found = Vec::new();
    let mut syntaxes = Vec::new();
    let mut patient_scopes = false;
    let mut named = Vec::new();
    for text in scope.split_whitespace() {
        match text.parse::<Scope>() {
            Ok(Scope::Resource(resource)) => {
                syntaxes.push(resource.syntax);
                patient_scopes |= resource.context == Context::Patient;
            }
            Ok(Scope::Other(_)) | Err(_) => {
                let closest = closest_scope(text);
                found.push((Lint::UnknownScope, format!("{text} (closest: {closest})")));
            }
            Ok(other) => named.push(other),
        }
    }
    if syntaxes.contains(&Syntax::V1) && syntaxes.contains(&Syntax::V2) {
        found.push((Lint::ScopeVersionsMixed, scope.to_owned()));
    }
    if named.contains(&Scope::Launch) && !has_launch {
        found.push((
            Lint::LaunchWithoutLaunchParameter,
            "scope launch, no launch=".into(),
        ));
    }
    if patient_scopes
        && !named
            .iter()
            .any(|s| matches!(s, Scope::Launch | Scope::LaunchPatient))
    {
        found.push((
            Lint::PatientScopesWithoutPatient,
            "patient/ scopes without launch or launch/patient".into(),
        ));
    }
    found
}

/// The scope SMART defines that `text` is likely a misspelling of:
/// `patient/Observation.reed` → `patient/Observation.read`.
fn closest_scope(text: &str) -> String {
    let permissions = ["read", "write", "*", "c", "r", "rs", "cruds", "s", "u", "d"];
    let mut candidates: Vec<String> = Scope::NAMED.iter().map(|s| s.to_string()).collect();
    if let Some((head, _)) = text.rsplit_once('.') {
        candidates.extend(permissions.iter().map(|p| format!("{head}.{p}")));
    }
    if let Some((_, rest)) = text.split_once('/') {
        candidates.extend(
            ["patient", "user", "system"]
                .iter()
                .map(|c| format!("{c}/{rest}")),
        );
    }
    candidates
        .into_iter()
        .filter(|c| c.parse::<Scope>().is_ok_and(|s| !matches!(s, Scope::Other(_))))
        .min_by_key(|c| strsim::levenshtein(c, text))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_read_for_their_mistakes() {
        let ids =
            |method: Method, path: &str, query: &str, authorization: Option<&str>| -> Vec<&'static str> {
                let params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
                    .into_owned()
                    .collect();
                of_request(&method, path, &params, authorization, &Urls::new("http://h"))
                    .iter()
                    .map(|f| f.lint.id())
                    .collect()
            };
        assert_eq!(
            ids(
                Method::GET,
                "/ccri-auth/authorize",
                "response_type=code&client_id=a",
                None
            ),
            [
                "authorize-without-pkce",
                "authorize-without-aud",
                "authorize-without-state"
            ]
        );
        assert_eq!(
            ids(
                Method::GET,
                "/ccri-auth/authorize",
                "code_challenge=x&code_challenge_method=plain&aud=http://elsewhere/fhir&state=s",
                None
            ),
            ["pkce-plain", "aud-not-fhir-base"]
        );
        assert!(
            ids(
                Method::GET,
                "/ccri-auth/authorize",
                "code_challenge=x&code_challenge_method=S256&aud=http://h/ccri-fhir/R4/&state=s",
                None
            )
            .is_empty()
        );
        assert!(
            ids(
                Method::GET,
                "/ccri-auth/authorize",
                "code_challenge=x&code_challenge_method=S256&aud=http://h/ccri-fhir/R4/launch/a.b.c&state=s",
                None
            )
            .is_empty(),
            "a launch link's base is an alias of this server's"
        );
        assert_eq!(
            ids(
                Method::GET,
                "/ccri-fhir/R4/Patient",
                "access_token=t",
                Some("Token t")
            ),
            ["token-in-query", "authorization-not-bearer"]
        );
        assert!(ids(Method::GET, "/ccri-fhir/R4/Patient", "", Some("bearer t")).is_empty());
    }

    #[test]
    fn scopes_are_read_for_their_mistakes() {
        let lints = |scope: &str, launch: bool| -> Vec<(&'static str, String)> {
            scope_lints(scope, launch)
                .into_iter()
                .map(|(l, d)| (l.id(), d))
                .collect()
        };
        assert_eq!(
            lints("launch/patient patient/Observation.reed", false),
            [(
                "unknown-scope",
                "patient/Observation.reed (closest: patient/Observation.read)".to_owned()
            )]
        );
        assert_eq!(
            lints(
                "launch/patient patient/Patient.read patient/Observation.rs",
                false
            )[0]
            .0,
            "scope-versions-mixed"
        );
        assert_eq!(
            lints("launch patient/Patient.rs", false)[0].0,
            "launch-without-launch-parameter"
        );
        assert!(lints("launch patient/Patient.rs", true).is_empty());
        assert_eq!(
            lints("patient/Patient.rs openid", false)[0].0,
            "patient-scopes-without-patient"
        );
        assert!(
            lints(
                "openid fhirUser launch/patient patient/*.rs offline_access",
                false
            )
            .is_empty()
        );
    }
}
