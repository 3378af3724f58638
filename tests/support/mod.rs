//! What the PostgreSQL tests share: the database, a schema per test, the example gateway
//! served on a real socket, an HTTP client and a TCP proxy the test controls.

#![allow(dead_code)]

#[cfg(feature = "postgres")]
mod database;

#[cfg(feature = "postgres")]
#[allow(unused_imports)]
pub(crate) use database::*;

use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{HeaderMap, Method, Request, StatusCode};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};

/// An answer: status, headers and the JSON body (`Null` when there is none).
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Value,
}

/// Sends one request on a new connection.
pub(crate) async fn send(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Answer {
    let stream = TcpStream::connect(addr)
        .await
        .expect("connect to the gateway");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("HTTP handshake");
    tokio::spawn(connection);

    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Full::new(Bytes::from(body.unwrap_or_default().to_owned())))
        .expect("a request");

    let response = sender.send_request(request).await.expect("a response");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("the body")
        .to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        body,
    }
}

/// A linked call from `source` to `target` with no user: `401` once it passes the gate (the
/// target's own authorization wants a user), `403` when the gate refuses it.
pub(crate) async fn linked_call(addr: SocketAddr, source: &str, target: &str) -> StatusCode {
    let path = format!("/{target}/collections/c1");
    send(addr, Method::GET, &path, &[("x-source-api", source)], None)
        .await
        .status
}

/// Serves `router` on a free local port.
pub(crate) async fn serve(router: axum::Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

/// Waits until `check` holds, polling every millisecond, for at most `limit`.
pub(crate) async fn eventually(limit: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let start = tokio::time::Instant::now();
    while start.elapsed() < limit {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    false
}
