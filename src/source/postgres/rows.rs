//! The statements that read and write the schema's rows.

use std::collections::BTreeMap;
use std::time::SystemTime;

use tokio_postgres::GenericClient;
use tokio_postgres::types::ToSql;

use super::PostgresError;
use crate::admin::{AccessJson, AuditRecord};
use crate::id::{ApiRef, TenantId};
use crate::policy::{AccessDocument, PolicyDocument, TargetPolicy, TenantDocument};

/// Reads the policies of every tenant, or of `tenant` alone, as a document at the revision
/// the rows are at. Call it inside one transaction so that the rows and the revision agree.
pub(super) async fn read_document<C: GenericClient>(
    client: &C,
    tenant: Option<&str>,
) -> Result<PolicyDocument, PostgresError> {
    let revision = read_revision(client, false).await?;
    let filter: &[&(dyn ToSql + Sync)] = &[&tenant];
    let mut tenants: BTreeMap<String, TenantDocument> = BTreeMap::new();

    let sql = "SELECT tenant::text FROM cross_api_tenants
               WHERE $1::text IS NULL OR tenant = $1::text";
    for row in client.query(sql, filter).await? {
        tenants.insert(row.try_get(0)?, TenantDocument::default());
    }

    let sql = "SELECT tenant::text, api::text FROM cross_api_apis
               WHERE $1::text IS NULL OR tenant = $1::text ORDER BY position";
    for row in client.query(sql, filter).await? {
        if let Some(entry) = tenants.get_mut(row.try_get::<_, &str>(0)?) {
            entry.apis.push(row.try_get(1)?);
        }
    }

    let sql = "SELECT tenant::text, target::text, mode, enforce FROM cross_api_policies
               WHERE ($1::text IS NULL OR tenant = $1::text)
                 AND (mode <> 'nothing' OR NOT enforce)";
    for row in client.query(sql, filter).await? {
        let mode: &str = row.try_get(2)?;
        let access = AccessDocument {
            allow_all: mode == "allow_all",
            allow: (mode == "list").then(Vec::new),
            enforce: row.try_get(3)?,
        };
        if let Some(entry) = tenants.get_mut(row.try_get::<_, &str>(0)?) {
            entry.cross_api_access.insert(row.try_get(1)?, access);
        }
    }

    let sql = "SELECT tenant::text, target::text, source::text FROM cross_api_grants
               WHERE $1::text IS NULL OR tenant = $1::text ORDER BY tenant, target, source";
    for row in client.query(sql, filter).await? {
        let listed = tenants
            .get_mut(row.try_get::<_, &str>(0)?)
            .and_then(|entry| {
                entry
                    .cross_api_access
                    .get_mut(row.try_get::<_, &str>(1).ok()?)
            })
            .and_then(|access| access.allow.as_mut());
        if let Some(listed) = listed {
            listed.push(row.try_get(2)?);
        }
    }

    Ok(PolicyDocument {
        revision: Some(revision),
        tenants,
    })
}

/// The global revision; `lock` holds the row until the transaction ends, which serialises
/// writers.
pub(super) async fn read_revision<C: GenericClient>(
    client: &C,
    lock: bool,
) -> Result<u64, PostgresError> {
    let sql = if lock {
        "SELECT value FROM cross_api_revision FOR UPDATE"
    } else {
        "SELECT value FROM cross_api_revision"
    };
    let value: i64 = client.query_one(sql, &[]).await?.try_get(0)?;
    Ok(u64::try_from(value).unwrap_or_default())
}

/// The revision at which `target`'s policy last changed; 0 when it never had one.
pub(super) async fn target_revision<C: GenericClient>(
    client: &C,
    target: &ApiRef,
) -> Result<u64, PostgresError> {
    let row = client
        .query_opt(
            "SELECT revision FROM cross_api_policies WHERE tenant = $1::text AND target = $2::text",
            &[&target.tenant().as_str(), &target.api().as_str()],
        )
        .await?;
    let value: i64 = match row {
        Some(row) => row.try_get(0)?,
        None => 0,
    };
    Ok(u64::try_from(value).unwrap_or_default())
}

/// Replaces `target`'s policy with `policy` at `revision`.
pub(super) async fn store_policy<C: GenericClient>(
    client: &C,
    target: &ApiRef,
    policy: &TargetPolicy,
    revision: u64,
) -> Result<(), PostgresError> {
    let (tenant, api) = (target.tenant().as_str(), target.api().as_str());
    let (mode, listed): (&str, Vec<&str>) = match policy {
        TargetPolicy::NothingConfigured => ("nothing", Vec::new()),
        TargetPolicy::AllowAll => ("allow_all", Vec::new()),
        TargetPolicy::List(listed) => ("list", listed.iter().map(|api| api.as_str()).collect()),
    };

    client
        .execute(
            "DELETE FROM cross_api_grants WHERE tenant = $1::text AND target = $2::text",
            &[&tenant, &api],
        )
        .await?;
    client
        .execute(
            "INSERT INTO cross_api_policies (tenant, target, mode, revision)
             VALUES ($1::text, $2::text, $3::text, $4)
             ON CONFLICT (tenant, target)
             DO UPDATE SET mode = EXCLUDED.mode, revision = EXCLUDED.revision",
            &[&tenant, &api, &mode, &to_sql_revision(revision)],
        )
        .await?;
    client
        .execute(
            "INSERT INTO cross_api_grants (tenant, target, source)
             SELECT $1::text, $2::text, unnest($3::text[])",
            &[&tenant, &api, &listed],
        )
        .await?;
    Ok(())
}

