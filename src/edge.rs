//! The trust boundary for identity headers: [`EdgeLayer`] removes client-sent identity
//! headers, and their look-alike spellings, before anything else reads them.
//!
//! Some backends and proxies fold `_`, `.` and `-` in header names, or their case, into one
//! name: for them `x_source_api`, `x.source.api` and `X-Source-Api` all are `x-source-api`.
//! The edge compares names the same way, ignoring those separators and case, so that no
//! spelling of an identity header crosses the boundary.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::HeaderName;
use http::{HeaderMap, Request};
use tower_layer::Layer;
use tower_service::Service;

use crate::identity::X_SOURCE_API;

/// Removes client-sent identity headers at the trust boundary: put it outermost, in front of
/// every layer and service that could read them.
///
/// By default it removes every header whose name folds to `x-source-api`. A listener whose
/// gate takes the source from the connection ([`SourceIdentity::authenticated`]) keeps the
/// exact `x-source-api` with [`with_claims_kept`](Self::with_claims_kept): the gate then
/// checks it as a claim and refuses one it cannot verify, while the look-alikes, which the
/// gate does not read but a backend might, are still removed.
///
/// ```
/// use axum::{Router, routing::get};
/// use tower_cross_api::{EdgeLayer, X_TARGET_API};
///
/// let app: Router = Router::new()
///     .route("/", get(|| async { "hello" }))
///     .layer(EdgeLayer::new().with_header(X_TARGET_API));
/// # let _ = app;
/// ```
///
/// [`SourceIdentity::authenticated`]: crate::SourceIdentity::authenticated
#[derive(Clone)]
pub struct EdgeLayer {
    names: Arc<[Folded]>,
    keep_exact: bool,
}

/// A configured name, and the same name with separators dropped and lower-cased.
#[derive(Clone)]
pub(crate) struct Folded {
    exact: HeaderName,
    folded: Box<[u8]>,
}

impl Folded {
    pub(crate) fn new(exact: HeaderName) -> Self {
        let folded = fold(exact.as_str().as_bytes()).collect();
        Self { exact, folded }
    }

    /// The name as configured.
    pub(crate) const fn exact(&self) -> &HeaderName {
        &self.exact
    }
}

impl fmt::Debug for Folded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.exact, f)
    }
}

fn fold(name: &[u8]) -> impl Iterator<Item = u8> + '_ {
    name.iter()
        .filter(|byte| !matches!(byte, b'-' | b'_' | b'.'))
        .map(u8::to_ascii_lowercase)
}

/// Whether `name` is `folded` once `_`, `.`, `-` and case are ignored.
fn folds_to(name: &HeaderName, folded: &[u8]) -> bool {
    fold(name.as_str().as_bytes()).eq(folded.iter().copied())
}

/// Removes from `headers` every name that folds to `name`, keeping the exact name when
/// `keep_exact`, and calls `removed` with each; returns how many names were removed.
/// Allocates only when one is found.
pub(crate) fn remove_folded(
    headers: &mut HeaderMap,
    name: &Folded,
    keep_exact: bool,
    mut removed: impl FnMut(&HeaderName),
) -> usize {
    let found: Vec<HeaderName> = headers
        .keys()
        .filter(|key| folds_to(key, &name.folded))
        .filter(|key| !(keep_exact && **key == name.exact))
        .cloned()
        .collect();

    for key in &found {
        headers.remove(key);
        removed(key);
    }
    found.len()
}

impl EdgeLayer {
    /// An edge that removes `x-source-api` and every look-alike of it.
    pub fn new() -> Self {
        Self {
            names: Arc::new([Folded::new(X_SOURCE_API)]),
            keep_exact: false,
        }
    }

    /// Also removes `name` and its look-alikes, such as [`X_TARGET_API`] when the gate
    /// reads the target from a header.
    ///
    /// [`X_TARGET_API`]: crate::X_TARGET_API
    pub fn with_header(self, name: HeaderName) -> Self {
        let mut names = self.names.to_vec();
        names.push(Folded::new(name));
        Self {
            names: names.into(),
            keep_exact: self.keep_exact,
        }
    }

    /// Keeps the headers spelled exactly as configured and removes only their look-alikes,
    /// for a gate that checks the exact header as a claim against the authenticated source.
    pub fn with_claims_kept(self) -> Self {
        Self {
            keep_exact: true,
            ..self
        }
    }

