//! The administration API of the example gateway with the policy file as its source: reads
//! work, writes are refused with `405` and the reason, over a real socket.

mod support;

#[allow(dead_code)]
#[path = "../examples/gateway/admin.rs"]
mod admin;
#[allow(dead_code)]
#[path = "../examples/gateway/app.rs"]
mod app;

use std::net::SocketAddr;

use hyper::{Method, StatusCode};
use serde_json::json;
use support::{send, serve};
use tower_cross_api::PolicyHandle;

async fn gateway() -> SocketAddr {
    let policies = PolicyHandle::new();
    policies
        .publish_json(app::DEMO_POLICY)
        .expect("the demo policy");
    serve(app::app(app::AppState::new(policies))).await
}

#[tokio::test]
async fn reads_answer_with_state_revision_and_summary() {
    let addr = gateway().await;
    let ada = [("authorization", "Bearer ada")];

    let orders = send(
        addr,
        Method::GET,
        "/admin/acme/apis/orders/cross-api-access",
        &ada,
        None,
    )
    .await;
    assert_eq!(orders.status, StatusCode::OK);
    assert_eq!(
        orders.body,
        json!({
            "allow_all": false,
            "allow": ["billing", "crm"],
            "revision": 1,
            "summary": "Only these APIs may access this API's data: billing, crm.",
        })
    );
    assert_eq!(orders.headers["etag"], "\"1\"");

    for api in ["reports", "crm"] {
        let path = format!("/admin/acme/apis/{api}/cross-api-access");
        let nobody = send(addr, Method::GET, &path, &ada, None).await;
        assert_eq!(
            nobody.body["summary"],
            "No APIs are allowed to access this API's data."
        );
    }

    let gus = [("authorization", "Bearer gus")];
    let other = send(
        addr,
        Method::GET,
        "/admin/acme/apis/orders/cross-api-access",
        &gus,
        None,
    )
    .await;
    assert_eq!(other.status, StatusCode::FORBIDDEN);
    let missing = send(
        addr,
        Method::GET,
        "/admin/acme/apis/ghost/cross-api-access",
        &ada,
        None,
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    let audit = send(addr, Method::GET, "/admin/acme/audit", &ada, None).await;
    assert_eq!(audit.status, StatusCode::OK);
    assert_eq!(audit.body["records"], json!([]));
    let alice = [("authorization", "Bearer alice")];
    let audit = send(addr, Method::GET, "/admin/acme/audit", &alice, None).await;
    assert_eq!(audit.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn writes_are_refused_with_405_saying_why() {
    let addr = gateway().await;

    for user in ["ada", "sam", "alice"] {
        let token = format!("Bearer {user}");
        let refused = send(
            addr,
            Method::PUT,
            "/admin/acme/apis/orders/cross-api-access",
            &[("authorization", token.as_str())],
            Some(r#"{"allow_all": true}"#),
        )
        .await;
        assert_eq!(refused.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(refused.headers["allow"], "GET");
        let detail = refused.body["detail"].as_str().expect("a detail");
        assert!(detail.contains("read-only"), "{detail}");
        assert!(detail.contains("--database-url"), "{detail}");
    }

    let still = send(
        addr,
        Method::GET,
        "/admin/acme/apis/orders/cross-api-access",
        &[("authorization", "Bearer ada")],
        None,
    )
    .await;
    assert_eq!(still.body["allow"], json!(["billing", "crm"]));
}
