//! One authorization, from a validated `/authorize` to the code, as a state machine:
//!
//! ```text
//! begun ──login──▶ authenticated ──(picker)──▶ context chosen ──consent──▶ code
//! ```
//!
//! Each page posts its form back with the hidden `txn`; [`resume`] accepts the post
//! only if the authorization is at that form's [`Step`] and the post comes from the
//! browser that began it (the `ccri-mock-browser` cookie, `HttpOnly` and
//! `SameSite=Lax`, so a cross-site form post carries none). A step can only move the
//! authorization forward: consent before login, or a patient chosen by someone who
//! may not see them, has no state to act on.
//!
//! A login is also remembered for the browser (a [`Session`] in the grant store),
//! with the consents given in it, for one thing only: `prompt=none`, which answers
//! at once from that session or with `login_required` / `consent_required` /
//! `interaction_required` (OpenID Connect Core §3.1.2.6). Otherwise the login page is
//! shown every time, so a developer can switch users with each launch.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use serde::{Deserialize, Serialize};
use smart_protocol::{LaunchContext, OAuthErrorCode, Scope, Scopes};

use super::authorize::{consent, error_page, expired_page, login, picker};
use super::claims::now;
use super::grants::{Code, Grant, Launch, random_token};
use super::simulate::SimulatedError;
use crate::config::{ClientConfig, Reach, UserConfig};
use crate::inspector::LaunchNote;
use crate::state::AppState;

const BROWSER_COOKIE: &str = "ccri-mock-browser";

/// The browser an authorization was begun in: a random id in a cookie.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct Browser(String);

impl Browser {
    /// The browser's id from its cookie, if it has one.
    pub(crate) fn of(jar: &CookieJar) -> Option<Browser> {
        jar.get(BROWSER_COOKIE)
            .map(|c| c.value())
            .filter(|v| {
                v.len() == 43
                    && v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
            .map(|v| Browser(v.to_owned()))
    }

    /// The browser's id, as the store keeps its login.
    pub(crate) fn id(&self) -> &str {
        &self.0
    }

    /// The browser of an id the store kept.
    pub(crate) fn kept(id: String) -> Browser {
        Browser(id)
    }

    /// The browser's id, or a new one and the cookie that gives it to the browser.
    pub(crate) fn of_or_new(jar: CookieJar, state: &AppState) -> (Browser, CookieJar) {
        if let Some(browser) = Browser::of(&jar) {
            return (browser, jar);
        }
        let browser = Browser(random_token());
        let cookie = Cookie::build((BROWSER_COOKIE, browser.0.clone()))
            .path(format!("{}/authorize", state.urls.auth_path()))
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(state.urls.origin.starts_with("https://"));
        (browser, jar.add(cookie))
    }
}

/// What `prompt` asked for (OpenID Connect Core §3.1.2.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Prompt {
    /// Answer without showing any page, or fail.
    pub(crate) none: bool,
    /// Show the login page even when the user is known (also `select_account`).
    pub(crate) login: bool,
    /// Show the consent page even when the client skips it.
    pub(crate) consent: bool,
}

impl Prompt {
    pub(crate) fn parse(value: Option<&str>) -> Result<Prompt, String> {
        let mut prompt = Prompt::default();
        for word in value.unwrap_or_default().split(' ').filter(|w| !w.is_empty()) {
            match word {
                "none" => prompt.none = true,
                "login" | "select_account" => prompt.login = true,
                "consent" => prompt.consent = true,
                other => {
                    return Err(format!(
                        "prompt {other:?} is not one of none, login, consent, select_account"
                    ));
                }
            }
        }
        if prompt.none && (prompt.login || prompt.consent) {
            return Err("prompt=none cannot be combined with another value".into());
        }
        Ok(prompt)
    }
}

/// Who logged in, and when (seconds since the epoch): the id_token's `auth_time`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct LoggedIn {
    pub(crate) user: UserConfig,
    pub(crate) auth_time: u64,
}

/// Where an authorization is: what it waits for next.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum Stage {
    /// The login form.
    Login,
    /// The patient picker, for a user who may choose among several patients.
    Picker { login: LoggedIn },
    /// The consent form.
    Consent {
        login: LoggedIn,
        patient: Option<String>,
    },
}

/// The form a request submits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    Login,
    Picker,
    Consent,
}

