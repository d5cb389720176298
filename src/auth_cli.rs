//! What `scimgate check` says of a tenant's authentication: each method it accepts, in words
//! an operator can hold against the IdP's settings.

use scimgate::config::{JwksFrom, TenantConfig, TokenKey};

/// One line per method beyond the bearer-token count (which the tenant's line gives).
pub fn explain(t: &TenantConfig, token_key: Option<&TokenKey>) -> Vec<String> {
    let mut lines = Vec::new();
    let schemes = &t.schemes;
    let alternatives = !t.auth.bearer.is_empty() as usize
        + !schemes.basic.is_empty() as usize
        + schemes.jwt.is_some() as usize
        + schemes.oauth.is_some() as usize;
    if alternatives > 1 {
        lines.push(
            "auth: any one of the Authorization methods below (or a bearer token) will do".into(),
        );
    }
    if !schemes.basic.is_empty() {
        let users: Vec<&str> = schemes.basic.iter().map(|u| &*u.username).collect();
        let expiring = schemes
            .basic
            .iter()
            .filter(|u| u.not_after.is_some())
            .count();
        let bcrypt = schemes
            .basic
            .iter()
            .filter(|u| scimgate::auth::secret::is_bcrypt(&u.hash))
            .count();
        let hashes = match (bcrypt, schemes.basic.len() - bcrypt) {
            (0, _) => "argon2".to_owned(),
            (_, 0) => "bcrypt".to_owned(),
            (b, a) => format!("{a} argon2, {b} bcrypt"),
        };
        lines.push(format!(
            "auth: HTTP Basic for user(s) {} ({hashes}, {expiring} with an expiry)",
            users.join(", ")
        ));
    }
    if let Some(j) = &schemes.jwt {
        let algs: Vec<String> = j.algorithms.iter().map(|a| format!("{a:?}")).collect();
        let keys = match &j.keys {
            JwksFrom::File { path, set } => {
                format!("{} key(s) from {}", set.keys.len(), path.display())
            }
            JwksFrom::Url { url, ca: None } => {
                format!("keys fetched from {url} (refreshed hourly)")
            }
            JwksFrom::Url { url, ca: Some(ca) } => format!(
                "keys fetched from {url} (refreshed hourly, server checked against the CA in {})",
                ca.display()
            ),
        };
        let subjects = match j.subjects.len() {
            0 => "any subject".to_owned(),
            _ => format!("subject(s) {}", j.subjects.join(", ")),
        };
        lines.push(format!(
            "auth: JWT bearer tokens of issuer {} for audience {}, {}, {keys}, {subjects}, leeway {}",
            j.issuer,
            j.audience.join(" or "),
            algs.join("/"),
            humantime::format_duration(j.leeway)
        ));
    }
    if let Some(o) = &schemes.oauth {
        let clients: Vec<&str> = o.clients.iter().map(|c| &*c.client_id).collect();
        let path = match &t.route {
            scimgate::config::Route::PathPrefix(p) => format!("/{p}/oauth/token"),
            scimgate::config::Route::Host(h) => format!("https://{h}/oauth/token"),
        };
        let key = match token_key {
            Some(k) => format!("the key in {}", k.path.display()),
            None => "this process's own key (server.token_key_file is not set)".to_owned(),
        };
        lines.push(format!(
            "auth: OAuth client credentials at {path} for client(s) {}; tokens last {}, signed with {key}",
            clients.join(", "),
            humantime::format_duration(o.token_ttl)
        ));
    }
    if let Some(m) = &t.auth.mtls {
        let mut names: Vec<String> = m.subject_cn.iter().map(|c| format!("CN {c}")).collect();
        names.extend(m.san.iter().map(|s| format!("SAN {s}")));
        let mut trust = match &m.trust {
            Some(ca) if ca.crls.is_empty() => format!("issued by the CA in {}", ca.ca.display()),
            Some(ca) => format!(
                "issued by the CA in {}, checked against {} CRL file(s)",
                ca.ca.display(),
                ca.crls.len()
            ),
            None => "issued by a CA of server.tls.client_ca".to_owned(),
        };
        if !m.issuers.is_empty() {
            let pins: Vec<String> = m
                .issuers
                .iter()
                .map(|p| {
                    let whence = match p.known {
                        Some(_) => "in a CA file",
                        None => "sent by clients",
                    };
                    format!("{} ({whence})", hex::encode(p.sha256))
                })
                .collect();
            trust.push_str(&format!(
                ", under the CA with SHA-256 {}",
                pins.join(" or ")
            ));
        }
        let and = if alternatives > 0 { "and " } else { "" };
        lines.push(format!(
            "auth: {and}a client certificate naming {}, {trust}",
            names.join(" or ")
        ));
    }
    lines
}
