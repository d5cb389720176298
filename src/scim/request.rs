//! Classifies a SCIM request target (method and path below the SCIM base) into an endpoint,
//! an optional resource id and whether it is a `.search`, without any HTTP types.

use std::borrow::Cow;

/// The HTTP methods SCIM uses (RFC 7644 §3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    /// Parses a method token. HTTP methods are case-sensitive (RFC 9110 §9.1).
    pub fn parse(s: &str) -> Option<Method> {
        match s {
            "GET" => Some(Self::Get),
            "POST" => Some(Self::Post),
            "PUT" => Some(Self::Put),
            "PATCH" => Some(Self::Patch),
            "DELETE" => Some(Self::Delete),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
        }
    }
}

/// The endpoints of RFC 7644 §3.2 Figure 1 (plus the service root for root-level queries).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Users,
    Groups,
    ServiceProviderConfig,
    Schemas,
    ResourceTypes,
    Bulk,
    Me,
    /// `/` or `/.search` at the service root (RFC 7644 §3.4.2.1, §3.4.3).
    Root,
}

impl Endpoint {
    /// Endpoints are matched without case (`/users`), as the IdPs' own reference servers
    /// match them; [`Endpoint::segment`] gives the spelling RFC 7644 §3.2 uses.
    fn from_segment(s: &str) -> Option<Endpoint> {
        const ALL: [Endpoint; 7] = [
            Endpoint::Users,
            Endpoint::Groups,
            Endpoint::ServiceProviderConfig,
            Endpoint::Schemas,
            Endpoint::ResourceTypes,
            Endpoint::Bulk,
            Endpoint::Me,
        ];
        ALL.into_iter()
            .find(|e| e.segment().is_some_and(|seg| seg.eq_ignore_ascii_case(s)))
    }

    /// The path segment as RFC 7644 §3.2 spells it; `None` for the service root.
    pub fn segment(self) -> Option<&'static str> {
        Some(match self {
            Self::Users => "Users",
            Self::Groups => "Groups",
            Self::ServiceProviderConfig => "ServiceProviderConfig",
            Self::Schemas => "Schemas",
            Self::ResourceTypes => "ResourceTypes",
            Self::Bulk => "Bulk",
            Self::Me => "Me",
            Self::Root => return None,
        })
    }

    /// Whether `/{endpoint}/{id}` is meaningful: resources, and single discovery documents.
    fn takes_id(self) -> bool {
        matches!(
            self,
            Self::Users | Self::Groups | Self::Schemas | Self::ResourceTypes
        )
    }

    /// Whether `POST /{endpoint}/.search` is meaningful (RFC 7644 §3.4.3).
    fn takes_search(self) -> bool {
        matches!(self, Self::Users | Self::Groups | Self::Root)
    }
}

/// What a request path names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target<'a> {
    pub endpoint: Endpoint,
    /// The percent-decoded id (`/Users/{id}`, `/Schemas/{urn}`, `/ResourceTypes/{name}`).
    /// Borrowed unless the path carried percent escapes.
    pub id: Option<Cow<'a, str>>,
    /// The path ended in `/.search`.
    pub search: bool,
}

impl Target<'_> {
    /// The same target, owning its id.
    pub fn into_owned(self) -> Target<'static> {
        Target {
            endpoint: self.endpoint,
            id: self.id.map(|id| Cow::Owned(id.into_owned())),
            search: self.search,
        }
    }
}

/// Whether `path` can be sent to an upstream as it is, without any server on the way able to
/// read it as a path outside the base it is appended to. Refused: `.`/`..` segments (also
/// percent-encoded), encoded slashes and backslashes (`%2F`, `%5C`: some servers decode them
/// before resolving dot segments), raw backslashes (some treat them as `/`), `;` (path
/// parameters: `..;/` resolves as `..` on some servers), and NUL.
pub fn is_safe_path(path: &str) -> bool {
    let bytes = path.as_bytes();
    // Most paths hold none of the bytes the checks below look for: one pass says so.
    if !bytes
        .iter()
        .any(|b| matches!(b, b'\\' | b';' | 0 | b'%' | b'.'))
    {
        return true;
    }
    if bytes.iter().any(|b| matches!(b, b'\\' | b';' | 0)) {
        return false;
    }
    let encoded = |b: &[u8]| {
        matches!(
            b,
            [b'%', b'2', b'f' | b'F'] | [b'%', b'5', b'c' | b'C'] | [b'%', b'0', b'0']
        )
    };
    if bytes.windows(3).any(encoded) {
        return false;
    }
    let dots = |seg: &str| seg == "." || seg == "..";
    // A segment is copied only when it may hide an encoded dot.
    !path.split('/').any(|seg| match seg.contains('%') {
        true => dots(&seg.to_ascii_lowercase().replace("%2e", ".")),
        false => dots(seg),
    })
}

/// Classifies `path`, relative to the SCIM base ("/Users/abc"). A trailing slash is tolerated;
/// anything else that is not a SCIM endpoint answers `None` (the caller's 404).
pub fn classify(path: &str) -> Option<Target<'_>> {
    let trimmed = path.strip_prefix('/').unwrap_or(path);
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    if trimmed.is_empty() {
        return Some(Target {
            endpoint: Endpoint::Root,
            id: None,
            search: false,
        });
    }
    let mut segments = trimmed.split('/');
    let first = segments.next()?;
    if first == ".search" {
        return segments.next().is_none().then_some(Target {
            endpoint: Endpoint::Root,
            id: None,
            search: true,
        });
    }
    let endpoint = Endpoint::from_segment(first)?;
    let second = segments.next();
    if segments.next().is_some() {
        return None;
    }
    match second {
        None => Some(Target {
            endpoint,
            id: None,
            search: false,
        }),
        // ".search" is never an id, even where no search is defined.
        Some(".search") => endpoint.takes_search().then_some(Target {
            endpoint,
            id: None,
            search: true,
        }),
        Some(raw) if endpoint.takes_id() && !raw.is_empty() => {
            let id = percent_decode(raw)?;
            // A decoded id is a name, never a path: it is put back into paths the proxy builds.
            if id.contains(['/', '\\']) || id == "." || id == ".." {
                return None;
            }
            Some(Target {
                endpoint,
                id: Some(id),
                search: false,
            })
        }
        Some(_) => None,
    }
}

