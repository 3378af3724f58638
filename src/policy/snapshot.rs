//! The validated, immutable set of all tenants' policies that requests read.

use std::collections::BTreeMap;
use std::fmt;
use std::hash::{BuildHasher, Hasher};

use foldhash::fast::RandomState;
use hashbrown::HashTable;

use super::document::{AccessDocument, PolicyDocument, TenantDocument};
use super::error::{PolicyError, Rule};
use super::explain::Explanation;
use super::handle::MAX_REVISION;
use crate::decision::{Decision, Enforcement, Reason};
use crate::id::{ApiId, ApiRef, TenantId};

/// Every tenant's APIs and cross-API policies, validated and frozen, ready to decide.
///
/// Only validation makes a snapshot ([`from_document`](Self::from_document),
/// [`from_json`](Self::from_json)), so a snapshot never breaks a rule of the contract.
/// Deciding is two hash probes into flat tables (the target, then the source) and, for an
/// explicit list, a binary search over the target's sorted grants; it neither allocates nor
/// locks.
///
/// Tables are keyed with a randomly seeded hasher, so callers cannot choose names that
/// collide.
///
/// ```
/// use tower_cross_api::{ApiRef, Reason, Snapshot};
///
/// let snapshot = Snapshot::from_json(r#"{
///     "revision": 7,
///     "tenants": { "acme": {
///         "apis": ["orders", "billing", "crm"],
///         "cross_api_access": { "billing": { "allow_all": true } }
///     } }
/// }"#)?;
///
/// let crm: ApiRef = "acme/crm".parse()?;
/// let billing: ApiRef = "acme/billing".parse()?;
/// assert_eq!(snapshot.decide(&crm, &billing).reason(), Reason::AllowAll);
/// assert_eq!(snapshot.revision(), 7);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Snapshot {
    revision: u64,
    hasher: RandomState,
    tenants: Vec<TenantEntry>,
    tenant_index: HashTable<u32>,
    apis: Vec<ApiEntry>,
    api_index: HashTable<u32>,
    grants: Vec<u32>,
    #[cfg(feature = "metrics")]
    labels: crate::metrics::Labels,
    #[cfg(feature = "metrics")]
    counters: crate::metrics::Counters,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct TenantEntry {
    id: TenantId,
    first_api: u32,
    api_count: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct ApiEntry {
    id: ApiId,
    tenant: u32,
    access: Access,
    /// `false` when the target's policy is in audit mode; fits in the entry's padding.
    enforce: bool,
}

/// A target's policy inside the snapshot; a list is a range of the sorted `grants` table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Access {
    Nothing,
    AllowAll,
    List { first: u32, len: u32 },
}

/// The policy of one target API, as a [`Snapshot`] holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetPolicy {
    /// Nothing configured: nobody may call the target.
    NothingConfigured,
    /// Every API of the target's tenant may call it.
    AllowAll,
    /// The listed APIs may call it, in the order of the tenant's `apis`; an empty list
    /// allows nobody.
    List(Vec<ApiId>),
}

impl TargetPolicy {
    /// A one-line, human-readable summary of the policy.
    ///
    /// ```
    /// use tower_cross_api::TargetPolicy;
    ///
    /// assert_eq!(
    ///     TargetPolicy::NothingConfigured.summary(),
    ///     "No APIs are allowed to access this API's data."
    /// );
    /// let nobody = TargetPolicy::NothingConfigured.summary();
    /// assert_eq!(TargetPolicy::List(Vec::new()).summary(), nobody);
    /// ```
    pub fn summary(&self) -> String {
        match self {
            Self::NothingConfigured => String::from(NOBODY),
            Self::List(listed) if listed.is_empty() => String::from(NOBODY),
            Self::AllowAll => String::from(
                "All APIs of this tenant, current and future, may access this API's data.",
            ),
            Self::List(listed) => {
                let names: Vec<&str> = listed.iter().map(ApiId::as_str).collect();
                format!(
                    "Only these APIs may access this API's data: {}.",
                    names.join(", ")
                )
            }
        }
    }
}

impl TargetPolicy {
    /// The policy as a document writes it, enforced; `None` for nothing configured, which a
    /// document writes by leaving the target out.
    ///
    /// ```
    /// use tower_cross_api::{AccessDocument, TargetPolicy};
    ///
    /// assert_eq!(TargetPolicy::NothingConfigured.to_document(), None);
    /// assert_eq!(
    ///     TargetPolicy::AllowAll.to_document(),
    ///     Some(AccessDocument { allow_all: true, allow: None, enforce: true })
    /// );
    /// ```
    pub fn to_document(&self) -> Option<AccessDocument> {
        match self {
            Self::NothingConfigured => None,
            Self::AllowAll => Some(AccessDocument {
                allow_all: true,
                allow: None,
                enforce: true,
            }),
            Self::List(listed) => Some(AccessDocument {
                allow_all: false,
                allow: Some(listed.iter().map(ToString::to_string).collect()),
                enforce: true,
            }),
        }
    }
}