impl Stage {
    fn step(&self) -> Step {
        match self {
            Stage::Login => Step::Login,
            Stage::Picker { .. } => Step::Picker,
            Stage::Consent { .. } => Step::Consent,
        }
    }
}

/// An authorization request that passed validation and waits for a person.
/// Kept in the store while it waits, so another mock on the same database can
/// finish it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Authorization {
    /// Names this authorization from `/authorize` on; its grant and tokens keep it,
    /// so the inspector can show a launch as one group.
    pub(crate) id: String,
    pub(crate) client: ClientConfig,
    pub(crate) redirect_uri: String,
    pub(crate) state: Option<String>,
    pub(crate) scopes: Scopes,
    pub(crate) code_challenge: Option<String>,
    /// The FHIR base the request's `aud` named (the server's, or a launch link's).
    pub(crate) fhir_base: String,
    /// The launch this request continues, if any: an EHR launch, or the standalone
    /// one a launch link's base stands for. Its context is given as the launcher
    /// chose it, whichever `launch/…` scopes the app asked.
    pub(crate) launch: Option<Launch>,
    /// Echoed in the id_token.
    pub(crate) nonce: Option<String>,
    pub(crate) prompt: Prompt,
    /// The oldest login this request accepts, in seconds (`max_age`).
    pub(crate) max_age: Option<u64>,
    /// This server's issuer, sent back with every response (RFC 9207).
    pub(crate) issuer: String,
    pub(crate) browser: Browser,
    pub(crate) expires_at: u64,
    /// A standalone launch's encounter (`launch/encounter`), chosen on the consent page.
    pub(crate) encounter: EncounterChoice,
    pub(crate) stage: Stage,
}

/// Which encounter a standalone launch puts in context when `launch/encounter` is asked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum EncounterChoice {
    /// The patient's latest (also when no page asked: `skip_auth`, `prompt=none`).
    Latest,
    None,
    Chosen(String),
}

impl Authorization {
    /// The failure to simulate: the launch's, else the client's.
    pub(crate) fn simulate(&self) -> Option<SimulatedError> {
        self.launch
            .as_ref()
            .and_then(|l| l.simulate)
            .or(self.client.simulate_error)
    }

    /// `skip_auth` stands for a person who allows whatever is asked, so it answers
    /// `prompt=consent` too: a client library that sends `prompt=consent` by
    /// default must still launch without a page in automated tests.
    fn skip_consent(&self) -> bool {
        self.client.skip_auth || self.launch.as_ref().is_some_and(|l| l.skip_auth)
    }

    /// Whether the login page must be shown even to a known user.
    fn must_log_in(&self) -> bool {
        self.prompt.login || self.max_age == Some(0)
    }

    pub(crate) fn client_name(&self) -> &str {
        self.client.display_name()
    }

    /// `user` has logged in: on to the picker or the consent, or an error for the
    /// login page when this launch's patient is not one the user may see.
    pub(crate) fn log_in(&mut self, user: &UserConfig, auth_time: u64) -> Result<(), String> {
        let reach = user.reach();
        let mut patient = self.launch.as_ref().and_then(|l| l.context.patient.clone());
        if let Some(id) = &patient
            && !reach.includes(id)
        {
            return Err(format!(
                "{} may not open the record of Patient/{id} this launch is for: log in as a user who may.",
                user.name
            ));
        }
        let choosing = self.scopes.contains(&Scope::LaunchPatient) && patient.is_none();
        if patient.is_none()
            && let Some(own) = user.patient_id()
        {
            // A patient user is the patient in context, unless they may choose others.
            let others = matches!(&reach, Reach::Only(patients) if patients.len() > 1);
            if !(choosing && others) {
                patient = Some(own.to_owned());
            }
        }
        let login = LoggedIn {
            user: user.clone(),
            auth_time,
        };
        self.stage = if choosing && patient.is_none() {
            Stage::Picker { login }
        } else {
            Stage::Consent { login, patient }
        };
        Ok(())
    }

    /// The picker's choice, if the logged-in user may see that patient.
    pub(crate) fn choose(&mut self, patient: &str) -> Result<(), String> {
        let Stage::Picker { login } = &self.stage else {
            return Err("no patient is being chosen".into());
        };
        if !login.user.reach().includes(patient) {
            return Err(format!(
                "{} may not open the record of Patient/{patient}",
                login.user.name
            ));
        }
        self.stage = Stage::Consent {
            login: login.clone(),
            patient: Some(patient.to_owned()),
        };
        Ok(())
    }

