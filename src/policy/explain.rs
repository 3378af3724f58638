//! Why a source may or may not call a target, for the humans who ask.

use super::snapshot::TargetPolicy;
use crate::decision::{Decision, Enforcement};
use crate::id::ApiRef;

/// The answer of [`Snapshot::explain`](crate::Snapshot::explain) and
/// [`PolicyHandle::explain`](crate::PolicyHandle::explain): the decision the gate would make
/// for `source` calling `target`, with its reason and revision, and the target's policy and
/// mode as the snapshot holds them.
///
/// An explanation shows the policy of the target only, never the source's: it is meant for
/// the target's tenant administrators.
///
/// ```
/// use tower_cross_api::{PolicyHandle, Reason};
///
/// let policies = PolicyHandle::new();
/// let explanation = policies.explain(&"acme/crm".parse()?, &"acme/orders".parse()?);
/// assert_eq!(explanation.decision().reason(), Reason::NoSnapshot);
/// assert_eq!(explanation.policy(), None);
/// # Ok::<(), tower_cross_api::IdError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explanation {
    source: ApiRef,
    target: ApiRef,
    decision: Decision,
    policy: Option<(TargetPolicy, Enforcement)>,
}

impl Explanation {
    pub(crate) const fn new(
        source: ApiRef,
        target: ApiRef,
        decision: Decision,
        policy: Option<(TargetPolicy, Enforcement)>,
    ) -> Self {
        Self {
            source,
            target,
            decision,
            policy,
        }
    }

    /// The caller that was asked about.
    pub const fn source(&self) -> &ApiRef {
        &self.source
    }

    /// The target that was asked about.
    pub const fn target(&self) -> &ApiRef {
        &self.target
    }

    /// The decision an enforcing gate makes, with its reason and revision.
    pub const fn decision(&self) -> Decision {
        self.decision
    }

    /// The revision of the snapshot that decided; `0` when there was none.
    pub const fn revision(&self) -> u64 {
        self.decision.revision()
    }

    /// The target's policy, or `None` when the snapshot does not know the target (or there
    /// is no snapshot).
    pub const fn policy(&self) -> Option<&TargetPolicy> {
        match &self.policy {
            Some((policy, _)) => Some(policy),
            None => None,
        }
    }

    /// Whether the target's policy enforces or audits, or `None` when the snapshot does not
    /// know the target.
    pub const fn enforcement(&self) -> Option<Enforcement> {
        match &self.policy {
            Some((_, enforcement)) => Some(*enforcement),
            None => None,
        }
    }
}
