//! The source of a linked call: who is calling.

use std::fmt;

use http::header::HeaderName;
use http::request::Parts;

use super::header::{self, HeaderFault, X_SOURCE_API};
use crate::decision::Decision;
use crate::id::ApiRef;

/// A source that an earlier layer authenticated, inserted into the request's extensions:
/// by the accept loop from the connection's peer certificate, or by a token-checking layer.
///
/// Read by [`SourceIdentity::authenticated`]. Inserting it is a statement of trust: insert it
/// only for a source you verified.
///
/// ```
/// use tower_cross_api::{ApiRef, AuthenticatedSource};
///
/// let mut request = http::Request::new(());
/// let source: ApiRef = "acme/billing".parse()?;
/// request.extensions_mut().insert(AuthenticatedSource(source));
/// # Ok::<(), tower_cross_api::IdError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AuthenticatedSource(pub ApiRef);

/// A connection whose peer presented credentials that name no valid source, inserted into
/// the extensions of each of its requests in place of an [`AuthenticatedSource`].
///
/// [`SourceIdentity::authenticated`] refuses every such request with `403 Forbidden`, with
/// or without a source header: a caller that tried to authenticate and failed is neither a
/// linked call nor end-user traffic. The reason is a stable, lower-case name for the logs.
///
/// ```
/// use tower_cross_api::UnidentifiedPeer;
///
/// let mut request = http::Request::new(());
/// request.extensions_mut().insert(UnidentifiedPeer("foreign_trust_domain"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UnidentifiedPeer(pub &'static str);

/// The source that passed the gate, inserted into the request's extensions before the inner
/// service is called, with the decision that let it through.
///
/// Passing the gate grants no data by itself: the target's own rules still apply.
///
/// ```
/// use axum::Extension;
/// use tower_cross_api::VerifiedSource;
///
/// async fn handler(source: Option<Extension<VerifiedSource>>) -> String {
///     match source {
///         Some(Extension(source)) => format!("called by {}", source.api()),
///         None => String::from("end-user traffic"),
///     }
/// }
/// # let _ = handler;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VerifiedSource {
    api: ApiRef,
    decision: Decision,
}

impl VerifiedSource {
    pub(crate) const fn new(api: ApiRef, decision: Decision) -> Self {
        Self { api, decision }
    }

    /// The calling API.
    pub const fn api(&self) -> &ApiRef {
        &self.api
    }

    /// The decision that let it through, with its reason and revision.
    pub const fn decision(&self) -> Decision {
        self.decision
    }
}

/// Where the layer reads the source of a call.
///
/// - [`header`](Self::header) (the default): the `x-source-api` header, set by a trusted edge
///   that removes any client-sent copy. Absent means end-user traffic. When an earlier layer
///   did authenticate the request ([`AuthenticatedSource`] or [`UnidentifiedPeer`]), that
///   wins as in `authenticated` mode: a proof is never overruled by a header nor ignored.
/// - [`authenticated`](Self::authenticated): the [`AuthenticatedSource`] extension. A header
///   is then only a claim: one that names the same source is accepted, one that names another
///   is a contradiction, and one on a request with no authenticated source is refused, so an
///   unauthenticated claim never turns end-user traffic into a linked call. A request that
///   carries an [`UnidentifiedPeer`] is refused whatever its headers say.
///
/// ```
/// use http::HeaderName;
/// use tower_cross_api::SourceIdentity;
///
/// let from_edge = SourceIdentity::header(HeaderName::from_static("x-caller"));
/// let from_certificate = SourceIdentity::authenticated();
/// # let _ = (from_edge, from_certificate);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceIdentity {
    header: HeaderName,
    authenticated: bool,
}

