//! Decision counters and snapshot gauges through the [`metrics`] facade (feature `metrics`).
//!
//! A host installs any recorder (Prometheus, OpenTelemetry, statsd) and reads:
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | [`DECISIONS`] `cross_api_decisions_total` | counter | `tenant`, `target`, `source`, `decision`, `reason` |
//! | [`SNAPSHOT_REVISION`] `cross_api_snapshot_revision` | gauge | none |
//! | [`SNAPSHOT_AGE`] `cross_api_snapshot_age_seconds` | gauge | none |
//!
//! - `decision` is `allow`, `deny` or `would_deny` (let through in audit mode).
//! - `reason` is a [`Reason`](crate::Reason) name such as `not_listed`, or `malformed_header`
//!   and `unverified_source` for refusals made before any policy was read.
//! - `tenant` is the target's tenant; `target` and `source` are `<tenant>/<api>`.
//!
//! **Cardinality is bounded by the snapshot**: a tenant, target or source the snapshot in
//! force does not know is counted as `unknown`, so a caller sending garbage names adds no
//! series. The number of series is at most (APIs + 1)² × 3 decisions × 12 reasons, and in
//! practice the pairs that really call each other.
//!
//! Label values for known names are built once per snapshot, the first time a decision names
//! them; counting a decision then clones reference-counted strings into a label list that each thread keeps
//! and reuses, so that counting allocates nothing of its own: what remains is the recorder's
//! (the Prometheus exporter's recorder, for one, wraps each handle it returns in a new `Arc`).
//!
//! The gauges are set by [`record_snapshot`], which a host calls when it exports (at scrape
//! time for Prometheus); [`FileSource`](crate::source::FileSource) also calls it at each check.

use std::cell::Cell;
use std::sync::{Arc, OnceLock};

use ::metrics::{Key, Label, Level, Metadata, SharedString};

use crate::id::{ApiRef, TenantId};
use crate::policy::{PolicyHandle, Snapshot};

/// The counter of decisions: `cross_api_decisions_total`.
pub const DECISIONS: &str = "cross_api_decisions_total";

/// The gauge of the revision in force (`0` before the first): `cross_api_snapshot_revision`.
pub const SNAPSHOT_REVISION: &str = "cross_api_snapshot_revision";

/// The gauge of the seconds since the snapshot in force was published (`-1` before the
/// first): `cross_api_snapshot_age_seconds`.
pub const SNAPSHOT_AGE: &str = "cross_api_snapshot_age_seconds";

/// The label value of a name the snapshot does not know.
pub const UNKNOWN: &str = "unknown";

/// Sets the snapshot gauges from `policies`.
///
/// ```
/// use metrics_util::debugging::DebuggingRecorder;
/// use tower_cross_api::{PolicyHandle, metrics};
///
/// let recorder = DebuggingRecorder::new();
/// let snapshotter = recorder.snapshotter();
/// let policies = PolicyHandle::new();
/// policies.publish_json(r#"{ "revision": 9, "tenants": {} }"#)?;
///
/// ::metrics::with_local_recorder(&recorder, || metrics::record_snapshot(&policies));
/// let revision = snapshotter
///     .snapshot()
///     .into_vec()
///     .into_iter()
///     .find(|(key, ..)| key.key().name() == metrics::SNAPSHOT_REVISION);
/// assert!(revision.is_some());
/// # Ok::<(), tower_cross_api::PolicyError>(())
/// ```
pub fn record_snapshot(policies: &PolicyHandle) {
    let revision = policies.revision().unwrap_or(0);
    let age = policies.age().map_or(-1.0, |age| age.as_secs_f64());

    ::metrics::gauge!(SNAPSHOT_REVISION).set(revision as f64);
    ::metrics::gauge!(SNAPSHOT_AGE).set(age);
}

/// Counts one decision, with label values bounded by `snapshot`.
pub(crate) fn count(
    snapshot: Option<&Snapshot>,
    source: Option<&ApiRef>,
    target: Option<&ApiRef>,
    decision: &'static str,
    reason: &'static str,
) {
    let unknown = || SharedString::const_str(UNKNOWN);
    let known = |label: Option<&Arc<str>>| label.map_or_else(unknown, |label| label.clone().into());

    let (tenant, target, source) = match snapshot {
        Some(snapshot) => (
            known(target.and_then(|target| snapshot.tenant_label(target.tenant()))),
            known(target.and_then(|target| snapshot.api_label(target))),
            known(source.and_then(|source| snapshot.api_label(source))),
        ),
        None => (unknown(), unknown(), unknown()),
    };

    let mut labels = LABELS.take();
    labels.extend([
        Label::new("tenant", tenant),
        Label::new("target", target),
        Label::new("source", source),
        Label::new("decision", SharedString::const_str(decision)),
        Label::new("reason", SharedString::const_str(reason)),
    ]);
    let key = Key::from_parts(DECISIONS, labels);

    ::metrics::with_recorder(|recorder| recorder.register_counter(&key, &METADATA)).increment(1);

    let (_, mut labels) = key.into_parts();
    labels.clear();
    LABELS.set(labels);
}

/// Where the decision counter comes from, as the facade's macros would describe it.
static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

thread_local! {
    /// The label list of the decision counter's key, kept empty between decisions so that its
    /// capacity is reused: the facade's `Key` owns its labels, and hands them back.
    static LABELS: Cell<Vec<Label>> = const { Cell::new(Vec::new()) };
}

/// The label values of one snapshot's names, one slot per tenant and per API, each made the
/// first time a decision names it: a snapshot of a million APIs costs 24 bytes per API here
/// until its APIs are counted, and only the APIs that are counted get a string.
#[derive(Clone, Debug, Default)]
pub(crate) struct Labels {
    tenants: Vec<OnceLock<Arc<str>>>,
    apis: Vec<OnceLock<Arc<str>>>,
}

impl Labels {
    pub(crate) fn new(tenants: usize, apis: usize) -> Self {
        Self {
            tenants: std::iter::repeat_with(OnceLock::new)
                .take(tenants)
                .collect(),
            apis: std::iter::repeat_with(OnceLock::new).take(apis).collect(),
        }
    }

    /// The label of the tenant at `position`, which is `tenant`.
    pub(crate) fn tenant(&self, position: usize, tenant: &TenantId) -> Option<&Arc<str>> {
        let slot = self.tenants.get(position)?;
        Some(slot.get_or_init(|| Arc::from(tenant.as_str())))
    }

    /// The label of the API at `position`, which is `api`.
    pub(crate) fn api(&self, position: usize, api: &ApiRef) -> Option<&Arc<str>> {
        let slot = self.apis.get(position)?;
        Some(slot.get_or_init(|| Arc::from(api.to_string())))
    }
}
