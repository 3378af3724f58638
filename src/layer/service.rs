//! [`CrossApiService`]: the gate in front of one inner service.

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Request, Response};
use tower_service::Service;

use super::Gate;
use super::future::ResponseFuture;
use super::rejection::Refusal;
use super::request_id::RequestId;
use super::would_deny::WouldDeny;
use crate::decision::{Decision, Enforcement, Reason};
use crate::edge::{Folded, remove_folded};
use crate::id::ApiRef;
use crate::identity::{SourceFault, VerifiedSource};
use crate::policy::{Positions, Snapshot};

/// The service [`CrossApiLayer`](super::CrossApiLayer) wraps around a target's service.
///
/// `poll_ready` is the inner service's; `call` decides at once and either calls the inner
/// service (the one that was made ready) or answers without it. The response body type
/// must be buildable from [`Bytes`] for refusals, as `axum::body::Body` and
/// `http_body_util::Full<Bytes>` are.
#[derive(Clone, Debug)]
pub struct CrossApiService<S> {
    inner: S,
    gate: Arc<Gate>,
}

impl<S> CrossApiService<S> {
    pub(crate) const fn new(inner: S, gate: Arc<Gate>) -> Self {
        Self { inner, gate }
    }

    /// The inner service.
    pub const fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, without the gate.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for CrossApiService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: From<Bytes>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let (mut parts, body) = request.into_parts();

        if let Some(refusal) = self.gate.check(&mut parts) {
            let response = self
                .gate
                .rejection
                .respond(&refusal, parts.headers)
                .map(ResBody::from);
            return ResponseFuture::refused(response);
        }

        ResponseFuture::inner(self.inner.call(Request::from_parts(parts, body)))
    }
}

impl Gate {
    /// The gate's whole judgement of one request head, on one load of the snapshot: the
    /// refusal, or `None` for a request that passes, which is marked in place (its verified
    /// source, or its would-be denial) so that passing moves no API reference. Not a `Result`:
    /// a refusal holds its API references inline, so that the request path never allocates.
    /// Logs one event and counts one decision.
    fn check(&self, request: &mut Parts) -> Option<Refusal> {
        let resolved = self.source.resolve(request);
        let source = match &resolved {
            Ok(Some(source)) => source,
            Ok(None) => {
                self.mark(request, None);
                return None;
            }
            Err(fault) => return Some(self.refuse_source(request, *fault)),
        };

        let target = match self.target.resolve(request) {
            Ok(target) => target,
            Err(fault) => {
                let header = self
                    .target
                    .header_name()
                    .cloned()
                    .unwrap_or(crate::X_TARGET_API);
                let request_id = RequestId::from_headers(&request.headers);
                tracing::warn!(
                    tenant = %source.tenant(),
                    source = %source,
                    target = "-",
                    reason = "malformed_header",
                    header = %header,
                    fault = fault.as_str(),
                    code = "cross_api.malformed_header",
                    request_id = %request_id,
                    "cross-API call refused: malformed target header"
                );
                self.policies.with_current(|snapshot| {
                    count(
                        snapshot,
                        None,
                        Some(source),
                        None,
                        "deny",
                        "malformed_header",
                    );
                });
                return Some(Refusal::MalformedHeader {
                    header,
                    fault,
                    request_id,
                });
            }
        };

        self.policies
            .with_current(|snapshot| self.judge(request, snapshot, source, target.as_ref()))
    }

    /// Marks a request that passes with its verified source, as an extension and, when asked,
    /// as the one verified header; `None` (end-user traffic, a call let through in audit
    /// mode) leaves neither, not even a [`VerifiedSource`] an earlier gate attached for
    /// another target.
    fn mark(&self, request: &mut Parts, verified: Option<VerifiedSource>) {
        if let Some(header) = &self.verified_header {
            write_verified_header(&mut request.headers, header, verified.as_ref());
        }
        match verified {
            Some(verified) => request.extensions.insert(verified),
            None => request.extensions.remove::<VerifiedSource>(),
        };
    }

