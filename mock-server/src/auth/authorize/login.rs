//! The login page: the mock's users and their (public) passwords.

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;

use super::{advance, expired_page, keep, render, take_pending};
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

pub fn page(state: &AppState, txn: &str, error: Option<&str>) -> Response {
    let grants = state.grants();
    let client_name = grants
        .pending
        .get(txn)
        .map(|p| {
            p.client
                .name
                .clone()
                .unwrap_or_else(|| p.client.client_id.clone())
        })
        .unwrap_or_default();
    drop(grants);
    render(&LoginPage {
        action: state.urls.auth("authorize/login"),
        txn,
        client_name: &client_name,
        users: &state.config.users,
        error,
    })
}

#[derive(Deserialize)]
pub struct LoginForm {
    txn: String,
    username: String,
    password: String,
}

pub async fn submit(State(state): State<AppState>, Form(form): Form<LoginForm>) -> Response {
    let Some(mut pending) = take_pending(&state, &form.txn) else {
        return expired_page();
    };
    match state
        .config
        .user(&form.username)
        .filter(|u| u.password == form.password)
    {
        Some(user) => {
            tracing::info!(user = %user.username, "logged in");
            pending.user = Some(user.clone());
            state.grants().pending.insert(form.txn.clone(), pending);
            advance(&state, &form.txn)
        }
        None => keep(&state, &form.txn, pending, |txn| {
            page(&state, txn, Some("Unknown username or wrong password."))
        }),
    }
}
