//! The example gateway's TLS mode when the process runs out of file descriptors: it goes on
//! accepting once some are free again. Its own binary, since it lowers the process's limit.

mod support;
#[allow(dead_code)] // the directory checks and instructions serve the other TLS tests
#[path = "../examples/gateway/tls.rs"]
mod tls;

use std::process::Command;
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
// The example's `tls` module reads `crate::app` and `crate::pki`.
use support::tls_client::{Protocol, identity_from_files, send};
use support::{app, pki};
use tokio::net::{TcpListener, TcpStream};
use tower_cross_api::{PolicyHandle, SpiffeMapping};

#[tokio::test]
async fn running_out_of_descriptors_does_not_end_the_server() {
    let dir = std::env::temp_dir().join(format!("tower-cross-api-fds-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mapping = SpiffeMapping::new("gateway.test").expect("a trust domain");
    tls::generate(&dir, &mapping).expect("generate");
    let config = tls::load(&dir).expect("TLS directory");
    let policies = PolicyHandle::new();
    policies.publish_json(app::DEMO_POLICY).expect("demo");
    let router = app::certificate_app(app::AppState::new(policies));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    let server = tokio::spawn(tls::serve(listener, config, mapping, router));

    let limited = Command::new("prlimit")
        .arg(format!("--pid={}", std::process::id()))
        .arg("--nofile=128:1024")
        .status();
    if !limited.is_ok_and(|status| status.success()) {
        support::say_skipped(format_args!(
            "running_out_of_descriptors_does_not_end_the_server: no prlimit"
        ));
        return;
    }
    let mut idle = Vec::new();
    while idle.len() < 512 {
        match TcpStream::connect(addr).await {
            Ok(stream) => idle.push(stream),
            Err(_) => break,
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(idle.len() < 512, "the limit was reached");
    drop(idle);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!server.is_finished(), "the server ended");

    let root = CertificateDer::from_pem_file(dir.join(tls::CA)).expect("the CA");
    let identity = identity_from_files(tls::client_files(&dir, "acme", "billing"));
    let answer = send(
        addr,
        root,
        Protocol::Http1,
        Some(identity),
        "/acme/orders/collections/c1",
        &[("authorization", "Bearer alice")],
    )
    .await
    .expect("served again");
    assert_eq!(answer.body["caller"], "acme/billing");
    let _ = std::fs::remove_dir_all(&dir);
}
