//! Header hygiene at the proxy boundary: hop-by-hop headers go (RFC 9110 §7.6.1), the IdP's
//! credential never travels upstream, and the upstream learns who asked through `X-Forwarded-*`.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub const X_SCIMGATE_TENANT: HeaderName = HeaderName::from_static("x-scimgate-tenant");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1, RFC 9112 §9.6).
const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHORIZATION,
    header::PROXY_AUTHENTICATE,
];

/// Removes the hop-by-hop headers, including any the `Connection` header names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    if let Some(listed) = headers.get(header::CONNECTION) {
        let named: Vec<HeaderName> = listed
            .to_str()
            .unwrap_or_default()
            .split(',')
            .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
            .collect();
        for name in named {
            headers.remove(name);
        }
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Who asked, as the upstream is told.
pub struct Forwarded<'a> {
    pub client_ip: std::net::IpAddr,
    pub https: bool,
    pub host: Option<HeaderValue>,
    pub tenant: &'a str,
    pub request_id: &'a HeaderValue,
}

/// The IdP's headers that reach the upstream: what a SCIM request needs to be understood, and
/// trace context. Everything else stays at the proxy: method overrides and URL rewrites that
/// would let a request become another one, cookies and proxy headers a caller could spoof,
/// and `Accept-Encoding`, because the proxy reads and rewrites answers.
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
    for name in &FORWARDED_HEADERS {
        for value in incoming.get_all(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    if let Some(credential) = credential {
        headers.insert(header::AUTHORIZATION, credential.clone());
    }
    let ip = fwd.client_ip.to_string();
    let xff = match incoming.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
        Some(prior) => format!("{prior}, {ip}"),
        None => ip,
    };
    if let Ok(v) = HeaderValue::try_from(xff) {
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
    fn headers_named_by_connection_are_removed_with_the_fixed_set() {
        let mut h = headers(&[
            ("connection", "keep-alive, x-secret-hop"),
            ("x-secret-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("upgrade", "h2c"),
            ("accept", "application/scim+json"),
        ]);
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("accept"));
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
            client_ip: "198.51.100.7".parse().expect("ip"),
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
        for gone in [
            "x-http-method-override",
            "x-original-url",
            "accept-encoding",
            "cookie",
        ] {
            assert!(!h.contains_key(gone), "{gone} was forwarded");
        }
        assert_eq!(h["accept"], "application/scim+json");
        assert_eq!(h["if-match"], "W/\"3\"");
    }

    #[test]
    fn without_upstream_credential_no_authorization_is_sent() {
        let mut h = headers(&[("authorization", "Bearer idp-token")]);
        let id = HeaderValue::from_static("r");
        let fwd = Forwarded {
            client_ip: [127, 0, 0, 1].into(),
            https: false,
            host: None,
            tenant: "t",
            request_id: &id,
        };
        prepare_request(&mut h, None, &fwd);
        assert!(!h.contains_key("authorization"));
    }
}
