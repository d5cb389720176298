//! What an upstream call is for, which decides its place in the tenant's queue: deprovisioning
//! first (an offboarded user must lose access soon), other writes next, reads (reconciliation
//! scans) last and within a share of their own.

use http::Method;
use serde_json::Value;

/// The class of one upstream call. The order of the variants is the order of service: a
/// waiting call of an earlier class always goes before a waiting call of a later one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    /// DELETE, or a PUT/PATCH that sets `active` to false.
    Deprovision,
    /// Any other change: POST, PUT, PATCH.
    Write,
    /// GET, HEAD, and POST `/.search` (RFC 7644 §3.4.3).
    Read,
}

/// The schema of a POST `/.search` body (RFC 7644 §3.4.3): a read sent as a POST.
const SEARCH_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

/// `active` written as a full path (RFC 7644 §3.10): the User schema's URN, then the name.
const USER_ACTIVE: &str = "urn:ietf:params:scim:schemas:core:2.0:User:active";

impl Class {
    /// Every class, in order of service.
    pub const ALL: [Class; 3] = [Class::Deprovision, Class::Write, Class::Read];

    /// The position in [`Class::ALL`].
    pub const fn rank(self) -> usize {
        self as usize
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Class::Deprovision => "deprovision",
            Class::Write => "write",
            Class::Read => "read",
        }
    }

    /// The class of a call with this method and (parsed) body. Attribute names and PATCH `op`
    /// values are matched without case (RFC 7643 §2.1, RFC 7644 §3.5.2), and `false` may come
    /// as the string `"False"`, as Microsoft Entra sends it.
    pub fn of(method: &Method, body: Option<&Value>) -> Class {
        match *method {
            Method::DELETE => Class::Deprovision,
            Method::GET | Method::HEAD => Class::Read,
            Method::POST if body.is_some_and(is_search) => Class::Read,
            Method::PUT if body.is_some_and(sets_inactive) => Class::Deprovision,
            Method::PATCH if body.is_some_and(patch_deactivates) => Class::Deprovision,
            _ => Class::Write,
        }
    }
}

