//! The administration API of the example gateway: read and change one target's cross-API
//! access, and read a tenant's audit trail. Callers are the demo users, named by their
//! bearer token.
//!
//! - `GET /admin/{tenant}/apis/{api}/cross-api-access`: the policy (with `"enforce": false`
//!   when the target is in audit mode), with an `ETag` carrying its revision.
//! - `PUT` on the same path, `{"allow_all": bool, "allow": [...]}` with an optional
//!   `If-Match`: the new policy.
//! - `GET /admin/{tenant}/audit`: the tenant's newest audit records.
//!
//! With the policy file as the source, the API is read-only: a file cannot take a write.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header::{ALLOW, AUTHORIZATION, CONTENT_TYPE, ETAG, IF_MATCH};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use tower_cross_api::admin::{Actor, AdminError, PolicyState};
use tower_cross_api::{ApiId, ApiRef, Enforcement, PolicyHandle, TenantId};

use super::{AppState, DemoUser, Role};

/// Where the administration API reads and writes policies.
#[derive(Clone, Debug)]
pub(crate) enum AdminBackend {
    /// The policy file (or the built-in demo policy): read-only.
    File(PolicyHandle),
    /// PostgreSQL: reads, writes and the audit trail.
    #[cfg(feature = "postgres")]
    Postgres(std::sync::Arc<tower_cross_api::source::PostgresStore>),
}

/// How many audit records one read returns at most.
#[cfg(feature = "postgres")]
const AUDIT_LIMIT: u32 = 100;

/// The administration routes, to merge into the gateway's router.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/admin/{tenant}/apis/{api}/cross-api-access",
            get(read_access).put(write_access),
        )
        .route("/admin/{tenant}/audit", get(read_audit))
}

/// The body of a `PUT`: the policy the target should have.
#[cfg(feature = "postgres")]
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AccessBody {
    allow_all: bool,
    #[serde(default, deserialize_with = "listed")]
    allow: Option<Vec<String>>,
}

/// `allow`, when written, as a list: `null` is refused, not read as no list.
#[cfg(feature = "postgres")]
fn listed<'de, D>(deserializer: D) -> Result<Option<Vec<String>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    serde::Deserialize::deserialize(deserializer).map(Some)
}

