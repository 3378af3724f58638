//! The example gateway's router, demo data and target service, apart from `main` so that
//! tests can serve the very same app.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{Path, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::json;
use tower_cross_api::{
    CrossApiLayer, EdgeLayer, Enforcement, PolicyHandle, SourceIdentity, TargetIdentity,
    VerifiedSource, WouldDeny, X_SOURCE_API,
};

#[path = "operations.rs"]
mod operations;

use operations::Operations;

#[path = "admin.rs"]
pub(crate) mod admin;

use admin::AdminBackend;

/// The demo policy: allow-all, an explicit list, an empty list and nothing configured.
pub(crate) const DEMO_POLICY: &str = r#"{
  "revision": 1,
  "tenants": {
    "acme": {
      "apis": ["orders", "billing", "crm", "reports"],
      "cross_api_access": {
        "orders":  { "allow": ["billing", "crm"] },
        "billing": { "allow_all": true },
        "crm":     { "allow": [] }
      }
    },
    "globex": {
      "apis": ["orders", "billing"],
      "cross_api_access": {
        "orders": { "allow": ["billing"] }
      }
    }
  }
}"#;

/// What a demo user is; the bearer token is the user's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// A member of a tenant, who may read some of its collections.
    Member,
    /// An administrator of a tenant, who may read all of its collections.
    Administrator,
    /// Platform staff: administers policies, reads no tenant's data.
    Staff,
}

/// A demo user.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DemoUser {
    pub(crate) name: &'static str,
    pub(crate) tenant: Option<&'static str>,
    pub(crate) role: Role,
    readable: &'static [&'static str],
}

/// The demo users, named by their bearer token.
pub(crate) const DEMO_USERS: [DemoUser; 5] = [
    DemoUser {
        name: "alice",
        tenant: Some("acme"),
        role: Role::Member,
        readable: &["c1", "public"],
    },
    DemoUser {
        name: "ada",
        tenant: Some("acme"),
        role: Role::Administrator,
        readable: &[],
    },
    DemoUser {
        name: "gus",
        tenant: Some("globex"),
        role: Role::Administrator,
        readable: &[],
    },
    DemoUser {
        name: "uma",
        tenant: Some("umbrella"),
        role: Role::Administrator,
        readable: &[],
    },
    DemoUser {
        name: "sam",
        tenant: None,
        role: Role::Staff,
        readable: &[],
    },
];

impl DemoUser {
    pub(crate) fn find(token: &str) -> Option<Self> {
        DEMO_USERS.into_iter().find(|user| user.name == token)
    }

    fn may_read(&self, tenant: &str, collection: &str) -> bool {
        match self.role {
            Role::Administrator => self.tenant == Some(tenant),
            Role::Member => self.tenant == Some(tenant) && self.readable.contains(&collection),
            Role::Staff => false,
        }
    }
}

/// The gateway's shared state.
#[derive(Clone, Debug)]
pub(crate) struct AppState {
    /// The policies the cross-API layer enforces.
    pub(crate) policies: PolicyHandle,
    /// How many requests reached the target's own service (behind the gate).
    pub(crate) target_calls: Arc<AtomicU64>,
    /// Where the administration API reads and writes policies.
    pub(crate) admin: AdminBackend,
    /// Whether the gate enforces its denials or only reports them.
    pub(crate) enforcement: Enforcement,
    /// Metrics and audit learning, for the operator's routes.
    pub(crate) operations: Operations,
}

impl Default for AppState {
    fn default() -> Self {
        Self::new(PolicyHandle::new())
    }
}

impl AppState {
    /// State over `policies`, administered read-only, with no target call counted yet.
    pub(crate) fn new(policies: PolicyHandle) -> Self {
        Self {
            admin: AdminBackend::File(policies.clone()),
            policies,
            target_calls: Arc::default(),
            enforcement: Enforcement::Enforce,
            operations: Operations::default(),
        }
    }

    /// Administers the policies in PostgreSQL through `store`.
    #[cfg(feature = "postgres")]
    pub(crate) fn with_store(mut self, store: Arc<tower_cross_api::source::PostgresStore>) -> Self {
        self.admin = AdminBackend::Postgres(store);
        self
    }
}

/// The gateway: `GET /{tenant}/{api}/collections/{collection}`, gated by cross-API access,
/// then by the target's own collection-level authorization; and the operator's routes.
pub(crate) fn app(state: AppState) -> Router {
    let gate = CrossApiLayer::new(state.policies.clone()).with_target(TargetIdentity::path());
    routes(state, gate)
}

/// The gateway over mutual TLS: the caller is the API named by the connection's client
/// certificate, and `x-source-api` is only a claim checked against it. The edge removes the
/// header's look-alikes before anything reads them; the target sees the verified caller in
/// its extension and in one `x-source-api` written by the gateway.
pub(crate) fn certificate_app(state: AppState) -> Router {
    let gate = CrossApiLayer::new(state.policies.clone())
        .with_source(SourceIdentity::authenticated())
        .with_target(TargetIdentity::path())
        .with_verified_header(X_SOURCE_API);

    routes(state, gate).layer(EdgeLayer::new().with_claims_kept())
}

/// The gateway's routes behind `gate`, which follows the state's enforcement and feeds its
/// audit learner.
fn routes(state: AppState, gate: CrossApiLayer) -> Router {
    let gate = gate
        .with_enforcement(state.enforcement)
        .with_learner(state.operations.learner.clone());

    Router::new()
        .route(
            "/{tenant}/{api}/collections/{collection}",
            get(read_collection),
        )
        .route_layer(gate)
        .merge(admin::routes())
        .merge(operations::routes())
        .with_state(state)
}

/// The target's own service: the end user must be allowed to read the collection.
async fn read_collection(
    State(state): State<AppState>,
    Path((tenant, api, collection)): Path<(String, String, String)>,
    source: Option<Extension<VerifiedSource>>,
    would_deny: Option<Extension<WouldDeny>>,
    headers: HeaderMap,
) -> Response {
    state.target_calls.fetch_add(1, Ordering::SeqCst);

    let token = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    let Some(user) = token.and_then(DemoUser::find) else {
        let problem = json!({
            "title": "Unauthorized",
            "status": 401,
            "detail": "The target requires a user: send Authorization: Bearer <token>.",
        });
        return (
            StatusCode::UNAUTHORIZED,
            [(WWW_AUTHENTICATE, "Bearer")],
            Json(problem),
        )
            .into_response();
    };

    if !user.may_read(&tenant, &collection) {
        let problem = json!({
            "title": "Forbidden",
            "status": 403,
            "detail": format!("User {} may not read the collection {collection}.", user.name),
        });
        return (StatusCode::FORBIDDEN, Json(problem)).into_response();
    }

    let caller = source
        .as_ref()
        .map(|Extension(source)| source.api().to_string());
    let revision = source.map(|Extension(source)| source.decision().revision());
    Json(json!({
        "tenant": tenant,
        "api": api,
        "collection": collection,
        "user": user.name,
        "caller": caller,
        "revision": revision,
        "would_deny": would_deny.map(|Extension(mark)| mark.decision().reason().as_str()),
    }))
    .into_response()
}
