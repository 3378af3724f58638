//! The gate against a deliberately simple model of the contract.
//!
//! The model is written from the contract (SPEC.md and the gate's rules), not from the code:
//! a policy is a map of sets, a header or a path is a list of values that the generator
//! labels valid or malformed, and the expected answer is a handful of `if`s in the contract's
//! order. Thousands of random policies and calls go through the real `CrossApiService`, and
//! each must get the model's answer: the status, whether the target was reached, the
//! verified source attached, and the decision's or the refusal's reason and revision.
//!
//! Sources come from a header, from an `AuthenticatedSource` an earlier layer inserted, or
//! both; some calls come from a peer whose certificate named no valid source
//! (`UnidentifiedPeer`), which the contract refuses with a `403` whatever else the call
//! carries.
//!
//! Administrative operations have a model of their own in `tests/admin_model.rs`.

#[path = "support/probe.rs"]
mod probe;

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use http::{HeaderValue, Request, Response};
use proptest::prelude::*;
use proptest::sample::{Index, select};
use serde_json::{Value as Json, json};
use tower::Layer;
use tower_cross_api::{
    AuthenticatedSource, CrossApiLayer, DENIED_DETAIL, PolicyHandle, Refusal, Rejection,
    SourceIdentity, TargetIdentity, UnidentifiedPeer, X_SOURCE_API, X_TARGET_API,
};

use probe::{Reached, call, probe};

const TENANTS: [&str; 3] = ["t1", "t2", "t3"];
const APIS: [&str; 5] = ["a", "b", "c", "d", "e"];

/// Values that are never `<tenant>/<api>`, whatever the policy.
const MALFORMED: [&[u8]; 18] = [
    b"",
    b"t1",
    b"t1/",
    b"/a",
    b"t1//a",
    b"t1/a/b",
    b"T1/a",
    b"t1/A",
    b"t1/a,t1/b",
    b"t1/ a",
    b"t1/a ",
    b" t1/a",
    b"t1/\xc3\xa9",
    b"t1/a\t",
    b"-t/a",
    b"t1/_a",
    b"t1/%61",
    b"t1/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
];

/// Path heads whose first two segments are never `<tenant>/<api>`.
const MALFORMED_PATHS: [&str; 8] = [
    "T1/a", "t1/A", "t1/%61", "-t/a", "t1/_a", "t1.x/a", "t1//a", "t1/a%2fb",
];

/// Bytes that make any reference malformed wherever they are inserted.
const BAD_BYTES: [u8; 9] = [b'A', b'Z', b' ', b'.', b'%', b',', b'/', b'\xff', b'\t'];

/// Why a peer's certificate named no source, as the accept loop reports it.
const UNIDENTIFIED: [&str; 4] = [
    "foreign_trust_domain",
    "several_uri_sans",
    "no_uri_san",
    "invalid_identifier",
];

type Api = (&'static str, &'static str);

#[derive(Clone, Debug)]
enum Policy {
    Nothing,
    AllowAll,
    List(BTreeSet<&'static str>),
}

/// A published snapshot: tenant → API → policy.
#[derive(Clone, Debug)]
struct World {
    revision: u64,
    tenants: BTreeMap<&'static str, BTreeMap<&'static str, Policy>>,
}

#[derive(Clone, Debug)]
enum Value {
    Valid(Api),
    Malformed(Vec<u8>),
}

#[derive(Clone, Debug)]
struct Call {
    authenticated_mode: bool,
    source: Vec<Value>,
    authenticated: Option<Api>,
    /// The reason of an `UnidentifiedPeer` extension: the connection's peer presented a
    /// certificate that names no valid source.
    unidentified: Option<&'static str>,
    target: Vec<Value>,
    /// Where the target is read: `None` for the `x-target-api` header, else the head of
    /// the path, `/{tenant}/{api}/...`, where a malformed head names no target.
    path: Option<Value>,
}

/// What a client and the target see of one call.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Answer {
    status: u16,
    reached: bool,
    verified: Option<String>,
    verdict: String,
    revision: Option<u64>,
}