const NOBODY: &str = "No APIs are allowed to access this API's data.";

impl Snapshot {
    /// Validates a document into a snapshot at the document's revision.
    ///
    /// # Errors
    ///
    /// [`PolicyError::MissingRevision`] when the document states none (a
    /// [`PolicyHandle`](crate::PolicyHandle) fills it in), otherwise as for
    /// [`PolicyHandle::publish_document`](crate::PolicyHandle::publish_document).
    pub fn from_document(document: &PolicyDocument) -> Result<Self, PolicyError> {
        let revision = document.revision.ok_or(PolicyError::MissingRevision)?;
        Self::build(document, revision)
    }

    /// Parses and validates JSON text into a snapshot; see [`from_document`](Self::from_document).
    ///
    /// # Errors
    ///
    /// A [`PolicyError`] that says what is wrong and where.
    pub fn from_json(json: &str) -> Result<Self, PolicyError> {
        Self::from_document(&PolicyDocument::from_json(json)?)
    }

    pub(crate) fn build(document: &PolicyDocument, revision: u64) -> Result<Self, PolicyError> {
        if !(1..=MAX_REVISION).contains(&revision) {
            return Err(PolicyError::RevisionOutOfRange { offered: revision });
        }

        let mut builder = Builder::with_capacity(document);

        for (tenant, registry) in &document.tenants {
            builder.add_tenant(tenant, registry)?;
        }
        for (tenant, registry) in &document.tenants {
            builder.add_policies(tenant, registry)?;
        }

        Ok(builder.finish(revision))
    }

    /// The revision this snapshot publishes.
    pub const fn revision(&self) -> u64 {
        self.revision
    }

    /// Decides whether `source` may call `target`, following the contract in order: another
    /// tenant, an unknown tenant, target or source deny; allow-all or a listing allows; the
    /// target itself is allowed; anything else is denied.
    ///
    /// The decision also tells whether the target's policy is in audit mode
    /// ([`Decision::is_audited`]), once the source is known to be a sibling of a known target.
    #[inline]
    pub fn decide(&self, source: &ApiRef, target: &ApiRef) -> Decision {
        self.decide_located(source, target).0
    }

    /// The decision, and where the snapshot's table of APIs holds the target and the source
    /// when both are APIs of one known tenant: counting the decision then finds its counter
    /// without hashing the names again.
    #[inline]
    pub(crate) fn decide_located(
        &self,
        source: &ApiRef,
        target: &ApiRef,
    ) -> (Decision, Option<Positions>) {
        let (reason, audited, positions) = self.reason(source, target);
        let decision = Decision::new(reason, self.revision).with_audited(audited);
        (decision, positions)
    }

    /// The reason, whether the target's policy is in audit mode, and the positions of both
    /// ends once they are known.
    #[inline]
    fn reason(&self, source: &ApiRef, target: &ApiRef) -> (Reason, bool, Option<Positions>) {
        if source.tenant() != target.tenant() {
            return (Reason::OtherTenant, false, None);
        }

        let tenant = TenantHasher::new(&self.hasher, target.tenant());
        let Some(target_index) = self.find_api_hashed(&tenant, target) else {
            let reason = match self.find_tenant_hashed(&tenant, target.tenant()) {
                Some(_) => Reason::UnknownTarget,
                None => Reason::UnknownTenant,
            };
            return (reason, false, None);
        };
        let Some(target_entry) = self.apis.get(target_index as usize) else {
            return (Reason::UnknownTarget, false, None);
        };
        let Some(source_index) = self.find_sibling(&tenant, target_entry.tenant, source.api())
        else {
            return (Reason::UnknownSource, false, None);
        };

        let reason = match target_entry.access {
            Access::AllowAll => Reason::AllowAll,
            Access::List { .. }
                if self
                    .listed(target_entry.access)
                    .binary_search(&source_index)
                    .is_ok() =>
            {
                Reason::Listed
            }
            _ if source_index == target_index => Reason::SameApi,
            Access::List { .. } => Reason::NotListed,
            Access::Nothing => Reason::NothingConfigured,
        };
        let positions = Positions {
            target: target_index,
            source: source_index,
        };
        (reason, !target_entry.enforce, Some(positions))
    }