    /// The redirect to the app with `params` and the app's `state`, or `None` if the
    /// URL cannot be a `Location` header (registration refuses such URIs; this is
    /// the last line, so nothing is stored for a response that cannot be sent).
    fn location(&self, params: &[(&str, &str)]) -> Option<HeaderValue> {
        let mut pairs: Vec<(&str, &str)> = params.to_vec();
        if let Some(state) = &self.state {
            pairs.push(("state", state));
        }
        pairs.push(("iss", &self.issuer));
        let query = serde_urlencoded::to_string(&pairs).ok()?;
        let separator = if self.redirect_uri.contains('?') { '&' } else { '?' };
        HeaderValue::try_from(format!("{}{separator}{query}", self.redirect_uri)).ok()
    }

    pub(crate) fn redirect_error(&self, code: OAuthErrorCode, description: &str) -> Response {
        let mut response =
            see_other(self.location(&[("error", code.as_str()), ("error_description", description)]));
        LaunchNote::attach(&mut response, &self.id);
        response
    }
}

fn see_other(location: Option<HeaderValue>) -> Response {
    match location {
        Some(location) => (axum::http::StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response(),
        None => error_page(
            OAuthErrorCode::InvalidRequest,
            "the redirect_uri cannot be sent as a Location header",
        ),
    }
}

/// The authorization behind `txn`, if `browser` began it and it is at `step`.
/// Otherwise it stays as it was and the answer is an error page.
pub(crate) fn resume(
    state: &AppState,
    txn: &str,
    browser: Option<&Browser>,
    step: Step,
) -> Result<Authorization, Box<Response>> {
    let mut grants = state.grants();
    let authorization = grants.take(txn).ok_or_else(|| Box::new(expired_page()))?;
    let refusal = if browser != Some(&authorization.browser) {
        "this authorization was begun in another browser (or cookies are off): start again from the app"
    } else if authorization.stage.step() != step {
        "this form is not the step this authorization is at: use the page the server showed last"
    } else {
        return Ok(authorization);
    };
    grants.hold(txn.to_owned(), authorization);
    Err(Box::new(error_page(OAuthErrorCode::InvalidRequest, refusal)))
}

/// The user an authorization needs no login page for: the client's `skip_login`
/// user, who stands for a person logging in afresh and so answers `prompt=login`
/// and `max_age` too; or, unless those ask for a new login, the practitioner the
/// EHR launch was made by.
fn known_user<'a>(state: &'a AppState, authorization: &Authorization) -> Option<&'a UserConfig> {
    authorization
        .client
        .skip_login
        .as_deref()
        .and_then(|username| state.config.user(username))
        .or_else(|| {
            if authorization.must_log_in() {
                return None;
            }
            let fhir_user = authorization.launch.as_ref()?.fhir_user.as_ref()?;
            state.config.user_by_fhir_user(fhir_user)
        })
}

/// Shows the page `authorization` waits for, or finishes it when no person is
/// needed (an EHR's logged-in user, `skip_login`, `skip_auth`).
pub(crate) fn show(state: &AppState, txn: String, mut authorization: Authorization) -> Response {
    if let Stage::Login = authorization.stage
        && let Some(user) = known_user(state, &authorization)
        && let Err(message) = authorization.log_in(user, now())
    {
        return authorization.redirect_error(OAuthErrorCode::AccessDenied, &message);
    }
    let mut page = match &authorization.stage {
        Stage::Login => login::page(state, &txn, &authorization, None),
        Stage::Picker { login } => picker::page(state, &txn, &authorization, &login.user),
        Stage::Consent { .. } if authorization.skip_consent() => return finish(state, authorization),
        Stage::Consent { login, patient } => {
            consent::page(state, &txn, &authorization, &login.user, patient.as_deref())
        }
    };
    LaunchNote::attach(&mut page, &authorization.id);
    state.grants().hold(txn, authorization);
    page
}

