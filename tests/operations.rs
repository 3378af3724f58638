//! The example gateway's operator routes over real sockets: `GET /metrics` in Prometheus
//! text, `explain` and `suggestion` for tenant administrators and staff only.

mod echo;
mod support;

use std::future::Future;
use std::net::SocketAddr;

use http::StatusCode;
use metrics_exporter_prometheus::PrometheusBuilder;
use serde_json::json;
use support::app::{self, AppState, DEMO_POLICY};
use support::{Answer, Connection};
use tower_cross_api::{Enforcement, PolicyHandle};

/// Serves the example app over the demo policy on a current-thread runtime whose requests
/// record into a Prometheus recorder local to this test.
fn gateway<F: Future<Output = ()>>(
    enforcement: Enforcement,
    script: impl FnOnce(SocketAddr, AppState) -> F,
) {
    let recorder = PrometheusBuilder::new().build_recorder();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");

    let policies = PolicyHandle::new();
    policies.publish_json(DEMO_POLICY).expect("valid");
    let mut state = AppState::new(policies);
    state.enforcement = enforcement;
    state.operations.metrics = Some(recorder.handle());

    metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            let addr = echo::serve(app::app(state.clone())).await;
            script(addr, state).await;
        });
    });
}

async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &[u8])]) -> Answer {
    Connection::open(addr).await.get(path, headers).await
}

async fn as_user(addr: SocketAddr, user: &str, path: &str) -> Answer {
    let bearer = format!("Bearer {user}");
    get(addr, path, &[("authorization", bearer.as_bytes())]).await
}

const EXPLAIN_ORDERS: &str = "/admin/acme/apis/orders/cross-api-access/explain";

#[test]
fn metrics_are_served_in_prometheus_text() {
    gateway(Enforcement::Enforce, |addr, _| async move {
        let alice: (&str, &[u8]) = ("authorization", b"Bearer alice");
        for _ in 0..2 {
            get(
                addr,
                "/acme/orders/collections/c1",
                &[("x-source-api", b"acme/billing"), alice],
            )
            .await;
        }
        get(
            addr,
            "/acme/crm/collections/c1",
            &[("x-source-api", b"acme/orders")],
        )
        .await;
        get(
            addr,
            "/acme/crm/collections/c1",
            &[("x-source-api", b"acme/nope")],
        )
        .await;

        let answer = get(addr, "/metrics", &[]).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(
            answer.content_type.as_deref(),
            Some("text/plain; version=0.0.4")
        );
        let text = answer.text();
        for line in [
            r#"cross_api_decisions_total{tenant="acme",target="acme/orders",source="acme/billing",decision="allow",reason="listed"} 2"#,
            r#"cross_api_decisions_total{tenant="acme",target="acme/crm",source="acme/orders",decision="deny",reason="not_listed"} 1"#,
            r#"cross_api_decisions_total{tenant="acme",target="acme/crm",source="unknown",decision="deny",reason="unknown_source"} 1"#,
            "cross_api_snapshot_revision 1",
        ] {
            assert!(
                text.lines().any(|got| got == line),
                "{line} missing from\n{text}"
            );
        }
        assert!(text.contains("cross_api_snapshot_age_seconds "), "{text}");
        assert!(
            !text.contains("nope"),
            "a garbage name became a label:\n{text}"
        );
    });
}

#[test]
fn explain_shows_the_decision_and_the_targets_policy() {
    gateway(Enforcement::Enforce, |addr, _| async move {
        let listed = as_user(addr, "ada", &format!("{EXPLAIN_ORDERS}?source=billing")).await;
        assert_eq!(listed.status, StatusCode::OK, "{}", listed.text());
        assert_eq!(
            listed.json(),
            json!({
                "source": "acme/billing",
                "target": "acme/orders",
                "decision": "allow",
                "outcome": "allow",
                "reason": "listed",
                "revision": 1,
                "policy": {
                    "mode": "list",
                    "allow": ["billing", "crm"],
                    "enforcement": "enforce",
                    "summary": "Only these APIs may access this API's data: billing, crm.",
                },
            })
        );

        let not_listed = as_user(addr, "sam", &format!("{EXPLAIN_ORDERS}?source=reports")).await;
        assert_eq!(not_listed.json()["decision"], "deny");
        assert_eq!(not_listed.json()["outcome"], "deny");
        assert_eq!(not_listed.json()["reason"], "not_listed");

        let other = as_user(
            addr,
            "ada",
            &format!("{EXPLAIN_ORDERS}?source=globex/billing"),
        )
        .await;
        assert_eq!(other.json()["reason"], "other_tenant");

        let crm = "/admin/acme/apis/crm/cross-api-access/explain?source=orders";
        let crm = as_user(addr, "ada", crm).await;
        assert_eq!(crm.json()["policy"]["mode"], "list");
        assert_eq!(crm.json()["policy"]["allow"], json!([]));
        assert_eq!(
            crm.json()["policy"]["summary"],
            "No APIs are allowed to access this API's data."
        );
    });
}

