//! Who asks for an administrative act.

use std::fmt;

use crate::id::TenantId;

/// The person or system behind an administrative act: the host authenticates it and names
/// it here; the rules of [`Write`](super::Write) decide what it may do.
///
/// Only an administrator of the target's tenant, or platform staff, may change a policy.
/// A member may read its tenant's policies; an unknown actor may do nothing.
///
/// ```
/// use tower_cross_api::TenantId;
/// use tower_cross_api::admin::Actor;
///
/// let acme = TenantId::new("acme")?;
/// let globex = TenantId::new("globex")?;
///
/// let ada = Actor::administrator("ada", acme);
/// assert!(ada.may_change(&acme));
/// assert!(!ada.may_change(&globex));
/// assert!(!Actor::member("alice", acme).may_change(&acme));
/// assert!(Actor::member("alice", acme).may_read(&acme));
/// assert!(Actor::staff("sam").may_change(&globex));
/// assert!(!Actor::Unknown.may_read(&acme));
/// # Ok::<(), tower_cross_api::IdError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Actor {
    /// An administrator of one tenant.
    Administrator {
        /// The actor's name, as the audit trail records it.
        name: String,
        /// The tenant it administers.
        tenant: TenantId,
    },
    /// A member of one tenant, who may read its policies but not change them.
    Member {
        /// The actor's name.
        name: String,
        /// The tenant it belongs to.
        tenant: TenantId,
    },
    /// Platform staff, who may change every tenant's policies.
    Staff {
        /// The actor's name.
        name: String,
    },
    /// Nobody the host could name: refused everything.
    Unknown,
}

impl Actor {
    /// An administrator of `tenant`.
    pub fn administrator(name: impl Into<String>, tenant: TenantId) -> Self {
        Self::Administrator {
            name: name.into(),
            tenant,
        }
    }

    /// A member of `tenant`.
    pub fn member(name: impl Into<String>, tenant: TenantId) -> Self {
        Self::Member {
            name: name.into(),
            tenant,
        }
    }

    /// Platform staff.
    pub fn staff(name: impl Into<String>) -> Self {
        Self::Staff { name: name.into() }
    }

    /// The actor's name for the audit trail and the log; `unknown` for an unknown actor.
    pub fn name(&self) -> &str {
        match self {
            Self::Administrator { name, .. } | Self::Member { name, .. } | Self::Staff { name } => {
                name
            }
            Self::Unknown => "unknown",
        }
    }

    /// What the actor is, in one word: `administrator`, `member`, `staff` or `unknown`.
    pub const fn role(&self) -> &'static str {
        match self {
            Self::Administrator { .. } => "administrator",
            Self::Member { .. } => "member",
            Self::Staff { .. } => "staff",
            Self::Unknown => "unknown",
        }
    }

    /// Whether the actor may change the policies (and the API registry) of `tenant`.
    pub fn may_change(&self, tenant: &TenantId) -> bool {
        match self {
            Self::Administrator { tenant: own, .. } => own == tenant,
            Self::Staff { .. } => true,
            Self::Member { .. } | Self::Unknown => false,
        }
    }

    /// Whether the actor may read the policies of `tenant`.
    pub fn may_read(&self, tenant: &TenantId) -> bool {
        match self {
            Self::Member { tenant: own, .. } => own == tenant,
            _ => self.may_change(tenant),
        }
    }

    /// Whether the actor may read the audit trail of `tenant`: its administrators and staff.
    pub fn may_audit(&self, tenant: &TenantId) -> bool {
        self.may_change(tenant)
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.role())
    }
}