    /// Why `source` may or may not call `target`: the decision, and the target's policy and
    /// mode as this snapshot holds them. Agrees with [`decide`](Self::decide) by construction.
    ///
    /// ```
    /// use tower_cross_api::{ApiRef, Enforcement, Reason, Snapshot, TargetPolicy};
    ///
    /// let snapshot = Snapshot::from_json(r#"{ "revision": 2, "tenants": { "acme": {
    ///     "apis": ["orders", "billing", "crm"],
    ///     "cross_api_access": { "orders": { "allow": ["billing"], "enforce": false } }
    /// } } }"#)?;
    ///
    /// let explanation = snapshot.explain(&"acme/crm".parse()?, &"acme/orders".parse()?);
    /// assert_eq!(explanation.decision().reason(), Reason::NotListed);
    /// assert_eq!(explanation.enforcement(), Some(Enforcement::Audit));
    /// assert_eq!(explanation.revision(), 2);
    /// let listed = explanation.policy();
    /// assert!(matches!(listed, Some(TargetPolicy::List(listed)) if listed.len() == 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn explain(&self, source: &ApiRef, target: &ApiRef) -> Explanation {
        let decision = self.decide(source, target);
        let entry = self
            .find_api(target)
            .and_then(|index| self.apis.get(index as usize));

