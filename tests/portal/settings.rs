//! The settings page in headless Chromium, against the gateway on PostgreSQL.

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use tower_cross_api::source::{PostgresSource, PostgresStore};
use tower_cross_api::{PolicyDocument, PolicyHandle};

use crate::browser::{Chromedriver, Page};
use crate::database::{self, TestSchema};
use crate::{app, http, portal};

const NOBODY: &str = "No APIs are allowed to access this API's data.";
const EVERYBODY: &str = "All APIs of this tenant, current and future, may access this API's data.";

/// The example gateway, portal included, on PostgreSQL seeded with the demo data.
struct Gateway {
    addr: SocketAddr,
}

impl Gateway {
    async fn start(url: &str) -> Self {
        let store = PostgresStore::new(url).expect("a database URL");
        store.migrate().await.expect("migrate");
        let demo = PolicyDocument::from_json(&portal::demo_policy()).expect("the demo data");
        assert!(
            store.seed(&demo).await.expect("seed"),
            "a fresh schema is seeded"
        );

        let policies = PolicyHandle::new();
        let source = PostgresSource::new(url, policies.clone()).expect("a database URL");
        source.load().await.expect("the first snapshot");
        tokio::spawn(source.follow());
        let state = app::AppState::new(policies).with_store(Arc::new(store));
        Self {
            addr: crate::serve(crate::router(state)).await,
        }
    }

    fn page(&self, tenant: &str, api: &str) -> String {
        format!(
            "http://{}/portal/{tenant}/apis/{api}/settings/cross-api-access",
            self.addr
        )
    }

    /// A call to the administration API from outside the browser, as `token`.
    async fn admin(
        &self,
        method: Method,
        target: &str,
        token: &str,
        body: Option<Value>,
        if_match: Option<u64>,
    ) -> (StatusCode, Value) {
        let path = format!("/admin/{target}/cross-api-access");
        let authorization = format!("Bearer {token}");
        let revision = if_match.map(|revision| format!("\"{revision}\""));
        let mut headers = vec![
            ("authorization", authorization.as_str()),
            ("content-type", "application/json"),
        ];
        if let Some(revision) = &revision {
            headers.push(("if-match", revision));
        }

        let reply = http::send(
            self.addr,
            method,
            &path,
            &headers,
            body.map(|body| body.to_string()),
        )
        .await;
        (
            reply.status,
            serde_json::from_str(&reply.text).unwrap_or(Value::Null),
        )
    }

