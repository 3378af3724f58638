//! One structured event per decision: allows at debug, denials at info, malformed identity at
//! warn, with the tenant, source, target, decision, reason and revision as fields.

mod capture;

use capture::Captured;
use http::Request;
use tower::ServiceExt;
use tower_cross_api::{CrossApiLayer, PolicyHandle, TargetIdentity};

async fn send(source: &str) {
    let policies = PolicyHandle::new();
    policies
        .publish_json(
            r#"{ "revision": 9, "tenants": { "acme": {
                "apis": ["orders", "billing", "crm"],
                "cross_api_access": { "orders": { "allow": ["billing"] } }
            } } }"#,
        )
        .expect("valid");
    let app = axum::Router::new()
        .route("/{*rest}", axum::routing::get(|| async { "target" }))
        .layer(CrossApiLayer::new(policies).with_target(TargetIdentity::path()));

    let request = Request::get("/acme/orders/c1")
        .header("x-source-api", source)
        .header("authorization", "Bearer secret-token")
        .body(axum::body::Body::empty())
        .expect("request");
    app.oneshot(request).await.expect("infallible");
}

async fn events(source: &str) -> Vec<String> {
    let (captured, _guard) = Captured::start();

    send(source).await;

    captured.gate_events()
}

#[tokio::test(flavor = "current_thread")]
async fn an_allow_is_one_debug_event() {
    let events = events("acme/billing").await;

    assert_eq!(events.len(), 1, "{events:#?}");
    let event = &events[0];
    assert!(event.contains("DEBUG"), "{event}");
    for field in [
        "tenant=acme",
        "source=acme/billing",
        "target=acme/orders",
        "decision=\"allow\"",
        "reason=\"listed\"",
        "revision=9",
    ] {
        assert!(event.contains(field), "{field} missing from {event}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_denial_is_one_info_event() {
    let events = events("acme/crm").await;

    assert_eq!(events.len(), 1, "{events:#?}");
    let event = &events[0];
    assert!(event.contains(" INFO "), "{event}");
    for field in [
        "tenant=acme",
        "source=acme/crm",
        "decision=\"deny\"",
        "reason=\"not_listed\"",
    ] {
        assert!(event.contains(field), "{field} missing from {event}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn malformed_identity_is_one_warn_event_without_the_value() {
    let events = events("acme/CRM-secret").await;

    assert_eq!(events.len(), 1, "{events:#?}");
    let event = &events[0];
    assert!(event.contains(" WARN "), "{event}");
    for field in [
        "tenant=acme",
        "target=acme/orders",
        "reason=\"malformed_header\"",
        "header=x-source-api",
        "fault=\"malformed\"",
    ] {
        assert!(event.contains(field), "{field} missing from {event}");
    }
    assert!(
        !event.contains("CRM-secret"),
        "the header value was logged: {event}"
    );
    assert!(
        !event.contains("secret-token"),
        "a credential was logged: {event}"
    );
}
