//! Reading one `<tenant>/<api>` reference from a header, strictly.

use std::fmt;

use http::HeaderMap;
use http::header::HeaderName;

use crate::id::{ApiRef, IdError};

/// The default header that names the source: `x-source-api: <tenant>/<api>`.
pub const X_SOURCE_API: HeaderName = HeaderName::from_static("x-source-api");

/// The default header that names the target: `x-target-api: <tenant>/<api>`.
pub const X_TARGET_API: HeaderName = HeaderName::from_static("x-target-api");

/// Why an identity header could not be read. Every fault refuses the request with
/// `400 Bad Request`; none is repaired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderFault {
    /// The header appears more than once.
    Repeated,
    /// The header is empty.
    Empty,
    /// The value holds a byte that is not visible ASCII (a space, a control, obs-text).
    NotVisibleAscii,
    /// The value is not `<tenant>/<api>` with valid identifiers.
    Malformed(IdError),
}

impl HeaderFault {
    /// A stable, lower-case name for logs, such as `repeated`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Repeated => "repeated",
            Self::Empty => "empty",
            Self::NotVisibleAscii => "not_visible_ascii",
            Self::Malformed(_) => "malformed",
        }
    }

    /// What is wrong, as the sentence [`Display`](fmt::Display) writes: a constant, so that
    /// a refusal can name its fault without formatting.
    pub(crate) const fn message(self) -> &'static str {
        match self {
            Self::Repeated => "it appears more than once",
            Self::Empty => "it is empty",
            Self::NotVisibleAscii => "it holds a byte that is not visible ASCII",
            Self::Malformed(error) => error.message(),
        }
    }
}

impl fmt::Display for HeaderFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for HeaderFault {}

/// Reads the one value of `name` as an API reference: `None` when the header is absent.
pub(crate) fn read(headers: &HeaderMap, name: &HeaderName) -> Result<Option<ApiRef>, HeaderFault> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(HeaderFault::Repeated);
    }

    // Every byte of a reference is visible ASCII, so a value that parses needs no other check;
    // one that does not is told what is wrong in the order the faults are listed.
    let bytes = value.as_bytes();
    match ApiRef::from_bytes(bytes) {
        Ok(api) => Ok(Some(api)),
        Err(_) if bytes.is_empty() => Err(HeaderFault::Empty),
        Err(_) if !bytes.iter().all(u8::is_ascii_graphic) => Err(HeaderFault::NotVisibleAscii),
        Err(error) => Err(HeaderFault::Malformed(error)),
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(
                X_SOURCE_API,
                HeaderValue::from_bytes(value).expect("header value"),
            );
        }
        headers
    }

    #[test]
    fn reads_one_valid_reference() {
        let read = read(&headers(&[b"t1/billing"]), &X_SOURCE_API).expect("valid");
        assert_eq!(
            read.map(|api| api.to_string()).as_deref(),
            Some("t1/billing")
        );
        assert_eq!(super::read(&headers(&[]), &X_SOURCE_API), Ok(None));
    }

    #[test]
    fn refuses_every_unclear_form() {
        let cases: [(&[&[u8]], HeaderFault); 9] = [
            (&[b"t1/a", b"t1/b"], HeaderFault::Repeated),
            (&[b"t1/a", b"t1/a"], HeaderFault::Repeated),
            (&[b""], HeaderFault::Empty),
            (&[b"t1/ a"], HeaderFault::NotVisibleAscii),
            (&[b"t1/a\t"], HeaderFault::NotVisibleAscii),
            (&[b"t1/\xc3\xa9"], HeaderFault::NotVisibleAscii),
            (
                &[b"t1/reports,t1/billing"],
                HeaderFault::Malformed(IdError::NotAReference),
            ),
            (&[b"T1/billing"], HeaderFault::Malformed(IdError::BadByte)),
            (&[b"t1/%62illing"], HeaderFault::Malformed(IdError::BadByte)),
        ];

        for (values, fault) in cases {
            assert_eq!(
                read(&headers(values), &X_SOURCE_API),
                Err(fault),
                "{values:?}"
            );
        }
    }
}
