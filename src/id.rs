//! Tenant and API identifiers, and the `<tenant>/<api>` reference that joins them.
//!
//! An identifier is 1 to 64 bytes of lowercase ASCII letters, digits, `-` and `_`, and starts
//! with a letter or a digit. Identifiers are compared byte for byte and never normalised: an
//! upper-case letter, a space or a percent-escape makes a value malformed, it is not repaired
//! into a valid name.
//!
//! Identifiers are stored inline (no heap), so parsing a caller from a header on the request
//! path allocates nothing.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest identifier, in bytes.
pub const MAX_ID_LEN: usize = 64;

/// Why a value is not a valid identifier or API reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IdError {
    /// The value is empty.
    Empty,
    /// The value is longer than [`MAX_ID_LEN`] bytes.
    TooLong,
    /// The first byte is `-` or `_`.
    BadStart,
    /// A byte other than `a-z`, `0-9`, `-` or `_`.
    BadByte,
    /// An API reference that is not exactly `<tenant>/<api>`.
    NotAReference,
}

impl IdError {
    /// What is wrong, as the sentence [`Display`](fmt::Display) writes.
    pub(crate) const fn message(self) -> &'static str {
        match self {
            Self::Empty => "an identifier must not be empty",
            Self::TooLong => "an identifier must be at most 64 bytes",
            Self::BadStart => "an identifier must start with a letter or a digit",
            Self::BadByte => "an identifier may hold only a-z, 0-9, '-' and '_'",
            Self::NotAReference => "an API reference must be written as <tenant>/<api>",
        }
    }
}

impl fmt::Display for IdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for IdError {}

/// A validated identifier, inline, used by [`TenantId`] and [`ApiId`].
#[derive(Clone, Copy)]
struct Name {
    len: u8,
    bytes: [u8; MAX_ID_LEN],
}

impl Name {
    /// No name yet: the zeros a name is written over.
    const EMPTY: Self = Self {
        len: 0,
        bytes: [0; MAX_ID_LEN],
    };

    fn parse(value: &[u8]) -> Result<Self, IdError> {
        check(value)?;

        let mut name = Self::EMPTY;
        name.fill(value);
        Ok(name)
    }

    /// Writes `value`, already checked, over [`EMPTY`](Self::EMPTY) in place: a reference is
    /// written where it will live rather than built aside and moved, which on the request path
    /// cost more than checking it.
    #[inline]
    fn fill(&mut self, value: &[u8]) {
        let len = value.len().min(MAX_ID_LEN);
        self.bytes[..len].copy_from_slice(&value[..len]);
        self.len = len as u8;
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    fn as_str(&self) -> &str {
        // Only ASCII bytes are ever stored, so this never takes the fallback.
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }
}

/// Whether `value` is an identifier: 1 to 64 bytes of `a-z 0-9 - _`, not starting with `-` or
/// `_`. Checked apart from the copy, so that a reference is checked whole before any byte of it
/// is copied into its place.
fn check(value: &[u8]) -> Result<(), IdError> {
    let first = *value.first().ok_or(IdError::Empty)?;

    if value.len() > MAX_ID_LEN {
        return Err(IdError::TooLong);
    }
    if !is_name_byte(first) {
        return Err(IdError::BadByte);
    }
    if first == b'-' || first == b'_' {
        return Err(IdError::BadStart);
    }
    if !value.iter().all(|&byte| is_name_byte(byte)) {
        return Err(IdError::BadByte);
    }
    Ok(())
}

/// The tenant and API of a well-formed reference, found in one pass over its bytes; `None`
/// for anything else, which [`checked`] then reads again to tell what is wrong.
#[inline]
fn well_formed(value: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut slash = None;
    for (position, &byte) in value.iter().enumerate() {
        if byte == b'/' && slash.is_none() {
            slash = Some(position);
        } else if !is_name_byte(byte) {
            return None;
        }
    }

    let slash = slash?;
    let (tenant, api) = (value.get(..slash)?, value.get(slash + 1..)?);
    let starts_well = |name: &[u8]| {
        name.first()
            .is_some_and(|&byte| byte != b'-' && byte != b'_')
    };
    let fits = |name: &[u8]| starts_well(name) && name.len() <= MAX_ID_LEN;
    (fits(tenant) && fits(api)).then_some((tenant, api))
}

/// The tenant and API of `value`, or the first thing wrong with it: not exactly one `/`, then
/// the tenant's fault, then the API's.
fn checked(value: &[u8]) -> Result<(&[u8], &[u8]), IdError> {
    let slash = value
        .iter()
        .position(|&byte| byte == b'/')
        .ok_or(IdError::NotAReference)?;
    let (tenant, api) = (&value[..slash], &value[slash + 1..]);
    if api.contains(&b'/') {
        return Err(IdError::NotAReference);
    }

    check(tenant)?;
    check(api)?;
    Ok((tenant, api))
}

/// The bytes an identifier may hold, as a table: one load per byte.
const NAME_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        table[byte] = matches!(byte as u8, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_');
        byte += 1;
    }
    table
};

