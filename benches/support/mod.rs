//! What the `gate` and `ratios` benches share: the generated policies, the requests of each
//! kind, the floor they are compared with, and the two peers set up on the same policy.
//!
//! Each bench uses a part of it, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::hash::BuildHasher;
use std::pin::pin;
use std::str::FromStr;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll, Waker};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{Request, Response};
use tower::Layer;
use tower::util::ServiceFn;
use tower_cross_api::{
    AccessDocument, ApiRef, CrossApiLayer, CrossApiService, PolicyDocument, PolicyHandle, Reason,
    Snapshot, TenantDocument, X_SOURCE_API, X_TARGET_API,
};

/// A snapshot size: `tenants` tenants of `apis_per_tenant` APIs each.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Size {
    /// The label in reports: the number of APIs.
    pub(crate) label: &'static str,
    /// Tenants.
    pub(crate) tenants: usize,
    /// APIs per tenant.
    pub(crate) apis_per_tenant: usize,
}

impl Size {
    /// All APIs.
    pub(crate) const fn apis(self) -> usize {
        self.tenants * self.apis_per_tenant
    }
}

/// 10 APIs in one tenant, 10 000 APIs over 1 000 tenants, 1 000 000 APIs over 10 000.
pub(crate) const SIZES: [Size; 3] = [
    Size {
        label: "10",
        tenants: 1,
        apis_per_tenant: 10,
    },
    Size {
        label: "10k",
        tenants: 1_000,
        apis_per_tenant: 10,
    },
    Size {
        label: "1M",
        tenants: 10_000,
        apis_per_tenant: 100,
    },
];

/// The kinds of request every engine is measured on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The target lists the source.
    Listed,
    /// The target allows all.
    AllowAll,
    /// The target has a list without the source.
    Denied,
    /// The target is not an API of the snapshot.
    UnknownTarget,
    /// Neither end's tenant is in the snapshot.
    UnknownTenant,
}

impl Kind {
    /// Every kind, in report order.
    pub(crate) const ALL: [Self; 5] = [
        Self::Listed,
        Self::AllowAll,
        Self::Denied,
        Self::UnknownTarget,
        Self::UnknownTenant,
    ];

    /// The label in reports.
    pub(crate) const fn label(self) -> &'static str {
        match self {
            Self::Listed => "allow_listed",
            Self::AllowAll => "allow_all",
            Self::Denied => "deny_not_listed",
            Self::UnknownTarget => "unknown_target",
            Self::UnknownTenant => "unknown_tenant",
        }
    }

    /// The gate's reason for every request of this kind.
    pub(crate) const fn reason(self) -> Reason {
        match self {
            Self::Listed => Reason::Listed,
            Self::AllowAll => Reason::AllowAll,
            Self::Denied => Reason::NotListed,
            Self::UnknownTarget => Reason::UnknownTarget,
            Self::UnknownTenant => Reason::UnknownTenant,
        }
    }
}

/// The policy of API `index` in a tenant of `count` APIs: every fourth allows all, the next
/// lists its 8 following siblings, the next has nothing, the next lists its 4 following
/// siblings. Lists wrap around and never hold the target itself.
fn access(index: usize, count: usize) -> Option<AccessDocument> {
    let listed = |len: usize| AccessDocument {
        allow: Some(
            (1..=len.min(count - 1))
                .map(|step| api_name((index + step) % count))
                .collect(),
        ),
        ..AccessDocument::default()
    };

    match index % 4 {
        0 => Some(AccessDocument {
            allow_all: true,
            ..AccessDocument::default()
        }),
        1 => Some(listed(8)),
        3 => Some(listed(4)),
        _ => None,
    }
}

/// The name of tenant `index`.
pub(crate) fn tenant_name(index: usize) -> String {
    format!("t{index}")
}

/// The name of API `index` of a tenant.
pub(crate) fn api_name(index: usize) -> String {
    format!("api{index}")
}

/// The policy document of `size`, at `revision`.
pub(crate) fn document(size: Size, revision: u64) -> PolicyDocument {
    let tenants = (0..size.tenants)
        .map(|tenant| {
            let apis = (0..size.apis_per_tenant).map(api_name).collect();
            let cross_api_access = (0..size.apis_per_tenant)
                .filter_map(|api| Some((api_name(api), access(api, size.apis_per_tenant)?)))
                .collect();
            let registry = TenantDocument {
                apis,
                cross_api_access,
            };
            (tenant_name(tenant), registry)
        })
        .collect();

    PolicyDocument {
        revision: Some(revision),
        tenants,
    }
}

