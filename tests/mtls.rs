//! Caller identity from client certificates, over real sockets with real TLS handshakes:
//! certificates from a CA made with `rcgen` here, a rustls client, hyper's HTTP/1.1 and
//! HTTP/2 clients, and the gateway served with `tls::serve_connection`.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Extension, Json, Router};
use http::StatusCode;
use serde_json::{Value, json};
use support::pki::{Authority, Issued};
use support::tls_client::{Answer, BOTH, Protocol, send};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower_cross_api::tls::{self, BoxError};
use tower_cross_api::{
    ApiRef, CertificateFault, CertificateMapping, CrossApiLayer, DENIED_DETAIL, EdgeLayer,
    PolicyHandle, SourceIdentity, SpiffeMapping, TargetIdentity, VerifiedSource, X_SOURCE_API,
};

const POLICY: &str = r#"{
  "revision": 1,
  "tenants": {
    "t1": {
      "apis": ["orders", "billing", "reports", "crm"],
      "cross_api_access": {
        "orders": { "allow": ["billing"] },
        "billing": { "allow_all": true },
        "reports": { "allow": [] }
      }
    },
    "t2": { "apis": ["orders", "billing"] }
  }
}"#;

const TRUST_DOMAIN: &str = "gateway.test";

/// A collection of each target API of `t1`: orders lists billing, billing allows all,
/// reports allows nobody, crm has nothing configured.
const ORDERS: &str = "/t1/orders/collections/c1";
const BILLING: &str = "/t1/billing/collections/c1";
const REPORTS: &str = "/t1/reports/collections/c1";
const CRM: &str = "/t1/crm/collections/c1";

/// A running gateway and the CA its client certificates must chain to.
struct Gateway {
    addr: SocketAddr,
    authority: Authority,
    inner_calls: Arc<AtomicU64>,
}

impl Gateway {
    async fn start() -> Self {
        let mapping = SpiffeMapping::new(TRUST_DOMAIN).expect("trust domain");
        Self::start_with(Arc::new(mapping)).await
    }

