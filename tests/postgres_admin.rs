//! Administering cross-API access in the real PostgreSQL: every actor, every rule, the
//! audit trail, optimistic concurrency, API removal, and the schema's own constraints.

#![cfg(feature = "postgres")]

mod support;

use std::sync::Arc;

use support::{Proxy, TestSchema, connect, database_addr, database_url};
use tower_cross_api::admin::{Actor, AdminError, Change, RemoveApi, Write};
use tower_cross_api::source::{PostgresError, PostgresStore};
use tower_cross_api::{
    ApiId, ApiRef, Enforcement, PolicyDocument, Reason, Rule, TargetPolicy, TenantId,
};

const SEED: &str = r#"{ "tenants": {
    "acme": {
        "apis": ["orders", "billing", "crm", "reports"],
        "cross_api_access": {
            "orders": { "allow": ["billing", "crm"] },
            "billing": { "allow_all": true }
        }
    },
    "globex": { "apis": ["orders", "ledger"] }
} }"#;

const NOBODY: &str = "No APIs are allowed to access this API's data.";

fn api(value: &str) -> ApiRef {
    value.parse().expect("an API reference")
}

fn id(value: &str) -> ApiId {
    ApiId::new(value).expect("an API identifier")
}

fn tenant(value: &str) -> TenantId {
    TenantId::new(value).expect("a tenant identifier")
}

fn ada() -> Actor {
    Actor::administrator("ada", tenant("acme"))
}

async fn seeded(schema: &TestSchema) -> PostgresStore {
    let store = PostgresStore::new(&schema.url()).expect("a store");
    assert_eq!(store.migrate().await.expect("migrate"), 5);
    assert_eq!(store.migrate().await.expect("migrate again"), 0);
    let document = PolicyDocument::from_json(SEED).expect("the seed");
    assert!(store.seed(&document).await.expect("seed"));
    assert!(!store.seed(&document).await.expect("seed again"));
    store
}

fn refusal(result: Result<impl std::fmt::Debug, PostgresError>) -> AdminError {
    match result {
        Err(PostgresError::Admin(error)) => error,
        other => panic!("expected an administrative refusal, got {other:?}"),
    }
}

async fn audit_len(store: &PostgresStore) -> usize {
    let records = store
        .audit(&Actor::staff("sam"), &tenant("acme"), 1000)
        .await
        .expect("audit");
    records.len()
}

#[tokio::test]
async fn every_actor_is_checked_and_a_refusal_changes_nothing() {
    let Some(url) = database_url("every_actor_is_checked_and_a_refusal_changes_nothing") else {
        return;
    };
    let schema = TestSchema::create(&url).await;
    let store = seeded(&schema).await;
    let orders = api("acme/orders");
    let revision = store.revision().await.expect("revision");

    let refused = [
        Actor::member("alice", tenant("acme")),
        Actor::administrator("gus", tenant("globex")),
        Actor::Unknown,
    ];
    for actor in refused {
        let write = Write::new(actor.clone(), orders, Change::AllowAll);
        let error = refusal(store.write(&write).await);
        assert_eq!(
            error,
            AdminError::Forbidden {
                actor: actor.name().to_owned(),
                tenant: tenant("acme"),
            }
        );
        assert_eq!(error.reason(), "forbidden");
    }
    assert_eq!(store.revision().await.expect("revision"), revision);
    assert_eq!(audit_len(&store).await, 0);

    let by_admin = store
        .write(&Write::new(ada(), orders, Change::Reset))
        .await
        .expect("an administrator of the tenant may change it");
    assert_eq!(by_admin.state.revision(), revision + 1);
    let by_staff = store
        .write(&Write::new(Actor::staff("sam"), orders, Change::AllowAll))
        .await
        .expect("staff may change it");
    assert_eq!(by_staff.state.revision(), revision + 2);

    let alice = Actor::member("alice", tenant("acme"));
    assert!(
        store
            .read(&alice, &orders)
            .await
            .expect("a member reads")
            .allow_all()
    );
    let gus = Actor::administrator("gus", tenant("globex"));
    assert!(matches!(
        refusal(store.read(&gus, &orders).await),
        AdminError::Forbidden { .. }
    ));
    assert!(matches!(
        refusal(store.read(&Actor::Unknown, &orders).await),
        AdminError::Forbidden { .. }
    ));
    assert!(matches!(
        refusal(store.audit(&alice, &tenant("acme"), 10).await),
        AdminError::Forbidden { .. }
    ));
    assert_eq!(
        store
            .audit(&gus, &tenant("globex"), 10)
            .await
            .expect("own tenant"),
        Vec::new()
    );
}