        Explanation::new(
            *source,
            *target,
            decision,
            entry.map(|entry| (self.target_policy(entry), enforcement(entry.enforce))),
        )
    }

    /// Whether `target`'s policy enforces or audits, or `None` when the snapshot does not
    /// know it.
    pub fn enforcement(&self, target: &ApiRef) -> Option<Enforcement> {
        let entry = self.apis.get(self.find_api(target)? as usize)?;
        Some(enforcement(entry.enforce))
    }

    /// Whether the snapshot knows `api`.
    pub fn contains(&self, api: &ApiRef) -> bool {
        self.find_api(api).is_some()
    }

    /// Whether the snapshot knows `tenant`.
    pub fn contains_tenant(&self, tenant: &TenantId) -> bool {
        self.find_tenant(tenant).is_some()
    }

    /// The APIs of `tenant` in registry order; empty for an unknown tenant.
    pub fn apis_of(&self, tenant: &TenantId) -> impl Iterator<Item = ApiId> + '_ {
        let range = self
            .find_tenant(tenant)
            .and_then(|index| self.tenants.get(index as usize))
            .map_or(0..0, |entry| {
                entry.first_api as usize..(entry.first_api + entry.api_count) as usize
            });
        self.apis
            .get(range)
            .unwrap_or_default()
            .iter()
            .map(|entry| entry.id)
    }

    /// The policy of `target`, or `None` when the snapshot does not know it.
    pub fn policy(&self, target: &ApiRef) -> Option<TargetPolicy> {
        let entry = self.apis.get(self.find_api(target)? as usize)?;
        Some(self.target_policy(entry))
    }

    fn target_policy(&self, entry: &ApiEntry) -> TargetPolicy {
        match entry.access {
            Access::Nothing => TargetPolicy::NothingConfigured,
            Access::AllowAll => TargetPolicy::AllowAll,
            Access::List { .. } => TargetPolicy::List(
                self.listed(entry.access)
                    .iter()
                    .filter_map(|&index| self.apis.get(index as usize))
                    .map(|listed| listed.id)
                    .collect(),
            ),
        }
    }

    /// The document this snapshot was validated from, up to the order of keys and lists.
    /// Validating it again gives an equal snapshot.
    pub fn to_document(&self) -> PolicyDocument {
        let mut tenants = BTreeMap::new();

        for tenant in &self.tenants {
            let first = tenant.first_api as usize;
            let entries = self
                .apis
                .get(first..first + tenant.api_count as usize)
                .unwrap_or_default();

            let apis = entries.iter().map(|entry| entry.id.to_string()).collect();
            let cross_api_access = entries
                .iter()
                .filter_map(|entry| Some((entry.id.to_string(), self.access_document(entry)?)))
                .collect();
            tenants.insert(
                tenant.id.to_string(),
                TenantDocument {
                    apis,
                    cross_api_access,
                },
            );
        }

        PolicyDocument {
            revision: Some(self.revision),
            tenants,
        }
    }

    fn access_document(&self, entry: &ApiEntry) -> Option<AccessDocument> {
        let enforce = entry.enforce;

        match self.target_policy(entry).to_document() {
            Some(document) => Some(AccessDocument {
                enforce,
                ..document
            }),
            None if enforce => None,
            None => Some(AccessDocument {
                enforce,
                ..AccessDocument::default()
            }),
        }
    }

    /// How many tenants, APIs and grants the snapshot holds.
    pub fn len(&self) -> SnapshotSize {
        SnapshotSize {
            tenants: self.tenants.len(),
            apis: self.apis.len(),
            grants: self.grants.len(),
        }
    }

    /// Whether the snapshot holds no tenant at all.
    pub fn is_empty(&self) -> bool {
        self.tenants.is_empty()
    }

    /// Whether `other` holds exactly these tenants, APIs, policies and grants, in the same
    /// order, whatever the two revisions: then every decision of the two is the same. A
    /// comparison of the flat tables, without building documents.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn holds_the_same_policies(&self, other: &Self) -> bool {
        self.tenants == other.tenants && self.apis == other.apis && self.grants == other.grants
    }

    fn listed(&self, access: Access) -> &[u32] {
        match access {
            Access::List { first, len } => self
                .grants
                .get(first as usize..(first + len) as usize)
                .unwrap_or_default(),
            Access::Nothing | Access::AllowAll => &[],
        }
    }

    /// The metrics label of `tenant`, when the snapshot knows it.
    #[cfg(feature = "metrics")]
    pub(crate) fn tenant_label(&self, tenant: &TenantId) -> Option<&std::sync::Arc<str>> {
        self.labels
            .tenant(self.find_tenant(tenant)? as usize, tenant)
    }

    /// The decision counters this snapshot keeps for the pairs it has counted.
    #[cfg(feature = "metrics")]
    pub(crate) const fn counters(&self) -> &crate::metrics::Counters {
        &self.counters
    }

    /// The metrics label of `api`, when the snapshot knows it.
    #[cfg(feature = "metrics")]
    pub(crate) fn api_label(&self, api: &ApiRef) -> Option<&std::sync::Arc<str>> {
        self.labels.api(self.find_api(api)? as usize, api)
    }

    fn find_api(&self, api: &ApiRef) -> Option<u32> {
        self.find_api_hashed(&TenantHasher::new(&self.hasher, api.tenant()), api)
    }

    #[inline]
    fn find_api_hashed(&self, tenant: &TenantHasher, api: &ApiRef) -> Option<u32> {
        self.api_index
            .find(tenant.api_hash(api.api()), |&index| {
                self.apis.get(index as usize).is_some_and(|entry| {
                    entry.id == *api.api()
                        && self.tenants.get(entry.tenant as usize).map(|t| &t.id)
                            == Some(api.tenant())
                })
            })
            .copied()
    }

    /// Finds `api` among the APIs of the tenant at `tenant_index`, whose name `tenant` hashed:
    /// the tenant is known, so an index comparison replaces a name comparison.
    #[inline]
    fn find_sibling(&self, tenant: &TenantHasher, tenant_index: u32, api: &ApiId) -> Option<u32> {
        self.api_index
            .find(tenant.api_hash(api), |&index| {
                self.apis
                    .get(index as usize)
                    .is_some_and(|entry| entry.tenant == tenant_index && entry.id == *api)
            })
            .copied()
    }

    fn find_tenant(&self, tenant: &TenantId) -> Option<u32> {
        self.find_tenant_hashed(&TenantHasher::new(&self.hasher, tenant), tenant)
    }

    /// Finds `tenant`, whose name `hashed` hashed.
    fn find_tenant_hashed(&self, hashed: &TenantHasher, tenant: &TenantId) -> Option<u32> {
        self.tenant_index
            .find(hashed.tenant_hash(), |&index| {
                self.tenants.get(index as usize).map(|t| &t.id) == Some(tenant)
            })
            .copied()
    }
}

/// Where a snapshot's table of APIs holds the target and the source of one decision; valid
/// for that snapshot only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Positions {
    pub(crate) target: u32,
    pub(crate) source: u32,
}

/// How much a [`Snapshot`] holds; see [`Snapshot::len`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotSize {
    /// Tenants.
    pub tenants: usize,
    /// APIs, over all tenants.
    pub apis: usize,
    /// Entries of explicit lists, over all targets.
    pub grants: usize,
}

impl PartialEq for Snapshot {
    /// Two snapshots are equal when they hold the same revision, tenants, APIs and policies.
    fn eq(&self, other: &Self) -> bool {
        self.revision == other.revision
            && self.tenants == other.tenants
            && self.apis == other.apis
            && self.grants == other.grants
    }
}

impl Eq for Snapshot {}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("revision", &self.revision)
            .field("tenants", &self.tenants.len())
            .field("apis", &self.apis.len())
            .field("grants", &self.grants.len())
            .finish()
    }
}