    /// Decides a linked call on `snapshot` and acts on the decision.
    fn judge(
        &self,
        request: &mut Parts,
        snapshot: Option<&Snapshot>,
        source: &ApiRef,
        target: Option<&ApiRef>,
    ) -> Option<Refusal> {
        let (decision, positions) = match (snapshot, target) {
            (None, _) => (Decision::no_snapshot(), None),
            (Some(snapshot), Some(target)) => snapshot.decide_located(source, target),
            (Some(snapshot), None) => (
                Decision::new(Reason::UnknownTarget, snapshot.revision()),
                None,
            ),
        };
        let reason = decision.reason().as_str();
        let count_as = |outcome| count(snapshot, positions, Some(source), target, outcome, reason);

        if decision.is_allowed() {
            log_allowed(source, target, decision);
            count_as("allow");
            self.mark(request, Some(VerifiedSource::new(*source, decision)));
            return None;
        }

        let request_id = RequestId::from_headers(&request.headers);
        if decision.would_pass(self.enforcement) {
            let would_deny = WouldDeny::new(
                *source,
                target.copied(),
                decision,
                self.enforcement,
                request_id,
            );
            log_would_deny(&would_deny);
            count_as("would_deny");
            if let (Some(learner), Some(target)) = (&self.learner, target) {
                learner.record(source, target, decision.reason());
            }
            self.mark(request, None);
            request.extensions.insert(would_deny);
            return None;
        }

        let (source, target) = (*source, target.copied());
        let refusal = if self.denied_as_not_found {
            Refusal::DeniedAsNotFound {
                source,
                target,
                decision,
                request_id,
            }
        } else {
            Refusal::Denied {
                source,
                target,
                decision,
                request_id,
            }
        };
        log_denied(&source, target.as_ref(), decision, &refusal);
        count_as("deny");
        Some(refusal)
    }

    fn refuse_source(&self, request: &Parts, fault: SourceFault) -> Refusal {
        let header = self.source.header_name();
        let request_id = RequestId::from_headers(&request.headers);
        let target = self.target.resolve(request).ok().flatten();
        let tenant = target.as_ref().map(|target| *target.tenant());
        let (tenant, target) = (Optional(tenant.as_ref()), Optional(target.as_ref()));

        let refusal = match fault {
            SourceFault::Header(fault) => {
                tracing::warn!(
                    tenant = %tenant,
                    source = "-",
                    target = %target,
                    reason = "malformed_header",
                    header = %header,
                    fault = fault.as_str(),
                    code = "cross_api.malformed_header",
                    request_id = %request_id,
                    "cross-API call refused: malformed source header"
                );
                Refusal::MalformedHeader {
                    header: header.clone(),
                    fault,
                    request_id,
                }
            }
            SourceFault::Contradiction {
                authenticated,
                claimed,
            } => {
                tracing::warn!(
                    tenant = %authenticated.tenant(),
                    source = %authenticated,
                    target = %target,
                    claimed = %claimed,
                    reason = fault.as_str(),
                    code = "cross_api.denied",
                    request_id = %request_id,
                    "cross-API call refused: the source header contradicts the authenticated source"
                );
                Refusal::UnverifiedSource { fault, request_id }
            }
            SourceFault::Unauthenticated { claimed } => {
                tracing::warn!(
                    tenant = %claimed.tenant(),
                    source = "-",
                    target = %target,
                    claimed = %claimed,
                    reason = fault.as_str(),
                    code = "cross_api.denied",
                    request_id = %request_id,
                    "cross-API call refused: a source header without an authenticated source"
                );
                Refusal::UnverifiedSource { fault, request_id }
            }
            SourceFault::UnidentifiedPeer { reason } => {
                tracing::warn!(
                    tenant = %tenant,
                    source = "-",
                    target = %target,
                    reason = fault.as_str(),
                    credentials = reason,
                    code = "cross_api.denied",
                    request_id = %request_id,
                    "cross-API call refused: the peer's credentials name no valid source"
                );
                Refusal::UnverifiedSource { fault, request_id }
            }
        };

        let reason = match refusal {
            Refusal::MalformedHeader { .. } => "malformed_header",
            _ => "unverified_source",
        };
        self.policies
            .with_current(|snapshot| count(snapshot, None, None, None, "deny", reason));
        refusal
    }
}

/// Leaves exactly one `header`, the verified source, or none on end-user traffic and on calls
/// let through in audit mode.
fn write_verified_header(
    headers: &mut HeaderMap,
    header: &Folded,
    verified: Option<&VerifiedSource>,
) {
    remove_folded(headers, header, false, |_| {});

    let value = verified.and_then(|verified| {
        let reference = verified.api();
        reference.with_bytes(|bytes| HeaderValue::from_bytes(bytes).ok())
    });
    if let Some(value) = value {
        headers.insert(header.exact().clone(), value);
    }
}

/// Counts one decision when the `metrics` feature is on; nothing otherwise.
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
fn count(
    snapshot: Option<&Snapshot>,
    positions: Option<Positions>,
    source: Option<&ApiRef>,
    target: Option<&ApiRef>,
    decision: &'static str,
    reason: &'static str,
) {
    #[cfg(feature = "metrics")]
    crate::metrics::count(snapshot, positions, source, target, decision, reason);
}