#[tokio::test]
async fn every_operation_and_its_audit_record() {
    let Some(url) = database_url("every_operation_and_its_audit_record") else {
        return;
    };
    let schema = TestSchema::create(&url).await;
    let store = seeded(&schema).await;
    let reports = api("acme/reports");

    let read = store.read(&ada(), &reports).await.expect("read");
    assert_eq!(read.policy(), &TargetPolicy::NothingConfigured);
    assert_eq!(read.revision(), 0);
    assert_eq!(read.summary(), NOBODY);

    let grant = Write::new(ada(), reports, Change::Grant(id("billing"))).with_expected(0);
    let granted = store.write(&grant).await.expect("grant");
    assert_eq!(granted.state.allow(), [id("billing")]);
    let record = &granted.record;
    assert_eq!(
        (
            record.actor.as_str(),
            record.tenant,
            record.target,
            record.action.as_str()
        ),
        ("ada", tenant("acme"), id("reports"), "grant")
    );
    assert_eq!(record.before, TargetPolicy::NothingConfigured);
    assert_eq!(record.after, TargetPolicy::List(vec![id("billing")]));
    assert_eq!(record.revision, granted.state.revision());

    let expected = granted.state.revision();
    let listed = store
        .write(&Write::new(ada(), reports, Change::Grant(id("crm"))).with_expected(expected))
        .await
        .expect("a second grant");
    assert_eq!(listed.state.allow().len(), 2);

    let all = store
        .write(&Write::new(ada(), reports, Change::AllowAll))
        .await
        .expect("allow all");
    assert!(all.state.allow_all());
    assert!(all.state.allow().is_empty(), "allow-all clears the list");

    let set = store
        .write(&Write::new(
            ada(),
            reports,
            Change::SetList(vec![id("orders")]),
        ))
        .await
        .expect("set a list");
    assert_eq!(set.state.allow(), [id("orders")]);

    let revoked = store
        .write(&Write::new(ada(), reports, Change::Revoke(id("orders"))))
        .await
        .expect("revoke");
    assert_eq!(revoked.state.policy(), &TargetPolicy::List(Vec::new()));
    assert_eq!(revoked.state.summary(), NOBODY);

    let reset = store
        .write(&Write::new(ada(), reports, Change::Reset))
        .await
        .expect("reset");
    assert_eq!(reset.state.policy(), &TargetPolicy::NothingConfigured);
    assert_eq!(reset.state.summary(), NOBODY);
    assert_eq!(
        store.read(&ada(), &reports).await.expect("read").revision(),
        reset.state.revision(),
        "a reset target keeps its revision"
    );

    let trail = store
        .audit(&ada(), &tenant("acme"), 100)
        .await
        .expect("the audit trail");
    let actions: Vec<&str> = trail.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(
        actions,
        ["reset", "revoke", "set_list", "allow_all", "grant", "grant"]
    );
    assert!(
        trail
            .windows(2)
            .all(|pair| pair[0].revision > pair[1].revision)
    );
    assert_eq!(
        trail[3].before,
        TargetPolicy::List(vec![id("billing"), id("crm")])
    );
    assert_eq!(trail[3].after, TargetPolicy::AllowAll);

    let snapshot = store.snapshot().await.expect("snapshot");
    assert_eq!(snapshot.revision(), reset.state.revision());
    assert_eq!(
        snapshot.decide(&api("acme/billing"), &reports).reason(),
        Reason::NothingConfigured
    );
}

