//! Error answers from the app that are not SCIM Errors (HTML pages, framework JSON, plain
//! text, empty bodies) rewritten into one (RFC 7644 §3.12); SCIM Errors kept to the members the
//! RFC defines, and a `detail` that holds a secret of the proxy's withheld whatever the status.

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Either, Full, Limited};
use serde_json::{Map, Value};

use crate::body::Body;
use crate::scim::error::{ScimError, ScimType};
use crate::scim::{urn, MEDIA_TYPE};

/// The largest upstream error body read for rewriting; past it, the text is not used.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// Upstream text longer than this is not put in `detail`.
const MAX_DETAIL: usize = 200;

/// The detail an IdP gets in place of app text that held a secret.
const WITHHELD: &str = "the application's error text is withheld: it held a credential";

/// The app's error answer as a SCIM Error, and whether its text was withheld because it held
/// one of `secrets` (the upstream credential the app was sent, which it may echo).
pub async fn rewrite(response: Response<Body>, secrets: &[&[u8]]) -> (Response<Body>, bool) {
    let (mut parts, body) = response.into_parts();
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // An unreadable or oversized error body still yields a SCIM Error, just without its text.
    let bytes = match Limited::new(body, MAX_ERROR_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::new(),
    };
    // An upstream 401 means the proxy's own upstream credential was refused: telling the IdP
    // its token is wrong would send its operators the wrong way.
    let status = match parts.status {
        StatusCode::UNAUTHORIZED => StatusCode::BAD_GATEWAY,
        s => StatusCode::from_u16(scim_status(s.as_u16()).0).unwrap_or(s),
    };
    let doc = match parts.status {
        StatusCode::UNAUTHORIZED => ScimError::new(
            502,
            "the application refused the proxy's upstream credential",
        )
        .to_json(),
        s => scim_error_body(s.as_u16(), content_type.as_deref(), &bytes),
    };
    let (doc, withheld) = match withhold_secrets(&doc, secrets) {
        Some(clean) => (clean, true),
        None => (doc, false),
    };
    parts.status = status;
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_ENCODING);
    parts.headers.remove(header::WWW_AUTHENTICATE);
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE));
    let response = Response::from_parts(parts, Either::Right(Full::new(Bytes::from(doc))));
    (response, withheld)
}

/// The error document with its `detail` replaced, when it holds any of `secrets` as written
/// or as JSON escapes it; `None` when it holds none.
fn withhold_secrets(doc: &[u8], secrets: &[&[u8]]) -> Option<Vec<u8>> {
    let holds = |secret: &&[u8]| {
        let escaped = std::str::from_utf8(secret)
            .ok()
            .and_then(|s| serde_json::to_string(s).ok())
            .map(|q| q.trim_matches('"').as_bytes().to_vec());
        memchr::memmem::find(doc, secret).is_some()
            || escaped.is_some_and(|e| memchr::memmem::find(doc, &e).is_some())
    };
    if !secrets.iter().any(holds) {
        return None;
    }
    let mut error: Value = serde_json::from_slice(doc).ok()?;
    error["detail"] = Value::from(WITHHELD);
    Some(serde_json::to_vec(&error).expect("a JSON value always serializes"))
}

/// The SCIM Error body for an upstream error answer: a SCIM Error kept (with its `status`
/// made the string RFC 7644 §3.12 asks for), anything else wrapped.
/// `status` is the app's; a status SCIM does not use becomes the one it does (see
/// [`scim_status`]).
pub fn scim_error_body(status: u16, content_type: Option<&str>, body: &[u8]) -> Vec<u8> {
    let (status, fallback) = scim_status(status);
    let wrap = |text: Option<&str>| ScimError::from_upstream(status, text, fallback).to_json();
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(doc)) if is_scim_error(&doc) => {
            normalize_scim_error(status, doc, fallback)
        }
        Ok(Value::Object(doc)) => wrap(json_message(&doc)),
        Ok(Value::String(s)) => wrap(Some(s.as_str())),
        Ok(_) => wrap(None),
        Err(_) if is_html(content_type, body) => wrap(None),
        Err(_) => wrap(std::str::from_utf8(body).ok()),
    }
}

