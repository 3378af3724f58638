//! Why a policy document or a publish was refused.

use std::fmt;

/// A rule of the contract that a policy broke.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rule {
    /// A tenant or API identifier that is not valid; see [`TenantId`](crate::TenantId).
    MalformedIdentifier {
        /// The value as written.
        value: String,
    },
    /// The same value appears twice in one list.
    Repeated {
        /// The value as written.
        value: String,
    },
    /// `allow_all: true` together with an `allow` list, even an empty one.
    AllowAllWithList,
    /// A target that lists itself.
    SelfGrant,
    /// A listed API that is not one of the tenant's `apis`.
    NotInTenant {
        /// The listed API as written.
        listed: String,
    },
    /// A `cross_api_access` entry for an API that is not one of the tenant's `apis`.
    UnknownTarget,
    /// More APIs or grants than one snapshot holds (2³² − 1).
    TooLarge,
}

impl Rule {
    /// A stable, lower-case name for the rule, such as `self_grant`, for logs and for the
    /// answers of an administration API.
    ///
    /// ```
    /// use tower_cross_api::Rule;
    ///
    /// assert_eq!(Rule::SelfGrant.name(), "self_grant");
    /// assert_eq!(Rule::AllowAllWithList.name(), "allow_all_with_list");
    /// ```
    pub const fn name(&self) -> &'static str {
        match self {
            Self::MalformedIdentifier { .. } => "malformed_identifier",
            Self::Repeated { .. } => "repeated",
            Self::AllowAllWithList => "allow_all_with_list",
            Self::SelfGrant => "self_grant",
            Self::NotInTenant { .. } => "not_in_tenant",
            Self::UnknownTarget => "unknown_target",
            Self::TooLarge => "too_large",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MalformedIdentifier { value } => write!(
                f,
                "`{value}` is not a valid identifier (1 to 64 of a-z, 0-9, '-', '_', \
                 starting with a letter or a digit)"
            ),
            Self::Repeated { value } => write!(f, "`{value}` is listed more than once"),
            Self::AllowAllWithList => {
                f.write_str("allow_all cannot be combined with an allow list")
            }
            Self::SelfGrant => f.write_str("an API cannot grant access to itself"),
            Self::NotInTenant { listed } => {
                write!(f, "the listed API `{listed}` is not an API of this tenant")
            }
            Self::UnknownTarget => f.write_str("the target is not an API of this tenant"),
            Self::TooLarge => f.write_str("the document holds more than 2^32 - 1 entries"),
        }
    }
}

/// Why a policy was not published. The snapshot in force stays as it was.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyError {
    /// The text is not a policy document: not JSON, a wrong type, an unknown field or a
    /// repeated key.
    Document {
        /// Where, as a dotted path such as `tenants.acme.cross_api_access.orders`.
        path: String,
        /// What is wrong there.
        message: String,
    },
    /// The document has the right shape but breaks a rule of the contract.
    Rule {
        /// The tenant, as written.
        tenant: String,
        /// The API the rule was broken for, as written, when it concerns one API.
        api: Option<String>,
        /// The rule.
        rule: Rule,
    },
    /// A snapshot was built without a revision.
    MissingRevision,
    /// The revision is 0, or above [`MAX_REVISION`](crate::MAX_REVISION).
    RevisionOutOfRange {
        /// The revision that was offered.
        offered: u64,
    },
    /// The revision is not greater than the one in force.
    StaleRevision {
        /// The revision in force.
        current: u64,
        /// The revision that was offered.
        offered: u64,
    },
}

impl PolicyError {
    pub(crate) fn rule(tenant: &str, api: Option<&str>, rule: Rule) -> Self {
        Self::Rule {
            tenant: tenant.to_owned(),
            api: api.map(str::to_owned),
            rule,
        }
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Document { path, message } => {
                write!(f, "invalid policy document at `{path}`: {message}")
            }
            Self::Rule {
                tenant,
                api: Some(api),
                rule,
            } => {
                write!(f, "tenant `{tenant}`, API `{api}`: {rule}")
            }
            Self::Rule {
                tenant,
                api: None,
                rule,
            } => write!(f, "tenant `{tenant}`: {rule}"),
            Self::MissingRevision => f.write_str("the policy has no revision"),
            Self::RevisionOutOfRange { offered } => write!(
                f,
                "revision {offered} is out of range (1 to {})",
                crate::MAX_REVISION
            ),
            Self::StaleRevision { current, offered } => write!(
                f,
                "revision {offered} is not greater than the revision in force, {current}"
            ),
        }
    }
}

impl std::error::Error for PolicyError {}
