//! The example gateway's TLS mode, end to end: the TLS directory it generates, loaded back
//! from disk, served over a real socket, called with the client certificates it wrote.

mod support;
#[path = "../examples/gateway/tls.rs"]
mod tls;

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use http::StatusCode;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use support::tls_client::{Answer, BOTH, ClientIdentity, Protocol, identity_from_files, send};
// The example's `tls` module reads `crate::app` and `crate::pki`.
use support::{app, pki};
use tokio::net::TcpListener;
use tower_cross_api::{DENIED_DETAIL, PolicyHandle, SpiffeMapping};

/// The demo policy's acme/orders (which lists acme/billing) and acme/crm (which allows
/// nobody).
const ORDERS: &str = "/acme/orders/collections/c1";
const CRM: &str = "/acme/crm/collections/c1";

/// A fresh directory under the system's temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "tower-cross-api-{name}-{}-{nanos}",
            std::process::id()
        ));
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn mapping(trust_domain: &str) -> SpiffeMapping {
    SpiffeMapping::new(trust_domain).expect("trust domain")
}

fn root(dir: &Path) -> CertificateDer<'static> {
    CertificateDer::from_pem_file(dir.join(tls::CA)).expect("ca.pem")
}

fn client_identity(dir: &Path, tenant: &str, api: &str) -> ClientIdentity {
    identity_from_files(tls::client_files(dir, tenant, api))
}

async fn start(dir: &Path) -> SocketAddr {
    let config = tls::load(dir).expect("TLS directory");
    let policies = PolicyHandle::new();
    policies
        .publish_json(app::DEMO_POLICY)
        .expect("demo policy");
    let router = app::certificate_app(app::AppState::new(policies));
    let mapping = mapping("gateway.test");

    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(tls::serve(listener, config, mapping, router));
    addr
}

#[test]
fn generates_only_into_an_absent_or_empty_directory() {
    let dir = TempDir::new("tls-dir");
    assert!(tls::is_absent_or_empty(&dir.0).expect("absent"));

    fs::create_dir_all(&dir.0).expect("create");
    assert!(tls::is_absent_or_empty(&dir.0).expect("empty"));

    let clients = tls::generate(&dir.0, &mapping("gateway.test")).expect("generate");
    assert!(!tls::is_absent_or_empty(&dir.0).expect("full"));
    assert_eq!(clients.len(), 6, "one client per demo API: {clients:?}");
    assert!(clients.contains(&("acme".to_owned(), "billing".to_owned())));
    for name in [tls::CA, tls::SERVER, tls::SERVER_KEY] {
        assert!(dir.0.join(name).is_file(), "{name}");
    }
    let key = fs::read_to_string(dir.0.join(tls::SERVER_KEY)).expect("key");
    assert!(
        key.starts_with("-----BEGIN PRIVATE KEY-----"),
        "PKCS#8: {key}"
    );

    let text = tls::instructions(&dir.0, "127.0.0.1:8443".parse().expect("address"));
    assert!(text.contains("https://localhost:8443/acme/orders/collections/c1"));
    assert!(text.contains("clients/acme-billing.pem"));
    assert!(text.contains("https://localhost:8443/acme/crm/collections/c1"));
}

#[test]
fn refuses_a_key_that_is_not_pkcs8() {
    let dir = TempDir::new("tls-sec1");
    tls::generate(&dir.0, &mapping("gateway.test")).expect("generate");
    fs::write(
        dir.0.join(tls::SERVER_KEY),
        "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n",
    )
    .expect("write");

    let error = tls::load(&dir.0).expect_err("not PKCS#8");
    assert!(error.to_string().contains("PKCS#8"), "{error}");
}

/// Calls the gateway at `addr` as `client`, a demo API of acme with its files in `dir`, or
/// as an end user when `None`.
async fn call(
    addr: SocketAddr,
    dir: &Path,
    protocol: Protocol,
    client: Option<&str>,
    path: &str,
    headers: &[(&str, &str)],
) -> Answer {
    let identity = client.map(|api| client_identity(dir, "acme", api));
    send(addr, root(dir), protocol, identity, path, headers)
        .await
        .expect("a served call")
}

#[tokio::test]
async fn generated_certificates_make_the_demo_calls() {
    let dir = TempDir::new("tls-calls");
    tls::generate(&dir.0, &mapping("gateway.test")).expect("generate");
    let addr = start(&dir.0).await;
    let alice = [("authorization", "Bearer alice")];
    let spoofed = [("x-source-api", "acme/billing"), alice[0]];

    for protocol in BOTH {
        let allowed = call(addr, &dir.0, protocol, Some("billing"), ORDERS, &alice).await;
        assert_eq!(allowed.status, StatusCode::OK, "{allowed:?}");
        assert_eq!(allowed.body["caller"], "acme/billing");

        let refused = call(addr, &dir.0, protocol, Some("orders"), CRM, &alice).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        assert_eq!(refused.body["detail"], DENIED_DETAIL);

        let end_user = call(addr, &dir.0, protocol, None, ORDERS, &alice).await;
        assert_eq!(end_user.status, StatusCode::OK);
        assert_eq!(end_user.body["caller"], serde_json::Value::Null);

        let spoofed = call(addr, &dir.0, protocol, None, ORDERS, &spoofed).await;
        assert_eq!(spoofed.status, StatusCode::FORBIDDEN);
    }
}

#[tokio::test]
async fn another_trust_domain_in_the_directory_is_refused() {
    let dir = TempDir::new("tls-domain");
    tls::generate(&dir.0, &mapping("elsewhere.test")).expect("generate");
    let addr = start(&dir.0).await;
    let alice = [("authorization", "Bearer alice")];

    for protocol in BOTH {
        let refused = call(addr, &dir.0, protocol, Some("billing"), ORDERS, &alice).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        assert_eq!(refused.body["detail"], DENIED_DETAIL);
    }
}
