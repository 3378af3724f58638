//! Policy sources a host can run to keep a [`PolicyHandle`](crate::PolicyHandle) current.
//!
//! Nothing here touches a request.

#[cfg(feature = "file")]
mod file;

#[cfg(feature = "file")]
pub use file::{FileSource, FileSourceError};

#[cfg(feature = "postgres")]
mod postgres;

#[cfg(feature = "postgres")]
pub use postgres::{PostgresError, PostgresSource, PostgresStore, Written};
