//! Header hygiene at the proxy boundary: the IdP's credential never travels upstream, the
//! upstream learns who asked through `X-Forwarded-*`, and of the app's answer only the headers
//! that describe the SCIM answer reach the IdP (no cookies, server banners or internal headers).

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub const X_SCIMGATE_TENANT: HeaderName = HeaderName::from_static("x-scimgate-tenant");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// The answer headers that reach the IdP; every other header of the app's answer stays at the
/// proxy (`Set-Cookie`, `Server`, `X-Powered-By`, `X-Internal-*`, hop-by-hop headers, RFC 9110
/// §7.6.1). Left out on purpose: `Content-Encoding` (the proxy decodes every answer, so the
/// body it sends is never encoded), `WWW-Authenticate` (the app's challenge is for the proxy's
/// upstream credential, not the IdP's), `Content-Location` (it names the app).
const ANSWER_HEADERS: [HeaderName; 12] = [
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::CONTENT_LANGUAGE,
    header::ETAG,
    header::LOCATION,
    header::LAST_MODIFIED,
    header::RETRY_AFTER,
    header::CACHE_CONTROL,
    header::EXPIRES,
    header::PRAGMA,
    header::VARY,
    header::ALLOW,
];

/// Keeps only the answer headers the IdP may see (see [`ANSWER_HEADERS`]).
pub fn keep_answer_headers(headers: &mut HeaderMap) {
    if headers.keys().all(|name| ANSWER_HEADERS.contains(name)) {
        return;
    }
    // Most answers carry more headers to drop than to keep: the kept ones are copied into a
    // new map in one pass, rather than each other one looked up and taken out.
    let mut kept = HeaderMap::with_capacity(ANSWER_HEADERS.len());
    let mut current = None;
    // A header's values after its first come without its name.
    for (name, value) in std::mem::take(headers) {
        if let Some(name) = name {
            current = ANSWER_HEADERS.contains(&name).then_some(name);
        }
        if let Some(name) = &current {
            kept.append(name.clone(), value);
        }
    }
    *headers = kept;
}

/// Who asked, as the upstream is told.
pub struct Forwarded<'a> {
    /// The client's address, as a header value.
    pub client_ip: &'a HeaderValue,
    pub https: bool,
    pub host: Option<HeaderValue>,
    pub tenant: &'a str,
    pub request_id: &'a HeaderValue,
}

/// The IdP's headers that reach the upstream: what a SCIM request needs to be understood, and
/// trace context. Everything else stays at the proxy: method overrides and URL rewrites that
/// would let a request become another one, cookies and proxy headers a caller could spoof,
/// and `Accept-Encoding`: the proxy reads and rewrites answers, so it asks for them unencoded
/// (see [`for_upstream`]).
const FORWARDED_HEADERS: [HeaderName; 8] = [
    header::ACCEPT,
    header::ACCEPT_LANGUAGE,
    header::CONTENT_TYPE,
    header::IF_MATCH,
    header::IF_NONE_MATCH,
    header::USER_AGENT,
    HeaderName::from_static("traceparent"),
    HeaderName::from_static("tracestate"),
];

/// Rewrites a request's headers for the upstream: only the allowed ones of the IdP's, the
/// upstream credential in place of the IdP's, and the forwarding headers. `Host` comes from
/// the upstream URL and the body length from the body sent.
pub fn prepare_request(
    headers: &mut HeaderMap,
    credential: Option<&HeaderValue>,
    fwd: &Forwarded<'_>,
) {
    let incoming = std::mem::take(headers);
    *headers = for_upstream(&incoming, credential, fwd);
}

