//! The shared handle that requests read and the host replaces.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;

use super::{Explanation, PolicyDocument, PolicyError, Snapshot};
use crate::decision::Decision;
use crate::id::ApiRef;

/// The greatest revision a snapshot may have: 2⁵³ − 1, the greatest integer every JSON reader
/// keeps exactly. Far below `u64::MAX`, so the next revision always exists.
pub const MAX_REVISION: u64 = (1 << 53) - 1;

/// The current [`Snapshot`], shared by every request and replaced whole by the host.
///
/// Cloning a handle is cheap and every clone sees the same snapshot. Readers never wait:
/// a read is one atomic load. Publishers are serialised among themselves so that revisions
/// only grow: a snapshot whose revision is not greater than the one in force is refused,
/// and so is a document that fails validation; in both cases the snapshot in force stays.
///
/// Until a first snapshot is published, every linked call is denied with
/// [`Reason::NoSnapshot`](crate::Reason::NoSnapshot).
///
/// ```
/// use tower_cross_api::{ApiRef, PolicyHandle, Reason};
///
/// let handle = PolicyHandle::new();
/// let billing: ApiRef = "acme/billing".parse()?;
/// let orders: ApiRef = "acme/orders".parse()?;
/// assert_eq!(handle.decide(&billing, &orders).reason(), Reason::NoSnapshot);
///
/// handle.publish_json(r#"{ "tenants": { "acme": {
///     "apis": ["orders", "billing"],
///     "cross_api_access": { "orders": { "allow": ["billing"] } }
/// } } }"#)?;
/// assert_eq!(handle.revision(), Some(1));
/// assert!(handle.decide(&billing, &orders).is_allowed());
///
/// // A bad document is refused and the snapshot in force stays.
/// let refused = handle.publish_json(r#"{ "tenants": { "acme": {
///     "apis": ["orders"],
///     "cross_api_access": { "orders": { "allow": ["orders"] } }
/// } } }"#);
/// assert!(refused.is_err());
/// assert!(handle.decide(&billing, &orders).is_allowed());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default)]
pub struct PolicyHandle {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    current: ArcSwapOption<Snapshot>,
    publishing: Mutex<()>,
    published_at: Mutex<Option<Instant>>,
}

impl PolicyHandle {
    /// A handle with no snapshot yet: every linked call is denied until one is published.
    pub fn new() -> Self {
        Self::default()
    }

    /// A handle that starts with `snapshot` in force.
    pub fn with_snapshot(snapshot: Snapshot) -> Self {
        let handle = Self::new();
        handle.shared.current.store(Some(Arc::new(snapshot)));
        handle.mark_published();
        handle
    }

    /// The snapshot in force, if any. Holding it keeps that snapshot alive, not current: a
    /// request should load once and decide on what it loaded.
    pub fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.shared.current.load_full()
    }

    /// The revision in force, if a snapshot was ever published.
    pub fn revision(&self) -> Option<u64> {
        self.shared
            .current
            .load()
            .as_ref()
            .map(|snapshot| snapshot.revision())
    }

    /// Decides on the snapshot in force with a single load; denies when there is none.
    pub fn decide(&self, source: &ApiRef, target: &ApiRef) -> Decision {
        match self.shared.current.load().as_ref() {
            Some(snapshot) => snapshot.decide(source, target),
            None => Decision::no_snapshot(),
        }
    }

    /// Explains on the snapshot in force, with a single load; see [`Snapshot::explain`].
    /// Without a snapshot the decision is [`Decision::no_snapshot`] and no policy applies.
    pub fn explain(&self, source: &ApiRef, target: &ApiRef) -> Explanation {
        match self.shared.current.load().as_ref() {
            Some(snapshot) => snapshot.explain(source, target),
            None => Explanation::new(*source, *target, Decision::no_snapshot(), None),
        }
    }

    /// How long ago the snapshot in force was published, or `None` when none was.
    ///
    /// ```
    /// use tower_cross_api::PolicyHandle;
    ///
    /// let policies = PolicyHandle::new();
    /// assert_eq!(policies.age(), None);
    /// policies.publish_json(r#"{ "tenants": {} }"#)?;
    /// assert!(policies.age().is_some());
    /// # Ok::<(), tower_cross_api::PolicyError>(())
    /// ```
    pub fn age(&self) -> Option<Duration> {
        let published_at = *self
            .shared
            .published_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        published_at.map(|at| at.elapsed())
    }

    fn mark_published(&self) {
        *self
            .shared
            .published_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
    }

    /// Calls `read` with the snapshot in force, without keeping it past the call.
    pub fn with_current<R>(&self, read: impl FnOnce(Option<&Snapshot>) -> R) -> R {
        read(self.shared.current.load().as_deref())
    }

    /// Replaces the snapshot in force with `snapshot` and returns its revision.
    ///
    /// # Errors
    ///
    /// [`PolicyError::StaleRevision`] when the revision is not greater than the one in force;
    /// nothing changes then.
    pub fn publish(&self, snapshot: Snapshot) -> Result<u64, PolicyError> {
        self.publish_with(|_| Ok(snapshot), Order::Forward)
    }

    /// Replaces the snapshot in force with `snapshot` even when its revision is lower or the
    /// same, for a source whose own history went back (a database restored from a backup, or
    /// failed over to a standby that lagged): what it holds now is the truth to follow.
    ///
    /// Never refused: every [`Snapshot`] is built with a revision from 1 to [`MAX_REVISION`],
    /// so there is nothing left to check; the `Result` is [`publish`](Self::publish)'s.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn publish_rewound(&self, snapshot: Snapshot) -> Result<u64, PolicyError> {
        self.publish_with(|_| Ok(snapshot), Order::Rewound)
    }

    /// Validates `document` and publishes it. A document without a revision takes the next
    /// one after the revision in force (1 for the first).
    ///
    /// # Errors
    ///
    /// Any [`PolicyError`] of validation, or [`PolicyError::StaleRevision`]; nothing
    /// changes then.
    pub fn publish_document(&self, document: &PolicyDocument) -> Result<u64, PolicyError> {
        self.publish_with(
            |current| {
                let next = current.map_or(1, |revision| revision.saturating_add(1));
                Snapshot::build(document, document.revision.unwrap_or(next))
            },
            Order::Forward,
        )
    }

    /// Parses, validates and publishes a JSON policy document; see
    /// [`publish_document`](Self::publish_document).
    ///
    /// # Errors
    ///
    /// Any [`PolicyError`]; nothing changes then.
    pub fn publish_json(&self, json: &str) -> Result<u64, PolicyError> {
        self.publish_document(&PolicyDocument::from_json(json)?)
    }

    /// Builds the next snapshot from the revision in force, while no other publisher runs,
    /// and stores it if its revision is greater (or, `Rewound`, whatever it is).
    fn publish_with(
        &self,
        next: impl FnOnce(Option<u64>) -> Result<Snapshot, PolicyError>,
        order: Order,
    ) -> Result<u64, PolicyError> {
        let _publishing = self
            .shared
            .publishing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let current = self.revision();

        let snapshot = next(current)?;
        let offered = snapshot.revision();
        let stale = |current: &u64| matches!(order, Order::Forward) && offered <= *current;
        if let Some(current) = current.filter(stale) {
            return Err(PolicyError::StaleRevision { current, offered });
        }

        self.shared.current.store(Some(Arc::new(snapshot)));
        self.mark_published();
        Ok(offered)
    }
}

