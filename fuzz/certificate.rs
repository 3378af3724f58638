//! Targets for the SPIFFE certificate mapping (feature `mtls`): URI SAN strings through
//! `SpiffeMapping::source_of`, arbitrary DER through `CertificateMapping::source`, and
//! certificates signed here with arbitrary URI SANs, DNS SANs and common names.
//!
//! The contract's answer is told apart from the crate: the SPIFFE grammar is restated in
//! [`spiffe_source`], and a certificate's one URI SAN is read again with `x509-parser`.

use std::sync::LazyLock;

use proptest::prelude::*;
use proptest::sample::select;
use rcgen::string::Ia5String;
use rcgen::{CertificateParams, CustomExtension, DnType, KeyPair, SanType};
use tower_cross_api::{ApiRef, CertificateFault, CertificateMapping, SpiffeMapping};
use x509_parser::oid_registry::OID_X509_EXT_SUBJECT_ALT_NAME;
use x509_parser::prelude::{FromDer, GeneralName, ParsedExtension, X509Certificate};

use crate::corpus::{inputs, seeds};
use crate::grammar::spiffe_source;
use crate::mutate::mutated;

/// The trust domain every target maps for.
const TRUST_DOMAIN: &str = "example.org";

/// The subject alternative name extension, 2.5.29.17.
const SAN_OID: [u64; 4] = [2, 5, 29, 17];

/// Tokens that move a URI across the grammar's edges.
const DICTIONARY: &[&[u8]] = &[
    b"spiffe://",
    b"spiffe:",
    b"SPIFFE://",
    b"example.org",
    b"EXAMPLE.ORG",
    b"other.org",
    b"/tenant/",
    b"/api/",
    b"tenant",
    b"api",
    b"/",
    b"//",
    b"%2f",
    b"%2F",
    b"%",
    b".",
    b"..",
    b"/./",
    b"/../",
    b"?",
    b"?x=1",
    b"#",
    b"#x",
    b":",
    b":443",
    b"@",
    b"u@",
    b"A",
    b"a",
    b"0",
    b"-",
    b"_",
    b" ",
    b"\t",
    b"\x00",
    b"\x7f",
    b"\xc3\xa9",
    b"\xd0\xb0",
    b"\xef\xbc\x8f",
    b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
];

/// DER tokens, and SAN entries, that move a certificate across its parser's edges.
const DER_DICTIONARY: &[&[u8]] = &[
    b"\x00",
    b"\xff",
    b"\x80",
    b"\x81",
    b"\x82",
    b"\x30\x00",
    b"\x30\x80",
    b"\x30\x81",
    b"\x30\x82",
    b"\x04\x00",
    b"\x01\x01\xff",
    b"\x06\x03\x55\x1d\x11",
    b"\x86\x00",
    b"\x86\x24spiffe://example.org/tenant/t1/api/a",
    b"\x82\x0bexample.org",
    b"spiffe://example.org/tenant/",
    b"/api/",
    b"%2f",
    b"..",
    b"A",
];

/// Schemes other than `spiffe://`.
const SCHEMES: [&str; 8] = [
    "SPIFFE://",
    "Spiffe://",
    "spiffe:/",
    "spiffe:",
    "spiffe:///",
    "https://",
    "",
    "spiffe://spiffe://",
];

/// Authorities other than the trust domain itself.
const AUTHORITIES: [&str; 16] = [
    "EXAMPLE.ORG",
    "Example.org",
    "example.org:443",
    "example.org:",
    "u@example.org",
    "@example.org",
    "example.org.",
    ".example.org",
    "sub.example.org",
    "example.org.evil",
    "example.com",
    "",
    "example%2eorg",
    "ex\u{430}mple.org",
    "example.org\u{0}",
    "[::1]",
];

/// Path segments around the two words the grammar wants.
const SEGMENTS: [&str; 9] = [
    "tenant", "api", "", ".", "..", "%2f", "Tenant", "API", "tenants",
];

/// What may follow a path.
const TAILS: [&str; 12] = [
    "/", "?", "?x=1", "#", "#x", "?#", "/.", "/..", "%2f", "/api/b", " ", "\n",
];

/// Trust domains whose well-formed IDs must still be refused.
const FOREIGN_DOMAINS: [&str; 4] = [
    "example.com",
    "other.org",
    "sub.example.org",
    "example.orgx",
];

static MAPPING: LazyLock<SpiffeMapping> =
    LazyLock::new(|| SpiffeMapping::new(TRUST_DOMAIN).expect("a valid trust domain"));