fn log_allowed(source: &ApiRef, target: Option<&ApiRef>, decision: Decision) {
    let tenant = target.unwrap_or(source).tenant();

    tracing::debug!(
        tenant = %tenant,
        source = %source,
        target = %Optional(target),
        decision = decision.as_str(),
        reason = decision.reason().as_str(),
        revision = decision.revision(),
        "cross-API call allowed"
    );
}

fn log_denied(source: &ApiRef, target: Option<&ApiRef>, decision: Decision, refusal: &Refusal) {
    let tenant = target.unwrap_or(source).tenant();

    tracing::info!(
        tenant = %tenant,
        source = %source,
        target = %Optional(target),
        decision = decision.as_str(),
        reason = decision.reason().as_str(),
        revision = decision.revision(),
        status = refusal.status().as_u16(),
        code = refusal.code(),
        request_id = %refusal.request_id(),
        "cross-API call denied"
    );
}

fn log_would_deny(would_deny: &WouldDeny) {
    let source = would_deny.source();
    let target = would_deny.target();
    let decision = would_deny.decision();
    let mode = match would_deny.layer_enforcement() {
        Enforcement::Audit => "layer",
        Enforcement::Enforce => "target",
    };

    tracing::info!(
        tenant = %target.unwrap_or(source).tenant(),
        source = %source,
        target = %Optional(target),
        decision = "would_deny",
        reason = decision.reason().as_str(),
        revision = decision.revision(),
        audit = mode,
        request_id = %would_deny.request_id(),
        "cross-API call would be denied; let through in audit mode"
    );
}

/// Displays an optional name as `-` when the request gave none.
struct Optional<'a, T>(Option<&'a T>);

impl<T: std::fmt::Display> std::fmt::Display for Optional<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(name) => name.fmt(f),
            None => f.write_str("-"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use http::{HeaderName, HeaderValue};
    use tower::ServiceExt;

    use crate::{CrossApiLayer, PolicyHandle, TargetIdentity, X_SOURCE_API};

    use super::*;

    /// The `x-source-api` values the inner service sees, in order, or `None` when refused.
    async fn seen(headers: &[(&str, &str)]) -> Option<Vec<String>> {
        let policies = PolicyHandle::new();
        policies
            .publish_json(
                r#"{ "tenants": { "t1": {
                "apis": ["orders", "billing"],
                "cross_api_access": { "orders": { "allow": ["billing"] } }
            } } }"#,
            )
            .expect("policy");
        let layer = CrossApiLayer::new(policies)
            .with_target(TargetIdentity::path())
            .with_verified_header(X_SOURCE_API);
        let inner = tower::service_fn(|request: Request<()>| async move {
            let values: Vec<String> = request
                .headers()
                .iter()
                .filter(|(name, _)| name.as_str().replace(['_', '.'], "-") == "x-source-api")
                .map(|(_, value)| value.to_str().unwrap_or("?").to_owned())
                .collect();
            Ok::<_, Infallible>(Response::new(Bytes::from(values.join(","))))
        });

        let mut request = Request::get("/t1/orders/c1").body(()).expect("request");
        for (name, value) in headers {
            let name = HeaderName::from_bytes(name.as_bytes()).expect("name");
            request
                .headers_mut()
                .append(name, HeaderValue::from_str(value).expect("value"));
        }
        let response = tower_layer::Layer::layer(&layer, inner)
            .oneshot(request)
            .await
            .expect("infallible");

        let allowed = response.status().is_success();
        let body = String::from_utf8(response.into_body().to_vec()).expect("UTF-8");
        allowed.then(|| {
            body.split(',')
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
                .collect()
        })
    }

    #[tokio::test]
    async fn verified_header_is_written_once_after_the_gate() {
        let allowed = seen(&[
            ("x-source-api", "t1/billing"),
            ("x_source_api", "t1/orders"),
        ])
        .await;
        assert_eq!(allowed, Some(vec!["t1/billing".to_owned()]));

        let end_user = seen(&[("x.source.api", "t1/billing")]).await;
        assert_eq!(end_user, Some(vec![]));

        let denied = seen(&[("x-source-api", "t1/orders")]).await;
        assert_eq!(
            denied,
            Some(vec!["t1/orders".to_owned()]),
            "same API is not cross-API"
        );

        assert_eq!(seen(&[("x-source-api", "t2/billing")]).await, None);
    }
}
