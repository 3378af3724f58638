//! The test database: its URL, and a schema of its own for one test.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The URL of the test database, or `None` after saying plainly that `test` is skipped.
pub(crate) fn url(test: &str) -> Option<String> {
    match std::env::var("TOWER_CROSS_API_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            println!("skipped {test}: TOWER_CROSS_API_DATABASE_URL is not set");
            None
        }
    }
}

/// A schema of its own for one test, dropped when the test ends.
pub(crate) struct TestSchema {
    base: String,
    name: String,
}

static NEXT: AtomicU64 = AtomicU64::new(0);

impl TestSchema {
    /// Creates a fresh schema in the database at `base`.
    pub(crate) async fn create(base: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.subsec_nanos());
        let name = format!(
            "portal_{}_{}_{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );

        execute(base, &format!("CREATE SCHEMA {name}")).await;
        Self {
            base: base.to_owned(),
            name,
        }
    }

    /// The database URL with this schema first on the search path.
    pub(crate) fn url(&self) -> String {
        let separator = if self.base.contains('?') { '&' } else { '?' };
        format!(
            "{}{separator}options=-csearch_path%3D{}",
            self.base, self.name
        )
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        let (base, name) = (self.base.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime to drop the schema")
                .block_on(execute(
                    &base,
                    &format!("DROP SCHEMA IF EXISTS {name} CASCADE"),
                ));
        })
        .join();
        if dropped.is_err() {
            eprintln!("could not drop the test schema {}", self.name);
        }
    }
}

async fn execute(url: &str, statement: &str) {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect to the test database");
    tokio::spawn(connection);
    client
        .batch_execute(statement)
        .await
        .expect("run a statement on the test database");
}