/// The same APIs as [`document`] with no policy at all, to tell the cost of an API from the
/// cost of a grant.
pub(crate) fn document_without_policies(size: Size) -> PolicyDocument {
    let mut document = document(size, 1);
    for registry in document.tenants.values_mut() {
        registry.cross_api_access.clear();
    }
    document
}

/// Adds or removes one caller of one list in the first tenant: a one-grant change.
pub(crate) fn toggle_one_grant(document: &mut PolicyDocument) {
    let access = document
        .tenants
        .values_mut()
        .next()
        .and_then(|tenant| tenant.cross_api_access.get_mut(&api_name(3)))
        .and_then(|access| access.allow.as_mut())
        .expect("api3 has a list");
    let caller = api_name(0);
    if access.last() == Some(&caller) {
        access.pop();
    } else {
        access.push(caller);
    }
}

/// A reference `<tenant>/<api>` as text.
pub(crate) fn reference(tenant: usize, api: usize) -> String {
    format!("{}/{}", tenant_name(tenant), api_name(api))
}

/// One request: the source and the target, as text and parsed.
#[derive(Clone, Debug)]
pub(crate) struct Call {
    /// `<tenant>/<api>` of the source.
    pub(crate) source_text: String,
    /// `<tenant>/<api>` of the target.
    pub(crate) target_text: String,
    /// The source, parsed.
    pub(crate) source: ApiRef,
    /// The target, parsed.
    pub(crate) target: ApiRef,
}

impl Call {
    fn new(source_text: String, target_text: String) -> Self {
        let source = source_text.parse().expect("a valid source reference");
        let target = target_text.parse().expect("a valid target reference");
        Self {
            source_text,
            target_text,
            source,
            target,
        }
    }

    /// A request of `kind` in tenant `tenant`, around API slot `slot` (any number).
    pub(crate) fn of_kind(kind: Kind, size: Size, tenant: usize, slot: usize) -> Self {
        let count = size.apis_per_tenant;
        let group = (slot % (count / 4).max(1)) * 4;

        match kind {
            Kind::Listed => Self::new(
                reference(tenant, (group + 2) % count),
                reference(tenant, group + 1),
            ),
            Kind::AllowAll => Self::new(
                reference(tenant, (group + 3) % count),
                reference(tenant, group),
            ),
            Kind::Denied => Self::new(
                reference(tenant, (group + 1 + 9) % count),
                reference(tenant, group + 1),
            ),
            Kind::UnknownTarget => Self::new(
                reference(tenant, group),
                format!("{}/ghost{slot}", tenant_name(tenant)),
            ),
            Kind::UnknownTenant => Self::new(
                format!("ghost{slot}/{}", api_name(group + 2)),
                format!("ghost{slot}/{}", api_name(group)),
            ),
        }
    }

    /// The same request always: the middle tenant, the first slot.
    pub(crate) fn hot(kind: Kind, size: Size) -> Self {
        Self::of_kind(kind, size, size.tenants / 2, 0)
    }

    /// `count` requests of `kind` over random tenants and slots, the same for every run.
    pub(crate) fn random(kind: Kind, size: Size, count: usize) -> Vec<Self> {
        let mut random = XorShift(0x9e37_79b9_7f4a_7c15 ^ size.apis() as u64);
        (0..count)
            .map(|_| {
                let tenant = random.below(size.tenants);
                let slot = random.below(size.apis_per_tenant);
                Self::of_kind(kind, size, tenant, slot)
            })
            .collect()
    }

    /// The request as the layer sees it: both identity headers.
    pub(crate) fn request(&self) -> Request<()> {
        Request::builder()
            .uri("/collections/c1")
            .header(X_SOURCE_API, self.source_text.as_str())
            .header(X_TARGET_API, self.target_text.as_str())
            .body(())
            .expect("a valid request")
    }
}

/// A small, fixed pseudo-random sequence, so that every run draws the same keys.
#[derive(Debug)]
pub(crate) struct XorShift(pub u64);

impl XorShift {
    /// A number in `0..bound`.
    pub(crate) fn below(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % bound as u64) as usize
    }
}

/// A snapshot of `size` published in a handle.
pub(crate) fn handle(size: Size) -> PolicyHandle {
    let snapshot = Snapshot::from_document(&document(size, 1)).expect("a valid document");
    PolicyHandle::with_snapshot(snapshot)
}

