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
//! Counting a decision between two APIs of the snapshot builds no labels and hashes nothing:
//! each snapshot keeps the counter key (labels and hash) of the pairs and outcomes it counts,
//! in a fixed table of four slots per API (64 to 4096), and hands it to the recorder in force,
//! whichever that is at the time. Counting allocates nothing of its own; what remains is the
//! recorder's (the Prometheus exporter's, for one, wraps each handle it returns in a new
//! `Arc`). A decision naming something the snapshot does not know, or a pair whose slot
//! another pair took, has its key built each time, with label values made once per snapshot.
//!
//! The gauges are set by [`record_snapshot`], which a host calls when it exports (at scrape
//! time for Prometheus); [`FileSource`](crate::source::FileSource) also calls it at each check.

use std::cell::Cell;
use std::sync::{Arc, OnceLock};

use ::metrics::{Key, Label, Level, Metadata, SharedString};

use crate::id::{ApiRef, TenantId};
use crate::policy::{PolicyHandle, Positions, Snapshot};

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

/// Counts one decision, with label values bounded by `snapshot`. A decision between two APIs
/// the snapshot found (`positions`) is counted under the key the snapshot keeps for its pair
/// and outcome ([`Counters`]); any other under a key built for it.
pub(crate) fn count(
    snapshot: Option<&Snapshot>,
    positions: Option<Positions>,
    source: Option<&ApiRef>,
    target: Option<&ApiRef>,
    decision: &'static str,
    reason: &'static str,
) {
    let labels = || labels(snapshot, source, target, decision, reason);

    match snapshot.zip(positions) {
        Some((snapshot, positions)) => {
            let outcome = Outcome {
                positions,
                decision,
                reason,
            };
            snapshot.counters().increment(outcome, labels);
        }
        None => increment_with(labels()),
    }
}

/// The labels of one decision. Kept out of line: the request path needs them only for a key
/// it has not kept.
#[inline(never)]
fn labels(
    snapshot: Option<&Snapshot>,
    source: Option<&ApiRef>,
    target: Option<&ApiRef>,
    decision: &'static str,
    reason: &'static str,
) -> [Label; 5] {
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

    [
        Label::new("tenant", tenant),
        Label::new("target", target),
        Label::new("source", source),
        Label::new("decision", SharedString::const_str(decision)),
        Label::new("reason", SharedString::const_str(reason)),
    ]
}

/// Counts one decision under `labels`, in a label list this thread keeps and reuses.
#[inline(never)]
fn increment_with(labels: [Label; 5]) {
    let mut list = LABELS.take();
    list.extend(labels);
    let key = Key::from_parts(DECISIONS, list);

    increment(&key);

    let (_, mut list) = key.into_parts();
    list.clear();
    LABELS.set(list);
}

/// Counts one decision under `key`, with the recorder in force.
fn increment(key: &Key) {
    ::metrics::with_recorder(|recorder| recorder.register_counter(key, &METADATA)).increment(1);
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

/// One decision as a counter tells it apart: the pair, by position in one snapshot, and the
/// decision and reason labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Outcome {
    positions: Positions,
    decision: &'static str,
    reason: &'static str,
}

impl Outcome {
    /// The slot of a table of `1 << bits` slots: the top bits of a multiplicative hash, which
    /// every bit of the key reaches.
    fn slot(&self, bits: u32) -> usize {
        let Positions { target, source } = self.positions;
        let labels = (self.decision.len() << 5) ^ self.reason.len();
        let key = (u64::from(target) << 40) ^ (u64::from(source) << 8) ^ labels as u64;

        match bits {
            0 => 0,
            bits => (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - bits)) as usize,
        }
    }
}

/// The counter keys of one snapshot's pairs: the labels of a pair and outcome, and their hash,
/// made the first time it is counted and kept, so that counting it again builds no labels and
/// hashes nothing before the recorder in force looks the key up.
///
/// The table has a fixed number of slots, made on the first count: four per API, from 64 up
/// to 4096. A slot belongs to the first outcome that lands in it until the next snapshot; an
/// outcome whose slot is taken has its key built each time. Keys, not the recorder's handles,
/// are kept: a handle belongs to the recorder that made it, and no recorder in force (global,
/// or local to a thread, or replaced) can be told apart from one gone before it.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    bits: u32,
    slots: OnceLock<Box<[OnceLock<Kept>]>>,
}

/// A key a slot keeps, with the outcome it counts.
#[derive(Debug)]
struct Kept {
    outcome: Outcome,
    key: Key,
}

/// The fewest and the most slots of a snapshot's table, as powers of two.
const SLOT_BITS: std::ops::RangeInclusive<u32> = 6..=12;

impl Counters {
    /// A table for a snapshot of `apis` APIs, not yet made.
    pub(crate) fn new(apis: usize) -> Self {
        let wanted = apis
            .saturating_mul(4)
            .max(1)
            .next_power_of_two()
            .trailing_zeros();

        Self {
            bits: wanted.clamp(*SLOT_BITS.start(), *SLOT_BITS.end()),
            slots: OnceLock::new(),
        }
    }

    /// Counts `outcome` once, under the kept key when its slot holds it, and otherwise under
    /// `labels`.
    fn increment(&self, outcome: Outcome, labels: impl Fn() -> [Label; 5]) {
        let slots = self.slots.get_or_init(|| {
            std::iter::repeat_with(OnceLock::new)
                .take(1 << self.bits)
                .collect()
        });

        let kept = slots.get(outcome.slot(self.bits)).map(|slot| {
            slot.get_or_init(|| Kept {
                outcome,
                key: Key::from_parts(DECISIONS, Vec::from(labels())),
            })
        });
        match kept {
            Some(kept) if kept.outcome == outcome => increment(&kept.key),
            _ => increment_with(labels()),
        }
    }
}

impl Clone for Counters {
    /// An empty table of the same size: keys are the snapshot's own.
    fn clone(&self) -> Self {
        Self {
            bits: self.bits,
            slots: OnceLock::new(),
        }
    }
}