fn api_hash(hasher: &RandomState, tenant: &TenantId, api: &ApiId) -> u64 {
    TenantHasher::new(hasher, tenant).api_hash(api)
}

/// The hasher state after a tenant's name, from which the tenant's own hash and the hash of
/// each of its APIs follow: a decision hashes the tenant once for both ends and, when the
/// target is unknown, for the tenant table too. No separator is written between the tenant and
/// the API: foldhash turns its state by the length of every write, so `ab` + `c` and `a` +
/// `bc` hash apart.
struct TenantHasher(<RandomState as BuildHasher>::Hasher);

impl TenantHasher {
    #[inline]
    fn new(hasher: &RandomState, tenant: &TenantId) -> Self {
        let mut state = hasher.build_hasher();
        state.write(tenant.as_bytes());
        Self(state)
    }

    /// The hash of the tenant's own name, in the table of tenants.
    #[inline]
    fn tenant_hash(&self) -> u64 {
        self.0.clone().finish()
    }

    #[inline]
    fn api_hash(&self, api: &ApiId) -> u64 {
        let mut state = self.0.clone();
        state.write(api.as_bytes());
        state.finish()
    }
}

fn tenant_hash(hasher: &RandomState, tenant: &TenantId) -> u64 {
    TenantHasher::new(hasher, tenant).tenant_hash()
}

/// Validates a document tenant by tenant while filling a snapshot's tables.
struct Builder(Snapshot);

impl Builder {
    fn with_capacity(document: &PolicyDocument) -> Self {
        let tenant_count = document.tenants.len();
        let api_count = document
            .tenants
            .values()
            .map(|tenant| tenant.apis.len())
            .sum();
        let grant_count = document
            .tenants
            .values()
            .flat_map(|tenant| tenant.cross_api_access.values())
            .map(|access| access.allow.as_ref().map_or(0, Vec::len))
            .sum();

        Self(Snapshot {
            revision: 0,
            hasher: RandomState::default(),
            tenants: Vec::with_capacity(tenant_count),
            tenant_index: HashTable::with_capacity(tenant_count),
            apis: Vec::with_capacity(api_count),
            api_index: HashTable::with_capacity(api_count),
            grants: Vec::with_capacity(grant_count),
            #[cfg(feature = "metrics")]
            labels: crate::metrics::Labels::default(),
            #[cfg(feature = "metrics")]
            counters: crate::metrics::Counters::default(),
        })
    }

    fn add_tenant(&mut self, name: &str, registry: &TenantDocument) -> Result<(), PolicyError> {
        let malformed = |value: &str| {
            PolicyError::rule(
                name,
                None,
                Rule::MalformedIdentifier {
                    value: value.to_owned(),
                },
            )
        };
        let id = TenantId::new(name).map_err(|_| malformed(name))?;
        let tenant = index(self.0.tenants.len(), name)?;
        let first_api = index(self.0.apis.len(), name)?;
        let api_count = index(registry.apis.len(), name)?;

        self.0.tenants.push(TenantEntry {
            id,
            first_api,
            api_count,
        });
        let Snapshot {
            tenants,
            hasher,
            tenant_index,
            ..
        } = &mut self.0;
        tenant_index.insert_unique(tenant_hash(hasher, &id), tenant, |&i| {
            tenants
                .get(i as usize)
                .map_or(0, |entry| tenant_hash(hasher, &entry.id))
        });

        for api_name in &registry.apis {
            let api = ApiId::new(api_name).map_err(|_| malformed(api_name))?;
            if self.0.find_api(&ApiRef::new(id, api)).is_some() {
                let rule = Rule::Repeated {
                    value: api_name.clone(),
                };
                return Err(PolicyError::rule(name, None, rule));
            }

            let api_index = index(self.0.apis.len(), name)?;
            self.0.apis.push(ApiEntry {
                id: api,
                tenant,
                access: Access::Nothing,
                enforce: true,
            });
            let Snapshot {
                apis,
                tenants,
                hasher,
                api_index: table,
                ..
            } = &mut self.0;
            table.insert_unique(api_hash(hasher, &id, &api), api_index, |&i| {
                let entry = apis.get(i as usize);
                let tenant = entry.and_then(|entry| tenants.get(entry.tenant as usize));
                match (tenant, entry) {
                    (Some(tenant), Some(entry)) => api_hash(hasher, &tenant.id, &entry.id),
                    _ => 0,
                }
            });
        }
        Ok(())
    }