/// Writes every document's tenant, API and policy; for seeding an empty database.
pub(super) async fn insert_document<C: GenericClient>(
    client: &C,
    document: &PolicyDocument,
    revision: u64,
) -> Result<(), PostgresError> {
    for (tenant, entry) in &document.tenants {
        client
            .execute(
                "INSERT INTO cross_api_tenants (tenant) VALUES ($1::text)",
                &[tenant],
            )
            .await?;
        for api in &entry.apis {
            client
                .execute(
                    "INSERT INTO cross_api_apis (tenant, api) VALUES ($1::text, $2::text)",
                    &[tenant, api],
                )
                .await?;
        }
    }

    for (tenant, entry) in &document.tenants {
        let tenant = TenantId::new(tenant).map_err(|_| seed_error(tenant))?;
        for (target, access) in &entry.cross_api_access {
            let target = ApiRef::new(tenant, target.parse().map_err(|_| seed_error(target))?);
            let policy = match access {
                AccessDocument {
                    allow_all: true, ..
                } => TargetPolicy::AllowAll,
                AccessDocument {
                    allow: Some(listed),
                    ..
                } => TargetPolicy::List(
                    listed
                        .iter()
                        .map(|api| api.parse().map_err(|_| seed_error(api)))
                        .collect::<Result<_, _>>()?,
                ),
                AccessDocument { allow: None, .. } => TargetPolicy::NothingConfigured,
            };
            store_policy(client, &target, &policy, revision).await?;
            if !access.enforce {
                client
                    .execute(
                        "UPDATE cross_api_policies SET enforce = false
                         WHERE tenant = $1::text AND target = $2::text",
                        &[&target.tenant().as_str(), &target.api().as_str()],
                    )
                    .await?;
            }
        }
    }
    Ok(())
}

fn seed_error(value: &str) -> PostgresError {
    PostgresError::Admin(crate::admin::AdminError::Rule {
        rule: crate::policy::Rule::MalformedIdentifier {
            value: value.to_owned(),
        },
    })
}

/// Appends `records` to the audit trail.
pub(super) async fn insert_audit<C: GenericClient>(
    client: &C,
    records: &[AuditRecord],
) -> Result<(), PostgresError> {
    for record in records {
        client
            .execute(
                "INSERT INTO cross_api_audit
                     (revision, at, actor, tenant, target, action, before, after)
                 VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb, $8::text::jsonb)",
                &[
                    &to_sql_revision(record.revision),
                    &record.at,
                    &record.actor,
                    &record.tenant.as_str(),
                    &record.target.as_str(),
                    &record.action,
                    &AccessJson::write(&record.before),
                    &AccessJson::write(&record.after),
                ],
            )
            .await?;
    }
    Ok(())
}

/// The newest `limit` audit records of `tenant`, newest first.
pub(super) async fn read_audit<C: GenericClient>(
    client: &C,
    tenant: &TenantId,
    limit: i64,
) -> Result<Vec<AuditRecord>, PostgresError> {
    let rows = client
        .query(
            "SELECT revision, at, actor, target, action, before::text, after::text
             FROM cross_api_audit WHERE tenant = $1::text ORDER BY id DESC LIMIT $2",
            &[&tenant.as_str(), &limit],
        )
        .await?;

    let mut records = Vec::with_capacity(rows.len());
    for row in rows {
        let revision: i64 = row.try_get(0)?;
        let (Ok(target), Some(before), Some(after)) = (
            row.try_get::<_, &str>(3)?.parse(),
            AccessJson::read(row.try_get(5)?),
            AccessJson::read(row.try_get(6)?),
        ) else {
            tracing::warn!(tenant = %tenant, "skipped an unreadable audit record");
            continue;
        };
        records.push(AuditRecord {
            actor: row.try_get(2)?,
            tenant: *tenant,
            target,
            action: row.try_get(4)?,
            before,
            after,
            revision: u64::try_from(revision).unwrap_or_default(),
            at: row.try_get::<_, SystemTime>(1)?,
        });
    }
    Ok(records)
}

/// A revision as PostgreSQL's `bigint`; revisions never come near 2⁶³.
pub(super) fn to_sql_revision(revision: u64) -> i64 {
    i64::try_from(revision).unwrap_or(i64::MAX)
}
