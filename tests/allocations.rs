//! Heap allocations on the request path, counted by a counting global allocator.
//!
//! One test runs every measurement in turn, so that no other test of this binary allocates
//! while a count is taken; each count is the smallest of a few attempts, so that a stray
//! allocation of the test harness's own thread cannot fail it.
//!
//! What is guaranteed: the decision, reading the identities, counting the decision and the
//! end-user and denied paths allocate nothing (a refusal's body is cut from a buffer each
//! thread reuses once the bodies cut from it are dropped); the allowed path allocates exactly
//! what `http::Extensions::insert` of the verified source does, nothing more, and writing the
//! verified header (opt-in) adds only the one its value's bytes take.

use std::alloc::System;
use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use metrics_exporter_prometheus::PrometheusBuilder;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tower::{Layer, Service};
use tower_cross_api::{
    ApiRef, AuthenticatedSource, CrossApiLayer, PolicyHandle, SourceIdentity, TargetIdentity,
    VerifiedSource, X_SOURCE_API, X_TARGET_API,
};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// An extension a router would have inserted before the gate.
#[derive(Clone, Copy)]
struct Routed;

const POLICY: &str = r#"{ "tenants": { "acme": {
    "apis": ["orders", "billing", "crm"],
    "cross_api_access": { "orders": { "allow": ["billing"] }, "crm": { "allow_all": true } }
} } }"#;

/// The fewest allocations (and reallocations) one call of `routine` made, over a few
/// attempts, after a call to warm up.
fn allocations(mut routine: impl FnMut()) -> usize {
    routine();

    (0..5)
        .map(|_| {
            let region = Region::new(GLOBAL);
            routine();
            let change = region.change();
            change.allocations + change.reallocations
        })
        .min()
        .expect("five attempts")
}

fn request(source: Option<&str>, target: &str) -> Request<()> {
    let mut builder = Request::builder()
        .uri("/collections/c1")
        .header(X_TARGET_API, target);
    if let Some(source) = source {
        builder = builder.header(X_SOURCE_API, source);
    }
    builder.body(()).expect("a valid request")
}

fn answer(request: Request<()>) -> Ready<Result<Response<Bytes>, Infallible>> {
    let verified = request.extensions().get::<VerifiedSource>().is_some();
    let body = if verified { "linked" } else { "end user" };
    ready(Ok(Response::new(Bytes::from_static(body.as_bytes()))))
}

fn now<F: Future>(future: F) -> F::Output {
    let mut context = Context::from_waker(Waker::noop());
    match pin!(future).poll(&mut context) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the inner service answers at once"),
    }
}

/// Allocations of one call through `service`, and the response of the last call.
fn through<S>(service: &mut S, make: impl Fn() -> Request<()>) -> (usize, Response<Bytes>)
where
    S: Service<Request<()>, Response = Response<Bytes>, Error = Infallible>,
{
    let mut requests: Vec<Request<()>> = (0..6).map(|_| make()).collect();
    let mut last = None;

    let count = allocations(|| {
        let request = requests.pop().expect("a request per attempt");
        let response = now(service.call(request));
        black_box(&response);
        last = Some(response);
    });
    let response = last.and_then(Result::ok).expect("a response");
    (count, response)
}

