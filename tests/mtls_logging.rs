//! What certificate identity logs: a header that contradicts the certificate, a claim without
//! one, and a certificate that names no valid source are each one warn event with its reason,
//! never the certificate's bytes.

use std::io::Write;
use std::sync::{Arc, Mutex};

use http::Request;
use rustls::pki_types::CertificateDer;
use tower::ServiceExt;
use tower_cross_api::tls::{ConnectionIdentity, PeerIdentity};
use tower_cross_api::{
    CertificateFault, CrossApiLayer, PolicyHandle, SourceIdentity, SpiffeMapping, TargetIdentity,
};

/// Runs `act` with a subscriber that writes every event, at every level, into a buffer;
/// returns the lines written.
async fn logged<F: Future<Output = ()>>(act: F) -> Vec<String> {
    let buffer = Arc::new(Mutex::new(Vec::new()));
    let sink = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || Sink(sink.clone()))
        .finish();

    let guard = tracing::subscriber::set_default(subscriber);
    act.await;
    drop(guard);

    let bytes = buffer.lock().expect("lock").clone();
    let text = String::from_utf8(bytes).expect("UTF-8 logs");
    text.lines().map(str::to_owned).collect()
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Sends one request, with `claim` as `x-source-api` when given, on a connection whose peer
/// is `peer`; returns the status.
async fn send(peer: PeerIdentity, claim: Option<&str>) -> http::StatusCode {
    let policies = PolicyHandle::new();
    policies
        .publish_json(r#"{ "tenants": { "acme": { "apis": ["orders", "billing", "crm"] } } }"#)
        .expect("policy");
    let gate = CrossApiLayer::new(policies)
        .with_source(SourceIdentity::authenticated())
        .with_target(TargetIdentity::path());
    let app = axum::Router::new()
        .route("/{*rest}", axum::routing::get(|| async { "target" }))
        .layer(gate);

    let mut request = Request::get("/acme/orders/c1");
    if let Some(claim) = claim {
        request = request.header("x-source-api", claim);
    }
    let request = request.body(axum::body::Body::empty()).expect("request");
    let response = ConnectionIdentity::new(app, peer)
        .oneshot(request)
        .await
        .expect("infallible");
    response.status()
}

fn warnings(lines: &[String]) -> Vec<&String> {
    lines
        .iter()
        .filter(|line| line.contains(" WARN "))
        .collect()
}

#[tokio::test]
async fn a_contradiction_is_one_warn_event() {
    let peer = PeerIdentity::Source("acme/crm".parse().expect("api reference"));

    let lines = logged(async {
        assert_eq!(send(peer, Some("acme/billing")).await, 403);
    })
    .await;

    let warnings = warnings(&lines);
    assert_eq!(warnings.len(), 1, "{lines:#?}");
    assert!(
        warnings[0].contains(r#"reason="contradiction""#),
        "{}",
        warnings[0]
    );
    assert!(warnings[0].contains("source=acme/crm"), "{}", warnings[0]);
    assert!(
        warnings[0].contains("claimed=acme/billing"),
        "{}",
        warnings[0]
    );
}

#[tokio::test]
async fn a_claim_without_a_certificate_is_one_warn_event() {
    let lines = logged(async {
        assert_eq!(
            send(PeerIdentity::Anonymous, Some("acme/billing")).await,
            403
        );
    })
    .await;

    let warnings = warnings(&lines);
    assert_eq!(warnings.len(), 1, "{lines:#?}");
    assert!(
        warnings[0].contains(r#"reason="unauthenticated_claim""#),
        "{}",
        warnings[0]
    );
}

#[tokio::test]
async fn a_certificate_that_names_no_source_warns_once_per_connection_and_per_request() {
    let mapping = SpiffeMapping::new("gateway.test").expect("trust domain");
    let garbage = CertificateDer::from(b"\x30\x03\x02\x01\x07 not a certificate".to_vec());

    let lines = logged(async {
        let peer = PeerIdentity::from_certificates(Some(&[garbage]), &mapping);
        assert_eq!(
            peer,
            PeerIdentity::Unidentified(CertificateFault::Unparsable)
        );
        assert_eq!(send(peer, None).await, 403);
    })
    .await;

    let warnings = warnings(&lines);
    assert_eq!(warnings.len(), 2, "{lines:#?}");
    assert!(
        warnings[0].contains(r#"reason="unparsable""#),
        "{}",
        warnings[0]
    );
    assert!(
        warnings[1].contains(r#"reason="unidentified_peer""#),
        "{}",
        warnings[1]
    );
    assert!(
        warnings[1].contains(r#"credentials="unparsable""#),
        "{}",
        warnings[1]
    );
    assert!(!lines.iter().any(|line| line.contains("not a certificate")));
}
