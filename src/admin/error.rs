//! Why an administrative act was refused.

use std::fmt;

use crate::id::{ApiId, TenantId};
use crate::policy::{PolicyError, Rule};

/// Why an administrative act was refused. Nothing changed.
///
/// ```
/// use tower_cross_api::Rule;
/// use tower_cross_api::admin::AdminError;
///
/// let refused = AdminError::Rule { rule: Rule::SelfGrant };
/// assert_eq!(refused.reason(), "self_grant");
/// assert_eq!(refused.to_string(), "an API cannot grant access to itself");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AdminError {
    /// The actor may not do this for this tenant.
    Forbidden {
        /// The actor's name.
        actor: String,
        /// The tenant it asked about.
        tenant: TenantId,
    },
    /// The tenant is not known.
    UnknownTenant {
        /// The tenant asked about.
        tenant: TenantId,
    },
    /// The target API is not one of its tenant's APIs.
    UnknownTarget {
        /// The API asked about.
        api: ApiId,
    },
    /// The write was based on a revision of the policy that is no longer current.
    Stale {
        /// The revision the write was based on.
        expected: u64,
        /// The revision of the policy now.
        current: u64,
    },
    /// The write would break a rule of the contract.
    Rule {
        /// The rule.
        rule: Rule,
    },
    /// A revoke named an API that the target does not list.
    NotListed {
        /// The API named.
        api: ApiId,
    },
    /// The new snapshot was refused for another reason, such as its size.
    Policy(PolicyError),
}

impl AdminError {
    /// A stable, lower-case name for the refusal: `forbidden`, `unknown_tenant`,
    /// `unknown_target`, `stale_revision`, `not_listed`, `policy`, or the rule's
    /// [`name`](Rule::name).
    pub const fn reason(&self) -> &'static str {
        match self {
            Self::Forbidden { .. } => "forbidden",
            Self::UnknownTenant { .. } => "unknown_tenant",
            Self::UnknownTarget { .. } => "unknown_target",
            Self::Stale { .. } => "stale_revision",
            Self::Rule { rule } => rule.name(),
            Self::NotListed { .. } => "not_listed",
            Self::Policy(_) => "policy",
        }
    }

    /// The refusal for a policy that validation refused: its rule when it broke one.
    pub(crate) fn from_policy(error: PolicyError) -> Self {
        match error {
            PolicyError::Rule { rule, .. } => Self::Rule { rule },
            other => Self::Policy(other),
        }
    }
}

impl fmt::Display for AdminError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Forbidden { actor, tenant } => write!(
                f,
                "{actor} may not change the cross-API access of tenant `{tenant}`"
            ),
            Self::UnknownTenant { tenant } => write!(f, "there is no tenant `{tenant}`"),
            Self::UnknownTarget { api } => write!(f, "the tenant has no API `{api}`"),
            Self::Stale { expected, current } => write!(
                f,
                "the change was based on revision {expected}, but the policy is at revision \
                 {current}: read it again"
            ),
            Self::Rule { rule } => write!(f, "{rule}"),
            Self::NotListed { api } => write!(f, "`{api}` is not on the list to revoke"),
            Self::Policy(error) => write!(f, "{error}"),
        }
    }
}

impl std::error::Error for AdminError {}
