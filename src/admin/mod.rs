//! Administration of cross-API access: who may change a target's policy, the operations,
//! their rules, optimistic concurrency and the audit record of every accepted change.
//!
//! An administrative act works on a [`Snapshot`](crate::Snapshot) and makes the next one,
//! validated exactly as a published document is; a store (the
//! [`PolicyHandle`](crate::PolicyHandle) itself, or PostgreSQL with the `postgres` feature)
//! keeps the result. Nothing here touches a request.
//!
//! | operation | [`Change`] | refused when |
//! |---|---|---|
//! | allow all (clears the list) | [`Change::AllowAll`] | — |
//! | set the list | [`Change::SetList`] | self-grant, API of no such name, repeated |
//! | grant one | [`Change::Grant`] | allow-all is on, already listed, as for a list |
//! | revoke one | [`Change::Revoke`] | allow-all is on, not listed |
//! | reset to nothing configured | [`Change::Reset`] | — |
//!
//! Every write is also refused for an actor who may not change the tenant, an unknown tenant
//! or target, or a stale revision.

mod actor;
mod audit;
mod change;
mod error;
mod state;
mod write;

pub use actor::Actor;
#[cfg(feature = "postgres")]
pub(crate) use audit::AccessJson;
pub use audit::AuditRecord;
pub use change::Change;
pub use error::AdminError;
pub use state::PolicyState;
pub use write::{Applied, RemoveApi, Write};
