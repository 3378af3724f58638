//! A replica following PostgreSQL when the database does what operators' databases do: go
//! back to an older revision (a restore from a backup, a failover to a standby that lagged),
//! stop answering while holding a lock, live in a schema with a long name or behind another
//! schema on the search path, and reach the largest revision a snapshot can carry.

#![cfg(feature = "postgres")]

mod capture;
mod support;

use std::time::Duration;

use capture::Captured;
use support::{TestSchema, connect, database_url, eventually, with_schema};
use tower_cross_api::admin::{Actor, AdminError, Change, Write};
use tower_cross_api::source::{PostgresError, PostgresSource, PostgresStore, Written};
use tower_cross_api::{ApiId, ApiRef, PolicyDocument, PolicyError, PolicyHandle, Reason, TenantId};

const SEED: &str = r#"{ "tenants": { "acme": {
    "apis": ["orders", "billing", "crm"],
    "cross_api_access": { "orders": { "allow": ["billing"] } }
} } }"#;

/// The largest revision a snapshot carries: 2^53 - 1.
const MAX_REVISION: u64 = 9_007_199_254_740_991;

fn api(value: &str) -> ApiRef {
    value.parse().expect("an API reference")
}

fn id(value: &str) -> ApiId {
    ApiId::new(value).expect("an API identifier")
}

fn ada() -> Actor {
    Actor::administrator("ada", TenantId::new("acme").expect("a tenant"))
}

/// `change` to `target`'s policy by acme's administrator, through the store.
async fn write(
    store: &PostgresStore,
    target: &str,
    change: Change,
) -> Result<Written, PostgresError> {
    store.write(&Write::new(ada(), api(target), change)).await
}

async fn seeded(url: &str) -> PostgresStore {
    let store = PostgresStore::new(url).expect("a store");
    store.migrate().await.expect("migrate");
    let seed = PolicyDocument::from_json(SEED).expect("the seed");
    assert!(store.seed(&seed).await.expect("seed"));
    store
}

/// A seeded schema of its own for `test`, or `None` (said) without a database.
async fn seeded_schema(test: &str) -> Option<(TestSchema, PostgresStore)> {
    let url = database_url(test)?;
    let schema = TestSchema::create(&url).await;
    let store = seeded(&schema.url()).await;
    Some((schema, store))
}

/// A replica's policies following `url`, with the default 60-second re-read, so that only a
/// notification makes it see a change within a test's few seconds.
fn follower(url: &str) -> (PolicyHandle, tokio::task::JoinHandle<()>) {
    let policies = PolicyHandle::new();
    let source = PostgresSource::new(url, policies.clone())
        .expect("a source")
        .with_backoff(Duration::from_millis(20), Duration::from_millis(100))
        .with_read_timeout(Duration::from_millis(300));
    (policies, tokio::spawn(source.follow()))
}

async fn at_revision(policies: &PolicyHandle, revision: u64) -> bool {
    eventually(Duration::from_secs(5), async || {
        policies.revision() == Some(revision)
    })
    .await
}

fn billing_to_orders(policies: &PolicyHandle) -> Reason {
    policies
        .decide(&api("acme/billing"), &api("acme/orders"))
        .reason()
}

/// Checks that the replica took revision 3, the seed's revocation of billing's listing,
/// within the seconds a test waits: by notification, since the re-read is a minute away.
async fn notified_of_the_revocation(policies: &PolicyHandle) {
    assert!(
        at_revision(policies, 3).await,
        "the notification reached the replica, at {:?}",
        policies.revision()
    );
    assert_eq!(billing_to_orders(policies), Reason::NotListed);
}

#[tokio::test]
async fn a_database_that_went_back_is_followed_back_and_its_next_change_is_enforced() {
    let Some((schema, store)) = seeded_schema("a_database_that_went_back_is_followed_back").await
    else {
        return;
    };
    for change in [Change::Grant(id("orders")), Change::Reset] {
        write(&store, "acme/crm", change).await.expect("write");
    }
    let (policies, follow) = follower(&schema.url());
    assert!(at_revision(&policies, 4).await);
    assert_eq!(billing_to_orders(&policies), Reason::Listed);

    // What a restore of the backup taken at revision 2, minus the grant, leaves behind.
    connect(&schema.url())
        .await
        .batch_execute(
            "BEGIN;
             DELETE FROM cross_api_grants WHERE target = 'orders' AND source = 'billing';
             UPDATE cross_api_revision SET value = 2;
             COMMIT;",
        )
        .await
        .expect("the restore");
    assert!(
        at_revision(&policies, 2).await,
        "the replica follows the database back, at {:?}",
        policies.revision()
    );
    assert_eq!(billing_to_orders(&policies), Reason::NotListed);

    let written = write(&store, "acme/orders", Change::Grant(id("billing")))
        .await
        .expect("a write after the restore");
    assert_eq!(written.state.revision(), 3);
    assert!(
        at_revision(&policies, 3).await,
        "the write's notification is read although the replica once held a later revision"
    );
    assert_eq!(billing_to_orders(&policies), Reason::Listed);
    follow.abort();
}

