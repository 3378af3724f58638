//! PostgreSQL as the shared source of truth for many gateway replicas (feature `postgres`).
//!
//! - [`PostgresStore`] applies the [migrations](PostgresStore::migrate), seeds a first
//!   document, and carries out administrative acts: each in one transaction that checks the
//!   [`admin`](crate::admin) rules on the tenant's current state, writes the change and its
//!   audit records, and bumps the global revision, which notifies every replica.
//! - [`PostgresSource`] keeps one replica's [`PolicyHandle`](crate::PolicyHandle) current:
//!   a full snapshot at start, a new one on every `NOTIFY`, and after a lost connection a
//!   reconnect with backoff and a full re-read, so no change is missed. While the database is
//!   unreachable the snapshot in force stays, and a replica that never loaded one denies
//!   every linked call.
//!
//! The schema's own constraints hold the contract's rules (valid identifiers, no
//! self-grant, grants within one tenant, allow-all never with grants), and a trigger bumps
//! the revision and notifies on any write, a direct SQL one included. Every table, the
//! domain and the function are named `cross_api_*` and live in the connection's current
//! schema: give each deployment its own schema with `options=-csearch_path%3D<schema>` in
//! the URL to keep several apart.
//!
//! Connections are made without TLS: keep the database on a private network or a local
//! socket.

mod follow;
mod rows;
mod schema;
mod store;

use std::fmt;
use std::time::Duration;

pub use follow::PostgresSource;
pub use store::{PostgresStore, Written};

use crate::admin::AdminError;
use crate::policy::{PolicyError, Rule};

/// Why a PostgreSQL source or store could not do what it was asked.
#[derive(Debug)]
#[non_exhaustive]
pub enum PostgresError {
    /// The URL is not a PostgreSQL connection string.
    Config(tokio_postgres::Error),
    /// The database could not be reached, or a statement failed.
    Database(tokio_postgres::Error),
    /// The administrative act was refused; nothing changed.
    Admin(AdminError),
    /// What the database holds was refused as a snapshot.
    Policy(PolicyError),
    /// The database did not answer within the time allowed.
    Timeout(Duration),
}

impl PostgresError {
    /// The refusal, when an administrative act was refused.
    pub const fn admin(&self) -> Option<&AdminError> {
        match self {
            Self::Admin(error) => Some(error),
            _ => None,
        }
    }

    /// A database error, with a broken constraint of the schema read back as the rule it
    /// holds.
    fn from_database(error: tokio_postgres::Error) -> Self {
        let constraint = error.as_db_error().and_then(|db| db.constraint());
        let rule = match constraint {
            Some("cross_api_no_self_grant") => Some(Rule::SelfGrant),
            Some("cross_api_grant_list" | "cross_api_grant_needs_list") => {
                Some(Rule::AllowAllWithList)
            }
            Some("cross_api_grant_source") => Some(Rule::NotInTenant {
                listed: String::new(),
            }),
            Some("cross_api_id_valid") => Some(Rule::MalformedIdentifier {
                value: String::new(),
            }),
            _ => None,
        };

        match rule {
            Some(rule) => Self::Admin(AdminError::Rule { rule }),
            None => Self::Database(error),
        }
    }
}

impl From<tokio_postgres::Error> for PostgresError {
    fn from(error: tokio_postgres::Error) -> Self {
        Self::from_database(error)
    }
}

impl From<AdminError> for PostgresError {
    fn from(error: AdminError) -> Self {
        Self::Admin(error)
    }
}

impl fmt::Display for PostgresError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(error) => write!(f, "invalid PostgreSQL URL: {}", Caused(error)),
            Self::Database(error) => write!(f, "PostgreSQL: {}", Caused(error)),
            Self::Admin(error) => write!(f, "{error}"),
            Self::Policy(error) => write!(f, "the database's policies were refused: {error}"),
            Self::Timeout(limit) => write!(f, "PostgreSQL did not answer within {limit:?}"),
        }
    }
}

/// A driver error with what caused it: tokio-postgres says only "db error" or "error
/// connecting to server" and keeps the server's message or the socket's error as the source.
/// On one line: the server's DETAIL and HINT follow its message after `; `.
struct Caused<'a>(&'a tokio_postgres::Error);

impl fmt::Display for Caused<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use std::error::Error as _;

        let Some(cause) = self.0.source() else {
            return write!(f, "{}", self.0);
        };

        write!(f, "{}: ", self.0)?;
        let cause = cause.to_string();
        let mut lines = cause.lines();
        if let Some(first) = lines.next() {
            f.write_str(first)?;
        }
        for line in lines {
            write!(f, "; {line}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PostgresError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Config(error) | Self::Database(error) => Some(error),
            Self::Admin(error) => Some(error),
            Self::Policy(error) => Some(error),
            Self::Timeout(_) => None,
        }
    }
}

/// Parses a connection URL, with a connect timeout of 5 seconds unless it sets one.
fn config(url: &str) -> Result<tokio_postgres::Config, PostgresError> {
    let mut config: tokio_postgres::Config = url.parse().map_err(PostgresError::Config)?;

    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(5));
    }
    config.keepalives_idle(Duration::from_secs(30));
    Ok(config)
}

/// `name` quoted as an identifier.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
