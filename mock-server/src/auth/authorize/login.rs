//! The login page: the mock's users and their (public) passwords.

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::response::Response;
use axum_extra::extract::CookieJar;
use serde::Deserialize;

use super::render;
use crate::auth::claims::now;
use crate::auth::flow::{self, Authorization, Browser, Step};
use crate::config::UserConfig;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    action: String,
    txn: &'a str,
    client_name: &'a str,
    users: &'a [UserConfig],
    error: Option<&'a str>,
}

pub(crate) fn page(
    state: &AppState,
    txn: &str,
    authorization: &Authorization,
    error: Option<&str>,
) -> Response {
    render(&LoginPage {
        action: state.urls.auth("authorize/login"),
        txn,
        client_name: authorization.client_name(),
        users: &state.config.users,
        error,
    })
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    txn: String,
    username: String,
    password: String,
}

pub(crate) async fn submit(
    State(state): State<AppState>,
    jar: CookieJar,
    Form(form): Form<LoginForm>,
) -> Response {
    let mut authorization = match flow::resume(&state, &form.txn, Browser::of(&jar).as_ref(), Step::Login) {
        Ok(authorization) => authorization,
        Err(refusal) => return *refusal,
    };
    let user = state
        .config
        .user(&form.username)
        .filter(|u| u.password == form.password);
    let logged_in_at = now();
    let refused = match user {
        Some(user) => match authorization.log_in(user, logged_in_at) {
            Ok(()) => {
                tracing::info!(user = ?user.username, "logged in");
                state
                    .grants()
                    .log_in_browser(&authorization.browser, &user.username, logged_in_at);
                return flow::show(&state, form.txn, authorization);
            }
            Err(message) => message,
        },
        None => "Unknown username or wrong password.".to_owned(),
    };
    let page = page(&state, &form.txn, &authorization, Some(&refused));
    state.grants().hold(form.txn, authorization);
    page
}
