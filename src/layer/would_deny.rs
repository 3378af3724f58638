//! The mark an audit-mode gate leaves on a call it would have denied.

use super::request_id::RequestId;
use crate::decision::{Decision, Enforcement};
use crate::id::ApiRef;

/// Inserted into the request's extensions when the gate lets a call through that it would
/// have denied, because the layer or the target's policy is in audit mode
/// ([`Enforcement::Audit`]). The target can read it to report or to act with care.
///
/// A call marked so carries no [`VerifiedSource`](crate::VerifiedSource): it did not pass the
/// gate, it was let by.
///
/// ```
/// use axum::Extension;
/// use tower_cross_api::WouldDeny;
///
/// async fn handler(would_deny: Option<Extension<WouldDeny>>) -> &'static str {
///     match would_deny {
///         Some(_) => "let through in audit mode",
///         None => "allowed, or end-user traffic",
///     }
/// }
/// # let _ = handler;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WouldDeny {
    source: ApiRef,
    target: Option<ApiRef>,
    decision: Decision,
    scope: Enforcement,
    request_id: RequestId,
}

impl WouldDeny {
    pub(crate) const fn new(
        source: ApiRef,
        target: Option<ApiRef>,
        decision: Decision,
        scope: Enforcement,
        request_id: RequestId,
    ) -> Self {
        Self {
            source,
            target,
            decision,
            scope,
            request_id,
        }
    }

    /// The caller.
    pub const fn source(&self) -> &ApiRef {
        &self.source
    }

    /// The target, when the request named one.
    pub const fn target(&self) -> Option<&ApiRef> {
        self.target.as_ref()
    }

    /// The denial that was not enforced, with its reason and revision.
    pub const fn decision(&self) -> Decision {
        self.decision
    }

    /// Whose audit mode let the call through: [`Enforcement::Audit`] when the layer's,
    /// [`Enforcement::Enforce`] when the layer enforces and the target's policy audits.
    pub const fn layer_enforcement(&self) -> Enforcement {
        self.scope
    }

    /// The correlation id of the `would_deny` log event.
    pub const fn request_id(&self) -> &RequestId {
        &self.request_id
    }
}
