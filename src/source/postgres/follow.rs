//! One replica following the policies in PostgreSQL.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, mpsc};
use tokio_postgres::{AsyncMessage, Client, Config, NoTls};

use super::store::{limit_statements, load_snapshot};
use super::{PostgresError, config, quoted};
use crate::policy::{PolicyError, PolicyHandle};

/// Keeps one replica's [`PolicyHandle`] in step with the policies in PostgreSQL.
///
/// [`follow`](Self::follow) connects, `LISTEN`s for changes, then reads and publishes a full
/// snapshot, so that no change made between the two is missed. Each notification re-reads
/// the snapshot (notifications that arrive together are read once); a periodic re-read
/// backs them up. A read is published unless it equals the snapshot in force, revision and
/// contents alike. When the connection drops, the outage is logged, the snapshot in force
/// stays, and the source reconnects with exponential backoff and reads everything again. A
/// database that does not answer within the read timeout (a held lock, a peer that stopped
/// sending) is an outage too, logged and retried the same way.
///
/// The replica follows the database's revision: it takes each newer snapshot, and when a full
/// read finds the database *behind* the snapshot in force, or at its revision with other
/// contents (restored from a backup, failed over to a standby that lagged), it logs a warning
/// and follows the database back, since what the database holds is what administrators see
/// and change. The reads of one source and its clones publish in the order they read; two
/// sources made apart must not publish into one handle, or they would undo each other.
///
/// Until a first snapshot is loaded, the handle denies every linked call.
///
/// ```no_run
/// use std::time::Duration;
/// use tower_cross_api::PolicyHandle;
/// use tower_cross_api::source::PostgresSource;
///
/// # async fn run() -> Result<(), tower_cross_api::source::PostgresError> {
/// let policies = PolicyHandle::new();
/// let source = PostgresSource::new("postgres://postgres@127.0.0.1/policies", policies.clone())?
///     .with_backoff(Duration::from_millis(100), Duration::from_secs(5));
///
/// source.load().await?; // fail fast at start, or skip this and let `follow` retry
/// tokio::spawn(source.follow());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct PostgresSource {
    config: Config,
    policies: PolicyHandle,
    backoff_min: Duration,
    backoff_max: Duration,
    resync: Duration,
    read_timeout: Duration,
    /// Held across each read and its publish, so that the reads of this source and of its
    /// clones (`load` beside `follow`) publish in the order they read.
    turn: Arc<Mutex<()>>,
}

/// Why one connection of [`PostgresSource::follow`] ended.
enum Lost {
    Database(PostgresError),
    Closed,
}

impl PostgresSource {
    /// A source for the database at `url`, publishing into `policies`, with a backoff from
    /// 100 milliseconds to 10 seconds, a full re-read every 60 seconds, and 10 seconds for the
    /// database to answer each connection and read.
    ///
    /// # Errors
    ///
    /// [`PostgresError::Config`] when `url` cannot be parsed.
    pub fn new(url: &str, policies: PolicyHandle) -> Result<Self, PostgresError> {
        Ok(Self {
            config: config(url)?,
            policies,
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
            resync: Duration::from_secs(60),
            read_timeout: Duration::from_secs(10),
            turn: Arc::new(Mutex::new(())),
        })
    }

