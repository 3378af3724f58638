//! [`CrossApiLayer`], the [`CrossApiService`] it wraps around a target, its
//! [`ResponseFuture`], and the [`Rejection`] it answers refused requests with.
//!
//! Nothing here knows files or databases.

mod future;
mod rejection;
mod service;

use std::sync::Arc;

use http::header::HeaderName;
use tower_layer::Layer;

pub use future::ResponseFuture;
pub use rejection::{DENIED_DETAIL, Refusal, Rejection, problem_json};
pub use service::CrossApiService;

use crate::edge::Folded;
use crate::identity::{SourceIdentity, TargetIdentity};
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
