//! The portal's answers over HTTP, on the demo data from the file source (read-only).

use std::net::SocketAddr;

use hyper::{Method, StatusCode};
use tower_cross_api::{PolicyDocument, PolicyHandle};

use crate::http::{Reply, send};
use crate::{app, portal};

const ORDERS: &str = "/portal/acme/apis/orders/settings/cross-api-access";

async fn gateway() -> SocketAddr {
    let policies = PolicyHandle::new();
    policies
        .publish_json(&portal::demo_policy())
        .expect("the demo data is valid");
    crate::serve(crate::router(app::AppState::new(policies))).await
}

async fn page(addr: SocketAddr, path: &str, token: Option<&str>) -> Reply {
    let cookie = token.map(|token| format!("theme=dark; portal_token={token}"));
    let headers: Vec<(&str, &str)> = cookie.iter().map(|c| ("cookie", c.as_str())).collect();
    send(addr, Method::GET, path, &headers, None).await
}

async fn sign_in(addr: SocketAddr, form: &str) -> Reply {
    let headers = [("content-type", "application/x-www-form-urlencoded")];
    send(
        addr,
        Method::POST,
        "/portal/sign-in",
        &headers,
        Some(form.to_owned()),
    )
    .await
}

#[tokio::test]
async fn without_a_session_the_page_is_the_sign_in_form() {
    let addr = gateway().await;

    let reply = page(addr, ORDERS, None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-type"), "text/html; charset=utf-8");
    assert_eq!(reply.header("cache-control"), "no-store");
    assert!(
        reply
            .header("content-security-policy")
            .starts_with("default-src 'self';")
    );
    assert!(
        reply
            .text
            .contains("<label for=\"token\">Demo token</label>"),
        "{}",
        reply.text
    );
    assert!(
        reply
            .text
            .contains(&format!("name=\"next\" value=\"{ORDERS}\""))
    );
    assert!(
        !reply.text.contains("id=\"state\""),
        "no setting before signing in"
    );

    let reply = page(addr, ORDERS, Some("mallory")).await;
    assert!(
        reply.text.contains("id=\"token\""),
        "an unknown token is no session"
    );
}

#[tokio::test]
async fn sign_in_keeps_the_token_for_the_session_and_returns_to_the_page() {
    let addr = gateway().await;

    let reply = sign_in(
        addr,
        &format!("token=ada&next={}", ORDERS.replace('/', "%2F")),
    )
    .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(reply.header("location"), ORDERS);
    assert_eq!(
        reply.header("set-cookie"),
        "portal_token=ada; Path=/; SameSite=Strict"
    );

    let reply = sign_in(addr, "token=nobody&next=%2Fportal%2Fx").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(reply.headers.get("set-cookie").is_none());
    assert!(
        reply
            .text
            .contains("That token is not one of the demo users")
    );

    for elsewhere in [
        "https%3A%2F%2Fevil.test%2F",
        "%2F%2Fevil.test%2Fportal%2F",
        "%2Fadmin",
    ] {
        let reply = sign_in(addr, &format!("token=ada&next={elsewhere}")).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER);
        assert_eq!(
            reply.header("location"),
            ORDERS,
            "never sent to {elsewhere}"
        );
    }

    let headers = [("content-type", "application/x-www-form-urlencoded")];
    let form = format!("next={}", ORDERS.replace('/', "%2F"));
    let reply = send(addr, Method::POST, "/portal/sign-out", &headers, Some(form)).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(
        reply.header("set-cookie"),
        "portal_token=; Path=/; SameSite=Strict; Max-Age=0"
    );
}

