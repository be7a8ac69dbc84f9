//! `GET|POST {auth}/launcher`: the EHR launch simulator. A developer picks a
//! patient, a practitioner and an encounter; the mock stores them under a new
//! launch id and opens the app at `launch_url?iss={fhir base}&launch={id}`, as an
//! EHR would. The app's `/authorize` request then carries that `launch`.

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::Value;
use smart_protocol::LaunchContext;

use super::authorize::{PatientRow, render};
use super::grants::{Launch, random_token};
use super::simulate::SimulatedError;
use crate::config::UserConfig;
use crate::state::AppState;

/// The demo app's launch page.
const DEFAULT_LAUNCH_URL: &str = "http://127.0.0.1:5173/";

#[derive(Template)]
#[template(path = "launcher.html")]
struct LauncherPage<'a> {
    action: String,
    launch_url: &'a str,
    patients: Vec<PatientRow>,
    practitioners: Vec<&'a UserConfig>,
    /// (id, label)
    encounters: Vec<(String, String)>,
    errors: Vec<&'static str>,
    error: Option<&'a str>,
}

pub async fn page(State(state): State<AppState>) -> Response {
    render_page(&state, DEFAULT_LAUNCH_URL, None)
}

fn render_page(state: &AppState, launch_url: &str, error: Option<&str>) -> Response {
    let encounters = state
        .fhir
        .all("Encounter")
        .iter()
        .map(|encounter| {
            let text = |pointer: &str| encounter.pointer(pointer).and_then(Value::as_str).unwrap_or("?");
            let id = text("/id").to_owned();
            let label = format!(
                "{id} · {} · {} · {}",
                text("/subject/reference"),
                text("/period/start"),
                text("/class/display")
            );
            (id, label)
        })
        .collect();
    render(&LauncherPage {
        action: state.urls.auth("launcher"),
        launch_url,
        patients: state.fhir.patient_summaries(),
        practitioners: state
            .config
            .users
            .iter()
            .filter(|u| u.fhir_user.starts_with("Practitioner/"))
            .collect(),
        encounters,
        errors: SimulatedError::ALL.iter().map(|e| e.as_str()).collect(),
        error,
    })
}

#[derive(Deserialize)]
pub struct LaunchForm {
    launch_url: String,
    patient: String,
    #[serde(default)]
    practitioner: String,
    #[serde(default)]
    encounter: String,
    #[serde(default)]
    skip_auth: Option<String>,
    #[serde(default)]
    simulate_error: String,
}

pub async fn launch(State(state): State<AppState>, Form(form): Form<LaunchForm>) -> Response {
    match check(&state, &form) {
        Ok(launch) => {
            let id = random_token();
            state.grants().launches.insert(id.clone(), launch);
            let query =
                serde_urlencoded::to_string([("iss", state.urls.fhir_base.as_str()), ("launch", &id)])
                    .unwrap_or_default();
            let separator = if form.launch_url.contains('?') { '&' } else { '?' };
            Redirect::to(&format!("{}{separator}{query}", form.launch_url)).into_response()
        }
        Err(message) => render_page(&state, &form.launch_url, Some(&message)),
    }
}

fn check(state: &AppState, form: &LaunchForm) -> Result<Launch, String> {
    if !(form.launch_url.starts_with("http://") || form.launch_url.starts_with("https://")) {
        return Err("the launch URL must be an absolute http(s) URL".into());
    }
    if state.fhir.read("Patient", &form.patient).is_none() {
        return Err(format!("Patient/{} does not exist", form.patient));
    }
    let encounter = match form.encounter.as_str() {
        "" => None,
        id => {
            let encounter = state
                .fhir
                .read("Encounter", id)
                .ok_or(format!("Encounter/{id} does not exist"))?;
            let subject = encounter.pointer("/subject/reference").and_then(Value::as_str);
            if subject != Some(&format!("Patient/{}", form.patient)) {
                return Err(format!(
                    "Encounter/{id} is not an encounter of Patient/{}",
                    form.patient
                ));
            }
            Some(id.to_owned())
        }
    };
    let fhir_user = match form.practitioner.as_str() {
        "" => None,
        reference => {
            let known = state.config.users.iter().any(|u| u.fhir_user == reference);
            if !known {
                return Err(format!("{reference} is not a user of this mock"));
            }
            Some(reference.to_owned())
        }
    };
    let simulate = match form.simulate_error.as_str() {
        "" => None,
        name => Some(SimulatedError::parse(name).ok_or(format!("unknown simulated error {name}"))?),
    };
    Ok(Launch {
        context: LaunchContext {
            patient: Some(form.patient.clone()),
            encounter,
            ..LaunchContext::default()
        },
        fhir_user,
        skip_auth: form.skip_auth.is_some(),
        simulate,
    })
}
