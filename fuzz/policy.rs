//! Targets for the policy document: arbitrary bytes, and JSON built by a generator whose
//! validity is known from the contract's rules.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Map, Value, json};
use tower_cross_api::{MAX_REVISION, PolicyDocument, PolicyHandle, Snapshot};

use crate::corpus::seeds;
use crate::grammar::is_identifier;
use crate::mutate::mutated;

/// JSON tokens and policy words that move a document across the rules.
const DICTIONARY: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"\"",
    b"\\u0000",
    b"\\\"",
    b"null",
    b"true",
    b"false",
    b"0",
    b"-1",
    b"1e3",
    b"18446744073709551616",
    b"\"revision\":",
    b"\"tenants\":",
    b"\"apis\":",
    b"\"cross_api_access\":",
    b"\"allow\":",
    b"\"allow_all\":",
    b"\"t1\"",
    b"\"a\"",
    b"\"A\"",
    b"{\"allow\":[]}",
    b"{\"allow_all\":true}",
];

/// Document bytes: mutated seeds, or anything.
pub(crate) fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => mutated(seeds("policy"), DICTIONARY),
        1 => prop::collection::vec(any::<u8>(), 0..256),
    ]
}

/// A document that parses re-serialises to itself; one that validates re-serialises, through
/// its snapshot, to a document that validates to an equal snapshot.
pub(crate) fn document_round_trips(bytes: Vec<u8>) -> Result<(), TestCaseError> {
    let document = match PolicyDocument::from_slice(&bytes) {
        Ok(document) => document,
        Err(error) => {
            prop_assert!(!error.to_string().is_empty());
            return Ok(());
        }
    };

    round_trips(&document)
}

fn round_trips(document: &PolicyDocument) -> Result<(), TestCaseError> {
    let again = PolicyDocument::from_json(&document.to_json());
    prop_assert_eq!(again.as_ref(), Ok(document));

    let mut document = document.clone();
    document.revision.get_or_insert(1);
    let snapshot = match Snapshot::from_document(&document) {
        Ok(snapshot) => snapshot,
        Err(error) => {
            prop_assert!(!error.to_string().is_empty());
            return Ok(());
        }
    };

    let rewritten = PolicyDocument::from_json(&snapshot.to_document().to_json());
    let rewritten = rewritten.expect("a snapshot's document parses");
    prop_assert_eq!(Snapshot::from_document(&rewritten), Ok(snapshot.clone()));

    let policies = PolicyHandle::new();
    let published = policies.publish_document(&rewritten);
    prop_assert_eq!(published.ok(), Some(snapshot.revision()));
    Ok(())
}

/// Names of tenants and APIs, mostly valid, some malformed.
const NAMES: [&str; 12] = [
    "t1", "t2", "a", "b", "c", "orders", "0-a_b", "T1", "", "-a", "a/b", "a\u{e9}",
];

/// A generated document, kept as data so that its validity can be told from the rules.
#[derive(Clone, Debug)]
pub(crate) struct Generated {
    revision: Option<u64>,
    tenants: BTreeMap<&'static str, GeneratedTenant>,
    pretty: bool,
}

#[derive(Clone, Debug)]
struct GeneratedTenant {
    apis: Vec<&'static str>,
    access: BTreeMap<&'static str, GeneratedAccess>,
    unknown_field: bool,
}

#[derive(Clone, Debug)]
struct GeneratedAccess {
    allow_all: Option<bool>,
    allow: Option<Vec<&'static str>>,
}

fn name() -> impl Strategy<Value = &'static str> {
    prop_oneof![9 => select(&NAMES[..7]), 1 => select(&NAMES[..])]
}

