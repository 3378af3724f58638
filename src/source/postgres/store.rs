//! Administrative acts carried out in PostgreSQL, one transaction each.

use std::fmt;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio_postgres::{Client, Config, IsolationLevel, NoTls, Transaction};

use super::{PostgresError, config, rows, schema};
use crate::admin::{Actor, AdminError, AuditRecord, PolicyState, RemoveApi, Write};
use crate::id::{ApiRef, TenantId};
use crate::policy::{PolicyDocument, Snapshot};

/// The policies in PostgreSQL, as administrators change them.
///
/// Every write runs in one transaction: it locks the global revision (so writers take turns),
/// reads the tenant's current policies, checks the [`admin`](crate::admin) rules on them
/// (the actor, the target, the revision the write was based on, and the contract's rules by
/// validating the tenant as a snapshot), writes the new policy and its audit record, and
/// bumps the revision, which notifies every replica when the transaction commits. A refused
/// write changes nothing.
///
/// Each target's policy carries its own revision: the global revision of its last change.
/// A write based on it ([`Write::with_expected`]) is refused as stale when the policy changed
/// since, and not when another target did.
///
/// A target in audit mode (`"enforce": false` in the seeded document) keeps the mode through
/// every write, a reset included; the administrative changes never switch it. Operators switch
/// it in SQL, which every replica follows like any other change:
/// `UPDATE cross_api_policies SET enforce = false WHERE tenant = 'acme' AND target = 'orders'`
/// (with an `INSERT ... mode 'nothing'` row for a target that never had a policy).
///
/// The store keeps one connection, made on first use and again after it drops; its acts take
/// turns on it. Every statement has 10 seconds
/// ([`with_statement_timeout`](Self::with_statement_timeout)): a write that waits longer on a
/// lock someone holds is cancelled by the database, with nothing changed. A whole act,
/// waiting its turn and connecting included, is given up after twice that, with
/// [`PostgresError::Timeout`], and its connection dropped: a database that stopped answering
/// never keeps a caller waiting.
///
/// ```no_run
/// use tower_cross_api::{ApiRef, PolicyDocument, TenantId};
/// use tower_cross_api::admin::{Actor, Change, Write};
/// use tower_cross_api::source::PostgresStore;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let store = PostgresStore::new("postgres://postgres@127.0.0.1/policies")?;
/// store.migrate().await?;
/// store.seed(&PolicyDocument::from_json(r#"{ "tenants": { "acme": {
///     "apis": ["orders", "billing"]
/// } } }"#)?).await?;
///
/// let ada = Actor::administrator("ada", TenantId::new("acme")?);
/// let orders: ApiRef = "acme/orders".parse()?;
/// let state = store.read(&ada, &orders).await?;
///
/// let written = store
///     .write(&Write::new(ada, orders, Change::Grant("billing".parse()?))
///         .with_expected(state.revision()))
///     .await?;
/// println!("{} at revision {}", written.state.summary(), written.state.revision());
/// # Ok(())
/// # }
/// ```
pub struct PostgresStore {
    config: Config,
    client: Mutex<Option<Client>>,
    statement_timeout: Duration,
}

/// An accepted write: the target's new state and the audit record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    /// The target's policy after the write, at the write's revision.
    pub state: PolicyState,
    /// The audit record of the write.
    pub record: AuditRecord,
}

impl PostgresStore {
    /// A store for the database at `url` (a `postgres://` URL or a key-value connection
    /// string). Connects on first use.
    ///
    /// # Errors
    ///
    /// [`PostgresError::Config`] when `url` cannot be parsed.
    pub fn new(url: &str) -> Result<Self, PostgresError> {
        Ok(Self {
            config: config(url)?,
            client: Mutex::new(None),
            statement_timeout: Duration::from_secs(10),
        })
    }

