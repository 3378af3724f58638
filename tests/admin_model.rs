//! Administrative operations against a deliberately simple model of the contract.
//!
//! The model is written from the contract (SPEC.md) and the administration rules the crate
//! documents, not from the code: a tenant is a list of API names with a policy for each, a
//! policy is nothing, allow-all or a set of names, and an operation's outcome is a handful of
//! `if`s in the contract's order. An actor who may not change the tenant is refused first,
//! then an unknown tenant or target, then a write based on a revision that is not current,
//! then the rules: no self-grant, only the tenant's APIs, no name twice, never allow-all
//! with a list, revoke only what is listed. When one write breaks several rules at once the
//! contract does not say which one is named, so the model takes any rule the write breaks,
//! with the name that breaks it. Removing an API takes its policy away and strikes it from
//! every sibling's list: a list may name only the tenant's APIs.
//!
//! Random worlds (two to four tenants of one to five APIs, any mix of nothing configured,
//! allow-all, empty lists and lists) go through random sequences of operations by random
//! actors: the tenant's administrator, another tenant's, a member, staff, or nobody known;
//! every `Change`, and the removal of an API, on known and unknown tenants and targets, with
//! lists that name the target itself, its siblings, other tenants' APIs, no API at all,
//! repeats, or nothing; based on the current revision, a stale one, or none. After every
//! step the store must agree with the model on acceptance, on the refusal, on the audit
//! records, on the revision (one more for each accepted operation, none for a refusal), on
//! every target's policy, and on the gate's decision for every pair of APIs of the world.
//!
//! Two stores are checked with the same generator: the `PolicyHandle`, where a write is
//! based on the snapshot's revision, and (feature `postgres`, with
//! `TOWER_CROSS_API_DATABASE_URL` set) `PostgresStore`, where a write is based on the
//! revision of the target's own last change and the audit trail is read back at the end.

#[cfg(feature = "postgres")]
#[allow(dead_code)]
#[path = "support/database.rs"]
mod database;
#[cfg(feature = "postgres")]
#[path = "support/skip.rs"]
mod skip;
#[cfg(feature = "postgres")]
use skip::say_skipped;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use proptest::sample::{Index, select, subsequence};
use proptest::test_runner::TestRunner;
use serde_json::{Map, json};
use tower_cross_api::admin::{
    Actor, AdminError, AuditRecord, Change, PolicyState, RemoveApi, Write,
};
use tower_cross_api::{ApiId, ApiRef, PolicyHandle, Rule, Snapshot, TargetPolicy, TenantId};

/// The tenants a world may hold, in order.
const TENANTS: [&str; 4] = ["t1", "t2", "t3", "t4"];

/// A tenant that no world holds.
const STRANGER: &str = "t9";

/// Every tenant an operation may name: the world's, the ones it lacks, and one never held.
const EVERY_TENANT: [&str; 5] = ["t1", "t2", "t3", "t4", STRANGER];

/// The names of a tenant's APIs are drawn from these; tenants share names.
const POOL: [&str; 7] = [
    "orders", "billing", "crm", "ledger", "reports", "search", "mail",
];

/// A name no tenant ever registers.
const GHOST: &str = "ghost";

/// Every name an operation may use.
const NAMES: [&str; 8] = [
    "orders", "billing", "crm", "ledger", "reports", "search", "mail", GHOST,
];

type Api = (&'static str, &'static str);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Policy {
    Nothing,
    AllowAll,
    List(BTreeSet<&'static str>),
}

/// A tenant: its APIs in the order it registered them, and each API's policy.
#[derive(Clone, Debug)]
struct Tenant {
    apis: Vec<&'static str>,
    policies: BTreeMap<&'static str, Policy>,
}

/// The starting point of a sequence.
#[derive(Clone, Debug)]
struct World {
    revision: u64,
    tenants: BTreeMap<&'static str, Tenant>,
    /// Targets with nothing configured that the document writes as `{}` instead of leaving
    /// them out.
    written_empty: BTreeSet<Api>,
}

/// Which revision a write must be based on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Basis {
    /// The revision of the whole snapshot.
    Snapshot,
    /// The revision of the target's own last change; 0 for a target never written.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Target,
}