#[test]
fn explain_says_when_the_gate_lets_a_denial_through() {
    gateway(Enforcement::Enforce, |addr, state| async move {
        let audited = DEMO_POLICY.replacen(
            r#""orders":  { "allow": ["billing", "crm"] }"#,
            r#""orders":  { "allow": ["billing", "crm"], "enforce": false }"#,
            1,
        );
        let revision = state
            .policies
            .publish_json(&audited.replacen(r#""revision": 1"#, r#""revision": 2"#, 1))
            .expect("orders in audit mode");
        assert_eq!(revision, 2);

        let explained = as_user(addr, "ada", &format!("{EXPLAIN_ORDERS}?source=reports")).await;
        let explained = explained.json();
        assert_eq!(
            (&explained["decision"], &explained["outcome"]),
            (&json!("deny"), &json!("would_deny"))
        );
        assert_eq!(explained["policy"]["enforcement"], "audit");
        let answer = get(
            addr,
            "/acme/orders/collections/c1",
            &[
                ("x-source-api", b"acme/reports"),
                ("authorization", b"Bearer alice"),
            ],
        )
        .await;
        assert_eq!(answer.json()["would_deny"], "not_listed", "the gate agrees");

        let other = format!("{EXPLAIN_ORDERS}?source=globex/billing");
        let other = as_user(addr, "ada", &other).await.json();
        assert_eq!(
            (&other["reason"], &other["outcome"]),
            (&json!("other_tenant"), &json!("deny")),
            "a target's audit mode speaks for its own tenant only"
        );
    });

    gateway(Enforcement::Audit, |addr, _| async move {
        let other = format!("{EXPLAIN_ORDERS}?source=globex/billing");
        let other = as_user(addr, "ada", &other).await.json();
        assert_eq!(
            other["outcome"], "would_deny",
            "a gate in audit mode lets it through"
        );
    });
}

#[test]
fn only_the_tenants_administrators_and_staff_may_ask() {
    gateway(Enforcement::Enforce, |addr, _| async move {
        let path = format!("{EXPLAIN_ORDERS}?source=billing");
        let suggestion = "/admin/acme/apis/orders/cross-api-access/suggestion";

        for (user, status) in [
            ("ada", StatusCode::OK),
            ("sam", StatusCode::OK),
            ("gus", StatusCode::FORBIDDEN),
            ("alice", StatusCode::FORBIDDEN),
            ("mallory", StatusCode::UNAUTHORIZED),
        ] {
            assert_eq!(as_user(addr, user, &path).await.status, status, "{user}");
            assert_eq!(
                as_user(addr, user, suggestion).await.status,
                status,
                "{user}"
            );
        }
        let anonymous = get(addr, &path, &[]).await;
        assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);

        let gus = "/admin/globex/apis/orders/cross-api-access/explain?source=billing";
        assert_eq!(as_user(addr, "gus", gus).await.json()["reason"], "listed");

        let unknown = "/admin/acme/apis/ghost/cross-api-access/explain?source=billing";
        assert_eq!(
            as_user(addr, "ada", unknown).await.status,
            StatusCode::NOT_FOUND
        );
        let unknown = "/admin/acme/apis/ghost/cross-api-access/suggestion";
        assert_eq!(
            as_user(addr, "ada", unknown).await.status,
            StatusCode::NOT_FOUND
        );
        let no_source = as_user(addr, "ada", EXPLAIN_ORDERS).await;
        assert_eq!(no_source.status, StatusCode::BAD_REQUEST);
        let bad_source = as_user(addr, "ada", &format!("{EXPLAIN_ORDERS}?source=Bad%20Name")).await;
        assert_eq!(bad_source.status, StatusCode::BAD_REQUEST);
    });
}

#[test]
fn suggestion_proposes_the_list_audit_mode_saw_without_applying_it() {
    gateway(Enforcement::Audit, |addr, state| async move {
        let alice: (&str, &[u8]) = ("authorization", b"Bearer alice");
        for _ in 0..2 {
            let answer = get(
                addr,
                "/acme/orders/collections/c1",
                &[("x-source-api", b"acme/reports"), alice],
            )
            .await;
            assert_eq!(answer.status, StatusCode::OK, "let through in audit mode");
            assert_eq!(answer.json()["would_deny"], "not_listed");
            assert_eq!(answer.json()["caller"], serde_json::Value::Null);
        }
        get(
            addr,
            "/acme/orders/collections/c1",
            &[("x-source-api", b"acme/ghost")],
        )
        .await;
        get(
            addr,
            "/acme/orders/collections/c1",
            &[("x-source-api", b"globex/billing")],
        )
        .await;

        let path = "/admin/acme/apis/orders/cross-api-access/suggestion";
        let answer = as_user(addr, "ada", path).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        let mut body = answer.json();
        assert!(body["added"][0]["last_seen_seconds_ago"].is_u64());
        body["added"][0]["last_seen_seconds_ago"] = json!(0);
        assert_eq!(
            body,
            json!({
                "target": "acme/orders",
                "revision": 1,
                "current": {
                    "mode": "list",
                    "allow": ["billing", "crm"],
                    "enforcement": "enforce",
                    "summary": "Only these APIs may access this API's data: billing, crm.",
                },
                "proposed": { "allow": ["billing", "crm", "reports"] },
                "added": [{ "source": "reports", "calls": 2, "last_seen_seconds_ago": 0 }],
                "window_seconds": 86400,
                "applied": false,
            })
        );

        assert_eq!(state.policies.revision(), Some(1), "nothing was published");
        let explain = format!("{EXPLAIN_ORDERS}?source=reports");
        assert_eq!(
            as_user(addr, "ada", &explain).await.json()["reason"],
            "not_listed"
        );
    });
}