    /// The first and the longest wait between two attempts to reconnect; each failed attempt
    /// doubles the wait, up to `max`.
    pub fn with_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff_min = min.max(Duration::from_millis(1));
        self.backoff_max = max.max(self.backoff_min);
        self
    }

    /// How often the whole snapshot is read again even without a notification.
    pub fn with_resync_interval(mut self, interval: Duration) -> Self {
        self.resync = interval.max(Duration::from_millis(10));
        self
    }

    /// How long the database has to answer a connection, a `LISTEN` or a full read before
    /// the source counts it as an outage. The source's connections also carry it as
    /// `statement_timeout`, so that the server gives up a stalled read at the same time.
    pub fn with_read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout.max(Duration::from_millis(10));
        self
    }

    /// Connects, reads and publishes the snapshot once; returns the revision in force after.
    ///
    /// # Errors
    ///
    /// A [`PostgresError`] when the database cannot be read in time or what it holds is
    /// refused; the snapshot in force stays.
    pub async fn load(&self) -> Result<u64, PostgresError> {
        self.in_time(async {
            let mut client = super::store::connect(&self.config).await?;
            self.bound(&client).await?;
            self.refresh(&mut client).await
        })
        .await
    }

    /// Follows the database for as long as the future runs; see the type's documentation.
    /// Never returns; drop or abort it to stop.
    pub async fn follow(self) {
        let mut delay = self.backoff_min;
        let mut outage: Option<Instant> = None;

        loop {
            let lost = self.session(&mut outage, &mut delay).await;

            let revision = self.policies.revision();
            let since = outage.get_or_insert_with(Instant::now);
            match &lost {
                Lost::Database(error) => tracing::error!(
                    %error,
                    revision,
                    down_ms = since.elapsed().as_millis() as u64,
                    retry_ms = delay.as_millis() as u64,
                    "policy database unreachable or unreadable; the snapshot in force stays"
                ),
                Lost::Closed => tracing::error!(
                    revision,
                    retry_ms = delay.as_millis() as u64,
                    "policy database connection lost; the snapshot in force stays"
                ),
            }

            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(self.backoff_max);
        }
    }

    /// One connection: listen, read everything, then read again on every notification until
    /// the connection ends.
    async fn session(&self, outage: &mut Option<Instant>, delay: &mut Duration) -> Lost {
        let (mut client, notifications) = match self.in_time(self.listen()).await {
            Ok(connected) => connected,
            Err(error) => return Lost::Database(error),
        };
        let mut notifications = notifications;

        if let Err(error) = self.in_time(self.refresh(&mut client)).await {
            return Lost::Database(error);
        }
        if let Some(since) = outage.take() {
            tracing::info!(
                revision = self.policies.revision(),
                down_ms = since.elapsed().as_millis() as u64,
                "policy database reachable again; snapshot re-read"
            );
        }
        *delay = self.backoff_min;

        let mut resync = tokio::time::interval(self.resync);
        resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        resync.tick().await;
        loop {
            tokio::select! {
                notified = notifications.recv() => {
                    if notified.is_none() {
                        return Lost::Closed;
                    }
                    while notifications.try_recv().is_ok() {}
                }
                _ = resync.tick() => {}
            }
            if let Err(error) = self.in_time(self.refresh(&mut client)).await {
                return Lost::Database(error);
            }
        }
    }

    /// Connects and listens on the policies' channel; notifications arrive on the receiver,
    /// which closes when the connection ends.
    async fn listen(&self) -> Result<(Client, mpsc::UnboundedReceiver<()>), PostgresError> {
        let (client, mut connection) = self.config.connect(NoTls).await?;
        let (sender, receiver) = mpsc::unbounded_channel();

        tokio::spawn(async move {
            loop {
                match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                    Some(Ok(AsyncMessage::Notification(_))) => {
                        if sender.send(()).is_err() {
                            break;
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(error)) => {
                        tracing::warn!(%error, "policy database connection failed");
                        break;
                    }
                    None => break,
                }
            }
        });

        self.bound(&client).await?;
        let channel: String = client
            .query_one(
                "SELECT cross_api_channel(n.nspname::text)
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE c.oid = 'cross_api_revision'::regclass",
                &[],
            )
            .await?
            .try_get(0)?;
        client
            .batch_execute(&format!("LISTEN {}", quoted(&channel)))
            .await?;
        Ok((client, receiver))
    }

    /// Has the server cancel any statement of `client` that runs past the read timeout, so
    /// that a read the source gave up does not wait on, holding a connection.
    async fn bound(&self, client: &Client) -> Result<(), PostgresError> {
        limit_statements(client, self.read_timeout).await
    }

    /// `work`, or [`PostgresError::Timeout`] when the database takes longer than the read
    /// timeout, whichever side notices first: the source, which drops `work` and its
    /// connection with it, or the server, which cancels the statement at the same limit.
    async fn in_time<T>(
        &self,
        work: impl Future<Output = Result<T, PostgresError>>,
    ) -> Result<T, PostgresError> {
        let timed_out = Err(PostgresError::Timeout(self.read_timeout));

        match tokio::time::timeout(self.read_timeout, work).await {
            Ok(Err(PostgresError::Database(error))) if cancelled(&error) => timed_out,
            Ok(done) => done,
            Err(_) => timed_out,
        }
    }

    /// Reads the whole snapshot and publishes it unless it is the one in force. A database
    /// behind the snapshot in force, or at its revision with other contents (restored, failed
    /// over), is followed back.
    async fn refresh(&self, client: &mut Client) -> Result<u64, PostgresError> {
        let _turn = self.turn.lock().await;
        let snapshot = load_snapshot(client).await?;
        let offered = snapshot.revision();

        let unchanged = self.policies.snapshot().is_some_and(|in_force| {
            in_force.revision() == offered && in_force.holds_the_same_policies(&snapshot)
        });
        if unchanged {
            return Ok(offered);
        }
        let published = match self.policies.revision() {
            Some(current) if offered <= current => {
                tracing::warn!(
                    current,
                    offered,
                    "the policy database went back (restored from a backup, or failed over): \
                     an older revision, or the same one with other contents; following it"
                );
                self.policies.publish_rewound(snapshot)
            }
            _ => self.policies.publish(snapshot),
        };
        match published {
            Ok(revision) => {
                tracing::info!(revision, "published the policy database's snapshot");
                Ok(revision)
            }
            Err(PolicyError::StaleRevision { current, .. }) => Ok(current),
            Err(error) => Err(PostgresError::Policy(error)),
        }
    }
}

impl fmt::Debug for PostgresSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresSource")
            .field("dbname", &self.config.get_dbname())
            .field("revision", &self.policies.revision())
            .field("backoff_min", &self.backoff_min)
            .field("backoff_max", &self.backoff_max)
            .field("resync", &self.resync)
            .field("read_timeout", &self.read_timeout)
            .finish()
    }
}

/// Whether the server cancelled the statement (its `statement_timeout`, which a follower's
/// connections carry).
fn cancelled(error: &tokio_postgres::Error) -> bool {
    error.code() == Some(&tokio_postgres::error::SqlState::QUERY_CANCELED)
}