async fn read_access(
    State(state): State<AppState>,
    Path((tenant, api)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let actor = actor(&headers);
    let Some(target) = target(&tenant, &api) else {
        return not_found(&tenant, Some(&api));
    };

    let read = match &state.admin {
        AdminBackend::File(policies) => match policies.snapshot() {
            Some(snapshot) => PolicyState::read(&snapshot, &actor, &target).map_err(refusal),
            None => Err(unavailable("No policy snapshot is loaded yet.")),
        },
        #[cfg(feature = "postgres")]
        AdminBackend::Postgres(store) => store.read(&actor, &target).await.map_err(database),
    };
    match read {
        Ok(policy) => policy_response(&policy),
        Err(response) => response,
    }
}

async fn write_access(
    State(state): State<AppState>,
    Path((tenant, api)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match &state.admin {
        AdminBackend::File(_) => {
            let _ = (tenant, api, headers, body);
            read_only()
        }
        #[cfg(feature = "postgres")]
        AdminBackend::Postgres(store) => write_to(store, &tenant, &api, &headers, &body).await,
    }
}

/// Checks the actor, the `If-Match` and the body, then writes through the store, which checks
/// the rest in its transaction.
#[cfg(feature = "postgres")]
async fn write_to(
    store: &tower_cross_api::source::PostgresStore,
    tenant: &str,
    api: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    use tower_cross_api::admin::{Change, Write};

    let actor = actor(headers);
    let Some(target) = target(tenant, api) else {
        return not_found(tenant, Some(api));
    };
    if !actor.may_change(target.tenant()) {
        return refusal(AdminError::Forbidden {
            actor: actor.name().to_owned(),
            tenant: *target.tenant(),
        });
    }
    let precondition = if_match(headers);
    if precondition == Precondition::Unmatchable {
        return problem(
            StatusCode::PRECONDITION_FAILED,
            String::from("If-Match must be one ETag of the policy, such as \"12\", or *."),
            json!({}),
        );
    }
    let body: AccessBody = match serde_json::from_slice(body) {
        Ok(body) => body,
        Err(error) => return problem(StatusCode::BAD_REQUEST, error.to_string(), json!({})),
    };

    let change = match Change::from_access(body.allow_all, body.allow.as_deref()) {
        Ok(change) => change,
        Err(error) => return refusal(error),
    };
    let mut write = Write::new(actor, target, change);
    if let Precondition::Revision(expected) = precondition {
        write = write.with_expected(expected);
    }
    match store.write(&write).await {
        Ok(written) => policy_response(&written.state),
        Err(error) => database(error),
    }
}

async fn read_audit(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    let actor = actor(&headers);
    let Ok(tenant_id) = TenantId::new(&tenant) else {
        return not_found(&tenant, None);
    };

    let records: Vec<tower_cross_api::admin::AuditRecord> = match &state.admin {
        AdminBackend::File(policies) => {
            if !actor.may_audit(&tenant_id) {
                return refusal(AdminError::Forbidden {
                    actor: actor.name().to_owned(),
                    tenant: tenant_id,
                });
            }
            if !policies.with_current(|s| s.is_some_and(|s| s.contains_tenant(&tenant_id))) {
                return not_found(&tenant, None);
            }
            Vec::new()
        }
        #[cfg(feature = "postgres")]
        AdminBackend::Postgres(store) => match store.audit(&actor, &tenant_id, AUDIT_LIMIT).await {
            Ok(records) => records,
            Err(error) => return database(error),
        },
    };
    Json(json!({ "tenant": tenant, "records": records })).into_response()
}

/// The demo user named by `Authorization: Bearer <token>`, as an actor; anybody else is
/// unknown.
fn actor(headers: &HeaderMap) -> Actor {
    let token = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    let Some(user) = token.and_then(DemoUser::find) else {
        return Actor::Unknown;
    };

    let tenant = user.tenant.and_then(|tenant| TenantId::new(tenant).ok());
    match (user.role, tenant) {
        (Role::Administrator, Some(tenant)) => Actor::administrator(user.name, tenant),
        (Role::Member, Some(tenant)) => Actor::member(user.name, tenant),
        (Role::Staff, _) => Actor::staff(user.name),
        _ => Actor::Unknown,
    }
}

fn target(tenant: &str, api: &str) -> Option<ApiRef> {
    Some(ApiRef::new(
        TenantId::new(tenant).ok()?,
        ApiId::new(api).ok()?,
    ))
}

/// What a write's `If-Match` asks for.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Precondition {
    /// No `If-Match`, or `*`: whatever revision is in force.
    Any,
    /// One strong entity tag, `"<revision>"`: that revision only.
    Revision(u64),
    /// Anything else, a second `If-Match` line included: no revision can match it.
    Unmatchable,
}

/// Reads `If-Match` strictly: exactly one header line holding `*` or one strong entity tag
/// of decimal digits as the `ETag` writes them (no sign, no leading zero). Several lines
/// form a list, which a write against one revision cannot honour, so they match nothing
/// rather than being read as no precondition.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
fn if_match(headers: &HeaderMap) -> Precondition {
    let mut values = headers.get_all(IF_MATCH).iter();
    let value = match (values.next(), values.next()) {
        (None, _) => return Precondition::Any,
        (Some(value), None) => value.to_str().unwrap_or_default().trim(),
        (Some(_), Some(_)) => return Precondition::Unmatchable,
    };

    if value == "*" {
        return Precondition::Any;
    }
    value
        .strip_prefix('"')
        .and_then(|value| value.strip_suffix('"'))
        .filter(|digits| !digits.is_empty() && digits.bytes().all(|byte| byte.is_ascii_digit()))
        .filter(|digits| *digits == "0" || !digits.starts_with('0'))
        .and_then(|digits| digits.parse().ok())
        .map_or(Precondition::Unmatchable, Precondition::Revision)
}

fn policy_response(policy: &PolicyState) -> Response {
    let mut body = json!({
        "allow_all": policy.allow_all(),
        "allow": policy.allow(),
        "revision": policy.revision(),
        "summary": policy.summary(),
    });
    if policy.enforcement() == Enforcement::Audit {
        body["enforce"] = json!(false);
    }
    let etag = HeaderValue::from_str(&format!("\"{}\"", policy.revision()));

    let mut response = Json(body).into_response();
    if let Ok(etag) = etag {
        response.headers_mut().insert(ETAG, etag);
    }
    response
}

/// The answer to a refused administrative act, naming the check or rule that refused it.
fn refusal(error: AdminError) -> Response {
    let status = match &error {
        AdminError::Forbidden { .. } => StatusCode::FORBIDDEN,
        AdminError::UnknownTenant { .. } | AdminError::UnknownTarget { .. } => {
            StatusCode::NOT_FOUND
        }
        AdminError::Stale { .. } => StatusCode::PRECONDITION_FAILED,
        AdminError::Rule { .. } | AdminError::NotListed { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let mut extra = json!({ "reason": error.reason() });
    if let AdminError::Rule { rule } = &error {
        extra["rule"] = json!(rule.name());
    }
    if let AdminError::Stale { current, .. } = &error {
        extra["revision"] = json!(current);
    }
    problem(status, error.to_string(), extra)
}

#[cfg(feature = "postgres")]
fn database(error: tower_cross_api::source::PostgresError) -> Response {
    match error {
        tower_cross_api::source::PostgresError::Admin(error) => refusal(error),
        other => {
            tracing::error!(error = %other, "policy database request failed");
            unavailable("The policy database is unavailable; try again.")
        }
    }
}

fn unavailable(detail: &str) -> Response {
    problem(
        StatusCode::SERVICE_UNAVAILABLE,
        detail.to_owned(),
        json!({}),
    )
}

fn not_found(tenant: &str, api: Option<&str>) -> Response {
    let detail = match api {
        Some(api) => format!("There is no API {tenant}/{api}."),
        None => format!("There is no tenant {tenant}."),
    };
    problem(StatusCode::NOT_FOUND, detail, json!({}))
}

fn read_only() -> Response {
    let mut response = problem(
        StatusCode::METHOD_NOT_ALLOWED,
        String::from(
            "Policies are read-only here: they come from a policy file or the built-in demo \
             data. Change the file, or run the gateway with --database-url to administer them \
             through this API.",
        ),
        json!({}),
    );
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static("GET"));
    response
}

/// An RFC 9457 problem with `extra` members.
fn problem(status: StatusCode, detail: String, extra: Value) -> Response {
    let mut body = json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail,
    });
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }

    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    response
}
