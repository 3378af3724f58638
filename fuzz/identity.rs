//! Targets for identities read from header values: `ApiRef::from_bytes` alone, and the
//! identity headers through the real layer.

use std::sync::LazyLock;

use bytes::Bytes;
use http::{HeaderValue, Request, Response};
use proptest::prelude::*;
use tower::Layer;
use tower_cross_api::{
    ApiId, ApiRef, CrossApiLayer, DENIED_DETAIL, PolicyHandle, TenantId, X_SOURCE_API, X_TARGET_API,
};

use crate::corpus::seeds;
use crate::grammar::{header_names_one_reference, is_identifier, is_reference};
use crate::mutate::mutated;
use crate::probe::{Reached, call, probe};

/// Tokens that move a value across the grammar's edges.
const DICTIONARY: &[&[u8]] = &[
    b"/",
    b"//",
    b"-",
    b"_",
    b"a",
    b"0",
    b"Z",
    b" ",
    b"\t",
    b",",
    b"%2f",
    b"\xc3\xa9",
    b"\x00",
    b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
];

/// The policy the layer target decides on: the cases file's.
const POLICY: &str = include_str!("corpus/policy/gate-cases-policy.json");

/// Header-value bytes: mutated seeds, or anything.
pub(crate) fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => mutated(seeds("identity"), DICTIONARY),
        1 => prop::collection::vec(any::<u8>(), 0..160),
    ]
}

/// Parses as a reference exactly when the grammar says so, and prints back to the same bytes.
pub(crate) fn api_ref_round_trips(bytes: Vec<u8>) -> Result<(), TestCaseError> {
    let parsed = ApiRef::from_bytes(&bytes);
    prop_assert_eq!(parsed.is_ok(), is_reference(&bytes), "{:?}", parsed);

    if let Ok(api) = parsed {
        let printed = api.to_string();
        prop_assert_eq!(printed.as_bytes(), &bytes[..]);
        let text = std::str::from_utf8(&bytes).expect("a reference is ASCII");
        prop_assert_eq!(text.parse::<ApiRef>(), Ok(api));
        let json = serde_json::to_string(&api).expect("serialise");
        prop_assert_eq!(serde_json::from_str::<ApiRef>(&json).ok(), Some(api));
    }

    let tenant = TenantId::from_bytes(&bytes);
    let api = ApiId::from_bytes(&bytes);
    prop_assert_eq!(tenant.is_ok(), is_identifier(&bytes));
    prop_assert_eq!(api.is_ok(), is_identifier(&bytes));
    if let (Ok(tenant), Ok(api)) = (tenant, api) {
        prop_assert_eq!(tenant.as_str().as_bytes(), &bytes[..]);
        prop_assert_eq!(api.as_str().as_bytes(), &bytes[..]);
    }
    Ok(())
}

/// The values of the source and the target headers of one request.
#[derive(Clone, Debug)]
pub(crate) struct Headers {
    source: Vec<Vec<u8>>,
    target: Vec<Vec<u8>>,
}

/// Zero to three values for each identity header, each a valid header value.
pub(crate) fn headers() -> impl Strategy<Value = Headers> {
    (header_values(), header_values()).prop_map(|(source, target)| Headers { source, target })
}

fn header_values() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop_oneof![
        1 => Just(Vec::new()),
        6 => header_value().prop_map(|value| vec![value]),
        1 => prop::collection::vec(header_value(), 2..=3),
    ]
}

/// Bytes a header value may hold: visible ASCII, space, tab and obs-text.
fn header_value() -> impl Strategy<Value = Vec<u8>> {
    bytes().prop_map(|mut bytes| {
        bytes.retain(|&byte| byte == b'\t' || (byte >= 0x20 && byte != 0x7f));
        bytes
    })
}

static POLICIES: LazyLock<PolicyHandle> = LazyLock::new(|| {
    let policies = PolicyHandle::new();
    policies
        .publish_json(POLICY)
        .expect("the cases file's policy is valid");
    policies
});

/// Through the real layer: a malformed header is a `400` naming it, no source passes
/// untouched, and a source that reaches the target prints back to the header's bytes.
pub(crate) fn layer_reads_headers_exactly(headers: Headers) -> Result<(), TestCaseError> {
    let mut request = Request::new(());
    for (name, values) in [
        (X_SOURCE_API, &headers.source),
        (X_TARGET_API, &headers.target),
    ] {
        for value in values {
            let value = HeaderValue::from_bytes(value).expect("only header-value bytes");
            request.headers_mut().append(name.clone(), value);
        }
    }
    let mut service = CrossApiLayer::new(POLICIES.clone()).layer(probe());

    let response = call(&mut service, request);

    let reached = response.extensions().get::<Reached>().copied();
    match header_names_one_reference(&headers.source) {
        Some(false) => expect_malformed(&response, reached, "x-source-api"),
        None => {
            prop_assert_eq!(response.status().as_u16(), 200);
            prop_assert!(matches!(reached, Some(Reached(None))));
            Ok(())
        }
        Some(true) => match header_names_one_reference(&headers.target) {
            Some(false) => expect_malformed(&response, reached, "x-target-api"),
            None | Some(true) => expect_decided(&response, reached, &headers.source[0]),
        },
    }
}

fn expect_malformed(
    response: &Response<Bytes>,
    reached: Option<Reached>,
    header: &str,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(response.status().as_u16(), 400);
    prop_assert!(reached.is_none());
    let body: serde_json::Value = serde_json::from_slice(response.body()).expect("problem JSON");
    prop_assert_eq!(&body["header"], header);
    Ok(())
}

fn expect_decided(
    response: &Response<Bytes>,
    reached: Option<Reached>,
    source: &[u8],
) -> Result<(), TestCaseError> {
    match reached {
        Some(Reached(Some(verified))) => {
            prop_assert_eq!(response.status().as_u16(), 200);
            let printed = verified.api().to_string();
            prop_assert_eq!(printed.as_bytes(), source);
            prop_assert!(verified.decision().is_allowed());
        }
        Some(Reached(None)) => prop_assert!(false, "a linked call reached the target unverified"),
        None => {
            prop_assert_eq!(response.status().as_u16(), 403);
            let body: serde_json::Value =
                serde_json::from_slice(response.body()).expect("problem JSON");
            prop_assert_eq!(&body["detail"], DENIED_DETAIL);
        }
    }
    Ok(())
}