#[test]
fn the_request_path_allocates_only_what_http_imposes() {
    let handle = PolicyHandle::new();
    handle.publish_json(POLICY).expect("a valid policy");
    let billing: ApiRef = "acme/billing".parse().expect("a reference");
    let orders: ApiRef = "acme/orders".parse().expect("a reference");
    let mut gated = CrossApiLayer::new(handle.clone()).layer(tower::service_fn(answer));
    let mut bare = tower::service_fn(answer);

    let decision = allocations(|| {
        black_box(handle.decide(black_box(&billing), black_box(&orders)));
    });
    assert_eq!(decision, 0, "a decision allocates nothing");

    let (headers, ()) = request(Some("acme/billing"), "acme/orders").into_parts();
    let (source, target) = (SourceIdentity::default(), TargetIdentity::default());
    assert_eq!(source.resolve(&headers), Ok(Some(billing)));
    assert_eq!(target.resolve(&headers), Ok(Some(orders)));
    let identity = allocations(|| {
        black_box((source.resolve(&headers).ok(), target.resolve(&headers).ok()));
    });
    assert_eq!(
        identity, 0,
        "reading both identities from headers allocates nothing"
    );

    let (mut authenticated_parts, ()) = Request::new(()).into_parts();
    authenticated_parts
        .extensions
        .insert(AuthenticatedSource(billing));
    let authenticated = SourceIdentity::authenticated();
    assert_eq!(
        authenticated.resolve(&authenticated_parts),
        Ok(Some(billing))
    );
    let from_extension = allocations(|| {
        black_box(authenticated.resolve(&authenticated_parts).ok());
    });
    assert_eq!(
        from_extension, 0,
        "reading the source extension allocates nothing"
    );

    let (end_user, response) = through(&mut gated, || request(None, "acme/orders"));
    assert_eq!(response.body().as_ref(), b"end user");
    assert_eq!(end_user, 0, "end-user traffic passes without an allocation");

    let (denied, response) = through(&mut gated, || request(Some("acme/crm"), "acme/orders"));
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let (passthrough_denied, _) = through(&mut bare, || request(Some("acme/crm"), "acme/orders"));
    assert_eq!(passthrough_denied, 0);
    assert_eq!(
        denied, 0,
        "a refusal reuses the request's header map, counts its decision without allocating, \
         writes its body into the thread's refusal buffer and its x-request-id value is a \
         slice of that body"
    );

    let (echoed, response) = through(&mut gated, || {
        let mut request = request(Some("acme/crm"), "acme/orders");
        request
            .headers_mut()
            .insert("x-request-id", HeaderValue::from_static("req-7"));
        request
    });
    assert_eq!(response.headers()["x-request-id"], "req-7");
    assert_eq!(
        echoed, 0,
        "a client's sane x-request-id is echoed in its own header value"
    );

    let (allowed, response) = through(&mut gated, || request(Some("acme/billing"), "acme/orders"));
    assert_eq!(response.body().as_ref(), b"linked");
    let mut empty: Vec<Request<()>> = (0..6).map(|_| Request::new(())).collect();
    let insert = allocations(|| {
        let mut request = empty.pop().expect("a request per attempt");
        request.extensions_mut().insert((billing, orders));
        black_box(request);
    });
    assert_eq!(
        allowed, insert,
        "the allowed path allocates what inserting the verified source does, nothing more"
    );
    assert_eq!(insert, 3, "http's map, its table and the boxed value");

    let (allowed_with_extensions, _) = through(&mut gated, || {
        let mut request = request(Some("acme/billing"), "acme/orders");
        request.extensions_mut().insert(Routed);
        request
    });
    assert_eq!(
        allowed_with_extensions, 1,
        "when an earlier layer (a router, a connection layer) already made the request's \
         extension map, the allowed path allocates only the boxed verified source"
    );

    let mut written = CrossApiLayer::new(handle.clone())
        .with_verified_header(HeaderName::from_static("x-verified-source"))
        .layer(tower::service_fn(answer));
    let (allowed_with_header, response) = through(&mut written, || {
        let mut request = request(Some("acme/billing"), "acme/orders");
        request.extensions_mut().insert(Routed);
        request
    });
    assert_eq!(response.body().as_ref(), b"linked");
    assert_eq!(
        allowed_with_header, 2,
        "writing the verified header adds only its value's own bytes to the boxed source"
    );

    let recorder = PrometheusBuilder::new().build_recorder();
    let exporter = recorder.handle();
    let (counted_allowed, counted_denied) = metrics::with_local_recorder(&recorder, || {
        let (allowed, _) = through(&mut gated, || {
            let mut request = request(Some("acme/billing"), "acme/orders");
            request.extensions_mut().insert(Routed);
            request
        });
        let (denied, _) = through(&mut gated, || {
            let mut request = request(Some("acme/crm"), "acme/orders");
            request
                .headers_mut()
                .insert("x-request-id", HeaderValue::from_static("req-8"));
            request
        });
        let recorder_own = allocations(|| metrics::counter!("probe_total").increment(1));
        (allowed - recorder_own, denied - recorder_own)
    });
    let exported = exporter.render();
    for (decision, reason) in [("allow", "listed"), ("deny", "not_listed")] {
        let series = format!(
            "cross_api_decisions_total{{tenant=\"acme\",target=\"acme/orders\",\
             source=\"acme/{}\",decision=\"{decision}\",reason=\"{reason}\"}} 6",
            if decision == "allow" {
                "billing"
            } else {
                "crm"
            }
        );
        assert!(exported.contains(&series), "{series} in\n{exported}");
    }
    assert_eq!(
        (counted_allowed, counted_denied),
        (1, 0),
        "with the Prometheus recorder installed, counting a decision allocates only what the \
         recorder itself does for a key with no labels (it wraps each handle it returns)"
    );

    std::thread::spawn(refusal_bodies_reuse_the_threads_buffer_and_are_never_written_over)
        .join()
        .expect("the refusal buffer holds");
}

