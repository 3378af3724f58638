//! The source a client certificate names: a SPIFFE ID in its URI SAN, mapped strictly to
//! `<tenant>/<api>`.
//!
//! The default mapping, [`SpiffeMapping`], accepts exactly one shape,
//! `spiffe://<trust-domain>/tenant/<tenant>/api/<api>`, with the configured trust domain
//! spelled exactly and identifiers valid as [`TenantId`] and [`ApiId`] define them. Anything
//! else is a [`CertificateFault`]: nothing is decoded, normalised or picked from several.
//! A host replaces the mapping with its own [`CertificateMapping`].

use std::fmt;

use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

use crate::id::{ApiId, ApiRef, IdError, TenantId};

/// Why a client certificate names no valid source. Every fault refuses the connection's
/// linked calls with `403 Forbidden`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertificateFault {
    /// The bytes are not one DER X.509 certificate, or its extensions are malformed or
    /// repeated.
    Unparsable,
    /// The certificate has no URI SAN.
    NoUriSan,
    /// The certificate has more than one URI SAN: none is picked.
    SeveralUriSans,
    /// The URI SAN's scheme is not `spiffe`.
    NotSpiffe,
    /// The URI holds a byte that is not visible ASCII.
    NotVisibleAscii,
    /// The URI holds an upper-case letter.
    UpperCase,
    /// The URI holds a percent-escape.
    PercentEncoded,
    /// The URI has user information (`user@`).
    Userinfo,
    /// The URI has a port.
    Port,
    /// The URI has a query.
    Query,
    /// The URI has a fragment.
    Fragment,
    /// The trust domain is not the configured one.
    ForeignTrustDomain,
    /// The path has an empty segment.
    EmptySegment,
    /// The path has a `.` or `..` segment.
    DotSegment,
    /// The path ends with `/`.
    TrailingSlash,
    /// The path has more segments than `/tenant/<tenant>/api/<api>`.
    ExtraSegment,
    /// The path is not `/tenant/<tenant>/api/<api>`.
    NotTenantApiPath,
    /// The tenant or API segment is not a valid identifier.
    Identifier(IdError),
    /// A host's own mapping refused the certificate, for the reason it gives.
    Refused(&'static str),
}

impl CertificateFault {
    /// A stable, lower-case name for logs, such as `foreign_trust_domain`.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Unparsable => "unparsable",
            Self::NoUriSan => "no_uri_san",
            Self::SeveralUriSans => "several_uri_sans",
            Self::NotSpiffe => "not_spiffe",
            Self::NotVisibleAscii => "not_visible_ascii",
            Self::UpperCase => "upper_case",
            Self::PercentEncoded => "percent_encoded",
            Self::Userinfo => "userinfo",
            Self::Port => "port",
            Self::Query => "query",
            Self::Fragment => "fragment",
            Self::ForeignTrustDomain => "foreign_trust_domain",
            Self::EmptySegment => "empty_segment",
            Self::DotSegment => "dot_segment",
            Self::TrailingSlash => "trailing_slash",
            Self::ExtraSegment => "extra_segment",
            Self::NotTenantApiPath => "not_tenant_api_path",
            Self::Identifier(_) => "invalid_identifier",
            Self::Refused(reason) => reason,
        }
    }
}

