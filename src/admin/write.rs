//! Changing policies: the rules every write passes, and the new snapshot it makes.

use std::time::SystemTime;

use crate::id::{ApiRef, TenantId};
use crate::policy::{
    AccessDocument, PolicyDocument, PolicyError, PolicyHandle, Snapshot, TargetPolicy,
};

use super::state::find;
use super::{Actor, AdminError, AuditRecord, Change};

/// A change to one target's policy, by one actor, optionally based on a revision.
///
/// [`apply`](Self::apply) checks, in order: the actor may change the tenant's policies; the
/// tenant and the target exist; the policy is still at the revision the write was based on;
/// the change, validated with the whole tenant exactly as a published document is
/// (no self-grant, every listed API in the tenant, never allow-all with a list, valid
/// identifiers). It then makes the next snapshot and the audit record; it touches no request
/// and publishes nothing itself.
///
/// ```
/// use tower_cross_api::{ApiRef, PolicyHandle, Reason, TenantId};
/// use tower_cross_api::admin::{Actor, AdminError, Change, Write};
///
/// let policies = PolicyHandle::new();
/// policies.publish_json(r#"{ "tenants": { "acme": { "apis": ["orders", "billing"] } } }"#)?;
/// let orders: ApiRef = "acme/orders".parse()?;
/// let billing: ApiRef = "acme/billing".parse()?;
/// let ada = Actor::administrator("ada", TenantId::new("acme")?);
///
/// let record = Write::new(ada.clone(), orders, Change::Grant(*billing.api()))
///     .with_expected(1)
///     .apply_to(&policies)?;
/// assert_eq!(record.revision, 2);
/// assert_eq!(policies.decide(&billing, &orders).reason(), Reason::Listed);
///
/// // Based on revision 1, which is gone: refused, nothing changes.
/// let stale = Write::new(ada, orders, Change::Reset).with_expected(1).apply_to(&policies);
/// assert_eq!(stale, Err(AdminError::Stale { expected: 1, current: 2 }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    actor: Actor,
    target: ApiRef,
    change: Change,
    expected: Option<u64>,
}

/// What an accepted change made: the next snapshot and the audit records, one per target
/// whose policy changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// The next snapshot, validated, at the revision given.
    pub snapshot: Snapshot,
    /// The audit records of the change.
    pub records: Vec<AuditRecord>,
}

impl Write {
    /// `actor` asks for `change` on `target`'s policy, whatever its revision.
    pub const fn new(actor: Actor, target: ApiRef, change: Change) -> Self {
        Self {
            actor,
            target,
            change,
            expected: None,
        }
    }

    /// Bases the write on `revision` of the target's policy: it is refused as stale if the
    /// policy is no longer at that revision.
    pub const fn with_expected(mut self, revision: u64) -> Self {
        self.expected = Some(revision);
        self
    }

    /// The actor.
    pub const fn actor(&self) -> &Actor {
        &self.actor
    }

    /// The target.
    pub const fn target(&self) -> &ApiRef {
        &self.target
    }

    /// The change.
    pub const fn change(&self) -> &Change {
        &self.change
    }

    /// The revision the write was based on, if it stated one.
    pub const fn expected(&self) -> Option<u64> {
        self.expected
    }

    /// Checks the write against `snapshot`, in which the target's policy is at revision
    /// `current`, and makes the snapshot at revision `next` with the change applied. A
    /// refusal is logged with its reason.
    ///
    /// `current` is the store's revision of the target's policy: a store that keeps one
    /// revision per target passes it; [`apply_to`](Self::apply_to) passes the snapshot's.
    ///
    /// # Errors
    ///
    /// An [`AdminError`] naming the rule or the check that refused the write.
    pub fn apply(
        &self,
        snapshot: &Snapshot,
        current: u64,
        next: u64,
    ) -> Result<Applied, AdminError> {
        let applied = self.check_and_build(snapshot, current, next);

        match &applied {
            Ok(_) => tracing::info!(
                actor = self.actor.name(),
                role = self.actor.role(),
                tenant = %self.target.tenant(),
                target = %self.target.api(),
                action = self.change.action(),
                revision = next,
                "cross-API policy changed"
            ),
            Err(error) => refused(&self.actor, &self.target, self.change.action(), error),
        }
        applied
    }