#[tokio::test]
async fn every_rule_is_refused_by_name() {
    let Some(url) = database_url("every_rule_is_refused_by_name") else {
        return;
    };
    let schema = TestSchema::create(&url).await;
    let store = seeded(&schema).await;
    let revision = store.revision().await.expect("revision");
    let (orders, billing) = (api("acme/orders"), api("acme/billing"));
    let write = |target, change| Write::new(ada(), target, change);

    let cases: Vec<(Write, AdminError)> = vec![
        (
            write(orders, Change::SetList(vec![id("orders")])),
            AdminError::Rule {
                rule: Rule::SelfGrant,
            },
        ),
        (
            write(orders, Change::Grant(id("orders"))),
            AdminError::Rule {
                rule: Rule::SelfGrant,
            },
        ),
        (
            write(orders, Change::SetList(vec![id("ledger")])),
            AdminError::Rule {
                rule: Rule::NotInTenant {
                    listed: "ledger".into(),
                },
            },
        ),
        (
            write(orders, Change::SetList(vec![id("crm"), id("crm")])),
            AdminError::Rule {
                rule: Rule::Repeated {
                    value: "crm".into(),
                },
            },
        ),
        (
            write(orders, Change::Grant(id("billing"))),
            AdminError::Rule {
                rule: Rule::Repeated {
                    value: "billing".into(),
                },
            },
        ),
        (
            write(billing, Change::Grant(id("crm"))),
            AdminError::Rule {
                rule: Rule::AllowAllWithList,
            },
        ),
        (
            write(billing, Change::Revoke(id("crm"))),
            AdminError::Rule {
                rule: Rule::AllowAllWithList,
            },
        ),
        (
            write(orders, Change::Revoke(id("reports"))),
            AdminError::NotListed { api: id("reports") },
        ),
        (
            write(api("acme/ghost"), Change::AllowAll),
            AdminError::UnknownTarget { api: id("ghost") },
        ),
        (
            Write::new(Actor::staff("sam"), api("initech/orders"), Change::AllowAll),
            AdminError::UnknownTenant {
                tenant: tenant("initech"),
            },
        ),
        (
            write(orders, Change::Reset).with_expected(1),
            AdminError::Stale {
                expected: 1,
                current: revision,
            },
        ),
    ];
    for (write, expected) in cases {
        assert_eq!(refusal(store.write(&write).await), expected, "{write:?}");
    }

    assert_eq!(
        Change::from_access(true, Some(&["crm".into()])),
        Err(AdminError::Rule {
            rule: Rule::AllowAllWithList
        })
    );
    assert_eq!(
        Change::from_access(false, Some(&["Crm".into()])),
        Err(AdminError::Rule {
            rule: Rule::MalformedIdentifier {
                value: "Crm".into()
            }
        })
    );
    assert_eq!(store.revision().await.expect("revision"), revision);
    assert_eq!(audit_len(&store).await, 0);
}

