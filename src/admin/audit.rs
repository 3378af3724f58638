//! The record of an accepted change.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::ser::{SerializeStruct, Serializer};
use serde::{Deserialize, Serialize};

use crate::id::{ApiId, TenantId};
use crate::policy::TargetPolicy;

/// One accepted change to one target's policy: who, where, what it was and became, at which
/// revision, when.
///
/// It serialises to JSON with `before` and `after` as `{"allow_all": bool, "allow": [...] |
/// null}` (`null` for allow-all and for nothing configured) and `at` in RFC 3339, UTC.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use tower_cross_api::{ApiId, TargetPolicy, TenantId};
/// use tower_cross_api::admin::AuditRecord;
///
/// let record = AuditRecord {
///     actor: "ada".into(),
///     tenant: TenantId::new("acme")?,
///     target: ApiId::new("orders")?,
///     action: "allow_all".into(),
///     before: TargetPolicy::NothingConfigured,
///     after: TargetPolicy::AllowAll,
///     revision: 7,
///     at: UNIX_EPOCH + Duration::from_secs(86_400),
/// };
/// let json = serde_json::to_value(&record)?;
/// assert_eq!(json["after"]["allow_all"], true);
/// assert_eq!(json["at"], "1970-01-02T00:00:00.000Z");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    /// The actor's name.
    pub actor: String,
    /// The tenant.
    pub tenant: TenantId,
    /// The target API whose policy changed.
    pub target: ApiId,
    /// The operation: a [`Change::action`](super::Change::action), or `remove_api`.
    pub action: String,
    /// The policy before the change.
    pub before: TargetPolicy,
    /// The policy after the change.
    pub after: TargetPolicy,
    /// The revision that published the change.
    pub revision: u64,
    /// When the change was accepted.
    pub at: SystemTime,
}

impl Serialize for AuditRecord {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut record = serializer.serialize_struct("AuditRecord", 8)?;
        record.serialize_field("actor", &self.actor)?;
        record.serialize_field("tenant", &self.tenant)?;
        record.serialize_field("target", &self.target)?;
        record.serialize_field("action", &self.action)?;
        record.serialize_field("before", &AccessJson::from(&self.before))?;
        record.serialize_field("after", &AccessJson::from(&self.after))?;
        record.serialize_field("revision", &self.revision)?;
        record.serialize_field("at", &rfc3339(self.at))?;
        record.end()
    }
}

/// A target's policy as the audit trail writes it.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AccessJson {
    allow_all: bool,
    allow: Option<Vec<ApiId>>,
}

impl From<&TargetPolicy> for AccessJson {
    fn from(policy: &TargetPolicy) -> Self {
        match policy {
            TargetPolicy::NothingConfigured => Self {
                allow_all: false,
                allow: None,
            },
            TargetPolicy::AllowAll => Self {
                allow_all: true,
                allow: None,
            },
            TargetPolicy::List(listed) => Self {
                allow_all: false,
                allow: Some(listed.clone()),
            },
        }
    }
}

impl AccessJson {
    /// Writes `policy` as JSON text.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn write(policy: &TargetPolicy) -> String {
        serde_json::to_string(&Self::from(policy)).unwrap_or_default()
    }

    /// Reads a policy back from JSON text; `None` when the text is not one.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn read(json: &str) -> Option<TargetPolicy> {
        let access: Self = serde_json::from_str(json).ok()?;
        match (access.allow_all, access.allow) {
            (true, None) => Some(TargetPolicy::AllowAll),
            (false, None) => Some(TargetPolicy::NothingConfigured),
            (false, Some(listed)) => Some(TargetPolicy::List(listed)),
            (true, Some(_)) => None,
        }
    }
}

/// `at` as `YYYY-MM-DDTHH:MM:SS.mmmZ`; times before 1970 read as the epoch.
fn rfc3339(at: SystemTime) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since.as_secs();
    let (days, of_day) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_date(days);

    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60,
        since.subsec_millis()
    )
}

/// The Gregorian date `days` after 1970-01-01, counted in 400-year eras that start on
/// March 1st so that the leap day falls at the end of each year.
fn civil_date(days: u64) -> (u64, u64, u64) {
    let shifted = days + 719_468;
    let era = shifted / 146_097;
    let day_of_era = shifted % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;

    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn formats_dates_across_leap_years() {
        let at = |seconds| rfc3339(UNIX_EPOCH + Duration::from_millis(seconds));

        assert_eq!(at(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(at(1_709_210_096_789), "2024-02-29T12:34:56.789Z");
        assert_eq!(at(1_735_689_599_000), "2024-12-31T23:59:59.000Z");
        assert_eq!(at(4_107_542_400_000), "2100-03-01T00:00:00.000Z");
    }

    #[test]
    fn access_json_round_trips() {
        let listed = TargetPolicy::List(vec![ApiId::new("billing").expect("id")]);

        for policy in [
            TargetPolicy::NothingConfigured,
            TargetPolicy::AllowAll,
            listed,
        ] {
            assert_eq!(AccessJson::read(&AccessJson::write(&policy)), Some(policy));
        }
        assert_eq!(AccessJson::read(r#"{"allow_all":true,"allow":[]}"#), None);
    }
}