/// Checks that `decide` gives the gate's decision on every call, before anything is timed.
pub(crate) fn check_agreement(
    engine: &str,
    handle: &PolicyHandle,
    calls: &[Call],
    mut decide: impl FnMut(&Call) -> bool,
) {
    for call in calls {
        let gate = handle.decide(&call.source, &call.target).is_allowed();
        let peer = decide(call);
        assert_eq!(
            peer, gate,
            "{engine} disagrees with the gate on {} -> {}",
            call.source_text, call.target_text
        );
    }
}

/// The physical floor: the key set of a snapshot as a plain map from `<tenant>/<api>` to an
/// index, behind an `ArcSwap` and behind an `RwLock`.
#[derive(Debug)]
pub(crate) struct Floor<S> {
    /// The map behind an `ArcSwap`.
    pub(crate) swapped: ArcSwap<HashMap<String, u32, S>>,
    /// The same map behind an `RwLock<Arc<_>>`.
    pub(crate) locked: RwLock<Arc<HashMap<String, u32, S>>>,
}

impl<S: BuildHasher + Default> Floor<S> {
    /// Every API of `size`.
    pub(crate) fn new(size: Size) -> Self {
        let mut map = HashMap::with_capacity_and_hasher(size.apis(), S::default());
        for tenant in 0..size.tenants {
            for api in 0..size.apis_per_tenant {
                map.insert(reference(tenant, api), map.len() as u32);
            }
        }

        let map = Arc::new(map);
        Self {
            swapped: ArcSwap::new(map.clone()),
            locked: RwLock::new(map),
        }
    }

    /// One snapshot load and two hash probes: what a decision cannot go below.
    pub(crate) fn probe(&self, source: &str, target: &str) -> bool {
        let map = self.swapped.load();
        map.get(target).is_some() && map.get(source).is_some()
    }
}

/// The inner service of the layer benches: answers at once, with an empty body.
pub(crate) type Inner = ServiceFn<fn(Request<()>) -> Ready<Result<Response<Bytes>, Infallible>>>;

/// The inner service.
pub(crate) fn inner() -> Inner {
    fn answer(_: Request<()>) -> Ready<Result<Response<Bytes>, Infallible>> {
        ready(Ok(Response::new(Bytes::new())))
    }
    tower::service_fn(answer as fn(_) -> _)
}

/// The inner service behind the gate.
pub(crate) fn gated(handle: PolicyHandle) -> CrossApiService<Inner> {
    CrossApiLayer::new(handle).layer(inner())
}

/// Drives a future that is ready at once, as every service of these benches returns.
pub(crate) fn now<F: Future>(future: F) -> F::Output {
    let mut context = Context::from_waker(Waker::noop());
    match pin!(future).poll(&mut context) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the bench services answer at once"),
    }
}

/// Cedar: one policy over the entities of the snapshot, built once.
pub(crate) mod cedar {
    use super::*;
    use cedar_policy::{
        Authorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid,
        PolicySet, Request, RestrictedExpression,
    };
    use std::collections::{HashMap, HashSet};

    /// The one policy: same tenant, and the target allows all, lists the source, or is it.
    pub(crate) const POLICY: &str = r#"
        permit(principal, action == Action::"call", resource)
        when {
            principal.tenant == resource.tenant &&
            (resource.allow_all || resource.callers.contains(principal) || principal == resource)
        };
    "#;

    /// What cedar needs to decide.
    pub(crate) struct Engine {
        authorizer: Authorizer,
        policies: PolicySet,
        entities: Entities,
        api_type: EntityTypeName,
        action: EntityUid,
    }