fn header(values: &[Value]) -> Result<Option<Api>, ()> {
    match values {
        [] => Ok(None),
        [Value::Valid(api)] => Ok(Some(*api)),
        _ => Err(()),
    }
}

fn expected(world: Option<&World>, call: &Call) -> Answer {
    let refused = |status, verdict: &str| Answer {
        status,
        reached: false,
        verified: None,
        verdict: verdict.to_owned(),
        revision: None,
    };

    // A peer that tried to authenticate and failed is neither a linked call nor end-user
    // traffic, in either mode, whatever its headers say and whatever else was inserted.
    if call.unidentified.is_some() {
        return refused(403, "unidentified_peer");
    }
    let Ok(claim) = header(&call.source) else {
        return refused(400, "malformed x-source-api");
    };
    // An authenticated source always counts, and a header is then only a claim checked
    // against it; without one, only a header-sourced gate takes the header as the source.
    let source = match (call.authenticated, claim, call.authenticated_mode) {
        (Some(authenticated), None, _) => authenticated,
        (Some(authenticated), Some(claim), _) if authenticated == claim => authenticated,
        (Some(_), Some(_), _) => return refused(403, "contradiction"),
        (None, Some(_), true) => return refused(403, "unauthenticated_claim"),
        (None, Some(claim), false) => claim,
        (None, None, _) => {
            return Answer {
                status: 200,
                reached: true,
                verified: None,
                verdict: String::from("end_user"),
                revision: None,
            };
        }
    };
    let target = match (&call.path, header(&call.target)) {
        (Some(Value::Valid(target)), _) => Some(*target),
        (Some(Value::Malformed(_)), _) => None,
        (None, Ok(target)) => target,
        (None, Err(())) => return refused(400, "malformed x-target-api"),
    };

    let (reason, revision) = decide(world, source, target);
    let allowed = matches!(reason, "allow_all" | "listed" | "same_api");
    Answer {
        status: if allowed { 200 } else { 403 },
        reached: allowed,
        verified: allowed.then(|| format!("{}/{}", source.0, source.1)),
        verdict: reason.to_owned(),
        revision: Some(revision),
    }
}

fn decide(world: Option<&World>, source: Api, target: Option<Api>) -> (&'static str, u64) {
    let Some(world) = world else {
        return ("no_snapshot", 0);
    };
    let Some(target) = target else {
        return ("unknown_target", world.revision);
    };

    let apis = world.tenants.get(target.0);
    let policy = apis.and_then(|apis| apis.get(target.1));
    let reason = match (apis, policy) {
        _ if source.0 != target.0 => "other_tenant",
        (None, _) => "unknown_tenant",
        (Some(_), None) => "unknown_target",
        (Some(apis), _) if !apis.contains_key(source.1) => "unknown_source",
        (_, Some(Policy::AllowAll)) => "allow_all",
        (_, Some(Policy::List(listed))) if listed.contains(source.1) => "listed",
        _ if source == target => "same_api",
        (_, Some(Policy::List(_))) => "not_listed",
        (_, Some(Policy::Nothing)) => "nothing_configured",
    };
    (reason, world.revision)
}

/// One API's raw choices: registered, policy kind, and which siblings a list names.
type RawApi = (bool, u8, u8);

fn world() -> impl Strategy<Value = World> {
    let tenant = prop::option::weighted(0.8, prop::collection::vec(raw_api(), APIS.len()));
    (
        1..1_000_000u64,
        prop::collection::vec(tenant, TENANTS.len()),
    )
        .prop_map(|(revision, tenants)| {
            let tenants = TENANTS
                .iter()
                .zip(tenants)
                .filter_map(|(&name, raw)| Some((name, registry(&raw?))))
                .collect();
            World { revision, tenants }
        })
}

fn raw_api() -> impl Strategy<Value = RawApi> {
    (prop::bool::weighted(0.7), 0u8..5, any::<u8>())
}

