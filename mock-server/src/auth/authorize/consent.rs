//! The consent page: the requested scopes in words, each with a box to untick, and
//! Allow or Deny. Real users and EHRs grant less than an app asks for (SMART 2.2
//! lets the server; ONC's "limited access" tests check that apps cope), so the
//! grant, and the token's `scope`, is exactly what stays ticked. A v2 patient or user
//! scope on Observation may also be narrowed to laboratory results or vital signs.
//! `launch/patient` cannot be unticked once a patient is in context, nor `launch`
//! in an EHR launch. Deny, or unticking everything, sends the app
//! `error=access_denied` (RFC 6749 §4.1.2.1).

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use axum_extra::extract::Form;
use serde::Deserialize;
use smart_protocol::scope::{Context, Permissions, ResourceScope, ResourceType, Syntax};
use smart_protocol::{OAuthErrorCode, Scope, Scopes};

use axum_extra::extract::CookieJar;

use super::render;
use crate::auth::flow::{self, Authorization, Browser, EncounterChoice, Stage, Step};
use crate::config::UserConfig;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentPage<'a> {
    action: String,
    txn: &'a str,
    client_name: &'a str,
    user_name: &'a str,
    patient: Option<String>,
    scopes: Vec<Choice>,
    /// A standalone launch that asked for `launch/encounter`: (id, label) to choose from.
    encounters: Option<Vec<(String, String)>>,
}