/// The status and default `scimType` an IdP gets for an app's client error that SCIM does not
/// define (RFC 7644 §3.12 lists the statuses a SCIM server uses): 422 (a framework's
/// "unprocessable") is 400 `invalidValue`, 415 (the media type) is 400 `invalidSyntax`, 410
/// is 404. The app's own `scimType`, or one its text makes plain, wins over the default.
pub fn scim_status(status: u16) -> (u16, Option<ScimType>) {
    match status {
        422 => (400, Some(ScimType::InvalidValue)),
        415 => (400, Some(ScimType::InvalidSyntax)),
        410 => (404, None),
        s => (s, None),
    }
}

fn is_scim_error(doc: &Map<String, Value>) -> bool {
    doc.get("schemas")
        .and_then(Value::as_array)
        .is_some_and(|s| {
            s.iter().any(|u| {
                u.as_str()
                    .is_some_and(|u| u.eq_ignore_ascii_case(urn::ERROR))
            })
        })
}

fn normalize_scim_error(
    status: u16,
    doc: Map<String, Value>,
    fallback: Option<ScimType>,
) -> Vec<u8> {
    let member = |name: &str| {
        doc.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    };
    let text = member("detail").and_then(Value::as_str);
    let declared = member("scimType")
        .and_then(Value::as_str)
        .and_then(ScimType::from_keyword);
    // Only the members RFC 7644 §3.12 defines leave the proxy, and `detail` only when it is
    // short and printable, like any upstream text.
    let mut error = ScimError::from_upstream(status, text, fallback);
    error.scim_type = declared.or(error.scim_type);
    error.to_json()
}

/// The message a framework put in its own error JSON, under the names they commonly use.
fn json_message(doc: &Map<String, Value>) -> Option<&str> {
    [
        "detail",
        "message",
        "error_description",
        "error",
        "title",
        "errorMessage",
    ]
    .iter()
    .find_map(|k| match doc.get(*k)? {
        Value::String(s) => Some(s.as_str()),
        Value::Object(inner) => inner.get("message").and_then(Value::as_str),
        _ => None,
    })
}

fn is_html(content_type: Option<&str>, body: &[u8]) -> bool {
    content_type.is_some_and(|c| c.to_ascii_lowercase().contains("html"))
        || body.trim_ascii_start().starts_with(b"<")
}

