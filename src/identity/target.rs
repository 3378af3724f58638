//! The target of a linked call: which API is being called.

use std::fmt;
use std::sync::Arc;

use http::header::HeaderName;
use http::request::Parts;

use super::header::{self, HeaderFault, X_TARGET_API};
use crate::id::{ApiId, ApiRef, TenantId};

/// Where the layer reads the target of a call.
///
/// A target that cannot be told from the request denies a linked call with
/// [`Reason::UnknownTarget`](crate::Reason::UnknownTarget); a malformed target header refuses
/// it with `400 Bad Request`.
///
/// ```
/// use tower_cross_api::{ApiRef, TargetIdentity};
///
/// // `/{tenant}/{api}/...`
/// let from_path = TargetIdentity::path();
///
/// // One layer per target API.
/// let fixed = TargetIdentity::fixed("acme/orders".parse::<ApiRef>()?);
///
/// // Anything else the request says.
/// let from_host = TargetIdentity::from_request(|request| {
///     let host = request.headers.get("host")?.to_str().ok()?;
///     let api = host.strip_suffix(".acme.internal")?;
///     format!("acme/{api}").parse().ok()
/// });
/// # let _ = (from_path, fixed, from_host);
/// # Ok::<(), tower_cross_api::IdError>(())
/// ```
#[derive(Clone)]
pub struct TargetIdentity {
    kind: Kind,
}

type TargetFn = dyn Fn(&Parts) -> Option<ApiRef> + Send + Sync;

#[derive(Clone)]
enum Kind {
    Header(HeaderName),
    Path,
    Fixed(ApiRef),
    Function(Arc<TargetFn>),
}

impl TargetIdentity {
    /// The target is the value of `header`, as `<tenant>/<api>`.
    pub const fn header(header: HeaderName) -> Self {
        Self {
            kind: Kind::Header(header),
        }
    }

    /// The target is the first two segments of the path, `/{tenant}/{api}/...`, taken as
    /// they are written: a segment that is not a valid identifier (percent-escapes included)
    /// gives no target.
    pub const fn path() -> Self {
        Self { kind: Kind::Path }
    }

    /// Every request this layer sees is for `target`.
    pub const fn fixed(target: ApiRef) -> Self {
        Self {
            kind: Kind::Fixed(target),
        }
    }

    /// The target is what `target` returns for the request's head; `None` when it cannot
    /// tell.
    pub fn from_request<F>(target: F) -> Self
    where
        F: Fn(&Parts) -> Option<ApiRef> + Send + Sync + 'static,
    {
        Self {
            kind: Kind::Function(Arc::new(target)),
        }
    }

    /// The header this identity reads, if it reads one.
    pub fn header_name(&self) -> Option<&HeaderName> {
        match &self.kind {
            Kind::Header(name) => Some(name),
            Kind::Path | Kind::Fixed(_) | Kind::Function(_) => None,
        }
    }

    /// The target of the request; `None` when it cannot be told.
    ///
    /// # Errors
    ///
    /// A [`HeaderFault`] when the target header is malformed.
    pub fn resolve(&self, request: &Parts) -> Result<Option<ApiRef>, HeaderFault> {
        match &self.kind {
            Kind::Header(name) => header::read(&request.headers, name),
            Kind::Path => Ok(from_path(request.uri.path())),
            Kind::Fixed(target) => Ok(Some(*target)),
            Kind::Function(target) => Ok(target(request)),
        }
    }
}

fn from_path(path: &str) -> Option<ApiRef> {
    let mut segments = path.strip_prefix('/')?.split('/');
    let tenant = TenantId::new(segments.next()?).ok()?;
    let api = ApiId::new(segments.next()?).ok()?;
    Some(ApiRef::new(tenant, api))
}

impl Default for TargetIdentity {
    /// [`TargetIdentity::header`] with `x-target-api`.
    fn default() -> Self {
        Self::header(X_TARGET_API)
    }
}

impl fmt::Debug for TargetIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Header(name) => f.debug_tuple("TargetIdentity::Header").field(name).finish(),
            Kind::Path => f.write_str("TargetIdentity::Path"),
            Kind::Fixed(target) => f
                .debug_tuple("TargetIdentity::Fixed")
                .field(target)
                .finish(),
            Kind::Function(_) => f.write_str("TargetIdentity::FromRequest"),
        }
    }
}

#[cfg(test)]
mod tests {
    use http::Request;

    use super::*;

    fn parts(uri: &str) -> Parts {
        Request::get(uri).body(()).expect("request").into_parts().0
    }

    #[test]
    fn path_takes_two_segments_as_written() {
        let target = TargetIdentity::path();
        let resolve = |uri| target.resolve(&parts(uri)).expect("no header fault");

        assert_eq!(
            resolve("/t1/orders/collections/c1"),
            Some("t1/orders".parse().expect("ref"))
        );
        assert_eq!(
            resolve("/t1/orders"),
            Some("t1/orders".parse().expect("ref"))
        );
        assert_eq!(resolve("/t1"), None);
        assert_eq!(resolve("/T1/orders"), None);
        assert_eq!(resolve("/t1/%6frders/x"), None);
        assert_eq!(resolve("//orders/x"), None);
    }

    #[test]
    fn debug_names_the_kind() {
        assert_eq!(
            format!("{:?}", TargetIdentity::path()),
            "TargetIdentity::Path"
        );
        assert_eq!(
            format!("{:?}", TargetIdentity::default()),
            "TargetIdentity::Header(\"x-target-api\")"
        );
        let function = TargetIdentity::from_request(|_| None);
        assert_eq!(format!("{function:?}"), "TargetIdentity::FromRequest");
    }
}
