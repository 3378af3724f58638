//! The example gateway over HTTPS with optional client certificates: the TLS directory,
//! generated when absent or empty, and the accept loop that maps each connection's
//! certificate once.

use std::error::Error;
use std::fmt::Write as _;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower_cross_api::{ApiRef, PolicyDocument, SpiffeMapping};

use crate::app::DEMO_POLICY;
use crate::pki::Authority;

/// The CA that client certificates must chain to.
pub(crate) const CA: &str = "ca.pem";
/// The gateway's certificate.
pub(crate) const SERVER: &str = "server.pem";
/// The gateway's private key, PKCS#8.
pub(crate) const SERVER_KEY: &str = "server-key.pem";
/// Where the generated client certificates go, one per API of acme and globex.
pub(crate) const CLIENTS: &str = "clients";

/// How long a client may take to complete its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long to wait before accepting again after `accept` failed.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// Whether `dir` is missing or holds nothing.
pub(crate) fn is_absent_or_empty(dir: &Path) -> std::io::Result<bool> {
    match fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(error) => Err(error),
    }
}

/// Writes a demo CA, the gateway's certificate for `localhost` and `127.0.0.1`, and a client
/// certificate with key for every API of the demo policy, named by `mapping`'s SPIFFE ID for
/// it. Returns the client certificates' `(tenant, api)` pairs.
pub(crate) fn generate(
    dir: &Path,
    mapping: &SpiffeMapping,
) -> Result<Vec<(String, String)>, Box<dyn Error + Send + Sync>> {
    let authority = Authority::new("tower-cross-api demo CA")?;
    let server = authority.server()?;
    fs::create_dir_all(dir.join(CLIENTS))?;
    fs::write(dir.join(CA), authority.pem())?;
    fs::write(dir.join(SERVER), server.pem())?;
    fs::write(dir.join(SERVER_KEY), server.key_pem())?;

    let document = PolicyDocument::from_json(DEMO_POLICY)?;
    let mut clients = Vec::new();
    for (tenant, tenant_document) in &document.tenants {
        for api in &tenant_document.apis {
            let source: ApiRef = format!("{tenant}/{api}").parse()?;
            let uri = mapping.spiffe_id(&source);
            let client = authority.client(&format!("{tenant}/{api}"), &[&uri])?;
            let (certificate, key) = client_files(dir, tenant, api);
            fs::write(certificate, client.pem())?;
            fs::write(key, client.key_pem())?;
            clients.push((tenant.clone(), api.clone()));
        }
    }
    Ok(clients)
}

/// The certificate and key files of the demo client `tenant/api`.
pub(crate) fn client_files(dir: &Path, tenant: &str, api: &str) -> (PathBuf, PathBuf) {
    let clients = dir.join(CLIENTS);
    (
        clients.join(format!("{tenant}-{api}.pem")),
        clients.join(format!("{tenant}-{api}-key.pem")),
    )
}

/// What to print after generating: the directory, and a `curl` line for an allowed and for a
/// refused linked call.
pub(crate) fn instructions(dir: &Path, addr: SocketAddr) -> String {
    let dir = dir.display();
    let base = format!("https://localhost:{}", addr.port());
    let curl = |api: &str, path: &str| {
        format!(
            "curl -i --cacert {dir}/{CA} --cert {dir}/{CLIENTS}/acme-{api}.pem \\\n  \
             --key {dir}/{CLIENTS}/acme-{api}-key.pem \\\n  \
             -H 'Authorization: Bearer alice' {base}{path}\n"
        )
    };

    let mut text = String::new();
    let _ = writeln!(
        text,
        "Generated a demo CA, the gateway's certificate and one client"
    );
    let _ = writeln!(text, "certificate per API of acme and globex in {dir}\n");
    let _ = writeln!(text, "Allowed (acme/orders lists acme/billing): 200");
    text.push_str(&curl("billing", "/acme/orders/collections/c1"));
    let _ = writeln!(text, "\nRefused (acme/crm allows nobody): 403");
    text.push_str(&curl("orders", "/acme/crm/collections/c1"));
    let _ = writeln!(text, "\nEnd-user traffic (no client certificate): 200");
    let _ = writeln!(
        text,
        "curl -i --cacert {dir}/{CA} -H 'Authorization: Bearer alice' \\\n  \
         {base}/acme/orders/collections/c1"
    );
    text
}

/// The server configuration from `dir`: client certificates optional, verified against
/// `ca.pem`; `server.pem` and its PKCS#8 key `server-key.pem`.
pub(crate) fn load(dir: &Path) -> Result<ServerConfig, Box<dyn Error + Send + Sync>> {
    let read = |name: &str| {
        let path = dir.join(name);
        fs::read(&path).map_err(|error| format!("cannot read {}: {error}", path.display()))
    };

    let roots = CertificateDer::pem_slice_iter(&read(CA)?).collect::<Result<Vec<_>, _>>()?;
    let chain = CertificateDer::pem_slice_iter(&read(SERVER)?).collect::<Result<Vec<_>, _>>()?;
    let key = PrivatePkcs8KeyDer::from_pem_slice(&read(SERVER_KEY)?)
        .map_err(|error| format!("{SERVER_KEY} must hold a PKCS#8 private key: {error}"))?;
    if roots.is_empty() || chain.is_empty() {
        return Err(format!("{CA} and {SERVER} must each hold a certificate").into());
    }

    Ok(tower_cross_api::tls::server_config(
        roots,
        chain,
        key.into(),
    )?)
}

/// Accepts connections for ever: each handshake, then one [`PeerIdentity`] for all the
/// connection's requests, over HTTP/1.1 or HTTP/2. A failed `accept` (no file descriptor
/// left) is logged and tried again, never the end of the server.
///
/// [`PeerIdentity`]: tower_cross_api::tls::PeerIdentity
pub(crate) async fn serve(
    listener: TcpListener,
    config: ServerConfig,
    mapping: SpiffeMapping,
    router: Router,
) -> std::convert::Infallible {
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let mapping = Arc::new(mapping);

    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors, say: wait for some to close and go on accepting.
                tracing::warn!(%error, "accepting a connection failed; trying again");
                tokio::time::sleep(ACCEPT_RETRY).await;
                continue;
            }
        };
        let (acceptor, mapping, router) = (acceptor.clone(), mapping.clone(), router.clone());
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => {
                    tracing::info!(%peer, %error, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::info!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            if let Err(error) =
                tower_cross_api::tls::serve_connection(stream, &*mapping, router).await
            {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        });
    }
}
