//! The operator's side of the gateway: `GET /metrics`, and for tenant administrators and
//! staff, why a caller is or is not allowed (`explain`) and what audit mode learned
//! (`suggestion`).

use axum::extract::{Path, Query, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Deserialize;
use serde_json::{Value, json};
use tower_cross_api::{
    ApiId, ApiRef, AuditLearner, Enforcement, Explanation, TargetPolicy, TenantId,
};

use super::{AppState, DemoUser, Role};

/// What the operator's routes need beside the policies.
#[derive(Clone, Debug, Default)]
pub(crate) struct Operations {
    /// Renders the metrics the process recorded; `GET /metrics` answers 404 without it.
    pub(crate) metrics: Option<PrometheusHandle>,
    /// Remembers the callers let through in audit mode.
    pub(crate) learner: AuditLearner,
}

/// `GET /metrics`, `GET /admin/{tenant}/apis/{api}/cross-api-access/explain?source=<api>` and
/// `GET /admin/{tenant}/apis/{api}/cross-api-access/suggestion`.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/metrics", get(metrics))
        .route(
            "/admin/{tenant}/apis/{api}/cross-api-access/explain",
            get(explain),
        )
        .route(
            "/admin/{tenant}/apis/{api}/cross-api-access/suggestion",
            get(suggestion),
        )
}

async fn metrics(State(state): State<AppState>) -> Response {
    let Some(handle) = &state.operations.metrics else {
        return problem(StatusCode::NOT_FOUND, "Metrics are not recorded here.");
    };

    #[cfg(feature = "metrics")]
    tower_cross_api::metrics::record_snapshot(&state.policies);
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
struct ExplainQuery {
    source: Option<String>,
}

async fn explain(
    State(state): State<AppState>,
    Path((tenant, api)): Path<(String, String)>,
    Query(query): Query<ExplainQuery>,
    headers: HeaderMap,
) -> Response {
    let target = match authorize(&headers, &tenant, &api) {
        Ok(target) => target,
        Err(refused) => return refused.into_response(),
    };
    let Some(source) = query
        .source
        .as_deref()
        .and_then(|source| source_of(&target, source))
    else {
        return problem(
            StatusCode::BAD_REQUEST,
            "The query must name the caller: ?source=<api> or ?source=<tenant>/<api>.",
        );
    };

    let explanation = state.policies.explain(&source, &target);
    if explanation.policy().is_none() {
        return problem(StatusCode::NOT_FOUND, "No such API.");
    }
    Json(explanation_json(&explanation, state.enforcement)).into_response()
}

async fn suggestion(
    State(state): State<AppState>,
    Path((tenant, api)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let target = match authorize(&headers, &tenant, &api) {
        Ok(target) => target,
        Err(refused) => return refused.into_response(),
    };

    let learner = &state.operations.learner;
    let suggestion = state
        .policies
        .with_current(|snapshot| learner.suggest(snapshot?, &target));
    let Some(suggestion) = suggestion else {
        return problem(StatusCode::NOT_FOUND, "No such API.");
    };

    let added: Vec<Value> = suggestion
        .added()
        .iter()
        .map(|observation| {
            json!({
                "source": observation.source.as_str(),
                "calls": observation.calls,
                "last_seen_seconds_ago": observation.last_seen.as_secs(),
            })
        })
        .collect();
    Json(json!({
        "target": suggestion.target().to_string(),
        "revision": suggestion.revision(),
        "current": policy_json(suggestion.current(), suggestion.enforcement()),
        "proposed": suggestion.to_access_document(),
        "added": added,
        "window_seconds": suggestion.window().as_secs(),
        "applied": false,
    }))
    .into_response()
}

/// Why an operator's request was refused before any policy was read.
#[derive(Clone, Copy, Debug)]
enum Refused {
    NoUser,
    NotAnAdministrator,
    NoSuchApi,
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Self::NoUser => {
                let detail = "Send Authorization: Bearer <token>.";
                let mut response = problem(StatusCode::UNAUTHORIZED, detail);
                response
                    .headers_mut()
                    .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                response
            }
            Self::NotAnAdministrator => problem(
                StatusCode::FORBIDDEN,
                "Only the tenant's administrators and staff may ask for explanations and \
                 suggestions of its cross-API access.",
            ),
            Self::NoSuchApi => problem(StatusCode::NOT_FOUND, "No such API."),
        }
    }
}

/// The target named by the path, when the bearer may administer its tenant: the tenant's
/// administrators and staff. Anyone else gets 401 or 403, before the target is looked up.
fn authorize(headers: &HeaderMap, tenant: &str, api: &str) -> Result<ApiRef, Refused> {
    let token = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    let user = token.and_then(DemoUser::find).ok_or(Refused::NoUser)?;

    let allowed = match user.role {
        Role::Staff => true,
        Role::Administrator => user.tenant == Some(tenant),
        Role::Member => false,
    };
    if !allowed {
        return Err(Refused::NotAnAdministrator);
    }

    match (TenantId::new(tenant), ApiId::new(api)) {
        (Ok(tenant), Ok(api)) => Ok(ApiRef::new(tenant, api)),
        _ => Err(Refused::NoSuchApi),
    }
}

/// `api` (a sibling of `target`) or `tenant/api`.
fn source_of(target: &ApiRef, source: &str) -> Option<ApiRef> {
    match ApiId::new(source) {
        Ok(api) => Some(ApiRef::new(*target.tenant(), api)),
        Err(_) => source.parse().ok(),
    }
}

/// The explanation, with what this gateway's gate does with the call (`outcome`): a denial
/// of a target in audit mode, or any denial behind a gate in audit mode, is let through as
/// `would_deny`.
fn explanation_json(explanation: &Explanation, enforcement: Enforcement) -> Value {
    let decision = explanation.decision();
    let outcome = if decision.is_allowed() {
        "allow"
    } else if decision.would_pass(enforcement) {
        "would_deny"
    } else {
        "deny"
    };

    json!({
        "source": explanation.source().to_string(),
        "target": explanation.target().to_string(),
        "decision": decision.as_str(),
        "outcome": outcome,
        "reason": decision.reason().as_str(),
        "revision": explanation.revision(),
        "policy": explanation
            .policy()
            .zip(explanation.enforcement())
            .map(|(policy, enforcement)| policy_json(policy, enforcement)),
    })
}

fn policy_json(policy: &TargetPolicy, enforcement: Enforcement) -> Value {
    let (mode, allow) = match policy {
        TargetPolicy::NothingConfigured => ("nothing_configured", None),
        TargetPolicy::AllowAll => ("allow_all", None),
        TargetPolicy::List(listed) => (
            "list",
            Some(listed.iter().map(ApiId::as_str).collect::<Vec<_>>()),
        ),
    };

    json!({
        "mode": mode,
        "allow": allow,
        "enforcement": enforcement.as_str(),
        "summary": policy.summary(),
    })
}

fn problem(status: StatusCode, detail: &str) -> Response {
    let body = json!({
        "type": "about:blank",
        "title": status.canonical_reason(),
        "status": status.as_u16(),
        "detail": detail,
    });
    (
        status,
        [(CONTENT_TYPE, "application/problem+json")],
        body.to_string(),
    )
        .into_response()
}