impl fmt::Display for CertificateFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unparsable => f.write_str("the certificate cannot be parsed"),
            Self::NoUriSan => f.write_str("the certificate has no URI SAN"),
            Self::SeveralUriSans => f.write_str("the certificate has more than one URI SAN"),
            Self::NotSpiffe => f.write_str("the URI SAN is not a SPIFFE ID"),
            Self::NotVisibleAscii => f.write_str("the SPIFFE ID holds a non-visible byte"),
            Self::UpperCase => f.write_str("the SPIFFE ID holds an upper-case letter"),
            Self::PercentEncoded => f.write_str("the SPIFFE ID holds a percent-escape"),
            Self::Userinfo => f.write_str("the SPIFFE ID has user information"),
            Self::Port => f.write_str("the SPIFFE ID has a port"),
            Self::Query => f.write_str("the SPIFFE ID has a query"),
            Self::Fragment => f.write_str("the SPIFFE ID has a fragment"),
            Self::ForeignTrustDomain => f.write_str("the SPIFFE ID is of another trust domain"),
            Self::EmptySegment => f.write_str("the SPIFFE ID's path has an empty segment"),
            Self::DotSegment => f.write_str("the SPIFFE ID's path has a dot segment"),
            Self::TrailingSlash => f.write_str("the SPIFFE ID's path ends with a slash"),
            Self::ExtraSegment => f.write_str("the SPIFFE ID's path has an extra segment"),
            Self::NotTenantApiPath => {
                f.write_str("the SPIFFE ID's path is not /tenant/<tenant>/api/<api>")
            }
            Self::Identifier(error) => write!(f, "the SPIFFE ID names no valid API: {error}"),
            Self::Refused(reason) => write!(f, "the host's mapping refused it: {reason}"),
        }
    }
}

impl std::error::Error for CertificateFault {}

/// Turns the verified end-entity certificate of a connection (DER) into its source.
///
/// [`SpiffeMapping`] is the default. A host replaces it with its own type or with a closure;
/// a mapping that reads the subject CN must not do so when the certificate has a URI SAN.
///
/// ```
/// use tower_cross_api::{ApiRef, CertificateFault, CertificateMapping};
///
/// // One fixed caller per client CA, say: every certificate is acme/billing.
/// let mapping = |_der: &[u8]| -> Result<ApiRef, CertificateFault> {
///     "acme/billing".parse().map_err(CertificateFault::Identifier)
/// };
/// assert_eq!(mapping.source(b"")?.to_string(), "acme/billing");
/// # Ok::<(), CertificateFault>(())
/// ```
pub trait CertificateMapping: Send + Sync {
    /// The source that `certificate`, the DER of a verified end-entity certificate, names.
    ///
    /// # Errors
    ///
    /// A [`CertificateFault`] when it names no valid source.
    fn source(&self, certificate: &[u8]) -> Result<ApiRef, CertificateFault>;
}

impl<F> CertificateMapping for F
where
    F: Fn(&[u8]) -> Result<ApiRef, CertificateFault> + Send + Sync,
{
    fn source(&self, certificate: &[u8]) -> Result<ApiRef, CertificateFault> {
        self(certificate)
    }
}

/// A trust domain that is not 1 to 255 bytes of `a-z`, `0-9`, `.`, `-` and `_`, in labels
/// that are not empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrustDomainError;

impl fmt::Display for TrustDomainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "a trust domain must be 1 to 255 bytes of a-z, 0-9, '.', '-' and '_', \
             with no empty label",
        )
    }
}

impl std::error::Error for TrustDomainError {}

/// The default [`CertificateMapping`]: the one URI SAN,
/// `spiffe://<trust-domain>/tenant/<tenant>/api/<api>`, read strictly.
///
/// The subject CN is never read.
///
/// ```
/// use tower_cross_api::{CertificateFault, SpiffeMapping};
///
/// let mapping = SpiffeMapping::new("gateway.test")?;
/// let source = mapping.source_of("spiffe://gateway.test/tenant/acme/api/billing")?;
/// assert_eq!(source.to_string(), "acme/billing");
///
/// let refused = [
///     ("spiffe://other.test/tenant/acme/api/billing", CertificateFault::ForeignTrustDomain),
///     ("spiffe://gateway.test/tenant/acme/api/billing/", CertificateFault::TrailingSlash),
///     ("spiffe://gateway.test/tenant/acme/api/%62illing", CertificateFault::PercentEncoded),
///     ("spiffe://gateway.test:443/tenant/acme/api/billing", CertificateFault::Port),
/// ];
/// for (uri, fault) in refused {
///     assert_eq!(mapping.source_of(uri), Err(fault));
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpiffeMapping {
    trust_domain: Box<str>,
}