#[tokio::test]
async fn the_page_shows_the_setting_and_the_other_apis_of_the_tenant_only() {
    let addr = gateway().await;

    let reply = page(addr, ORDERS, Some("ada")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let text = &reply.text;
    assert!(text.contains(
        "<p id=\"state\">Only these APIs may access this API&#39;s data: billing, crm.</p>"
    ));
    for (api, checked) in [("billing", true), ("crm", true), ("reports", false)] {
        let checked = if checked { " checked" } else { "" };
        let input = format!("id=\"api-{api}\" name=\"allow\" value=\"{api}\"{checked}>");
        assert!(text.contains(&input), "{api} listed: {text}");
    }
    assert!(!text.contains("value=\"orders\""), "never the API itself");
    assert_eq!(
        text.matches("name=\"allow\"").count(),
        3,
        "never another tenant's APIs"
    );
    assert!(text.contains("<label for=\"allow-all\">Allow all APIs</label>"));

    let crm = page(
        addr,
        "/portal/acme/apis/crm/settings/cross-api-access",
        Some("ada"),
    )
    .await;
    assert!(
        crm.text
            .contains("<p id=\"state\">No APIs are allowed to access this API&#39;s data.</p>")
    );
    let reports = page(
        addr,
        "/portal/acme/apis/reports/settings/cross-api-access",
        Some("ada"),
    )
    .await;
    assert!(
        reports
            .text
            .contains("<p id=\"state\">No APIs are allowed to access this API&#39;s data.</p>")
    );
    assert!(
        !reports.text.contains("id=\"no-effect\""),
        "acme has other APIs"
    );

    let umbrella = "/portal/umbrella/apis/orders-api/settings/cross-api-access";
    let umbrella = page(addr, umbrella, Some("uma")).await;
    assert_eq!(umbrella.text.matches("name=\"allow\"").count(), 299);
    let first: Vec<&str> = umbrella
        .text
        .split("name=\"allow\" value=\"")
        .skip(1)
        .take(4)
        .map(|rest| rest.split('"').next().expect("a value"))
        .collect();
    assert_eq!(
        first,
        [
            "checkout-api",
            "payments-api",
            "shipping-events",
            "accounts-admin"
        ],
        "the APIs allowed now come first, then the others, each by name"
    );
    assert!(umbrella.text.contains("Showing 299 of 299 APIs."));
}

#[tokio::test]
async fn the_file_source_and_other_people_see_it_read_only_with_the_reason() {
    let addr = gateway().await;

    for (token, reason) in [
        (
            "ada",
            "This gateway reads its policies from a file or its built-in demo data: change the \
             file, or run the gateway with --database-url to change them here.",
        ),
        (
            "alice",
            "You are a member of acme, not an administrator. Only administrators of acme and \
             platform staff can change it.",
        ),
        (
            "gus",
            "You administer globex, not acme. Only administrators of acme and platform staff \
             can change it.",
        ),
    ] {
        let reply = page(addr, ORDERS, Some(token)).await;
        assert_eq!(reply.status, StatusCode::OK);
        let notice = format!("<strong>Read-only.</strong> {reason}</p>");
        assert!(reply.text.contains(&notice), "{token}: {}", reply.text);
        assert!(reply.text.contains("<fieldset disabled>"), "{token}");
        assert!(!reply.text.contains("id=\"save\""), "{token}");
    }
}

#[tokio::test]
async fn a_single_api_tenant_says_the_setting_has_no_effect_yet() {
    let addr = gateway().await;

    let reply = page(
        addr,
        "/portal/solo/apis/intake/settings/cross-api-access",
        Some("sam"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.text.contains(
        "<p class=\"notice\" id=\"no-effect\">intake is the only API of solo: this setting has \
         no effect until another API exists in solo.</p>"
    ));
    assert!(!reply.text.contains("id=\"search\""), "no list to search");
}

#[tokio::test]
async fn a_target_in_audit_mode_says_so() {
    let mut document =
        PolicyDocument::from_json(&portal::demo_policy()).expect("the demo data is valid");
    let access = &mut document
        .tenants
        .get_mut("acme")
        .expect("acme")
        .cross_api_access;
    access.get_mut("orders").expect("orders").enforce = false;
    let policies = PolicyHandle::new();
    policies.publish_document(&document).expect("valid");
    let addr = crate::serve(crate::router(app::AppState::new(policies))).await;
    let notice = "<p class=\"notice\" id=\"audit-mode\"><strong>Audit mode.</strong> Calls \
                  this setting does not allow are let through and reported, not refused.</p>";

    let orders = page(addr, ORDERS, Some("ada")).await;
    assert_eq!(orders.status, StatusCode::OK);
    assert!(orders.text.contains(notice), "{}", orders.text);
    let crm = page(
        addr,
        "/portal/acme/apis/crm/settings/cross-api-access",
        Some("ada"),
    )
    .await;
    assert_eq!(crm.status, StatusCode::OK);
    assert!(!crm.text.contains("audit-mode"), "{}", crm.text);
}

#[tokio::test]
async fn unknown_or_malformed_apis_are_not_found_and_escaped() {
    let addr = gateway().await;

    let reply = page(
        addr,
        "/portal/acme/apis/ghost/settings/cross-api-access",
        Some("ada"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(reply.text.contains("There is no API acme/ghost."));

    let path = "/portal/acme/apis/%3Cscript%3Ex%3C%2Fscript%3E/settings/cross-api-access";
    let reply = page(addr, path, Some("ada")).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(
        reply
            .text
            .contains("There is no API acme/&lt;script&gt;x&lt;/script&gt;.")
    );
    assert!(!reply.text.contains("<script>x"), "{}", reply.text);
}

#[tokio::test]
async fn the_script_and_style_are_served_from_the_binary() {
    let addr = gateway().await;

    for (path, media) in [
        ("/portal/assets/portal.js", "text/javascript; charset=utf-8"),
        ("/portal/assets/portal.css", "text/css; charset=utf-8"),
    ] {
        let reply = page(addr, path, None).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.header("content-type"), media);
        assert_eq!(reply.header("x-content-type-options"), "nosniff");
    }
}
