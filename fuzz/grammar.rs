//! The identifier grammar, restated apart from the crate's parser so that the two can be
//! compared: 1 to 64 bytes of `a-z`, `0-9`, `-`, `_`, starting with a letter or a digit; a
//! reference is two identifiers joined by one `/`; a SPIFFE ID names one as
//! `spiffe://<trust-domain>/tenant/<tenant>/api/<api>`.

/// Whether `bytes` is a tenant or API identifier.
pub(crate) fn is_identifier(bytes: &[u8]) -> bool {
    let allowed = |byte: &u8| byte.is_ascii_lowercase() || byte.is_ascii_digit();

    (1..=64).contains(&bytes.len())
        && bytes.first().is_some_and(allowed)
        && bytes
            .iter()
            .all(|byte| allowed(byte) || *byte == b'-' || *byte == b'_')
}

/// Whether `bytes` is `<tenant>/<api>`.
pub(crate) fn is_reference(bytes: &[u8]) -> bool {
    match bytes.iter().position(|&byte| byte == b'/') {
        Some(slash) => is_identifier(&bytes[..slash]) && is_identifier(&bytes[slash + 1..]),
        None => false,
    }
}

/// Whether a header with these values names one well-formed reference (`Some(true)`), is
/// absent (`None`), or is malformed (`Some(false)`).
pub(crate) fn header_names_one_reference(values: &[Vec<u8>]) -> Option<bool> {
    match values {
        [] => None,
        [value] => Some(is_reference(value)),
        _ => Some(false),
    }
}

/// The tenant and API that `uri` names when it is exactly
/// `spiffe://<trust_domain>/tenant/<tenant>/api/<api>`, both identifiers valid; `None` for
/// any other URI.
pub(crate) fn spiffe_source<'a>(uri: &'a [u8], trust_domain: &str) -> Option<(&'a [u8], &'a [u8])> {
    let path = uri
        .strip_prefix(b"spiffe://")?
        .strip_prefix(trust_domain.as_bytes())?
        .strip_prefix(b"/tenant/")?;
    let mut segments = path.split(|&byte| byte == b'/');
    let (tenant, word, api) = (segments.next()?, segments.next()?, segments.next()?);

    let exact = segments.next().is_none() && word == b"api";
    (exact && is_identifier(tenant) && is_identifier(api)).then_some((tenant, api))
}
