//! A TLS client that speaks HTTP/1.1 or HTTP/2, with or without a client certificate.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tower_cross_api::tls::BoxError;

/// The protocol the client offers by ALPN, and then speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Protocol {
    Http1,
    Http2,
}

/// Both protocols, for tests that must behave the same over each.
pub(crate) const BOTH: [Protocol; 2] = [Protocol::Http1, Protocol::Http2];

/// A client certificate chain and its key.
pub(crate) type ClientIdentity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// The client identity in the PEM files `(certificate, key)`.
pub(crate) fn identity_from_files(
    (certificate, key): (std::path::PathBuf, std::path::PathBuf),
) -> ClientIdentity {
    use rustls::pki_types::pem::PemObject;

    let chain = CertificateDer::pem_file_iter(certificate)
        .expect("client certificate file")
        .collect::<Result<Vec<_>, _>>()
        .expect("client certificate");
    let key = PrivateKeyDer::from_pem_file(key).expect("client key");
    (chain, key)
}

/// What a request came back with; the body parsed as JSON, or `null`.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) body: Value,
}

/// Sends one `GET path` on a new TLS connection to `localhost` at `addr`, trusting `root`,
/// presenting `client` when given; asserts that ALPN chose `protocol`.
pub(crate) async fn send(
    addr: SocketAddr,
    root: CertificateDer<'static>,
    protocol: Protocol,
    client: Option<ClientIdentity>,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<Answer, BoxError> {
    let mut roots = RootCertStore::empty();
    roots.add(root)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let mut config = match client {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key)?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![match protocol {
        Protocol::Http1 => b"http/1.1".to_vec(),
        Protocol::Http2 => b"h2".to_vec(),
    }];

    let tcp = TcpStream::connect(addr).await?;
    let server_name = ServerName::try_from("localhost")?;
    let stream = TlsConnector::from(Arc::new(config))
        .connect(server_name, tcp)
        .await?;
    let negotiated = stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);

    let mut request = Request::get(format!("https://localhost{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Empty::<Bytes>::new())?;
    let io = TokioIo::new(stream);
    let response = match protocol {
        Protocol::Http1 => {
            assert_eq!(negotiated.as_deref(), Some(&b"http/1.1"[..]));
            let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await?;
            tokio::spawn(connection);

            let (mut parts, body) = request.into_parts();
            parts.uri = path.parse()?;
            parts
                .headers
                .insert(http::header::HOST, "localhost".parse()?);
            sender
                .send_request(Request::from_parts(parts, body))
                .await?
        }
        Protocol::Http2 => {
            assert_eq!(negotiated.as_deref(), Some(&b"h2"[..]));
            let (mut sender, connection) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await?;
            tokio::spawn(connection);
            sender.send_request(request).await?
        }
    };

    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    Ok(Answer { status, body })
}
