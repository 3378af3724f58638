//! What operating the gate costs on the request path, as ratios to the bare decision and to
//! the enforcing gate in the same run: metrics recorded into a Prometheus recorder, audit mode
//! with learning, and a refusal with its correlation id.
//!
//! ```text
//! cargo bench --bench operations
//! ```

use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BatchSize, Criterion};
use http::{Request, Response};
use tower::Service;
use tower_cross_api::{ApiRef, AuditLearner, CrossApiLayer, Enforcement, PolicyHandle};
use tower_layer::Layer;

const POLICY: &str = r#"{ "revision": 1, "tenants": { "acme": {
    "apis": ["orders", "billing", "crm", "reports"],
    "cross_api_access": { "orders": { "allow": ["billing", "crm"] } }
} } }"#;

type Inner = tower::util::ServiceFn<fn(Request<()>) -> Ready<Result<Response<Bytes>, Infallible>>>;

fn answer(_: Request<()>) -> Ready<Result<Response<Bytes>, Infallible>> {
    ready(Ok(Response::new(Bytes::new())))
}

fn service(layer: &CrossApiLayer) -> tower_cross_api::CrossApiService<Inner> {
    let inner: Inner = tower::service_fn(answer as fn(_) -> _);
    layer.layer(inner)
}

fn request(source: &'static str) -> Request<()> {
    Request::get("/")
        .header("x-source-api", source)
        .header("x-target-api", "acme/orders")
        .body(())
        .expect("request")
}

/// Calls the service once and polls its future to the end; the future is ready at once.
fn call(service: &mut tower_cross_api::CrossApiService<Inner>, request: Request<()>) -> u16 {
    let mut context = Context::from_waker(Waker::noop());
    let future = pin!(service.call(request));

    match future.poll(&mut context) {
        Poll::Ready(Ok(response)) => response.status().as_u16(),
        Poll::Ready(Err(never)) => match never {},
        Poll::Pending => unreachable!("the inner service is always ready"),
    }
}

fn per_call(criterion: &mut Criterion) {
    let policies = PolicyHandle::new();
    policies.publish_json(POLICY).expect("valid");
    let enforcing = CrossApiLayer::new(policies.clone());
    let auditing = CrossApiLayer::new(policies.clone())
        .with_enforcement(Enforcement::Audit)
        .with_learner(AuditLearner::new());
    let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let billing: ApiRef = "acme/billing".parse().expect("ref");
    let orders: ApiRef = "acme/orders".parse().expect("ref");

    let mut group = criterion.benchmark_group("operations");
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));

    group.bench_function("decide", |bench| {
        bench.iter(|| black_box(policies.decide(black_box(&billing), black_box(&orders))))
    });
    let mut allow = service(&enforcing);
    group.bench_function("allow", |bench| {
        bench.iter_batched(
            || request("acme/billing"),
            |r| call(&mut allow, r),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("allow_prometheus", |bench| {
        metrics::with_local_recorder(&prometheus, || {
            bench.iter_batched(
                || request("acme/billing"),
                |r| call(&mut allow, r),
                BatchSize::SmallInput,
            )
        })
    });
    let mut audit = service(&auditing);
    group.bench_function("would_deny_learning", |bench| {
        bench.iter_batched(
            || request("acme/reports"),
            |r| call(&mut audit, r),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("deny", |bench| {
        bench.iter_batched(
            || request("acme/reports"),
            |r| call(&mut allow, r),
            BatchSize::SmallInput,
        )
    });
    group.finish();

    ratios(
        &mut allow,
        &mut audit,
        &prometheus,
        &billing,
        &orders,
        &policies,
    );
}

/// Prints each path's time per call as a ratio to the bare decision and to the enforcing
/// gate's allow, measured here in one run so that the machine's speed cancels out.
fn ratios(
    allow: &mut tower_cross_api::CrossApiService<Inner>,
    audit: &mut tower_cross_api::CrossApiService<Inner>,
    prometheus: &metrics_exporter_prometheus::PrometheusRecorder,
    billing: &ApiRef,
    orders: &ApiRef,
    policies: &PolicyHandle,
) {
    const CALLS: u32 = 200_000;
    let time = |run: &mut dyn FnMut()| {
        let start = Instant::now();
        for _ in 0..CALLS {
            run();
        }
        start.elapsed() / CALLS
    };

    let decide = time(&mut || {
        black_box(policies.decide(black_box(billing), black_box(orders)));
    });
    let requests = time(&mut || {
        black_box(request("acme/billing"));
    });
    let allowed = time(&mut || {
        black_box(call(allow, request("acme/billing")));
    }) - requests;
    let recorded = metrics::with_local_recorder(prometheus, || {
        time(&mut || {
            black_box(call(allow, request("acme/billing")));
        })
    }) - requests;
    let audited = time(&mut || {
        black_box(call(audit, request("acme/reports")));
    }) - requests;
    let denied = time(&mut || {
        black_box(call(allow, request("acme/reports")));
    }) - requests;

    println!("\nratios (time per call, request construction subtracted):");
    for (name, spent) in [
        ("decide", decide),
        ("allow", allowed),
        ("allow_prometheus", recorded),
        ("would_deny_learning", audited),
        ("deny", denied),
    ] {
        println!(
            "  {name:<20} {:>8.0} ns  {:>6.1} x decide  {:>5.2} x allow",
            spent.as_nanos(),
            spent.as_secs_f64() / decide.as_secs_f64(),
            spent.as_secs_f64() / allowed.as_secs_f64(),
        );
    }
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    per_call(&mut criterion);
    criterion.final_summary();
}
