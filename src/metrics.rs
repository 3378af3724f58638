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
//! Counting a decision between two APIs of the snapshot costs one table lookup: each snapshot
//! keeps the counter handles of the pairs and outcomes it counts, in a fixed table of four
//! slots per API (64 to 4096), each registered with the recorder the first time, so that
//! counting allocates nothing and hashes no labels, even
//! under a recorder that allocates per registration as the Prometheus exporter's does. A
//! decision naming something the snapshot does not know, a pair whose slot another pair took,
//! and a decision counted under another recorder than the one its handle came from (a
//! recorder installed after the first decisions on a snapshot, until the next snapshot) are
//! registered each time instead, with label values built once per snapshot: slower, never
//! miscounted.
//!
//! The gauges are set by [`record_snapshot`], which a host calls when it exports (at scrape
//! time for Prometheus); [`FileSource`](crate::source::FileSource) also calls it at each check.

use std::cell::Cell;
use std::sync::{Arc, OnceLock};

use ::metrics::{Counter, Key, Label, Level, Metadata, Recorder, SharedString};

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
/// the snapshot found (`positions`) is counted through the handle the snapshot keeps for its
/// pair and outcome ([`Counters`]); any other is registered with the recorder each time.
pub(crate) fn count(
    snapshot: Option<&Snapshot>,
    positions: Option<Positions>,
    source: Option<&ApiRef>,
    target: Option<&ApiRef>,
    decision: &'static str,
    reason: &'static str,
) {
    let register = || register(snapshot, source, target, decision, reason);

    match snapshot.zip(positions) {
        Some((snapshot, positions)) => {
            let outcome = Outcome {
                positions,
                decision,
                reason,
            };
            snapshot.counters().increment(outcome, register);
        }
        None => register().increment(1),
    }
}

/// Registers the decision counter of these labels with the recorder in force.
fn register(
    snapshot: Option<&Snapshot>,
    source: Option<&ApiRef>,
    target: Option<&ApiRef>,
    decision: &'static str,
    reason: &'static str,
) -> Counter {
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

    let counter = ::metrics::with_recorder(|recorder| recorder.register_counter(&key, &METADATA));

    let (_, mut labels) = key.into_parts();
    labels.clear();
    LABELS.set(labels);
    counter
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
pub(crate) struct Outcome {
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

/// The decision counters of one snapshot, each registered with the recorder the first time
/// its pair and outcome is counted and then incremented through its handle: no labels built,
/// no key hashed, nothing allocated (a recorder such as the Prometheus exporter's allocates a
/// handle per registration).
///
/// The table has a fixed number of slots, made on the first count: four per API, from 64 up
/// to 4096. A slot belongs to the first outcome that lands in it until the next snapshot; an
/// outcome whose slot is taken, or that is counted under another recorder than the one its
/// handle came from (a recorder installed after the first decisions, a thread's local
/// recorder), is registered each time, as every decision was before handles were kept.
/// Recorders are told apart by address, which two live recorders that hold any state never
/// share.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    bits: u32,
    slots: OnceLock<Box<[OnceLock<Kept>]>>,
}

/// A counter handle a slot keeps, with what it counts and the recorder it came from.
#[derive(Debug)]
struct Kept {
    outcome: Outcome,
    recorder: usize,
    counter: Counter,
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

    /// Counts `outcome` once, through the kept handle when its slot holds it, and otherwise
    /// through a handle `register` makes.
    fn increment(&self, outcome: Outcome, register: impl Fn() -> Counter) {
        let recorder = ::metrics::with_recorder(address);
        let slots = self.slots.get_or_init(|| {
            std::iter::repeat_with(OnceLock::new)
                .take(1 << self.bits)
                .collect()
        });

        let kept = slots.get(outcome.slot(self.bits)).map(|slot| {
            slot.get_or_init(|| Kept {
                outcome,
                recorder,
                counter: register(),
            })
        });
        match kept {
            Some(kept) if kept.outcome == outcome && kept.recorder == recorder => {
                kept.counter.increment(1);
            }
            _ => register().increment(1),
        }
    }
}

impl Clone for Counters {
    /// An empty table of the same size: handles are the snapshot's own.
    fn clone(&self) -> Self {
        Self {
            bits: self.bits,
            slots: OnceLock::new(),
        }
    }
}

/// The address of a recorder, which tells it from every other live recorder.
fn address(recorder: &dyn Recorder) -> usize {
    std::ptr::from_ref(recorder).cast::<()>().addr()
}