/// One key signs every certificate: generating a key per case would be most of the work.
static KEY: LazyLock<KeyPair> = LazyLock::new(|| KeyPair::generate().expect("a key pair"));

/// URI bytes: mutated seeds (half of them kept to visible ASCII, which the mapping reads
/// further than the rest), URIs put together from the grammar's parts, visible ASCII, or
/// anything.
pub(crate) fn uris() -> impl Strategy<Value = Vec<u8>> {
    let visible = |mut bytes: Vec<u8>| {
        bytes.retain(u8::is_ascii_graphic);
        bytes
    };

    prop_oneof![
        2 => mutated(seeds("certificate"), DICTIONARY),
        2 => mutated(seeds("certificate"), DICTIONARY).prop_map(visible),
        5 => assembled(),
        1 => "[!-~]{0,80}".prop_map(String::into_bytes),
        1 => any::<String>().prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..96),
    ]
}

/// A scheme, an authority, path segments and a tail, each mostly right, so that about a
/// third of the URIs are well-formed and the rest are one or two steps off.
fn assembled() -> impl Strategy<Value = Vec<u8>> {
    let scheme = prop_oneof![6 => Just("spiffe://"), 1 => select(&SCHEMES[..])];
    let authority = prop_oneof![6 => Just(TRUST_DOMAIN), 1 => select(&AUTHORITIES[..])];
    let segments = prop_oneof![
        6 => (identifier(), identifier())
            .prop_map(|(tenant, api)| vec!["tenant".to_owned(), tenant, "api".to_owned(), api]),
        1 => prop::collection::vec(segment(), 0..6),
    ];
    let tail = prop_oneof![8 => Just(""), 1 => select(&TAILS[..])];

    (scheme, authority, segments, tail).prop_map(|(scheme, authority, segments, tail)| {
        let mut uri = format!("{scheme}{authority}");
        for segment in segments {
            uri.push('/');
            uri.push_str(&segment);
        }
        uri.push_str(tail);
        uri.into_bytes()
    })
}

/// Mostly valid identifiers, some of the longest and one byte longer, some malformed.
fn identifier() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[a-z0-9][a-z0-9_-]{0,63}",
        1 => "[a-z][a-z0-9]{63,64}",
        1 => "[a-zA-Z0-9_.%-]{0,8}",
        1 => "[a-z\u{e0}-\u{ff}\u{430}-\u{44f}]{1,4}",
    ]
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => identifier(),
        1 => select(&SEGMENTS[..]).prop_map(str::to_owned),
    ]
}

/// Accepted exactly when the grammar says so; an accepted URI prints back to itself, and a
/// refused one is refused for something in the URI.
///
/// `source_of` reads text: bytes that are not UTF-8 are read lossily, as a certificate's
/// parser would refuse them before the mapping sees them.
pub(crate) fn uri_maps_strictly(bytes: Vec<u8>) -> Result<(), TestCaseError> {
    let uri = String::from_utf8_lossy(&bytes);

    let source = MAPPING.source_of(&uri);

    let named = spiffe_source(uri.as_bytes(), TRUST_DOMAIN);
    match (source, named) {
        (Ok(source), Some(named)) => {
            prop_assert_eq!(names(&source), named);
            let printed = format!(
                "spiffe://{TRUST_DOMAIN}/tenant/{}/api/{}",
                source.tenant(),
                source.api()
            );
            prop_assert_eq!(&printed, &uri);
            prop_assert_eq!(MAPPING.spiffe_id(&source), printed);
        }
        (Err(fault), None) => {
            prop_assert!(is_uri_fault(fault), "{:?}: {:?}", uri, fault);
            prop_assert!(!fault.to_string().is_empty());
        }
        (source, named) => return Err(disagreement(&uri, &source, named.is_some())),
    }
    Ok(())
}

/// The failure of a URI on which the mapping and the grammar disagree.
fn disagreement(
    uri: &dyn std::fmt::Debug,
    source: &dyn std::fmt::Debug,
    named: bool,
) -> TestCaseError {
    TestCaseError::fail(format!(
        "{uri:?}: the mapping answered {source:?}, the grammar accepts it: {named}"
    ))
}

/// The tenant and API of `source`, as bytes.
fn names(source: &ApiRef) -> (&[u8], &[u8]) {
    (
        source.tenant().as_str().as_bytes(),
        source.api().as_str().as_bytes(),
    )
}

