//! The server of the HTTP benchmark: one thread, HTTP/1.1, a target that answers `ok` at once,
//! with or without the gate in front. `benches/http.sh` runs it under `wrk`.
//!
//! ```text
//! cargo run --release --example bench_server -- --port 8081 --gate
//! ```

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};

use bytes::Bytes;
use clap::Parser;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tower::{Layer, Service};
use tower_cross_api::{CrossApiLayer, PolicyHandle};

/// The policy the load generator's requests are decided on: `acme/billing` may call
/// `acme/orders`, `acme/crm` may not.
const POLICY: &str = r#"{ "tenants": { "acme": {
    "apis": ["orders", "billing", "crm"],
    "cross_api_access": { "orders": { "allow": ["billing"] } }
} } }"#;

/// Flags.
#[derive(Debug, Parser)]
struct Flags {
    /// The loopback port to listen on.
    #[arg(long, default_value_t = 8081)]
    port: u16,
    /// Put the gate in front of the target.
    #[arg(long)]
    gate: bool,
}

/// The target: `200 ok`, whoever calls.
async fn target(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(b"ok"))))
}

fn main() -> std::io::Result<()> {
    let flags = Flags::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;

    runtime.block_on(serve(flags))
}

async fn serve(flags: Flags) -> std::io::Result<()> {
    let policies = PolicyHandle::new();
    policies
        .publish_json(POLICY)
        .map_err(|error| std::io::Error::other(error.to_string()))?;
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, flags.port))).await?;
    let gate = flags.gate.then(|| CrossApiLayer::new(policies));
    println!(
        "listening on {} (gate: {})",
        listener.local_addr()?,
        flags.gate
    );

    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let io = TokioIo::new(stream);
        let gate = gate.clone();

        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let gated = gate
                    .as_ref()
                    .map(|gate| gate.layer(tower::service_fn(target)));
                async move {
                    match gated {
                        Some(mut gated) => gated.call(request).await,
                        None => target(request).await,
                    }
                }
            });
            let _ = http1::Builder::new().serve_connection(io, service).await;
        });
    }
}
