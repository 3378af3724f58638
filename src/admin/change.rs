//! The operations on one target's policy.

use crate::id::ApiId;
use crate::policy::{Rule, TargetPolicy};

use super::AdminError;

/// One operation on the policy of one target API.
///
/// ```
/// use tower_cross_api::{ApiId, Rule, TargetPolicy};
/// use tower_cross_api::admin::{AdminError, Change};
///
/// let billing = ApiId::new("billing")?;
/// let listed = Change::from_access(false, Some(&["billing".into()]))?;
/// assert_eq!(listed, Change::SetList(vec![billing]));
/// assert_eq!(Change::from_access(true, None)?, Change::AllowAll);
/// assert_eq!(Change::from_access(false, None)?, Change::Reset);
/// assert_eq!(
///     Change::from_access(true, Some(&["billing".into()])),
///     Err(AdminError::Rule { rule: Rule::AllowAllWithList })
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Change {
    /// Every API of the tenant, current and future, may call the target; clears any list.
    AllowAll,
    /// Exactly the listed APIs may call the target; an empty list allows nobody.
    SetList(Vec<ApiId>),
    /// Adds one API to the target's list (starting one if nothing is configured).
    Grant(ApiId),
    /// Removes one API from the target's list.
    Revoke(ApiId),
    /// Back to nothing configured: nobody may call the target.
    Reset,
}

impl Change {
    /// The change that makes a target's policy read `allow_all` and `allow`, as an
    /// administration API receives them: allow-all with no list (or an empty one) turns
    /// allow-all on, a list without allow-all sets that list, neither resets.
    ///
    /// # Errors
    ///
    /// [`Rule::AllowAllWithList`] for allow-all with a non-empty list,
    /// [`Rule::MalformedIdentifier`] for a listed value that is not an identifier.
    pub fn from_access(allow_all: bool, allow: Option<&[String]>) -> Result<Self, AdminError> {
        match (allow_all, allow) {
            (true, Some(listed)) if !listed.is_empty() => Err(AdminError::Rule {
                rule: Rule::AllowAllWithList,
            }),
            (true, _) => Ok(Self::AllowAll),
            (false, None) => Ok(Self::Reset),
            (false, Some(listed)) => listed
                .iter()
                .map(|value| {
                    ApiId::new(value).map_err(|_| AdminError::Rule {
                        rule: Rule::MalformedIdentifier {
                            value: value.clone(),
                        },
                    })
                })
                .collect::<Result<_, _>>()
                .map(Self::SetList),
        }
    }

    /// The operation's name in the audit trail: `allow_all`, `set_list`, `grant`, `revoke` or
    /// `reset`.
    pub const fn action(&self) -> &'static str {
        match self {
            Self::AllowAll => "allow_all",
            Self::SetList(_) => "set_list",
            Self::Grant(_) => "grant",
            Self::Revoke(_) => "revoke",
            Self::Reset => "reset",
        }
    }

    /// The policy after this change, before validation against the tenant (which catches a
    /// self-grant, an API of no such name and a repeated one).
    pub(crate) fn apply(&self, before: &TargetPolicy) -> Result<TargetPolicy, AdminError> {
        let on_allow_all = || AdminError::Rule {
            rule: Rule::AllowAllWithList,
        };

        match (self, before) {
            (Self::AllowAll, _) => Ok(TargetPolicy::AllowAll),
            (Self::SetList(listed), _) => Ok(TargetPolicy::List(listed.clone())),
            (Self::Reset, _) => Ok(TargetPolicy::NothingConfigured),
            (Self::Grant(_) | Self::Revoke(_), TargetPolicy::AllowAll) => Err(on_allow_all()),
            (Self::Grant(api), TargetPolicy::NothingConfigured) => {
                Ok(TargetPolicy::List(vec![*api]))
            }
            (Self::Grant(api), TargetPolicy::List(listed)) if listed.contains(api) => {
                Err(AdminError::Rule {
                    rule: Rule::Repeated {
                        value: api.to_string(),
                    },
                })
            }
            (Self::Grant(api), TargetPolicy::List(listed)) => {
                let mut listed = listed.clone();
                listed.push(*api);
                Ok(TargetPolicy::List(listed))
            }
            (Self::Revoke(api), TargetPolicy::List(listed)) if listed.contains(api) => Ok(
                TargetPolicy::List(listed.iter().copied().filter(|x| x != api).collect()),
            ),
            (Self::Revoke(api), _) => Err(AdminError::NotListed { api: *api }),
        }
    }
}