/// Whether `fault` is about a URI, not about the certificate around it nor a host's mapping.
fn is_uri_fault(fault: CertificateFault) -> bool {
    !matches!(
        fault,
        CertificateFault::Unparsable
            | CertificateFault::NoUriSan
            | CertificateFault::SeveralUriSans
            | CertificateFault::Refused(_)
    )
}

/// DER bytes: real certificates mutated, certificates of every shape [`certificates`] makes,
/// or anything.
pub(crate) fn der() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => mutated(real_certificates(), DER_DICTIONARY),
        2 => certificates().prop_map(|certificate| certificate.der()),
        1 => prop::collection::vec(any::<u8>(), 0..512),
    ]
}

/// Certificates signed now: a few of every shape, one for each URI of the seed corpus, and
/// the inputs that once failed.
fn real_certificates() -> Vec<Vec<u8>> {
    let spiffe = |tenant: &str, api: &str| spiffe_id(TRUST_DOMAIN, tenant, api);
    let uri = |text: String| Name::Uri(text);
    let shapes = [
        (vec![uri(spiffe("t1", "billing"))], None, Encoding::Rcgen),
        (vec![uri(spiffe("t1", "billing"))], None, Encoding::Harness),
        (
            vec![Name::Dns("api.example.org".into()), uri(spiffe("t1", "a"))],
            Some(spiffe("cn", "cn")),
            Encoding::Rcgen,
        ),
        (
            vec![uri(spiffe("t1", "a")), uri(spiffe("t1", "b"))],
            None,
            Encoding::Rcgen,
        ),
        (Vec::new(), Some(spiffe("t1", "a")), Encoding::Rcgen),
        (vec![Name::Dns("example.org".into())], None, Encoding::Rcgen),
        (
            vec![uri(spiffe("t1", "a")), Name::Dns("example.org".into())],
            None,
            Encoding::Repeated(1),
        ),
        (
            vec![uri(spiffe_id("other.org", "t1", "a"))],
            None,
            Encoding::Rcgen,
        ),
    ];
    let from_corpus = inputs("corpus", "certificate")
        .into_iter()
        .map(|(_, bytes)| {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            (vec![Name::Uri(text)], None, Encoding::Rcgen)
        });

    shapes
        .into_iter()
        .chain(from_corpus)
        .map(|(names, common_name, encoding)| {
            Certificate {
                names,
                common_name,
                encoding,
            }
            .der()
        })
        .chain(
            inputs("regressions", "certificate")
                .into_iter()
                .map(|(_, bytes)| bytes),
        )
        .collect()
}

/// Never panics, and accepts exactly the DER of one whole certificate whose one SAN
/// extension holds one URI, well-formed for the trust domain: its source is that URI's.
pub(crate) fn der_names_its_one_uri_san(der: Vec<u8>) -> Result<(), TestCaseError> {
    let source = MAPPING.source(&der);

    let uri = one_uri_san(&der);
    let named = uri
        .as_deref()
        .and_then(|uri| spiffe_source(uri.as_bytes(), TRUST_DOMAIN));
    match (source, named) {
        (Ok(source), Some(named)) => prop_assert_eq!(names(&source), named),
        (Err(fault), None) => prop_assert!(!fault.as_str().is_empty()),
        (source, _) => prop_assert!(
            false,
            "the mapping answered {:?} for a certificate whose one URI SAN is {:?}",
            source,
            uri
        ),
    }
    Ok(())
}

/// The one URI SAN of `der`, read apart from the mapping: `der` must be one whole
/// certificate with one subject alternative name extension, which parses and holds
/// exactly one URI.
fn one_uri_san(der: &[u8]) -> Option<String> {
    let Ok(([], certificate)) = X509Certificate::from_der(der) else {
        return None;
    };
    let mut extensions = certificate
        .extensions()
        .iter()
        .filter(|extension| extension.oid == OID_X509_EXT_SUBJECT_ALT_NAME);
    let (Some(extension), None) = (extensions.next(), extensions.next()) else {
        return None;
    };
    let ParsedExtension::SubjectAlternativeName(san) = extension.parsed_extension() else {
        return None;
    };

    let mut uris = san.general_names.iter().filter_map(|name| match name {
        GeneralName::URI(uri) => Some(*uri),
        _ => None,
    });
    match (uris.next(), uris.next()) {
        (Some(uri), None) => Some(uri.to_owned()),
        _ => None,
    }
}

