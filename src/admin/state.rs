//! Reading one target's policy.

use crate::decision::Enforcement;
use crate::id::{ApiId, ApiRef};
use crate::policy::{Snapshot, TargetPolicy};

use super::{Actor, AdminError};

/// The policy of one target API as an administrator reads it: its state, whether it enforces
/// or only audits (`"enforce": false`), its revision and a one-line summary.
///
/// ```
/// use tower_cross_api::{ApiRef, Enforcement, Snapshot, TenantId};
/// use tower_cross_api::admin::{Actor, PolicyState};
///
/// let snapshot = Snapshot::from_json(r#"{ "revision": 3, "tenants": { "acme": {
///     "apis": ["orders", "billing"]
/// } } }"#)?;
/// let orders: ApiRef = "acme/orders".parse()?;
/// let alice = Actor::member("alice", TenantId::new("acme")?);
///
/// let state = PolicyState::read(&snapshot, &alice, &orders)?;
/// assert_eq!(state.revision(), 3);
/// assert!(!state.allow_all());
/// assert!(state.allow().is_empty());
/// assert_eq!(state.summary(), "No APIs are allowed to access this API's data.");
/// assert_eq!(state.enforcement(), Enforcement::Enforce);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyState {
    target: ApiRef,
    policy: TargetPolicy,
    enforcement: Enforcement,
    revision: u64,
}

impl PolicyState {
    /// The state of `target`'s `policy` at `revision`, as a store read it, enforcing.
    pub const fn new(target: ApiRef, policy: TargetPolicy, revision: u64) -> Self {
        Self {
            target,
            policy,
            enforcement: Enforcement::Enforce,
            revision,
        }
    }

    /// The same state, with the target's policy enforcing or only auditing.
    #[must_use]
    pub const fn with_enforcement(mut self, enforcement: Enforcement) -> Self {
        self.enforcement = enforcement;
        self
    }

    /// Reads `target`'s policy from `snapshot` for `actor`, at the snapshot's revision.
    ///
    /// # Errors
    ///
    /// [`AdminError::Forbidden`] when the actor may not read the tenant's policies, then
    /// [`AdminError::UnknownTenant`] or [`AdminError::UnknownTarget`].
    pub fn read(snapshot: &Snapshot, actor: &Actor, target: &ApiRef) -> Result<Self, AdminError> {
        if !actor.may_read(target.tenant()) {
            return Err(AdminError::Forbidden {
                actor: actor.name().to_owned(),
                tenant: *target.tenant(),
            });
        }

        let policy = find(snapshot, target)?;
        let enforcement = snapshot.enforcement(target).unwrap_or(Enforcement::Enforce);
        Ok(Self::new(*target, policy, snapshot.revision()).with_enforcement(enforcement))
    }

    /// The target.
    pub const fn target(&self) -> &ApiRef {
        &self.target
    }

    /// The policy.
    pub const fn policy(&self) -> &TargetPolicy {
        &self.policy
    }

    /// Whether the target's policy refuses the calls it denies, or only reports them
    /// (audit mode, `"enforce": false` in the document).
    pub const fn enforcement(&self) -> Enforcement {
        self.enforcement
    }

    /// The revision the policy is at.
    pub const fn revision(&self) -> u64 {
        self.revision
    }

    /// Whether every API of the tenant may call the target.
    pub const fn allow_all(&self) -> bool {
        matches!(self.policy, TargetPolicy::AllowAll)
    }

    /// The APIs listed; empty for allow-all and for nothing configured.
    pub fn allow(&self) -> &[ApiId] {
        match &self.policy {
            TargetPolicy::List(listed) => listed,
            TargetPolicy::AllowAll | TargetPolicy::NothingConfigured => &[],
        }
    }

    /// The one-line summary; see [`TargetPolicy::summary`].
    pub fn summary(&self) -> String {
        self.policy.summary()
    }
}

/// The policy of `target` in `snapshot`, or which of the tenant and the target is unknown.
pub(crate) fn find(snapshot: &Snapshot, target: &ApiRef) -> Result<TargetPolicy, AdminError> {
    if !snapshot.contains_tenant(target.tenant()) {
        return Err(AdminError::UnknownTenant {
            tenant: *target.tenant(),
        });
    }
    snapshot
        .policy(target)
        .ok_or(AdminError::UnknownTarget { api: *target.api() })
}