/// Refusals answered one after the other reuse one buffer: a thousand of them, each body
/// dropped before the next refusal, allocate nothing at all. Run on a thread of its own, whose
/// buffer no earlier body holds, while the test's thread waits. Bodies that are still held are
/// never written over: a thousand held at once take a new buffer about every twenty bodies,
/// and each still reads as its own refusal.
fn refusal_bodies_reuse_the_threads_buffer_and_are_never_written_over() {
    let handle = PolicyHandle::new();
    handle.publish_json(POLICY).expect("a valid policy");
    let mut gated = CrossApiLayer::new(handle).layer(tower::service_fn(answer));
    let denied = || request(Some("acme/crm"), "acme/orders");

    let warm_up = now(gated.call(denied())).expect("infallible");
    assert_eq!(warm_up.status(), StatusCode::FORBIDDEN);
    drop(warm_up);
    let mut requests: Vec<Request<()>> = (0..1000).map(|_| denied()).collect();
    let region = Region::new(GLOBAL);
    for request in requests.drain(..) {
        let response = now(gated.call(request)).expect("infallible");
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
    }
    let change = region.change();
    assert_eq!(
        (change.allocations, change.reallocations),
        (0, 0),
        "1000 refusals, each answered and dropped in turn, after one that took the buffer"
    );

    let mut requests: Vec<Request<()>> = (0..1000).map(|_| denied()).collect();
    let region = Region::new(GLOBAL);
    let held: Vec<Response<Bytes>> = requests
        .drain(..)
        .map(|request| now(gated.call(request)).expect("infallible"))
        .collect();
    let change = region.change();
    let body_len = held[0].body().len();
    let buffers = 1000 * body_len / (4 * 1024) + 1;
    assert!(
        change.allocations <= 2 * buffers + 1,
        "{} allocations for 1000 held refusals of {body_len} bytes: a buffer and its shared \
         count per {buffers} buffers, and the vector that holds the responses",
        change.allocations
    );

    let mut ids = std::collections::HashSet::new();
    for response in &held {
        let body: serde_json::Value = serde_json::from_slice(response.body()).expect("json");
        let id = body["request_id"].as_str().expect("an id").to_owned();
        assert_eq!(response.headers()["x-request-id"], id.as_str());
        assert_eq!(body["detail"], tower_cross_api::DENIED_DETAIL);
        assert!(ids.insert(id), "every held body keeps its own request id");
    }
}
