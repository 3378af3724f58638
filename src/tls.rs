//! Caller identity from the TLS connection: the peer certificate is mapped once per
//! connection, and every request of the connection carries the result (feature `mtls`).
//!
//! A hyper or axum host accepts TCP, completes the handshake with `tokio-rustls`, and hands
//! the stream to [`serve_connection`], which reads the verified peer certificate into a
//! [`PeerIdentity`] and serves HTTP/1.1 and HTTP/2 alike over it, inserting the identity into
//! each request. The gate then reads it with
//! [`SourceIdentity::authenticated`](crate::SourceIdentity::authenticated).
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use axum::{Router, routing::get};
//! use tokio_rustls::TlsAcceptor;
//! use tower_cross_api::{
//!     CrossApiLayer, EdgeLayer, PolicyHandle, SourceIdentity, SpiffeMapping, TargetIdentity,
//! };
//!
//! # async fn run(config: rustls::ServerConfig) -> Result<(), Box<dyn std::error::Error>> {
//! let policies = PolicyHandle::new();
//! let app: Router = Router::new()
//!     .route("/{tenant}/{api}/collections/{collection}", get(|| async { "data" }))
//!     .layer(
//!         CrossApiLayer::new(policies)
//!             .with_source(SourceIdentity::authenticated())
//!             .with_target(TargetIdentity::path()),
//!     )
//!     .layer(EdgeLayer::new().with_claims_kept());
//!
//! let mapping = Arc::new(SpiffeMapping::new("gateway.test")?);
//! let acceptor = TlsAcceptor::from(Arc::new(config));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8443").await?;
//! loop {
//!     let Ok((tcp, _)) = listener.accept().await else {
//!         // Out of file descriptors, say: let some close, then accept again.
//!         tokio::time::sleep(std::time::Duration::from_millis(100)).await;
//!         continue;
//!     };
//!     let (acceptor, mapping, app) = (acceptor.clone(), mapping.clone(), app.clone());
//!     tokio::spawn(async move {
//!         if let Ok(tls) = acceptor.accept(tcp).await {
//!             let _ = tower_cross_api::tls::serve_connection(tls, &*mapping, app).await;
//!         }
//!     });
//! }
//! # }
//! ```

use std::error::Error as StdError;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Extensions, Request, Response};
use hyper::body::{Body, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::server::TlsStream;
use tower_service::Service;

use crate::id::ApiRef;
use crate::identity::{
    AuthenticatedSource, CertificateFault, CertificateMapping, UnidentifiedPeer,
};

/// Any error, boxed, as hyper reports them.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// What the peer certificate of one connection says about its caller.
///
/// ```
/// use tower_cross_api::SpiffeMapping;
/// use tower_cross_api::tls::PeerIdentity;
///
/// let mapping = SpiffeMapping::new("gateway.test")?;
/// assert_eq!(PeerIdentity::from_certificates(None, &mapping), PeerIdentity::Anonymous);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerIdentity {
    /// No client certificate: end-user traffic, unless a request claims a source, which the
    /// gate then refuses.
    Anonymous,
    /// A verified certificate that names this source.
    Source(ApiRef),
    /// A verified certificate that names no valid source: every linked call is refused.
    Unidentified(CertificateFault),
}