#[derive(Clone, Debug)]
struct Model {
    basis: Basis,
    revision: u64,
    tenants: BTreeMap<&'static str, Tenant>,
    /// The revision of each target's last change.
    changed: BTreeMap<Api, u64>,
    /// Every accepted change's records.
    log: Vec<Record>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Who {
    Administrator(&'static str),
    Member(&'static str),
    Staff,
    Unknown,
}

#[derive(Clone, Debug)]
enum Act {
    AllowAll,
    SetList(Vec<&'static str>),
    Grant(&'static str),
    Revoke(&'static str),
    Reset,
}

/// One operation, resolved against the model's state.
#[derive(Clone, Debug)]
enum Op {
    Write {
        who: Who,
        target: Api,
        act: Act,
        expected: Option<u64>,
    },
    Remove {
        who: Who,
        api: Api,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Refusal {
    Forbidden,
    UnknownTenant,
    UnknownTarget,
    Stale {
        expected: u64,
        current: u64,
    },
    /// Any one of these rules, each with the name that breaks it.
    Rules(Vec<Rule>),
    NotListed(&'static str),
}

/// An audit record, all but its time.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Record {
    revision: u64,
    tenant: String,
    target: String,
    action: String,
    actor: String,
    before: TargetPolicy,
    after: TargetPolicy,
}

impl Tenant {
    fn has(&self, api: &str) -> bool {
        self.apis.contains(&api)
    }

    fn policy(&self, api: &str) -> Policy {
        self.policies.get(api).cloned().unwrap_or(Policy::Nothing)
    }

    /// A policy as a snapshot reads it: a list in the order of the tenant's APIs.
    fn read(&self, policy: &Policy) -> TargetPolicy {
        match policy {
            Policy::Nothing => TargetPolicy::NothingConfigured,
            Policy::AllowAll => TargetPolicy::AllowAll,
            Policy::List(listed) => TargetPolicy::List(
                self.apis
                    .iter()
                    .filter(|api| listed.contains(*api))
                    .map(|api| id(api))
                    .collect(),
            ),
        }
    }

    /// The rules `target` listing `name` would break, apart from a repeat.
    fn broken_by(&self, target: &str, name: &str) -> Vec<Rule> {
        let mut rules = Vec::new();

        if name == target {
            rules.push(Rule::SelfGrant);
        }
        if !self.has(name) {
            rules.push(Rule::NotInTenant {
                listed: name.to_owned(),
            });
        }
        rules
    }

    /// `target`'s policy after `act`, or the refusal.
    fn after(&self, target: &str, act: &Act) -> Result<Policy, Refusal> {
        let before = self.policy(target);
        let repeated = |name: &str| Rule::Repeated {
            value: name.to_owned(),
        };
        let refuse_or = |rules: Vec<Rule>, policy| {
            if rules.is_empty() {
                Ok(policy)
            } else {
                Err(Refusal::Rules(rules))
            }
        };

        match (act, before) {
            (Act::AllowAll, _) => Ok(Policy::AllowAll),
            (Act::Reset, _) => Ok(Policy::Nothing),
            (Act::SetList(names), _) => {
                let mut rules = Vec::new();
                for (at, name) in names.iter().enumerate() {
                    rules.extend(self.broken_by(target, name));
                    if names[..at].contains(name) {
                        rules.push(repeated(name));
                    }
                }
                refuse_or(rules, Policy::List(names.iter().copied().collect()))
            }
            (Act::Grant(name), Policy::AllowAll) => {
                let mut rules = vec![Rule::AllowAllWithList];
                rules.extend(self.broken_by(target, name));
                Err(Refusal::Rules(rules))
            }
            (Act::Grant(name), Policy::Nothing) => {
                refuse_or(self.broken_by(target, name), Policy::List([*name].into()))
            }
            (Act::Grant(name), Policy::List(mut listed)) => {
                let mut rules = self.broken_by(target, name);
                if !listed.insert(name) {
                    rules.push(repeated(name));
                }
                refuse_or(rules, Policy::List(listed))
            }
            (Act::Revoke(_), Policy::AllowAll) => Err(Refusal::Rules(vec![Rule::AllowAllWithList])),
            (Act::Revoke(name), Policy::List(listed)) if listed.contains(name) => {
                Ok(Policy::List(&listed - &BTreeSet::from([*name])))
            }
            (Act::Revoke(name), _) => Err(Refusal::NotListed(name)),
        }
    }
}

impl Who {
    fn name(&self) -> String {
        match self {
            Self::Administrator(tenant) => format!("admin-{tenant}"),
            Self::Member(tenant) => format!("member-{tenant}"),
            Self::Staff => String::from("staff"),
            Self::Unknown => String::from("unknown"),
        }
    }

    /// Only the tenant's administrators and platform staff may change its policies.
    fn may_change(&self, tenant: &str) -> bool {
        match self {
            Self::Administrator(own) => *own == tenant,
            Self::Staff => true,
            Self::Member(_) | Self::Unknown => false,
        }
    }

    fn actor(&self) -> Actor {
        match self {
            Self::Administrator(tenant) => Actor::administrator(self.name(), tenant_id(tenant)),
            Self::Member(tenant) => Actor::member(self.name(), tenant_id(tenant)),
            Self::Staff => Actor::staff(self.name()),
            Self::Unknown => Actor::Unknown,
        }
    }
}

impl Act {
    fn change(&self) -> Change {
        match self {
            Self::AllowAll => Change::AllowAll,
            Self::SetList(names) => Change::SetList(names.iter().map(|name| id(name)).collect()),
            Self::Grant(name) => Change::Grant(id(name)),
            Self::Revoke(name) => Change::Revoke(id(name)),
            Self::Reset => Change::Reset,
        }
    }

    const fn action(&self) -> &'static str {
        match self {
            Self::AllowAll => "allow_all",
            Self::SetList(_) => "set_list",
            Self::Grant(_) => "grant",
            Self::Revoke(_) => "revoke",
            Self::Reset => "reset",
        }
    }
}

impl Op {
    const fn who(&self) -> &Who {
        match self {
            Self::Write { who, .. } | Self::Remove { who, .. } => who,
        }
    }

    const fn target(&self) -> Api {
        match self {
            Self::Write { target, .. } => *target,
            Self::Remove { api, .. } => *api,
        }
    }

    /// The operation as the crate takes it.
    fn request(&self) -> Request {
        match self {
            Self::Write {
                who,
                target,
                act,
                expected,
            } => {
                let write = Write::new(who.actor(), api_ref(*target), act.change());
                Request::Write(match expected {
                    Some(revision) => write.with_expected(*revision),
                    None => write,
                })
            }
            Self::Remove { who, api } => {
                Request::Remove(RemoveApi::new(who.actor(), api_ref(*api)))
            }
        }
    }
}

enum Request {
    Write(Write),
    Remove(RemoveApi),
}

impl Model {
    fn new(world: &World, basis: Basis, revision: u64) -> Self {
        let changed = world
            .tenants
            .iter()
            .flat_map(|(&tenant, entry)| {
                entry
                    .policies
                    .iter()
                    .filter(move |&(&api, policy)| {
                        *policy != Policy::Nothing || world.written_empty.contains(&(tenant, api))
                    })
                    .map(move |(&api, _)| ((tenant, api), revision))
            })
            .collect();

        Self {
            basis,
            revision,
            tenants: world.tenants.clone(),
            changed,
            log: Vec::new(),
        }
    }

    /// The revision a write to `target` must be based on.
    fn current(&self, target: Api) -> u64 {
        match self.basis {
            Basis::Snapshot => self.revision,
            Basis::Target => self.changed.get(&target).copied().unwrap_or(0),
        }
    }

    /// The contract's decision on a linked call from `source` to `target`.
    fn allows(&self, source: Api, target: Api) -> bool {
        if source.0 != target.0 {
            return false;
        }
        let Some(tenant) = self.tenants.get(target.0) else {
            return false;
        };
        if !tenant.has(source.1) || !tenant.has(target.1) {
            return false;
        }

        match tenant.policy(target.1) {
            Policy::AllowAll => true,
            Policy::List(listed) if listed.contains(source.1) => true,
            _ => source == target,
        }
    }

    /// Carries `op` out on the model: the records of an accepted operation, or why it is
    /// refused (and then nothing changes).
    fn apply(&mut self, op: &Op) -> Result<Vec<Record>, Refusal> {
        let (tenant_name, api) = op.target();
        if !op.who().may_change(tenant_name) {
            return Err(Refusal::Forbidden);
        }
        let Some(tenant) = self.tenants.get(tenant_name) else {
            return Err(Refusal::UnknownTenant);
        };
        if !tenant.has(api) {
            return Err(Refusal::UnknownTarget);
        }

        let Op::Write { act, expected, .. } = op else {
            return Ok(self.remove(op.who(), (tenant_name, api)));
        };
        let current = self.current((tenant_name, api));
        if let Some(expected) = expected.filter(|&expected| expected != current) {
            return Err(Refusal::Stale { expected, current });
        }
        let after = tenant.after(api, act)?;

        let next = self.revision + 1;
        let record = Record {
            revision: next,
            tenant: tenant_name.to_owned(),
            target: api.to_owned(),
            action: act.action().to_owned(),
            actor: op.who().name(),
            before: tenant.read(&tenant.policy(api)),
            after: tenant.read(&after),
        };
        if let Some(tenant) = self.tenants.get_mut(tenant_name) {
            tenant.policies.insert(api, after);
        }
        self.changed.insert((tenant_name, api), next);
        Ok(self.accept(vec![record]))
    }

    fn remove(&mut self, who: &Who, (tenant_name, api): Api) -> Vec<Record> {
        let next = self.revision + 1;
        let Some(tenant) = self.tenants.get_mut(tenant_name) else {
            return Vec::new();
        };
        let before = tenant.clone();

        tenant.apis.retain(|&registered| registered != api);
        tenant.policies.remove(api);
        for policy in tenant.policies.values_mut() {
            if let Policy::List(listed) = policy {
                listed.remove(api);
            }
        }
        let after = tenant.clone();

        let record = |target: &str| Record {
            revision: next,
            tenant: tenant_name.to_owned(),
            target: target.to_owned(),
            action: String::from("remove_api"),
            actor: who.name(),
            before: before.read(&before.policy(target)),
            after: after.read(&after.policy(target)),
        };
        let mut records = vec![record(api)];
        for &sibling in &after.apis {
            if before.policy(sibling) != after.policy(sibling) {
                records.push(record(sibling));
                self.changed.insert((tenant_name, sibling), next);
            }
        }
        self.changed.remove(&(tenant_name, api));
        self.accept(records)
    }

    fn accept(&mut self, mut records: Vec<Record>) -> Vec<Record> {
        records.sort_by(|a, b| a.target.cmp(&b.target));
        self.revision += 1;
        self.log.extend(records.iter().cloned());
        records
    }

    /// Every API the model knows now, tenant by tenant.
    fn registered(&self) -> Vec<Api> {
        self.tenants
            .iter()
            .flat_map(|(&tenant, entry)| entry.apis.iter().map(move |&api| (tenant, api)))
            .collect()
    }

    /// The operation `step` names in the model's state now.
    fn resolve(&self, step: &Step) -> Op {
        let target = match step.aim {
            Aim::Registered(at) => {
                let registered = self.registered();
                match registered.len() {
                    0 => (TENANTS[0], GHOST),
                    len => registered[at.index(len)],
                }
            }
            Aim::Anywhere(tenant, api) => (tenant, api),
        };
        let who = match step.role {
            Role::Own => Who::Administrator(target.0),
            Role::OtherAdministrator(at) => {
                let others: Vec<&str> = EVERY_TENANT
                    .into_iter()
                    .filter(|&tenant| tenant != target.0)
                    .collect();
                Who::Administrator(others[at.index(others.len())])
            }
            Role::Member => Who::Member(target.0),
            Role::Staff => Who::Staff,
            Role::Unknown => Who::Unknown,
        };
        let current = self.current(target);
        let expected = match step.based {
            Based::Unstated => None,
            Based::Current => Some(current),
            Based::Stale(by) => Some(current.checked_sub(by).unwrap_or(current + by)),
        };
        let name = |pick: &Pick| self.name(target, pick);

        let act = match &step.plan {
            Plan::AllowAll => Act::AllowAll,
            Plan::SetList(picks) => Act::SetList(picks.iter().map(name).collect()),
            Plan::Grant(pick) => Act::Grant(name(pick)),
            Plan::Revoke(pick) => Act::Revoke(name(pick)),
            Plan::Reset => Act::Reset,
            Plan::RemoveApi => return Op::Remove { who, api: target },
        };
        Op::Write {
            who,
            target,
            act,
            expected,
        }
    }

    /// The name `pick` stands for when `target` lists it.
    fn name(&self, (tenant, target): Api, pick: &Pick) -> &'static str {
        let tenant = self.tenants.get(tenant);
        let siblings: Vec<&'static str> = tenant
            .map(|entry| entry.apis.iter().copied().filter(|&api| api != target))
            .into_iter()
            .flatten()
            .collect();
        let listed: Vec<&'static str> = match tenant.map(|entry| entry.policy(target)) {
            Some(Policy::List(listed)) => listed.into_iter().collect(),
            _ => Vec::new(),
        };

        match pick {
            Pick::Listed(at) if !listed.is_empty() => listed[at.index(listed.len())],
            Pick::Listed(at) | Pick::Sibling(at) if !siblings.is_empty() => {
                siblings[at.index(siblings.len())]
            }
            Pick::Listed(at) | Pick::Sibling(at) => NAMES[at.index(NAMES.len())],
            Pick::Itself => target,
            Pick::Named(name) => name,
        }
    }
}

/// What the generator draws for one step; the model resolves it against its state.
#[derive(Clone, Debug)]
struct Step {
    role: Role,
    aim: Aim,
    plan: Plan,
    based: Based,
}

#[derive(Clone, Debug)]
enum Role {
    Own,
    OtherAdministrator(Index),
    Member,
    Staff,
    Unknown,
}

#[derive(Clone, Debug)]
enum Aim {
    /// One of the APIs registered now.
    Registered(Index),
    /// Any tenant and name, known or not.
    Anywhere(&'static str, &'static str),
}

#[derive(Clone, Debug)]
enum Pick {
    /// Another API of the target's tenant.
    Sibling(Index),
    /// An API the target lists now.
    Listed(Index),
    Itself,
    /// Any name: of a sibling, of another tenant's API, or of no API.
    Named(&'static str),
}

#[derive(Clone, Debug)]
enum Plan {
    AllowAll,
    SetList(Vec<Pick>),
    Grant(Pick),
    Revoke(Pick),
    Reset,
    RemoveApi,
}

#[derive(Clone, Debug)]
enum Based {
    Unstated,
    Current,
    Stale(u64),
}

fn id(value: &str) -> ApiId {
    ApiId::new(value).expect("an API identifier")
}

fn tenant_id(value: &str) -> TenantId {
    TenantId::new(value).expect("a tenant identifier")
}

fn api_ref((tenant, api): Api) -> ApiRef {
    ApiRef::new(tenant_id(tenant), id(api))
}

/// One tenant's raw draw: its APIs, and for each a policy kind, the siblings a list names,
/// and whether nothing configured is written as `{}`.
type RawTenant = (Vec<&'static str>, Vec<(u8, u8, bool)>);

fn world() -> impl Strategy<Value = World> {
    let raw_tenant = (
        subsequence(POOL.to_vec(), 1..=5).prop_shuffle(),
        prop::collection::vec((0u8..5, any::<u8>(), any::<bool>()), 5),
    );
    (1..1_000_000u64, prop::collection::vec(raw_tenant, 2..=4)).prop_map(|(revision, drawn)| {
        let mut world = World {
            revision,
            tenants: BTreeMap::new(),
            written_empty: BTreeSet::new(),
        };
        for (&name, raw) in TENANTS.iter().zip(drawn) {
            let tenant = tenant_of(name, raw, &mut world.written_empty);
            world.tenants.insert(name, tenant);
        }
        world
    })
}

fn tenant_of(
    name: &'static str,
    (apis, raw): RawTenant,
    written_empty: &mut BTreeSet<Api>,
) -> Tenant {
    let mut policies = BTreeMap::new();

    for (&api, (kind, bits, write_empty)) in apis.iter().zip(raw) {
        let policy = match kind {
            0 => Policy::Nothing,
            1 => Policy::AllowAll,
            2 => Policy::List(BTreeSet::new()),
            _ => Policy::List(
                apis.iter()
                    .enumerate()
                    .filter(|&(bit, &listed)| bits & (1 << bit) != 0 && listed != api)
                    .map(|(_, &listed)| listed)
                    .collect(),
            ),
        };
        if policy == Policy::Nothing && write_empty {
            written_empty.insert((name, api));
        }
        policies.insert(api, policy);
    }
    Tenant { apis, policies }
}

/// The world as a policy document, APIs in their order.
fn document(world: &World) -> String {
    let mut tenants = Map::new();

    for (&name, tenant) in &world.tenants {
        let mut access = Map::new();
        for (&api, policy) in &tenant.policies {
            let entry = match policy {
                Policy::Nothing if world.written_empty.contains(&(name, api)) => json!({}),
                Policy::Nothing => continue,
                Policy::AllowAll => json!({ "allow_all": true }),
                Policy::List(listed) => json!({ "allow": listed }),
            };
            access.insert(api.to_owned(), entry);
        }
        tenants.insert(
            name.to_owned(),
            json!({ "apis": tenant.apis, "cross_api_access": access }),
        );
    }
    json!({ "revision": world.revision, "tenants": tenants }).to_string()
}

/// The APIs whose every pair the gate is asked about: every API the world starts with, a
/// name no tenant has in each tenant, and an API of a tenant no world holds.
fn probes(world: &World) -> Vec<Api> {
    let mut probes: Vec<Api> = world
        .tenants
        .iter()
        .flat_map(|(&tenant, entry)| entry.apis.iter().map(move |&api| (tenant, api)))
        .collect();

    probes.extend(world.tenants.keys().map(|&tenant| (tenant, GHOST)));
    probes.push((STRANGER, POOL[0]));
    probes
}

fn step() -> impl Strategy<Value = Step> {
    let role = prop_oneof![
        6 => Just(Role::Own),
        1 => any::<Index>().prop_map(Role::OtherAdministrator),
        1 => Just(Role::Member),
        2 => Just(Role::Staff),
        1 => Just(Role::Unknown),
    ];
    let aim = prop_oneof![
        8 => any::<Index>().prop_map(Aim::Registered),
        1 => (select(&EVERY_TENANT[..]), select(&NAMES[..]))
            .prop_map(|(tenant, api)| Aim::Anywhere(tenant, api)),
    ];
    let plan = prop_oneof![
        2 => Just(Plan::AllowAll),
        4 => prop::collection::vec(pick(), 0..=4).prop_map(Plan::SetList),
        4 => pick().prop_map(Plan::Grant),
        3 => pick().prop_map(Plan::Revoke),
        1 => Just(Plan::Reset),
        1 => Just(Plan::RemoveApi),
    ];
    let based = prop_oneof![
        3 => Just(Based::Unstated),
        4 => Just(Based::Current),
        2 => (1..=3u64).prop_map(Based::Stale),
    ];

    (role, aim, plan, based).prop_map(|(role, aim, plan, based)| Step {
        role,
        aim,
        plan,
        based,
    })
}

fn pick() -> impl Strategy<Value = Pick> {
    prop_oneof![
        6 => any::<Index>().prop_map(Pick::Sibling),
        2 => any::<Index>().prop_map(Pick::Listed),
        1 => Just(Pick::Itself),
        1 => select(&NAMES[..]).prop_map(Pick::Named),
    ]
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(step(), 1..=40)
}

fn seen(record: &AuditRecord) -> Record {
    Record {
        revision: record.revision,
        tenant: record.tenant.to_string(),
        target: record.target.to_string(),
        action: record.action.clone(),
        actor: record.actor.clone(),
        before: record.before.clone(),
        after: record.after.clone(),
    }
}

/// The store's answer to `op` must be the model's.
fn check_outcome(
    op: &Op,
    want: &Result<Vec<Record>, Refusal>,
    got: &Result<Vec<AuditRecord>, AdminError>,
) -> Result<(), TestCaseError> {
    match (want, got) {
        (Ok(want), Ok(got)) => {
            let mut got: Vec<Record> = got.iter().map(seen).collect();
            got.sort_by(|a, b| a.target.cmp(&b.target));
            prop_assert_eq!(&got, want, "{:?}", op);
        }
        (Err(Refusal::Rules(rules)), Err(got)) => prop_assert!(
            matches!(got, AdminError::Rule { rule } if rules.contains(rule)),
            "{:?}: refused with {:?}, but the model breaks only {:?}",
            op,
            got,
            rules
        ),
        (Err(want), Err(got)) => {
            prop_assert_eq!(Some(got.clone()), refusal(op, want), "{:?}", op);
        }
        (want, got) => prop_assert!(
            false,
            "{:?}: the model says {:?}, the store {:?}",
            op,
            want,
            got
        ),
    }
    Ok(())
}

/// The crate's refusal for the model's `refusal` of `op`; `None` for broken rules, where
/// any of them will do.
fn refusal(op: &Op, refusal: &Refusal) -> Option<AdminError> {
    let (tenant, api) = op.target();

    Some(match refusal {
        Refusal::Forbidden => AdminError::Forbidden {
            actor: op.who().name(),
            tenant: tenant_id(tenant),
        },
        Refusal::UnknownTenant => AdminError::UnknownTenant {
            tenant: tenant_id(tenant),
        },
        Refusal::UnknownTarget => AdminError::UnknownTarget { api: id(api) },
        Refusal::Stale { expected, current } => AdminError::Stale {
            expected: *expected,
            current: *current,
        },
        Refusal::Rules(_) => return None,
        Refusal::NotListed(name) => AdminError::NotListed { api: id(name) },
    })
}

/// Every probe's policy and every pair's decision in `snapshot` must be the model's.
fn check_snapshot(model: &Model, snapshot: &Snapshot, probes: &[Api]) -> Result<(), TestCaseError> {
    prop_assert_eq!(snapshot.revision(), model.revision);
    let staff = Actor::staff("sam");

    for &target in probes {
        let read = PolicyState::read(snapshot, &staff, &api_ref(target));
        let tenant = model.tenants.get(target.0);
        let want = tenant.map(|entry| {
            entry
                .has(target.1)
                .then(|| entry.read(&entry.policy(target.1)))
        });
        match (want, read) {
            (Some(Some(policy)), Ok(state)) => {
                prop_assert_eq!(state.policy(), &policy, "{:?}", target);
                prop_assert_eq!(state.revision(), model.revision);
            }
            (Some(None), Err(AdminError::UnknownTarget { api })) => {
                prop_assert_eq!(api, id(target.1));
            }
            (None, Err(AdminError::UnknownTenant { tenant })) => {
                prop_assert_eq!(tenant, tenant_id(target.0));
            }
            (want, read) => prop_assert!(false, "{:?}: model {:?}, store {:?}", target, want, read),
        }
    }

    for &source in probes {
        for &target in probes {
            let decision = snapshot.decide(&api_ref(source), &api_ref(target));
            prop_assert_eq!(
                decision.is_allowed(),
                model.allows(source, target),
                "{:?} calling {:?}: {:?}",
                source,
                target,
                decision.reason()
            );
        }
    }
    Ok(())
}

/// How often each outcome came up, to show the generator reaches them all.
#[derive(Debug, Default)]
struct Tally {
    sequences: u64,
    steps: u64,
    outcomes: BTreeMap<String, u64>,
}

impl Tally {
    fn count(&mut self, op: &Op, got: &Result<Vec<AuditRecord>, AdminError>) {
        let outcome = match (op, got) {
            (Op::Write { act, .. }, Ok(_)) => format!("accepted {}", act.action()),
            (Op::Remove { .. }, Ok(_)) => String::from("accepted remove_api"),
            (_, Err(error)) => format!("refused {}", error.reason()),
        };
        *self.outcomes.entry(outcome).or_default() += 1;
        self.steps += 1;
    }

    fn report(&self, store: &str) -> String {
        let outcomes: Vec<String> = self
            .outcomes
            .iter()
            .map(|(outcome, count)| format!("{outcome} {count}"))
            .collect();

        format!(
            "{store}: {} sequences, {} operations; {}",
            self.sequences,
            self.steps,
            outcomes.join(", ")
        )
    }
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    })
}

/// One sequence on a `PolicyHandle`, where writes are based on the snapshot's revision.
fn in_memory(world: &World, steps: &[Step], tally: &mut Tally) -> Result<(), TestCaseError> {
    let policies = PolicyHandle::new();
    let revision = policies
        .publish_json(&document(world))
        .expect("the model's world is a valid document");
    let mut model = Model::new(world, Basis::Snapshot, revision);
    let probes = probes(world);
    let snapshot = policies.snapshot().expect("published");
    check_snapshot(&model, &snapshot, &probes)?;

    for step in steps {
        let op = model.resolve(step);
        let want = model.apply(&op);
        let got = match op.request() {
            Request::Write(write) => write.apply_to(&policies).map(|record| vec![record]),
            Request::Remove(remove) => remove_from(&policies, &remove),
        };

        check_outcome(&op, &want, &got)?;
        tally.count(&op, &got);
        let snapshot = policies.snapshot().expect("published");
        check_snapshot(&model, &snapshot, &probes)?;
    }
    tally.sequences += 1;
    Ok(())
}

/// Removes an API from the snapshot in force and publishes the next one.
fn remove_from(
    policies: &PolicyHandle,
    remove: &RemoveApi,
) -> Result<Vec<AuditRecord>, AdminError> {
    let snapshot = policies.snapshot().expect("published");
    let applied = remove.apply(&snapshot, snapshot.revision() + 1)?;

    policies
        .publish(applied.snapshot)
        .expect("nobody else publishes");
    Ok(applied.records)
}

#[test]
fn administration_of_a_policy_handle_follows_the_model() {
    let tally = RefCell::new(Tally::default());

    let result = runner(800).run(&(world(), steps()), |(world, steps)| {
        in_memory(&world, &steps, &mut tally.borrow_mut())
    });

    if let Err(error) = result {
        panic!("{error}");
    }
    println!("{}", tally.borrow().report("PolicyHandle"));
}

#[cfg(feature = "postgres")]
mod postgres {
    //! The same sequences in the real PostgreSQL, one fresh schema each.

    use tower_cross_api::PolicyDocument;
    use tower_cross_api::source::{PostgresError, PostgresStore};

    use super::database::{TestSchema, database_url};
    use super::*;

    /// The refusal as a value, and anything else the database says as a failed case.
    fn refused<T>(
        result: Result<T, PostgresError>,
    ) -> Result<Result<T, AdminError>, TestCaseError> {
        match result {
            Ok(value) => Ok(Ok(value)),
            Err(error) => match error.admin() {
                Some(refusal) => Ok(Err(refusal.clone())),
                None => Err(TestCaseError::fail(format!("the database failed: {error}"))),
            },
        }
    }

    /// The revision of each known probe's last change must be the model's.
    async fn check_revisions(
        store: &PostgresStore,
        model: &Model,
        targets: &[Api],
    ) -> Result<(), TestCaseError> {
        let staff = Actor::staff("sam");

        for &target in targets {
            let known = model.tenants.get(target.0).is_some_and(|t| t.has(target.1));
            if known {
                let state = store.read(&staff, &api_ref(target)).await;
                let state = state.expect("a known target reads");
                prop_assert_eq!(state.revision(), model.current(target), "{:?}", target);
            }
        }
        Ok(())
    }

    /// Each tenant's audit trail must hold exactly the model's records.
    async fn check_audit(
        store: &PostgresStore,
        model: &Model,
        world: &World,
    ) -> Result<(), TestCaseError> {
        let staff = Actor::staff("sam");
        let order = |a: &Record, b: &Record| (a.revision, &a.target).cmp(&(b.revision, &b.target));

        for &tenant in world.tenants.keys() {
            let trail = store.audit(&staff, &tenant_id(tenant), 10_000).await;
            let mut got: Vec<Record> = trail.expect("the audit trail").iter().map(seen).collect();
            let mut want: Vec<Record> = model
                .log
                .iter()
                .filter(|record| record.tenant == tenant)
                .cloned()
                .collect();

            got.sort_by(order);
            want.sort_by(order);
            prop_assert_eq!(got, want, "the audit trail of {}", tenant);
        }
        Ok(())
    }

    /// One sequence in a fresh schema, where writes are based on the target's revision.
    async fn sequence(
        url: &str,
        world: &World,
        steps: &[Step],
        tally: &mut Tally,
    ) -> Result<(), TestCaseError> {
        let schema = TestSchema::create(url).await;
        let store = PostgresStore::new(&schema.url()).expect("a store");
        store.migrate().await.expect("migrate");
        let document = PolicyDocument::from_json(&document(world)).expect("a valid document");
        prop_assert!(store.seed(&document).await.expect("seed"));
        let revision = store.revision().await.expect("the revision");
        let mut model = Model::new(world, Basis::Target, revision);
        let probes = probes(world);
        check_snapshot(
            &model,
            &store.snapshot().await.expect("a snapshot"),
            &probes,
        )?;
        check_revisions(&store, &model, &probes).await?;

        for step in steps {
            let op = model.resolve(step);
            let want = model.apply(&op);
            let got = match op.request() {
                Request::Write(write) => match refused(store.write(&write).await)? {
                    Ok(written) => {
                        prop_assert_eq!(written.state.revision(), model.revision);
                        prop_assert_eq!(written.state.policy(), &written.record.after);
                        Ok(vec![written.record])
                    }
                    Err(refusal) => Err(refusal),
                },
                Request::Remove(remove) => refused(store.remove_api(&remove).await)?,
            };

            check_outcome(&op, &want, &got)?;
            tally.count(&op, &got);
            prop_assert_eq!(
                store.revision().await.expect("the revision"),
                model.revision
            );
            check_snapshot(
                &model,
                &store.snapshot().await.expect("a snapshot"),
                &probes,
            )?;
            check_revisions(&store, &model, &[op.target()]).await?;
        }

        check_revisions(&store, &model, &probes).await?;
        check_audit(&store, &model, world).await?;
        tally.sequences += 1;
        Ok(())
    }

    #[test]
    fn administration_in_postgres_follows_the_model() {
        let Some(url) = database_url("administration_in_postgres_follows_the_model") else {
            return;
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let tally = RefCell::new(Tally::default());

        let result = runner(24).run(&(world(), steps()), |(world, steps)| {
            runtime.block_on(sequence(&url, &world, &steps, &mut tally.borrow_mut()))
        });

        if let Err(error) = result {
            panic!("{error}");
        }
        println!("{}", tally.borrow().report("PostgresStore"));
    }
}

#[test]
fn the_model_agrees_with_the_written_cases() {
    let tenant = |apis: Vec<&'static str>, policies: Vec<(&'static str, Policy)>| Tenant {
        apis,
        policies: policies.into_iter().collect(),
    };
    let world = World {
        revision: 1,
        tenants: BTreeMap::from([
            (
                "t1",
                tenant(
                    vec!["orders", "billing", "crm"],
                    vec![
                        ("orders", Policy::List(BTreeSet::from(["billing"]))),
                        ("billing", Policy::AllowAll),
                        ("crm", Policy::Nothing),
                    ],
                ),
            ),
            (
                "t2",
                tenant(vec!["ledger"], vec![("ledger", Policy::Nothing)]),
            ),
        ]),
        written_empty: BTreeSet::new(),
    };
    let ada = Who::Administrator("t1");
    let write = |who: &Who, target: Api, act: Act| Op::Write {
        who: who.clone(),
        target,
        act,
        expected: None,
    };
    let refusal = |op: Op| Model::new(&world, Basis::Snapshot, 1).apply(&op).err();
    let rules = |rules: Vec<Rule>| Some(Refusal::Rules(rules));

    let mut model = Model::new(&world, Basis::Snapshot, 1);
    let granted = model.apply(&write(&ada, ("t1", "crm"), Act::Grant("orders")));
    let granted = granted.expect("a grant to a sibling");
    assert_eq!(granted[0].after, TargetPolicy::List(vec![id("orders")]));
    assert_eq!((granted[0].revision, model.revision), (2, 2));
    assert!(model.allows(("t1", "orders"), ("t1", "crm")));
    assert!(!model.allows(("t1", "billing"), ("t1", "crm")));

    let orders = ("t1", "orders");
    assert_eq!(
        refusal(write(&ada, orders, Act::Grant("orders"))),
        rules(vec![Rule::SelfGrant])
    );
    let ledger = Rule::NotInTenant {
        listed: "ledger".into(),
    };
    assert_eq!(
        refusal(write(&ada, orders, Act::SetList(vec!["ledger"]))),
        rules(vec![ledger])
    );
    assert_eq!(
        refusal(write(&ada, ("t1", "billing"), Act::Grant("crm"))),
        rules(vec![Rule::AllowAllWithList])
    );
    assert_eq!(
        refusal(write(&ada, orders, Act::Revoke("crm"))),
        Some(Refusal::NotListed("crm"))
    );
    assert_eq!(
        refusal(write(&ada, ("t2", "ledger"), Act::AllowAll)),
        Some(Refusal::Forbidden)
    );
    assert_eq!(
        refusal(write(&Who::Member("t1"), orders, Act::AllowAll)),
        Some(Refusal::Forbidden)
    );
    assert_eq!(
        refusal(write(&Who::Staff, ("t1", "ghost"), Act::AllowAll)),
        Some(Refusal::UnknownTarget)
    );
    assert_eq!(
        refusal(write(&Who::Staff, (STRANGER, "orders"), Act::AllowAll)),
        Some(Refusal::UnknownTenant)
    );

    let mut model = Model::new(&world, Basis::Snapshot, 1);
    let removed = model.apply(&Op::Remove {
        who: ada,
        api: ("t1", "billing"),
    });
    let targets: Vec<String> = removed
        .expect("a removal")
        .into_iter()
        .map(|record| record.target)
        .collect();
    assert_eq!(targets, ["billing", "orders"]);
    assert_eq!(
        model.tenants["t1"].policy("orders"),
        Policy::List(BTreeSet::new())
    );
    assert!(!model.allows(("t1", "billing"), ("t1", "billing")));
}
