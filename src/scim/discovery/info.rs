//! The schema-backed [`AttributeInfo`]: what filtering, sorting and PATCH need to know about an
//! attribute, answered from the bundled schema definitions (RFC 7643 §7), so that validation,
//! filters and PATCH of one resource type agree on a single source of truth.

use super::{attribute_in, AttributeDef, Mutability, ResourceTypeDef};
use crate::scim::filter::{self, AttributeInfo};
use crate::scim::path::AttrPath;

/// The attribute characteristics of one resource type, as its schemas define them. Attributes
/// the schemas do not define are caseExact false, readWrite, optional and of unknown
/// plurality: callers that must refuse or ignore them ask [`SchemaInfo::def`] first.
#[derive(Clone, Copy, Debug)]
pub struct SchemaInfo {
    rt: &'static ResourceTypeDef,
}

impl SchemaInfo {
    pub fn new(rt: &'static ResourceTypeDef) -> Self {
        Self { rt }
    }

    /// The definition of the attribute `path` names (core, common or URN-qualified
    /// extension attribute, any case), if the resource type has one.
    pub fn def(&self, path: &AttrPath) -> Option<&'static AttributeDef> {
        attribute_in(self.rt, &path.pieces(None))
    }
}

impl AttributeInfo for SchemaInfo {
    fn case_exact(&self, path: &AttrPath) -> bool {
        self.def(path).is_some_and(|d| d.case_exact)
    }

    fn mutability(&self, path: &AttrPath) -> filter::Mutability {
        match self.def(path).map(|d| d.mutability) {
            Some(Mutability::ReadOnly) => filter::Mutability::ReadOnly,
            Some(Mutability::Immutable) => filter::Mutability::Immutable,
            Some(Mutability::WriteOnly) => filter::Mutability::WriteOnly,
            Some(Mutability::ReadWrite) | None => filter::Mutability::ReadWrite,
        }
    }

    fn required(&self, path: &AttrPath) -> bool {
        self.def(path).is_some_and(|d| d.required)
    }

    fn multi_valued(&self, path: &AttrPath) -> Option<bool> {
        self.def(path).map(|d| d.multi_valued)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::discovery::{GROUP, USER};
    use crate::scim::urn;

    fn path(s: &str) -> AttrPath {
        AttrPath::parse(s).expect("valid path")
    }

    #[test]
    fn case_exactness_comes_from_the_schema() {
        let user = SchemaInfo::new(&USER);
        assert!(user.case_exact(&path("id")) && user.case_exact(&path("externalId")));
        assert!(user.case_exact(&path("meta.version")));
        assert!(!user.case_exact(&path("USERNAME")) && !user.case_exact(&path("emails.value")));
        assert!(!user.case_exact(&path("shoeSize")));
    }

    #[test]
    fn mutability_and_required_come_from_the_schema() {
        let user = SchemaInfo::new(&USER);
        assert_eq!(
            user.mutability(&path("groups")),
            filter::Mutability::ReadOnly
        );
        assert_eq!(
            user.mutability(&path("password")),
            filter::Mutability::WriteOnly
        );
        let manager = format!("{}:manager.displayName", urn::ENTERPRISE_USER);
        assert_eq!(
            user.mutability(&path(&manager)),
            filter::Mutability::ReadOnly
        );
        assert!(user.required(&path("userName")) && !user.required(&path("displayName")));
        let group = SchemaInfo::new(&GROUP);
        assert!(group.required(&path("displayName")));
        assert_eq!(
            group.mutability(&path("members.value")),
            filter::Mutability::Immutable
        );
        assert_eq!(
            group.mutability(&path("members")),
            filter::Mutability::ReadWrite
        );
    }

    #[test]
    fn plurality_is_known_for_defined_attributes_only() {
        let user = SchemaInfo::new(&USER);
        assert_eq!(user.multi_valued(&path("emails")), Some(true));
        assert_eq!(user.multi_valued(&path("emails.value")), Some(false));
        let core = format!("{}:name", urn::USER);
        assert_eq!(user.multi_valued(&path(&core)), Some(false));
        assert_eq!(user.multi_valued(&path("shoeSize")), None);
        assert_eq!(SchemaInfo::new(&GROUP).multi_valued(&path("emails")), None);
    }
}
