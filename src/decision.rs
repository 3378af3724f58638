//! The outcome of one check, and the reason for it.

use std::fmt;

/// Why a linked call was allowed or denied.
///
/// The reasons that allow are [`Listed`](Self::Listed), [`AllowAll`](Self::AllowAll) and
/// [`SameApi`](Self::SameApi); every other reason denies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// The target lists the source.
    Listed,
    /// The target allows every API of its tenant.
    AllowAll,
    /// The source is the target itself: not a cross-API call.
    SameApi,
    /// The target has a list, and the source is not on it (an empty list included).
    NotListed,
    /// The target has no policy: nobody may call it.
    NothingConfigured,
    /// The source belongs to another tenant than the target.
    OtherTenant,
    /// The target's tenant is not in the snapshot.
    UnknownTenant,
    /// The source is not an API of the snapshot.
    UnknownSource,
    /// The target is not an API of the snapshot, or could not be told from the request.
    UnknownTarget,
    /// No snapshot has been published yet.
    NoSnapshot,
}

impl Reason {
    /// Whether this reason lets the call through.
    pub const fn is_allowed(self) -> bool {
        matches!(self, Self::Listed | Self::AllowAll | Self::SameApi)
    }

    /// A stable, lower-case name for logs and metrics, such as `not_listed`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Listed => "listed",
            Self::AllowAll => "allow_all",
            Self::SameApi => "same_api",
            Self::NotListed => "not_listed",
            Self::NothingConfigured => "nothing_configured",
            Self::OtherTenant => "other_tenant",
            Self::UnknownTenant => "unknown_tenant",
            Self::UnknownSource => "unknown_source",
            Self::UnknownTarget => "unknown_target",
            Self::NoSnapshot => "no_snapshot",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The answer of a [`Snapshot`](crate::Snapshot) to "may this source call this target?".
///
/// ```
/// use tower_cross_api::{ApiRef, Reason, Snapshot};
///
/// let snapshot = Snapshot::from_json(r#"{
///     "revision": 1,
///     "tenants": { "acme": {
///         "apis": ["orders", "billing"],
///         "cross_api_access": { "orders": { "allow": ["billing"] } }
///     } }
/// }"#)?;
///
/// let billing: ApiRef = "acme/billing".parse()?;
/// let orders: ApiRef = "acme/orders".parse()?;
///
/// let decision = snapshot.decide(&billing, &orders);
/// assert!(decision.is_allowed());
/// assert_eq!(decision.reason(), Reason::Listed);
/// assert_eq!(decision.revision(), 1);
///
/// assert_eq!(snapshot.decide(&orders, &billing).reason(), Reason::NothingConfigured);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Decision {
    reason: Reason,
    revision: u64,
    audited: bool,
}

impl Decision {
    pub(crate) const fn new(reason: Reason, revision: u64) -> Self {
        Self {
            reason,
            revision,
            audited: false,
        }
    }

    /// The same decision, made under a target policy in audit mode (`"enforce": false`).
    pub(crate) const fn with_audited(mut self, audited: bool) -> Self {
        self.audited = audited;
        self
    }

    /// The decision when no snapshot has been published: denied.
    pub const fn no_snapshot() -> Self {
        Self::new(Reason::NoSnapshot, 0)
    }

    /// Whether the call may go on to the target.
    pub const fn is_allowed(&self) -> bool {
        self.reason.is_allowed()
    }

    /// Why.
    pub const fn reason(&self) -> Reason {
        self.reason
    }

    /// The revision of the snapshot that decided; `0` when there was none.
    pub const fn revision(&self) -> u64 {
        self.revision
    }

    /// Whether the target's own policy is in audit mode (`"enforce": false` in the document).
    ///
    /// Only a denial by that policy ([`Reason::NotListed`], [`Reason::NothingConfigured`])
    /// is let through because of it: a target's document cannot speak for callers of other
    /// tenants or for APIs that do not exist. See
    /// [`CrossApiLayer::with_enforcement`](crate::CrossApiLayer::with_enforcement).
    pub const fn is_audited(&self) -> bool {
        self.audited
    }

