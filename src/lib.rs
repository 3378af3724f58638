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
//! policies.publish_json(r#"{ "tenants": { "acme": { "apis": ["orders", "billing"] } } }"#)?;
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
//! - [`EdgeLayer`] removes client-sent identity headers, look-alike spellings included, at
//!   the trust boundary.
//! - With the `mtls` feature, `SpiffeMapping` names the caller from the client certificate
//!   and the `tls` module inserts it into every request of the connection.
//!
//! # Operating the gate
//!
//! - **Audit mode** ([`Enforcement::Audit`]), per layer or per target (`"enforce": false` in
//!   the document): a call that would be denied goes on, marked with [`WouldDeny`], logged
//!   at info as `would_deny` and counted. Malformed identity, unverified sources and calls
//!   without a snapshot are refused in both modes; a target's own audit mode covers only its
//!   own denials (not listed, nothing configured), never other tenants or unknown callers.
//! - **Learning**: an [`AuditLearner`] remembers, within a window and bounded memory, the
//!   callers let through, and proposes the explicit list that would have allowed them. It
//!   never applies anything.
//! - **Explain**: [`PolicyHandle::explain`] gives the decision, its reason and revision, and
//!   the target's policy and mode ([`Explanation`]).
//! - **Metrics** (feature `metrics`): [`metrics`] counts decisions by tenant, target, source,
//!   decision and reason, with names the snapshot does not know counted as `unknown`.
//! - **Refusals** carry a stable `code` and a correlation id ([`RequestId`], from
//!   `x-request-id` when sane) in the body, the response header and the log event;
//!   [`CrossApiLayer::with_denied_as_not_found`] answers denials with `404`.
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `file` | yes | [`source::FileSource`]: publish a policy file and follow its changes (tokio) |
//! | `postgres` | no | `source::PostgresStore`, `source::PostgresSource`: PostgreSQL shared by replicas |
//! | `mtls` | no | `SpiffeMapping` and `tls`: the caller from its client certificate (rustls) |
//! | `metrics` | no | `metrics`: decision counters and snapshot gauges through the `metrics` facade |
//!
//! # Security
//!
//! - **Header identity is only as good as the hop that set it.** Read the source from a header
//!   only behind an edge that removes every client-sent copy; otherwise use
//!   [`SourceIdentity::authenticated`] with a source authenticated by an earlier layer.
//! - **Certificates name the caller, headers only claim it.** Over mutual TLS, use
//!   [`SourceIdentity::authenticated`]: a verified client certificate names the source once
//!   per connection, an `x-source-api` that names another caller is a `403` logged at warn,
//!   and one without a certificate is a `403`, so an unauthenticated claim never turns
//!   end-user traffic into a linked call. A certificate that names no valid SPIFFE ID refuses
//!   every linked call of its connection ([`UnidentifiedPeer`]).
//! - **Fail closed.** A repeated, empty, non-ASCII or malformed identity header is a
//!   `400 Bad Request`; an unknown tenant, source or target, another tenant, or no snapshot
//!   yet is a `403 Forbidden`. Nothing is normalised into a valid name.
//! - **Refusals leak nothing.** Every `403` has the same body but for its `request_id`, with
//!   the code `cross_api.denied` whatever the reason; the reason is in the log, as structured
//!   fields (`tenant`, `source`, `target`, `decision`, `reason`, `revision`, `code`,
//!   `request_id`), never with header values or request data. A client-sent `x-request-id`
//!   that is not 1 to 64 bytes of `A-Z a-z 0-9 - _ . :` is replaced, never echoed.
//! - **Audit mode opens the gate.** A layer in [`Enforcement::Audit`] lets every policy
//!   denial through, other tenants included: use it to try a policy, not to run one. A
//!   target's `"enforce": false` is narrower and cannot open the target to other tenants.
//!
//! # Limitations
//!
//! - Deliberately not a user authorization layer: it decides between APIs only. The target's
//!   own rules must still check the end user.
//! - Publishing rebuilds the whole snapshot: cheap for thousands of APIs, seconds for millions.

pub mod admin;
mod decision;
mod edge;
mod id;
mod identity;
mod layer;
mod learn;
#[cfg(feature = "metrics")]
pub mod metrics;
mod policy;
pub mod source;
#[cfg(feature = "mtls")]
pub mod tls;

pub use decision::{Decision, Enforcement, Reason};
pub use edge::{Edge, EdgeLayer};
pub use id::{ApiId, ApiRef, IdError, MAX_ID_LEN, TenantId};
pub use identity::{
    AuthenticatedSource, HeaderFault, SourceFault, SourceIdentity, TargetIdentity,
    UnidentifiedPeer, VerifiedSource, X_SOURCE_API, X_TARGET_API,
};
#[cfg(feature = "mtls")]
pub use identity::{CertificateFault, CertificateMapping, SpiffeMapping, TrustDomainError};
pub use layer::{
    CrossApiLayer, CrossApiService, DENIED_DETAIL, NOT_FOUND_DETAIL, Refusal, Rejection, RequestId,
    ResponseFuture, WouldDeny, X_REQUEST_ID, problem_json,
};
pub use learn::{AuditLearner, Observation, Suggestion};
pub use policy::{
    AccessDocument, Explanation, MAX_REVISION, PolicyDocument, PolicyError, PolicyHandle, Rule,
    Snapshot, SnapshotSize, TargetPolicy, TenantDocument,
};

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