/// Documents built from a few names, with repeats, self-grants, strangers and malformed
/// names mixed in at a rate that leaves about half of them valid.
pub(crate) fn generated() -> impl Strategy<Value = Generated> {
    let access = (
        prop::option::of(any::<bool>()),
        prop::option::of(prop::collection::vec(name(), 0..4)),
    )
        .prop_map(|(allow_all, allow)| GeneratedAccess { allow_all, allow });
    let tenant = (
        prop::collection::vec(name(), 0..6),
        prop::collection::btree_map(name(), access, 0..4),
        prop::bool::weighted(0.03),
    )
        .prop_map(|(apis, access, unknown_field)| GeneratedTenant {
            apis,
            access,
            unknown_field,
        });

    (
        prop::option::weighted(
            0.9,
            prop_oneof![8 => 1..=MAX_REVISION, 1 => any::<u64>(), 1 => Just(0)],
        ),
        prop::collection::btree_map(name(), tenant, 0..4),
        any::<bool>(),
    )
        .prop_map(|(revision, tenants, pretty)| Generated {
            revision,
            tenants,
            pretty,
        })
}

impl Generated {
    fn json(&self) -> String {
        let tenants: Map<String, Value> = self
            .tenants
            .iter()
            .map(|(name, tenant)| ((*name).to_owned(), tenant.json()))
            .collect();
        let mut document = json!({ "tenants": tenants });
        if let Some(revision) = self.revision {
            document["revision"] = json!(revision);
        }

        if self.pretty {
            serde_json::to_string_pretty(&document).expect("serialise")
        } else {
            document.to_string()
        }
    }

    /// The contract's rules, one by one, over the generated data.
    fn is_valid(&self) -> bool {
        self.revision
            .is_some_and(|revision| (1..=MAX_REVISION).contains(&revision))
            && self
                .tenants
                .iter()
                .all(|(name, tenant)| is_identifier(name.as_bytes()) && tenant.is_valid())
    }
}

impl GeneratedTenant {
    fn json(&self) -> Value {
        let access: Map<String, Value> = self
            .access
            .iter()
            .map(|(target, access)| {
                let mut entry = Map::new();
                if let Some(allow_all) = access.allow_all {
                    entry.insert("allow_all".into(), json!(allow_all));
                }
                if let Some(allow) = &access.allow {
                    entry.insert("allow".into(), json!(allow));
                }
                ((*target).to_owned(), Value::Object(entry))
            })
            .collect();
        let mut tenant = json!({ "apis": self.apis, "cross_api_access": access });
        if self.unknown_field {
            tenant["deny"] = json!([]);
        }
        tenant
    }

    fn is_valid(&self) -> bool {
        let registry: BTreeSet<&str> = self.apis.iter().copied().collect();
        let unique = |names: &[&str]| names.iter().collect::<BTreeSet<_>>().len() == names.len();
        let named = |names: &[&str]| names.iter().all(|name| is_identifier(name.as_bytes()));

        !self.unknown_field
            && named(&self.apis)
            && unique(&self.apis)
            && self.access.iter().all(|(target, access)| {
                let listed = access.allow.as_deref().unwrap_or_default();
                let allow_all_alone = access.allow_all != Some(true) || access.allow.is_none();
                is_identifier(target.as_bytes())
                    && registry.contains(target)
                    && allow_all_alone
                    && named(listed)
                    && unique(listed)
                    && !listed.contains(target)
                    && listed.iter().all(|api| registry.contains(api))
            })
    }
}

/// A generated document validates exactly when the rules say so, and round-trips.
pub(crate) fn generated_document_round_trips(generated: Generated) -> Result<(), TestCaseError> {
    let json = generated.json();

    let snapshot = Snapshot::from_json(&json);
    prop_assert_eq!(
        snapshot.is_ok(),
        generated.is_valid(),
        "{}: {:?}",
        json,
        snapshot
    );

    match PolicyDocument::from_json(&json) {
        Ok(document) => round_trips(&document),
        Err(error) => {
            prop_assert!(
                generated
                    .tenants
                    .values()
                    .any(|tenant| tenant.unknown_field)
            );
            prop_assert!(!error.to_string().is_empty());
            Ok(())
        }
    }
}