fn registry(raw: &[RawApi]) -> BTreeMap<&'static str, Policy> {
    let registered: Vec<&str> = APIS
        .iter()
        .zip(raw)
        .filter(|(_, (registered, _, _))| *registered)
        .map(|(&api, _)| api)
        .collect();

    APIS.iter()
        .zip(raw)
        .filter(|(_, (registered, _, _))| *registered)
        .map(|(&api, &(_, kind, bits))| {
            let policy = match kind {
                0 | 4 => Policy::Nothing,
                1 => Policy::List(BTreeSet::new()),
                2 => Policy::AllowAll,
                _ => Policy::List(
                    registered
                        .iter()
                        .enumerate()
                        .filter(|&(bit, &listed)| bits & (1 << bit) != 0 && listed != api)
                        .map(|(_, &listed)| listed)
                        .collect(),
                ),
            };
            (api, policy)
        })
        .collect()
}

/// The document of a world. "Nothing" is written either by leaving the target out or as `{}`.
fn document(world: &World, spell_nothing_as_empty: bool) -> String {
    let mut tenants = serde_json::Map::new();

    for (tenant, apis) in &world.tenants {
        let mut access = serde_json::Map::new();
        for (api, policy) in apis {
            let entry = match policy {
                Policy::Nothing if spell_nothing_as_empty => json!({}),
                Policy::Nothing => continue,
                Policy::AllowAll => json!({ "allow_all": true }),
                Policy::List(listed) => json!({ "allow": listed }),
            };
            access.insert((*api).to_owned(), entry);
        }
        let names: Vec<&str> = apis.keys().copied().collect();
        tenants.insert(
            (*tenant).to_owned(),
            json!({ "apis": names, "cross_api_access": access }),
        );
    }

    json!({ "revision": world.revision, "tenants": Json::Object(tenants) }).to_string()
}

fn api() -> impl Strategy<Value = Api> {
    (select(&TENANTS[..]), select(&APIS[..]))
}

fn malformed() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        select(&MALFORMED[..]).prop_map(<[u8]>::to_vec),
        (api(), any::<Index>(), select(&BAD_BYTES[..])).prop_map(|((tenant, api), at, bad)| {
            let mut value = format!("{tenant}/{api}").into_bytes();
            value.insert(at.index(value.len() + 1), bad);
            value
        }),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => api().prop_map(Value::Valid),
        1 => malformed().prop_map(Value::Malformed),
    ]
}

fn values() -> impl Strategy<Value = Vec<Value>> {
    prop_oneof![
        2 => Just(Vec::new()),
        6 => value().prop_map(|value| vec![value]),
        1 => prop::collection::vec(value(), 2..=3),
    ]
}

/// Mostly one target value, sometimes none, sometimes several.
fn target_values() -> impl Strategy<Value = Vec<Value>> {
    prop_oneof![
        1 => Just(Vec::new()),
        6 => value().prop_map(|value| vec![value]),
        1 => values(),
    ]
}

fn gate_call() -> impl Strategy<Value = Call> {
    (
        prop::bool::weighted(0.3),
        values(),
        prop::option::weighted(0.7, api()),
        prop::option::weighted(0.15, select(&UNIDENTIFIED[..])),
        target_values(),
        prop::option::weighted(0.3, path()),
    )
        .prop_map(
            |(authenticated_mode, source, authenticated, unidentified, target, path)| Call {
                authenticated_mode,
                source,
                authenticated,
                unidentified,
                target,
                path,
            },
        )
}

fn path() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => api().prop_map(Value::Valid),
        1 => select(&MALFORMED_PATHS[..]).prop_map(|head| Value::Malformed(head.into())),
    ]
}

fn request(call: &Call) -> Request<()> {
    let uri = match &call.path {
        Some(Value::Valid((tenant, api))) => format!("/{tenant}/{api}/collections/c1"),
        Some(Value::Malformed(head)) => {
            format!("/{}/collections/c1", String::from_utf8_lossy(head))
        }
        None => String::from("/"),
    };
    let mut request = Request::get(uri).body(()).expect("a valid request");
    let headers = request.headers_mut();

    for (name, values) in [(X_SOURCE_API, &call.source), (X_TARGET_API, &call.target)] {
        for value in values {
            let bytes = match value {
                Value::Valid((tenant, api)) => format!("{tenant}/{api}").into_bytes(),
                Value::Malformed(bytes) => bytes.clone(),
            };
            let value = HeaderValue::from_bytes(&bytes).expect("the generator makes header values");
            headers.append(name.clone(), value);
        }
    }
    if let Some((tenant, api)) = call.authenticated {
        let source = format!("{tenant}/{api}")
            .parse()
            .expect("a valid reference");
        request.extensions_mut().insert(AuthenticatedSource(source));
    }
    if let Some(reason) = call.unidentified {
        request.extensions_mut().insert(UnidentifiedPeer(reason));
    }
    request
}

