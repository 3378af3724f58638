//! The layer outside the example: a plain hyper server behind `tower::ServiceBuilder`,
//! `Router::layer`, the tower readiness contract, replaced rejections and `Debug` output.

mod support;

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_cross_api::{
    ApiRef, CrossApiLayer, Enforcement, PolicyHandle, Refusal, Rejection, TargetIdentity,
    VerifiedSource,
};

const POLICY: &str = r#"{ "revision": 5, "tenants": { "acme": {
    "apis": ["orders", "billing", "crm"],
    "cross_api_access": { "orders": { "allow": ["billing"] } }
} } }"#;

fn policies() -> PolicyHandle {
    let policies = PolicyHandle::new();
    policies.publish_json(POLICY).expect("valid");
    policies
}

type Answer = Result<Response<Full<Bytes>>, Infallible>;

/// A target that answers with the verified source, counting its calls.
fn target(
    calls: Arc<AtomicUsize>,
) -> impl Service<
    Request<hyper::body::Incoming>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future = Ready<Answer>,
> + Clone {
    tower::service_fn(move |request: Request<hyper::body::Incoming>| {
        calls.fetch_add(1, Ordering::SeqCst);
        let source = request
            .extensions()
            .get::<VerifiedSource>()
            .map(|s| s.api().to_string());
        ready(Ok(Response::new(Full::from(
            source.unwrap_or_else(|| "end user".into()),
        ))))
    })
}

