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
use crate::decision::{Decision, Reason};
use crate::edge::{Folded, remove_folded};
use crate::id::ApiRef;
use crate::identity::{SourceFault, VerifiedSource};

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

        let verified = match self.gate.check(&parts) {
            Ok(verified) => verified,
            Err(refusal) => {
                let response = self
                    .gate
                    .rejection
                    .respond(&refusal, parts.headers)
                    .map(ResBody::from);
                return ResponseFuture::refused(response);
            }
        };

        if let Some(header) = &self.gate.verified_header {
            write_verified_header(&mut parts.headers, header, verified.as_ref());
        }
        if let Some(verified) = verified {
            parts.extensions.insert(verified);
        }

        ResponseFuture::inner(self.inner.call(Request::from_parts(parts, body)))
    }
}

impl Gate {
    /// The gate's whole judgement of one request head: `Ok(None)` for end-user traffic,
    /// `Ok(Some(_))` for an allowed linked call, `Err(_)` for a refusal. Logs one event.
    #[expect(
        clippy::result_large_err,
        reason = "identifiers are inline so that the request path never allocates; boxing the \
                  refusal would allocate on every refusal"
    )]
    fn check(&self, request: &Parts) -> Result<Option<VerifiedSource>, Refusal> {
        let source = match self.source.resolve(request) {
            Ok(Some(source)) => source,
            Ok(None) => return Ok(None),
            Err(fault) => return Err(self.refuse_source(fault)),
        };

        let target = match self.target.resolve(request) {
            Ok(target) => target,
            Err(fault) => {
                let header = self
                    .target
                    .header_name()
                    .cloned()
                    .unwrap_or(crate::X_TARGET_API);
                tracing::warn!(
                    source = %source,
                    header = %header,
                    fault = fault.as_str(),
                    "cross-API call refused: malformed target header"
                );
                return Err(Refusal::MalformedHeader { header, fault });
            }
        };

        let decision = match &target {
            Some(target) => self.policies.decide(&source, target),
            None => Decision::new(Reason::UnknownTarget, self.policies.revision().unwrap_or(0)),
        };
        log_decision(&source, target.as_ref(), decision);

        if decision.is_allowed() {
            Ok(Some(VerifiedSource::new(source, decision)))
        } else {
            Err(Refusal::Denied {
                source,
                target,
                decision,
            })
        }
    }

    fn refuse_source(&self, fault: SourceFault) -> Refusal {
        let header = self.source.header_name();
        match fault {
            SourceFault::Header(fault) => {
                tracing::warn!(
                    header = %header,
                    fault = fault.as_str(),
                    "cross-API call refused: malformed source header"
                );
                Refusal::MalformedHeader {
                    header: header.clone(),
                    fault,
                }
            }
            SourceFault::Contradiction {
                authenticated,
                claimed,
            } => {
                tracing::warn!(
                    tenant = %authenticated.tenant(),
                    source = %authenticated,
                    claimed = %claimed,
                    reason = fault.as_str(),
                    "cross-API call refused: the source header contradicts the authenticated source"
                );
                Refusal::UnverifiedSource { fault }
            }
            SourceFault::Unauthenticated { claimed } => {
                tracing::warn!(
                    tenant = %claimed.tenant(),
                    claimed = %claimed,
                    reason = fault.as_str(),
                    "cross-API call refused: a source header without an authenticated source"
                );
                Refusal::UnverifiedSource { fault }
            }
            SourceFault::UnidentifiedPeer { reason } => {
                tracing::warn!(
                    reason = fault.as_str(),
                    credentials = reason,
                    "cross-API call refused: the peer's credentials name no valid source"
                );
                Refusal::UnverifiedSource { fault }
            }
        }
    }
}

/// Leaves exactly one `header`, the verified source, or none on end-user traffic.
fn write_verified_header(
    headers: &mut HeaderMap,
    header: &Folded,
    verified: Option<&VerifiedSource>,
) {
    remove_folded(headers, header, false, |_| {});

    if let Some(verified) = verified {
        let value = HeaderValue::from_str(&verified.api().to_string())
            .expect("an API reference is always a valid header value");
        headers.insert(header.exact().clone(), value);
    }
}

fn log_decision(source: &ApiRef, target: Option<&ApiRef>, decision: Decision) {
    let tenant = target.unwrap_or(source).tenant();
    let target = tracing::field::display(OptionalApi(target));

    if decision.is_allowed() {
        tracing::debug!(
            tenant = %tenant,
            source = %source,
            target,
            decision = decision.as_str(),
            reason = decision.reason().as_str(),
            revision = decision.revision(),
            "cross-API call allowed"
        );
    } else {
        tracing::info!(
            tenant = %tenant,
            source = %source,
            target,
            decision = decision.as_str(),
            reason = decision.reason().as_str(),
            revision = decision.revision(),
            "cross-API call denied"
        );
    }
}

/// Displays an optional target as `-` when the request named none.
struct OptionalApi<'a>(Option<&'a ApiRef>);

impl std::fmt::Display for OptionalApi<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(api) => api.fmt(f),
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