    /// Whether a layer in `enforcement` lets this denial through as a `would_deny`.
    ///
    /// Never for an allowed call (it needs no leniency) nor for [`Reason::NoSnapshot`]
    /// (nothing to judge against: fail closed). A layer in [`Enforcement::Audit`] lets every
    /// other denial through; an enforcing layer only the denials of a target policy in audit
    /// mode, by that policy's own rule.
    ///
    /// ```
    /// use tower_cross_api::{ApiRef, Decision, Enforcement, Snapshot};
    ///
    /// let snapshot = Snapshot::from_json(r#"{ "revision": 1, "tenants": { "acme": {
    ///     "apis": ["orders", "billing"],
    ///     "cross_api_access": { "orders": { "allow": [], "enforce": false } }
    /// } } }"#)?;
    /// let billing: ApiRef = "acme/billing".parse()?;
    /// let orders: ApiRef = "acme/orders".parse()?;
    ///
    /// let decision = snapshot.decide(&billing, &orders);
    /// assert!(!decision.is_allowed());
    /// assert!(decision.would_pass(Enforcement::Enforce));
    /// assert!(!snapshot.decide(&orders, &billing).would_pass(Enforcement::Enforce));
    /// assert!(snapshot.decide(&orders, &billing).would_pass(Enforcement::Audit));
    /// assert!(!Decision::no_snapshot().would_pass(Enforcement::Audit));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub const fn would_pass(&self, enforcement: Enforcement) -> bool {
        if self.is_allowed() || matches!(self.reason, Reason::NoSnapshot) {
            return false;
        }

        match enforcement {
            Enforcement::Audit => true,
            Enforcement::Enforce => {
                self.audited && matches!(self.reason, Reason::NotListed | Reason::NothingConfigured)
            }
        }
    }

    /// `"allow"` or `"deny"`, for logs and metrics.
    pub const fn as_str(&self) -> &'static str {
        if self.is_allowed() { "allow" } else { "deny" }
    }
}

/// Whether a denial refuses the call or only reports it.
///
/// A layer enforces by default ([`CrossApiLayer::with_enforcement`](crate::CrossApiLayer)); a
/// target policy enforces unless its document says `"enforce": false`. In audit mode a call
/// that would be denied goes on to the target, marked with a [`WouldDeny`](crate::WouldDeny)
/// extension, logged at info as `would_deny` and counted. A malformed identity is refused in
/// both modes, and so is every call while no snapshot is in force.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Enforcement {
    /// Denials refuse the call.
    #[default]
    Enforce,
    /// Denials are reported and the call goes on.
    Audit,
}

impl Enforcement {
    /// `"enforce"` or `"audit"`, for logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Enforce => "enforce",
            Self::Audit => "audit",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_three_reasons_allow() {
        let allowing = [Reason::Listed, Reason::AllowAll, Reason::SameApi];
        let denying = [
            Reason::NotListed,
            Reason::NothingConfigured,
            Reason::OtherTenant,
            Reason::UnknownTenant,
            Reason::UnknownSource,
            Reason::UnknownTarget,
            Reason::NoSnapshot,
        ];

        assert!(allowing.iter().all(|reason| reason.is_allowed()));
        assert!(denying.iter().all(|reason| !reason.is_allowed()));
        assert_eq!(Decision::no_snapshot().as_str(), "deny");
        assert_eq!(Decision::new(Reason::Listed, 4).as_str(), "allow");
    }

    #[test]
    fn audit_never_passes_without_a_snapshot() {
        let audited = |reason| Decision::new(reason, 3).with_audited(true);

        assert!(!Decision::no_snapshot().would_pass(Enforcement::Audit));
        assert!(!Decision::no_snapshot().would_pass(Enforcement::Enforce));
        assert!(!audited(Reason::Listed).would_pass(Enforcement::Audit));
        assert!(audited(Reason::NotListed).would_pass(Enforcement::Enforce));
        assert!(audited(Reason::NothingConfigured).would_pass(Enforcement::Enforce));
        assert!(!audited(Reason::OtherTenant).would_pass(Enforcement::Enforce));
        assert!(!audited(Reason::UnknownSource).would_pass(Enforcement::Enforce));
        assert!(Decision::new(Reason::OtherTenant, 3).would_pass(Enforcement::Audit));
        assert!(!Decision::new(Reason::NotListed, 3).would_pass(Enforcement::Enforce));
    }
}