fn is_name_byte(byte: u8) -> bool {
    NAME_BYTES[usize::from(byte)]
}

impl PartialEq for Name {
    /// Compares 8-byte words up to the length: [`Name::parse`], the only constructor, fills
    /// the bytes past `len` with zeros, so equal names have equal words. A short name is one
    /// or two register comparisons, where a slice comparison calls `memcmp`.
    fn eq(&self, other: &Self) -> bool {
        let words = usize::from(self.len).div_ceil(WORD);

        self.len == other.len && (0..words).all(|word| self.word(word) == other.word(word))
    }
}

const WORD: usize = 8;

impl Name {
    fn word(&self, index: usize) -> u64 {
        let mut word = [0; WORD];
        if let Some(bytes) = self.bytes.get(index * WORD..(index + 1) * WORD) {
            word.copy_from_slice(bytes);
        }
        u64::from_ne_bytes(word)
    }
}

impl Eq for Name {}

impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Name {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl Hash for Name {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

macro_rules! identifier {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Name);

        impl $name {
            #[doc = concat!("Validates `value` as ", $what, ".")]
            ///
            /// # Errors
            ///
            /// [`IdError`] when `value` is not 1 to 64 bytes of `a-z`, `0-9`, `-` and `_`
            /// starting with a letter or a digit.
            pub fn new(value: &str) -> Result<Self, IdError> {
                Self::from_bytes(value.as_bytes())
            }

            #[doc = concat!("Validates raw bytes as ", $what, ", as they come from a header.")]
            ///
            /// # Errors
            ///
            /// As for [`new`](Self::new).
            pub fn from_bytes(value: &[u8]) -> Result<Self, IdError> {
                Name::parse(value).map(Self)
            }

            /// The identifier as written.
            pub fn as_str(&self) -> &str {
                self.0.as_str()
            }

            pub(crate) fn as_bytes(&self) -> &[u8] {
                self.0.as_bytes()
            }
        }

        impl FromStr for $name {
            type Err = IdError;

            fn from_str(value: &str) -> Result<Self, IdError> {
                Self::new(value)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_tuple(stringify!($name)).field(&self.as_str()).finish()
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                Self::new(&value).map_err(serde::de::Error::custom)
            }
        }
    };
}

identifier!(
    /// The identifier of a tenant, the owner of several APIs.
    ///
    /// ```
    /// use tower_cross_api::TenantId;
    ///
    /// let acme: TenantId = "acme".parse()?;
    /// assert_eq!(acme.as_str(), "acme");
    /// assert!("Acme".parse::<TenantId>().is_err());
    /// # Ok::<(), tower_cross_api::IdError>(())
    /// ```
    TenantId,
    "a tenant identifier"
);

