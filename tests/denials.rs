//! Refusals that help without leaking, over real sockets: a stable code and a correlation id
//! in the body, the `x-request-id` header and the log event; and the per-layer option to
//! answer denials as if the target did not exist.

mod capture;
mod echo;
mod support;

use capture::Captured;
use http::StatusCode;
use serde_json::json;
use tower_cross_api::{Enforcement, NOT_FOUND_DETAIL, PolicyHandle};

const POLICY: &str = r#"{ "revision": 4, "tenants": {
    "acme": { "apis": ["orders", "billing", "crm"],
              "cross_api_access": { "orders": { "allow": ["billing"] } } },
    "globex": { "apis": ["secret"] }
} }"#;

fn policies() -> PolicyHandle {
    let policies = PolicyHandle::new();
    policies.publish_json(POLICY).expect("valid");
    policies
}

#[tokio::test(flavor = "current_thread")]
async fn a_denial_carries_the_callers_request_id_in_body_header_and_log() {
    let (captured, _guard) = Captured::start();
    let addr = echo::serve(echo::gated(echo::layer(&policies()))).await;

    let answer = echo::call(
        addr,
        Some("acme/crm"),
        "/acme/orders/c",
        &[("x-request-id", b"case-7781")],
    )
    .await;

    answer.assert_denied();
    assert_eq!(answer.request_id.as_deref(), Some("case-7781"));
    assert_eq!(answer.json()["request_id"], "case-7781");
    let events = captured.gate_events();
    assert_eq!(events.len(), 1, "{events:#?}");
    for field in [
        "request_id=case-7781",
        "code=\"cross_api.denied\"",
        "reason=\"not_listed\"",
        "source=acme/crm",
        "target=acme/orders",
        "status=403",
    ] {
        assert!(
            events[0].contains(field),
            "{field} missing from {}",
            events[0]
        );
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_call_let_through_in_audit_mode_is_one_info_event_with_the_whole_decision() {
    let (captured, _guard) = Captured::start();
    let layer = echo::layer(&policies()).with_enforcement(Enforcement::Audit);
    let addr = echo::serve(echo::gated(layer)).await;

    let answer = echo::call(
        addr,
        Some("acme/crm"),
        "/acme/orders/c",
        &[("x-request-id", b"audit-1")],
    )
    .await;

    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json()["would_deny"], "not_listed");
    assert_eq!(answer.json()["request_id"], "audit-1");
    let events = captured.gate_events();
    assert_eq!(events.len(), 1, "{events:#?}");
    assert!(events[0].contains(" INFO "), "{}", events[0]);
    for field in [
        "tenant=acme",
        "source=acme/crm",
        "target=acme/orders",
        "decision=\"would_deny\"",
        "reason=\"not_listed\"",
        "revision=4",
        "audit=\"layer\"",
        "request_id=audit-1",
    ] {
        assert!(
            events[0].contains(field),
            "{field} missing from {}",
            events[0]
        );
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_missing_or_insane_request_id_is_replaced_by_a_fresh_one() {
    let (captured, _guard) = Captured::start();
    let addr = echo::serve(echo::gated(echo::layer(&policies()))).await;

    let insane: [(&str, &[u8]); 1] = [("x-request-id", b"<img src=x onerror=alert(1)>")];
    let answers = [
        echo::call(addr, Some("acme/crm"), "/acme/orders/c", &insane).await,
        echo::call(addr, Some("acme/crm"), "/acme/orders/c", &[]).await,
        echo::call(
            addr,
            None,
            "/acme/orders/c",
            &[("x-source-api", b"ACME/crm")],
        )
        .await,
    ];

    let events = captured.gate_events();
    assert_eq!(events.len(), 3, "{events:#?}");
    let mut ids = Vec::new();
    for (answer, event) in answers.iter().zip(&events) {
        let id = answer.json()["request_id"]
            .as_str()
            .expect("a request id")
            .to_owned();
        assert_eq!(id.len(), 32, "{id}");
        assert!(id.bytes().all(|byte| byte.is_ascii_hexdigit()), "{id}");
        assert_eq!(answer.request_id.as_deref(), Some(id.as_str()));
        assert!(event.contains(&format!("request_id={id}")), "{event}");
        assert!(!event.contains("onerror"), "{event}");
        ids.push(id);
    }
    assert_eq!(answers[2].json()["code"], "cross_api.malformed_header");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "every refusal has its own id");
}

#[tokio::test]
async fn the_403_body_tells_nothing_of_the_reason() {
    let addr = echo::serve(echo::gated(echo::layer(&policies()))).await;
    let id: (&str, &[u8]) = ("x-request-id", b"same");

    let bodies = [
        echo::call(addr, Some("acme/crm"), "/acme/orders/c", &[id]).await,
        echo::call(addr, Some("acme/billing"), "/acme/crm/c", &[id]).await,
        echo::call(addr, Some("acme/crm"), "/globex/secret/c", &[id]).await,
        echo::call(addr, Some("acme/crm"), "/globex/ghost/c", &[id]).await,
        echo::call(addr, Some("acme/ghost"), "/acme/orders/c", &[id]).await,
        echo::call(addr, Some("acme/crm"), "/acme/ghost/c", &[id]).await,
    ];

    for answer in &bodies {
        answer.assert_denied();
        assert_eq!(answer.body, bodies[0].body);
    }
}

#[tokio::test]
async fn denials_can_be_answered_as_if_the_target_did_not_exist() {
    let policies = policies();
    let addr = echo::serve(echo::gated(
        echo::layer(&policies).with_denied_as_not_found(true),
    ))
    .await;
    let id: (&str, &[u8]) = ("x-request-id", b"r-404");
    let not_found = json!({
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": NOT_FOUND_DETAIL,
        "code": "cross_api.not_found",
        "request_id": "r-404",
    });

    for (source, path) in [
        ("acme/crm", "/acme/orders/c"),
        ("acme/crm", "/acme/ghost/c"),
        ("globex/secret", "/acme/orders/c"),
        ("acme/ghost", "/acme/orders/c"),
        ("acme/crm", "/nowhere"),
    ] {
        let answer = echo::call(addr, Some(source), path, &[id]).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{source} -> {path}");
        assert_eq!(answer.json(), not_found, "{source} -> {path}");
        assert_eq!(answer.request_id.as_deref(), Some("r-404"));
    }

    let allowed = echo::call(addr, Some("acme/billing"), "/acme/orders/c", &[]).await;
    assert_eq!(allowed.status, StatusCode::OK);
    assert_eq!(allowed.json()["verified"], "listed");
    echo::call(addr, None, "/acme/orders/c", &[("x-source-api", b"")])
        .await
        .assert_malformed("x-source-api");

    let enforcing = echo::serve(echo::gated(echo::layer(&policies))).await;
    echo::call(enforcing, Some("acme/crm"), "/acme/orders/c", &[])
        .await
        .assert_denied();
}
