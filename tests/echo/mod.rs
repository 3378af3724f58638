//! A small axum target behind a [`CrossApiLayer`], served on a real socket, that answers with
//! what the gate attached to the request: the verified source or the would-deny mark.

#![allow(dead_code)]

use std::net::SocketAddr;

use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tower_cross_api::{CrossApiLayer, PolicyHandle, TargetIdentity, VerifiedSource, WouldDeny};

use crate::support::{Answer, Connection};

/// `GET /{tenant}/{api}/...` behind `layer`, the target read from the path.
pub(crate) fn gated(layer: CrossApiLayer) -> Router {
    Router::new()
        .route("/{*rest}", get(echo))
        .layer(layer.with_target(TargetIdentity::path()))
}

/// A layer over `policies` whose target is read from the path.
pub(crate) fn layer(policies: &PolicyHandle) -> CrossApiLayer {
    CrossApiLayer::new(policies.clone())
}

async fn echo(
    verified: Option<Extension<VerifiedSource>>,
    would_deny: Option<Extension<WouldDeny>>,
) -> Json<Value> {
    Json(json!({
        "verified": verified.map(|Extension(v)| v.decision().reason().as_str()),
        "would_deny": would_deny.map(|Extension(w)| w.decision().reason().as_str()),
        "request_id": would_deny.map(|Extension(w)| w.request_id().to_string()),
    }))
}

/// Serves `router` on a free loopback port.
pub(crate) async fn serve(router: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
    addr
}

/// `GET path` from `source` (when given) with `extra` headers, on a new connection.
pub(crate) async fn call(
    addr: SocketAddr,
    source: Option<&str>,
    path: &str,
    extra: &[(&str, &[u8])],
) -> Answer {
    let mut headers: Vec<(&str, &[u8])> = extra.to_vec();
    if let Some(source) = source {
        headers.push(("x-source-api", source.as_bytes()));
    }
    Connection::open(addr).await.get(path, &headers).await
}

/// What the echo target saw, or `None` when the gate answered.
pub(crate) fn seen(answer: &Answer) -> Option<Value> {
    let body = answer.json();
    body.get("verified").is_some().then_some(body)
}
