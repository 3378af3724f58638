//! Cross-API access control for tower and axum services: which APIs of a tenant may call which.
//!
//! A tenant owns several APIs. When one of them (the *source*) calls another (the *target*)
//! through the gateway, the target decides whether that source may call it, before any
//! end-user authorization runs. [`CrossApiLayer`] makes that decision on every request:
//!
//! - nothing configured means nobody may call the target;
//! - a target allows every API of its tenant, current and future, or lists the siblings it
//!   allows, never both, never itself, never an API of another tenant;
//! - a refused call gets `403 Forbidden` with `Source API is not authorized to call the target
//!   API.` and never reaches the target;
//! - an allowed call goes on to the target's own rules with a [`VerifiedSource`] attached:
//!   passing the gate grants no data by itself;
//! - a request with no source identity is end-user traffic and passes untouched.
//!
//! # Example
//!
//! ```
//! use axum::{Router, routing::get};
//! use tower_cross_api::{CrossApiLayer, PolicyHandle, TargetIdentity};
//!
//! let policies = PolicyHandle::new();
//! policies.publish_json(r#"{
//!     "tenants": { "acme": {
//!         "apis": ["orders", "billing", "crm"],
//!         "cross_api_access": {
//!             "orders":  { "allow": ["billing"] },
//!             "billing": { "allow_all": true }
//!         }
//!     } }
//! }"#)?;
//!
//! let app: Router = Router::new()
//!     .route("/{tenant}/{api}/collections/{collection}", get(|| async { "data" }))
//!     .layer(CrossApiLayer::new(policies.clone()).with_target(TargetIdentity::path()));
//!
//! // Later, from anywhere: publish a new revision. Requests read it at once, lock-free.
//! policies.publish_json(r#"{ "tenants": { "acme": { "apis": ["orders", "billing", "crm"] } } }"#)?;
//! # Ok::<(), tower_cross_api::PolicyError>(())
//! ```
//!
//! # How it fits together
//!
//! - [`PolicyDocument`] is the JSON a file or an administrator writes; validation turns it
//!   into an immutable [`Snapshot`], and only validation makes one.
//! - [`PolicyHandle`] holds the snapshot in force behind an `arc_swap` pointer. Requests
//!   load it without waiting; the host publishes new revisions, which must grow. A refused
//!   document leaves the snapshot in force.
//! - [`Snapshot::decide`] is the pure check, a [`Decision`] with its [`Reason`]: two hash
//!   probes, no allocation, no lock.
//! - [`admin`] changes one target's policy for an [`admin::Actor`]: only the tenant's
//!   administrators and platform staff may, every write is checked against the contract's rules
//!   and the revision it was based on, and every accepted change is an [`admin::AuditRecord`].
//! - [`SourceIdentity`] and [`TargetIdentity`] say where the layer reads the two ends of a
//!   call: headers, an [`AuthenticatedSource`] extension, the path, or a fixed target.
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `file` | yes | [`source::FileSource`]: publish a policy file and follow its changes (tokio) |
//! | `postgres` | no | `source::PostgresStore`, `source::PostgresSource`: PostgreSQL shared by replicas |
//!
//! # Security
//!
//! - **Header identity is only as good as the hop that set it.** Read the source from a header
//!   only behind an edge that removes every client-sent copy; otherwise use
//!   [`SourceIdentity::authenticated`] with a source authenticated by an earlier layer.
//! - **Fail closed.** A repeated, empty, non-ASCII or malformed identity header is a
//!   `400 Bad Request`; an unknown tenant, source or target, another tenant, or no snapshot
//!   yet is a `403 Forbidden`. Nothing is normalised into a valid name.
//! - **Refusals leak nothing.** Every `403` has the same body; the reason is in the log, as
//!   structured fields (`tenant`, `source`, `target`, `decision`, `reason`, `revision`), never
//!   with header values or request data.
//!
//! # Limitations
//!
//! - Deliberately not a user authorization layer: it decides between APIs only. The target's
//!   own rules must still check the end user.
//! - Publishing rebuilds the whole snapshot: cheap for thousands of APIs, seconds for millions.

pub mod admin;
mod decision;
mod id;
mod identity;
mod layer;
mod policy;
pub mod source;

pub use decision::{Decision, Reason};
pub use id::{ApiId, ApiRef, IdError, MAX_ID_LEN, TenantId};
pub use identity::{
    AuthenticatedSource, HeaderFault, SourceFault, SourceIdentity, TargetIdentity, VerifiedSource,
    X_SOURCE_API, X_TARGET_API,
};
pub use layer::{
    CrossApiLayer, CrossApiService, DENIED_DETAIL, Refusal, Rejection, ResponseFuture, problem_json,
};
pub use policy::{
    AccessDocument, PolicyDocument, PolicyError, PolicyHandle, Rule, Snapshot, SnapshotSize,
    TargetPolicy, TenantDocument,
};
