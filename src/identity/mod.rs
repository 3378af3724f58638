//! Where the source and the target of a linked call come from.
//!
//! The source (caller) is read from a request header set by a trusted edge
//! ([`SourceIdentity::header`]) or from an [`AuthenticatedSource`] extension that an earlier
//! layer or the connection's accept loop inserted ([`SourceIdentity::authenticated`]), which
//! the `mtls` feature derives from the peer certificate (`SpiffeMapping`). The
//! target is read from a header, from the request path, from a function of the request, or is
//! fixed for the layer ([`TargetIdentity`]).
//!
//! Nothing here knows files or databases.

#[cfg(feature = "mtls")]
mod certificate;
mod header;
mod source;
mod target;

#[cfg(feature = "mtls")]
pub use certificate::{CertificateFault, CertificateMapping, SpiffeMapping, TrustDomainError};

pub use header::{HeaderFault, X_SOURCE_API, X_TARGET_API};
pub use source::{
    AuthenticatedSource, SourceFault, SourceIdentity, UnidentifiedPeer, VerifiedSource,
};
pub use target::TargetIdentity;