/// `prompt=none`: the code at once, from the EHR's or this browser's login and the
/// consent already given, or the error that says which page would be needed.
pub(crate) fn silent(state: &AppState, mut authorization: Authorization) -> Response {
    use OAuthErrorCode::{AccessDenied, ConsentRequired, InteractionRequired, LoginRequired};
    let session = state.grants().session(&authorization.browser).cloned();
    let login = match known_user(state, &authorization) {
        Some(user) => Some((user, now(), false)),
        None => session
            .as_ref()
            .filter(|s| {
                authorization
                    .max_age
                    .is_none_or(|age| now() <= s.auth_time.saturating_add(age))
            })
            .and_then(|s| Some((state.config.user(&s.username)?, s.auth_time, true))),
    };
    let Some((user, auth_time, from_session)) = login else {
        return authorization.redirect_error(
            LoginRequired,
            "prompt=none, and no one is logged in to this server in this browser (or not within max_age)",
        );
    };
    if let Err(message) = authorization.log_in(user, auth_time) {
        return authorization.redirect_error(AccessDenied, &message);
    }
    let consented = from_session
        && session.is_some_and(|s| s.has_consented(&authorization.client.client_id, &authorization.scopes));
    match authorization.stage {
        Stage::Picker { .. } => authorization.redirect_error(
            InteractionRequired,
            "prompt=none, but a patient must be chosen on the picker page",
        ),
        Stage::Consent { .. } if authorization.skip_consent() || consented => finish(state, authorization),
        _ => authorization.redirect_error(
            ConsentRequired,
            "prompt=none, but the user has not yet allowed this client these scopes",
        ),
    }
}

/// The encounter of a standalone launch that asked for one (`launch/encounter`).
fn standalone_encounter(
    state: &AppState,
    authorization: &Authorization,
    patient: Option<&str>,
) -> Option<String> {
    if !authorization.scopes.contains(&Scope::LaunchEncounter) {
        return None;
    }
    match &authorization.encounter {
        EncounterChoice::Latest => state
            .patients()
            .encounters(Some(patient?))
            .into_iter()
            .next()
            .map(|e| e.id),
        EncounterChoice::None => None,
        EncounterChoice::Chosen(id) => Some(id.clone()),
    }
}

/// Issues the code for a consented authorization and sends the browser to the app.
pub(crate) fn finish(state: &AppState, authorization: Authorization) -> Response {
    let Stage::Consent { login, patient } = &authorization.stage else {
        return expired_page();
    };
    let ehr_launch = authorization.launch.as_ref();
    let context = LaunchContext {
        patient: patient.clone(),
        encounter: match ehr_launch {
            Some(launch) => launch.context.encounter.clone(),
            None => standalone_encounter(state, &authorization, patient.as_deref()),
        },
        fhir_context: ehr_launch
            .map(|l| l.context.fhir_context.clone())
            .unwrap_or_default(),
        // Standalone, the app must show the banner; in an EHR launch, as the
        // launcher set it (the EHR shows one unless told otherwise).
        need_patient_banner: patient
            .as_ref()
            .map(|_| ehr_launch.is_none_or(|l| l.context.need_patient_banner == Some(true))),
        smart_style_url: Some(state.urls.auth("smart-style.json")),
        intent: ehr_launch.and_then(|l| l.context.intent.clone()),
        tenant: ehr_launch.and_then(|l| l.context.tenant.clone()),
    };
    let grant = Grant {
        id: authorization.id.clone(),
        client_id: authorization.client.client_id.clone(),
        scopes: authorization.scopes.clone(),
        fhir_user: Some(login.user.fhir_user.clone()),
        auth_time: Some(login.auth_time),
        context,
        simulate: authorization.simulate(),
        fhir_base: authorization.fhir_base.clone(),
    };
    let code = random_token();
    let Some(location) = authorization.location(&[("code", &code)]) else {
        return see_other(None);
    };
    let mut grants = state.grants();
    grants.remember_consent(&authorization.browser, &login.user.username, &grant);
    grants.store_code(
        code,
        Code {
            grant,
            redirect_uri: authorization.redirect_uri.clone(),
            code_challenge: authorization.code_challenge.clone(),
            nonce: authorization.nonce.clone(),
        },
    );
    drop(grants);
    tracing::info!(client = ?authorization.client.client_id, "authorization code issued");
    let mut response = see_other(Some(location));
    LaunchNote::attach(&mut response, &authorization.id);
    response
}