    /// How long each statement may run, lock waits included, before the database cancels
    /// it (`statement_timeout`), and how long a transaction may sit idle before the database
    /// ends the session (`idle_in_transaction_session_timeout`); taken by the connections
    /// made from then on (at least 1 ms; the server is given at most its largest, about 24
    /// days). A whole act is given up after twice this ([`PostgresError::Timeout`]).
    pub fn with_statement_timeout(mut self, timeout: Duration) -> Self {
        self.statement_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Applies the migrations the schema lacks; returns how many. Safe to call from every
    /// replica at once.
    ///
    /// # Errors
    ///
    /// [`PostgresError::Database`] when the database cannot be reached or a migration fails.
    pub async fn migrate(&self) -> Result<usize, PostgresError> {
        self.within(async |client| Ok(schema::migrate(client).await?))
            .await
    }

    /// Writes `document` into an empty database; leaves a database that holds any tenant
    /// as it is. Returns whether it wrote.
    ///
    /// # Errors
    ///
    /// [`PostgresError::Policy`] when the document does not validate, or a database error.
    pub async fn seed(&self, document: &PolicyDocument) -> Result<bool, PostgresError> {
        self.within(async |client| {
            let transaction = client.transaction().await?;
            let locked = rows::read_revision(&transaction, true).await?;

            let any = transaction
                .query_opt("SELECT 1 FROM cross_api_tenants LIMIT 1", &[])
                .await?;
            if any.is_some() {
                return Ok(false);
            }
            let mut checked = document.clone();
            checked.revision = Some(locked + 1);
            Snapshot::from_document(&checked).map_err(PostgresError::Policy)?;

            rows::insert_document(&transaction, document, locked + 1).await?;
            transaction.commit().await?;
            tracing::info!(
                revision = locked + 1,
                tenants = document.tenants.len(),
                "seeded the policy database"
            );
            Ok(true)
        })
        .await
    }

    /// The global revision.
    ///
    /// # Errors
    ///
    /// A database error.
    pub async fn revision(&self) -> Result<u64, PostgresError> {
        self.within(async |client| rows::read_revision(&*client, false).await)
            .await
    }

    /// Every tenant's policies as one snapshot at the global revision.
    ///
    /// # Errors
    ///
    /// A database error, or [`PostgresError::Policy`] if the rows do not validate.
    pub async fn snapshot(&self) -> Result<Snapshot, PostgresError> {
        self.within(load_snapshot).await
    }

    /// Reads `target`'s policy for `actor`, at the revision of its last change.
    ///
    /// # Errors
    ///
    /// [`AdminError::Forbidden`], [`AdminError::UnknownTenant`] or
    /// [`AdminError::UnknownTarget`] as [`PostgresError::Admin`], or a database error.
    pub async fn read(&self, actor: &Actor, target: &ApiRef) -> Result<PolicyState, PostgresError> {
        if !actor.may_read(target.tenant()) {
            return Err(forbidden(actor, target.tenant()));
        }

        self.within(async |client| {
            let transaction = reading(client).await?;
            let snapshot = tenant_snapshot(&transaction, target.tenant()).await?;
            let state = PolicyState::read(&snapshot, actor, target)?;
            let revision = rows::target_revision(&transaction, target).await?;
            transaction.commit().await?;

            Ok(PolicyState::new(*target, state.policy().clone(), revision)
                .with_enforcement(state.enforcement()))
        })
        .await
    }

    /// Carries out `write` in one transaction; see the type's documentation.
    ///
    /// # Errors
    ///
    /// The [`AdminError`] that refused it as [`PostgresError::Admin`] (nothing changed then),
    /// or a database error (nothing changed either).
    pub async fn write(&self, write: &Write) -> Result<Written, PostgresError> {
        let target = write.target();

        self.within(async |client| {
            let transaction = client.transaction().await?;
            let locked = rows::read_revision(&transaction, true).await?;
            let next = locked + 1;

            let snapshot = tenant_snapshot(&transaction, target.tenant()).await?;
            let current = rows::target_revision(&transaction, target).await?;
            let applied = write.apply(&snapshot, current, next)?;
            let Some(record) = applied.records.into_iter().next() else {
                return Err(PostgresError::Policy(crate::PolicyError::MissingRevision));
            };

            rows::store_policy(&transaction, target, &record.after, next).await?;
            rows::insert_audit(&transaction, std::slice::from_ref(&record)).await?;
            check_revision(&transaction, next).await?;
            transaction.commit().await?;

            let enforcement = snapshot
                .enforcement(target)
                .unwrap_or(crate::Enforcement::Enforce);
            Ok(Written {
                state: PolicyState::new(*target, record.after.clone(), next)
                    .with_enforcement(enforcement),
                record,
            })
        })
        .await
    }

    /// Removes an API from its tenant in one transaction: its policy, its grants and every
    /// listing of it go, with an audit record for each policy that changed.
    ///
    /// # Errors
    ///
    /// As for [`write`](Self::write).
    pub async fn remove_api(&self, remove: &RemoveApi) -> Result<Vec<AuditRecord>, PostgresError> {
        let api = remove.api();

        self.within(async |client| {
            let transaction = client.transaction().await?;
            let next = rows::read_revision(&transaction, true).await? + 1;

            let snapshot = tenant_snapshot(&transaction, api.tenant()).await?;
            let applied = remove.apply(&snapshot, next)?;
            let changed: Vec<&str> = applied.records.iter().map(|r| r.target.as_str()).collect();

            transaction
                .execute(
                    "UPDATE cross_api_policies SET revision = $3
                     WHERE tenant = $1::text AND target = ANY($2::text[])",
                    &[
                        &api.tenant().as_str(),
                        &changed,
                        &rows::to_sql_revision(next),
                    ],
                )
                .await?;
            transaction
                .execute(
                    "DELETE FROM cross_api_apis WHERE tenant = $1::text AND api = $2::text",
                    &[&api.tenant().as_str(), &api.api().as_str()],
                )
                .await?;
            rows::insert_audit(&transaction, &applied.records).await?;
            check_revision(&transaction, next).await?;
            transaction.commit().await?;
            Ok(applied.records)
        })
        .await
    }

    /// The newest `limit` audit records of `tenant`, newest first, for its administrators
    /// and staff.
    ///
    /// # Errors
    ///
    /// [`AdminError::Forbidden`] or [`AdminError::UnknownTenant`] as
    /// [`PostgresError::Admin`], or a database error.
    pub async fn audit(
        &self,
        actor: &Actor,
        tenant: &TenantId,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, PostgresError> {
        if !actor.may_audit(tenant) {
            return Err(forbidden(actor, tenant));
        }

        self.within(async |client| {
            let known = client
                .query_opt(
                    "SELECT 1 FROM cross_api_tenants WHERE tenant = $1::text",
                    &[&tenant.as_str()],
                )
                .await?;
            if known.is_none() {
                return Err(AdminError::UnknownTenant { tenant: *tenant }.into());
            }
            rows::read_audit(&*client, tenant, i64::from(limit)).await
        })
        .await
    }

    /// Runs one act on the store's connection (made anew when there is none or it dropped),
    /// acts taking turns, and gives it up after twice the statement timeout: waiting its turn,
    /// connecting and every statement included. The connection is taken out of its slot
    /// while the act runs, so an act given up drops it and the next act connects afresh.
    async fn within<T>(
        &self,
        act: impl AsyncFnOnce(&mut Client) -> Result<T, PostgresError>,
    ) -> Result<T, PostgresError> {
        let limit = self.statement_timeout.saturating_mul(2);

        let attempt = async {
            let mut slot = self.client.lock().await;
            let mut client = match slot.take() {
                Some(client) if !client.is_closed() => client,
                _ => {
                    let client = connect(&self.config).await?;
                    limit_statements(&client, self.statement_timeout).await?;
                    client
                }
            };
            let done = act(&mut client).await;
            *slot = Some(client);
            done
        };
        tokio::time::timeout(limit, attempt)
            .await
            .unwrap_or(Err(PostgresError::Timeout(limit)))
    }
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("hosts", &self.config.get_hosts().len())
            .field("dbname", &self.config.get_dbname())
            .field("statement_timeout", &self.statement_timeout)
            .finish_non_exhaustive()
    }
}

/// Connects and drives the connection in a task of its own, logging how it ends.
pub(super) async fn connect(config: &Config) -> Result<Client, PostgresError> {
    let (client, connection) = config.connect(NoTls).await?;

    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::warn!(%error, "policy database connection closed");
        }
    });
    Ok(client)
}