/// Decodes `%XX` escapes (RFC 3986 §2.1). Unlike form decoding, `+` stays a plus. Malformed
/// escapes and escapes that do not decode to UTF-8 answer `None`.
pub(crate) fn percent_decode(raw: &str) -> Option<Cow<'_, str>> {
    if !raw.contains('%') {
        return Some(Cow::Borrowed(raw));
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(path: &str) -> (Endpoint, Option<String>, bool) {
        let t = classify(path).expect("classifies");
        (t.endpoint, t.id.map(Cow::into_owned), t.search)
    }

    #[test]
    fn method_tokens_are_case_sensitive() {
        assert_eq!(Method::parse("PATCH"), Some(Method::Patch));
        assert_eq!(Method::parse("patch"), None);
        assert_eq!(Method::parse("HEAD"), None);
        assert_eq!(Method::Delete.as_str(), "DELETE");
    }

    #[test]
    fn collection_and_resource_paths() {
        assert_eq!(target("/Users"), (Endpoint::Users, None, false));
        assert_eq!(target("/Users/"), (Endpoint::Users, None, false));
        assert_eq!(
            target("/Groups/abc"),
            (Endpoint::Groups, Some("abc".into()), false)
        );
        assert_eq!(
            target("/Users/abc/"),
            (Endpoint::Users, Some("abc".into()), false)
        );
    }

    #[test]
    fn search_paths_at_root_and_per_type() {
        assert_eq!(target("/.search"), (Endpoint::Root, None, true));
        assert_eq!(target("/"), (Endpoint::Root, None, false));
        assert_eq!(target(""), (Endpoint::Root, None, false));
        assert_eq!(target("/Users/.search"), (Endpoint::Users, None, true));
        assert!(classify("/Schemas/.search").is_none());
    }

    #[test]
    fn discovery_paths_take_urns_and_names() {
        assert_eq!(
            target("/Schemas/urn:ietf:params:scim:schemas:core:2.0:User"),
            (
                Endpoint::Schemas,
                Some(crate::scim::urn::USER.into()),
                false
            )
        );
        assert_eq!(
            target("/ResourceTypes/User"),
            (Endpoint::ResourceTypes, Some("User".into()), false)
        );
        assert_eq!(
            target("/ServiceProviderConfig"),
            (Endpoint::ServiceProviderConfig, None, false)
        );
        assert!(classify("/ServiceProviderConfig/x").is_none());
        assert!(classify("/Bulk/1").is_none());
    }

    #[test]
    fn ids_are_percent_decoded_but_plus_is_kept() {
        assert_eq!(
            target("/Users/a%20b+c"),
            (Endpoint::Users, Some("a b+c".into()), false)
        );
        assert_eq!(
            target("/Users/%C3%A9"),
            (Endpoint::Users, Some("é".into()), false)
        );
    }

    #[test]
    fn malformed_escapes_and_deep_paths_are_not_scim() {
        assert!(classify("/Users/%zz").is_none());
        assert!(classify("/Users/%4").is_none());
        assert!(classify("/Users/%FF").is_none());
        assert!(classify("/Users/a/b").is_none());
        assert!(classify("/Users//").is_none());
        assert!(classify("/.search/x").is_none());
    }

    #[test]
    fn endpoint_names_match_without_case_and_have_one_spelling() {
        let users = classify("/users/abc").expect("an endpoint");
        assert_eq!(
            (users.endpoint, users.id.as_deref()),
            (Endpoint::Users, Some("abc"))
        );
        let spc = classify("/serviceproviderconfig").expect("an endpoint");
        assert_eq!(spc.endpoint.segment(), Some("ServiceProviderConfig"));
        assert!(classify("/Nope").is_none());
    }

    #[test]
    fn paths_that_could_leave_the_base_are_unsafe() {
        for path in [
            "/..",
            "/Users/../x",
            "/./Users",
            "/%2e%2E/x",
            "/.%2e",
            "/%2E",
            "/Users/..;/..;/other",
            "/Users/..%2F..%2Fother",
            "/Users/..%2f",
            "/Users/..\\x",
            "/Users/%5c",
            "/Users/a%00",
            "/Users/x;jsessionid=1",
            "/Users/a\u{0}b",
        ] {
            assert!(!is_safe_path(path), "{path}");
        }
        for path in [
            "/Users",
            "/Users/a.b",
            "/...",
            "/Users/..x",
            "",
            "/Users/2819c223%2D7f76",
        ] {
            assert!(is_safe_path(path), "{path}");
        }
    }

    #[test]
    fn an_id_that_decodes_to_a_path_is_not_an_id() {
        assert!(classify("/Users/..%2Fx").is_none());
        assert!(classify("/Users/%2e%2e").is_none());
        assert!(classify("/Users/a%5Cb").is_none());
        assert_eq!(
            classify("/Users/a%20b").and_then(|t| t.id).as_deref(),
            Some("a b")
        );
    }
}