#[tokio::test(flavor = "current_thread")]
async fn a_database_that_stops_answering_is_logged_as_an_outage_until_it_answers() {
    let (captured, _guard) = Captured::start();
    let Some((schema, _)) =
        seeded_schema("a_database_that_stops_answering_is_logged_as_an_outage").await
    else {
        return;
    };
    let (policies, follow) = follower(&schema.url());
    assert!(at_revision(&policies, 2).await);

    let locker = connect(&schema.url()).await;
    locker
        .batch_execute("BEGIN; LOCK TABLE cross_api_tenants IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("the lock");
    connect(&schema.url())
        .await
        .batch_execute("DELETE FROM cross_api_grants WHERE target = 'orders'")
        .await
        .expect("a revoke while the lock is held");
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let outages: Vec<String> = captured
        .gate_events()
        .into_iter()
        .filter(|line| line.contains("ERROR") && line.contains("did not answer within 300ms"))
        .collect();
    assert!(
        outages
            .iter()
            .any(|line| line.contains("the snapshot in force stays")),
        "the stalled read is logged as an outage: {:#?}",
        captured.gate_events()
    );
    assert_eq!(policies.revision(), Some(2), "the last good snapshot stays");
    assert_eq!(billing_to_orders(&policies), Reason::Listed);

    locker.batch_execute("ROLLBACK").await.expect("the unlock");
    assert!(at_revision(&policies, 3).await);
    assert_eq!(billing_to_orders(&policies), Reason::NotListed);
    assert!(
        captured
            .gate_events()
            .iter()
            .any(|line| line.contains("policy database reachable again")),
        "the recovery is logged"
    );
    follow.abort();
}

#[tokio::test]
async fn a_long_schema_name_behind_another_schema_on_the_search_path_still_notifies() {
    let Some(url) = database_url("a_long_schema_name_behind_another_schema") else {
        return;
    };
    let schema = TestSchema::create_padded(&url, 63).await;
    assert_eq!(schema.name.len(), 63);
    let store = seeded(&schema.url()).await;
    let earlier = TestSchema::create(&url).await;
    let path = format!("{},{}", earlier.name, schema.name);
    let (policies, follow) = follower(&with_schema(&url, &path));
    assert!(at_revision(&policies, 2).await);

    write(&store, "acme/orders", Change::Revoke(id("billing")))
        .await
        .expect("a write in the long-named schema");
    notified_of_the_revocation(&policies).await;
    follow.abort();
}

#[tokio::test]
async fn the_database_refuses_a_revision_no_replica_could_load() {
    let Some((schema, store)) =
        seeded_schema("the_database_refuses_a_revision_no_replica_could_load").await
    else {
        return;
    };
    connect(&schema.url())
        .await
        .batch_execute(&format!(
            "UPDATE cross_api_revision SET value = {}",
            MAX_REVISION - 1
        ))
        .await
        .expect("a revision near the end");
    let written = write(&store, "acme/orders", Change::Revoke(id("billing")))
        .await
        .expect("the last revision");
    assert_eq!(written.state.revision(), MAX_REVISION);
    let refused = write(&store, "acme/orders", Change::Grant(id("crm")))
        .await
        .expect_err("past the last revision");
    assert!(
        matches!(
            refused,
            PostgresError::Admin(AdminError::Policy(PolicyError::RevisionOutOfRange { offered }))
                if offered == MAX_REVISION + 1
        ),
        "the library refuses it first: {refused:?}"
    );
    let direct = connect(&schema.url())
        .await
        .batch_execute(
            "INSERT INTO cross_api_grants (tenant, target, source) \
             VALUES ('acme', 'orders', 'crm')",
        )
        .await
        .expect_err("the database refuses it too");
    assert_eq!(
        direct.as_db_error().and_then(|db| db.constraint()),
        Some("cross_api_revision_in_range")
    );
    assert_eq!(store.revision().await.expect("revision"), MAX_REVISION);

    let policies = PolicyHandle::new();
    let source = PostgresSource::new(&schema.url(), policies.clone()).expect("a source");
    assert_eq!(
        source.load().await.expect("a loadable snapshot"),
        MAX_REVISION
    );
    assert_eq!(billing_to_orders(&policies), Reason::NotListed);
}

#[tokio::test]
async fn a_restore_without_triggers_is_followed_once_a_statement_fires_the_trigger() {
    let Some((schema, store)) = seeded_schema("a_restore_without_triggers_is_followed").await
    else {
        return;
    };
    write(&store, "acme/orders", Change::Grant(id("crm")))
        .await
        .expect("write");
    let (policies, follow) = follower(&schema.url());
    assert!(at_revision(&policies, 3).await);
    assert_eq!(billing_to_orders(&policies), Reason::Listed);

    // What `pg_restore --disable-triggers` of the backup at revision 2, minus the grant, does.
    let sql = connect(&schema.url()).await;
    sql.batch_execute(
        "BEGIN;
         SET LOCAL session_replication_role = replica;
         DELETE FROM cross_api_grants WHERE target = 'orders' AND source = 'billing';
         UPDATE cross_api_revision SET value = 2;
         COMMIT;",
    )
    .await
    .expect("the restore");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        (policies.revision(), billing_to_orders(&policies)),
        (Some(3), Reason::Listed),
        "without a trigger no replica hears of it (the documented limit)"
    );

    sql.batch_execute("UPDATE cross_api_tenants SET tenant = tenant WHERE false")
        .await
        .expect("the README's remedy");
    assert!(
        eventually(Duration::from_secs(5), async || {
            billing_to_orders(&policies) == Reason::NotListed
        })
        .await,
        "the replica takes revision 3 again, with the database's contents"
    );
    assert_eq!(policies.revision(), Some(3));
    follow.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_beside_follow_never_takes_the_replica_back() {
    let Some((schema, store)) =
        seeded_schema("a_load_beside_follow_never_takes_the_replica_back").await
    else {
        return;
    };
    let policies = PolicyHandle::new();
    let source = PostgresSource::new(&schema.url(), policies.clone()).expect("a source");
    let follow = tokio::spawn(source.clone().follow());
    let loads = tokio::spawn(async move {
        loop {
            let _ = source.load().await;
        }
    });
    let watched = policies.clone();
    let watch = tokio::spawn(async move {
        let (mut last, mut backwards) = (0, 0);
        loop {
            let now = watched.revision().unwrap_or_default();
            backwards += u32::from(now < last);
            last = now;
            if now >= 2 + 80 {
                return backwards;
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    });

    for round in 0..80 {
        let change = if round % 2 == 0 {
            Change::Revoke(id("billing"))
        } else {
            Change::Grant(id("billing"))
        };
        write(&store, "acme/orders", change).await.expect("write");
    }
    let backwards = tokio::time::timeout(Duration::from_secs(10), watch)
        .await
        .expect("the replica reached the last revision")
        .expect("the watcher");
    assert_eq!(backwards, 0, "the revision in force went back");
    assert_eq!(billing_to_orders(&policies), Reason::Listed);
    loads.abort();
    follow.abort();
}

#[tokio::test]
async fn a_read_given_up_is_given_up_by_the_server_too() {
    let Some((schema, _)) = seeded_schema("a_read_given_up_is_given_up_by_the_server_too").await
    else {
        return;
    };
    let policies = PolicyHandle::new();
    let source = PostgresSource::new(&schema.url(), policies.clone())
        .expect("a source")
        .with_backoff(Duration::from_millis(10), Duration::from_millis(20))
        .with_resync_interval(Duration::from_millis(50))
        .with_read_timeout(Duration::from_millis(100));
    let follow = tokio::spawn(source.follow());
    assert!(at_revision(&policies, 2).await);

    let locker = connect(&schema.url()).await;
    locker
        .batch_execute("BEGIN; LOCK TABLE cross_api_tenants IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("the lock");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let waiting: i64 = locker
        .query_one(
            "SELECT count(*) FROM pg_stat_activity
             WHERE application_name = $1 AND wait_event_type = 'Lock'",
            &[&schema.name],
        )
        .await
        .expect("the waiting backends")
        .get(0);
    locker.batch_execute("ROLLBACK").await.expect("the unlock");

    assert!(
        waiting <= 2,
        "{waiting} backends still wait on the lock for reads the replica gave up"
    );
    follow.abort();
}

#[tokio::test]
async fn a_deployment_made_later_ahead_on_the_search_path_takes_no_trigger() {
    let Some(url) = database_url("a_deployment_made_later_ahead_on_the_search_path") else {
        return;
    };
    let schema = TestSchema::create(&url).await;
    let later = TestSchema::create(&url).await;
    let admin = connect(&url).await;
    admin
        .batch_execute(&format!("DROP SCHEMA {}", later.name))
        .await
        .expect("the later schema, not made yet");
    // Migrated under a search path whose first schema does not exist yet, as `"$user",
    // public` is before a schema named after the user is made; then used with its own.
    seeded(&with_schema(
        &url,
        &format!("{},{}", later.name, schema.name),
    ))
    .await;
    let store = PostgresStore::new(&schema.url()).expect("a store");
    let (policies, follow) = follower(&schema.url());
    assert!(at_revision(&policies, 2).await);

    admin
        .batch_execute(&format!("CREATE SCHEMA {}", later.name))
        .await
        .expect("the later schema");
    seeded(&later.url()).await;
    write(&store, "acme/orders", Change::Revoke(id("billing")))
        .await
        .expect("the revocation, bumped in its own schema");
    notified_of_the_revocation(&policies).await;

    // A session's temporary table of the same name comes first on any search path that
    // does not name pg_temp.
    connect(&schema.url())
        .await
        .batch_execute(
            "CREATE TEMP TABLE cross_api_revision (value bigint);
             INSERT INTO cross_api_grants (tenant, target, source) \
             VALUES ('acme', 'orders', 'crm')",
        )
        .await
        .expect("a direct grant beside a temporary table");
    assert!(
        at_revision(&policies, 4).await,
        "at {:?}",
        policies.revision()
    );
    let crm_to_orders = policies.decide(&api("acme/crm"), &api("acme/orders"));
    assert_eq!(crm_to_orders.reason(), Reason::Listed);
    follow.abort();
}

#[tokio::test]
async fn one_transaction_over_two_deployments_moves_and_notifies_each() {
    let Some((first, _)) = seeded_schema("one_transaction_over_two_deployments (first)").await
    else {
        return;
    };
    let Some((second, second_store)) =
        seeded_schema("one_transaction_over_two_deployments (second)").await
    else {
        return;
    };
    let (first_policies, first_follow) = follower(&first.url());
    let (second_policies, second_follow) = follower(&second.url());
    assert!(at_revision(&first_policies, 2).await);
    assert!(at_revision(&second_policies, 2).await);
    let etag = second_store
        .read(&ada(), &api("acme/orders"))
        .await
        .expect("a read")
        .revision();

    connect(&first.url())
        .await
        .batch_execute(&format!(
            "BEGIN;
             DELETE FROM {first}.cross_api_grants WHERE target = 'orders';
             DELETE FROM {second}.cross_api_grants WHERE target = 'orders';
             COMMIT;",
            first = first.name,
            second = second.name,
        ))
        .await
        .expect("one transaction over both");

    notified_of_the_revocation(&first_policies).await;
    notified_of_the_revocation(&second_policies).await;
    let stale = second_store
        .write(
            &Write::new(ada(), api("acme/orders"), Change::Grant(id("billing")))
                .with_expected(etag),
        )
        .await
        .expect_err("the second deployment's ETag moved");
    assert!(
        matches!(stale, PostgresError::Admin(AdminError::Stale { .. })),
        "{stale:?}"
    );
    first_follow.abort();
    second_follow.abort();
}

#[tokio::test]
async fn a_transaction_whose_id_a_restore_carried_still_moves_the_revision() {
    let Some((schema, _store)) =
        seeded_schema("a_transaction_whose_id_a_restore_carried_still_moves_the_revision").await
    else {
        return;
    };
    let (policies, follow) = follower(&schema.url());
    assert!(at_revision(&policies, 2).await);

    let mut sql = connect(&schema.url()).await;
    let transaction = sql.transaction().await.expect("a transaction");
    let xact: i64 = transaction
        .query_one("SELECT txid_current()", &[])
        .await
        .expect("the transaction's id")
        .get(0);
    // A restore into another cluster carries whatever the revision row held; here, the id
    // this cluster gave the open transaction, wherever the schema keeps one.
    connect(&schema.url())
        .await
        .batch_execute(&format!(
            "DO $$ BEGIN
                 IF EXISTS (SELECT FROM information_schema.columns
                            WHERE table_schema = current_schema()
                              AND table_name = 'cross_api_revision'
                              AND column_name = 'xact') THEN
                     EXECUTE 'UPDATE cross_api_revision SET xact = {xact}';
                 END IF;
             END $$"
        ))
        .await
        .expect("the restored row");
    transaction
        .batch_execute(
            "DELETE FROM cross_api_grants WHERE target = 'orders' AND source = 'billing'",
        )
        .await
        .expect("the revocation");
    transaction.commit().await.expect("commit");

    notified_of_the_revocation(&policies).await;
    let target_revision: i64 = sql
        .query_one(
            "SELECT revision FROM cross_api_policies WHERE target = 'orders'",
            &[],
        )
        .await
        .expect("the target's revision")
        .get(0);
    assert_eq!(target_revision, 3, "the target's ETag moved with it");
    follow.abort();
}