/// One requested scope on the page.
struct Choice {
    scope: String,
    words: String,
    /// Granted whatever the form says.
    required: bool,
    /// Narrower scopes the user may grant instead: (scope, words).
    narrower: Vec<(String, &'static str)>,
}

/// The granular Observation categories the consent page offers (SMART 2.2 §"Finer-grained resource constraints").
const OBSERVATION_CATEGORIES: [(&str, &str); 2] = [
    ("laboratory", "only laboratory results"),
    ("vital-signs", "only vital signs"),
];
const OBSERVATION_CATEGORY_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/observation-category";

pub(crate) fn page(
    state: &AppState,
    txn: &str,
    authorization: &Authorization,
    user: &UserConfig,
    patient: Option<&str>,
) -> Response {
    let encounters = patient.filter(|_| asks_encounter(authorization)).map(|id| {
        state
            .patients()
            .encounters(Some(id))
            .into_iter()
            .map(|e| (e.id, format!("{} · {}", e.start, e.class)))
            .collect()
    });
    let patient = patient.map(|id| {
        state
            .patients()
            .patient(id)
            .map_or_else(|| format!("Patient/{id}"), |p| p.name)
    });
    render(&ConsentPage {
        action: state.urls.auth("authorize/consent"),
        txn,
        client_name: authorization.client_name(),
        user_name: &user.name,
        patient,
        scopes: authorization
            .scopes
            .iter()
            .map(|scope| Choice {
                scope: scope.to_string(),
                words: describe(scope),
                required: required(authorization, scope),
                narrower: narrower(scope),
            })
            .collect(),
        encounters,
    })
}

/// A standalone launch that asked for an encounter in context: the user picks it here.
fn asks_encounter(authorization: &Authorization) -> bool {
    authorization.launch.is_none() && authorization.scopes.contains(&Scope::LaunchEncounter)
}

/// Whether `scope` stays granted: the patient or EHR context already chosen.
fn required(authorization: &Authorization, scope: &Scope) -> bool {
    match scope {
        Scope::LaunchPatient => matches!(&authorization.stage, Stage::Consent { patient: Some(_), .. }),
        Scope::Launch => authorization.launch.is_some(),
        _ => false,
    }
}

/// The granular scopes `scope` may be narrowed to on this page.
fn narrower(scope: &Scope) -> Vec<(String, &'static str)> {
    let Scope::Resource(resource) = scope else {
        return Vec::new();
    };
    let observations = matches!(&resource.resource_type, ResourceType::Named(name) if name == "Observation");
    if !observations
        || resource.syntax != Syntax::V2
        || !resource.constraints.is_empty()
        || resource.context == Context::System
    {
        return Vec::new();
    }
    OBSERVATION_CATEGORIES
        .iter()
        .map(|(code, words)| {
            (
                format!("{scope}?category={OBSERVATION_CATEGORY_SYSTEM}|{code}"),
                *words,
            )
        })
        .collect()
}

/// A scope in words a patient understands.
fn describe(scope: &Scope) -> String {
    match scope {
        Scope::OpenId | Scope::Profile => "who you are (your name)".into(),
        Scope::FhirUser => "a link to your record as a user".into(),
        Scope::Launch => "the context the app was opened in".into(),
        Scope::LaunchPatient => "which patient is selected".into(),
        Scope::LaunchEncounter => "which encounter is selected".into(),
        Scope::OfflineAccess => "access while you are away, until you revoke it".into(),
        Scope::OnlineAccess => "access while you are logged in".into(),
        Scope::Resource(resource) => describe_resource(resource),
        Scope::Other(_) => "a permission this server does not describe".into(),
    }
}

fn describe_resource(scope: &ResourceScope) -> String {
    let mut verbs = Vec::new();
    for (bit, verb) in [
        (Permissions::READ, "read"),
        (Permissions::SEARCH, "search"),
        (Permissions::CREATE, "create"),
        (Permissions::UPDATE, "change"),
        (Permissions::DELETE, "delete"),
    ] {
        if scope.permissions.contains(bit) {
            verbs.push(verb);
        }
    }
    let what = match &scope.resource_type {
        ResourceType::Any => "all kinds of records".to_owned(),
        ResourceType::Named(name) => format!("{name} records"),
    };
    let whose = match scope.context {
        Context::Patient => "of the selected patient",
        Context::User => "you are allowed to see",
        Context::System => "on the whole server",
    };
    let only = if scope.constraints.is_empty() {
        String::new()
    } else {
        " (only some of them)".into()
    };
    format!("{} {what} {whose}{only}", verbs.join(", "))
}

#[derive(Deserialize)]
pub(crate) struct ConsentForm {
    txn: String,
    decision: String,
    /// What stays ticked (or the narrower scope chosen instead)…
    #[serde(default)]
    scope: Vec<String>,
    /// …when the page's choices were sent. A script that posts only `txn` and
    /// `decision` allows everything asked, as a person who changes nothing does.
    #[serde(default)]
    choices: Option<String>,
    /// `AUTO` (the patient's latest), `NONE`, or an encounter id.
    #[serde(default)]
    encounter: Option<String>,
}

pub(crate) async fn submit(
    State(state): State<AppState>,
    jar: CookieJar,
    Form(form): Form<ConsentForm>,
) -> Response {
    let authorization = match flow::resume(&state, &form.txn, Browser::of(&jar).as_ref(), Step::Consent) {
        Ok(authorization) => authorization,
        Err(refusal) => return *refusal,
    };
    if form.decision != "allow" {
        return authorization.redirect_error(OAuthErrorCode::AccessDenied, "the user denied access");
    }
    if form.choices.is_none() {
        return flow::finish(&state, authorization);
    }
    let encounter = match encounter_choice(&state, &authorization, form.encounter.as_deref()) {
        Ok(choice) => choice,
        Err(why) => return authorization.redirect_error(OAuthErrorCode::InvalidRequest, &why),
    };
    match granted(&authorization, &form.scope) {
        Ok(scopes) if scopes.iter().next().is_some() => {
            let mut authorization = authorization;
            authorization.scopes = scopes;
            authorization.encounter = encounter;
            flow::finish(&state, authorization)
        }
        Ok(_) => authorization.redirect_error(
            OAuthErrorCode::AccessDenied,
            "the user allowed none of the scopes",
        ),
        Err(why) => authorization.redirect_error(OAuthErrorCode::InvalidRequest, &why),
    }
}

/// The scopes the form grants: each one requested (or a narrowing of one), plus
/// the required ones whatever the form says.
fn granted(authorization: &Authorization, ticked: &[String]) -> Result<Scopes, String> {
    let text = ticked
        .iter()
        .map(String::as_str)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let ticked: Scopes = text.parse().map_err(|e| format!("consent form: {e}"))?;
    if !ticked.is_within(&authorization.scopes) {
        return Err("consent form: a scope the app did not ask for".into());
    }
    let required = authorization
        .scopes
        .iter()
        .filter(|s| required(authorization, s) && !ticked.contains(s));
    Ok(ticked.iter().chain(required).cloned().collect())
}

/// The encounter the form chose, which must be one of the patient's.
fn encounter_choice(
    state: &AppState,
    authorization: &Authorization,
    chosen: Option<&str>,
) -> Result<EncounterChoice, String> {
    let patient = match &authorization.stage {
        Stage::Consent {
            patient: Some(patient),
            ..
        } => patient,
        _ => return Ok(EncounterChoice::Latest),
    };
    Ok(match chosen {
        None | Some("AUTO") => EncounterChoice::Latest,
        Some("NONE") => EncounterChoice::None,
        Some(id)
            if state
                .patients()
                .encounters(Some(patient))
                .iter()
                .any(|e| e.id == id) =>
        {
            EncounterChoice::Chosen(id.to_owned())
        }
        Some(id) => {
            return Err(format!(
                "consent form: Encounter/{id} is not an encounter of Patient/{patient}"
            ));
        }
    })
}