/// A rejection that says in headers what the default one keeps to the log.
fn telling_rejection() -> Rejection {
    Rejection::new(|refusal| {
        let (verdict, revision) = match refusal {
            Refusal::Denied { decision, .. } => (
                decision.reason().as_str().to_owned(),
                Some(decision.revision()),
            ),
            Refusal::MalformedHeader { header, .. } => (format!("malformed {header}"), None),
            Refusal::UnverifiedSource { fault, .. } => (fault.as_str().to_owned(), None),
            other => (format!("{other:?}"), None),
        };

        let mut response = Response::new(Bytes::new());
        *response.status_mut() = refusal.status();
        let headers = response.headers_mut();
        headers.insert("x-verdict", verdict.parse().expect("ASCII"));
        if let Some(revision) = revision {
            headers.insert("x-revision", revision.into());
        }
        response
    })
}

fn answer(plain: &Response<Bytes>, telling: &Response<Bytes>) -> Answer {
    let reached = plain.extensions().get::<Reached>();
    let verified = reached.and_then(|reached| reached.0);
    let told = |name: &str| {
        telling
            .headers()
            .get(name)
            .map(|value| value.to_str().expect("ASCII").to_owned())
    };

    let (verdict, revision) = match (reached, verified) {
        (Some(_), Some(source)) => (
            source.decision().reason().as_str().to_owned(),
            Some(source.decision().revision()),
        ),
        (Some(_), None) => (String::from("end_user"), None),
        (None, _) => (
            told("x-verdict").unwrap_or_default(),
            told("x-revision").map(|revision| revision.parse().expect("a number")),
        ),
    };
    Answer {
        status: plain.status().as_u16(),
        reached: reached.is_some(),
        verified: verified.map(|source| source.api().to_string()),
        verdict,
        revision,
    }
}

