//! The identifier grammar, restated apart from the crate's parser so that the two can be
//! compared: 1 to 64 bytes of `a-z`, `0-9`, `-`, `_`, starting with a letter or a digit; a
//! reference is two identifiers joined by one `/`.

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
