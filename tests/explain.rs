//! `explain` agrees with the gate: on randomly generated policies and requests, the decision
//! it gives is the one the layer makes over a real socket, reason for reason.

mod echo;
mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Response, StatusCode};
use proptest::prelude::*;
use tower_cross_api::{
    AccessDocument, ApiRef, Enforcement, PolicyDocument, PolicyHandle, Refusal, Rejection,
    TenantDocument,
};

/// The APIs of the generated tenants.
const TENANTS: [(&str, usize); 2] = [("t1", 5), ("t2", 3)];

/// Callers and targets: every API, and names the snapshot does not know.
const NAMES: [&str; 11] = [
    "t1/a0", "t1/a1", "t1/a2", "t1/a3", "t1/a4", "t2/a0", "t2/a1", "t2/a2", "t1/ghost", "t3/a0",
    "t2/a9",
];

/// One target's generated policy: 0 nothing, 1 allow-all, 2 a list from `mask`, 3 an empty
/// entry (nothing configured, but with its own mode).
type Access = (u8, u8, bool);

fn document(accesses: &[Access]) -> PolicyDocument {
    let mut tenants = BTreeMap::new();
    let mut accesses = accesses.iter();

    for (tenant, count) in TENANTS {
        let apis: Vec<String> = (0..count).map(|i| format!("a{i}")).collect();
        let mut cross_api_access = BTreeMap::new();
        for (index, api) in apis.iter().enumerate() {
            let (kind, mask, enforce) = *accesses.next().expect("one access per API");
            let listed = || {
                (0..count)
                    .filter(|&other| other != index && mask & (1 << other) != 0)
                    .map(|other| format!("a{other}"))
                    .collect()
            };
            let access = match kind % 4 {
                0 => continue,
                1 => AccessDocument {
                    allow_all: true,
                    enforce,
                    ..AccessDocument::default()
                },
                2 => AccessDocument {
                    allow: Some(listed()),
                    enforce,
                    ..AccessDocument::default()
                },
                _ => AccessDocument {
                    enforce,
                    ..AccessDocument::default()
                },
            };
            cross_api_access.insert(api.clone(), access);
        }
        tenants.insert(
            tenant.to_owned(),
            TenantDocument {
                apis,
                cross_api_access,
            },
        );
    }

    PolicyDocument {
        revision: None,
        tenants,
    }
}

/// A rejection that tells the test the exact decision, which the default body never does.
fn telling() -> Rejection {
    Rejection::new(|refusal| {
        let text = match refusal {
            Refusal::Denied { decision, .. } => decision.reason().as_str(),
            other => other.code(),
        };
        let mut response = Response::new(Bytes::from(text));
        *response.status_mut() = refusal.status();
        response
    })
}

async fn check(addr: SocketAddr, policies: &PolicyHandle, requests: &[(usize, usize)]) {
    let mut connection = support::Connection::open(addr).await;

    for &(source, target) in requests {
        let (source, target) = (NAMES[source % NAMES.len()], NAMES[target % NAMES.len()]);
        let explanation =
            policies.explain(&source.parse().expect("ref"), &target.parse().expect("ref"));
        let decision = explanation.decision();
        let reason = decision.reason().as_str();

        let path = format!("/{target}/c");
        let answer = connection
            .get(&path, &[("x-source-api", source.as_bytes())])
            .await;

        let context = format!("{source} -> {target}: {explanation:?}, {}", answer.text());
        if decision.is_allowed() {
            assert_eq!(answer.status, StatusCode::OK, "{context}");
            assert_eq!(answer.json()["verified"], reason, "{context}");
        } else if decision.would_pass(Enforcement::Enforce) {
            assert_eq!(answer.status, StatusCode::OK, "{context}");
            assert_eq!(answer.json()["would_deny"], reason, "{context}");
        } else {
            assert_eq!(answer.status, StatusCode::FORBIDDEN, "{context}");
            assert_eq!(answer.text(), reason, "{context}");
        }

        let target: ApiRef = target.parse().expect("ref");
        policies.with_current(|snapshot| {
            let snapshot = snapshot.expect("published");
            assert_eq!(explanation.revision(), snapshot.revision());
            assert_eq!(explanation.policy(), snapshot.policy(&target).as_ref());
            assert_eq!(explanation.enforcement(), snapshot.enforcement(&target));
        });
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn explain_agrees_with_the_gate(
        accesses in prop::collection::vec((0_u8..4, any::<u8>(), any::<bool>()), 8),
        requests in prop::collection::vec((0_usize..NAMES.len(), 0_usize..NAMES.len()), 1..16),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");

        runtime.block_on(async {
            let policies = PolicyHandle::new();
            policies.publish_document(&document(&accesses)).expect("a valid document");
            let layer = echo::layer(&policies).with_rejection(telling());
            let addr = echo::serve(echo::gated(layer)).await;
            check(addr, &policies, &requests).await;
        });
    }
}