impl PeerIdentity {
    /// The identity that the verified peer chain `certificates` (end entity first, as rustls
    /// gives it) names under `mapping`. Logs a refused certificate at warn, with its reason
    /// and never its bytes.
    pub fn from_certificates<M>(certificates: Option<&[CertificateDer<'_>]>, mapping: &M) -> Self
    where
        M: CertificateMapping + ?Sized,
    {
        let Some(end_entity) = certificates.and_then(<[_]>::first) else {
            return Self::Anonymous;
        };

        match mapping.source(end_entity.as_ref()) {
            Ok(source) => {
                tracing::debug!(
                    tenant = %source.tenant(),
                    source = %source,
                    "TLS peer authenticated by its certificate"
                );
                Self::Source(source)
            }
            Err(fault) => {
                tracing::warn!(
                    reason = fault.as_str(),
                    "TLS peer certificate names no valid source: its linked calls are refused"
                );
                Self::Unidentified(fault)
            }
        }
    }

    /// The identity of the peer of a completed rustls server connection.
    pub fn from_connection<M>(connection: &ServerConnection, mapping: &M) -> Self
    where
        M: CertificateMapping + ?Sized,
    {
        Self::from_certificates(connection.peer_certificates(), mapping)
    }

    /// Inserts the identity into a request's extensions: an [`AuthenticatedSource`], an
    /// [`UnidentifiedPeer`], or nothing for an anonymous peer.
    pub fn insert_into(self, extensions: &mut Extensions) {
        match self {
            Self::Anonymous => {}
            Self::Source(source) => {
                extensions.insert(AuthenticatedSource(source));
            }
            Self::Unidentified(fault) => {
                extensions.insert(UnidentifiedPeer(fault.as_str()));
            }
        }
    }
}

/// Inserts one connection's [`PeerIdentity`] into every request, then calls the inner
/// service. [`serve_connection`] wraps the host's service in it; a host with its own
/// connection loop wraps it once per connection.
///
/// ```
/// use tower::ServiceExt;
/// use tower_cross_api::AuthenticatedSource;
/// use tower_cross_api::tls::{ConnectionIdentity, PeerIdentity};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let peer = PeerIdentity::Source("acme/billing".parse()?);
/// let echo = tower::service_fn(|request: http::Request<()>| async move {
///     let source = request.extensions().get::<AuthenticatedSource>().copied();
///     Ok::<_, std::convert::Infallible>(http::Response::new(source))
/// });
///
/// let response = ConnectionIdentity::new(echo, peer).oneshot(http::Request::new(())).await?;
/// assert_eq!(response.body().map(|source| source.0.to_string()).as_deref(), Some("acme/billing"));
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct ConnectionIdentity<S> {
    inner: S,
    peer: PeerIdentity,
}

impl<S> ConnectionIdentity<S> {
    /// Wraps `inner` for the connection whose peer is `peer`.
    pub const fn new(inner: S, peer: PeerIdentity) -> Self {
        Self { inner, peer }
    }

    /// The connection's peer.
    pub const fn peer(&self) -> PeerIdentity {
        self.peer
    }

    /// The inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B> Service<Request<B>> for ConnectionIdentity<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        // Deliberately not trusting an identity already in the extensions: only this
        // connection's peer speaks for its requests.
        request.extensions_mut().remove::<AuthenticatedSource>();
        request.extensions_mut().remove::<UnidentifiedPeer>();

        self.peer.insert_into(request.extensions_mut());
        self.inner.call(request)
    }
}

/// Serves one accepted TLS connection with `service`: maps the verified peer certificate
/// once, then serves HTTP/1.1 or HTTP/2 (whichever the client speaks, as negotiated by ALPN)
/// with the [`PeerIdentity`] in every request's extensions.
///
/// # Errors
///
/// The connection's error, as hyper reports it.
pub async fn serve_connection<IO, M, S, B>(
    stream: TlsStream<IO>,
    mapping: &M,
    service: S,
) -> Result<(), BoxError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    M: CertificateMapping + ?Sized,
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let peer = PeerIdentity::from_connection(stream.get_ref().1, mapping);

    let service = TowerToHyperService::new(ConnectionIdentity::new(service, peer));
    Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(stream), service)
        .await
}

/// A rustls server configuration for a gateway whose linked APIs present client
/// certificates: the ring provider, TLS 1.2 and 1.3, ALPN `h2` then `http/1.1`, and client
/// certificates optional (end users have none) but, when presented, verified against
/// `client_roots`. A client certificate from another CA fails the handshake.
///
/// # Errors
///
/// A [`rustls::Error`] when a root, the chain or the key is unusable.
pub fn server_config(
    client_roots: impl IntoIterator<Item = CertificateDer<'static>>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<ServerConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for root in client_roots {
        roots.add(root)?;
    }

    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|error| rustls::Error::General(error.to_string()))?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}
