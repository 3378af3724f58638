//! The correlation id that ties a refusal the client sees to the gate's log event.

use std::fmt;
use std::hash::BuildHasher;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use foldhash::fast::RandomState;
use http::HeaderMap;
use http::header::HeaderName;

/// The header a correlation id is read from, and written to on refusals: `x-request-id`.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest correlation id taken from a request, in bytes.
const MAX_LEN: usize = 64;

/// A correlation id: the request's own `x-request-id` when it is present once and sane (1 to
/// 64 bytes of `A-Z a-z 0-9 - _ . :`), otherwise 32 fresh hexadecimal digits.
///
/// Every refusal carries one, in the problem body (`request_id`), in the `x-request-id`
/// response header and in the log event, so that an operator can find the log line of a
/// refusal a customer reports. A client-sent value that is not sane is never echoed.
///
/// Stored inline: reading or making one allocates nothing.
///
/// ```
/// use http::HeaderMap;
/// use tower_cross_api::RequestId;
///
/// let mut headers = HeaderMap::new();
/// headers.insert("x-request-id", "req-42".parse()?);
/// assert_eq!(RequestId::from_headers(&headers).as_str(), "req-42");
///
/// headers.insert("x-request-id", "<script>".parse()?);
/// let generated = RequestId::from_headers(&headers);
/// assert_eq!(generated.as_str().len(), 32);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestId {
    len: u8,
    bytes: [u8; MAX_LEN],
}

impl RequestId {
    /// The request's `x-request-id` when present once and sane, otherwise a fresh id.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let mut values = headers.get_all(X_REQUEST_ID).iter();

        match (values.next(), values.next()) {
            (Some(value), None) => Self::parse(value.as_bytes()).unwrap_or_else(Self::generate),
            _ => Self::generate(),
        }
    }

    /// `value` as a correlation id, or `None` when it is empty, longer than 64 bytes or holds
    /// a byte other than `A-Z a-z 0-9 - _ . :`.
    pub fn parse(value: &[u8]) -> Option<Self> {
        let sane = |byte: &u8| byte.is_ascii_alphanumeric() || b"-_.:".contains(byte);
        if value.is_empty() || value.len() > MAX_LEN || !value.iter().all(sane) {
            return None;
        }

        let mut bytes = [0; MAX_LEN];
        bytes[..value.len()].copy_from_slice(value);
        Some(Self {
            len: value.len() as u8,
            bytes,
        })
    }

    /// A fresh id: 32 hexadecimal digits, unpredictable and distinct within the process.
    pub fn generate() -> Self {
        static SEED: OnceLock<RandomState> = OnceLock::new();
        static COUNTER: AtomicU64 = AtomicU64::new(0);

        let seed = SEED.get_or_init(RandomState::default);
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        let high = seed.hash_one(count);
        let low = seed.hash_one((count, high));

        let mut bytes = [0; MAX_LEN];
        let digits = format_hex(u128::from(high) << 64 | u128::from(low));
        bytes[..32].copy_from_slice(&digits);
        Self { len: 32, bytes }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII bytes are ever stored, so this never takes the fallback.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

fn format_hex(value: u128) -> [u8; 32] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0; 32];

    for (index, digit) in out.iter_mut().enumerate() {
        let shift = 4 * (31 - index);
        *digit = DIGITS[((value >> shift) & 0xf) as usize];
    }
    out
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RequestId").field(&self.as_str()).finish()
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn takes_a_sane_header_and_replaces_anything_else() {
        let with = |values: &[&[u8]]| {
            let mut headers = HeaderMap::new();
            for value in values {
                headers.append(X_REQUEST_ID, HeaderValue::from_bytes(value).expect("value"));
            }
            RequestId::from_headers(&headers)
        };

        assert_eq!(with(&[b"abc-123_x.y:z"]).as_str(), "abc-123_x.y:z");
        assert_eq!(with(&[&[b'a'; 64]]).as_str().len(), 64);
        for insane in [&b""[..], &[b'a'; 65], b"a b", b"a/b", b"\xc3\xa9", b"a\"b"] {
            let id = with(&[insane]);
            assert_eq!(id.as_str().len(), 32, "{insane:?}");
            assert!(id.as_str().bytes().all(|b| b.is_ascii_hexdigit()));
        }
        assert_eq!(with(&[b"one", b"two"]).as_str().len(), 32);
        assert_eq!(with(&[]).as_str().len(), 32);
    }

    #[test]
    fn generated_ids_differ() {
        let first = RequestId::generate();
        let second = RequestId::generate();

        assert_ne!(first, second);
        assert_eq!(
            format!("{first:?}"),
            format!("RequestId({:?})", first.as_str())
        );
    }
}
