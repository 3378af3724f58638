//! The policy the soak publishes at each revision, and what it allows: a pure function of the
//! revision, so a client can check any answer against the revision that decided it.

use serde_json::{Map, Value, json};

/// The tenant whose policy changes with every revision.
pub(crate) const TENANT: &str = "soak";

/// How many APIs the changing tenant has: `api0` to `api11`.
pub(crate) const APIS: u64 = 12;

/// A second tenant that never changes: its APIs call the first tenant's and are refused.
pub(crate) const OTHER_TENANT: &str = "other";

/// The policy of one target at one revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Policy {
    Nothing,
    AllowAll,
    List(Vec<u64>),
}

/// The policy of `target` at `revision`: each revision grants and revokes about half of all
/// pairs.
pub(crate) fn policy(revision: u64, target: u64) -> Policy {
    match mix(revision, target, u64::MAX) % 4 {
        0 => Policy::Nothing,
        1 => Policy::AllowAll,
        _ => Policy::List(
            (0..APIS)
                .filter(|&source| source != target && mix(revision, target, source) % 2 == 0)
                .collect(),
        ),
    }
}

/// Whether `source` may call `target` at `revision`, by the contract: allow-all, listed, or
/// the target itself.
pub(crate) fn allows(revision: u64, source: u64, target: u64) -> bool {
    match policy(revision, target) {
        Policy::AllowAll => true,
        Policy::List(listed) => listed.contains(&source) || source == target,
        Policy::Nothing => source == target,
    }
}

/// The policy document of `revision`.
pub(crate) fn document(revision: u64) -> String {
    let apis: Vec<String> = (0..APIS).map(api).collect();
    let access: Map<String, Value> = (0..APIS)
        .filter_map(|target| {
            let entry = match policy(revision, target) {
                Policy::Nothing => return None,
                Policy::AllowAll => json!({ "allow_all": true }),
                Policy::List(listed) => {
                    json!({ "allow": listed.into_iter().map(api).collect::<Vec<_>>() })
                }
            };
            Some((api(target), entry))
        })
        .collect();

    json!({
        "revision": revision,
        "tenants": {
            TENANT: { "apis": apis, "cross_api_access": access },
            OTHER_TENANT: {
                "apis": ["api0", "api1"],
                "cross_api_access": { "api0": { "allow_all": true } }
            }
        }
    })
    .to_string()
}

/// The name of API number `index`.
pub(crate) fn api(index: u64) -> String {
    format!("api{index}")
}

/// A well-spread hash of three numbers (splitmix64 steps).
pub(crate) fn mix(a: u64, b: u64, c: u64) -> u64 {
    let mut state = a.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ b.rotate_left(21) ^ c.rotate_left(42);
    state = (state ^ (state >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    state = (state ^ (state >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    state ^ (state >> 31)
}

#[cfg(test)]
mod tests {
    use tower_cross_api::{ApiRef, Snapshot};

    use super::*;

    fn reference(tenant: &str, index: u64) -> ApiRef {
        format!("{tenant}/{}", api(index)).parse().expect("valid")
    }

    #[test]
    fn the_soak_model_agrees_with_the_snapshot_it_publishes() {
        for revision in 1..200 {
            let snapshot = Snapshot::from_json(&document(revision)).expect("a valid document");

            for (source, target) in (0..APIS).flat_map(|s| (0..APIS).map(move |t| (s, t))) {
                let decision =
                    snapshot.decide(&reference(TENANT, source), &reference(TENANT, target));
                assert_eq!(decision.is_allowed(), allows(revision, source, target));
                assert_eq!(decision.revision(), revision);
            }
        }
    }

    #[test]
    fn revisions_grant_and_revoke() {
        let allowed = |revision| (0..APIS).filter(|&s| allows(revision, s, 3)).count();
        let changes = (1..100).filter(|&r| allowed(r) != allowed(r + 1)).count();

        assert!(
            changes > 50,
            "only {changes} of 99 revisions changed api3's callers"
        );
    }
}