    /// Applies the write to the snapshot in force in `policies` and publishes the result at
    /// the next revision: the whole store is the handle, and the revision a write is based
    /// on is the snapshot's.
    ///
    /// # Errors
    ///
    /// As for [`apply`](Self::apply); [`AdminError::Stale`] too when another publisher came
    /// first. No snapshot yet reads as an unknown tenant, to an actor who may change it.
    pub fn apply_to(&self, policies: &PolicyHandle) -> Result<AuditRecord, AdminError> {
        let Some(snapshot) = policies.snapshot() else {
            let refusal =
                authorise(&self.actor, self.target.tenant()).and(Err(AdminError::UnknownTenant {
                    tenant: *self.target.tenant(),
                }));
            if let Err(error) = &refusal {
                refused(&self.actor, &self.target, self.change.action(), error);
            }
            return refusal;
        };
        let current = snapshot.revision();

        let applied = self.apply(&snapshot, current, current.saturating_add(1))?;
        policies
            .publish(applied.snapshot)
            .map_err(|error| match error {
                PolicyError::StaleRevision { current, .. } => AdminError::Stale {
                    expected: snapshot.revision(),
                    current,
                },
                other => AdminError::Policy(other),
            })?;
        applied
            .records
            .into_iter()
            .next()
            .ok_or(AdminError::Policy(PolicyError::MissingRevision))
    }

    fn check_and_build(
        &self,
        snapshot: &Snapshot,
        current: u64,
        next: u64,
    ) -> Result<Applied, AdminError> {
        authorise(&self.actor, self.target.tenant())?;
        let before = find(snapshot, &self.target)?;
        if let Some(expected) = self.expected.filter(|&expected| expected != current) {
            return Err(AdminError::Stale { expected, current });
        }

        let after = self.change.apply(&before)?;
        let mut document = snapshot.to_document();
        if let Some(tenant) = document.tenants.get_mut(self.target.tenant().as_str()) {
            let target = self.target.api().to_string();
            let enforce = tenant
                .cross_api_access
                .get(&target)
                .is_none_or(|access| access.enforce);
            let access = match after.to_document() {
                Some(access) => Some(AccessDocument { enforce, ..access }),
                None => (!enforce).then(|| AccessDocument {
                    enforce,
                    ..AccessDocument::default()
                }),
            };
            match access {
                Some(access) => tenant.cross_api_access.insert(target, access),
                None => tenant.cross_api_access.remove(&target),
            };
        }

        let snapshot = build(document, next)?;
        let record = AuditRecord {
            actor: self.actor.name().to_owned(),
            tenant: *self.target.tenant(),
            target: *self.target.api(),
            action: self.change.action().to_owned(),
            before,
            after: find(&snapshot, &self.target)?,
            revision: next,
            at: SystemTime::now(),
        };
        Ok(Applied {
            snapshot,
            records: vec![record],
        })
    }
}

/// The removal of an API from its tenant: its own policy goes, and so does every listing
/// of it in its siblings' lists.
///
/// ```
/// use tower_cross_api::{ApiRef, Snapshot, TargetPolicy, TenantId};
/// use tower_cross_api::admin::{Actor, RemoveApi};
///
/// let snapshot = Snapshot::from_json(r#"{ "revision": 1, "tenants": { "acme": {
///     "apis": ["orders", "billing", "crm"],
///     "cross_api_access": { "orders": { "allow": ["billing", "crm"] } }
/// } } }"#)?;
/// let billing: ApiRef = "acme/billing".parse()?;
/// let orders: ApiRef = "acme/orders".parse()?;
///
/// let removed = RemoveApi::new(Actor::staff("sam"), billing).apply(&snapshot, 2)?;
/// assert!(!removed.snapshot.contains(&billing));
/// assert_eq!(
///     removed.snapshot.policy(&orders),
///     Some(TargetPolicy::List(vec!["crm".parse()?]))
/// );
/// assert_eq!(removed.records.len(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoveApi {
    actor: Actor,
    api: ApiRef,
}

impl RemoveApi {
    /// `actor` asks to remove `api` from its tenant.
    pub const fn new(actor: Actor, api: ApiRef) -> Self {
        Self { actor, api }
    }

    /// The API to remove.
    pub const fn api(&self) -> &ApiRef {
        &self.api
    }

    /// Makes the snapshot at revision `next` without the API, with one audit record for the
    /// API's own policy and one for each list that named it.
    ///
    /// # Errors
    ///
    /// [`AdminError::Forbidden`], [`AdminError::UnknownTenant`] or
    /// [`AdminError::UnknownTarget`]; the refusal is logged.
    pub fn apply(&self, snapshot: &Snapshot, next: u64) -> Result<Applied, AdminError> {
        let applied = self.check_and_build(snapshot, next);

        match &applied {
            Ok(applied) => tracing::info!(
                actor = self.actor.name(),
                role = self.actor.role(),
                tenant = %self.api.tenant(),
                api = %self.api.api(),
                lists = applied.records.len().saturating_sub(1),
                revision = next,
                "API removed from its tenant"
            ),
            Err(error) => refused(&self.actor, &self.api, "remove_api", error),
        }
        applied
    }

