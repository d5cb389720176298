//! OAuth 2.0 client credentials (RFC 6749 §4.4), for IdPs that fetch a token before they
//! provision: the tenant's token endpoint (`<tenant>/oauth/token`) trades a client id and
//! secret for a short-lived access token signed by the proxy, which that tenant (and no other)
//! then accepts as a bearer token.
//!
//! The signing key is `server.token_key_file`'s (shared by replicas, and surviving restarts),
//! else made at random when the process starts. Either is kept across reloads while it stays
//! the same, so a reload leaves issued tokens valid; a random key ends them at a restart (an
//! IdP answered 401 fetches a new token). Each tenant signs with its own key derived from it,
//! and a token names its tenant in `aud`.

use base64::Engine;
use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use subtle::ConstantTimeEq;

use super::mtls;
pub use super::signer::{is_ours, Signer};
use crate::body::{self, Body};
use crate::config::OAuthClient;
use crate::ctx::{Principal, RequestCtx};

/// Where below its prefix (or host) a tenant serves its token endpoint.
pub const TOKEN_PATH: &str = "/oauth/token";
/// A token request is a few form fields.
const MAX_REQUEST_BYTES: usize = 8 * 1024;

/// Whether this request is for the routed tenant's token endpoint.
pub fn is_token_request(ctx: &RequestCtx) -> bool {
    ctx.tenant().schemes.oauth.is_some() && ctx.path() == TOKEN_PATH
}

/// An RFC 6749 §5.2 error: the code the client reads, and the reason the log keeps.
struct Refused {
    status: StatusCode,
    code: &'static str,
    reason: String,
}

fn refused(status: StatusCode, code: &'static str, reason: impl Into<String>) -> Refused {
    Refused {
        status,
        code,
        reason: reason.into(),
    }
}

/// Serves the token endpoint. `Err` carries whether the caller's client credentials were
/// refused, which counts as a failed authentication.
pub async fn serve(ctx: &mut RequestCtx, body: Incoming) -> (Response<Body>, bool) {
    match token(ctx, body).await {
        Ok(response) => (response, false),
        Err(r) => {
            ctx.record.error = Some(format!("token endpoint: {}: {}", r.code, r.reason));
            let failed_auth = r.code == "invalid_client";
            (error_response(&r), failed_auth)
        }
    }
}

async fn token(ctx: &mut RequestCtx, body: Incoming) -> Result<Response<Body>, Refused> {
    let bad = |reason: &str| refused(StatusCode::BAD_REQUEST, "invalid_request", reason);
    let tenant = ctx.tenant().clone();
    let rule = tenant
        .schemes
        .oauth
        .as_ref()
        .ok_or_else(|| bad("no token endpoint"))?;
    // RFC 6749 §3.2: the client MUST use POST.
    if ctx.method != Method::POST {
        return Err(bad("the token endpoint takes POST"));
    }
    // A tenant that wants a client certificate wants it here too.
    if let Some(m) = &tenant.auth.mtls {
        mtls::check(m, ctx.conn.peer(), ctx.conn.verdicts())
            .map_err(|e| refused(StatusCode::UNAUTHORIZED, "invalid_client", e.to_string()))?;
    }
    let form = read_form(ctx, body).await?;
    match form.get("grant_type") {
        Some("client_credentials") => {}
        Some(_) => {
            let unsupported = "unsupported_grant_type";
            return Err(refused(
                StatusCode::BAD_REQUEST,
                unsupported,
                "only client_credentials",
            ));
        }
        None => return Err(bad("grant_type is missing")),
    }
    let header = ctx.headers.get(header::AUTHORIZATION).map(|v| v.as_bytes());
    let (id, secret) = client_credentials(header, &form)?;
    let services = ctx.snapshot.auth.clone();
    let client = find(&rule.clients, &id);
    let invalid = |reason: &str| refused(StatusCode::UNAUTHORIZED, "invalid_client", reason);
    let busy = || {
        refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "busy",
        )
    };
    let Some(client) = client else {
        services
            .secrets
            .waste(rule.clients.first().map(|c| &c.argon2), secret.as_bytes())
            .await
            .map_err(|_| busy())?;
        return Err(invalid("no such client"));
    };
    let scope = format!("{}/oauth/{}", tenant.id, client.client_id);
    let ok = services
        .secrets
        .verify(&scope, &client.argon2, secret.as_bytes())
        .await
        .map_err(|_| busy())?;
    if !ok {
        return Err(invalid("wrong client secret"));
    }
    let token = services
        .signer
        .issue(&tenant.id, &client.client_id, rule.token_ttl)
        .map_err(|e| refused(StatusCode::INTERNAL_SERVER_ERROR, "server_error", e))?;
    ctx.principal = Some(Principal {
        token: Some(format!("oauth:{}", client.client_id).into()),
        certificate: None,
    });
    // RFC 6749 §5.1.
    let doc = serde_json::json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": rule.token_ttl.as_secs(),
    });
    Ok(json_response(StatusCode::OK, &doc))
}