/// Why a request's source could not be established.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SourceFault {
    /// The source header is malformed: `400 Bad Request`.
    Header(HeaderFault),
    /// The source header names another API than the authenticated source: `403 Forbidden`.
    Contradiction {
        /// The authenticated source.
        authenticated: ApiRef,
        /// What the header claimed.
        claimed: ApiRef,
    },
    /// A source header on a request without an authenticated source: `403 Forbidden`.
    Unauthenticated {
        /// What the header claimed.
        claimed: ApiRef,
    },
    /// The connection's peer presented credentials that name no valid source
    /// ([`UnidentifiedPeer`]): `403 Forbidden`.
    UnidentifiedPeer {
        /// Why its credentials name no source.
        reason: &'static str,
    },
}

impl SourceFault {
    /// A stable, lower-case name for logs, such as `contradiction`.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Header(fault) => fault.as_str(),
            Self::Contradiction { .. } => "contradiction",
            Self::Unauthenticated { .. } => "unauthenticated_claim",
            Self::UnidentifiedPeer { .. } => "unidentified_peer",
        }
    }
}

impl fmt::Display for SourceFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Header(fault) => fault.fmt(f),
            Self::Contradiction {
                authenticated,
                claimed,
            } => {
                write!(
                    f,
                    "the header claims {claimed} but the connection is {authenticated}"
                )
            }
            Self::Unauthenticated { claimed } => {
                write!(
                    f,
                    "the header claims {claimed} without an authenticated source"
                )
            }
            Self::UnidentifiedPeer { reason } => {
                write!(f, "the peer's credentials name no valid source: {reason}")
            }
        }
    }
}

impl SourceIdentity {
    /// The source is the value of `header`, as `<tenant>/<api>`.
    pub const fn header(header: HeaderName) -> Self {
        Self {
            header,
            authenticated: false,
        }
    }

    /// The source is the [`AuthenticatedSource`] extension; `x-source-api` is checked
    /// against it.
    pub const fn authenticated() -> Self {
        Self {
            header: X_SOURCE_API,
            authenticated: true,
        }
    }

    /// The header read (as the source, or as a claim checked against the authenticated one).
    pub fn with_header_name(mut self, header: HeaderName) -> Self {
        self.header = header;
        self
    }

    /// The header this identity reads.
    pub const fn header_name(&self) -> &HeaderName {
        &self.header
    }

    /// The source of the request; `None` for end-user traffic.
    ///
    /// # Errors
    ///
    /// A [`SourceFault`] when the request's source is unclear.
    #[expect(
        clippy::result_large_err,
        reason = "identifiers are inline so that the request path never allocates; boxing the \
                  fault would allocate on every refusal"
    )]
    pub fn resolve(&self, request: &Parts) -> Result<Option<ApiRef>, SourceFault> {
        // Before the header is read: a malformed header does not turn a peer whose
        // credentials failed into a `400`.
        if let Some(&UnidentifiedPeer(reason)) = request.extensions.get::<UnidentifiedPeer>() {
            return Err(SourceFault::UnidentifiedPeer { reason });
        }

        let authenticated = request
            .extensions
            .get::<AuthenticatedSource>()
            .map(|source| source.0);

        if !self.authenticated && authenticated.is_none() {
            return header::read(&request.headers, &self.header).map_err(SourceFault::Header);
        }

        let claimed = header::read(&request.headers, &self.header).map_err(SourceFault::Header)?;

        match (authenticated, claimed) {
            (authenticated, None) => Ok(authenticated),
            (Some(authenticated), Some(claimed)) if authenticated == claimed => Ok(Some(claimed)),
            (Some(authenticated), Some(claimed)) => Err(SourceFault::Contradiction {
                authenticated,
                claimed,
            }),
            (None, Some(claimed)) => Err(SourceFault::Unauthenticated { claimed }),
        }
    }
}

impl Default for SourceIdentity {
    /// [`SourceIdentity::header`] with `x-source-api`.
    fn default() -> Self {
        Self::header(X_SOURCE_API)
    }
}

#[cfg(test)]
mod tests {
    use http::Request;

    use super::*;