    fn add_policies(&mut self, name: &str, registry: &TenantDocument) -> Result<(), PolicyError> {
        let tenant = TenantId::new(name).map_err(|_| {
            PolicyError::rule(
                name,
                None,
                Rule::MalformedIdentifier {
                    value: name.to_owned(),
                },
            )
        })?;

        for (target_name, access) in &registry.cross_api_access {
            let broken = |rule| PolicyError::rule(name, Some(target_name), rule);
            let malformed = |value: &str| {
                broken(Rule::MalformedIdentifier {
                    value: value.into(),
                })
            };

            let target = ApiId::new(target_name).map_err(|_| malformed(target_name))?;
            let target_index = self
                .0
                .find_api(&ApiRef::new(tenant, target))
                .ok_or_else(|| broken(Rule::UnknownTarget))?;

            if access.allow_all && access.allow.is_some() {
                return Err(broken(Rule::AllowAllWithList));
            }
            let listed = access.allow.as_deref().unwrap_or_default();

            let first = index(self.0.grants.len(), name)?;
            for listed_name in listed {
                let api = ApiId::new(listed_name).map_err(|_| malformed(listed_name))?;
                if api == target {
                    return Err(broken(Rule::SelfGrant));
                }
                let listed_index = self.0.find_api(&ApiRef::new(tenant, api)).ok_or_else(|| {
                    broken(Rule::NotInTenant {
                        listed: listed_name.clone(),
                    })
                })?;
                self.0.grants.push(listed_index);
            }

            let grants = &mut self.0.grants[first as usize..];
            grants.sort_unstable();
            if let Some(pair) = grants.windows(2).find(|pair| pair[0] == pair[1]) {
                let repeated = self
                    .0
                    .apis
                    .get(pair[0] as usize)
                    .map(|entry| entry.id.to_string());
                return Err(broken(Rule::Repeated {
                    value: repeated.unwrap_or_default(),
                }));
            }

            let len = index(listed.len(), name)?;
            let enforce = access.enforce;
            let access = match (access.allow_all, &access.allow) {
                (true, _) => Access::AllowAll,
                (false, Some(_)) => Access::List { first, len },
                (false, None) => Access::Nothing,
            };
            if let Some(entry) = self.0.apis.get_mut(target_index as usize) {
                entry.access = access;
                entry.enforce = enforce;
            }
        }
        Ok(())
    }

    fn finish(self, revision: u64) -> Snapshot {
        #[cfg(feature = "metrics")]
        let labels = crate::metrics::Labels::new(self.0.tenants.len(), self.0.apis.len());
        #[cfg(feature = "metrics")]
        let counters = crate::metrics::Counters::new(self.0.apis.len());

        Snapshot {
            revision,
            #[cfg(feature = "metrics")]
            labels,
            #[cfg(feature = "metrics")]
            counters,
            ..self.0
        }
    }
}

const fn enforcement(enforce: bool) -> Enforcement {
    if enforce {
        Enforcement::Enforce
    } else {
        Enforcement::Audit
    }
}