    /// Removes the identity headers from `headers`; returns how many names it removed.
    ///
    /// ```
    /// use http::{HeaderMap, HeaderValue};
    /// use tower_cross_api::EdgeLayer;
    ///
    /// let mut headers = HeaderMap::new();
    /// headers.insert("x_source_api", HeaderValue::from_static("acme/billing"));
    /// headers.insert("accept", HeaderValue::from_static("*/*"));
    ///
    /// assert_eq!(EdgeLayer::new().strip(&mut headers), 1);
    /// assert_eq!(headers.len(), 1);
    /// ```
    pub fn strip(&self, headers: &mut HeaderMap) -> usize {
        self.names
            .iter()
            .map(|name| {
                remove_folded(headers, name, self.keep_exact, |removed| {
                    tracing::info!(
                        header = %removed,
                        identity_header = %name.exact,
                        "edge removed a client-sent identity header"
                    );
                })
            })
            .sum()
    }
}

impl Default for EdgeLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for EdgeLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EdgeLayer")
            .field("names", &self.names)
            .field("keep_exact", &self.keep_exact)
            .finish()
    }
}

impl<S> Layer<S> for EdgeLayer {
    type Service = Edge<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Edge {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`EdgeLayer`] wraps: removes identity headers, then calls the inner service.
#[derive(Clone, Debug)]
pub struct Edge<S> {
    inner: S,
    layer: EdgeLayer,
}

impl<S> Edge<S> {
    /// The inner service.
    pub const fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, without the edge.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B> Service<Request<B>> for Edge<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        self.layer.strip(request.headers_mut());
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;
    use crate::identity::X_TARGET_API;

    const LOOK_ALIKES: [&str; 9] = [
        "x_source_api",
        "x.source.api",
        "x-source_api",
        "x_source.api",
        "xsourceapi",
        "x--source--api",
        "-x-source-api-",
        "x.source-api",
        "x__source__api",
    ];

    fn headers(names: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for name in names {
            let name = HeaderName::from_bytes(name.as_bytes()).expect("header name");
            headers.append(name, HeaderValue::from_static("t1/billing"));
        }
        headers
    }

    #[test]
    fn removes_the_header_and_every_look_alike() {
        let mut names = LOOK_ALIKES.to_vec();
        names.extend(["x-source-api", "X-SOURCE-API", "X_Source.Api", "accept"]);
        let mut headers = headers(&names);

        EdgeLayer::new().strip(&mut headers);

        let left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, ["accept"]);
    }

    #[test]
    fn keeps_the_exact_claim_when_asked() {
        let mut names = LOOK_ALIKES.to_vec();
        names.push("x-source-api");
        let mut headers = headers(&names);

        let removed = EdgeLayer::new().with_claims_kept().strip(&mut headers);

        assert_eq!(removed, LOOK_ALIKES.len());
        let left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, ["x-source-api"]);
    }

    #[test]
    fn leaves_names_that_only_resemble() {
        let names = [
            "x-source-apis",
            "x-source",
            "source-api",
            "x-sourceapi-v2",
            "x-target-api",
        ];
        let mut headers = headers(&names);

        assert_eq!(EdgeLayer::new().strip(&mut headers), 0);
        assert_eq!(headers.len(), names.len());
    }

    #[test]
    fn target_header_when_configured() {
        let mut headers = headers(&["x_target_api", "x-target-api", "x.source.api"]);

        let removed = EdgeLayer::new()
            .with_header(X_TARGET_API)
            .strip(&mut headers);

        assert_eq!(removed, 3);
        assert!(headers.is_empty());
    }

    #[tokio::test]
    async fn the_service_strips_before_the_inner_service_reads() {
        use tower::ServiceExt;

        let inner = tower::service_fn(|request: Request<()>| async move {
            let names: Vec<String> = request
                .headers()
                .keys()
                .map(|name| name.to_string())
                .collect();
            Ok::<_, std::convert::Infallible>(names)
        });
        let request = Request::get("/")
            .header("x_source_api", "t1/a")
            .header("X-Source-Api", "t1/a")
            .header("x.target.api", "t1/b")
            .header("accept", "*/*")
            .body(())
            .expect("request");

        let edge = EdgeLayer::new().with_header(X_TARGET_API).layer(inner);
        let seen = edge.oneshot(request).await.expect("infallible");

        assert_eq!(seen, ["accept"]);
    }

    #[test]
    fn debug_names_the_headers() {
        let layer = EdgeLayer::new().with_header(X_TARGET_API);
        assert_eq!(
            format!("{layer:?}"),
            r#"EdgeLayer { names: ["x-source-api", "x-target-api"], keep_exact: false }"#
        );
    }
}