    impl std::fmt::Debug for Engine {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("cedar::Engine")
        }
    }

    impl Engine {
        /// Every API of `document` as an `Api` entity with its tenant and policy.
        pub(crate) fn new(document: &PolicyDocument) -> Self {
            let api_type = EntityTypeName::from_str("Api").expect("a type name");
            let uid = |text: &str| {
                EntityUid::from_type_name_and_id(api_type.clone(), EntityId::new(text))
            };

            let mut entities = Vec::new();
            for (tenant, registry) in &document.tenants {
                for api in &registry.apis {
                    let access = registry.cross_api_access.get(api);
                    let allow_all = access.is_some_and(|access| access.allow_all);
                    let callers = access
                        .and_then(|access| access.allow.as_ref())
                        .into_iter()
                        .flatten()
                        .map(|caller| {
                            RestrictedExpression::new_entity_uid(uid(&format!("{tenant}/{caller}")))
                        });
                    let attributes = HashMap::from([
                        (
                            String::from("tenant"),
                            RestrictedExpression::new_string(tenant.clone()),
                        ),
                        (
                            String::from("allow_all"),
                            RestrictedExpression::new_bool(allow_all),
                        ),
                        (
                            String::from("callers"),
                            RestrictedExpression::new_set(callers),
                        ),
                    ]);
                    let entity =
                        Entity::new(uid(&format!("{tenant}/{api}")), attributes, HashSet::new())
                            .expect("a valid entity");
                    entities.push(entity);
                }
            }

            Self {
                authorizer: Authorizer::new(),
                policies: PolicySet::from_str(POLICY).expect("a valid policy"),
                entities: Entities::from_entities(entities, None).expect("valid entities"),
                action: EntityUid::from_type_name_and_id(
                    EntityTypeName::from_str("Action").expect("a type name"),
                    EntityId::new("call"),
                ),
                api_type,
            }
        }

        /// Builds cedar's request for `call`.
        pub(crate) fn request(&self, call: &Call) -> Request {
            let uid = |text: &str| {
                EntityUid::from_type_name_and_id(self.api_type.clone(), EntityId::new(text))
            };
            Request::new(
                uid(&call.source_text),
                self.action.clone(),
                uid(&call.target_text),
                Context::empty(),
                None,
            )
            .expect("a valid request")
        }

        /// Authorizes a request already built.
        pub(crate) fn authorize(&self, request: &Request) -> bool {
            self.authorizer
                .is_authorized(request, &self.policies, &self.entities)
                .decision()
                == Decision::Allow
        }

        /// Builds and authorizes.
        pub(crate) fn decide(&self, call: &Call) -> bool {
            self.authorize(&self.request(call))
        }
    }
}

/// Casbin: a matcher that checks the caller belongs to the target's tenant, so that an
/// unknown caller does not pass an allow-all target.
pub(crate) mod casbin {
    use super::*;
    use ::casbin::prelude::*;

    /// The model: a policy line per allowed (source, target) with `*` for allow-all and a
    /// grouping line per API into its tenant.
    pub(crate) const MODEL: &str = r#"
[request_definition]
r = sub, obj

[policy_definition]
p = sub, obj, ten

[role_definition]
g = _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = r.obj == p.obj && (r.sub == p.sub || (p.sub == "*" && g(r.sub, p.ten)))
"#;

    /// The policy lines of `document`: allow-all targets, listed callers, and every API
    /// calling itself.
    fn rules(document: &PolicyDocument) -> (Vec<Vec<String>>, Vec<Vec<String>>) {
        let mut policies = Vec::new();
        let mut groupings = Vec::new();

        for (tenant, registry) in &document.tenants {
            for api in &registry.apis {
                let target = format!("{tenant}/{api}");
                groupings.push(vec![target.clone(), tenant.clone()]);
                policies.push(vec![target.clone(), target.clone(), tenant.clone()]);

                let Some(access) = registry.cross_api_access.get(api) else {
                    continue;
                };
                if access.allow_all {
                    policies.push(vec![String::from("*"), target.clone(), tenant.clone()]);
                }
                for caller in access.allow.iter().flatten() {
                    policies.push(vec![
                        format!("{tenant}/{caller}"),
                        target.clone(),
                        tenant.clone(),
                    ]);
                }
            }
        }
        (policies, groupings)
    }

    async fn fill<E: MgmtApi>(enforcer: &mut E, document: &PolicyDocument) {
        let (policies, groupings) = rules(document);
        enforcer
            .add_policies(policies)
            .await
            .expect("policies added");
        enforcer
            .add_grouping_policies(groupings)
            .await
            .expect("groupings added");
    }

    /// A plain enforcer on `document`.
    pub(crate) fn plain(document: &PolicyDocument) -> Enforcer {
        runtime().block_on(async {
            let model = DefaultModel::from_str(MODEL).await.expect("a valid model");
            let mut enforcer = Enforcer::new(model, MemoryAdapter::default())
                .await
                .expect("an enforcer");
            fill(&mut enforcer, document).await;
            enforcer
        })
    }

    /// A cached enforcer on `document`.
    pub(crate) fn cached(document: &PolicyDocument) -> CachedEnforcer {
        runtime().block_on(async {
            let model = DefaultModel::from_str(MODEL).await.expect("a valid model");
            let mut enforcer = CachedEnforcer::new(model, MemoryAdapter::default())
                .await
                .expect("an enforcer");
            fill(&mut enforcer, document).await;
            enforcer
        })
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
    }

    /// Decides `call` with `enforcer`.
    pub(crate) fn decide<E: CoreApi>(enforcer: &E, call: &Call) -> bool {
        enforcer
            .enforce((call.source_text.as_str(), call.target_text.as_str()))
            .expect("casbin decides")
    }
}