    fn check_and_build(&self, snapshot: &Snapshot, next: u64) -> Result<Applied, AdminError> {
        authorise(&self.actor, self.api.tenant())?;
        let own = find(snapshot, &self.api)?;

        let removed = self.api.api().to_string();
        let mut document = snapshot.to_document();
        if let Some(tenant) = document.tenants.get_mut(self.api.tenant().as_str()) {
            tenant.apis.retain(|api| *api != removed);
            tenant.cross_api_access.remove(&removed);
            for access in tenant.cross_api_access.values_mut() {
                if let Some(listed) = access.allow.as_mut() {
                    listed.retain(|api| *api != removed);
                }
            }
        }
        let next_snapshot = build(document, next)?;

        let record = |target: ApiRef, before, after| AuditRecord {
            actor: self.actor.name().to_owned(),
            tenant: *self.api.tenant(),
            target: *target.api(),
            action: String::from("remove_api"),
            before,
            after,
            revision: next,
            at: SystemTime::now(),
        };
        let mut records = vec![record(self.api, own, TargetPolicy::NothingConfigured)];
        for sibling in snapshot.apis_of(self.api.tenant()) {
            let target = ApiRef::new(*self.api.tenant(), sibling);
            let (Some(before), Some(after)) =
                (snapshot.policy(&target), next_snapshot.policy(&target))
            else {
                continue;
            };
            if before != after {
                records.push(record(target, before, after));
            }
        }
        Ok(Applied {
            snapshot: next_snapshot,
            records,
        })
    }
}

fn authorise(actor: &Actor, tenant: &TenantId) -> Result<(), AdminError> {
    if actor.may_change(tenant) {
        Ok(())
    } else {
        Err(AdminError::Forbidden {
            actor: actor.name().to_owned(),
            tenant: *tenant,
        })
    }
}

fn build(mut document: PolicyDocument, revision: u64) -> Result<Snapshot, AdminError> {
    document.revision = Some(revision);
    Snapshot::from_document(&document).map_err(AdminError::from_policy)
}