/// Serves `service` with hyper on a free local port, HTTP/1.1 and HTTP/2.
async fn serve_with_hyper<S>(service: S) -> std::net::SocketAddr
where
    S: Service<
            Request<hyper::body::Incoming>,
            Response = Response<Full<Bytes>>,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.expect("accept");
            let service = TowerToHyperService::new(service.clone());
            tokio::spawn(async move {
                let builder = auto::Builder::new(TokioExecutor::new());
                let _ = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn plain_hyper_server_behind_service_builder() {
    let calls = Arc::new(AtomicUsize::new(0));
    let service = ServiceBuilder::new()
        .layer(CrossApiLayer::new(policies()))
        .service(target(calls.clone()));
    let addr = serve_with_hyper(service).await;

    let send = |source: &'static str, target: &'static str| async move {
        let headers: [(&str, &[u8]); 2] = [
            ("x-source-api", source.as_bytes()),
            ("x-target-api", target.as_bytes()),
        ];
        support::Connection::open(addr)
            .await
            .get("/", &headers)
            .await
    };

    let allowed = send("acme/billing", "acme/orders").await;
    assert_eq!(
        (allowed.status, allowed.text()),
        (StatusCode::OK, "acme/billing")
    );
    send("acme/crm", "acme/orders").await.assert_denied();
    let malformed = send("acme/billing", "acme/Orders").await;
    malformed.assert_malformed("x-target-api");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_call_let_through_in_audit_mode_keeps_no_earlier_gates_verified_source() {
    let policies = PolicyHandle::new();
    policies
        .publish_json(
            r#"{ "tenants": { "acme": {
                "apis": ["orders", "billing", "crm", "reports"],
                "cross_api_access": {
                    "orders": { "allow": ["billing"] },
                    "crm": { "allow_all": true }
                }
            } } }"#,
        )
        .expect("valid");
    let crm: ApiRef = "acme/crm".parse().expect("api");
    let calls = Arc::new(AtomicUsize::new(0));
    let service = ServiceBuilder::new()
        .layer(CrossApiLayer::new(policies.clone()).with_target(TargetIdentity::fixed(crm)))
        .layer(CrossApiLayer::new(policies).with_enforcement(Enforcement::Audit))
        .service(target(calls.clone()));
    let addr = serve_with_hyper(service).await;

    let headers: [(&str, &[u8]); 2] = [
        ("x-source-api", b"acme/reports"),
        ("x-target-api", b"acme/orders"),
    ];
    let answer = support::Connection::open(addr)
        .await
        .get("/", &headers)
        .await;
    assert_eq!(
        (answer.status, answer.text()),
        (StatusCode::OK, "end user"),
        "the outer gate verified acme/reports for acme/crm, not for acme/orders"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

fn request(source: Option<&str>) -> Request<axum::body::Body> {
    let mut request = Request::get("/acme/orders/collections/c1");
    if let Some(source) = source {
        request = request.header("x-source-api", source);
    }
    request.body(axum::body::Body::empty()).expect("request")
}

fn gated(layer: CrossApiLayer) -> axum::Router {
    axum::Router::new()
        .route("/{*rest}", axum::routing::get(|| async { "target" }))
        .layer(layer)
}

async fn send(app: &axum::Router, source: Option<&str>) -> Response<axum::body::Body> {
    app.clone()
        .oneshot(request(source))
        .await
        .expect("infallible")
}

#[tokio::test]
async fn router_layer_and_a_fixed_target() {
    let orders: ApiRef = "acme/orders".parse().expect("api");
    let app = gated(CrossApiLayer::new(policies()).with_target(TargetIdentity::fixed(orders)));

    assert_eq!(
        send(&app, Some("acme/billing")).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        send(&app, Some("acme/crm")).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(send(&app, None).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_target_that_cannot_be_told_is_denied() {
    let unknown = TargetIdentity::from_request(|_| None);
    let app = gated(CrossApiLayer::new(policies()).with_target(unknown));

    assert_eq!(
        send(&app, Some("acme/billing")).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(send(&app, None).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_host_replaces_the_rejection() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let rejection = Rejection::new({
        let seen = seen.clone();
        move |refusal: &Refusal| {
            seen.lock().expect("lock").push(refusal.clone());
            let mut response = Response::new(Bytes::from_static(b"go away"));
            *response.status_mut() = StatusCode::NOT_FOUND;
            response
        }
    });
    let app = axum::Router::new()
        .route("/{*rest}", axum::routing::get(|| async { "target" }))
        .layer(
            CrossApiLayer::new(policies())
                .with_target(TargetIdentity::path())
                .with_rejection(rejection),
        );

    let response = app
        .oneshot(request(Some("acme/crm")))
        .await
        .expect("infallible");

    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    assert_eq!(body, "go away");
    let seen = seen.lock().expect("lock");
    let [
        Refusal::Denied {
            source,
            target,
            decision,
            ..
        },
    ] = seen.as_slice()
    else {
        panic!("one denial, got {seen:?}");
    };
    assert_eq!(source.to_string(), "acme/crm");
    assert_eq!(
        target.map(|t| t.to_string()).as_deref(),
        Some("acme/orders")
    );
    assert_eq!(decision.reason(), tower_cross_api::Reason::NotListed);
    assert_eq!(decision.revision(), 5);
}

/// A service that is ready only every other poll, and says which readiness each call used.
#[derive(Clone, Debug, Default)]
struct Alternating {
    polls: usize,
    ready: bool,
}

impl Service<Request<()>> for Alternating {
    type Response = Response<Bytes>;
    type Error = Infallible;
    type Future = Ready<Result<Response<Bytes>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.polls += 1;
        if self.polls % 2 == 1 {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.ready = true;
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<()>) -> Self::Future {
        assert!(
            std::mem::take(&mut self.ready),
            "called without being made ready"
        );
        ready(Ok(Response::new(Bytes::from_static(b"inner"))))
    }
}

#[tokio::test]
async fn readiness_is_the_inner_services_and_the_ready_service_is_called() {
    let layer = CrossApiLayer::new(policies()).with_target(TargetIdentity::path());
    let mut service = tower::Layer::layer(&layer, Alternating::default());

    for source in ["acme/billing", "acme/crm", "acme/billing"] {
        let request = Request::get("/acme/orders/x")
            .header("x-source-api", source)
            .body(())
            .expect("request");
        let response = service
            .ready()
            .await
            .expect("ready")
            .call(request)
            .await
            .expect("ok");
        let expected = if source == "acme/billing" {
            StatusCode::OK
        } else {
            StatusCode::FORBIDDEN
        };
        assert_eq!(response.status(), expected);
    }
    assert_eq!(service.get_ref().polls, 6);
}

#[test]
fn debug_output_names_each_type() {
    let layer = CrossApiLayer::new(policies()).with_target(TargetIdentity::path());
    let debug = format!("{layer:?}");
    assert!(debug.starts_with("CrossApiLayer { gate: Gate {"), "{debug}");
    assert!(debug.contains("TargetIdentity::Path"), "{debug}");
    assert!(
        debug.contains("PolicyHandle { revision: Some(5) }"),
        "{debug}"
    );

    let service = tower::Layer::layer(&layer, Alternating::default());
    assert!(format!("{service:?}").starts_with("CrossApiService {"));
}
