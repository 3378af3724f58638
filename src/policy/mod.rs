//! Policies: the document a host writes, its validation into a [`Snapshot`], and the
//! [`PolicyHandle`] that publishes snapshots to requests.
//!
//! Nothing here knows HTTP.

mod document;
mod error;
mod explain;
mod handle;
mod snapshot;

pub use document::{AccessDocument, PolicyDocument, TenantDocument};
pub use error::{PolicyError, Rule};
pub use explain::Explanation;
pub use handle::{MAX_REVISION, PolicyHandle};
pub(crate) use snapshot::Positions;
pub use snapshot::{Snapshot, SnapshotSize, TargetPolicy};