fn refused(actor: &Actor, target: &ApiRef, action: &str, error: &AdminError) {
    tracing::warn!(
        actor = actor.name(),
        role = actor.role(),
        tenant = %target.tenant(),
        target = %target.api(),
        action,
        reason = error.reason(),
        %error,
        "cross-API policy change refused"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::Reason;
    use crate::id::ApiId;
    use crate::policy::Rule;

    const POLICY: &str = r#"{ "tenants": {
        "t1": {
            "apis": ["orders", "billing", "crm"],
            "cross_api_access": {
                "orders": { "allow": ["billing"] },
                "billing": { "allow_all": true }
            }
        },
        "t2": { "apis": ["ledger"] }
    } }"#;

    fn api(value: &str) -> ApiRef {
        value.parse().expect("an API reference")
    }

    fn id(value: &str) -> ApiId {
        ApiId::new(value).expect("an identifier")
    }

    fn admin() -> Actor {
        Actor::administrator("ada", TenantId::new("t1").expect("id"))
    }

    fn handle() -> PolicyHandle {
        let handle = PolicyHandle::new();
        handle.publish_json(POLICY).expect("valid");
        handle
    }

    #[test]
    fn without_a_snapshot_the_actor_is_checked_first() {
        let empty = PolicyHandle::new();
        let write = |actor: Actor| Write::new(actor, api("t1/orders"), Change::Reset);
        let t1 = TenantId::new("t1").expect("id");

        assert_eq!(
            write(Actor::member("mia", t1)).apply_to(&empty),
            Err(AdminError::Forbidden {
                actor: "mia".to_owned(),
                tenant: t1,
            })
        );
        assert_eq!(
            write(Actor::Unknown).apply_to(&empty),
            Err(AdminError::Forbidden {
                actor: "unknown".to_owned(),
                tenant: t1,
            })
        );
        assert_eq!(
            write(admin()).apply_to(&empty),
            Err(AdminError::UnknownTenant { tenant: t1 })
        );
        assert_eq!(empty.revision(), None);
    }

    #[test]
    fn operations_publish_the_next_revision_with_a_record() {
        let policies = handle();
        let crm = api("t1/crm");

        let record = Write::new(admin(), crm, Change::Grant(id("orders")))
            .apply_to(&policies)
            .expect("grant");
        assert_eq!(record.before, TargetPolicy::NothingConfigured);
        assert_eq!(record.after, TargetPolicy::List(vec![id("orders")]));
        assert_eq!((record.revision, policies.revision()), (2, Some(2)));
        assert_eq!(
            policies.decide(&api("t1/orders"), &crm).reason(),
            Reason::Listed
        );

        let record = Write::new(admin(), crm, Change::AllowAll)
            .apply_to(&policies)
            .expect("allow all");
        assert_eq!(record.after, TargetPolicy::AllowAll);
        let record = Write::new(admin(), crm, Change::Reset)
            .apply_to(&policies)
            .expect("reset");
        assert_eq!(record.after, TargetPolicy::NothingConfigured);
        assert_eq!(
            policies.decide(&api("t1/orders"), &crm).reason(),
            Reason::NothingConfigured
        );
    }

    #[test]
    fn refusals_name_the_rule_and_change_nothing() {
        let policies = handle();
        let orders = api("t1/orders");
        let refuse = |actor: Actor, target: ApiRef, change: Change| {
            Write::new(actor, target, change)
                .apply_to(&policies)
                .expect_err("refused")
        };
        let rule = |rule| AdminError::Rule { rule };

        assert_eq!(
            refuse(admin(), orders, Change::Grant(id("orders"))),
            rule(Rule::SelfGrant)
        );
        assert_eq!(
            refuse(admin(), orders, Change::SetList(vec![id("ledger")])),
            rule(Rule::NotInTenant {
                listed: "ledger".into()
            })
        );
        assert_eq!(
            refuse(admin(), api("t1/billing"), Change::Grant(id("crm"))),
            rule(Rule::AllowAllWithList)
        );
        assert_eq!(
            refuse(admin(), orders, Change::Revoke(id("crm"))),
            AdminError::NotListed { api: id("crm") }
        );
        assert_eq!(
            refuse(admin(), api("t2/ledger"), Change::AllowAll),
            AdminError::Forbidden {
                actor: "ada".into(),
                tenant: TenantId::new("t2").expect("id")
            }
        );
        let member = Actor::member("alice", TenantId::new("t1").expect("id"));
        assert_eq!(
            refuse(member, orders, Change::AllowAll).reason(),
            "forbidden"
        );
        assert_eq!(
            refuse(Actor::Unknown, orders, Change::AllowAll).reason(),
            "forbidden"
        );
        assert_eq!(
            refuse(Actor::staff("sam"), api("t1/ghost"), Change::AllowAll),
            AdminError::UnknownTarget { api: id("ghost") }
        );
        assert_eq!(policies.revision(), Some(1));
    }

    #[test]
    fn a_stale_write_is_refused() {
        let policies = handle();
        let write = Write::new(admin(), api("t1/crm"), Change::AllowAll).with_expected(1);

        assert!(write.apply_to(&policies).is_ok());
        assert_eq!(
            write.apply_to(&policies),
            Err(AdminError::Stale {
                expected: 1,
                current: 2
            })
        );
    }

    #[test]
    fn removing_an_api_clears_every_listing() {
        let snapshot = handle().snapshot().expect("a snapshot");

        let removed = RemoveApi::new(admin(), api("t1/billing"))
            .apply(&snapshot, 2)
            .expect("removed");
        assert!(!removed.snapshot.contains(&api("t1/billing")));
        assert_eq!(
            removed.snapshot.policy(&api("t1/orders")),
            Some(TargetPolicy::List(Vec::new()))
        );
        let targets: Vec<&str> = removed.records.iter().map(|r| r.target.as_str()).collect();
        assert_eq!(targets, ["billing", "orders"]);

        let member = Actor::member("alice", TenantId::new("t1").expect("id"));
        assert!(
            RemoveApi::new(member, api("t1/crm"))
                .apply(&snapshot, 2)
                .is_err()
        );
    }

    #[test]
    fn a_write_keeps_the_targets_audit_mode() {
        let policies = PolicyHandle::new();
        policies
            .publish_json(
                r#"{ "tenants": { "t1": {
                    "apis": ["orders", "billing"],
                    "cross_api_access": { "orders": { "allow": [], "enforce": false } }
                } } }"#,
            )
            .expect("valid");
        let orders = api("t1/orders");
        let enforce = |policies: &PolicyHandle| {
            let document = policies.snapshot().expect("a snapshot").to_document();
            document.tenants["t1"].cross_api_access["orders"].enforce
        };

        Write::new(admin(), orders, Change::Grant(id("billing")))
            .apply_to(&policies)
            .expect("grant");
        assert!(!enforce(&policies));
        Write::new(admin(), orders, Change::Reset)
            .apply_to(&policies)
            .expect("reset");
        assert!(!enforce(&policies));
    }
}
