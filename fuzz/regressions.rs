//! Every seed and every input that once failed, run through its target's property once.

use crate::corpus::inputs;
use crate::{certificate, identity, policy};

fn replay(
    target: &str,
    property: impl Fn(Vec<u8>) -> Result<(), proptest::test_runner::TestCaseError>,
) {
    for kind in ["corpus", "regressions"] {
        for (path, bytes) in inputs(kind, target) {
            if let Err(error) = property(bytes) {
                panic!("{}: {error}", path.display());
            }
        }
    }
}

/// The URI seeds and the DER inputs share one folder: each property holds for any bytes.
#[test]
fn certificate_inputs_hold() {
    replay("certificate", certificate::uri_maps_strictly);
    replay("certificate", certificate::der_names_its_one_uri_san);
}

#[test]
fn identity_inputs_hold() {
    replay("identity", identity::api_ref_round_trips);
}

#[test]
fn policy_inputs_hold() {
    replay("policy", policy::document_round_trips);
}
