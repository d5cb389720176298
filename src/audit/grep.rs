//! `scimgate audit grep`: the lines of one tenant about one user or group within a time
//! window, across rotated files — "who was deactivated", "who was added to which group, by
//! which IdP" — as they are, or one readable line each.

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// What to look for.
#[derive(Debug, Default)]
pub struct Query {
    pub tenant: String,
    /// A User's id or externalId; also matches a Group line that adds or removes it.
    pub user: Option<String>,
    /// A Group's id or externalId.
    pub group: Option<String>,
    pub since: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
}

/// `2026-11-01T00:00:00Z`, or a span back from `now` such as `7d` or `12h`.
pub fn parse_time(text: &str, now: OffsetDateTime) -> Result<OffsetDateTime, String> {
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(t);
    }
    let span = humantime::parse_duration(text).map_err(|_| {
        format!("{text:?}: expected an RFC 3339 time such as 2026-11-01T00:00:00Z, or a span back from now such as 7d or 12h")
    })?;
    let span = time::Duration::try_from(span).map_err(|e| e.to_string())?;
    now.checked_sub(span)
        .ok_or_else(|| format!("{text:?} reaches back too far"))
}

/// Whether an audit line answers the query. Checkpoints never do.
pub fn matches(q: &Query, line: &Value) -> bool {
    if line["type"] == "checkpoint" || line["tenant"].as_str() != Some(q.tenant.as_str()) {
        return false;
    }
    let time = line["time"]
        .as_str()
        .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok());
    let in_window = |t: Option<OffsetDateTime>| match t {
        None => q.since.is_none() && q.until.is_none(),
        Some(t) => q.since.is_none_or(|s| t >= s) && q.until.is_none_or(|u| t <= u),
    };
    if !in_window(time) {
        return false;
    }
    let names = |v: &str| line["id"] == v || line["externalId"] == v;
    let resource = line["resource"].as_str();
    let user_ok = q.user.as_deref().is_none_or(|u| {
        (resource == Some("User") && names(u)) || (resource == Some("Group") && member_of(line, u))
    });
    let group_ok = q
        .group
        .as_deref()
        .is_none_or(|g| resource == Some("Group") && names(g));
    user_ok && group_ok
}

fn member_of(line: &Value, user: &str) -> bool {
    ["members_added", "members_removed", "members_set"]
        .iter()
        .any(|k| {
            line[*k]
                .as_array()
                .is_some_and(|l| l.iter().any(|m| m == user))
        })
}

/// One readable line: `2026-11-30T10:00:00Z acme token okta-2026 (entra): patch User 42
/// externalId=e-42 active=false → 200`.
pub fn summary(line: &Value) -> String {
    let s = |k: &str| line[k].as_str().unwrap_or("-").to_owned();
    let mut out = format!(
        "{} {} {} ({}): {} {} {}",
        s("time"),
        s("tenant"),
        s("principal"),
        line["pack"].as_str().unwrap_or("no pack"),
        s("op"),
        s("resource"),
        s("id")
    );
    if let Some(ext) = line["externalId"].as_str() {
        out.push_str(&format!(" externalId={ext}"));
    }
    if let Some(values) = line["values"].as_object() {
        for (k, v) in values {
            out.push_str(&format!(" {k}={v}"));
        }
    }
    let list = |k: &str| {
        line[k].as_array().map(|l| {
            l.iter()
                .map(|m| m.as_str().unwrap_or_default())
                .collect::<Vec<_>>()
                .join(",")
        })
    };
    if let Some(added) = list("members_added") {
        out.push_str(&format!(" added members {added}"));
    }
    if let Some(removed) = list("members_removed") {
        out.push_str(&format!(" removed members {removed}"));
    }
    if let Some(set) = list("members_set") {
        out.push_str(&format!(" set members to [{set}]"));
    }
    if line["members_cleared"] == true {
        out.push_str(" removed every member");
    }
    match line["refusal"].as_str() {
        Some(kind) => out.push_str(&format!(
            " → refused ({kind}, {}): {}",
            line["status"],
            s("reason")
        )),
        None => out.push_str(&format!(" → {}", line["status"])),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn q(user: Option<&str>, group: Option<&str>) -> Query {
        Query {
            tenant: "acme".into(),
            user: user.map(Into::into),
            group: group.map(Into::into),
            ..Query::default()
        }
    }

    #[test]
    fn a_user_is_found_by_id_external_id_and_group_membership() {
        let patch = json!({"time": "2026-11-30T10:00:00Z", "type": "change", "tenant": "acme",
            "op": "patch", "resource": "User", "id": "42", "externalId": "e-42",
            "values": {"active": false}, "status": 200});
        let add = json!({"time": "2026-11-30T10:01:00Z", "type": "change", "tenant": "acme",
            "op": "patch", "resource": "Group", "id": "g1", "members_added": ["42"], "status": 204});
        assert!(matches(&q(Some("42"), None), &patch));
        assert!(matches(&q(Some("e-42"), None), &patch));
        assert!(matches(&q(Some("42"), None), &add));
        assert!(matches(&q(Some("42"), Some("g1")), &add));
        assert!(!matches(&q(Some("42"), Some("g2")), &add));
        assert!(!matches(&q(Some("43"), None), &patch));
        let other = Query {
            tenant: "other".into(),
            ..Query::default()
        };
        assert!(!matches(&other, &patch));
        assert!(
            summary(&patch).contains("active=false → 200"),
            "{}",
            summary(&patch)
        );
        assert!(summary(&add).contains("added members 42"));
    }

    #[test]
    fn times_are_absolute_or_back_from_now_and_bound_the_window() {
        let now = OffsetDateTime::parse("2026-11-30T12:00:00Z", &Rfc3339).unwrap();
        let week = parse_time("7d", now).unwrap();
        assert_eq!(week.to_string(), "2026-11-23 12:00:00.0 +00:00:00");
        assert!(parse_time("last week", now).is_err());
        let line = json!({"time": "2026-11-20T00:00:00Z", "type": "change", "tenant": "acme"});
        let mut query = q(None, None);
        query.since = Some(week);
        assert!(!matches(&query, &line));
        query.since = Some(parse_time("2026-11-01T00:00:00Z", now).unwrap());
        query.until = Some(week);
        assert!(matches(&query, &line));
    }
}
