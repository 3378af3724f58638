//! The migrations the library applies, in order, each once.

use tokio_postgres::Client;

/// Every migration: its version, name and SQL.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "policies, grants and the audit trail",
        include_str!("migrations/0001_policies.sql"),
    ),
    (
        2,
        "audit mode per target",
        include_str!("migrations/0002_enforce.sql"),
    ),
    (
        3,
        "channels for long schema names, revisions within JSON's exact integers",
        include_str!("migrations/0003_channel_and_revision_range.sql"),
    ),
    (
        4,
        "target revisions follow every change, direct SQL included",
        include_str!("migrations/0004_target_revisions.sql"),
    ),
    (
        5,
        "one revision per transaction whatever ids a restore carries, channels by table",
        include_str!("migrations/0005_transaction_mark.sql"),
    ),
];

/// Applies the migrations not yet applied, in one transaction, while holding a lock that
/// keeps replicas starting together from racing. Returns how many were applied.
pub(super) async fn migrate(client: &mut Client) -> Result<usize, tokio_postgres::Error> {
    let transaction = client.transaction().await?;
    transaction
        .batch_execute(
            "SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.cross_api_migrations'));
             CREATE TABLE IF NOT EXISTS cross_api_migrations (
                 version integer PRIMARY KEY,
                 name text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now()
             );",
        )
        .await?;

    let applied: Vec<i32> = transaction
        .query("SELECT version FROM cross_api_migrations", &[])
        .await?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()?;

    let mut count = 0;
    for (version, name, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        transaction.batch_execute(sql).await?;
        transaction
            .execute(
                "INSERT INTO cross_api_migrations (version, name) VALUES ($1, $2)",
                &[version, name],
            )
            .await?;
        tracing::info!(version, name, "applied a cross-API policy migration");
        count += 1;
    }

    transaction.commit().await?;
    Ok(count)
}
