//! [`CrossApiLayer`], the [`CrossApiService`] it wraps around a target, its
//! [`ResponseFuture`], and the [`Rejection`] it answers refused requests with.
//!
//! Nothing here knows files or databases.

mod future;
mod rejection;
mod request_id;
mod service;
mod would_deny;

use std::sync::Arc;

use http::header::HeaderName;
use tower_layer::Layer;

pub use future::ResponseFuture;
pub use rejection::{DENIED_DETAIL, NOT_FOUND_DETAIL, Refusal, Rejection, problem_json};
pub use request_id::{RequestId, X_REQUEST_ID};
pub use service::CrossApiService;
pub use would_deny::WouldDeny;

use crate::decision::Enforcement;
use crate::edge::Folded;
use crate::identity::{SourceIdentity, TargetIdentity};
use crate::learn::AuditLearner;
use crate::policy::PolicyHandle;

/// Decides, before the target's own authorization runs, whether the calling API may call the
/// target API.
///
/// For each request the layer reads the source and the target ([`SourceIdentity`],
/// [`TargetIdentity`]), then:
///
/// - no source: end-user traffic, passed to the inner service untouched;
/// - a malformed identity header: `400 Bad Request`, naming the header;
/// - a denial on the current snapshot: `403 Forbidden` whose `detail` is
///   `Source API is not authorized to call the target API.`;
/// - an allow: a [`VerifiedSource`](crate::VerifiedSource) extension is inserted and the inner
///   service is called.
///
/// A refused request never reaches the inner service. The defaults read `x-source-api` and
/// `x-target-api`.
///
/// ```
/// use axum::{Router, routing::get};
/// use tower_cross_api::{CrossApiLayer, PolicyHandle, TargetIdentity};
///
/// let policies = PolicyHandle::new();
/// policies.publish_json(r#"{ "tenants": { "acme": {
///     "apis": ["orders", "billing"],
///     "cross_api_access": { "orders": { "allow": ["billing"] } }
/// } } }"#)?;
///
/// let app: Router = Router::new()
///     .route("/{tenant}/{api}/collections/{collection}", get(|| async { "data" }))
///     .layer(CrossApiLayer::new(policies).with_target(TargetIdentity::path()));
/// # Ok::<(), tower_cross_api::PolicyError>(())
/// ```
#[derive(Clone, Debug)]
pub struct CrossApiLayer {
    gate: Arc<Gate>,
}

/// What every service of one layer shares.
#[derive(Clone, Debug)]
pub(crate) struct Gate {
    pub(crate) policies: PolicyHandle,
    pub(crate) source: SourceIdentity,
    pub(crate) target: TargetIdentity,
    pub(crate) rejection: Rejection,
    pub(crate) verified_header: Option<Folded>,
    pub(crate) enforcement: Enforcement,
    pub(crate) denied_as_not_found: bool,
    pub(crate) learner: Option<AuditLearner>,
}

impl CrossApiLayer {
    /// A layer that decides on the snapshots `policies` publishes, reading `x-source-api` and
    /// `x-target-api`.
    pub fn new(policies: PolicyHandle) -> Self {
        Self {
            gate: Arc::new(Gate {
                policies,
                source: SourceIdentity::default(),
                target: TargetIdentity::default(),
                rejection: Rejection::default(),
                verified_header: None,
                enforcement: Enforcement::Enforce,
                denied_as_not_found: false,
                learner: None,
            }),
        }
    }

    /// Where the source is read.
    pub fn with_source(self, source: SourceIdentity) -> Self {
        self.with_gate(|gate| gate.source = source)
    }

    /// Where the target is read.
    pub fn with_target(self, target: TargetIdentity) -> Self {
        self.with_gate(|gate| gate.target = target)
    }

    /// How refused requests are answered, in place of [`problem_json`].
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http::{Response, StatusCode};
    /// use tower_cross_api::{CrossApiLayer, PolicyHandle, Rejection};
    ///
    /// let rejection = Rejection::new(|refusal| {
    ///     let mut response = Response::new(Bytes::from_static(b"no"));
    ///     *response.status_mut() = refusal.status();
    ///     response
    /// });
    /// let layer = CrossApiLayer::new(PolicyHandle::new()).with_rejection(rejection);
    /// # let _ = layer;
    /// ```
    pub fn with_rejection(self, rejection: Rejection) -> Self {
        self.with_gate(|gate| gate.rejection = rejection)
    }