    fn parts(header: Option<&str>, authenticated: Option<&str>) -> Parts {
        let mut request = Request::new(());
        if let Some(value) = header {
            request
                .headers_mut()
                .insert(X_SOURCE_API, value.parse().expect("header value"));
        }
        if let Some(value) = authenticated {
            let source = value.parse().expect("api reference");
            request.extensions_mut().insert(AuthenticatedSource(source));
        }
        request.into_parts().0
    }

    fn api(value: &str) -> ApiRef {
        value.parse().expect("api reference")
    }

    #[test]
    fn header_identity_defers_to_an_authenticated_source() {
        let identity = SourceIdentity::default();

        assert_eq!(
            identity.resolve(&parts(Some("t1/b"), None)),
            Ok(Some(api("t1/b")))
        );
        assert_eq!(
            identity.resolve(&parts(None, Some("t1/a"))),
            Ok(Some(api("t1/a")))
        );
        assert_eq!(
            identity.resolve(&parts(Some("t1/a"), Some("t1/a"))),
            Ok(Some(api("t1/a")))
        );
        assert_eq!(
            identity.resolve(&parts(Some("t1/b"), Some("t1/a"))),
            Err(SourceFault::Contradiction {
                authenticated: api("t1/a"),
                claimed: api("t1/b")
            })
        );

        let mut unidentified = parts(Some("t1/b"), None);
        unidentified.extensions.insert(UnidentifiedPeer("port"));
        let fault = SourceFault::UnidentifiedPeer { reason: "port" };
        assert_eq!(identity.resolve(&unidentified), Err(fault));
    }

    #[test]
    fn unidentified_peer_is_refused_with_or_without_a_claim() {
        let identity = SourceIdentity::authenticated();
        let fault = SourceFault::UnidentifiedPeer { reason: "port" };

        for (header, authenticated) in [(None, None), (Some("t1/a"), None), (None, Some("t1/a"))] {
            let mut request = parts(header, authenticated);
            request.extensions.insert(UnidentifiedPeer("port"));
            assert_eq!(identity.resolve(&request), Err(fault));
        }
        assert_eq!(fault.as_str(), "unidentified_peer");
    }

    #[test]
    fn unidentified_peer_is_refused_whatever_its_headers_say() {
        let fault = SourceFault::UnidentifiedPeer { reason: "port" };

        for identity in [SourceIdentity::default(), SourceIdentity::authenticated()] {
            for headers in [&[""][..], &["T1/a"], &["t1/a", "t1/a"], &["t1/a,t1/b"]] {
                let mut request = Request::new(());
                for value in headers {
                    let value = value.parse().expect("header value");
                    request.headers_mut().append(X_SOURCE_API, value);
                }
                let mut request = request.into_parts().0;
                request.extensions.insert(UnidentifiedPeer("port"));

                assert_eq!(identity.resolve(&request), Err(fault), "{headers:?}");
            }
        }
    }

    #[test]
    fn authenticated_identity_checks_the_claim() {
        let identity = SourceIdentity::authenticated();

        assert_eq!(identity.resolve(&parts(None, None)), Ok(None));
        assert_eq!(
            identity.resolve(&parts(None, Some("t1/a"))),
            Ok(Some(api("t1/a")))
        );
        assert_eq!(
            identity.resolve(&parts(Some("t1/a"), Some("t1/a"))),
            Ok(Some(api("t1/a")))
        );
        assert_eq!(
            identity.resolve(&parts(Some("t1/b"), Some("t1/a"))),
            Err(SourceFault::Contradiction {
                authenticated: api("t1/a"),
                claimed: api("t1/b")
            })
        );
        assert_eq!(
            identity.resolve(&parts(Some("t1/b"), None)),
            Err(SourceFault::Unauthenticated {
                claimed: api("t1/b")
            })
        );
        assert_eq!(
            identity.resolve(&parts(Some(""), Some("t1/a"))),
            Err(SourceFault::Header(HeaderFault::Empty))
        );
    }
}
