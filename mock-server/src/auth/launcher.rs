//! `GET|POST {auth}/launcher`: the EHR launch simulator. A developer picks an app
//! (a registered client), a patient (or none, for a practitioner-only launch), a
//! practitioner, an encounter, and the rest of SMART 2.2's launch context
//! (`fhirContext` references, `intent`, `tenant`, whether the app must show a
//! patient banner); the mock stores them under a new launch id and opens the app at
//! `launch_url?iss={fhir base}&launch={id}`, as an EHR would. The app's `/authorize`
//! request then carries that `launch`, which works once, for that client only,
//! within a few minutes (`grants.rs`): it stands for a practitioner already
//! logged in, so it must not be a reusable pass.
//!
//! A launch can also be a link: "Make a link" shows `{auth}/launcher/open?…`, the
//! same choices as a query, which creates a fresh launch each time it is opened,
//! so one URL reproduces a launch in CI or a bug report. Because a link (or a
//! form on another site) can send a browser here, the app must be opened on the
//! origin of one of its registered redirect URIs: the launcher is not an open
//! redirect.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use jsonwebtoken::Validation;
use serde::{Deserialize, Serialize};
use smart_protocol::{FhirContextItem, LaunchContext};
use url::Url;

use super::authorize::render;
use super::client_auth::sha256_hex;
use super::form_lines;
use super::grants::{Launch, LaunchFor, LinkClient, Pkce};
use super::keys::TokenKind;
use super::patients::PatientRow;
use super::simulate::SimulatedError;
use super::uri::{check_jwks_uri, check_launch_url};
use crate::config::UserConfig;
use crate::reference::FhirReference;
use crate::state::AppState;

/// The demo app's launch page.
const DEFAULT_LAUNCH_URL: &str = "http://127.0.0.1:5173/";

#[derive(Template)]
#[template(path = "launcher.html")]
struct LauncherPage<'a> {
    action: String,
    launch_url: &'a str,
    /// (client_id, name) of the clients that can be launched (those with redirect URIs).
    clients: Vec<(String, String)>,
    patients: Vec<PatientRow>,
    practitioners: Vec<&'a UserConfig>,
    /// (id, label)
    encounters: Vec<(String, String)>,
    errors: Vec<&'static str>,
    error: Option<&'a str>,
    /// Shareable links to the launch just described.
    links: Option<Links>,
    inspector: String,
}

pub(crate) async fn page(State(state): State<AppState>) -> Response {
    render_page(&state, DEFAULT_LAUNCH_URL, None, None)
}

/// The launcher may show an app in a frame of its own, nobody else may frame it.
const FRAME_POLICY: &str = "frame-ancestors 'self'";

/// A launch as links: one that opens the app as an EHR would, and the FHIR base
/// an app launched standalone is given as its `iss`.
struct Links {
    ehr: String,
    standalone: String,
}

fn render_page(state: &AppState, launch_url: &str, error: Option<&str>, links: Option<Links>) -> Response {
    let clients = state
        .grants()
        .clients()
        .filter(|c| !c.redirect_uris.is_empty())
        .map(|c| (c.client_id.clone(), c.display_name().to_owned()))
        .collect();
    let encounters = state
        .patients()
        .encounters(None)
        .into_iter()
        .map(|e| {
            let label = format!("{} · Patient/{} · {} · {}", e.id, e.patient, e.start, e.class);
            (e.id, label)
        })
        .collect();
    let mut response = render(&LauncherPage {
        action: state.urls.auth("launcher"),
        launch_url,
        clients,
        patients: state.patients().patients(),
        practitioners: state
            .config
            .users
            .iter()
            .filter(|u| u.fhir_user.is_practitioner())
            .collect(),
        encounters,
        errors: SimulatedError::names().collect(),
        error,
        links,
        inspector: state.urls.auth("inspector"),
    });
    if error.is_some() {
        *response.status_mut() = StatusCode::BAD_REQUEST;
    }
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(FRAME_POLICY),
    );
    response
        .headers_mut()
        .insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("SAMEORIGIN"));
    response
}

#[derive(Deserialize, Serialize)]
pub(crate) struct LaunchForm {
    launch_url: String,
    /// A registered client, or empty: any app, with no registration.
    #[serde(default)]
    client_id: String,
    /// With no registration: `public` (the default), `symmetric` (a confidential
    /// app that authenticates with `client_secret`) or `asymmetric` (one that signs
    /// assertions with a key published at `client_jwks_uri`).
    #[serde(default)]
    client_type: String,
    #[serde(default)]
    client_secret: String,
    /// What a link carries instead of `client_secret` ([`LaunchForm::sealed`]).
    #[serde(default)]
    client_secret_sha256: String,
    #[serde(default)]
    client_jwks_uri: String,
    /// `app`: the app may launch without PKCE (it is checked when sent); otherwise
    /// S256 is required, as SMART 2 says.
    #[serde(default)]
    pkce: String,
    #[serde(default)]
    patient: String,
    #[serde(default)]
    practitioner: String,
    #[serde(default)]
    encounter: String,
    #[serde(default)]
    skip_auth: Option<String>,
    #[serde(default)]
    simulate_error: String,
    /// References of the resources the user opened, one a line (`fhirContext`).
    #[serde(default)]
    fhir_context: String,
    #[serde(default)]
    intent: String,
    #[serde(default)]
    tenant: String,
    /// The EHR shows no patient banner: the app must (`need_patient_banner`).
    #[serde(default)]
    banner: Option<String>,
}