/// The form body (RFC 6749 §4.4.2, `application/x-www-form-urlencoded`), each field at most once.
async fn read_form(ctx: &RequestCtx, body: Incoming) -> Result<Form, Refused> {
    let bad = |reason: &str| refused(StatusCode::BAD_REQUEST, "invalid_request", reason);
    let form_type = ctx
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form_type {
        return Err(bad(
            "expected Content-Type: application/x-www-form-urlencoded",
        ));
    }
    let read = Limited::new(body, MAX_REQUEST_BYTES).collect();
    let bytes: Bytes = tokio::time::timeout(ctx.snapshot.server.read_timeout, read)
        .await
        .map_err(|_| bad("the body did not arrive in time"))?
        .map_err(|_| bad("the body is too large or broken"))?
        .to_bytes();
    let mut fields: Vec<(String, String)> = Vec::new();
    for (k, v) in form_urlencoded::parse(&bytes) {
        // RFC 6749 §3.2: parameters MUST NOT be included more than once.
        if fields.iter().any(|(seen, _)| *seen == k) {
            return Err(bad("a parameter is given twice"));
        }
        fields.push((k.into_owned(), v.into_owned()));
    }
    Ok(Form(fields))
}

struct Form(Vec<(String, String)>);

impl Form {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The client's id and secret: HTTP Basic with both form-encoded (RFC 6749 §2.3.1), or
/// `client_id` and `client_secret` in the body; not both (§2.3).
fn client_credentials(header: Option<&[u8]>, form: &Form) -> Result<(String, String), Refused> {
    let bad = |reason: &str| refused(StatusCode::BAD_REQUEST, "invalid_request", reason);
    let invalid = |reason: &str| refused(StatusCode::UNAUTHORIZED, "invalid_client", reason);
    let in_body = (form.get("client_id"), form.get("client_secret"));
    match (super::Credential::parse(header), in_body) {
        (super::Credential::Basic(encoded), (None, None)) => {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|_| invalid("Basic credentials are not base64"))?;
            let text = String::from_utf8(decoded).map_err(|_| invalid("not UTF-8"))?;
            let (id, secret) = text.split_once(':').ok_or_else(|| invalid("no ':'"))?;
            let decode = |s: &str| {
                form_urlencoded::parse(format!("v={s}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            };
            Ok((decode(id), decode(secret)))
        }
        (super::Credential::Missing, (Some(id), Some(secret))) => {
            Ok((id.to_owned(), secret.to_owned()))
        }
        (super::Credential::Missing, (None, None)) => Err(invalid("no client credentials")),
        (super::Credential::Missing, _) => Err(invalid("client_id or client_secret is missing")),
        _ => Err(bad("client credentials given in more than one way")),
    }
}

fn find<'a>(clients: &'a [OAuthClient], id: &str) -> Option<&'a OAuthClient> {
    let mut found = None;
    for c in clients {
        if bool::from(c.client_id.as_bytes().ct_eq(id.as_bytes())) {
            found = Some(c);
        }
    }
    found
}

fn error_response(r: &Refused) -> Response<Body> {
    let mut response = json_response(r.status, &serde_json::json!({ "error": r.code }));
    let headers = response.headers_mut();
    if r.status == StatusCode::UNAUTHORIZED {
        // RFC 6749 §5.2: invalid_client answers name the scheme the client may use.
        headers.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"scim\", charset=\"UTF-8\""),
        );
    }
    if r.status == StatusCode::SERVICE_UNAVAILABLE {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(1));
    }
    response
}

/// RFC 6749 §5.1: JSON, never cached.
fn json_response(status: StatusCode, doc: &serde_json::Value) -> Response<Body> {
    let bytes = serde_json::to_vec(doc).expect("a JSON value always serializes");
    let mut response = body::full(status, "application/json", bytes);
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::OAuthRule;

    fn rule(clients: &[&str]) -> OAuthRule {
        OAuthRule {
            clients: clients
                .iter()
                .map(|c| OAuthClient {
                    client_id: (*c).into(),
                    argon2: "unused".into(),
                })
                .collect(),
            token_ttl: Duration::from_secs(60),
        }
    }

    #[test]
    fn an_issued_token_opens_its_tenant_only() {
        let signer = Signer::random().expect("random");
        let token = signer
            .issue("acme", "ping", Duration::from_secs(60))
            .expect("issued");
        assert!(is_ours(&token));
        assert_eq!(
            signer.verify(&token, "acme", &rule(&["ping"])).as_deref(),
            Ok("oauth:ping")
        );
        assert!(signer.verify(&token, "globex", &rule(&["ping"])).is_err());
        assert!(
            signer.verify(&token, "acme", &rule(&["other"])).is_err(),
            "a removed client's tokens end"
        );
        let other_process = Signer::random().expect("random");
        assert!(other_process
            .verify(&token, "acme", &rule(&["ping"]))
            .is_err());
    }

    #[test]
    fn body_and_basic_client_credentials_are_read_but_not_both() {
        let form = |pairs: &[(&str, &str)]| {
            Form(
                pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            )
        };
        let body = form(&[("client_id", "ping"), ("client_secret", "s")]);
        let (id, secret) = client_credentials(None, &body).ok().expect("read");
        assert_eq!((id.as_str(), secret.as_str()), ("ping", "s"));
        // "pi ng" and "s:x" form-encoded, then base64 (RFC 6749 §2.3.1).
        let encoded = base64::engine::general_purpose::STANDARD.encode("pi+ng:s%3Ax");
        let header = format!("Basic {encoded}");
        let (id, secret) = client_credentials(Some(header.as_bytes()), &form(&[]))
            .ok()
            .expect("read");
        assert_eq!((id.as_str(), secret.as_str()), ("pi ng", "s:x"));
        let both = client_credentials(Some(header.as_bytes()), &body);
        assert_eq!(both.err().map(|r| r.code), Some("invalid_request"));
        let none = client_credentials(None, &form(&[]));
        assert_eq!(none.err().map(|r| r.code), Some("invalid_client"));
    }
}