    /// The policy of `target` as the administration API reads it for staff.
    async fn read(&self, target: &str) -> Value {
        let (status, body) = self.admin(Method::GET, target, "sam", None, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_settings_page_in_a_real_browser() {
    let test = "the_settings_page_in_a_real_browser";
    let Some(url) = database::database_url(test) else {
        return;
    };
    let Some(driver) = Chromedriver::start(test) else {
        return;
    };
    let schema = TestSchema::create(&url).await;
    let gateway = Gateway::start(&schema.url()).await;
    let client = driver.session().await;
    let page = Page { client: &client };

    sign_in_and_pick_from_the_long_list(&gateway, &page).await;
    allow_all_clears_the_list(&gateway, &page).await;
    a_self_grant_shows_the_rule(&gateway, &page).await;
    a_stale_save_shows_the_conflict(&gateway, &page).await;
    a_refused_save_keeps_the_selection(&gateway, &page).await;
    usable_by_keyboard_with_labels(&gateway, &page).await;
    a_member_and_another_tenant_see_it_read_only(&gateway, &page).await;
    a_single_api_tenant_says_it_has_no_effect(&gateway, &page).await;

    client.close().await.expect("close the browser");
}

/// An administrator signs in, searches the long list, ticks two, saves, reloads: both ticked.
async fn sign_in_and_pick_from_the_long_list(gateway: &Gateway, page: &Page<'_>) {
    page.client
        .goto(&gateway.page("umbrella", "ledger-api"))
        .await
        .expect("open the page");
    page.wait_for("token").await;
    page.screenshot("sign-in").await;

    page.type_into("token", "nobody").await;
    page.click("sign-in").await;
    page.wait_for("sign-in-error").await;
    assert_eq!(
        page.text("sign-in-error").await,
        "That token is not one of the demo users: try one listed below."
    );
    page.type_into("token", "uma").await;
    page.click("sign-in").await;
    page.wait_for("state").await;

    assert_eq!(
        page.text("signed-in").await,
        "Signed in as uma (administrator of umbrella)"
    );
    assert_eq!(page.text("api-name").await, "umbrella/ledger-api");
    assert_eq!(page.text("state").await, NOBODY);
    let listed = page
        .run("return Array.from(document.querySelectorAll('#apis input')).map(i => i.value)")
        .await;
    let mut expected = umbrella_apis();
    expected.retain(|api| api != "ledger-api");
    expected.sort();
    assert_eq!(
        listed,
        json!(expected),
        "every other API of umbrella, and only those"
    );
    assert_eq!(expected.len(), 299);
    assert_eq!(page.text("search-count").await, "Showing 299 of 299 APIs.");
    page.screenshot("settings").await;

    page.type_into("search", "pay").await;
    let shown = page
        .run(
            "return Array.from(document.querySelectorAll('#apis li'))\
             .filter(li => !li.hidden).map(li => li.textContent)",
        )
        .await;
    let payments: Vec<&String> = expected.iter().filter(|api| api.contains("pay")).collect();
    assert_eq!(shown, json!(payments));
    assert_eq!(page.text("search-count").await, "Showing 15 of 299 APIs.");
    page.click("api-payments-api").await;
    page.click("api-payments-events").await;
    assert_eq!(page.text("selected-count").await, "2 APIs selected.");
    page.screenshot("search").await;

    page.click("save").await;
    let picked = "Only these APIs may access this API's data: payments-api, payments-events.";
    assert_eq!(page.outcome().await, format!("Saved. {picked}"));
    assert_eq!(page.text("state").await, picked);
    let stored = gateway.read("umbrella/apis/ledger-api").await;
    assert_eq!(stored["allow"], json!(["payments-api", "payments-events"]));
    assert_eq!(page.text("revision").await, stored["revision"].to_string());

    page.client.refresh().await.expect("reload");
    page.wait_for("state").await;
    assert_eq!(page.text("state").await, picked);
    assert!(page.ticked("api-payments-api").await);
    assert!(page.ticked("api-payments-events").await);
    assert_eq!(
        ticked(page).await,
        json!(["payments-api", "payments-events"])
    );
    page.screenshot("saved").await;
}

/// The switch clears and disables the list; saved, the page reads allow-all after a reload.
async fn allow_all_clears_the_list(gateway: &Gateway, page: &Page<'_>) {
    page.click("allow-all").await;
    assert_eq!(ticked(page).await, json!([]), "the switch cleared the list");
    let enabled = page
        .run("return document.querySelectorAll('#apis input:enabled').length")
        .await;
    assert_eq!(enabled, json!(0), "the switch disabled the list");

    page.click("save").await;
    assert_eq!(page.outcome().await, format!("Saved. {EVERYBODY}"));
    page.client.refresh().await.expect("reload");
    page.wait_for("state").await;
    assert_eq!(page.text("state").await, EVERYBODY);
    assert!(page.ticked("allow-all").await);
    assert_eq!(ticked(page).await, json!([]));
    let stored = gateway.read("umbrella/apis/ledger-api").await;
    assert_eq!(
        (&stored["allow_all"], &stored["allow"]),
        (&json!(true), &json!([]))
    );
    page.screenshot("allow-all").await;
}

/// The page never lists the API itself, so the test adds a crafted checkbox for it to the
/// form, as a tampered page would: Save sends the self-grant, the server answers 422, and
/// the page names the rule, keeping the selection.
async fn a_self_grant_shows_the_rule(gateway: &Gateway, page: &Page<'_>) {
    let before = gateway.read("umbrella/apis/ledger-api").await;
    page.click("allow-all").await;
    page.click("api-orders-api").await;
    page.run(
        "const own = document.createElement('input');\
         own.type = 'checkbox'; own.name = 'allow'; own.value = 'ledger-api';\
         own.checked = true; own.hidden = true; own.id = 'crafted';\
         document.getElementById('access').appendChild(own);",
    )
    .await;

    page.click("save").await;
    assert_eq!(
        page.outcome().await,
        "Not saved: an API cannot be allowed to access its own data. Your selection is kept."
    );
    assert!(page.ticked("api-orders-api").await, "the selection is kept");
    assert!(!page.ticked("allow-all").await);
    assert_eq!(page.text("state").await, EVERYBODY, "nothing changed");
    assert_eq!(gateway.read("umbrella/apis/ledger-api").await, before);
    page.screenshot("rule-broken").await;
    page.run("document.getElementById('crafted').remove()")
        .await;
}

/// Somebody else saves after the page was loaded: Save is refused with 412, the page says
/// so and shows what is saved now, keeping the selection; Save again replaces it.
async fn a_stale_save_shows_the_conflict(gateway: &Gateway, page: &Page<'_>) {
    page.client.refresh().await.expect("reload");
    page.wait_for("state").await;
    let loaded: u64 = page.text("revision").await.parse().expect("a revision");
    page.click("allow-all").await;
    page.click("api-fraud-rules").await;

    let change = json!({ "allow_all": false, "allow": ["search-api"] });
    let (status, body) = gateway
        .admin(
            Method::PUT,
            "umbrella/apis/ledger-api",
            "sam",
            Some(change),
            Some(loaded),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    page.click("save").await;
    let theirs = "Only these APIs may access this API's data: search-api.";
    assert_eq!(
        page.outcome().await,
        format!(
            "Not saved: someone else changed this setting after you opened the page. Your \
             selection is kept. It now reads: \u{201c}{theirs}\u{201d} Save again to replace \
             it with your selection."
        )
    );
    assert_eq!(page.text("state").await, theirs);
    assert_eq!(
        ticked(page).await,
        json!(["fraud-rules"]),
        "the selection is kept"
    );
    assert_eq!(
        gateway.read("umbrella/apis/ledger-api").await["allow"],
        json!(["search-api"])
    );
    page.screenshot("stale").await;

    page.click("save").await;
    let mine = "Only these APIs may access this API's data: fraud-rules.";
    assert_eq!(page.outcome().await, format!("Saved. {mine}"));
    assert_eq!(
        gateway.read("umbrella/apis/ledger-api").await["allow"],
        json!(["fraud-rules"])
    );
}

/// The session changed to a member in another tab: the server refuses the save with 403,
/// and the page says so, keeping the selection.
async fn a_refused_save_keeps_the_selection(gateway: &Gateway, page: &Page<'_>) {
    let before = gateway.read("umbrella/apis/ledger-api").await;
    page.click("api-quotes-api").await;
    page.run("document.cookie = 'portal_token=alice; Path=/; SameSite=Strict'")
        .await;

    page.click("save").await;
    assert_eq!(
        page.outcome().await,
        "Not saved: you are not allowed to change this setting. Only administrators of \
         umbrella and platform staff can. Your selection is kept."
    );
    assert_eq!(ticked(page).await, json!(["fraud-rules", "quotes-api"]));
    assert_eq!(gateway.read("umbrella/apis/ledger-api").await, before);
    page.screenshot("forbidden").await;
    page.run("document.cookie = 'portal_token=uma; Path=/; SameSite=Strict'")
        .await;
}

/// Every control has a label, and the list is reached and ticked from the search box by
/// keyboard alone.
async fn usable_by_keyboard_with_labels(_gateway: &Gateway, page: &Page<'_>) {
    page.client.refresh().await.expect("reload");
    page.wait_for("state").await;
    let unlabelled = page
        .run(
            "return Array.from(document.querySelectorAll('input:not([type=hidden]), button'))\
             .filter(e => e.labels === null || (e.labels.length === 0 && !e.textContent.trim()))\
             .map(e => e.id)",
        )
        .await;
    assert_eq!(unlabelled, json!([]), "every control has a label");

    page.type_into("search", "refunds-a").await;
    let tab = "\u{e004}";
    page.client
        .active_element()
        .await
        .expect("the focused element")
        .send_keys(tab)
        .await
        .expect("Tab");
    let focused = page
        .client
        .active_element()
        .await
        .expect("the focused element");
    assert_eq!(
        focused.attr("id").await.expect("an id").as_deref(),
        Some("api-refunds-admin")
    );
    focused.send_keys(" ").await.expect("Space");
    assert!(
        page.ticked("api-refunds-admin").await,
        "Space ticks the focused API"
    );
}

/// A member, and an administrator of another tenant, see the setting read-only with the
/// reason; the server refuses the member's write whatever the page does.
async fn a_member_and_another_tenant_see_it_read_only(gateway: &Gateway, page: &Page<'_>) {
    let orders = "Only these APIs may access this API's data: billing, crm.";
    for (token, reason) in [
        ("alice", "You are a member of acme, not an administrator."),
        ("gus", "You administer globex, not acme."),
    ] {
        sign_in_as(gateway, page, token, "acme", "orders").await;
        assert_eq!(page.text("state").await, orders);
        assert_eq!(
            page.text("read-only").await,
            format!(
                "Read-only. {reason} Only administrators of acme and platform staff can change \
                 it."
            )
        );
        assert!(!page.has("save").await, "no Save for {token}");
        let enabled = page
            .run("return document.querySelectorAll('#access input:enabled').length")
            .await;
        assert_eq!(enabled, json!(0), "every control is disabled for {token}");
        if token == "alice" {
            page.screenshot("read-only").await;
        }

        let status = page
            .run(&format!(
                "return fetch('/admin/acme/apis/orders/cross-api-access', {{ method: 'PUT', \
                 headers: {{ 'Authorization': 'Bearer {token}', \
                 'Content-Type': 'application/json' }}, \
                 body: JSON.stringify({{ allow_all: true }}) }}).then(r => r.status)"
            ))
            .await;
        assert_eq!(status, json!(403), "the server refuses {token}'s write");
        assert_eq!(gateway.read("acme/apis/orders").await["summary"], orders);
    }
}

/// In a tenant with one API, the page says that the setting has no effect yet.
async fn a_single_api_tenant_says_it_has_no_effect(gateway: &Gateway, page: &Page<'_>) {
    sign_in_as(gateway, page, "sam", "solo", "intake").await;

    assert_eq!(page.text("state").await, NOBODY);
    assert_eq!(
        page.text("no-effect").await,
        "intake is the only API of solo: this setting has no effect until another API exists \
         in solo."
    );
    assert!(!page.has("apis").await, "no list without another API");
    assert!(page.has("save").await, "staff may still set it");
    page.screenshot("only-api").await;
}

async fn sign_in_as(gateway: &Gateway, page: &Page<'_>, token: &str, tenant: &str, api: &str) {
    if page.has("sign-out").await {
        page.click("sign-out").await;
        page.wait_for("token").await;
    }
    page.client
        .goto(&gateway.page(tenant, api))
        .await
        .expect("open the page");
    page.wait_for("token").await;
    page.type_into("token", token).await;
    page.click("sign-in").await;
    page.wait_for("state").await;
    assert!(
        page.text("signed-in")
            .await
            .starts_with(&format!("Signed in as {token} ")),
        "signed in as {token}"
    );
    assert_eq!(page.text("api-name").await, format!("{tenant}/{api}"));
}

/// The values of the ticked checkboxes in the list.
async fn ticked(page: &Page<'_>) -> Value {
    page.run(
        "return Array.from(document.querySelectorAll('#apis input:checked')).map(i => i.value)",
    )
    .await
}

fn umbrella_apis() -> Vec<String> {
    let demo = PolicyDocument::from_json(&portal::demo_policy()).expect("the demo data");
    demo.tenants[portal::LARGE_TENANT].apis.clone()
}