impl LaunchForm {
    /// The form as a link carries it: a client secret only as its SHA-256. A link
    /// travels in URLs (a standalone one is the app's `iss`, in every URL the app
    /// sends), where a secret would be readable: a link is signed, not encrypted.
    fn sealed(mut self) -> Self {
        if !self.client_secret.is_empty() {
            self.client_secret_sha256 = sha256_hex(&self.client_secret);
            self.client_secret.clear();
        }
        self
    }
}

/// The encounter choice that means the patient's latest (none if they have none).
const AUTO: &str = "AUTO";

/// Most `fhirContext` items one launch may carry.
const MAX_FHIR_CONTEXT: usize = 20;

pub(crate) async fn launch(State(state): State<AppState>, Form(form): Form<LaunchForm>) -> Response {
    open(&state, &form)
}

/// `GET {auth}/launcher/open?…`: a shareable launch, opened afresh each time.
pub(crate) async fn open_link(State(state): State<AppState>, Query(form): Query<LaunchForm>) -> Response {
    if form.client_id.is_empty() {
        let message = "a launch for an app with no registration needs a signed link: use Make a link";
        return render_page(&state, &form.launch_url, Some(message), None);
    }
    open(&state, &form)
}

/// `GET {auth}/launcher/link?…` (the form's "Make a link"): the launcher again,
/// showing the link to the launch described, once it checks out.
pub(crate) async fn make_link(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    Query(form): Query<LaunchForm>,
) -> Response {
    match check(&state, &form) {
        Ok(_) => {
            let launch_url = form.launch_url.clone();
            let registered = !form.client_id.is_empty();
            // Signed: the choices cannot be changed on the way, and it is the one
            // form of link that an app with no registration can be opened with.
            let signed = state.key().sign(TokenKind::LaunchLink, &form.sealed());
            let link = if registered {
                format!(
                    "{}?{}",
                    state.urls.auth("launcher/open"),
                    query.unwrap_or_default()
                )
            } else {
                state.urls.auth(&format!("launch/{signed}"))
            };
            let links = Links {
                ehr: link,
                standalone: state.urls.link_base(&signed),
            };
            render_page(&state, &launch_url, None, Some(links))
        }
        Err(message) => render_page(&state, &form.launch_url, Some(&message), None),
    }
}

/// `GET {auth}/launch/{link}`: a launch link signed by this mock ("Make a link"
/// with no registration), opened afresh each time. A link that does not verify
/// is refused with the launcher's page.
pub(crate) async fn open_signed(State(state): State<AppState>, Path(link): Path<String>) -> Response {
    match verify_link(&state, &link) {
        Some(form) => open(&state, &form),
        None => render_page(
            &state,
            DEFAULT_LAUNCH_URL,
            Some("this launch link was not made by this mock (or was changed since): make a new one here"),
            None,
        ),
    }
}

/// The choices a launch link carries, if this mock signed it. Links do not expire:
/// they are for CI scripts and bug reports, and each use is checked afresh.
pub(crate) fn verify_link(state: &AppState, link: &str) -> Option<LaunchForm> {
    let mut validation = Validation::new(state.key().alg().algorithm());
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    state
        .key()
        .verify::<LaunchForm>(TokenKind::LaunchLink, link, &validation)
        .ok()
}

/// The standalone launch an authorization request's `aud` reproduces when it is a
/// launch link's FHIR base: none for any other `aud`; an error for a link this mock
/// did not sign, or whose choices no longer hold (a client or patient since
/// deleted).
pub(crate) fn linked_launch(state: &AppState, aud: &str) -> Option<Result<Launch, String>> {
    let link = state.urls.link_in(aud)?;
    let Some(form) = verify_link(state, link) else {
        return Some(Err(
            "aud is a launch link this mock did not make (or one changed since)".into(),
        ));
    };
    Some(check(state, &form).map(|mut launch| {
        // Standalone: no EHR around the app shows a banner.
        launch.context.need_patient_banner = Some(true);
        launch
    }))
}

/// Creates the launch `form` describes and opens the app, as an EHR would.
fn open(state: &AppState, form: &LaunchForm) -> Response {
    match check(state, form) {
        Ok(launch) => {
            let id = state.grants().create_launch(launch);
            let query =
                serde_urlencoded::to_string([("iss", state.urls.fhir_base.as_str()), ("launch", &id)])
                    .unwrap_or_default();
            let separator = if form.launch_url.contains('?') { '&' } else { '?' };
            Redirect::to(&format!("{}{separator}{query}", form.launch_url)).into_response()
        }
        Err(message) => render_page(state, &form.launch_url, Some(&message), None),
    }
}

