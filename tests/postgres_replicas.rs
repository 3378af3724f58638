//! Several gateway replicas on one PostgreSQL database, over real sockets: a change made
//! through one is enforced by the other (with the delay measured), the administration API
//! answers every case, and the database connection is cut and restored under traffic
//! through a proxy the test controls.

#![cfg(feature = "postgres")]

mod support;

use support::app;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};
use serde_json::json;
use support::{
    Proxy, TestSchema, database_addr, database_url, eventually, linked_call, send, serve,
};
use tower_cross_api::admin::{Actor, Change, Write};
use tower_cross_api::source::{PostgresSource, PostgresStore};
use tower_cross_api::{ApiId, PolicyDocument, PolicyHandle, TenantId};

const ALLOWED: StatusCode = StatusCode::UNAUTHORIZED;
const DENIED: StatusCode = StatusCode::FORBIDDEN;
const ACCESS: &str = "/admin/acme/apis/crm/cross-api-access";

/// One gateway replica: its own policies, following the database, serving the example app.
struct Replica {
    addr: SocketAddr,
    policies: PolicyHandle,
    follow: tokio::task::JoinHandle<()>,
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.follow.abort();
    }
}

async fn replica(follow_url: &str, store_url: &str) -> Replica {
    let policies = PolicyHandle::new();
    let source = PostgresSource::new(follow_url, policies.clone())
        .expect("a source")
        .with_backoff(Duration::from_millis(20), Duration::from_millis(200));
    let follow = tokio::spawn(source.follow());

    let store = Arc::new(PostgresStore::new(store_url).expect("a store"));
    let state = app::AppState::new(policies.clone()).with_store(store);
    let addr = serve(app::app(state)).await;
    Replica {
        addr,
        policies,
        follow,
    }
}

async fn seeded(schema: &TestSchema) -> PostgresStore {
    let store = PostgresStore::new(&schema.url()).expect("a store");
    store.migrate().await.expect("migrate");
    let demo = PolicyDocument::from_json(app::DEMO_POLICY).expect("the demo policy");
    assert!(store.seed(&demo).await.expect("seed"));
    store
}

/// A seeded schema of its own, its store, and two replicas that follow it directly.
async fn two_replicas(url: &str) -> (TestSchema, PostgresStore, Replica, Replica) {
    let schema = TestSchema::create(url).await;
    let store = seeded(&schema).await;
    let a = replica(&schema.url(), &schema.url()).await;
    let b = replica(&schema.url(), &schema.url()).await;
    (schema, store, a, b)
}

async fn caught_up(replica: &Replica, store: &PostgresStore) -> bool {
    let revision = store.revision().await.expect("revision");
    eventually(Duration::from_secs(10), async || {
        replica.policies.revision() == Some(revision)
    })
    .await
}

fn bearer(user: &str) -> String {
    format!("Bearer {user}")
}

async fn put(addr: SocketAddr, user: &str, if_match: Option<&str>, body: &str) -> support::Reply {
    let token = bearer(user);
    let mut headers = vec![("authorization", token.as_str())];
    if let Some(etag) = if_match {
        headers.push(("if-match", etag));
    }
    send(addr, Method::PUT, ACCESS, &headers, Some(body)).await
}

async fn get(addr: SocketAddr, user: &str, path: &str) -> support::Reply {
    let token = bearer(user);
    send(
        addr,
        Method::GET,
        path,
        &[("authorization", token.as_str())],
        None,
    )
    .await
}