/// What the default rejection's body must say for `status`.
fn check_body(response: &Response<Bytes>, expected: &Answer) -> Result<(), TestCaseError> {
    if expected.reached {
        prop_assert_eq!(response.body().as_ref(), b"target");
        return Ok(());
    }

    let body: Json = serde_json::from_slice(response.body()).expect("problem JSON");
    match expected.status {
        403 => prop_assert_eq!(&body["detail"], DENIED_DETAIL),
        400 => {
            let header = expected.verdict.trim_start_matches("malformed ");
            prop_assert_eq!(&body["header"], header);
        }
        status => prop_assert!(false, "unexpected refusal status {}", status),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 4000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_gate_answers_as_the_model(
        world in prop::option::weighted(0.9, world()),
        spell_nothing_as_empty in any::<bool>(),
        calls in prop::collection::vec(gate_call(), 1..12),
    ) {
        let policies = PolicyHandle::new();
        if let Some(world) = &world {
            let revision = policies
                .publish_json(&document(world, spell_nothing_as_empty))
                .expect("the model's world is a valid document");
            prop_assert_eq!(revision, world.revision);
        }
        let layer = |authenticated: bool, path: bool, telling: bool| {
            let mut layer = CrossApiLayer::new(policies.clone());
            if authenticated {
                layer = layer.with_source(SourceIdentity::authenticated());
            }
            if path {
                layer = layer.with_target(TargetIdentity::path());
            }
            if telling {
                layer = layer.with_rejection(telling_rejection());
            }
            layer.layer(probe())
        };
        let mut services = [
            [[layer(false, false, false), layer(false, false, true)],
             [layer(false, true, false), layer(false, true, true)]],
            [[layer(true, false, false), layer(true, false, true)],
             [layer(true, true, false), layer(true, true, true)]],
        ];

        for gate_call in &calls {
            let by_source = &mut services[usize::from(gate_call.authenticated_mode)];
            let [plain, telling] = &mut by_source[usize::from(gate_call.path.is_some())];
            let plain = call(plain, request(gate_call));
            let telling = call(telling, request(gate_call));

            let want = expected(world.as_ref(), gate_call);
            prop_assert_eq!(telling.status(), plain.status());
            prop_assert_eq!(answer(&plain, &telling), want.clone(), "{:?}", gate_call);
            check_body(&plain, &want)?;
        }
    }
}

/// Found by the model: a malformed source header once turned the refusal of a peer whose
/// certificate named no source into a `400` for the header.
#[test]
fn an_unidentified_peer_with_a_malformed_header_is_refused_as_unidentified() {
    let policies = PolicyHandle::new();

    for authenticated_mode in [false, true] {
        let mut layer = CrossApiLayer::new(policies.clone()).with_rejection(telling_rejection());
        if authenticated_mode {
            layer = layer.with_source(SourceIdentity::authenticated());
        }
        let mut service = layer.layer(probe());
        let gate_call = Call {
            authenticated_mode,
            source: vec![Value::Malformed(Vec::new())],
            authenticated: None,
            unidentified: Some("foreign_trust_domain"),
            target: Vec::new(),
            path: None,
        };

        let response = call(&mut service, request(&gate_call));

        assert_eq!(response.status(), 403);
        assert_eq!(response.headers()["x-verdict"], "unidentified_peer");
        assert!(response.extensions().get::<Reached>().is_none());
    }
}

#[test]
fn the_model_agrees_with_the_cases_file() {
    let world = World {
        revision: 1,
        tenants: BTreeMap::from([
            (
                "t1",
                BTreeMap::from([
                    ("orders", Policy::List(BTreeSet::from(["billing"]))),
                    ("billing", Policy::AllowAll),
                    ("reports", Policy::List(BTreeSet::new())),
                    ("crm", Policy::Nothing),
                ]),
            ),
            (
                "t2",
                BTreeMap::from([
                    ("orders", Policy::List(BTreeSet::from(["billing"]))),
                    ("billing", Policy::AllowAll),
                ]),
            ),
        ]),
    };
    let linked = |source: Api, target: Api| Call {
        authenticated_mode: false,
        source: vec![Value::Valid(source)],
        authenticated: None,
        unidentified: None,
        target: vec![Value::Valid(target)],
        path: None,
    };
    let status = |call: Call| expected(Some(&world), &call).status;

    assert_eq!(status(linked(("t1", "billing"), ("t1", "orders"))), 200);
    assert_eq!(status(linked(("t1", "crm"), ("t1", "billing"))), 200);
    assert_eq!(status(linked(("t1", "billing"), ("t1", "reports"))), 403);
    assert_eq!(status(linked(("t1", "billing"), ("t1", "crm"))), 403);
    assert_eq!(status(linked(("t2", "billing"), ("t1", "orders"))), 403);
    assert_eq!(status(linked(("t1", "billing"), ("t1", "invoices"))), 403);
    assert_eq!(status(linked(("t1", "ghost"), ("t1", "billing"))), 403);
    assert_eq!(status(linked(("t1", "crm"), ("t1", "crm"))), 200);

    let mut repeated = linked(("t1", "reports"), ("t1", "orders"));
    repeated.source.push(Value::Valid(("t1", "billing")));
    assert_eq!(status(repeated), 400);
    let mut end_user = linked(("t1", "billing"), ("t1", "orders"));
    end_user.source.clear();
    assert_eq!(expected(Some(&world), &end_user).verdict, "end_user");

    let mut unidentified = linked(("t1", "billing"), ("t1", "orders"));
    unidentified.unidentified = Some("foreign_trust_domain");
    assert_eq!(status(unidentified.clone()), 403);
    unidentified.source.clear();
    assert_eq!(status(unidentified.clone()), 403);
    unidentified.source = vec![Value::Malformed(b"T1/a".to_vec())];
    assert_eq!(status(unidentified.clone()), 403);
    unidentified.authenticated = Some(("t1", "billing"));
    unidentified.authenticated_mode = true;
    assert_eq!(status(unidentified), 403);
}
