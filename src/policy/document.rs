//! The policy document: what a file or an administrator writes, before validation.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::PolicyError;

/// A policy document as JSON carries it: every tenant, its APIs and their cross-API access.
///
/// A document is only text with a shape; [`Snapshot::from_document`](crate::Snapshot) validates
/// it against the contract's rules. Unknown fields and repeated keys are refused while
/// parsing, with the path to the place.
///
/// ```
/// use tower_cross_api::PolicyDocument;
///
/// let document = PolicyDocument::from_json(r#"{
///     "revision": 3,
///     "tenants": {
///         "acme": {
///             "apis": ["orders", "billing", "crm", "reports"],
///             "cross_api_access": {
///                 "orders":  { "allow": ["billing", "crm"] },
///                 "billing": { "allow_all": true },
///                 "crm":     { "allow": [] }
///             }
///         }
///     }
/// }"#)?;
/// assert_eq!(document.revision, Some(3));
/// assert!(PolicyDocument::from_json(r#"{ "tenants": {}, "extra": 1 }"#).is_err());
/// # Ok::<(), tower_cross_api::PolicyError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct PolicyDocument {
    /// The revision this document publishes. Left out, the publisher takes the next one;
    /// `null` is refused.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub revision: Option<u64>,
    /// Every tenant, by its identifier.
    #[serde(deserialize_with = "unique_keys")]
    pub tenants: BTreeMap<String, TenantDocument>,
}

/// One tenant in a [`PolicyDocument`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct TenantDocument {
    /// The tenant's registry of APIs.
    pub apis: Vec<String>,
    /// The policy of each target API that has one; a target left out has nothing configured.
    #[serde(default, deserialize_with = "unique_keys")]
    pub cross_api_access: BTreeMap<String, AccessDocument>,
}

/// The policy of one target API in a [`PolicyDocument`].
///
/// `{"allow_all": true}` lets every API of the tenant call the target, current and future;
/// `{"allow": [...]}` lets the listed siblings call it; `{"allow": []}` lets nobody.
/// `"enforce": false` puts the policy in audit mode: its denials are reported, not enforced
/// (see [`Enforcement`](crate::Enforcement)); left out, it enforces.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct AccessDocument {
    /// Every API of the tenant may call the target.
    #[serde(default, skip_serializing_if = "is_false")]
    pub allow_all: bool,
    /// The sibling APIs that may call the target. Left out, there is no list; `null` is
    /// refused.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub allow: Option<Vec<String>>,
    /// Whether the policy's denials refuse calls; `false` only reports them.
    #[serde(default = "enforcing", skip_serializing_if = "is_true")]
    pub enforce: bool,
}

impl Default for AccessDocument {
    /// Nothing allowed, enforced.
    fn default() -> Self {
        Self {
            allow_all: false,
            allow: None,
            enforce: true,
        }
    }
}

fn is_false(value: &bool) -> bool {
    !*value
}

fn is_true(value: &bool) -> bool {
    *value
}

const fn enforcing() -> bool {
    true
}

/// A field that, when written, must hold a value: `null` is not the same as left out.
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// The documents' types read only from JSON objects. serde's derived code would also read a
/// struct from an array of its fields in order, which leaves no names to check.
trait Fields: Sized {
    fn from_fields<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error>;
}

struct ObjectOnly<T>(PhantomData<T>);

impl<'de, T: Fields> Visitor<'de> for ObjectOnly<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::from_fields(MapAccessDeserializer::new(map))
    }
}

macro_rules! object_only {
    ($($document:ty),*) => {$(
        impl Fields for $document {
            fn from_fields<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                Self::deserialize(deserializer)
            }
        }

        impl<'de> Deserialize<'de> for $document {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_map(ObjectOnly::<Self>(PhantomData))
            }
        }

        impl Serialize for $document {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                Self::serialize(self, serializer)
            }
        }
    )*};
}

object_only!(PolicyDocument, TenantDocument, AccessDocument);

impl PolicyDocument {
    /// Parses a document from JSON text, refusing unknown fields and repeated keys.
    ///
    /// # Errors
    ///
    /// [`PolicyError::Document`] with the path to the fault and what is wrong there.
    pub fn from_json(json: &str) -> Result<Self, PolicyError> {
        Self::from_slice(json.as_bytes())
    }

    /// Parses a document from JSON bytes; see [`from_json`](Self::from_json).
    ///
    /// # Errors
    ///
    /// [`PolicyError::Document`] with the path to the fault and what is wrong there.
    pub fn from_slice(json: &[u8]) -> Result<Self, PolicyError> {
        let mut deserializer = serde_json::Deserializer::from_slice(json);

        let document: Self =
            serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
                PolicyError::Document {
                    path: error.path().to_string(),
                    message: error.inner().to_string(),
                }
            })?;

        deserializer.end().map_err(|error| PolicyError::Document {
            path: String::from("."),
            message: error.to_string(),
        })?;
        Ok(document)
    }

    /// The document as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// Reads a JSON object into a map, refusing a key that appears twice instead of keeping the