/// The headers the upstream gets for a request that came with `incoming`.
pub fn for_upstream(
    incoming: &HeaderMap,
    credential: Option<&HeaderValue>,
    fwd: &Forwarded<'_>,
) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(FORWARDED_HEADERS.len() + 6);
    // One pass over what came (a handful of headers), rather than a lookup per allowed name.
    let mut prior_xff = None;
    for (name, value) in incoming {
        if FORWARDED_HEADERS.contains(name) {
            headers.append(name.clone(), value.clone());
        } else if *name == X_FORWARDED_FOR && prior_xff.is_none() {
            prior_xff = value.to_str().ok();
        }
    }
    if let Some(credential) = credential {
        headers.insert(header::AUTHORIZATION, credential.clone());
    }
    // An app that compresses anyway is decoded (stage 10), but one that is asked not to spares
    // both sides the work (RFC 9110 §12.5.3).
    headers.insert(
        header::ACCEPT_ENCODING,
        HeaderValue::from_static("identity"),
    );
    let xff = match prior_xff {
        Some(prior) => {
            let ip = fwd.client_ip.to_str().unwrap_or_default();
            HeaderValue::try_from(format!("{prior}, {ip}")).ok()
        }
        None => Some(fwd.client_ip.clone()),
    };
    if let Some(v) = xff {
        headers.insert(X_FORWARDED_FOR, v);
    }
    let proto = if fwd.https { "https" } else { "http" };
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    if let Some(host) = &fwd.host {
        headers.insert(X_FORWARDED_HOST, host.clone());
    }
    if let Ok(v) = HeaderValue::from_str(fwd.tenant) {
        headers.insert(X_SCIMGATE_TENANT, v);
    }
    headers.insert(X_REQUEST_ID, fwd.request_id.clone());
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        h
    }

    #[test]
    fn only_answer_headers_reach_the_idp() {
        let mut h = headers(&[
            ("content-type", "application/scim+json"),
            ("etag", "W/\"1\""),
            ("vary", "Accept"),
            ("vary", "Origin"),
            ("set-cookie", "session=abc"),
            ("set-cookie", "theme=dark"),
            ("server", "Apache/2.4.1"),
            ("x-powered-by", "Express"),
            ("x-internal-node", "10.0.0.7"),
            ("www-authenticate", "Bearer realm=\"internal\""),
            ("content-encoding", "gzip"),
            ("connection", "keep-alive"),
            ("transfer-encoding", "chunked"),
        ]);
        keep_answer_headers(&mut h);
        let mut kept: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        kept.sort_unstable();
        assert_eq!(kept, ["content-type", "etag", "vary"]);
        assert_eq!(h.get_all("vary").iter().count(), 2);
        assert_eq!(
            h.len(),
            4,
            "no value of a dropped header follows a kept one"
        );
    }

    #[test]
    fn idp_token_is_replaced_and_forwarding_headers_are_set() {
        let mut h = headers(&[
            ("authorization", "Bearer idp-token"),
            ("host", "proxy.example"),
            ("x-forwarded-for", "203.0.113.9"),
            ("x-scimgate-tenant", "spoofed"),
            ("x-http-method-override", "DELETE"),
            ("x-original-url", "/admin"),
            ("accept-encoding", "gzip"),
            ("cookie", "session=1"),
            ("accept", "application/scim+json"),
            ("if-match", "W/\"3\""),
        ]);
        let id = HeaderValue::from_static("req-1");
        let fwd = Forwarded {
            client_ip: &HeaderValue::from_static("198.51.100.7"),
            https: true,
            host: Some(HeaderValue::from_static("proxy.example")),
            tenant: "acme",
            request_id: &id,
        };
        let cred = HeaderValue::from_static("Bearer upstream-token");
        prepare_request(&mut h, Some(&cred), &fwd);
        assert_eq!(h["authorization"], "Bearer upstream-token");
        assert_eq!(h["x-forwarded-for"], "203.0.113.9, 198.51.100.7");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-host"], "proxy.example");
        assert_eq!(h["x-scimgate-tenant"], "acme");
        assert_eq!(h["x-request-id"], "req-1");
        assert!(!h.contains_key("host"));
        for gone in ["x-http-method-override", "x-original-url", "cookie"] {
            assert!(!h.contains_key(gone), "{gone} was forwarded");
        }
        assert_eq!(h["accept-encoding"], "identity");
        assert_eq!(h["accept"], "application/scim+json");
        assert_eq!(h["if-match"], "W/\"3\"");
    }

    #[test]
    fn without_upstream_credential_no_authorization_is_sent() {
        let mut h = headers(&[("authorization", "Bearer idp-token")]);
        let id = HeaderValue::from_static("r");
        let fwd = Forwarded {
            client_ip: &HeaderValue::from_static("127.0.0.1"),
            https: false,
            host: None,
            tenant: "t",
            request_id: &id,
        };
        prepare_request(&mut h, None, &fwd);
        assert!(!h.contains_key("authorization"));
    }
}