fn etag(answer: &support::Reply) -> String {
    answer.headers["etag"]
        .to_str()
        .expect("an ASCII ETag")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_through_one_replica_is_enforced_by_the_other() {
    let Some(url) = database_url("a_change_through_one_replica_is_enforced_by_the_other") else {
        return;
    };
    let (_schema, store, a, b) = two_replicas(&url).await;
    assert!(caught_up(&a, &store).await && caught_up(&b, &store).await);
    assert_eq!(
        linked_call(b.addr, "acme/billing", "acme/crm").await,
        DENIED
    );

    let read = get(a.addr, "ada", ACCESS).await;
    let mut tag = etag(&read);
    let mut delays = Vec::with_capacity(100);
    for change in 0..100 {
        let (body, expected) = if change % 2 == 0 {
            (r#"{"allow_all": false, "allow": ["billing"]}"#, ALLOWED)
        } else {
            (r#"{"allow_all": false, "allow": []}"#, DENIED)
        };

        let written = put(a.addr, "ada", Some(&tag), body).await;
        assert_eq!(written.status, StatusCode::OK, "{:?}", written.body);
        let accepted = Instant::now();
        tag = etag(&written);

        let enforced = eventually(Duration::from_secs(10), async || {
            linked_call(b.addr, "acme/billing", "acme/crm").await == expected
        })
        .await;
        assert!(
            enforced,
            "change {change} was not enforced by the other replica"
        );
        delays.push(accepted.elapsed());
    }

    delays.sort();
    let (p50, worst) = (delays[delays.len() / 2], delays[delays.len() - 1]);
    println!(
        "propagation from one replica's PUT to the other replica's gate over {} changes: \
         p50 {:.1} ms, worst {:.1} ms",
        delays.len(),
        p50.as_secs_f64() * 1000.0,
        worst.as_secs_f64() * 1000.0
    );
    assert!(
        worst < Duration::from_secs(5),
        "worst propagation {worst:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_mode_switched_in_sql_is_followed_by_every_replica() {
    let Some(url) = database_url("audit_mode_switched_in_sql_is_followed_by_every_replica") else {
        return;
    };
    let (schema, store, a, b) = two_replicas(&url).await;
    let sql = support::connect(&schema.url()).await;
    let switch = |enforce: bool| {
        format!(
            "UPDATE cross_api_policies SET enforce = {enforce} \
             WHERE tenant = 'acme' AND target = 'crm'"
        )
    };
    assert!(caught_up(&a, &store).await && caught_up(&b, &store).await);
    for replica in [&a, &b] {
        assert_eq!(
            linked_call(replica.addr, "acme/billing", "acme/crm").await,
            DENIED
        );
    }

    let read = get(a.addr, "ada", ACCESS).await;
    assert_eq!(read.body.get("enforce"), None, "{:?}", read.body);

    for (enforce, expected) in [(false, ALLOWED), (true, DENIED), (false, ALLOWED)] {
        sql.batch_execute(&switch(enforce))
            .await
            .expect("the switch");
        assert!(caught_up(&a, &store).await && caught_up(&b, &store).await);
        for replica in [&a, &b] {
            assert_eq!(
                linked_call(replica.addr, "acme/billing", "acme/crm").await,
                expected,
                "enforce = {enforce}"
            );
            assert_eq!(
                linked_call(replica.addr, "acme/billing", "acme/orders").await,
                ALLOWED
            );
            assert_eq!(
                linked_call(replica.addr, "acme/reports", "acme/orders").await,
                DENIED,
                "an enforcing target stays enforcing"
            );
        }
    }

    let read = get(b.addr, "ada", ACCESS).await;
    assert_eq!(read.body["enforce"], json!(false), "{:?}", read.body);
    let put = put(
        a.addr,
        "ada",
        None,
        r#"{"allow_all": false, "allow": ["orders"]}"#,
    )
    .await;
    assert_eq!(put.status, StatusCode::OK, "{:?}", put.body);
    assert_eq!(put.body["enforce"], json!(false), "{:?}", put.body);
    assert!(caught_up(&a, &store).await && caught_up(&b, &store).await);
    assert_eq!(
        linked_call(b.addr, "acme/billing", "acme/crm").await,
        ALLOWED,
        "a write through the admin API keeps the target in audit mode"
    );
    assert_eq!(
        b.policies
            .snapshot()
            .expect("a snapshot")
            .enforcement(&"acme/crm".parse().expect("a reference")),
        Some(tower_cross_api::Enforcement::Audit)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_puts_with_one_if_match_exactly_one_wins() {
    let Some(url) = database_url("concurrent_puts_with_one_if_match_exactly_one_wins") else {
        return;
    };
    let (_schema, store, a, b) = two_replicas(&url).await;
    let read = get(a.addr, "ada", ACCESS).await;
    let tag = etag(&read);

    let mut writers = Vec::new();
    for writer in 0..8 {
        let (addr, tag) = (if writer % 2 == 0 { a.addr } else { b.addr }, tag.clone());
        let user = if writer % 3 == 0 { "sam" } else { "ada" };
        writers.push(tokio::spawn(async move {
            put(addr, user, Some(&tag), r#"{"allow_all": true}"#)
                .await
                .status
        }));
    }
    let mut statuses = Vec::new();
    for writer in writers {
        statuses.push(writer.await.expect("the writer ran"));
    }

    let won = statuses.iter().filter(|&&s| s == StatusCode::OK).count();
    let stale = statuses
        .iter()
        .filter(|&&s| s == StatusCode::PRECONDITION_FAILED);
    assert_eq!((won, stale.count()), (1, 7), "{statuses:?}");
    let trail = store
        .audit(
            &Actor::staff("sam"),
            &TenantId::new("acme").expect("id"),
            10,
        )
        .await
        .expect("audit");
    assert_eq!(trail.len(), 1);
}

#[tokio::test]
async fn the_admin_api_answers_every_case() {
    let Some(url) = database_url("the_admin_api_answers_every_case") else {
        return;
    };
    let schema = TestSchema::create(&url).await;
    let store = seeded(&schema).await;
    let gateway = replica(&schema.url(), &schema.url()).await;
    let addr = gateway.addr;

    let read = get(addr, "alice", ACCESS).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(
        read.body,
        json!({
            "allow_all": false,
            "allow": [],
            "revision": store.revision().await.expect("revision"),
            "summary": "No APIs are allowed to access this API's data.",
        })
    );
    let tag = etag(&read);
    assert_eq!(tag, format!("\"{}\"", read.body["revision"]));

    for user in ["alice", "gus", "nobody"] {
        let refused = put(addr, user, None, r#"{"allow_all": true}"#).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{user}");
        assert_eq!(refused.body["reason"], "forbidden");
    }
    let unauthenticated = send(
        addr,
        Method::PUT,
        ACCESS,
        &[],
        Some(r#"{"allow_all":true}"#),
    )
    .await;
    assert_eq!(unauthenticated.status, StatusCode::FORBIDDEN);

    let rules = [
        (r#"{"allow_all": false, "allow": ["crm"]}"#, "self_grant"),
        (
            r#"{"allow_all": true, "allow": ["billing"]}"#,
            "allow_all_with_list",
        ),
        (
            r#"{"allow_all": false, "allow": ["ledger"]}"#,
            "not_in_tenant",
        ),
        (
            r#"{"allow_all": false, "allow": ["Billing"]}"#,
            "malformed_identifier",
        ),
        (
            r#"{"allow_all": false, "allow": ["orders", "orders"]}"#,
            "repeated",
        ),
    ];
    for (body, rule) in rules {
        let refused = put(addr, "ada", None, body).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(refused.body["rule"], rule, "{body}");
    }

    for body in [
        "",
        "not json",
        r#"{"allow": ["billing"]}"#,
        r#"{"allow_all": "yes"}"#,
        r#"{"allow_all": false, "allow": "billing"}"#,
        r#"{"allow_all": false, "allow": null}"#,
        r#"{"allow_all": false, "deny": []}"#,
        r#"{"allow_all": false, "allow_all": true}"#,
    ] {
        let refused = put(addr, "ada", None, body).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{body}");
    }

    for path in [
        "/admin/initech/apis/crm/cross-api-access",
        "/admin/acme/apis/ghost/cross-api-access",
        "/admin/Acme/apis/crm/cross-api-access",
    ] {
        let headers = [("authorization", "Bearer sam")];
        let missing = send(
            addr,
            Method::PUT,
            path,
            &headers,
            Some(r#"{"allow_all":true}"#),
        )
        .await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND, "{path}");
        let missing = send(addr, Method::GET, path, &headers, None).await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND, "{path}");
    }
    assert_eq!(
        store.revision().await.expect("revision"),
        read.body["revision"]
    );

    let written = put(
        addr,
        "ada",
        Some(&tag),
        r#"{"allow_all": false, "allow": ["billing"]}"#,
    )
    .await;
    assert_eq!(written.status, StatusCode::OK);
    assert_eq!(written.body["allow"], json!(["billing"]));
    assert_eq!(
        written.body["summary"],
        "Only these APIs may access this API's data: billing."
    );
    let stale = put(addr, "ada", Some(&tag), r#"{"allow_all": true}"#).await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(stale.body["revision"], written.body["revision"]);
    let current = written.body["revision"].to_string();
    let zero_padded = format!("\"0{current}\"");
    let signed = format!("\"+{current}\"");
    for garbled in ["W/\"x\"", &signed, &zero_padded, &current, "\"\""] {
        let refused = put(addr, "ada", Some(garbled), r#"{"allow_all": true}"#).await;
        assert_eq!(refused.status, StatusCode::PRECONDITION_FAILED, "{garbled}");
    }
    let token = bearer("ada");
    let twice = [
        ("authorization", token.as_str()),
        ("if-match", tag.as_str()),
        ("if-match", tag.as_str()),
    ];
    let body = Some(r#"{"allow_all": true}"#);
    let stale_twice = send(addr, Method::PUT, ACCESS, &twice, body).await;
    assert_eq!(stale_twice.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(
        get(addr, "ada", ACCESS).await.body["allow"],
        json!(["billing"]),
        "no refused write changed the policy"
    );

    let reset = put(addr, "sam", Some("*"), r#"{"allow_all": false}"#).await;
    assert_eq!(reset.status, StatusCode::OK);
    assert_eq!(
        reset.body["summary"],
        "No APIs are allowed to access this API's data."
    );

    let audit = |user: &'static str| get(addr, user, "/admin/acme/audit");
    let trail = audit("ada").await;
    assert_eq!(trail.status, StatusCode::OK);
    let records = trail.body["records"].as_array().expect("records");
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["actor"], "sam");
    assert_eq!(records[0]["action"], "reset");
    assert_eq!(
        records[1]["before"],
        json!({"allow_all": false, "allow": []})
    );
    assert_eq!(
        records[1]["after"],
        json!({"allow_all": false, "allow": ["billing"]})
    );
    assert_eq!(audit("sam").await.status, StatusCode::OK);
    assert_eq!(audit("alice").await.status, StatusCode::FORBIDDEN);
    assert_eq!(audit("gus").await.status, StatusCode::FORBIDDEN);
}

/// The traffic a replica answered while the test ran: when, from which source, and how.
type Seen = Arc<Mutex<Vec<(Instant, &'static str, StatusCode)>>>;

fn traffic(addr: SocketAddr, stop: Arc<AtomicBool>) -> (Seen, tokio::task::JoinHandle<()>) {
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let task = tokio::spawn(async move {
        while !stop.load(Ordering::SeqCst) {
            for source in ["acme/billing", "acme/crm"] {
                let status = linked_call(addr, source, "acme/reports").await;
                let answered = Instant::now();
                record
                    .lock()
                    .expect("not poisoned")
                    .push((answered, source, status));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    (seen, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_cut_and_restored_under_traffic() {
    let Some(url) = database_url("the_database_cut_and_restored_under_traffic") else {
        return;
    };
    let schema = TestSchema::create(&url).await;
    let store = seeded(&schema).await;
    let proxy = Proxy::start(database_addr(&url)).await;
    let gateway = replica(&proxy.url(&url, &schema), &schema.url()).await;
    assert!(caught_up(&gateway, &store).await);
    let before = gateway.policies.revision();

    let stop = Arc::new(AtomicBool::new(false));
    let (seen, traffic) = traffic(gateway.addr, stop.clone());
    tokio::time::sleep(Duration::from_millis(200)).await;

    proxy.cut();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sam = Actor::staff("sam");
    let reports = "acme/reports".parse().expect("a target");
    let billing = ApiId::new("billing").expect("id");
    let crm = ApiId::new("crm").expect("id");
    let granted = store
        .write(&Write::new(sam.clone(), reports, Change::Grant(billing)))
        .await
        .expect("a change accepted while the replica is cut off");
    let orders = "acme/orders".parse().expect("a target");
    let listed = store
        .write(&Write::new(sam.clone(), orders, Change::SetList(vec![crm])))
        .await
        .expect("a second change while cut off");
    assert!(listed.state.revision() > granted.state.revision());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        gateway.policies.revision(),
        before,
        "the last good snapshot stays in force while the database is unreachable"
    );

    let restored = Instant::now();
    proxy.restore();
    assert!(
        caught_up(&gateway, &store).await,
        "the replica re-reads everything after reconnecting"
    );
    let reread = gateway
        .policies
        .snapshot()
        .expect("a snapshot")
        .to_document();
    let truth = store
        .snapshot()
        .await
        .expect("the database's snapshot")
        .to_document();
    assert_eq!(reread, truth, "no accepted change was lost");
    tokio::time::sleep(Duration::from_millis(200)).await;

    store
        .write(&Write::new(sam, reports, Change::Revoke(billing)))
        .await
        .expect("a change after the outage");
    let resumed = eventually(Duration::from_secs(5), async || {
        linked_call(gateway.addr, "acme/billing", "acme/reports").await == DENIED
    })
    .await;
    assert!(resumed, "refresh on notification resumes after the outage");
    stop.store(true, Ordering::SeqCst);
    traffic.await.expect("the traffic ran");

    let seen = seen.lock().expect("not poisoned");
    let wrongly_allowed: Vec<_> = seen
        .iter()
        .filter(|(at, source, status)| {
            *status != DENIED && (*source == "acme/crm" || *at < restored)
        })
        .collect();
    assert!(wrongly_allowed.is_empty(), "{wrongly_allowed:?}");
    assert!(
        seen.iter()
            .any(|(at, source, status)| *source == "acme/billing"
                && *at > restored
                && *status == ALLOWED),
        "the change made during the outage was enforced once the database was back"
    );
    assert!(
        seen.iter()
            .all(|(_, _, status)| [ALLOWED, DENIED].contains(status))
    );
    println!(
        "{} linked calls under the outage test, none wrongly allowed",
        seen.len()
    );
}

#[tokio::test]
async fn a_replica_that_never_loaded_refuses_every_linked_call() {
    let Some(url) = database_url("a_replica_that_never_loaded_refuses_every_linked_call") else {
        return;
    };
    let schema = TestSchema::create(&url).await;
    let _store = seeded(&schema).await;
    let proxy = Proxy::start(database_addr(&url)).await;
    proxy.cut();
    let gateway = replica(&proxy.url(&url, &schema), &schema.url()).await;

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(gateway.policies.revision(), None);
    for (source, target) in [
        ("acme/billing", "acme/orders"),
        ("acme/crm", "acme/billing"),
        ("acme/orders", "acme/orders"),
    ] {
        assert_eq!(linked_call(gateway.addr, source, target).await, DENIED);
    }

    proxy.restore();
    let loaded = eventually(Duration::from_secs(10), async || {
        linked_call(gateway.addr, "acme/billing", "acme/orders").await == ALLOWED
    })
    .await;
    assert!(loaded, "the replica loads once the database is reachable");
}