const SCHEME: &str = "spiffe://";

impl SpiffeMapping {
    /// A mapping that accepts SPIFFE IDs of `trust_domain` only, such as `gateway.test`.
    ///
    /// # Errors
    ///
    /// [`TrustDomainError`] when `trust_domain` is not a valid, lower-case trust domain.
    pub fn new(trust_domain: &str) -> Result<Self, TrustDomainError> {
        let bytes = trust_domain.as_bytes();
        let valid_bytes = bytes
            .iter()
            .all(|byte| matches!(byte, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_'));
        let valid_labels = trust_domain.split('.').all(|label| !label.is_empty());

        if bytes.is_empty() || bytes.len() > 255 || !valid_bytes || !valid_labels {
            return Err(TrustDomainError);
        }
        Ok(Self {
            trust_domain: trust_domain.into(),
        })
    }

    /// The trust domain this mapping accepts.
    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    /// The SPIFFE ID this mapping reads as `source`: the one to put in its certificate's URI
    /// SAN. [`source_of`](Self::source_of) reads it back to `source`, and every ID that
    /// `source_of` accepts is spelled exactly so.
    ///
    /// ```
    /// use tower_cross_api::{ApiRef, SpiffeMapping};
    ///
    /// let mapping = SpiffeMapping::new("gateway.test")?;
    /// let billing: ApiRef = "acme/billing".parse()?;
    /// let id = mapping.spiffe_id(&billing);
    /// assert_eq!(id, "spiffe://gateway.test/tenant/acme/api/billing");
    /// assert_eq!(mapping.source_of(&id)?, billing);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spiffe_id(&self, source: &ApiRef) -> String {
        format!(
            "{SCHEME}{}/tenant/{}/api/{}",
            self.trust_domain,
            source.tenant(),
            source.api()
        )
    }

    /// The source a SPIFFE ID names, read strictly.
    ///
    /// # Errors
    ///
    /// A [`CertificateFault`] for anything but
    /// `spiffe://<trust-domain>/tenant/<tenant>/api/<api>` with valid identifiers.
    pub fn source_of(&self, uri: &str) -> Result<ApiRef, CertificateFault> {
        if !uri.bytes().all(|byte| byte.is_ascii_graphic()) {
            return Err(CertificateFault::NotVisibleAscii);
        }
        let Some(rest) = uri.strip_prefix(SCHEME) else {
            let same_scheme = uri
                .get(..SCHEME.len())
                .is_some_and(|scheme| scheme.eq_ignore_ascii_case(SCHEME));
            return Err(if same_scheme {
                CertificateFault::UpperCase
            } else {
                CertificateFault::NotSpiffe
            });
        };

        if rest.bytes().any(|byte| byte.is_ascii_uppercase()) {
            return Err(CertificateFault::UpperCase);
        }
        if rest.contains('%') {
            return Err(CertificateFault::PercentEncoded);
        }
        if rest.contains('#') {
            return Err(CertificateFault::Fragment);
        }
        if rest.contains('?') {
            return Err(CertificateFault::Query);
        }

        let (authority, path) = rest.find('/').map_or((rest, ""), |at| rest.split_at(at));
        if authority.contains('@') {
            return Err(CertificateFault::Userinfo);
        }
        if authority.contains(':') {
            return Err(CertificateFault::Port);
        }
        if authority != &*self.trust_domain {
            return Err(CertificateFault::ForeignTrustDomain);
        }

        tenant_api_path(path)
    }

    fn source_of_certificate(&self, der: &[u8]) -> Result<ApiRef, CertificateFault> {
        let Ok((rest, certificate)) = X509Certificate::from_der(der) else {
            return Err(CertificateFault::Unparsable);
        };
        if !rest.is_empty() {
            return Err(CertificateFault::Unparsable);
        }

        let names = certificate
            .subject_alternative_name()
            .map_err(|_| CertificateFault::Unparsable)?
            .map(|extension| extension.value.general_names.as_slice())
            .unwrap_or_default();
        let mut uris = names.iter().filter_map(|name| match name {
            GeneralName::URI(uri) => Some(*uri),
            _ => None,
        });

        match (uris.next(), uris.next()) {
            (None, _) => Err(CertificateFault::NoUriSan),
            (Some(_), Some(_)) => Err(CertificateFault::SeveralUriSans),
            (Some(uri), None) => self.source_of(uri),
        }
    }
}

impl CertificateMapping for SpiffeMapping {
    fn source(&self, certificate: &[u8]) -> Result<ApiRef, CertificateFault> {
        self.source_of_certificate(certificate)
    }
}

/// Reads `/tenant/<tenant>/api/<api>` exactly.
fn tenant_api_path(path: &str) -> Result<ApiRef, CertificateFault> {
    let Some(path) = path.strip_prefix('/') else {
        return Err(CertificateFault::NotTenantApiPath);
    };
    if path.is_empty() || path.ends_with('/') {
        return Err(CertificateFault::TrailingSlash);
    }

    let mut segments = [""; 4];
    let mut count = 0;
    for segment in path.split('/') {
        match segment {
            "" => return Err(CertificateFault::EmptySegment),
            "." | ".." => return Err(CertificateFault::DotSegment),
            _ => {}
        }
        if count == segments.len() {
            return Err(CertificateFault::ExtraSegment);
        }
        segments[count] = segment;
        count += 1;
    }

    let (4, ["tenant", tenant, "api", api]) = (count, segments) else {
        return Err(CertificateFault::NotTenantApiPath);
    };
    let tenant = TenantId::new(tenant).map_err(CertificateFault::Identifier)?;
    let api = ApiId::new(api).map_err(CertificateFault::Identifier)?;
    Ok(ApiRef::new(tenant, api))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping() -> SpiffeMapping {
        SpiffeMapping::new("gateway.test").expect("trust domain")
    }

    #[test]
    fn reads_the_one_valid_shape() {
        let source = mapping()
            .source_of("spiffe://gateway.test/tenant/t1/api/billing")
            .expect("valid");
        assert_eq!(source.to_string(), "t1/billing");
    }

    #[test]
    fn refuses_every_other_shape() {
        let cases = [
            (
                "https://gateway.test/tenant/t1/api/a",
                CertificateFault::NotSpiffe,
            ),
            (
                "spiffe:/gateway.test/tenant/t1/api/a",
                CertificateFault::NotSpiffe,
            ),
            (
                "SPIFFE://gateway.test/tenant/t1/api/a",
                CertificateFault::UpperCase,
            ),
            (
                "spiffe://Gateway.test/tenant/t1/api/a",
                CertificateFault::UpperCase,
            ),
            (
                "spiffe://gateway.test/tenant/T1/api/a",
                CertificateFault::UpperCase,
            ),
            (
                "spiffe://gateway.test/tenant/t1/api/%61",
                CertificateFault::PercentEncoded,
            ),
            (
                "spiffe://gateway%2etest/tenant/t1/api/a",
                CertificateFault::PercentEncoded,
            ),
            (
                "spiffe://gateway.test/tenant/t1/api/a?x=1",
                CertificateFault::Query,
            ),
            (
                "spiffe://gateway.test/tenant/t1/api/a#x",
                CertificateFault::Fragment,
            ),
            (
                "spiffe://u@gateway.test/tenant/t1/api/a",
                CertificateFault::Userinfo,
            ),
            (
                "spiffe://gateway.test:443/tenant/t1/api/a",
                CertificateFault::Port,
            ),
            (
                "spiffe://other.test/tenant/t1/api/a",
                CertificateFault::ForeignTrustDomain,
            ),
            (
                "spiffe://gateway.test./tenant/t1/api/a",
                CertificateFault::ForeignTrustDomain,
            ),
            (
                "spiffe:///tenant/t1/api/a",
                CertificateFault::ForeignTrustDomain,
            ),
            ("spiffe://gateway.test", CertificateFault::NotTenantApiPath),
            ("spiffe://gateway.test/", CertificateFault::TrailingSlash),
            (
                "spiffe://gateway.test/tenant/t1/api/a/",
                CertificateFault::TrailingSlash,
            ),
            (
                "spiffe://gateway.test//tenant/t1/api/a",
                CertificateFault::EmptySegment,
            ),
            (
                "spiffe://gateway.test/tenant//api/a",
                CertificateFault::EmptySegment,
            ),
            (
                "spiffe://gateway.test/tenant/./api/a",
                CertificateFault::DotSegment,
            ),
            (
                "spiffe://gateway.test/tenant/t1/api/..",
                CertificateFault::DotSegment,
            ),
            (
                "spiffe://gateway.test/tenant/t1/api/a/v2",
                CertificateFault::ExtraSegment,
            ),
            (
                "spiffe://gateway.test/x/tenant/t1/api/a",
                CertificateFault::ExtraSegment,
            ),
            (
                "spiffe://gateway.test/tenant/t1/api",
                CertificateFault::NotTenantApiPath,
            ),
            (
                "spiffe://gateway.test/tenants/t1/api/a",
                CertificateFault::NotTenantApiPath,
            ),
            (
                "spiffe://gateway.test/api/a/tenant/t1",
                CertificateFault::NotTenantApiPath,
            ),
            (
                "spiffe://gateway.test/tenant/t1/api/a.b",
                CertificateFault::Identifier(IdError::BadByte),
            ),
            (
                "spiffe://gateway.test/tenant/-t1/api/a",
                CertificateFault::Identifier(IdError::BadStart),
            ),
            (
                "spiffe://gateway.test/tenant/t1/api/a b",
                CertificateFault::NotVisibleAscii,
            ),
            (
                "spiffe://gateway.test/tenant/t1/api/\u{e9}",
                CertificateFault::NotVisibleAscii,
            ),
            ("", CertificateFault::NotSpiffe),
        ];

        for (uri, fault) in cases {
            assert_eq!(mapping().source_of(uri), Err(fault), "{uri:?}");
        }
    }

    #[test]
    fn spiffe_ids_round_trip() {
        let mapping = mapping();
        for source in ["t1/billing", "0/a", "a-b_c/x9"] {
            let source: ApiRef = source.parse().expect("api reference");
            let id = mapping.spiffe_id(&source);
            assert_eq!(mapping.source_of(&id), Ok(source));
        }
    }

    #[test]
    fn refuses_bytes_that_are_no_certificate() {
        assert_eq!(
            mapping().source(b"not a certificate"),
            Err(CertificateFault::Unparsable)
        );
        assert_eq!(mapping().source(b""), Err(CertificateFault::Unparsable));
    }

    #[test]
    fn trust_domain_is_validated() {
        assert!(SpiffeMapping::new("gateway.test").is_ok());
        assert!(SpiffeMapping::new("example_org-1").is_ok());
        for domain in ["", "Gateway.test", "a..b", ".a", "a.", "a:1", "a/b", "a b"] {
            assert_eq!(
                SpiffeMapping::new(domain),
                Err(TrustDomainError),
                "{domain:?}"
            );
        }
        assert_eq!(SpiffeMapping::new(&"a".repeat(256)), Err(TrustDomainError));
    }

    #[test]
    fn faults_have_stable_names() {
        assert_eq!(
            CertificateFault::ForeignTrustDomain.as_str(),
            "foreign_trust_domain"
        );
        assert_eq!(CertificateFault::Refused("revoked").as_str(), "revoked");
        assert_eq!(
            CertificateFault::Identifier(IdError::BadByte).to_string(),
            "the SPIFFE ID names no valid API: an identifier may hold only a-z, 0-9, '-' and '_'"
        );
    }
}