/// A table position as `u32`, refusing documents too large to index.
fn index(value: usize, tenant: &str) -> Result<u32, PolicyError> {
    u32::try_from(value).map_err(|_| PolicyError::rule(tenant, None, Rule::TooLarge))
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"{
        "revision": 4,
        "tenants": {
            "t1": {
                "apis": ["orders", "billing", "reports", "crm"],
                "cross_api_access": {
                    "orders": { "allow": ["billing", "crm"] },
                    "billing": { "allow_all": true },
                    "reports": { "allow": [] }
                }
            },
            "t2": { "apis": ["orders", "billing"] }
        }
    }"#;

    fn api(value: &str) -> ApiRef {
        value.parse().expect("api reference")
    }

    fn reason(snapshot: &Snapshot, source: &str, target: &str) -> Reason {
        snapshot.decide(&api(source), &api(target)).reason()
    }

    #[test]
    fn the_same_policies_at_any_revision_and_no_others() {
        let mut document = PolicyDocument::from_json(POLICY).expect("valid");
        let snapshot = Snapshot::from_document(&document).expect("valid");
        document.revision = Some(9);
        assert!(snapshot.holds_the_same_policies(&Snapshot::from_document(&document).expect("v")));

        let changes: [fn(&mut PolicyDocument); 4] = [
            |d| {
                d.tenants
                    .get_mut("t1")
                    .expect("t1")
                    .apis
                    .push("ledger".into())
            },
            |d| {
                let access = &mut d.tenants.get_mut("t1").expect("t1").cross_api_access;
                access.get_mut("orders").expect("orders").allow = Some(vec!["crm".into()]);
            },
            |d| {
                let access = &mut d.tenants.get_mut("t1").expect("t1").cross_api_access;
                access.get_mut("reports").expect("reports").enforce = false;
            },
            |d| {
                let access = &mut d.tenants.get_mut("t1").expect("t1").cross_api_access;
                access.remove("billing");
            },
        ];
        for (number, change) in changes.into_iter().enumerate() {
            let mut changed = document.clone();
            change(&mut changed);
            let changed = Snapshot::from_document(&changed).expect("valid");
            assert!(
                !snapshot.holds_the_same_policies(&changed),
                "change {number}"
            );
        }
    }

    #[test]
    fn every_reason_of_the_contract() {
        let snapshot = Snapshot::from_json(POLICY).expect("valid");

        assert_eq!(reason(&snapshot, "t1/billing", "t1/orders"), Reason::Listed);
        assert_eq!(reason(&snapshot, "t1/crm", "t1/billing"), Reason::AllowAll);
        assert_eq!(
            reason(&snapshot, "t1/billing", "t1/billing"),
            Reason::AllowAll
        );
        assert_eq!(reason(&snapshot, "t1/crm", "t1/crm"), Reason::SameApi);
        assert_eq!(reason(&snapshot, "t1/orders", "t1/orders"), Reason::SameApi);
        assert_eq!(
            reason(&snapshot, "t1/reports", "t1/orders"),
            Reason::NotListed
        );
        assert_eq!(
            reason(&snapshot, "t1/billing", "t1/reports"),
            Reason::NotListed
        );
        assert_eq!(
            reason(&snapshot, "t1/billing", "t1/crm"),
            Reason::NothingConfigured
        );
        assert_eq!(
            reason(&snapshot, "t2/billing", "t1/orders"),
            Reason::OtherTenant
        );
        assert_eq!(
            reason(&snapshot, "t9/billing", "t9/orders"),
            Reason::UnknownTenant
        );
        assert_eq!(
            reason(&snapshot, "t1/ghost", "t1/billing"),
            Reason::UnknownSource
        );
        assert_eq!(
            reason(&snapshot, "t1/billing", "t1/invoices"),
            Reason::UnknownTarget
        );
        assert_eq!(
            reason(&snapshot, "t2/orders", "t2/billing"),
            Reason::NothingConfigured
        );
        assert_eq!(
            snapshot
                .decide(&api("t1/billing"), &api("t1/orders"))
                .revision(),
            4
        );
    }

    #[test]
    fn reads_policies_and_summaries() {
        let snapshot = Snapshot::from_json(POLICY).expect("valid");

        let orders = snapshot.policy(&api("t1/orders")).expect("known");
        assert_eq!(
            orders,
            TargetPolicy::List(vec![
                ApiId::new("billing").expect("id"),
                ApiId::new("crm").expect("id")
            ])
        );
        assert_eq!(
            orders.summary(),
            "Only these APIs may access this API's data: billing, crm."
        );
        let crm = snapshot.policy(&api("t1/crm")).expect("known");
        assert_eq!(
            crm.summary(),
            "No APIs are allowed to access this API's data."
        );
        assert_eq!(snapshot.policy(&api("t1/ghost")), None);

        let apis: Vec<String> = snapshot
            .apis_of(&TenantId::new("t2").expect("id"))
            .map(|a| a.to_string())
            .collect();
        assert_eq!(apis, ["orders", "billing"]);
        assert_eq!(
            snapshot.len(),
            SnapshotSize {
                tenants: 2,
                apis: 6,
                grants: 2
            }
        );
    }

    #[test]
    fn audit_mode_round_trips_and_marks_decisions() {
        let snapshot = Snapshot::from_json(
            r#"{"revision":3,"tenants":{"t1":{"apis":["a","b","c"],"cross_api_access":{
                "a":{"allow":["b"],"enforce":false},
                "c":{"enforce":false}
            }}}}"#,
        )
        .expect("valid");

        let again = Snapshot::from_document(&snapshot.to_document()).expect("valid");
        assert_eq!(again, snapshot);
        assert_eq!(again.to_document(), snapshot.to_document());
        assert_eq!(again.enforcement(&api("t1/c")), Some(Enforcement::Audit));
        assert_eq!(again.enforcement(&api("t1/b")), Some(Enforcement::Enforce));
        assert_eq!(again.enforcement(&api("t1/z")), None);

        let denied = snapshot.decide(&api("t1/c"), &api("t1/a"));
        assert_eq!(denied.reason(), Reason::NotListed);
        assert!(denied.is_audited());
        assert!(snapshot.decide(&api("t1/b"), &api("t1/a")).is_audited());
        assert!(!snapshot.decide(&api("t1/a"), &api("t1/b")).is_audited());
        assert!(!snapshot.decide(&api("t1/ghost"), &api("t1/a")).is_audited());
        assert!(!snapshot.decide(&api("t2/b"), &api("t1/a")).is_audited());
        assert_eq!(
            std::mem::size_of::<ApiEntry>(),
            84,
            "the flag fits in the padding"
        );
    }

    #[test]
    fn round_trips_through_its_document() {
        let snapshot = Snapshot::from_json(POLICY).expect("valid");

        let again = Snapshot::from_document(&snapshot.to_document()).expect("valid");
        assert_eq!(again, snapshot);
        assert_eq!(
            again.decide(&api("t1/crm"), &api("t1/orders")).reason(),
            Reason::Listed
        );
    }

    fn refusal(tenants: &str) -> PolicyError {
        let json = format!(r#"{{ "revision": 1, "tenants": {{ {tenants} }} }}"#);
        Snapshot::from_json(&json).expect_err("must be refused")
    }

    fn broken(tenant: &str, api: Option<&str>, rule: Rule) -> PolicyError {
        PolicyError::rule(tenant, api, rule)
    }

    #[test]
    fn every_rule_is_enforced_and_named() {
        let with = |access: &str| {
            refusal(&format!(
                r#""t1": {{ "apis": ["orders", "billing"], "cross_api_access": {{ {access} }} }}"#
            ))
        };

        assert_eq!(
            with(r#""orders": { "allow_all": true, "allow": ["billing"] }"#),
            broken("t1", Some("orders"), Rule::AllowAllWithList)
        );
        assert_eq!(
            with(r#""orders": { "allow_all": true, "allow": [] }"#),
            broken("t1", Some("orders"), Rule::AllowAllWithList)
        );
        assert_eq!(
            with(r#""orders": { "allow": ["orders"] }"#),
            broken("t1", Some("orders"), Rule::SelfGrant)
        );
        assert_eq!(
            with(r#""orders": { "allow": ["t2/billing"] }"#),
            broken(
                "t1",
                Some("orders"),
                Rule::MalformedIdentifier {
                    value: "t2/billing".into()
                }
            )
        );
        assert_eq!(
            with(r#""orders": { "allow": ["billing", "billing"] }"#),
            broken(
                "t1",
                Some("orders"),
                Rule::Repeated {
                    value: "billing".into()
                }
            )
        );
        assert_eq!(
            with(r#""orders": { "allow": ["payments"] }"#),
            broken(
                "t1",
                Some("orders"),
                Rule::NotInTenant {
                    listed: "payments".into()
                }
            )
        );
        assert_eq!(
            with(r#""invoices": { "allow": [] }"#),
            broken("t1", Some("invoices"), Rule::UnknownTarget)
        );
        assert_eq!(
            with(r#""Orders": { "allow": [] }"#),
            broken(
                "t1",
                Some("Orders"),
                Rule::MalformedIdentifier {
                    value: "Orders".into()
                }
            )
        );
        assert_eq!(
            refusal(r#""t1": { "apis": ["orders", "orders"] }"#),
            broken(
                "t1",
                None,
                Rule::Repeated {
                    value: "orders".into()
                }
            )
        );
        assert_eq!(
            refusal(r#""T1": { "apis": [] }"#),
            broken("T1", None, Rule::MalformedIdentifier { value: "T1".into() })
        );
        assert_eq!(
            refusal(r#""t1": { "apis": ["or ders"] }"#),
            broken(
                "t1",
                None,
                Rule::MalformedIdentifier {
                    value: "or ders".into()
                }
            )
        );
    }

    #[test]
    fn errors_read_as_sentences() {
        let error = broken("t1", Some("orders"), Rule::SelfGrant);
        assert_eq!(
            error.to_string(),
            "tenant `t1`, API `orders`: an API cannot grant access to itself"
        );
        assert_eq!(
            Snapshot::from_json(r#"{"tenants":{}}"#),
            Err(PolicyError::MissingRevision)
        );
    }

    #[test]
    fn same_names_in_two_tenants_stay_apart() {
        let snapshot = Snapshot::from_json(
            r#"{"revision":1,"tenants":{
                "ab": {"apis":["c"], "cross_api_access": {}},
                "a": {"apis":["bc", "x"], "cross_api_access": {"x": {"allow": ["bc"]}}}
            }}"#,
        )
        .expect("valid");

        assert!(snapshot.contains(&api("ab/c")));
        assert!(!snapshot.contains(&api("a/c")));
        assert!(!snapshot.contains(&api("ab/bc")));
        assert_eq!(reason(&snapshot, "a/bc", "a/x"), Reason::Listed);
    }
}