identifier!(
    /// The identifier of one API of a tenant, unique within that tenant.
    ///
    /// ```
    /// use tower_cross_api::ApiId;
    ///
    /// let billing = ApiId::new("billing")?;
    /// assert_eq!(billing.to_string(), "billing");
    /// assert!(ApiId::new("-billing").is_err());
    /// # Ok::<(), tower_cross_api::IdError>(())
    /// ```
    ApiId,
    "an API identifier"
);

/// One API of one tenant, written `<tenant>/<api>`: how a source or a target is named.
///
/// ```
/// use tower_cross_api::ApiRef;
///
/// let source: ApiRef = "acme/billing".parse()?;
/// assert_eq!(source.tenant().as_str(), "acme");
/// assert_eq!(source.api().as_str(), "billing");
/// assert_eq!(source.to_string(), "acme/billing");
///
/// assert!("acme/billing/v2".parse::<ApiRef>().is_err());
/// assert!("acme/Billing".parse::<ApiRef>().is_err());
/// # Ok::<(), tower_cross_api::IdError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiRef {
    tenant: TenantId,
    api: ApiId,
}

impl ApiRef {
    /// Joins a tenant and one of its APIs.
    pub const fn new(tenant: TenantId, api: ApiId) -> Self {
        Self { tenant, api }
    }

    /// Parses `<tenant>/<api>` from raw bytes, exactly: one `/`, two valid identifiers,
    /// nothing before, between or after.
    ///
    /// # Errors
    ///
    /// [`IdError::NotAReference`] when there is not exactly one `/`, otherwise the error of
    /// the identifier that is malformed.
    #[inline]
    pub fn from_bytes(value: &[u8]) -> Result<Self, IdError> {
        let (tenant, api) = match well_formed(value) {
            Some(parts) => parts,
            None => checked(value)?,
        };

        let mut parsed = Self {
            tenant: TenantId(Name::EMPTY),
            api: ApiId(Name::EMPTY),
        };
        parsed.tenant.0.fill(tenant);
        parsed.api.0.fill(api);
        Ok(parsed)
    }

    /// The tenant that owns the API.
    pub const fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// The API within its tenant.
    pub const fn api(&self) -> &ApiId {
        &self.api
    }

    /// `<tenant>/<api>` as bytes in a buffer on the stack, without allocating.
    pub(crate) fn with_bytes<R>(&self, read: impl FnOnce(&[u8]) -> R) -> R {
        let (tenant, api) = (self.tenant.as_bytes(), self.api.as_bytes());
        let len = tenant.len() + 1 + api.len();

        let mut joined = [0; 2 * MAX_ID_LEN + 1];
        joined[..tenant.len()].copy_from_slice(tenant);
        joined[tenant.len()] = b'/';
        joined[tenant.len() + 1..len].copy_from_slice(api);
        read(&joined[..len])
    }
}

impl FromStr for ApiRef {
    type Err = IdError;

    fn from_str(value: &str) -> Result<Self, IdError> {
        Self::from_bytes(value.as_bytes())
    }
}

impl fmt::Display for ApiRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.tenant, self.api)
    }
}

impl fmt::Debug for ApiRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiRef({self})")
    }
}

impl Serialize for ApiRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ApiRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        value.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_one_pass_reading_agrees_with_the_checked_one() {
        let alphabet: &[u8] = b"a-_/A ";
        let mut values: Vec<Vec<u8>> = vec![Vec::new()];
        for _ in 0..5 {
            let longer: Vec<Vec<u8>> = values
                .iter()
                .flat_map(|value| {
                    alphabet
                        .iter()
                        .map(move |&byte| [value.as_slice(), &[byte]].concat())
                })
                .collect();
            values.extend(longer);
        }
        values.sort();
        values.dedup();
        for (tenant, api) in [(64, 64), (65, 1), (1, 65), (64, 0)] {
            values.push([vec![b'a'; tenant], b"/".to_vec(), vec![b'b'; api]].concat());
        }