impl ScimError {
    /// The error for an upstream answer: its text as `detail` when usable, else a default
    /// naming the status, with a `scimType` inferred from both.
    fn from_upstream(status: u16, text: Option<&str>, fallback: Option<ScimType>) -> Self {
        let text = text.map(str::trim).filter(|t| usable_detail(t));
        let detail = match text {
            Some(t) => t.to_owned(),
            None => {
                let reason = StatusCode::from_u16(status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("error");
                format!("the application answered {status} {reason}")
            }
        };
        ScimError {
            status,
            scim_type: infer_scim_type(status, text.unwrap_or_default()).or(fallback),
            detail,
        }
    }
}

/// Only short, printable text is passed on: a stack trace or a page of markup helps no IdP
/// operator and may leak internals.
fn usable_detail(text: &str) -> bool {
    !text.is_empty() && text.chars().count() <= MAX_DETAIL && !text.chars().any(char::is_control)
}

/// RFC 7644 §3.12's keywords where the status or the text makes the kind of failure plain.
fn infer_scim_type(status: u16, text: &str) -> Option<ScimType> {
    let text = text.to_ascii_lowercase();
    let says = |words: &[&str]| words.iter().any(|w| text.contains(w));
    match status {
        409 => Some(ScimType::Uniqueness),
        400 if says(&["already exist", "duplicate", "not unique", "uniqueness"]) => {
            Some(ScimType::Uniqueness)
        }
        400 if says(&["filter"]) => Some(ScimType::InvalidFilter),
        400 if says(&["json", "syntax", "parse", "malformed"]) => Some(ScimType::InvalidSyntax),
        400 if says(&["read-only", "readonly", "immutable"]) => Some(ScimType::Mutability),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(status: u16, ct: Option<&str>, body: &str) -> Value {
        serde_json::from_slice(&scim_error_body(status, ct, body.as_bytes())).expect("valid JSON")
    }

    #[test]
    fn framework_json_error_becomes_scim_error_with_uniqueness() {
        let d = doc(
            409,
            Some("application/json"),
            r#"{"error":"user already exists","code":"DUPLICATE"}"#,
        );
        assert_eq!(d["schemas"][0], urn::ERROR);
        assert_eq!(d["status"], "409");
        assert_eq!(d["scimType"], "uniqueness");
        assert_eq!(d["detail"], "user already exists");
    }

    #[test]
    fn html_page_is_not_echoed() {
        let d = doc(
            404,
            Some("text/html"),
            "<html><body><h1>404 Not Found</h1></body></html>",
        );
        assert_eq!(d["status"], "404");
        assert_eq!(d["detail"], "the application answered 404 Not Found");
    }

    #[test]
    fn short_plain_text_becomes_detail_and_long_text_does_not() {
        assert_eq!(
            doc(400, Some("text/plain"), "bad request")["detail"],
            "bad request"
        );
        let long = "x".repeat(500);
        assert_eq!(
            doc(500, None, &long)["detail"],
            "the application answered 500 Internal Server Error"
        );
        assert_eq!(
            doc(500, None, "line\u{7}bell")["detail"],
            "the application answered 500 Internal Server Error"
        );
    }

    #[test]
    fn empty_body_gets_a_default_detail() {
        let d = doc(500, None, "");
        assert_eq!(d["status"], "500");
        assert_eq!(
            d["detail"],
            "the application answered 500 Internal Server Error"
        );
    }

    #[test]
    fn scim_error_with_integer_status_gets_string_status_and_inferred_type() {
        // Okta's documentation shows `status` as a number; RFC 7644 §3.12 makes it a string.
        let body = r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":409,"detail":"taken"}"#;
        let d = doc(409, Some("application/scim+json"), body);
        assert_eq!(d["status"], "409");
        assert_eq!(d["scimType"], "uniqueness");
        assert_eq!(d["detail"], "taken");
    }

    #[test]
    fn an_upstream_scim_error_keeps_only_the_rfc_members_and_a_usable_detail() {
        let body = format!(
            r#"{{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"400","scimType":"invalidValue","detail":"{}","stack":"at com.example.Internal(…)","internalUrl":"http://10.0.0.7/x"}}"#,
            "x".repeat(300)
        );
        let d = doc(400, Some("application/scim+json"), &body);
        let keys: Vec<&String> = d.as_object().expect("object").keys().collect();
        assert_eq!(keys, ["detail", "schemas", "scimType", "status"]);
        assert_eq!(d["scimType"], "invalidValue");
        assert_eq!(d["detail"], "the application answered 400 Bad Request");
    }

    #[test]
    fn a_detail_holding_a_secret_is_withheld_and_others_are_kept() {
        let secret: &[u8] = b"up-s3cret/token";
        let leaky = scim_error_body(500, None, b"upstream refused Bearer up-s3cret/token");
        let clean = withhold_secrets(&leaky, &[secret]).expect("withheld");
        let d: Value = serde_json::from_slice(&clean).expect("JSON");
        assert_eq!(d["detail"], WITHHELD);
        assert_eq!(d["status"], "500");
        // JSON may write `/` as `\/`; the detail is compared as the IdP would read it.
        let escaped = br#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"detail":"up-s3cret\/token"}"#;
        let escaped = scim_error_body(409, Some("application/scim+json"), escaped);
        assert!(withhold_secrets(&escaped, &[secret]).is_some());
        let fine = scim_error_body(400, None, b"userName is required");
        assert!(withhold_secrets(&fine, &[secret]).is_none());
    }

    #[test]
    fn nested_framework_message_is_found() {
        let d = doc(
            422,
            None,
            r#"{"error":{"code":42,"message":"userName is required"}}"#,
        );
        assert_eq!(d["detail"], "userName is required");
        // SCIM has no 422 (RFC 7644 §3.12): the IdP gets 400 invalidValue.
        assert_eq!(d["status"], "400");
        assert_eq!(d["scimType"], "invalidValue");
    }

    #[test]
    fn bad_request_texts_map_to_scim_types() {
        assert_eq!(
            doc(400, None, r#"{"message":"Invalid filter expression"}"#)["scimType"],
            "invalidFilter"
        );
        assert_eq!(
            doc(400, None, "malformed JSON")["scimType"],
            "invalidSyntax"
        );
        assert_eq!(
            doc(400, None, "email already exists")["scimType"],
            "uniqueness"
        );
    }
}
