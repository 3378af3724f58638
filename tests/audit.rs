//! Audit mode over real sockets: it lets through exactly the calls enforcement denies, marks
//! them, and still refuses malformed identity, unverified sources and calls without a
//! snapshot. The certificate case runs on the per-connection glue without TLS: the mTLS
//! tests cover the handshake.

mod echo;
mod support;

use http::StatusCode;
use serde_json::Value;
use tower::ServiceExt;
use tower_cross_api::tls::{ConnectionIdentity, PeerIdentity};
use tower_cross_api::{
    CertificateFault, Enforcement, PolicyHandle, SourceIdentity, TargetIdentity,
};

const POLICY: &str = r#"{ "revision": 3, "tenants": {
    "t1": {
        "apis": ["orders", "billing", "crm", "reports", "audited"],
        "cross_api_access": {
            "orders": { "allow": ["billing"] },
            "billing": { "allow_all": true },
            "reports": { "allow": [] },
            "audited": { "allow": ["billing"], "enforce": false }
        }
    },
    "t2": { "apis": ["orders", "billing"], "cross_api_access": { "orders": { "allow_all": true } } }
} }"#;

const SOURCES: [&str; 9] = [
    "t1/orders",
    "t1/billing",
    "t1/crm",
    "t1/reports",
    "t1/audited",
    "t1/ghost",
    "t2/billing",
    "t2/orders",
    "t9/orders",
];

const PATHS: [&str; 9] = [
    "/t1/orders/c",
    "/t1/billing/c",
    "/t1/crm/c",
    "/t1/reports/c",
    "/t1/audited/c",
    "/t1/ghost/c",
    "/t2/orders/c",
    "/t9/orders/c",
    "/no-target",
];

fn policies() -> PolicyHandle {
    let policies = PolicyHandle::new();
    policies.publish_json(POLICY).expect("valid");
    policies
}

#[tokio::test]
async fn audit_lets_through_exactly_what_enforcement_denies() {
    let policies = policies();
    let enforcing = echo::serve(echo::gated(echo::layer(&policies))).await;
    let auditing = echo::serve(echo::gated(
        echo::layer(&policies).with_enforcement(Enforcement::Audit),
    ))
    .await;
    let mut denied = 0;
    let mut allowed = 0;

    for source in SOURCES {
        for path in PATHS {
            let enforced = echo::call(enforcing, Some(source), path, &[]).await;
            let audited = echo::call(auditing, Some(source), path, &[]).await;
            let mut audited_seen = echo::seen(&audited)
                .unwrap_or_else(|| panic!("{source} -> {path}: audit refused {audited:?}"));
            assert_eq!(audited.status, StatusCode::OK, "{source} -> {path}");

            match echo::seen(&enforced) {
                Some(mut enforced_seen) => {
                    allowed += 1;
                    enforced_seen["request_id"].take();
                    audited_seen["request_id"].take();
                    assert_eq!(enforced.status, StatusCode::OK);
                    assert_eq!(audited_seen, enforced_seen, "{source} -> {path}");
                }
                None => {
                    denied += 1;
                    enforced.assert_denied();
                    assert_eq!(audited_seen["verified"], Value::Null, "{source} -> {path}");
                    assert!(
                        audited_seen["would_deny"].is_string(),
                        "{source} -> {path}: {audited_seen}"
                    );
                }
            }
        }
    }

    assert_eq!(denied + allowed, SOURCES.len() * PATHS.len());
    // 6 to themselves, 4 to billing's allow-all, 1 listed by orders, 1 listed by audited and 3
    // let through by its audit mode, 1 to t2/orders' allow-all.
    assert_eq!(allowed, 16);
    assert_eq!(denied, 65);
}

#[tokio::test]
async fn a_target_in_audit_mode_lets_through_only_its_own_denials() {
    let policies = policies();
    let enforcing = echo::serve(echo::gated(echo::layer(&policies))).await;

    let listed = echo::call(enforcing, Some("t1/billing"), "/t1/audited/c", &[]).await;
    assert_eq!(echo::seen(&listed).expect("reached")["verified"], "listed");

    let not_listed = echo::call(enforcing, Some("t1/crm"), "/t1/audited/c", &[]).await;
    let seen = echo::seen(&not_listed).expect("reached in audit mode");
    assert_eq!(seen["verified"], Value::Null);
    assert_eq!(seen["would_deny"], "not_listed");

    for source in ["t2/billing", "t1/ghost", "t9/orders"] {
        echo::call(enforcing, Some(source), "/t1/audited/c", &[])
            .await
            .assert_denied();
    }
}

#[tokio::test]
async fn audit_still_refuses_malformed_and_unverified_identity() {
    let policies = policies();
    let auditing = echo::serve(echo::gated(
        echo::layer(&policies).with_enforcement(Enforcement::Audit),
    ))
    .await;

    for value in [&b"T1/billing"[..], b"", b"t1/billing,t1/crm", b"t1/ bill"] {
        let answer = echo::call(auditing, None, "/t1/orders/c", &[("x-source-api", value)]).await;
        answer.assert_malformed("x-source-api");
    }
    let repeated: [(&str, &[u8]); 2] = [("x-source-api", b"t1/crm"), ("x-source-api", b"t1/crm")];
    echo::call(auditing, None, "/t1/orders/c", &repeated)
        .await
        .assert_malformed("x-source-api");

    let unverified = echo::serve(echo::gated(
        echo::layer(&policies)
            .with_source(SourceIdentity::authenticated())
            .with_enforcement(Enforcement::Audit),
    ))
    .await;
    echo::call(unverified, Some("t1/billing"), "/t1/orders/c", &[])
        .await
        .assert_denied();

    let end_user = echo::call(auditing, None, "/t1/orders/c", &[]).await;
    assert_eq!(
        echo::seen(&end_user).expect("end-user traffic passes")["would_deny"],
        Value::Null
    );
}

#[tokio::test]
async fn audit_refuses_every_call_while_no_snapshot_is_in_force() {
    let policies = PolicyHandle::new();
    let auditing = echo::serve(echo::gated(
        echo::layer(&policies).with_enforcement(Enforcement::Audit),
    ))
    .await;

    for path in ["/t1/orders/c", "/no-target"] {
        echo::call(auditing, Some("t1/billing"), path, &[])
            .await
            .assert_denied();
    }

    policies.publish_json(POLICY).expect("valid");
    let answer = echo::call(auditing, Some("t1/crm"), "/t1/orders/c", &[]).await;
    assert_eq!(
        echo::seen(&answer).expect("reached")["would_deny"],
        "not_listed"
    );
}

#[tokio::test]
async fn audit_still_refuses_a_peer_whose_certificate_names_no_source() {
    let layer = echo::layer(&policies())
        .with_source(SourceIdentity::authenticated())
        .with_target(TargetIdentity::path())
        .with_enforcement(Enforcement::Audit);
    let app = axum::Router::new()
        .route("/{*rest}", axum::routing::get(|| async { "target" }))
        .layer(layer);
    let send = |peer: PeerIdentity, claim: Option<&'static str>| {
        let app = app.clone();
        async move {
            let mut request = http::Request::get("/t1/orders/c");
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
    };
    let crm = PeerIdentity::Source("t1/crm".parse().expect("api reference"));

    let unparsable = PeerIdentity::Unidentified(CertificateFault::Unparsable);
    assert_eq!(send(unparsable, None).await, StatusCode::FORBIDDEN);
    assert_eq!(send(crm, Some("t1/billing")).await, StatusCode::FORBIDDEN);
    assert_eq!(
        send(crm, None).await,
        StatusCode::OK,
        "not listed: let through"
    );
}