/// Has the server cancel any statement of `client` that runs longer than `timeout`, and end
/// the session when `client` leaves a transaction open longer than that: a client that
/// vanished mid-transaction (a partition, a process gone) must not keep the revision row
/// locked. `timeout` is capped at the largest the server takes, about 24 days.
pub(super) async fn limit_statements(
    client: &Client,
    timeout: Duration,
) -> Result<(), PostgresError> {
    let millis = timeout.as_millis().clamp(1, i32::MAX as u128);
    client
        .batch_execute(&format!(
            "SET statement_timeout = {millis}; \
             SET idle_in_transaction_session_timeout = {millis}"
        ))
        .await?;
    Ok(())
}

/// A read-only, repeatable-read transaction: every statement in it sees the same state.
async fn reading(client: &mut Client) -> Result<Transaction<'_>, PostgresError> {
    let transaction = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    Ok(transaction)
}

/// Every tenant's policies as one snapshot, read in one repeatable-read transaction.
pub(super) async fn load_snapshot(client: &mut Client) -> Result<Snapshot, PostgresError> {
    let transaction = reading(client).await?;
    let document = rows::read_document(&transaction, None).await?;
    transaction.commit().await?;

    Snapshot::from_document(&document).map_err(PostgresError::Policy)
}

/// `tenant`'s policies alone as a snapshot at the global revision (empty for an unknown
/// tenant), for the admin rules to check a write against.
async fn tenant_snapshot<C: tokio_postgres::GenericClient>(
    client: &C,
    tenant: &TenantId,
) -> Result<Snapshot, PostgresError> {
    let document = rows::read_document(client, Some(tenant.as_str())).await?;
    Snapshot::from_document(&document).map_err(PostgresError::Policy)
}

/// Confirms the trigger bumped the revision to `next` exactly once.
async fn check_revision<C: tokio_postgres::GenericClient>(
    client: &C,
    next: u64,
) -> Result<(), PostgresError> {
    let now = rows::read_revision(client, false).await?;

    if now == next {
        Ok(())
    } else {
        Err(PostgresError::Policy(crate::PolicyError::StaleRevision {
            current: now,
            offered: next,
        }))
    }
}

fn forbidden(actor: &Actor, tenant: &TenantId) -> PostgresError {
    tracing::warn!(
        actor = actor.name(),
        role = actor.role(),
        tenant = %tenant,
        reason = "forbidden",
        "cross-API administration refused"
    );
    PostgresError::Admin(AdminError::Forbidden {
        actor: actor.name().to_owned(),
        tenant: *tenant,
    })
}
