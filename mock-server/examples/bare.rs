//! The baseline for the benchmarks in `bench/`: an axum server that does nothing but
//! answer, so a figure for ccri-mock can be read against what the machine and the
//! HTTP stack manage in the same run.

use axum::Router;
use axum::routing::{get, post};

#[tokio::main]
async fn main() {
    let port = std::env::args().nth(1).unwrap_or_else(|| "8099".into());
    let app = Router::new().route("/bare", get(|| async { "{}" })).route(
        "/bare",
        post(|body: String| async move { body.len().to_string() }),
    );
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}"))
        .await
        .unwrap();
    axum::serve(listener, app).await.unwrap();
}
