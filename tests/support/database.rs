//! The shared test database: a schema per test, and a TCP proxy in front of the database
//! that the test can cut and restore.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The URL of the test database, or `None` after saying plainly that the test is skipped.
pub(crate) fn database_url(test: &str) -> Option<String> {
    match std::env::var("TOWER_CROSS_API_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            super::say_skipped(format_args!(
                "{test}: TOWER_CROSS_API_DATABASE_URL is not set"
            ));
            None
        }
    }
}

/// A schema of its own for one test, dropped when the test ends, so tests run in parallel
/// on the shared database.
pub(crate) struct TestSchema {
    base: String,
    pub(crate) name: String,
}

static NEXT_SCHEMA: AtomicU64 = AtomicU64::new(0);

impl TestSchema {
    pub(crate) async fn create(base: &str) -> Self {
        Self::create_padded(base, 0).await
    }

    /// A schema whose unique name is padded with `x` to at least `len` bytes.
    pub(crate) async fn create_padded(base: &str, len: usize) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.subsec_nanos());
        let name = format!(
            "tca_{}_{}_{nanos}",
            std::process::id(),
            NEXT_SCHEMA.fetch_add(1, Ordering::Relaxed)
        );
        let name = format!("{name:x<len$}");

        let client = connect(base).await;
        client
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .await
            .expect("create the test schema");
        Self {
            base: base.to_owned(),
            name,
        }
    }

    /// The database URL with this schema first on the search path.
    pub(crate) fn url(&self) -> String {
        with_schema(&self.base, &self.name)
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        let (base, name) = (self.base.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime to drop the schema");
            runtime.block_on(async {
                let client = connect(&base).await;
                client
                    .execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                         WHERE application_name = $1 AND pid <> pg_backend_pid()",
                        &[&name],
                    )
                    .await?;
                client
                    .batch_execute(&format!(
                        "SET lock_timeout = '20s'; DROP SCHEMA IF EXISTS {name} CASCADE"
                    ))
                    .await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the test schema {}", self.name);
        }
    }
}

/// `url` with `schema` first on the search path, and as the connections' application name
/// so that the schema's drop can end the connections the test left open (a replica's
/// follower may hold a lock on the schema's tables while the test's runtime is blocked in
/// the drop).
pub(crate) fn with_schema(url: &str, schema: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-csearch_path%3D{schema}&application_name={schema}")
}

/// A plain connection, driven in the background.
pub(crate) async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect to the test database");
    tokio::spawn(connection);
    client
}

/// A TCP proxy in front of the database that the test can cut (every connection dropped, new
/// ones refused) and restore, or silence (every connection held open, nothing forwarded).
pub(crate) struct Proxy {
    pub(crate) addr: SocketAddr,
    open: Arc<AtomicBool>,
    cuts: watch::Sender<u64>,
    silences: watch::Sender<u64>,
}

impl Proxy {
    pub(crate) async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let open = Arc::new(AtomicBool::new(true));
        let (cuts, _) = watch::channel(0);
        let (silences, _) = watch::channel(0);

        let accepting = (open.clone(), cuts.clone(), silences.clone());
        tokio::spawn(async move {
            let (open, cuts, silences) = accepting;
            while let Ok((client, _)) = listener.accept().await {
                if !open.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let mut cut = cuts.subscribe();
                let mut silence = silences.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let mut client = client;
                    // Without it every round trip through the proxy can wait on a delayed
                    // acknowledgement: a write of a dozen statements took 400 ms.
                    let _ = (client.set_nodelay(true), server.set_nodelay(true));
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                        _ = silence.changed() => {
                            let _held = (client, server);
                            std::future::pending::<()>().await;
                        }
                    }
                });
            }
        });
        Self {
            addr,
            open,
            cuts,
            silences,
        }
    }

    /// Stops forwarding on every connection made so far while keeping it open: a database
    /// that stopped answering without closing anything. Later connections are served.
    pub(crate) fn silence(&self) {
        self.silences.send_modify(|generation| *generation += 1);
    }

    /// Drops every connection and refuses new ones until [`restore`](Self::restore).
    pub(crate) fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        self.cuts.send_modify(|generation| *generation += 1);
    }

    /// Accepts connections again.
    pub(crate) fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }

    /// The URL of `schema` in the database at `base`, but through the proxy.
    pub(crate) fn url(&self, base: &str, schema: &TestSchema) -> String {
        let config: tokio_postgres::Config = base.parse().expect("a database URL");
        let user = config.get_user().unwrap_or("postgres");
        let dbname = config.get_dbname().unwrap_or("postgres");
        with_schema(
            &format!("postgres://{user}@{}/{dbname}", self.addr),
            &schema.name,
        )
    }
}

/// The database's address, from its URL.
pub(crate) fn database_addr(url: &str) -> SocketAddr {
    let config: tokio_postgres::Config = url.parse().expect("a database URL");
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        _ => String::from("127.0.0.1"),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let host = if host == "localhost" {
        String::from("127.0.0.1")
    } else {
        host
    };
    format!("{host}:{port}").parse().expect("a socket address")
}
