//! What filtering and PATCH need to know about an attribute (case-exactness, mutability,
//! whether it is required or multi-valued), behind a trait so a full schema can be supplied
//! later; [`CoreSchema`] answers for the User, Group and enterprise User schemas of RFC 7643.

use crate::scim::path::AttrPath;
use crate::scim::urn;

/// The `mutability` characteristic of RFC 7643 §2.2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutability {
    ReadOnly,
    ReadWrite,
    Immutable,
    WriteOnly,
}

/// Schema facts about the attribute a path names. Paths arrive as written by the client (any
/// case, with or without the schema URN); a sub-attribute named inside a value filter arrives
/// joined to its parent (`emails[type eq "work"]` asks about `emails.type`).
pub trait AttributeInfo {
    /// Whether string comparisons on this attribute respect case (RFC 7643 §2.2 `caseExact`).
    fn case_exact(&self, path: &AttrPath) -> bool;

    fn mutability(&self, _path: &AttrPath) -> Mutability {
        Mutability::ReadWrite
    }

    /// Whether removing the attribute must fail with `mutability` (RFC 7644 §3.5.2.3).
    fn required(&self, _path: &AttrPath) -> bool {
        false
    }

    /// `Some(true)` if multi-valued, `Some(false)` if singular, `None` if unknown (then PATCH
    /// goes by the shape of the current and the new value).
    fn multi_valued(&self, _path: &AttrPath) -> Option<bool> {
        None
    }
}

/// The built-in answers for the core resource schemas (RFC 7643 §4.1 User, §4.2 Group, §4.3
/// enterprise User, §3.1 common attributes), for when no fuller schema is configured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoreSchema {
    User,
    Group,
}

/// Which schema a path is in: core (no URN or the core URN), enterprise, or some other extension.
#[derive(PartialEq)]
enum Space {
    Core,
    Enterprise,
    Other,
}

fn space(path: &AttrPath) -> Space {
    match &path.urn {
        None => Space::Core,
        Some(u) if u.eq_ignore_ascii_case(urn::ENTERPRISE_USER) => Space::Enterprise,
        Some(u) if u.eq_ignore_ascii_case(urn::USER) || u.eq_ignore_ascii_case(urn::GROUP) => {
            Space::Core
        }
        Some(_) => Space::Other,
    }
}

/// Lower-cased `(name, sub)` of a core-schema path; `None` for other schemas.
fn core_names(path: &AttrPath) -> Option<(String, String)> {
    (space(path) == Space::Core).then(|| {
        let sub = path.sub.as_deref().unwrap_or("").to_ascii_lowercase();
        (path.name.to_ascii_lowercase(), sub)
    })
}

impl AttributeInfo for CoreSchema {
    /// Identifiers, references and metadata are case-exact (RFC 7643 §3.1, §2.3.7); member,
    /// group and manager `value`s hold resource ids, so they are treated as ids are.
    fn case_exact(&self, path: &AttrPath) -> bool {
        if path
            .sub
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("$ref"))
        {
            return true;
        }
        if space(path) == Space::Enterprise {
            let display = path
                .sub
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case("displayName"));
            return path.name.eq_ignore_ascii_case("manager") && !display;
        }
        let Some((name, sub)) = core_names(path) else {
            return false;
        };
        match name.as_str() {
            "id" | "externalid" | "meta" => true,
            "members" | "groups" | "x509certificates" => sub.is_empty() || sub == "value",
            _ => false,
        }
    }

    fn mutability(&self, path: &AttrPath) -> Mutability {
        let is_enterprise = space(path) == Space::Enterprise;
        if is_enterprise && path.name.eq_ignore_ascii_case("manager") {
            let display = path
                .sub
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case("displayName"));
            return if display {
                Mutability::ReadOnly
            } else {
                Mutability::ReadWrite
            };
        }
        let Some((name, _)) = core_names(path) else {
            return Mutability::ReadWrite;
        };
        match (self, name.as_str()) {
            (_, "id" | "meta") | (CoreSchema::User, "groups") => Mutability::ReadOnly,
            (CoreSchema::User, "password") => Mutability::WriteOnly,
            _ => Mutability::ReadWrite,
        }
    }

    fn required(&self, path: &AttrPath) -> bool {
        let Some((name, sub)) = core_names(path) else {
            return false;
        };
        matches!(
            (self, name.as_str(), sub.as_str()),
            (_, "id" | "schemas", "")
                | (CoreSchema::User, "username", "")
                | (CoreSchema::Group, "displayname", "")
        )
    }

    fn multi_valued(&self, path: &AttrPath) -> Option<bool> {
        // Every enterprise User attribute is singular (RFC 7643 §4.3).
        if space(path) == Space::Enterprise {
            return Some(false);
        }
        let (name, sub) = core_names(path)?;
        if !sub.is_empty() {
            return Some(false);
        }
        let multi = match self {
            CoreSchema::User => matches!(
                name.as_str(),
                "emails"
                    | "phonenumbers"
                    | "ims"
                    | "photos"
                    | "addresses"
                    | "groups"
                    | "entitlements"
                    | "roles"
                    | "x509certificates"
                    | "schemas"
            ),
            CoreSchema::Group => matches!(name.as_str(), "members" | "schemas"),
        };
        Some(multi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(s: &str) -> AttrPath {
        AttrPath::parse(s).expect("valid path")
    }

    #[test]
    fn core_schema_ids_are_case_exact_and_names_are_not() {
        let s = CoreSchema::User;
        assert!(
            s.case_exact(&path("ID"))
                && s.case_exact(&path("externalId"))
                && s.case_exact(&path("meta.version"))
        );
        assert!(s.case_exact(&path("members.$ref")) && s.case_exact(&path("groups.value")));
        assert!(!s.case_exact(&path("userName")) && !s.case_exact(&path("emails.value")));
        assert!(!s.case_exact(&path("displayName")));
        assert!(!s.case_exact(&path("urn:ietf:params:scim:schemas:core:2.0:User:userName")));
    }

    #[test]
    fn core_schema_knows_read_only_and_required_attributes() {
        assert_eq!(
            CoreSchema::User.mutability(&path("meta.lastModified")),
            Mutability::ReadOnly
        );
        assert_eq!(
            CoreSchema::User.mutability(&path("groups")),
            Mutability::ReadOnly
        );
        assert_eq!(
            CoreSchema::Group.mutability(&path("members")),
            Mutability::ReadWrite
        );
        assert!(CoreSchema::User.required(&path("userName")));
        assert!(!CoreSchema::User.required(&path("displayName")));
        assert!(CoreSchema::Group.required(&path("displayName")));
        let manager =
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.displayName";
        assert_eq!(
            CoreSchema::User.mutability(&path(manager)),
            Mutability::ReadOnly
        );
    }
}
