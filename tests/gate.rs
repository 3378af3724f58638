//! The gate on the example gateway over real sockets: every rule and reason of the contract,
//! every malformed identity header, and what the target sees.

mod support;

use http::StatusCode;
use support::{Answer, Gateway};

const ALICE: (&str, &[u8]) = ("authorization", b"Bearer alice");

fn source(value: &'static str) -> (&'static str, &'static [u8]) {
    ("x-source-api", value.as_bytes())
}

async fn linked(gateway: &Gateway, caller: &'static str, path: &str) -> Answer {
    gateway.get(path, &[source(caller), ALICE]).await
}

#[tokio::test]
async fn allowed_calls_reach_the_target_with_the_verified_source() {
    let gateway = Gateway::demo().await;

    for (caller, path) in [
        ("acme/billing", "/acme/orders/collections/c1"),
        ("acme/crm", "/acme/orders/collections/c1"),
        ("acme/orders", "/acme/billing/collections/c1"),
        ("acme/reports", "/acme/billing/collections/public"),
        ("acme/reports", "/acme/reports/collections/c1"),
        ("globex/billing", "/globex/orders/collections/c1"),
    ] {
        let administrator: &[u8] = if path.starts_with("/acme/") {
            b"Bearer ada"
        } else {
            b"Bearer gus"
        };
        let answer = gateway
            .get(path, &[source(caller), ("authorization", administrator)])
            .await;

        assert_eq!(
            answer.status,
            StatusCode::OK,
            "{caller} -> {path}: {}",
            answer.text()
        );
        assert!(answer.reached_target);
        assert_eq!(answer.json()["caller"], caller);
        assert_eq!(answer.json()["revision"], 1);
    }
}

#[tokio::test]
async fn denied_calls_never_reach_the_target() {
    let gateway = Gateway::demo().await;

    for (caller, path, why) in [
        ("acme/reports", "/acme/orders/collections/c1", "not listed"),
        ("acme/billing", "/acme/crm/collections/c1", "empty list"),
        (
            "acme/billing",
            "/acme/reports/collections/c1",
            "nothing configured",
        ),
        (
            "globex/billing",
            "/acme/orders/collections/c1",
            "other tenant",
        ),
        (
            "acme/billing",
            "/globex/billing/collections/c1",
            "other tenant, allow-all",
        ),
        (
            "initech/billing",
            "/initech/orders/collections/c1",
            "unknown tenant",
        ),
        (
            "acme/ghost",
            "/acme/billing/collections/c1",
            "unknown source under allow-all",
        ),
        (
            "acme/billing",
            "/acme/invoices/collections/c1",
            "unknown target",
        ),
        (
            "acme/billing",
            "/Acme/orders/collections/c1",
            "target not a valid name",
        ),
        (
            "acme/billing",
            "/acme/%6frders/collections/c1",
            "percent-escaped target",
        ),
    ] {
        let answer = linked(&gateway, caller, path).await;

        assert_eq!(
            answer.status,
            StatusCode::FORBIDDEN,
            "{why}: {}",
            answer.text()
        );
        answer.assert_denied();
    }
    assert_eq!(gateway.target_calls(), 0);
}

#[tokio::test]
async fn every_malformed_source_header_is_a_bad_request() {
    let gateway = Gateway::demo().await;
    let path = "/acme/orders/collections/c1";

    let forms: [&[(&str, &[u8])]; 12] = [
        &[
            ("x-source-api", b"acme/crm"),
            ("x-source-api", b"acme/billing"),
        ],
        &[
            ("x-source-api", b"acme/billing"),
            ("x-source-api", b"acme/billing"),
        ],
        &[("x-source-api", b"acme/reports,acme/billing")],
        &[("x-source-api", b"")],
        &[("x-source-api", b"acme/ billing")],
        &[("x-source-api", b"acme/bil\tling")],
        &[("x-source-api", b"acme/bill\x80ing")],
        &[("x-source-api", b"Acme/billing")],
        &[("x-source-api", b"acme/%62illing")],
        &[("x-source-api", b"acme/billing/v2")],
        &[("x-source-api", b"billing")],
        &[("X-Source-API", b"acme"), ALICE],
    ];
    for headers in forms {
        let answer = gateway.get(path, headers).await;

        answer.assert_malformed("x-source-api");
        let detail = answer.json()["detail"]
            .as_str()
            .expect("a detail")
            .to_owned();
        assert!(
            detail.starts_with("The x-source-api header must appear once"),
            "{detail}"
        );
    }
    assert_eq!(gateway.target_calls(), 0);
}

#[tokio::test]
async fn end_user_traffic_meets_the_targets_own_rules() {
    let gateway = Gateway::demo().await;
    let path = "/acme/orders/collections/c1";

    let no_user = gateway.get(path, &[]).await;
    assert_eq!(no_user.status, StatusCode::UNAUTHORIZED);
    assert!(no_user.reached_target);

    let alice = gateway.get(path, &[ALICE]).await;
    assert_eq!(alice.status, StatusCode::OK);
    assert_eq!(alice.json()["caller"], serde_json::Value::Null);
    assert_eq!(alice.json()["user"], "alice");

    let private = gateway
        .get("/acme/orders/collections/payroll", &[ALICE])
        .await;
    assert_eq!(private.status, StatusCode::FORBIDDEN);
    assert!(private.reached_target);
    assert_eq!(private.json()["code"], serde_json::Value::Null);
    assert!(
        private
            .text()
            .contains("may not read the collection payroll")
    );
}

#[tokio::test]
async fn an_allowed_caller_still_needs_a_user_with_access() {
    let gateway = Gateway::demo().await;

    let answer = linked(&gateway, "acme/billing", "/acme/orders/collections/payroll").await;

    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(
        answer.reached_target,
        "the gate let it through; the target refused the user"
    );
    assert!(
        answer
            .text()
            .contains("User alice may not read the collection payroll")
    );
}
