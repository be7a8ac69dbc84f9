//! The baseline for the benchmarks in `bench/`: an axum server that does nothing but
//! answer, so a figure for ccri-mock can be read against what the machine and the
//! HTTP stack manage in the same run.
//!
//! `bare PORT [HEADERS BODY]`: `GET /bare` answers `{}` and `POST /bare` the body's
//! length. Given an answer of ccri-mock's (its headers as `curl -D` writes them, and
//! its body), `GET /bare/copy` answers the same bytes without the work behind them.

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::routing::{get, post};

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let port = args.next().unwrap_or_else(|| "8099".into());
    let mut app = Router::new().route("/bare", get(|| async { "{}" })).route(
        "/bare",
        post(|body: String| async move { body.len().to_string() }),
    );
    if let (Some(headers), Some(body)) = (args.next(), args.next()) {
        let headers = copied_headers(&std::fs::read_to_string(headers).expect("the headers file"));
        let body = Bytes::from(std::fs::read(body).expect("the body file"));
        app = app.route("/bare/copy", get(move || async move { (headers, body) }));
    }
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}"))
        .await
        .unwrap();
    axum::serve(listener, app).await.unwrap();
}

/// The headers of a `curl -D` dump but those the server writes itself.
fn copied_headers(dump: &str) -> HeaderMap {
    dump.lines()
        .skip(1) // the status line
        .filter_map(|line| line.split_once(':'))
        .filter(|(name, _)| {
            !name.eq_ignore_ascii_case("content-length") && !name.eq_ignore_ascii_case("date")
        })
        .map(|(name, value)| {
            (
                HeaderName::try_from(name.trim()).expect("a header name"),
                HeaderValue::try_from(value.trim()).expect("a header value"),
            )
        })
        .collect()
}