#[tokio::test]
async fn concurrent_writers_on_one_revision_exactly_one_wins() {
    let Some(url) = database_url("concurrent_writers_on_one_revision_exactly_one_wins") else {
        return;
    };
    let schema = TestSchema::create(&url).await;
    let store = seeded(&schema).await;
    let orders = api("acme/orders");
    let based_on = store.read(&ada(), &orders).await.expect("read").revision();

    let mut writers = Vec::new();
    let barrier = Arc::new(tokio::sync::Barrier::new(8));
    for writer in 0..8 {
        let (url, barrier) = (schema.url(), barrier.clone());
        writers.push(tokio::spawn(async move {
            let store = PostgresStore::new(&url).expect("a store");
            store.revision().await.expect("connected");
            let change = match writer % 3 {
                0 => Change::AllowAll,
                1 => Change::SetList(vec![id("reports")]),
                _ => Change::Reset,
            };
            let write = Write::new(Actor::staff(format!("sam{writer}")), orders, change)
                .with_expected(based_on);
            barrier.wait().await;
            store.write(&write).await
        }));
    }

    let mut won = 0;
    let mut stale = 0;
    for writer in writers {
        match writer.await.expect("the writer ran") {
            Ok(_) => won += 1,
            Err(PostgresError::Admin(AdminError::Stale { expected, current })) => {
                assert_eq!(expected, based_on);
                assert!(current > based_on);
                stale += 1;
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((won, stale), (1, 7));
    assert_eq!(audit_len(&store).await, 1);
}

#[tokio::test]
async fn removing_an_api_removes_it_from_every_list() {
    let Some(url) = database_url("removing_an_api_removes_it_from_every_list") else {
        return;
    };
    let schema = TestSchema::create(&url).await;
    let store = seeded(&schema).await;
    store
        .write(&Write::new(
            ada(),
            api("acme/reports"),
            Change::SetList(vec![id("crm")]),
        ))
        .await
        .expect("list crm");

    let alice = Actor::member("alice", tenant("acme"));
    let refused = store
        .remove_api(&RemoveApi::new(alice, api("acme/crm")))
        .await;
    assert!(matches!(refusal(refused), AdminError::Forbidden { .. }));

    let records = store
        .remove_api(&RemoveApi::new(ada(), api("acme/crm")))
        .await
        .expect("remove crm");
    let targets: Vec<&str> = records.iter().map(|r| r.target.as_str()).collect();
    assert_eq!(targets, ["crm", "orders", "reports"]);

    let snapshot = store.snapshot().await.expect("snapshot");
    assert!(!snapshot.contains(&api("acme/crm")));
    assert_eq!(
        snapshot.policy(&api("acme/orders")),
        Some(TargetPolicy::List(vec![id("billing")]))
    );
    assert_eq!(
        snapshot.policy(&api("acme/reports")),
        Some(TargetPolicy::List(Vec::new()))
    );
    let orders = store.read(&ada(), &api("acme/orders")).await.expect("read");
    assert_eq!(orders.revision(), snapshot.revision());
}

#[tokio::test]
async fn the_schema_refuses_direct_sql_that_breaks_a_rule() {
    let Some(url) = database_url("the_schema_refuses_direct_sql_that_breaks_a_rule") else {
        return;
    };
    let schema = TestSchema::create(&url).await;
    let store = seeded(&schema).await;
    let revision = store.revision().await.expect("revision");
    let sql = connect(&schema.url()).await;
    let read_orders = store.read(&ada(), &api("acme/orders")).await.expect("read");

    let refused = [
        (
            "INSERT INTO cross_api_grants (tenant, target, source) \
             VALUES ('acme', 'orders', 'orders')",
            "cross_api_no_self_grant",
        ),
        (
            "INSERT INTO cross_api_grants (tenant, target, source) \
             VALUES ('acme', 'orders', 'ledger')",
            "cross_api_grant_source",
        ),
        (
            "INSERT INTO cross_api_grants (tenant, target, source) \
             VALUES ('acme', 'billing', 'crm')",
            "cross_api_grant_list",
        ),
        (
            "UPDATE cross_api_policies SET mode = 'allow_all' \
             WHERE tenant = 'acme' AND target = 'orders'",
            "cross_api_grant_list",
        ),
        (
            "INSERT INTO cross_api_apis (tenant, api) VALUES ('acme', 'Payments')",
            "cross_api_id_valid",
        ),
        (
            "INSERT INTO cross_api_policies (tenant, target, mode, revision) \
             VALUES ('acme', 'ghost', 'list', 9)",
            "cross_api_policy_target",
        ),
    ];
    for (statement, constraint) in refused {
        let error = sql.batch_execute(statement).await.expect_err(statement);
        let db = error.as_db_error().expect("a database error");
        assert_eq!(db.constraint(), Some(constraint), "{statement}");
        let detail = db.detail().map(|detail| format!("; DETAIL: {detail}"));
        let said = PostgresError::Database(error).to_string();
        assert!(
            !said.contains('\n'),
            "the server's words on one line: {said}"
        );
        if let Some(detail) = detail {
            assert!(said.ends_with(&detail), "{said}");
        }
    }
    assert_eq!(store.revision().await.expect("revision"), revision);

    sql.batch_execute(
        "INSERT INTO cross_api_grants (tenant, target, source) \
         VALUES ('acme', 'orders', 'reports')",
    )
    .await
    .expect("a valid direct write");
    assert_eq!(store.revision().await.expect("revision"), revision + 1);
    assert_eq!(
        store
            .snapshot()
            .await
            .expect("snapshot")
            .policy(&api("acme/orders")),
        Some(TargetPolicy::List(vec![
            id("billing"),
            id("crm"),
            id("reports")
        ]))
    );

    let orders = store.read(&ada(), &api("acme/orders")).await.expect("read");
    assert_eq!(
        orders.revision(),
        revision + 1,
        "the direct write moved the target's own revision"
    );
    let stale = Write::new(ada(), api("acme/orders"), Change::Revoke(id("crm")))
        .with_expected(read_orders.revision());
    assert_eq!(
        refusal(store.write(&stale).await),
        AdminError::Stale {
            expected: read_orders.revision(),
            current: revision + 1
        },
        "an If-Match read before the direct write no longer matches"
    );

    let statements = [
        "UPDATE cross_api_policies SET enforce = false WHERE tenant = 'acme' AND target = 'orders'",
        "UPDATE cross_api_policies SET enforce = true WHERE tenant = 'acme' AND target = 'orders'",
        "TRUNCATE cross_api_grants",
    ];
    for (moved, statement) in (revision + 2..).zip(statements) {
        sql.batch_execute(statement).await.expect(statement);
        let orders = store.read(&ada(), &api("acme/orders")).await.expect("read");
        assert_eq!(orders.revision(), moved, "{statement}");
    }
}

#[tokio::test]
async fn audit_mode_is_kept_through_the_seed_every_write_and_a_reset() {
    let Some(url) = database_url("audit_mode_is_kept_through_the_seed_every_write_and_a_reset")
    else {
        return;
    };
    let schema = TestSchema::create(&url).await;
    let store = PostgresStore::new(&schema.url()).expect("a store");
    store.migrate().await.expect("migrate");
    let document = PolicyDocument::from_json(
        r#"{ "tenants": { "acme": {
            "apis": ["orders", "billing", "crm", "reports"],
            "cross_api_access": {
                "orders": { "allow": ["billing"], "enforce": false },
                "crm": { "enforce": false },
                "billing": { "allow_all": true }
            }
        } } }"#,
    )
    .expect("the document");
    assert!(store.seed(&document).await.expect("seed"));
    let (audit, enforce) = (Enforcement::Audit, Enforcement::Enforce);
    let expect = async |expected: &[(&str, Enforcement, TargetPolicy)]| {
        let snapshot = store.snapshot().await.expect("snapshot");
        for (target, enforcement, policy) in expected {
            let target = api(target);
            assert_eq!(
                snapshot.enforcement(&target),
                Some(*enforcement),
                "{target}"
            );
            assert_eq!(snapshot.policy(&target).as_ref(), Some(policy), "{target}");
        }
    };
    expect(&[
        (
            "acme/orders",
            audit,
            TargetPolicy::List(vec![id("billing")]),
        ),
        ("acme/crm", audit, TargetPolicy::NothingConfigured),
        ("acme/billing", enforce, TargetPolicy::AllowAll),
        ("acme/reports", enforce, TargetPolicy::NothingConfigured),
    ])
    .await;

    let changes = [
        ("acme/orders", Change::Grant(id("crm"))),
        ("acme/orders", Change::Reset),
        ("acme/crm", Change::AllowAll),
        ("acme/reports", Change::Grant(id("orders"))),
    ];
    for (target, change) in changes {
        store
            .write(&Write::new(ada(), api(target), change))
            .await
            .expect("write");
    }
    expect(&[
        ("acme/orders", audit, TargetPolicy::NothingConfigured),
        ("acme/crm", audit, TargetPolicy::AllowAll),
        (
            "acme/reports",
            enforce,
            TargetPolicy::List(vec![id("orders")]),
        ),
    ])
    .await;

    let written = store.snapshot().await.expect("snapshot").to_document();
    let access = &written.tenants["acme"].cross_api_access;
    assert!(!access["orders"].enforce && !access["crm"].enforce);
    assert!(access["reports"].enforce && access["billing"].enforce);
}