        for value in &values {
            assert_eq!(
                well_formed(value),
                checked(value).ok(),
                "{:?}",
                String::from_utf8_lossy(value)
            );
        }
    }

    #[test]
    fn accepts_the_whole_alphabet_and_both_lengths() {
        assert!(TenantId::new("a").is_ok());
        assert!(TenantId::new("0-a_b9").is_ok());
        assert!(ApiId::new(&"x".repeat(64)).is_ok());
    }

    #[test]
    fn refuses_without_normalising() {
        assert_eq!(TenantId::new(""), Err(IdError::Empty));
        assert_eq!(TenantId::new(&"x".repeat(65)), Err(IdError::TooLong));
        assert_eq!(TenantId::new("-a"), Err(IdError::BadStart));
        assert_eq!(TenantId::new("_a"), Err(IdError::BadStart));
        for value in [
            "Acme",
            "ac me",
            " acme",
            "acme ",
            "ac%6de",
            "acm\u{e9}",
            "a.b",
            "a/b",
        ] {
            assert_eq!(TenantId::new(value), Err(IdError::BadByte), "{value:?}");
        }
    }

    #[test]
    fn equality_compares_every_byte_at_every_length() {
        for len in 1..=MAX_ID_LEN {
            let name = "a".repeat(len);
            let same = ApiId::new(&name).expect("valid");
            assert_eq!(same, ApiId::new(&name).expect("valid"), "{len}");

            let mut last = name.clone();
            last.replace_range(len - 1.., "b");
            assert_ne!(same, ApiId::new(&last).expect("valid"), "{len}");
            if len < MAX_ID_LEN {
                assert_ne!(
                    same,
                    ApiId::new(&format!("{name}a")).expect("valid"),
                    "{len}"
                );
            }
        }
    }

    #[test]
    fn reference_needs_exactly_one_slash() {
        let parsed: ApiRef = "t1/orders".parse().expect("valid");
        assert_eq!(parsed.to_string(), "t1/orders");
        assert_eq!(
            parsed.with_bytes(<[u8]>::to_vec),
            parsed.to_string().into_bytes()
        );
        let longest: ApiRef = format!("{}/{}", "t".repeat(MAX_ID_LEN), "a".repeat(MAX_ID_LEN))
            .parse()
            .expect("valid");
        assert_eq!(
            longest.with_bytes(<[u8]>::to_vec),
            longest.to_string().into_bytes()
        );

        for value in [
            "t1",
            "t1/",
            "/orders",
            "t1//orders",
            "t1/orders/",
            "t1/a/b",
            "",
        ] {
            assert!(value.parse::<ApiRef>().is_err(), "{value:?}");
        }
        assert_eq!(
            "t1/reports,t1/billing".parse::<ApiRef>(),
            Err(IdError::NotAReference)
        );
        assert_eq!("t1/orders,x".parse::<ApiRef>(), Err(IdError::BadByte));
    }

    #[test]
    fn debug_and_display_name_the_type_and_value() {
        let parsed: ApiRef = "t1/orders".parse().expect("valid");
        assert_eq!(format!("{parsed:?}"), "ApiRef(t1/orders)");
        assert_eq!(format!("{:?}", parsed.tenant()), "TenantId(\"t1\")");
        assert_eq!(format!("{:?}", parsed.api()), "ApiId(\"orders\")");
    }

    #[test]
    fn serde_round_trip_validates() {
        let parsed: ApiRef = serde_json::from_str("\"t1/orders\"").expect("valid");
        assert_eq!(
            serde_json::to_string(&parsed).expect("serialise"),
            "\"t1/orders\""
        );
        assert!(serde_json::from_str::<ApiRef>("\"T1/orders\"").is_err());
        assert!(serde_json::from_str::<TenantId>("\"t 1\"").is_err());
    }
}
