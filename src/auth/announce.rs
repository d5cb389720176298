//! What a tenant tells an IdP about its authentication in its ServiceProviderConfig
//! (`authenticationSchemes`, RFC 7643 §5): the schemes its `auth` table really accepts, and
//! nothing it does not.

use crate::config::{AuthConfig, AuthSchemes};
use crate::scim::discovery::AuthenticationScheme;

/// One entry per `Authorization` scheme the tenant takes, the bearer one first and marked
/// primary when there is one: static tokens, JWTs of an outside issuer and tokens of the
/// tenant's own OAuth endpoint are all `oauthbearertoken` on the wire. A tenant that takes only
/// a client certificate announces none (RFC 7643 names no type for it).
pub fn schemes(auth: &AuthConfig, schemes: &AuthSchemes) -> Vec<AuthenticationScheme> {
    let mut out = Vec::new();
    let mut bearer = Vec::new();
    if !auth.bearer.is_empty() {
        bearer.push("a static token".to_owned());
    }
    if let Some(jwt) = &schemes.jwt {
        bearer.push(format!("a JWT of issuer {}", jwt.issuer));
    }
    if schemes.oauth.is_some() {
        bearer.push(
            "a token of this tenant's OAuth endpoint (oauth/token, client credentials)".to_owned(),
        );
    }
    if !bearer.is_empty() {
        let mut scheme = AuthenticationScheme::oauth_bearer_token();
        scheme.description = format!("OAuth 2.0 bearer token: {}", bearer.join(", or "));
        out.push(scheme);
    }
    if !schemes.basic.is_empty() {
        out.push(AuthenticationScheme::http_basic());
    }
    if let Some(first) = out.first_mut() {
        first.primary = true;
    }
    if auth.mtls.is_some() {
        for s in &mut out {
            s.description
                .push_str("; with a client certificate (mutual TLS)");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BasicUser, BearerToken, MtlsRule, OAuthRule};

    fn bearer() -> AuthConfig {
        AuthConfig {
            bearer: vec![BearerToken {
                sha256: [0; 32],
                label: "t".into(),
                not_after: None,
            }],
            mtls: None,
        }
    }

    fn basic() -> AuthSchemes {
        AuthSchemes {
            basic: vec![BasicUser {
                username: "okta".into(),
                hash: "$2b$04$…".into(),
                not_after: None,
            }],
            ..AuthSchemes::default()
        }
    }

    fn kinds(list: &[AuthenticationScheme]) -> Vec<(&str, bool)> {
        list.iter().map(|s| (s.kind.as_str(), s.primary)).collect()
    }

    #[test]
    fn a_bearer_tenant_announces_only_bearer_tokens() {
        let list = schemes(&bearer(), &AuthSchemes::default());
        assert_eq!(kinds(&list), [("oauthbearertoken", true)]);
        assert!(list[0].description.contains("static token"));
    }

    #[test]
    fn a_basic_only_tenant_announces_http_basic_as_primary() {
        let list = schemes(&AuthConfig::default(), &basic());
        assert_eq!(kinds(&list), [("httpbasic", true)]);
        assert_eq!(
            list[0].spec_uri.as_deref(),
            Some("https://www.rfc-editor.org/info/rfc7617")
        );
    }

    #[test]
    fn bearer_and_basic_are_both_announced_bearer_first() {
        let mut with_oauth = basic();
        with_oauth.oauth = Some(OAuthRule {
            clients: vec![],
            token_ttl: std::time::Duration::from_secs(60),
        });
        let list = schemes(&AuthConfig::default(), &with_oauth);
        assert_eq!(
            kinds(&list),
            [("oauthbearertoken", true), ("httpbasic", false)]
        );
        assert!(list[0].description.contains("OAuth endpoint"));
    }

    #[test]
    fn a_certificate_only_tenant_announces_no_header_scheme() {
        let auth = AuthConfig {
            bearer: vec![],
            mtls: Some(MtlsRule::default()),
        };
        assert!(schemes(&auth, &AuthSchemes::default()).is_empty());
        let both = AuthConfig {
            mtls: Some(MtlsRule::default()),
            ..bearer()
        };
        assert!(schemes(&both, &AuthSchemes::default())[0]
            .description
            .contains("client certificate"));
    }
}