    /// After the gate, writes the verified source into `header` as `<tenant>/<api>`, for an
    /// inner service that reads a header rather than the [`VerifiedSource`] extension.
    ///
    /// Every copy and look-alike spelling of `header` the request still carries is removed
    /// first (`_`, `.`, `-` and case folded), on end-user traffic too: the inner service sees
    /// the header once, written by the gateway, and only on an allowed linked call.
    ///
    /// ```
    /// use tower_cross_api::{CrossApiLayer, PolicyHandle, SourceIdentity, X_SOURCE_API};
    ///
    /// let layer = CrossApiLayer::new(PolicyHandle::new())
    ///     .with_source(SourceIdentity::authenticated())
    ///     .with_verified_header(X_SOURCE_API);
    /// # let _ = layer;
    /// ```
    ///
    /// [`VerifiedSource`]: crate::VerifiedSource
    pub fn with_verified_header(self, header: HeaderName) -> Self {
        self.with_gate(|gate| gate.verified_header = Some(Folded::new(header)))
    }

    /// Whether the layer enforces its denials (the default) or only reports them.
    ///
    /// In [`Enforcement::Audit`], a call that would be denied goes on to the target with a
    /// [`WouldDeny`] extension (and no [`VerifiedSource`](crate::VerifiedSource)), is logged at
    /// info as `would_deny` with the whole decision, and counted. That covers every denial
    /// made on a snapshot: not listed, nothing configured, another tenant, an unknown tenant,
    /// source or target. It never covers, and so still refuses:
    ///
    /// - a malformed identity header (`400`), in either mode;
    /// - a source header that contradicts or lacks the authenticated source, or a peer whose
    ///   credentials name no valid source (`403`);
    /// - any call while no snapshot is in force: there is nothing to judge against.
    ///
    /// An enforcing layer still honours a target policy in audit mode (`"enforce": false` in
    /// its document), for that policy's own denials only: not listed, nothing configured. A
    /// tenant's document cannot open its API to other tenants or to unknown callers.
    ///
    /// ```
    /// use tower_cross_api::{CrossApiLayer, Enforcement, PolicyHandle};
    ///
    /// let layer = CrossApiLayer::new(PolicyHandle::new()).with_enforcement(Enforcement::Audit);
    /// # let _ = layer;
    /// ```
    pub fn with_enforcement(self, enforcement: Enforcement) -> Self {
        self.with_gate(|gate| gate.enforcement = enforcement)
    }

    /// Answer denied calls as if the target did not exist: `404 Not Found` with
    /// [`Refusal::DeniedAsNotFound`], in place of `403`. Malformed identity stays `400`, and
    /// an unverified source stays `403` (it is refused before any target is looked at).
    ///
    /// Unknown and existing targets are then answered alike. For the 404 to match the host's
    /// own, set a [`Rejection`] that writes the host's not-found body.
    ///
    /// ```
    /// use tower_cross_api::{CrossApiLayer, PolicyHandle};
    ///
    /// let layer = CrossApiLayer::new(PolicyHandle::new()).with_denied_as_not_found(true);
    /// # let _ = layer;
    /// ```
    pub fn with_denied_as_not_found(self, not_found: bool) -> Self {
        self.with_gate(|gate| gate.denied_as_not_found = not_found)
    }

    /// Remember the callers let through in audit mode, so that `learner` can propose the
    /// explicit lists that would have allowed them; see [`AuditLearner`].
    pub fn with_learner(self, learner: AuditLearner) -> Self {
        self.with_gate(|gate| gate.learner = Some(learner))
    }

    /// The handle the layer reads its snapshots from.
    pub fn policies(&self) -> &PolicyHandle {
        &self.gate.policies
    }

    fn with_gate(self, change: impl FnOnce(&mut Gate)) -> Self {
        let mut gate = Arc::unwrap_or_clone(self.gate);
        change(&mut gate);
        Self {
            gate: Arc::new(gate),
        }
    }
}

impl<S> Layer<S> for CrossApiLayer {
    type Service = CrossApiService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CrossApiService::new(inner, self.gate.clone())
    }
}