fn check(state: &AppState, form: &LaunchForm) -> Result<Launch, String> {
    check_launch_url(&form.launch_url).map_err(|why| format!("the launch URL {why}"))?;
    let origin = |url: &str| Url::parse(url).ok().map(|u| u.origin());
    let app_origin = origin(&form.launch_url);
    let for_client = if form.client_id.is_empty() {
        // No registration: whatever client_id the app presents, on the app's origin.
        let secret = (form.client_secret.trim(), form.client_secret_sha256.as_str());
        let client = match (form.client_type.as_str(), secret) {
            ("" | "public", _) => LinkClient::Public,
            ("symmetric", ("", "")) => {
                return Err("a confidential app needs the client secret it will send".into());
            }
            ("symmetric", ("", digest)) => LinkClient::Secret(digest.to_owned()),
            ("symmetric", (secret, _)) => LinkClient::Secret(sha256_hex(secret)),
            ("asymmetric", _) => {
                let uri = form.client_jwks_uri.trim();
                let url = check_jwks_uri(uri).map_err(|why| format!("the app's JWKS URL {uri:?} {why}"))?;
                LinkClient::Keys(url)
            }
            (other, _) => return Err(format!("unknown client type {other}")),
        };
        let origin = app_origin
            .as_ref()
            .map(|o| o.ascii_serialization())
            .unwrap_or_default();
        LaunchFor::AnyAppOn { origin, client }
    } else {
        let Some(client) = state.grants().client(&form.client_id).cloned() else {
            return Err(format!("{} is not a registered client", form.client_id));
        };
        if !client.redirect_uris.iter().any(|uri| origin(uri) == app_origin) {
            return Err(format!(
                "the launch URL must be on the origin of one of {}'s redirect URIs ({})",
                client.client_id,
                client.redirect_uris.join(", ")
            ));
        }
        LaunchFor::Client(client.client_id)
    };
    let patient = match form.patient.as_str() {
        "" => None,
        id if state.patients().patient(id).is_none() => return Err(format!("Patient/{id} does not exist")),
        id => Some(id.to_owned()),
    };
    let encounter = match (form.encounter.as_str(), &patient) {
        ("", _) => None,
        (_, None) => return Err("an encounter needs a patient".into()),
        (chosen, Some(patient)) => {
            let mut encounters = state.patients().encounters(Some(patient)).into_iter();
            let found = if chosen == AUTO {
                encounters.next()
            } else {
                encounters.find(|e| e.id == chosen)
            };
            match found {
                Some(encounter) => Some(encounter.id),
                None if chosen == AUTO => None,
                None => {
                    return Err(format!(
                        "Encounter/{chosen} is not an encounter of Patient/{patient}"
                    ));
                }
            }
        }
    };
    let fhir_user = match form.practitioner.as_str() {
        "" => None,
        text => {
            let reference: FhirReference = text.parse().map_err(|e| format!("{e}"))?;
            let user = state.config.user_by_fhir_user(&reference);
            let user = user.ok_or_else(|| format!("{reference} is not a user of this mock"))?;
            if let Some(patient) = &patient
                && !user.reach().includes(patient)
            {
                return Err(format!(
                    "{} may not open the record of Patient/{patient}",
                    user.name
                ));
            }
            Some(reference)
        }
    };
    let simulate = match form.simulate_error.as_str() {
        "" => None,
        name => Some(SimulatedError::parse(name).ok_or(format!("unknown simulated error {name}"))?),
    };
    let pkce = match form.pkce.as_str() {
        "" | "required" => Pkce::Required,
        "app" => Pkce::AppChooses,
        other => return Err(format!("unknown PKCE mode {other} (required or app)")),
    };
    let text = |value: &str| Some(value.trim().to_owned()).filter(|v| !v.is_empty());
    Ok(Launch {
        for_client,
        context: LaunchContext {
            patient,
            encounter,
            fhir_context: fhir_context(state, &form.fhir_context)?,
            need_patient_banner: Some(form.banner.is_some()),
            intent: text(&form.intent),
            tenant: text(&form.tenant),
            ..LaunchContext::default()
        },
        fhir_user,
        skip_auth: form.skip_auth.is_some(),
        simulate,
        pkce,
    })
}

/// `fhirContext` items from one reference a line; each must exist in the data.
fn fhir_context(state: &AppState, lines: &str) -> Result<Vec<FhirContextItem>, String> {
    let references: Vec<&str> = form_lines(lines).collect();
    if references.len() > MAX_FHIR_CONTEXT {
        return Err(format!("at most {MAX_FHIR_CONTEXT} fhirContext references"));
    }
    references
        .into_iter()
        .map(|text| {
            let reference: FhirReference = text.parse().map_err(|e| format!("fhirContext: {e}"))?;
            let (resource_type, id) = reference.parts();
            if !state.patients().exists(resource_type, id) {
                return Err(format!("fhirContext: {reference} does not exist"));
            }
            Ok(FhirContextItem {
                reference: Some(reference.to_string()),
                ..FhirContextItem::default()
            })
        })
        .collect()
}
