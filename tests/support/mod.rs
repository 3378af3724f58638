//! What the integration tests share: the example gateway served on a real socket, and a
//! client that keeps one connection and sends headers exactly as given; the example's
//! certificate authority, and a TLS client (`tls_client`).

#![allow(dead_code)]

#[path = "../../examples/gateway/app.rs"]
pub(crate) mod app;
#[path = "../../examples/gateway/pki.rs"]
pub(crate) mod pki;
mod skip;
pub(crate) mod tls_client;

#[cfg(feature = "postgres")]
mod database;

#[cfg(feature = "postgres")]
#[allow(unused_imports)]
pub(crate) use database::*;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tower_cross_api::PolicyHandle;

pub(crate) use app::{AppState, DEMO_POLICY};
#[allow(unused_imports)]
pub(crate) use skip::say_skipped;

/// The 403 body of every cross-API denial, but for its correlation id.
pub(crate) fn denied_body(request_id: &str) -> serde_json::Value {
    serde_json::json!({
        "type": "about:blank",
        "title": "Forbidden",
        "status": 403,
        "detail": "Source API is not authorized to call the target API.",
        "code": "cross_api.denied",
        "request_id": request_id,
    })
}

/// The example gateway, listening on a free loopback port.
pub(crate) struct Gateway {
    pub(crate) addr: SocketAddr,
    pub(crate) state: AppState,
}

impl Gateway {
    /// Serves the example app over `policies`.
    pub(crate) async fn start(policies: PolicyHandle) -> Self {
        let state = AppState::new(policies);
        let router = app::app(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");

        tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
        Self { addr, state }
    }

    /// Serves the example app on the demo policy.
    pub(crate) async fn demo() -> Self {
        let policies = PolicyHandle::new();
        policies
            .publish_json(DEMO_POLICY)
            .expect("the demo policy is valid");
        Self::start(policies).await
    }

    /// How many requests reached the target's own service so far.
    pub(crate) fn target_calls(&self) -> u64 {
        self.state.target_calls.load(Ordering::SeqCst)
    }

    /// Opens a new keep-alive connection.
    pub(crate) async fn connect(&self) -> Connection {
        Connection::open(self.addr).await
    }

    /// Sends one request on a new connection and says whether it reached the target.
    pub(crate) async fn get(&self, path: &str, headers: &[(&str, &[u8])]) -> Answer {
        let before = self.target_calls();
        let mut answer = self.connect().await.get(path, headers).await;
        answer.reached_target = self.target_calls() > before;
        answer
    }
}

/// One HTTP/1.1 connection to the gateway.
pub(crate) struct Connection {
    sender: SendRequest<Empty<Bytes>>,
}

impl Connection {
    pub(crate) async fn open(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr)
            .await
            .expect("connect to the gateway");
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(connection);
        Self { sender }
    }

    /// Sends `GET path` with `headers` as separate header lines, in order.
    pub(crate) async fn get(&mut self, path: &str, headers: &[(&str, &[u8])]) -> Answer {
        let mut request = Request::get(path).header("host", "gateway.test");
        for (name, value) in headers {
            let value = http::HeaderValue::from_bytes(value).expect("a sendable header value");
            request = request.header(*name, value);
        }
        let request = request.body(Empty::new()).expect("request");

        self.sender.ready().await.expect("connection ready");
        let response = self.sender.send_request(request).await.expect("response");
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|value| value.to_str().expect("ascii content type").to_owned());
        let request_id = response
            .headers()
            .get("x-request-id")
            .map(|value| value.to_str().expect("ascii request id").to_owned());
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();

        Answer {
            status,
            content_type,
            request_id,
            body,
            reached_target: false,
        }
    }
}

/// What the client saw.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) content_type: Option<String>,
    /// The `x-request-id` response header.
    pub(crate) request_id: Option<String>,
    pub(crate) body: Bytes,
    /// Set by [`Gateway::get`]: whether the target's own service was called.
    pub(crate) reached_target: bool,
}

impl Answer {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    pub(crate) fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("a UTF-8 body")
    }

    /// Asserts the gate's 403: status, media type, the exact body, and the target untouched.
    pub(crate) fn assert_denied(&self) {
        assert_eq!(self.status, StatusCode::FORBIDDEN, "{}", self.text());
        assert_eq!(
            self.content_type.as_deref(),
            Some("application/problem+json")
        );
        let request_id = self.request_id.as_deref().expect("a correlation id header");
        assert_eq!(self.json(), denied_body(request_id));
        assert!(!self.reached_target, "a denied call reached the target");
    }

    /// Asserts the gate's 400 for `header`, and the target untouched.
    pub(crate) fn assert_malformed(&self, header: &str) {
        assert_eq!(self.status, StatusCode::BAD_REQUEST, "{}", self.text());
        assert_eq!(
            self.content_type.as_deref(),
            Some("application/problem+json")
        );
        assert_eq!(self.json()["header"], header);
        assert_eq!(self.json()["code"], "cross_api.malformed_header");
        assert_eq!(
            self.json()["request_id"].as_str(),
            self.request_id.as_deref()
        );
        assert!(!self.reached_target, "a malformed call reached the target");
    }

    /// Asserts that the gate let the call through to the target, which wanted a user.
    pub(crate) fn assert_reached_target_without_user(&self) {
        assert_eq!(self.status, StatusCode::UNAUTHORIZED, "{}", self.text());
        assert!(
            self.reached_target,
            "an allowed call did not reach the target"
        );
    }
}

/// A reply: status, headers and the JSON body (`Null` when there is none).
#[derive(Debug)]
pub(crate) struct Reply {
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
) -> Reply {
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
    Reply {
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