/// A name in a certificate's subject alternative names.
#[derive(Clone, Debug)]
enum Name {
    Uri(String),
    Dns(String),
}

/// How the names are written into the certificate.
#[derive(Clone, Copy, Debug)]
enum Encoding {
    /// By rcgen, in one extension; as [`Encoding::Harness`] when a name is not ASCII, which
    /// rcgen cannot write.
    Rcgen,
    /// In one extension encoded here, the names as arbitrary UTF-8.
    Harness,
    /// In two extensions encoded here, the names split between them at this index (modulo
    /// their count plus one): a repeated extension.
    Repeated(usize),
}

/// A certificate to sign: its subject alternative names, in order, how they are written,
/// and a common name that may look like a SPIFFE ID.
#[derive(Clone, Debug)]
pub(crate) struct Certificate {
    names: Vec<Name>,
    common_name: Option<String>,
    encoding: Encoding,
}

fn spiffe_id(trust_domain: &str, tenant: &str, api: &str) -> String {
    format!("spiffe://{trust_domain}/tenant/{tenant}/api/{api}")
}

/// SPIFFE IDs for the trust domain, for others, and malformed URIs.
fn san_uri() -> impl Strategy<Value = String> {
    let well_formed = |trust_domain| {
        ("[a-z0-9][a-z0-9_-]{0,15}", "[a-z0-9][a-z0-9_-]{0,15}")
            .prop_map(move |(tenant, api)| spiffe_id(trust_domain, &tenant, &api))
    };
    let foreign = select(&FOREIGN_DOMAINS[..]).prop_flat_map(well_formed);
    let malformed = uris().prop_map(|bytes| String::from_utf8_lossy(&bytes).into_owned());

    prop_oneof![
        4 => well_formed(TRUST_DOMAIN),
        1 => foreign,
        3 => malformed,
    ]
}

/// DNS names, some of them spelled as SPIFFE IDs.
fn dns_name() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => "[a-z]{1,8}\\.example\\.org",
        1 => san_uri(),
    ]
}

/// Zero to three URI SANs (mostly one) and zero to two DNS SANs in any order, and
/// sometimes a common name that is a well-formed SPIFFE ID for the trust domain.
pub(crate) fn certificates() -> impl Strategy<Value = Certificate> {
    let uris = prop_oneof![
        1 => Just(0..=0),
        4 => Just(1..=1),
        1 => Just(2..=3),
    ]
    .prop_flat_map(|count| prop::collection::vec(san_uri().prop_map(Name::Uri), count));
    let names = (
        uris,
        prop::collection::vec(dns_name().prop_map(Name::Dns), 0..=2),
    )
        .prop_flat_map(|(uris, dns)| Just([uris, dns].concat()).prop_shuffle());
    let common_name = ("[a-z0-9]{1,8}", "[a-z0-9]{1,8}")
        .prop_map(|(tenant, api)| spiffe_id(TRUST_DOMAIN, &tenant, &api));
    let encoding = prop_oneof![
        6 => Just(Encoding::Rcgen),
        2 => Just(Encoding::Harness),
        1 => any::<usize>().prop_map(Encoding::Repeated),
    ];

    (names, prop::option::of(common_name), encoding).prop_map(|(names, common_name, encoding)| {
        Certificate {
            names,
            common_name,
            encoding,
        }
    })
}

impl Certificate {
    /// The certificate, self-signed with [`KEY`], DER.
    fn der(&self) -> Vec<u8> {
        let mut params = CertificateParams::default();
        if let Some(common_name) = &self.common_name {
            params
                .distinguished_name
                .push(DnType::CommonName, common_name.as_str());
        }

        let ascii = self.names.iter().all(|name| name.text().is_ascii());
        match self.encoding {
            Encoding::Rcgen if ascii => {
                params.subject_alt_names = self.names.iter().map(Name::san).collect();
            }
            Encoding::Rcgen | Encoding::Harness if self.names.is_empty() => {}
            Encoding::Rcgen | Encoding::Harness => {
                params.custom_extensions.push(san_extension(&self.names));
            }
            Encoding::Repeated(at) => {
                let (first, second) = self.names.split_at(at % (self.names.len() + 1));
                params.custom_extensions.push(san_extension(first));
                params.custom_extensions.push(san_extension(second));
            }
        }

        let certificate = params.self_signed(&*KEY).expect("rcgen signs any names");
        certificate.der().to_vec()
    }

