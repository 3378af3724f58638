//! The gateway under soak: the real layer in front of a target that echoes what the gate
//! attached, served over HTTP/1.1 and HTTP/2 on a loopback port.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderValue, Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::{Layer, service_fn};
use tower_cross_api::{CrossApiLayer, PolicyHandle, Refusal, Rejection, VerifiedSource};

/// Set by the target on every answer it gives: the request passed the gate.
pub(crate) const REACHED: &str = "x-soak-reached";
/// The verified source the gate attached.
pub(crate) const VERIFIED_SOURCE: &str = "x-soak-verified-source";
/// The revision of the snapshot that decided, allowed or denied.
pub(crate) const REVISION: &str = "x-soak-revision";
/// The reason of the decision, or `malformed` for a `400`.
pub(crate) const REASON: &str = "x-soak-reason";

/// Serves the gateway over `policies` on a free loopback port until the process ends.
pub(crate) async fn start(policies: PolicyHandle) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let gateway = CrossApiLayer::new(policies)
        .with_rejection(Rejection::new(telling))
        .layer(service_fn(target));

    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let service = TowerToHyperService::new(gateway.clone());

            tokio::spawn(async move {
                let connection = auto::Builder::new(TokioExecutor::new());
                if let Err(error) = connection
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    eprintln!("soak: a server connection failed: {error}");
                }
            });
        }
    });
    Ok(addr)
}

/// The target's own service: `200 OK`, echoing the verified source and its decision.
async fn target(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut response = Response::new(Full::new(Bytes::from_static(b"target")));
    let headers = response.headers_mut();

    headers.insert(REACHED, HeaderValue::from_static("1"));
    if let Some(source) = request.extensions().get::<VerifiedSource>() {
        let decision = source.decision();
        headers.insert(VERIFIED_SOURCE, header_value(&source.api().to_string()));
        headers.insert(REVISION, decision.revision().into());
        headers.insert(REASON, HeaderValue::from_static(decision.reason().as_str()));
    }
    Ok(response)
}

/// The soak's rejection: the default's status, with the reason and the revision in headers
/// so that the client can check a denial against the policy that made it.
fn telling(refusal: &Refusal) -> Response<Bytes> {
    let mut response = Response::new(Bytes::from_static(b"refused"));
    *response.status_mut() = refusal.status();
    let headers = response.headers_mut();

    match refusal {
        Refusal::Denied { decision, .. } => {
            headers.insert(REVISION, decision.revision().into());
            headers.insert(REASON, HeaderValue::from_static(decision.reason().as_str()));
        }
        Refusal::MalformedHeader { .. } => {
            headers.insert(REASON, HeaderValue::from_static("malformed"));
        }
        _ => {
            headers.insert(REASON, HeaderValue::from_static("unverified"));
        }
    }
    response
}

fn header_value(value: &str) -> HeaderValue {
    HeaderValue::from_str(value).expect("an API reference is a valid header value")
}
