//! The patient picker a practitioner sees when an app asks for `launch/patient`.

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;

use super::{PatientRow, advance, expired_page, keep, render, take_pending};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "picker.html")]
struct PickerPage<'a> {
    action: String,
    txn: &'a str,
    client_name: String,
    patients: Vec<PatientRow>,
}

pub fn page(state: &AppState, txn: &str) -> Response {
    let client_name = state
        .grants()
        .pending
        .get(txn)
        .map(|p| p.client.client_id.clone())
        .unwrap_or_default();
    render(&PickerPage {
        action: state.urls.auth("authorize/patient"),
        txn,
        client_name,
        patients: state.fhir.patient_summaries(),
    })
}

#[derive(Deserialize)]
pub struct PickForm {
    txn: String,
    patient: String,
}

pub async fn submit(State(state): State<AppState>, Form(form): Form<PickForm>) -> Response {
    let Some(mut pending) = take_pending(&state, &form.txn) else {
        return expired_page();
    };
    if state.fhir.read("Patient", &form.patient).is_none() {
        return keep(&state, &form.txn, pending, |txn| page(&state, txn));
    }
    pending.patient = Some(form.patient);
    state.grants().pending.insert(form.txn.clone(), pending);
    advance(&state, &form.txn)
}
