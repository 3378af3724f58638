//! A target service that answers `200 OK` and reports what the gate let through, and a way to
//! call a gated service in place, without a runtime: every future here is ready at once.

use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http::{Request, Response};
use tower::Service;
use tower::service_fn;
use tower::util::ServiceFn;
use tower_cross_api::VerifiedSource;

/// Put on every response the probe produced: the request reached the target's own service,
/// with the verified source the gate attached, if any.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reached(pub Option<VerifiedSource>);

/// The probe's handler type.
pub(crate) type ProbeFn = fn(Request<()>) -> Ready<Result<Response<Bytes>, Infallible>>;

/// The target service: `200 OK` with a [`Reached`] extension.
pub(crate) fn probe() -> ServiceFn<ProbeFn> {
    service_fn(answer as ProbeFn)
}

fn answer(request: Request<()>) -> Ready<Result<Response<Bytes>, Infallible>> {
    let verified = request.extensions().get::<VerifiedSource>().copied();

    let mut response = Response::new(Bytes::from_static(b"target"));
    response.extensions_mut().insert(Reached(verified));
    ready(Ok(response))
}

/// Calls `service` once and returns its answer; the gate and the probe never wait.
pub(crate) fn call<S>(service: &mut S, request: Request<()>) -> Response<Bytes>
where
    S: Service<Request<()>, Response = Response<Bytes>, Error = Infallible>,
{
    let mut context = Context::from_waker(Waker::noop());

    match service.poll_ready(&mut context) {
        Poll::Ready(Ok(())) => {}
        Poll::Ready(Err(never)) => match never {},
        Poll::Pending => panic!("the probe is always ready"),
    }

    let future = pin!(service.call(request));
    match future.poll(&mut context) {
        Poll::Ready(Ok(response)) => response,
        Poll::Ready(Err(never)) => match never {},
        Poll::Pending => panic!("the gate and the probe answer at once"),
    }
}