/// Which revisions a publish may store.
#[derive(Clone, Copy)]
enum Order {
    /// Only a greater one: revisions grow.
    Forward,
    /// Any: the source went back, and the handle follows it.
    Rewound,
}

impl fmt::Debug for PolicyHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyHandle")
            .field("revision", &self.revision())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"{ "tenants": { "t1": {
        "apis": ["orders", "billing"],
        "cross_api_access": { "orders": { "allow": ["billing"] } }
    } } }"#;

    #[test]
    fn revisions_only_grow() {
        let handle = PolicyHandle::new();
        assert_eq!(handle.revision(), None);

        assert_eq!(handle.publish_json(POLICY), Ok(1));
        assert_eq!(handle.publish_json(POLICY), Ok(2));

        let mut document = PolicyDocument::from_json(POLICY).expect("valid");
        document.revision = Some(2);
        assert_eq!(
            handle.publish_document(&document),
            Err(PolicyError::StaleRevision {
                current: 2,
                offered: 2
            })
        );
        document.revision = Some(10);
        assert_eq!(handle.publish_document(&document), Ok(10));
        assert_eq!(handle.revision(), Some(10));
    }

    #[test]
    fn a_rewound_source_is_followed_back_even_to_the_same_revision() {
        let handle = PolicyHandle::new();
        let at = |revision: u64| {
            let mut document = PolicyDocument::from_json(POLICY).expect("valid");
            document.revision = Some(revision);
            Snapshot::from_document(&document).expect("valid")
        };
        assert_eq!(handle.publish(at(5)), Ok(5));

        assert_eq!(
            handle.publish(at(3)),
            Err(PolicyError::StaleRevision {
                current: 5,
                offered: 3
            })
        );
        assert_eq!(handle.publish_rewound(at(3)), Ok(3));
        assert_eq!(handle.revision(), Some(3));
        let before = handle.snapshot().expect("a snapshot");
        assert_eq!(handle.publish_rewound(at(3)), Ok(3));
        let after = handle.snapshot().expect("a snapshot");
        assert!(!Arc::ptr_eq(&before, &after), "the same revision, replaced");
        assert_eq!(handle.publish(at(4)), Ok(4));
    }

    #[test]
    fn revisions_out_of_range_are_never_published() {
        let handle = PolicyHandle::new();
        let mut document = PolicyDocument::from_json(POLICY).expect("valid");

        for offered in [0, MAX_REVISION + 1, u64::MAX] {
            document.revision = Some(offered);
            let refused = handle.publish_document(&document);
            assert_eq!(refused, Err(PolicyError::RevisionOutOfRange { offered }));
            let unbuilt = Snapshot::from_document(&document).err();
            assert_eq!(unbuilt, Some(PolicyError::RevisionOutOfRange { offered }));
        }
        assert_eq!(handle.revision(), None);

        document.revision = Some(MAX_REVISION);
        assert_eq!(handle.publish_document(&document), Ok(MAX_REVISION));
        document.revision = None;
        let refused = handle.publish_document(&document);
        let offered = MAX_REVISION + 1;
        assert_eq!(refused, Err(PolicyError::RevisionOutOfRange { offered }));
    }

    #[test]
    fn clones_share_one_snapshot() {
        let handle = PolicyHandle::new();
        let reader = handle.clone();

        handle.publish_json(POLICY).expect("valid");
        assert_eq!(reader.revision(), Some(1));
        assert_eq!(format!("{reader:?}"), "PolicyHandle { revision: Some(1) }");
    }
}