    fn uris(&self) -> Vec<&str> {
        self.names
            .iter()
            .filter_map(|name| match name {
                Name::Uri(uri) => Some(uri.as_str()),
                Name::Dns(_) => None,
            })
            .collect()
    }
}

impl Name {
    fn text(&self) -> &str {
        match self {
            Self::Uri(text) | Self::Dns(text) => text,
        }
    }

    fn san(&self) -> SanType {
        let text = Ia5String::try_from(self.text()).expect("an ASCII name");
        match self {
            Self::Uri(_) => SanType::URI(text),
            Self::Dns(_) => SanType::DnsName(text),
        }
    }
}

/// A subject alternative name extension holding `names`, encoded here:
/// `SEQUENCE OF GeneralName`, a URI as `[6]` and a DNS name as `[2]`, both implicit.
fn san_extension(names: &[Name]) -> CustomExtension {
    let general_names: Vec<u8> = names
        .iter()
        .flat_map(|name| {
            let tag = match name {
                Name::Uri(_) => 0x86,
                Name::Dns(_) => 0x82,
            };
            tlv(tag, name.text().as_bytes())
        })
        .collect();

    CustomExtension::from_oid_content(&SAN_OID, tlv(0x30, &general_names))
}

/// A DER tag, length and value.
fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let length = value.len().to_be_bytes();
    let significant = length
        .iter()
        .position(|&byte| byte != 0)
        .map_or(&[][..], |first| &length[first..]);

    let mut encoded = vec![tag];
    match significant {
        [] => encoded.push(0),
        [short] if *short < 0x80 => encoded.push(*short),
        long => {
            let count = u8::try_from(long.len()).expect("a length fits in eight bytes");
            encoded.push(0x80 | count);
            encoded.extend_from_slice(long);
        }
    }
    encoded.extend_from_slice(value);
    encoded
}

/// Accepted exactly when the certificate has one URI SAN, in one extension, that is
/// well-formed for the trust domain, and then its source is that URI's; the DNS SANs and the
/// common name are never read. The certificate-level refusals are the contract's:
/// a repeated extension is unparsable, no URI SAN and several URI SANs are their own faults.
pub(crate) fn certificate_names_its_one_uri_san(
    certificate: Certificate,
) -> Result<(), TestCaseError> {
    let der = certificate.der();

    let source = MAPPING.source(&der);

    let uris = certificate.uris();
    match (certificate.encoding, uris.as_slice()) {
        (Encoding::Repeated(_), _) => prop_assert_eq!(source, Err(CertificateFault::Unparsable)),
        (_, []) => prop_assert_eq!(source, Err(CertificateFault::NoUriSan)),
        (_, [_, _, ..]) => prop_assert_eq!(source, Err(CertificateFault::SeveralUriSans)),
        (_, [uri]) => match (source, spiffe_source(uri.as_bytes(), TRUST_DOMAIN)) {
            (Ok(source), Some(named)) => prop_assert_eq!(names(&source), named),
            (Err(fault), None) => prop_assert!(is_uri_fault(fault), "{:?}: {:?}", uri, fault),
            (source, named) => return Err(disagreement(uri, &source, named.is_some())),
        },
    }
    Ok(())
}

#[test]
fn lengths_are_encoded_as_der_wants() {
    assert_eq!(tlv(0x86, b""), [0x86, 0]);
    assert_eq!(tlv(0x86, &[7; 0x7f])[..2], [0x86, 0x7f]);
    assert_eq!(tlv(0x30, &[7; 0x80])[..3], [0x30, 0x81, 0x80]);
    assert_eq!(tlv(0x30, &[7; 0x1234])[..4], [0x30, 0x82, 0x12, 0x34]);
    assert_eq!(tlv(0x30, &[7; 0x1234]).len(), 4 + 0x1234);
}

#[test]
fn a_certificate_signed_here_is_read_back_by_both() {
    let billing = spiffe_id(TRUST_DOMAIN, "t1", "billing");
    for encoding in [Encoding::Rcgen, Encoding::Harness] {
        let certificate = Certificate {
            names: vec![
                Name::Dns("api.example.org".into()),
                Name::Uri(billing.clone()),
            ],
            common_name: Some(spiffe_id(TRUST_DOMAIN, "cn", "cn")),
            encoding,
        };

        let der = certificate.der();

        assert_eq!(one_uri_san(&der).as_deref(), Some(billing.as_str()));
        let source = MAPPING.source(&der).expect("a well-formed SPIFFE ID");
        assert_eq!(source.to_string(), "t1/billing");
    }
}