impl std::fmt::Display for Class {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn is_search(body: &Value) -> bool {
    get_ci(body, "schemas")
        .and_then(Value::as_array)
        .is_some_and(|s| s.iter().any(|s| s.as_str() == Some(SEARCH_REQUEST)))
}

/// A resource (PUT body) or a path-less PATCH value that says `"active": false`.
fn sets_inactive(resource: &Value) -> bool {
    get_ci(resource, "active").is_some_and(is_false)
}

/// Whether any operation of a PATCH request (RFC 7644 §3.5.2) sets `active` to false.
fn patch_deactivates(body: &Value) -> bool {
    let Some(ops) = get_ci(body, "Operations").and_then(Value::as_array) else {
        return false;
    };
    ops.iter().any(|op| {
        let sets = get_ci(op, "op")
            .and_then(Value::as_str)
            .is_some_and(|o| o.eq_ignore_ascii_case("replace") || o.eq_ignore_ascii_case("add"));
        let Some(value) = get_ci(op, "value").filter(|_| sets) else {
            return false;
        };
        match get_ci(op, "path").and_then(Value::as_str) {
            Some(path) => names_active(path) && is_false(value),
            None => sets_inactive(value),
        }
    })
}

fn names_active(path: &str) -> bool {
    let path = path.trim();
    path.eq_ignore_ascii_case("active") || path.eq_ignore_ascii_case(USER_ACTIVE)
}

fn is_false(value: &Value) -> bool {
    match value {
        Value::Bool(b) => !b,
        Value::String(s) => s.trim().eq_ignore_ascii_case("false"),
        _ => false,
    }
}

/// A member of an object, its name matched without case.
fn get_ci<'a>(value: &'a Value, name: &str) -> Option<&'a Value> {
    let object = value.as_object()?;
    object.get(name).or_else(|| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patch(ops: Value) -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": ops,
        })
    }

    fn of_patch(ops: Value) -> Class {
        Class::of(&Method::PATCH, Some(&patch(ops)))
    }

    #[test]
    fn methods_without_a_body_classify_by_method() {
        assert_eq!(Class::of(&Method::DELETE, None), Class::Deprovision);
        assert_eq!(Class::of(&Method::GET, None), Class::Read);
        assert_eq!(Class::of(&Method::HEAD, None), Class::Read);
        assert_eq!(Class::of(&Method::POST, None), Class::Write);
        assert_eq!(Class::of(&Method::PUT, None), Class::Write);
        assert_eq!(Class::of(&Method::PATCH, None), Class::Write);
    }

    #[test]
    fn a_search_posted_is_a_read() {
        let search = json!({ "schemas": [SEARCH_REQUEST], "filter": "userName eq \"a\"" });
        assert_eq!(Class::of(&Method::POST, Some(&search)), Class::Read);
        let create = json!({ "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"] });
        assert_eq!(Class::of(&Method::POST, Some(&create)), Class::Write);
    }

    #[test]
    fn put_with_active_false_deprovisions() {
        let off = json!({ "userName": "a", "active": false });
        assert_eq!(Class::of(&Method::PUT, Some(&off)), Class::Deprovision);
        let off_text = json!({ "userName": "a", "Active": "False" });
        assert_eq!(Class::of(&Method::PUT, Some(&off_text)), Class::Deprovision);
        let on = json!({ "userName": "a", "active": true });
        assert_eq!(Class::of(&Method::PUT, Some(&on)), Class::Write);
        let silent = json!({ "userName": "a" });
        assert_eq!(Class::of(&Method::PUT, Some(&silent)), Class::Write);
    }

    #[test]
    fn patch_replace_of_active_with_false_deprovisions() {
        let ops = json!([{ "op": "replace", "path": "active", "value": false }]);
        assert_eq!(of_patch(ops), Class::Deprovision);
    }

    #[test]
    fn entra_capitalised_replace_with_false_as_text_deprovisions() {
        let ops = json!([{ "op": "Replace", "path": "active", "value": "False" }]);
        assert_eq!(of_patch(ops), Class::Deprovision);
        let shouted = json!([{ "OP": "REPLACE", "Path": "Active", "Value": "false" }]);
        assert_eq!(of_patch(shouted), Class::Deprovision);
    }

    #[test]
    fn pathless_replace_with_active_false_deprovisions() {
        let okta = json!([{ "op": "replace", "value": { "active": false } }]);
        assert_eq!(of_patch(okta), Class::Deprovision);
        let mixed =
            json!([{ "op": "Replace", "value": { "displayName": "x", "Active": "False" } }]);
        assert_eq!(of_patch(mixed), Class::Deprovision);
    }

    #[test]
    fn active_false_among_other_operations_deprovisions() {
        let ops = json!([
            { "op": "replace", "path": "displayName", "value": "x" },
            { "op": "add", "path": "urn:ietf:params:scim:schemas:core:2.0:User:active", "value": false },
        ]);
        assert_eq!(of_patch(ops), Class::Deprovision);
    }

    #[test]
    fn patches_that_do_not_deactivate_are_writes() {
        let on = json!([{ "op": "replace", "path": "active", "value": true }]);
        assert_eq!(of_patch(on), Class::Write);
        let on_text = json!([{ "op": "Replace", "path": "active", "value": "True" }]);
        assert_eq!(of_patch(on_text), Class::Write);
        let remove = json!([{ "op": "remove", "path": "active" }]);
        assert_eq!(of_patch(remove), Class::Write);
        let other = json!([{ "op": "replace", "path": "displayName", "value": "false" }]);
        assert_eq!(of_patch(other), Class::Write);
        let pathless = json!([{ "op": "replace", "value": { "active": true } }]);
        assert_eq!(of_patch(pathless), Class::Write);
        assert_eq!(of_patch(json!("not a list")), Class::Write);
    }

    #[test]
    fn classes_are_served_in_rank_order() {
        assert!(Class::Deprovision < Class::Write && Class::Write < Class::Read);
        for (i, class) in Class::ALL.iter().enumerate() {
            assert_eq!(class.rank(), i);
        }
    }
}
