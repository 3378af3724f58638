//! Learning from audit mode: the explicit list that would have allowed the callers seen.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::decision::{Enforcement, Reason};
use crate::id::{ApiId, ApiRef};
use crate::policy::{AccessDocument, Snapshot, TargetPolicy};

/// Remembers, per target, the sibling APIs whose calls an audit-mode gate let through
/// ([`WouldDeny`](crate::WouldDeny)) over a sliding window, and proposes the explicit list
/// that would have allowed them. It never applies anything: an administrator reads the
/// [`Suggestion`] and publishes it, or not.
///
/// Memory is bounded: at most [`with_max_targets`](Self::with_max_targets) targets and
/// [`with_max_sources`](Self::with_max_sources) callers per target; when full, the entry seen
/// least recently gives way. Only denials a list can cure are learned
/// ([`Reason::NotListed`], [`Reason::NothingConfigured`]): a caller of another tenant or one
/// the snapshot does not know can never be listed.
///
/// ```
/// use tower_cross_api::{AuditLearner, CrossApiLayer, Enforcement, PolicyHandle};
///
/// let policies = PolicyHandle::new();
/// let learner = AuditLearner::new();
/// let layer = CrossApiLayer::new(policies.clone())
///     .with_enforcement(Enforcement::Audit)
///     .with_learner(learner.clone());
///
/// // Later: what would have allowed the calls seen in the last day?
/// policies.publish_json(r#"{ "tenants": { "acme": { "apis": ["orders", "billing"] } } }"#)?;
/// let suggestion = policies
///     .with_current(|snapshot| learner.suggest(snapshot?, &"acme/orders".parse().ok()?));
/// assert_eq!(suggestion.map(|s| s.proposed().len()), Some(0));
/// # let _ = layer;
/// # Ok::<(), tower_cross_api::PolicyError>(())
/// ```
#[derive(Clone)]
pub struct AuditLearner {
    shared: Arc<Shared>,
}

struct Shared {
    window: Duration,
    max_targets: usize,
    max_sources: usize,
    seen: Mutex<HashMap<ApiRef, HashMap<ApiId, Seen>>>,
}

/// How often, and when, one caller was seen by one target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Seen {
    calls: u64,
    last: Instant,
}

/// A caller a [`Suggestion`] proposes to list, and how often it called within the window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observation {
    /// The caller.
    pub source: ApiId,
    /// How many of its calls would have been denied, within the window.
    pub calls: u64,
    /// How long before the suggestion its last such call was.
    pub last_seen: Duration,
}

/// What an [`AuditLearner`] proposes for one target; see [`AuditLearner::suggest`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suggestion {
    target: ApiRef,
    revision: u64,
    current: TargetPolicy,
    enforcement: Enforcement,
    proposed: Vec<ApiId>,
    added: Vec<Observation>,
    window: Duration,
}

impl Suggestion {
    /// The target.
    pub const fn target(&self) -> &ApiRef {
        &self.target
    }

    /// The revision of the snapshot the suggestion was made against.
    pub const fn revision(&self) -> u64 {
        self.revision
    }

    /// The target's policy in that snapshot.
    pub const fn current(&self) -> &TargetPolicy {
        &self.current
    }

    /// Whether the target's policy enforces or audits in that snapshot.
    pub const fn enforcement(&self) -> Enforcement {
        self.enforcement
    }

    /// The proposed explicit list, in name order: the current list and every caller seen.
    /// Empty when the target allows all (nothing to add) and nothing was seen.
    pub fn proposed(&self) -> &[ApiId] {
        &self.proposed
    }

    /// The callers seen that the current policy does not allow, most calls first.
    pub fn added(&self) -> &[Observation] {
        &self.added
    }

    /// The window the callers were seen in.
    pub const fn window(&self) -> Duration {
        self.window
    }

    /// The proposal as the policy of the target in a document, keeping its mode: allow-all
    /// stays allow-all, anything else becomes the proposed list.
    pub fn to_access_document(&self) -> AccessDocument {
        let enforce = self.enforcement == Enforcement::Enforce;
        match self.current {
            TargetPolicy::AllowAll => AccessDocument {
                allow_all: true,
                allow: None,
                enforce,
            },
            TargetPolicy::NothingConfigured | TargetPolicy::List(_) => AccessDocument {
                allow_all: false,
                allow: Some(self.proposed.iter().map(ToString::to_string).collect()),
                enforce,
            },
        }
    }
}

