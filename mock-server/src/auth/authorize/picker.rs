//! The patient picker, for a user who may choose among several patients when an
//! app asks for `launch/patient`: a practitioner, or a patient configured with
//! people they may also see. It lists only the patients that user may see.

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::response::Response;
use axum_extra::extract::CookieJar;
use serde::Deserialize;
use smart_protocol::OAuthErrorCode;

use super::{error_page, render};
use crate::auth::flow::{self, Authorization, Browser, Step};
use crate::auth::patients::PatientRow;
use crate::config::UserConfig;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "picker.html")]
struct PickerPage<'a> {
    action: String,
    txn: &'a str,
    client_name: &'a str,
    patients: Vec<PatientRow>,
}

pub(crate) fn page(
    state: &AppState,
    txn: &str,
    authorization: &Authorization,
    user: &UserConfig,
) -> Response {
    let reach = user.reach();
    render(&PickerPage {
        action: state.urls.auth("authorize/patient"),
        txn,
        client_name: authorization.client_name(),
        patients: state
            .patients()
            .patients()
            .into_iter()
            .filter(|p| reach.includes(&p.id))
            .collect(),
    })
}

#[derive(Deserialize)]
pub(crate) struct PickForm {
    txn: String,
    patient: String,
}

pub(crate) async fn submit(
    State(state): State<AppState>,
    jar: CookieJar,
    Form(form): Form<PickForm>,
) -> Response {
    let mut authorization = match flow::resume(&state, &form.txn, Browser::of(&jar).as_ref(), Step::Picker) {
        Ok(authorization) => authorization,
        Err(refusal) => return *refusal,
    };
    let chosen = if state.patients().patient(&form.patient).is_none() {
        Err(format!("Patient/{} does not exist", form.patient))
    } else {
        authorization.choose(&form.patient)
    };
    match chosen {
        Ok(()) => flow::show(&state, form.txn, authorization),
        Err(message) => {
            state.grants().hold(form.txn, authorization);
            error_page(OAuthErrorCode::InvalidRequest, &message)
        }
    }
}
