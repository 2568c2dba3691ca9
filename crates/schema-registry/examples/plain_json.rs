//! Baseline for `scripts/bench-registry` and `scripts/bench-summary`: the plainest axum handler
//! answering a fixed JSON body from memory (on every path), on the same runtime settings as the
//! services it is compared with.
//!
//! Usage: `plain_json ADDR BODY_FILE`

#![allow(clippy::unwrap_used)] // tests and tools: a failed unwrap is a failed run

use std::net::SocketAddr;

use axum::Router;
use axum::http::header;
use axum::routing::get;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr: SocketAddr = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:8089".into())
        .parse()?;
    let body = match args.next() {
        Some(path) => std::fs::read_to_string(path)?,
        None => r#"{"schema":"\"int\""}"#.to_owned(),
    };
    let body: &'static str = Box::leak(body.into_boxed_str());
    let app = Router::new().fallback(get(move || async move {
        (
            [(
                header::CONTENT_TYPE,
                "application/vnd.schemaregistry.v1+json",
            )],
            body,
        )
    }));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