impl AuditLearner {
    /// A learner with a window of 24 hours, for up to 1024 targets of up to 128 callers each.
    pub fn new() -> Self {
        Self::with_limits(Duration::from_secs(24 * 60 * 60), 1024, 128)
    }

    fn with_limits(window: Duration, max_targets: usize, max_sources: usize) -> Self {
        Self {
            shared: Arc::new(Shared {
                window,
                max_targets,
                max_sources,
                seen: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// How far back callers are remembered.
    ///
    /// Like every `with_` method here it makes a new, empty learner: configure it before
    /// handing clones to a layer.
    pub fn with_window(self, window: Duration) -> Self {
        Self::with_limits(window, self.shared.max_targets, self.shared.max_sources)
    }

    /// How many targets are remembered at most (at least one).
    pub fn with_max_targets(self, max_targets: usize) -> Self {
        Self::with_limits(
            self.shared.window,
            max_targets.max(1),
            self.shared.max_sources,
        )
    }

    /// How many callers per target are remembered at most (at least one).
    pub fn with_max_sources(self, max_sources: usize) -> Self {
        Self::with_limits(
            self.shared.window,
            self.shared.max_targets,
            max_sources.max(1),
        )
    }

    /// Records a call the gate let through in audit mode. Called by the layer; a host calls
    /// it only for decisions it enforces itself.
    pub fn record(&self, source: &ApiRef, target: &ApiRef, reason: Reason) {
        self.record_at(source, target, reason, Instant::now());
    }

    pub(crate) fn record_at(&self, source: &ApiRef, target: &ApiRef, reason: Reason, at: Instant) {
        let curable = matches!(reason, Reason::NotListed | Reason::NothingConfigured);
        if !curable || source.tenant() != target.tenant() {
            return;
        }

        let shared = &self.shared;
        let mut seen = shared.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if !seen.contains_key(target) && seen.len() >= shared.max_targets {
            seen.retain(|_, sources| {
                sources
                    .retain(|_, entry| at.saturating_duration_since(entry.last) <= shared.window);
                !sources.is_empty()
            });
            if seen.len() >= shared.max_targets {
                evict_oldest(&mut seen, latest);
            }
        }

        let sources = seen.entry(*target).or_default();
        if !sources.contains_key(source.api()) && sources.len() >= shared.max_sources {
            sources.retain(|_, entry| at.saturating_duration_since(entry.last) <= shared.window);
            if sources.len() >= shared.max_sources {
                evict_oldest(sources, |entry| Some(entry.last));
            }
        }
        let entry = sources
            .entry(*source.api())
            .or_insert(Seen { calls: 0, last: at });
        entry.calls = entry.calls.saturating_add(1);
        entry.last = entry.last.max(at);
    }

    /// The explicit list that would have allowed every caller of `target` seen within the
    /// window, against `snapshot`; `None` when the snapshot does not know the target.
    ///
    /// The proposal keeps the current list (callers are only added, never removed), leaves
    /// out callers the snapshot no longer knows, and leaves allow-all as it is.
    pub fn suggest(&self, snapshot: &Snapshot, target: &ApiRef) -> Option<Suggestion> {
        self.suggest_at(snapshot, target, Instant::now())
    }

    pub(crate) fn suggest_at(
        &self,
        snapshot: &Snapshot,
        target: &ApiRef,
        now: Instant,
    ) -> Option<Suggestion> {
        let current = snapshot.policy(target)?;
        let enforcement = snapshot.enforcement(target)?;

        let mut added: Vec<Observation> = {
            let seen = self
                .shared
                .seen
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            seen.get(target)
                .into_iter()
                .flatten()
                .filter(|(_, entry)| {
                    now.saturating_duration_since(entry.last) <= self.shared.window
                })
                .filter(|(source, _)| {
                    let source = ApiRef::new(*target.tenant(), **source);
                    !snapshot.decide(&source, target).is_allowed() && snapshot.contains(&source)
                })
                .map(|(source, entry)| Observation {
                    source: *source,
                    calls: entry.calls,
                    last_seen: now.saturating_duration_since(entry.last),
                })
                .collect()
        };
        added.sort_by(|a, b| b.calls.cmp(&a.calls).then_with(|| a.source.cmp(&b.source)));

        let mut proposed: Vec<ApiId> = match &current {
            TargetPolicy::List(listed) => listed.clone(),
            TargetPolicy::NothingConfigured | TargetPolicy::AllowAll => Vec::new(),
        };
        proposed.extend(added.iter().map(|observation| observation.source));
        proposed.sort_unstable();
        proposed.dedup();

        Some(Suggestion {
            target: *target,
            revision: snapshot.revision(),
            current,
            enforcement,
            proposed,
            added,
            window: self.shared.window,
        })
    }

    /// How many (target, caller) pairs are remembered now.
    pub fn len(&self) -> usize {
        let seen = self
            .shared
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        seen.values().map(HashMap::len).sum()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn latest(sources: &HashMap<ApiId, Seen>) -> Option<Instant> {
    sources.values().map(|entry| entry.last).max()
}

/// Removes the entry whose `last` is the oldest.
fn evict_oldest<K: Copy + Eq + std::hash::Hash, V>(
    map: &mut HashMap<K, V>,
    last: impl Fn(&V) -> Option<Instant>,
) {
    let oldest = map
        .iter()
        .min_by_key(|(_, value)| last(value))
        .map(|(key, _)| *key);
    if let Some(key) = oldest {
        map.remove(&key);
    }
}

impl Default for AuditLearner {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for AuditLearner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditLearner")
            .field("window", &self.shared.window)
            .field("max_targets", &self.shared.max_targets)
            .field("max_sources", &self.shared.max_sources)
            .field("remembered", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"{"revision":5,"tenants":{
        "t1":{"apis":["orders","billing","crm","reports"],"cross_api_access":{
            "orders":{"allow":["billing"],"enforce":false},
            "reports":{"allow_all":true}
        }},
        "t2":{"apis":["orders"]}
    }}"#;

    fn api(value: &str) -> ApiRef {
        value.parse().expect("api reference")
    }

    fn id(value: &str) -> ApiId {
        ApiId::new(value).expect("api id")
    }

    #[test]
    fn proposes_the_current_list_and_the_callers_seen_in_the_window() {
        let snapshot = Snapshot::from_json(POLICY).expect("valid");
        let learner = AuditLearner::new().with_window(Duration::from_secs(60));
        let start = Instant::now();
        let at = |seconds| start + Duration::from_secs(seconds);

        learner.record_at(&api("t1/crm"), &api("t1/orders"), Reason::NotListed, at(0));
        learner.record_at(
            &api("t1/reports"),
            &api("t1/orders"),
            Reason::NotListed,
            at(50),
        );
        learner.record_at(
            &api("t1/reports"),
            &api("t1/orders"),
            Reason::NotListed,
            at(70),
        );
        learner.record_at(
            &api("t2/orders"),
            &api("t1/orders"),
            Reason::OtherTenant,
            at(70),
        );
        learner.record_at(
            &api("t1/ghost"),
            &api("t1/orders"),
            Reason::UnknownSource,
            at(70),
        );

        let suggestion = learner
            .suggest_at(&snapshot, &api("t1/orders"), at(80))
            .expect("known target");
        assert_eq!(suggestion.proposed(), [id("billing"), id("reports")]);
        assert_eq!(
            suggestion.added(),
            [Observation {
                source: id("reports"),
                calls: 2,
                last_seen: Duration::from_secs(10),
            }]
        );
        assert_eq!(suggestion.revision(), 5);
        assert_eq!(suggestion.enforcement(), Enforcement::Audit);
        let access = suggestion.to_access_document();
        assert_eq!(access.allow, Some(vec!["billing".into(), "reports".into()]));
        assert!(!access.enforce);
        assert_eq!(
            learner.suggest_at(&snapshot, &api("t1/ghost"), at(80)),
            None
        );
    }

    #[test]
    fn allow_all_stays_as_it_is() {
        let snapshot = Snapshot::from_json(POLICY).expect("valid");
        let learner = AuditLearner::new();

        learner.record(&api("t1/crm"), &api("t1/reports"), Reason::NotListed);
        let suggestion = learner
            .suggest(&snapshot, &api("t1/reports"))
            .expect("known target");

        assert!(suggestion.proposed().is_empty());
        assert!(suggestion.added().is_empty());
        assert!(suggestion.to_access_document().allow_all);
    }

    #[test]
    fn memory_is_bounded_by_its_limits() {
        let learner = AuditLearner::new().with_max_targets(2).with_max_sources(3);
        let start = Instant::now();

        for step in 0..50_u64 {
            let at = start + Duration::from_millis(step);
            let source = api(&format!("t1/s{step}"));
            let target = api(&format!("t1/t{}", step % 5));
            learner.record_at(&source, &target, Reason::NothingConfigured, at);
        }

        assert!(learner.len() <= 6, "{}", learner.len());
        let seen = learner.shared.seen.lock().expect("lock");
        assert!(seen.len() <= 2);
        assert!(seen.contains_key(&api("t1/t4")), "the latest target stays");
    }
}
