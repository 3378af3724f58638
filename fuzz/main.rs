//! Fuzz targets for every parser of the gate, run on the stable toolchain.
//!
//! `cargo fuzz` needs a nightly toolchain, and `cargo afl` needs AFL++'s LLVM plugins built for
//! rustc's own LLVM; neither is available where this crate is built, so each target is a
//! proptest strategy (seed corpora mutated byte by byte, plus random bytes or generated
//! documents) and a property, run for a budget of cases or seconds by [`budget::run`]:
//!
//! ```text
//! fuzz/run.sh 300                      # every target for 5 minutes each, release build
//! FUZZ_SECONDS=60 cargo test --release --test fuzz policy
//! ```
//!
//! Each target checks a property, not only the absence of a panic. Inputs that once failed
//! live in `fuzz/regressions/<target>/` and are replayed by [`regressions`] on every run.

#[path = "../tests/support/probe.rs"]
mod probe;

mod budget;
mod certificate;
mod corpus;
mod grammar;
mod identity;
mod mutate;
mod policy;
mod regressions;

#[test]
fn api_ref_from_bytes() {
    budget::run(
        "api_ref_from_bytes",
        identity::bytes(),
        identity::api_ref_round_trips,
    );
}

#[test]
fn identity_headers_through_the_layer() {
    budget::run(
        "identity_headers_through_the_layer",
        identity::headers(),
        identity::layer_reads_headers_exactly,
    );
}

#[test]
fn spiffe_uri_from_strings() {
    budget::run(
        "spiffe_uri_from_strings",
        certificate::uris(),
        certificate::uri_maps_strictly,
    );
}

#[test]
fn certificate_from_der_bytes() {
    budget::run(
        "certificate_from_der_bytes",
        certificate::der(),
        certificate::der_names_its_one_uri_san,
    );
}

#[test]
fn certificates_with_arbitrary_uri_sans() {
    budget::run(
        "certificates_with_arbitrary_uri_sans",
        certificate::certificates(),
        certificate::certificate_names_its_one_uri_san,
    );
}

#[test]
fn policy_from_bytes() {
    budget::run(
        "policy_from_bytes",
        policy::bytes(),
        policy::document_round_trips,
    );
}

#[test]
fn policy_from_generated_json() {
    budget::run(
        "policy_from_generated_json",
        policy::generated(),
        policy::generated_document_round_trips,
    );
}