    async fn start_with(mapping: Arc<dyn CertificateMapping>) -> Self {
        let authority = Authority::new("tower-cross-api test CA").expect("CA");
        let server = authority.server().expect("server certificate");
        let config = tls::server_config([authority.der()], server.chain(), server.key_der())
            .expect("server config");
        let acceptor = TlsAcceptor::from(Arc::new(config));

        let inner_calls = Arc::new(AtomicU64::new(0));
        let app = app(inner_calls.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local address");

        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (acceptor, mapping, app) = (acceptor.clone(), mapping.clone(), app.clone());
                tokio::spawn(async move {
                    if let Ok(stream) = acceptor.accept(tcp).await {
                        let _ = tls::serve_connection(stream, &*mapping, app).await;
                    }
                });
            }
        });

        Self {
            addr,
            authority,
            inner_calls,
        }
    }

    fn client(&self, uris: &[&str]) -> Issued {
        self.authority
            .client("linked-api", uris)
            .expect("client certificate")
    }

    fn inner_calls(&self) -> u64 {
        self.inner_calls.load(Ordering::SeqCst)
    }

    /// Sends one request on a new connection; asserts the negotiated protocol.
    async fn send(
        &self,
        protocol: Protocol,
        client: Option<&Issued>,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Answer, BoxError> {
        let client = client.map(|client| (client.chain(), client.key_der()));
        send(
            self.addr,
            self.authority.der(),
            protocol,
            client,
            path,
            headers,
        )
        .await
    }

    /// Sends one request; asserts `200 OK` from the inner service, and returns its body.
    async fn allowed(
        &self,
        protocol: Protocol,
        client: Option<&Issued>,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Value {
        self.expect(protocol, client, path, headers, StatusCode::OK, true)
            .await
    }

    /// Sends one request; asserts the gate's `403 Forbidden`, without the inner service.
    async fn refused(
        &self,
        protocol: Protocol,
        client: Option<&Issued>,
        path: &str,
        headers: &[(&str, &str)],
    ) {
        self.expect(
            protocol,
            client,
            path,
            headers,
            StatusCode::FORBIDDEN,
            false,
        )
        .await;
    }

    /// Sends one request and asserts its status, and whether the inner service was reached.
    async fn expect(
        &self,
        protocol: Protocol,
        client: Option<&Issued>,
        path: &str,
        headers: &[(&str, &str)],
        status: StatusCode,
        reaches_inner: bool,
    ) -> Value {
        let before = self.inner_calls();
        let answer = self
            .send(protocol, client, path, headers)
            .await
            .expect("request");

        assert_eq!(
            answer.status, status,
            "{protocol:?} {path} {headers:?}: {answer:?}"
        );
        let reached = self.inner_calls() - before;
        assert_eq!(
            reached,
            u64::from(reaches_inner),
            "{protocol:?} {path} {headers:?}"
        );
        if status == StatusCode::FORBIDDEN {
            assert_eq!(answer.body["detail"], DENIED_DETAIL);
        }
        answer.body
    }
}

/// The gate as a linked-API listener sets it up: the edge first, then the gate reading the
/// source from the connection, then the target's service.
fn app(inner_calls: Arc<AtomicU64>) -> Router {
    let policies = PolicyHandle::new();
    policies.publish_json(POLICY).expect("policy");
    let gate = CrossApiLayer::new(policies)
        .with_source(SourceIdentity::authenticated())
        .with_target(TargetIdentity::path())
        .with_verified_header(X_SOURCE_API);

    Router::new()
        .route("/{tenant}/{api}/collections/{collection}", get(target))
        .route_layer(gate)
        .layer(EdgeLayer::new().with_claims_kept())
        .with_state(inner_calls)
}

/// The target's service: answers with the verified caller and every header it sees whose
/// name, folded, is `xsourceapi`.
async fn target(
    State(inner_calls): State<Arc<AtomicU64>>,
    source: Option<Extension<VerifiedSource>>,
    headers: HeaderMap,
) -> Json<Value> {
    inner_calls.fetch_add(1, Ordering::SeqCst);

    let identity_headers: Vec<Value> = headers
        .iter()
        .filter(|(name, _)| {
            let folded: String = name
                .as_str()
                .chars()
                .filter(|c| !matches!(c, '-' | '_' | '.'))
                .collect();
            folded == "xsourceapi"
        })
        .map(|(name, value)| json!([name.as_str(), value.to_str().unwrap_or("?")]))
        .collect();
    let caller = source.map(|Extension(source)| source.api().to_string());

    Json(json!({ "caller": caller, "identity_headers": identity_headers }))
}

fn spiffe(tenant: &str, api: &str) -> String {
    format!("spiffe://{TRUST_DOMAIN}/tenant/{tenant}/api/{api}")
}

#[tokio::test]
async fn allowed_linked_call_by_certificate() {
    let gateway = Gateway::start().await;
    let billing = gateway.client(&[&spiffe("t1", "billing")]);

    for protocol in BOTH {
        let body = gateway.allowed(protocol, Some(&billing), ORDERS, &[]).await;

        assert_eq!(body["caller"], "t1/billing");
        assert_eq!(
            body["identity_headers"],
            json!([["x-source-api", "t1/billing"]])
        );
    }
}

#[tokio::test]
async fn refused_linked_call_by_certificate() {
    let gateway = Gateway::start().await;
    let billing = gateway.client(&[&spiffe("t1", "billing")]);
    let crm = gateway.client(&[&spiffe("t1", "crm")]);
    let other_tenant = gateway.client(&[&spiffe("t2", "billing")]);

    for protocol in BOTH {
        let refused = [
            (&billing, REPORTS),
            (&billing, CRM),
            (&crm, ORDERS),
            (&other_tenant, ORDERS),
        ];
        for (client, path) in refused {
            gateway.refused(protocol, Some(client), path, &[]).await;
        }
    }
}

#[tokio::test]
async fn no_certificate_is_end_user_traffic() {
    let gateway = Gateway::start().await;

    for protocol in BOTH {
        let body = gateway.allowed(protocol, None, REPORTS, &[]).await;

        assert_eq!(body["caller"], Value::Null);
        assert_eq!(body["identity_headers"], json!([]));
    }
}

#[tokio::test]
async fn spoofed_header_without_certificate_is_refused() {
    let gateway = Gateway::start().await;

    for protocol in BOTH {
        for claimed in ["t1/billing", "t1/orders", "t9/ghost"] {
            let headers = [("x-source-api", claimed)];
            gateway.refused(protocol, None, ORDERS, &headers).await;
        }
    }
}

#[tokio::test]
async fn header_contradicting_the_certificate_is_refused() {
    let gateway = Gateway::start().await;
    let crm = gateway.client(&[&spiffe("t1", "crm")]);
    let billing = gateway.client(&[&spiffe("t1", "billing")]);

    for protocol in BOTH {
        // t1/billing would be allowed: the claim does not make it so.
        let claim = [("x-source-api", "t1/billing")];
        gateway.refused(protocol, Some(&crm), ORDERS, &claim).await;

        let claim = [("x-source-api", "t1/crm")];
        gateway
            .refused(protocol, Some(&billing), BILLING, &claim)
            .await;

        // The same caller as the certificate is accepted.
        let claim = [("x-source-api", "t1/billing")];
        let body = gateway
            .allowed(protocol, Some(&billing), ORDERS, &claim)
            .await;
        assert_eq!(body["caller"], "t1/billing");
    }
}

/// Every SPIFFE form that is not exactly `spiffe://gateway.test/tenant/<t>/api/<a>`, each in
/// a certificate the CA signed: the handshake passes, every linked call is refused, and a
/// request without a header is refused too, not taken for end-user traffic.
#[tokio::test]
async fn malformed_spiffe_ids_are_refused() {
    let gateway = Gateway::start().await;
    let malformed = [
        "spiffe://other.test/tenant/t1/api/billing",
        "spiffe://gateway.test/tenant/t1/api/%62illing",
        "spiffe://gateway.test/tenant/t1/./api/billing",
        "spiffe://gateway.test/tenant/t1/api/..",
        "spiffe://gateway.test/tenant//api/billing",
        "spiffe://gateway.test//tenant/t1/api/billing",
        "spiffe://gateway.test/tenant/t1/api/billing/",
        "spiffe://gateway.test/tenant/t1/api/billing/v2",
        "spiffe://gateway.test/x/tenant/t1/api/billing",
        "spiffe://gateway.test/tenant/t1/api",
        "spiffe://gateway.test:443/tenant/t1/api/billing",
        "spiffe://gateway.test/tenant/t1/api/billing?x=1",
        "spiffe://gateway.test/tenant/t1/api/billing#x",
        "spiffe://gateway.test/tenant/t1/api/Billing",
        "spiffe://GATEWAY.TEST/tenant/t1/api/billing",
        "SPIFFE://gateway.test/tenant/t1/api/billing",
        "spiffe://u@gateway.test/tenant/t1/api/billing",
        "https://gateway.test/tenant/t1/api/billing",
        "spiffe://gateway.test/tenant/t1/api/bil.ling",
    ];

    for uri in malformed {
        let client = gateway.client(&[uri]);
        for protocol in BOTH {
            for headers in [&[][..], &[("x-source-api", "t1/billing")][..]] {
                let before = gateway.inner_calls();
                let answer = gateway
                    .send(protocol, Some(&client), BILLING, headers)
                    .await
                    .expect("request");

                assert_eq!(answer.status, StatusCode::FORBIDDEN, "{uri} {protocol:?}");
                assert_eq!(answer.body["detail"], DENIED_DETAIL, "{uri}");
                assert_eq!(gateway.inner_calls(), before, "{uri} reached the target");
            }
        }
    }
}

#[tokio::test]
async fn two_spiffe_ids_are_refused_in_either_order() {
    let gateway = Gateway::start().await;
    let billing = spiffe("t1", "billing");
    let crm = spiffe("t1", "crm");

    for uris in [[&billing, &crm], [&crm, &billing], [&billing, &billing]] {
        let client = gateway.client(&[uris[0].as_str(), uris[1].as_str()]);
        for protocol in BOTH {
            gateway.refused(protocol, Some(&client), BILLING, &[]).await;
        }
    }
}

#[tokio::test]
async fn common_name_is_never_read() {
    let gateway = Gateway::start().await;
    let named = gateway
        .authority
        .client("t1/billing", &[])
        .expect("client certificate");

    for protocol in BOTH {
        gateway.refused(protocol, Some(&named), BILLING, &[]).await;
    }
}

#[tokio::test]
async fn foreign_trust_domain_is_refused() {
    let gateway = Gateway::start().await;
    let foreign = gateway.client(&["spiffe://other.test/tenant/t1/api/billing"]);

    for protocol in BOTH {
        gateway
            .refused(protocol, Some(&foreign), BILLING, &[])
            .await;
    }
}

#[tokio::test]
async fn foreign_ca_fails_the_handshake() {
    let gateway = Gateway::start().await;
    let foreign = Authority::new("another CA").expect("CA");
    let client = foreign
        .client("linked-api", &[&spiffe("t1", "billing")])
        .expect("client certificate");

    for protocol in BOTH {
        let result = gateway.send(protocol, Some(&client), ORDERS, &[]).await;

        // TLS 1.3: the client finishes first, then reads the server's alert on its request.
        let error = result.expect_err("a certificate of another CA must not be served");
        let message = format!("{error:?}");
        assert!(message.contains("UnknownCA"), "{message}");
        assert_eq!(gateway.inner_calls(), 0);
    }
}

#[tokio::test]
async fn host_mapping_replaces_the_default() {
    let mapping = |certificate: &[u8]| -> Result<ApiRef, CertificateFault> {
        // A host that maps every certificate of its CA to one caller, whatever it says.
        assert!(!certificate.is_empty());
        "t1/billing".parse().map_err(CertificateFault::Identifier)
    };
    let gateway = Gateway::start_with(Arc::new(mapping)).await;
    let anything = gateway.client(&["urn:example:anything"]);

    for protocol in BOTH {
        let body = gateway
            .allowed(protocol, Some(&anything), ORDERS, &[])
            .await;
        assert_eq!(body["caller"], "t1/billing");
    }
}

/// Look-alike spellings of the identity header never reach the target, from an end user or
/// from a linked API; the target sees one `x-source-api`, written by the gateway.
#[tokio::test]
async fn edge_removes_every_look_alike_header() {
    let gateway = Gateway::start().await;
    let billing = gateway.client(&[&spiffe("t1", "billing")]);
    let look_alikes = [
        ("x_source_api", "t1/crm"),
        ("x.source.api", "t1/crm"),
        ("X_Source.Api", "t1/crm"),
        ("xsourceapi", "t1/crm"),
        ("x-source_api", "t1/crm"),
        ("x__source--api", "t1/crm"),
    ];

    for protocol in BOTH {
        let body = gateway.allowed(protocol, None, ORDERS, &look_alikes).await;
        assert_eq!(body["caller"], Value::Null);
        assert_eq!(body["identity_headers"], json!([]));

        let body = gateway
            .allowed(protocol, Some(&billing), ORDERS, &look_alikes)
            .await;
        assert_eq!(body["caller"], "t1/billing");
        assert_eq!(
            body["identity_headers"],
            json!([["x-source-api", "t1/billing"]])
        );
    }
}