/// last one silently.
fn unique_keys<'de, D, V>(deserializer: D) -> Result<BTreeMap<String, V>, D::Error>
where
    D: Deserializer<'de>,
    V: Deserialize<'de>,
{
    struct UniqueKeys<V>(PhantomData<V>);

    impl<'de, V: Deserialize<'de>> Visitor<'de> for UniqueKeys<V> {
        type Value = BTreeMap<String, V>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object with unique keys")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
            let mut map = BTreeMap::new();

            while let Some(key) = access.next_key::<String>()? {
                if map.contains_key(&key) {
                    return Err(de::Error::custom(format_args!("repeated key `{key}`")));
                }
                let value = access.next_value()?;
                map.insert(key, value);
            }
            Ok(map)
        }
    }

    deserializer.deserialize_map(UniqueKeys(PhantomData))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document_error(json: &str) -> (String, String) {
        match PolicyDocument::from_json(json) {
            Err(PolicyError::Document { path, message }) => (path, message),
            other => panic!("expected a document error, got {other:?}"),
        }
    }

    #[test]
    fn unknown_field_names_its_place() {
        let (path, message) = document_error(
            r#"{"tenants":{"t1":{"apis":["a","b"],
                "cross_api_access":{"a":{"allow":["b"],"deny":[]}}}}}"#,
        );
        assert_eq!(path, "tenants.t1.cross_api_access.a.deny");
        assert!(message.contains("unknown field `deny`"), "{message}");
    }

    #[test]
    fn repeated_keys_are_refused_at_every_level() {
        let (path, message) = document_error(r#"{"tenants":{"t1":{"apis":[]},"t1":{"apis":[]}}}"#);
        assert_eq!(path, "tenants");
        assert!(message.contains("repeated key `t1`"), "{message}");

        let (path, message) = document_error(
            r#"{"tenants":{"t1":{"apis":["a"],
                "cross_api_access":{"a":{"allow":[]},"a":{"allow_all":true}}}}}"#,
        );
        assert_eq!(path, "tenants.t1.cross_api_access");
        assert!(message.contains("repeated key `a`"), "{message}");
    }

    #[test]
    fn arrays_never_stand_for_objects() {
        let positional = r#"[2, {"t1": [["orders", "billing"], {"orders": [true]}]}]"#;
        let (path, message) = document_error(positional);
        assert_eq!(path, ".");
        assert!(message.contains("expected an object"), "{message}");

        let (path, _) = document_error(r#"{"tenants": {"t1": [["orders"]]}}"#);
        assert_eq!(path, "tenants.t1");
        let (path, _) = document_error(
            r#"{"tenants": {"t1": {"apis": ["a", "b"], "cross_api_access": {"a": [true]}}}}"#,
        );
        assert_eq!(path, "tenants.t1.cross_api_access.a");
    }

    #[test]
    fn a_null_revision_or_list_is_not_a_missing_one() {
        let (path, message) = document_error(r#"{"revision": null, "tenants": {}}"#);
        assert_eq!(path, "revision");
        assert!(message.contains("invalid type: null"), "{message}");

        for access in [
            r#"{"allow_all": true, "allow": null}"#,
            r#"{"allow": null}"#,
        ] {
            let tenant =
                format!(r#"{{"apis": ["a", "b"], "cross_api_access": {{"a": {access}}}}}"#);
            let (path, message) = document_error(&format!(r#"{{"tenants": {{"t1": {tenant}}}}}"#));
            assert_eq!(path, "tenants.t1.cross_api_access.a.allow", "{access}");
            assert!(message.contains("invalid type: null"), "{message}");
        }
    }

    #[test]
    fn trailing_text_and_wrong_types_are_refused() {
        assert!(PolicyDocument::from_json(r#"{"tenants":{}} {}"#).is_err());
        assert!(PolicyDocument::from_json(r#"{"tenants":{"t1":{"apis":"a"}}}"#).is_err());
        assert!(PolicyDocument::from_json(r#"{"revision":-1,"tenants":{}}"#).is_err());
        assert!(PolicyDocument::from_json(r#"{"tenants":{},"revision":1.5}"#).is_err());
        assert!(PolicyDocument::from_json("").is_err());
    }

    #[test]
    fn serialises_back_to_the_same_document() {
        let json = r#"{"revision":2,"tenants":{"t1":{"apis":["a","b"],
            "cross_api_access":{"a":{"allow":["b"]},"b":{"allow_all":true}}}}}"#;
        let document = PolicyDocument::from_json(json).expect("valid");

        let again = PolicyDocument::from_json(&document.to_json()).expect("valid");
        assert_eq!(again, document);
    }

    #[test]
    fn enforce_defaults_to_true_and_is_written_only_when_false() {
        let json = r#"{"tenants":{"t1":{"apis":["a","b"],
            "cross_api_access":{"a":{"allow":["b"],"enforce":false},"b":{"allow_all":true}}}}}"#;
        let document = PolicyDocument::from_json(json).expect("valid");

        let access = &document.tenants["t1"].cross_api_access;
        assert!(!access["a"].enforce);
        assert!(access["b"].enforce);
        let written = document.to_json();
        assert_eq!(written.matches("enforce").count(), 1, "{written}");
        assert!(
            PolicyDocument::from_json(
                r#"{"tenants":{"t1":{"apis":["a"],
            "cross_api_access":{"a":{"enforce":"no"}}}}}"#
            )
            .is_err()
        );
    }
}