#[tokio::test]
async fn a_write_held_up_by_a_lock_is_refused_after_the_statement_timeout() {
    let Some(url) = database_url("a_write_held_up_by_a_lock_is_refused") else {
        return;
    };
    let schema = TestSchema::create(&url).await;
    seeded(&schema).await;
    let store = PostgresStore::new(&schema.url())
        .expect("a store")
        .with_statement_timeout(std::time::Duration::from_millis(200));
    let revision = store.revision().await.expect("revision");
    let locker = connect(&schema.url()).await;
    locker
        .batch_execute("BEGIN; LOCK TABLE cross_api_grants IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("the lock");

    let write = Write::new(ada(), api("acme/orders"), Change::Grant(id("reports")));
    let refused = tokio::time::timeout(std::time::Duration::from_secs(5), store.write(&write))
        .await
        .expect("refused within the statement timeout, not left waiting")
        .expect_err("held up by the lock");
    let PostgresError::Database(error) = &refused else {
        panic!("expected a database error, got {refused:?}");
    };
    assert_eq!(
        error.code(),
        Some(&tokio_postgres::error::SqlState::QUERY_CANCELED)
    );
    assert_eq!(
        refused.to_string(),
        "PostgreSQL: db error: ERROR: canceling statement due to statement timeout",
        "the server's own words, not only the driver's \"db error\""
    );

    locker.batch_execute("ROLLBACK").await.expect("the unlock");
    assert_eq!(store.revision().await.expect("revision"), revision);
    let written = store.write(&write).await.expect("the same write, unlocked");
    assert_eq!(written.state.revision(), revision + 1);
}

/// A seeded schema for `test` and a store of it behind a proxy the test can silence, with
/// `timeout` for each statement; the store's first revision. `None` (said) without a database.
async fn seeded_behind_a_proxy(
    test: &str,
    timeout: std::time::Duration,
) -> Option<(TestSchema, Proxy, PostgresStore, u64)> {
    let url = database_url(test)?;
    let schema = TestSchema::create(&url).await;
    seeded(&schema).await;
    let proxy = Proxy::start(database_addr(&url)).await;
    let store = PostgresStore::new(&proxy.url(&url, &schema))
        .expect("a store")
        .with_statement_timeout(timeout);
    let revision = store.revision().await.expect("revision");
    Some((schema, proxy, store, revision))
}

#[tokio::test]
async fn a_database_that_stops_answering_is_given_up_and_the_next_act_connects_afresh() {
    let timeout = std::time::Duration::from_millis(200);
    let Some((_schema, proxy, store, revision)) =
        seeded_behind_a_proxy("a_database_that_stops_answering_is_given_up", timeout).await
    else {
        return;
    };

    proxy.silence();
    let write = Write::new(ada(), api("acme/orders"), Change::Grant(id("reports")));
    let given_up = tokio::time::timeout(std::time::Duration::from_secs(5), store.write(&write))
        .await
        .expect("given up by the store, not left waiting")
        .expect_err("no answer");
    assert!(
        matches!(given_up, PostgresError::Timeout(limit) if limit == timeout * 2),
        "{given_up:?}"
    );

    let read = tokio::time::timeout(std::time::Duration::from_secs(5), store.revision())
        .await
        .expect("the next act is not stuck behind the silent connection");
    assert_eq!(read.expect("a fresh connection answers"), revision);
    let written = store.write(&write).await.expect("the same write, answered");
    assert_eq!(written.state.revision(), revision + 1);
}

#[tokio::test]
async fn a_write_cut_off_mid_transaction_does_not_keep_the_revision_locked() {
    let timeout = std::time::Duration::from_millis(300);
    let Some((schema, proxy, store, revision)) =
        seeded_behind_a_proxy("a_write_cut_off_mid_transaction", timeout).await
    else {
        return;
    };
    let store = Arc::new(store);

    // The write takes the revision row, then waits on the audit table; the network goes
    // while it waits, and the server finishes the statement for a client that is gone.
    let locker = connect(&schema.url()).await;
    locker
        .batch_execute("BEGIN; LOCK TABLE cross_api_audit IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("the lock");
    let writing = tokio::spawn({
        let store = store.clone();
        async move {
            let grant = Write::new(ada(), api("acme/orders"), Change::Grant(id("reports")));
            store.write(&grant).await
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    proxy.silence();
    locker.batch_execute("ROLLBACK").await.expect("the unlock");
    let cut_off = writing.await.expect("the write's task");
    assert!(
        matches!(cut_off, Err(PostgresError::Timeout(_))),
        "{cut_off:?}"
    );

    let revoke = Write::new(ada(), api("acme/orders"), Change::Revoke(id("billing")));
    let revoked = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            if let Ok(written) = store.write(&revoke).await {
                return written;
            }
        }
    })
    .await
    .expect("a later revocation goes through once the server ends the abandoned session");
    assert_eq!(
        revoked.state.revision(),
        revision + 1,
        "the cut-off write changed nothing"
    );
}
