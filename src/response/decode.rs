//! Answers the app compressed although the proxy asked for `identity` (RFC 9110 §12.5.3):
//! decoded before anything reads them, so that `returned: never` attributes are found and
//! removed and the app's address is replaced. An encoding the proxy cannot decode, or a body
//! that does not decode within bounds, is refused: passed on unread, it could carry a
//! password to the IdP.

use std::io::Read;

use bytes::Bytes;
use http::header::{self, HeaderMap};
use http::{Method, Response, StatusCode};
use http_body_util::{Either, Full};

use crate::body::{self, Body};
use crate::ctx::RequestCtx;
use crate::scim::error::ScimError;
use crate::upstream::UpstreamError;

/// Why an encoded answer was not decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error(
        "the application answered with Content-Encoding {0:?}, which the proxy does not decode"
    )]
    Unsupported(String),
    #[error("the application's {coding} answer does not decode: {source}")]
    Corrupt {
        coding: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("the application's answer decodes to more than {} MiB", .0 >> 20)]
    TooLarge(usize),
}

/// The answer with an unencoded body. `max` bounds both the encoded and the decoded size.
pub async fn unencoded(
    ctx: &RequestCtx,
    response: Response<Body>,
    max: usize,
) -> Result<Response<Body>, UpstreamError> {
    let Some(coding) = coding(response.headers()) else {
        return Ok(response);
    };
    let (mut parts, body) = response.into_parts();
    parts.headers.remove(header::CONTENT_ENCODING);
    let bodiless = ctx.method == Method::HEAD
        || matches!(
            parts.status,
            StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED
        );
    if coding == "identity" || bodiless {
        return Ok(Response::from_parts(parts, body));
    }
    let (bytes, _held) = ctx
        .snapshot
        .buffers
        .read(body, max)
        .await
        .map_err(UpstreamError::from)?;
    match decode(&coding, &bytes, max) {
        Ok(decoded) => {
            parts.headers.remove(header::CONTENT_LENGTH);
            let body = Either::Right(Full::new(decoded));
            Ok(Response::from_parts(parts, body))
        }
        Err(e) => Ok(refuse(ctx, &e)),
    }
}

/// The answer's content coding, lower case; `None` when it has none.
fn coding(headers: &HeaderMap) -> Option<String> {
    let all: Vec<&[u8]> = headers
        .get_all(header::CONTENT_ENCODING)
        .iter()
        .map(|v| v.as_bytes().trim_ascii())
        .collect();
    if all.is_empty() {
        return None;
    }
    // Several codings, in one line or several, are not decoded: refused as unknown.
    let joined = all.join(&b","[..]);
    Some(String::from_utf8_lossy(&joined).to_ascii_lowercase())
}

/// `bytes` decoded as `coding` says, at most `max` bytes of it.
pub fn decode(coding: &str, bytes: &[u8], max: usize) -> Result<Bytes, DecodeError> {
    if bytes.is_empty() {
        return Ok(Bytes::new());
    }
    match coding {
        "gzip" | "x-gzip" => read_all("gzip", flate2::read::MultiGzDecoder::new(bytes), max),
        // RFC 9110 §8.4.1.2: "deflate" is the zlib format; some servers send raw deflate.
        "deflate" => read_all("deflate", flate2::read::ZlibDecoder::new(bytes), max)
            .or_else(|_| read_all("deflate", flate2::read::DeflateDecoder::new(bytes), max)),
        other => Err(DecodeError::Unsupported(other.to_owned())),
    }
}

fn read_all(coding: &'static str, reader: impl Read, max: usize) -> Result<Bytes, DecodeError> {
    let mut out = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    reader
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|source| DecodeError::Corrupt { coding, source })?;
    if out.len() > max {
        return Err(DecodeError::TooLarge(max));
    }
    Ok(Bytes::from(out))
}

/// 502: the app answered, but nothing of what it said can be checked before the IdP sees it.
fn refuse(ctx: &RequestCtx, e: &DecodeError) -> Response<Body> {
    tracing::warn!(
        request_id = ctx.id.to_str().unwrap_or_default(),
        tenant = ctx.tenant_id(),
        error = %e,
        "the application's encoded answer is withheld"
    );
    let error = ScimError::new(502, format!("the application's answer is withheld: {e}"));
    body::full(
        StatusCode::BAD_GATEWAY,
        crate::scim::MEDIA_TYPE,
        error.to_json(),
    )
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).expect("in memory");
        e.finish().expect("in memory")
    }

    #[test]
    fn gzip_and_both_kinds_of_deflate_are_decoded() {
        let body = br#"{"userName":"b","password":"s3cret"}"#;
        assert_eq!(
            decode("gzip", &gzip(body), 1 << 20).expect("gzip"),
            &body[..]
        );
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(body).expect("in memory");
        let zlib = z.finish().expect("in memory");
        assert_eq!(decode("deflate", &zlib, 1 << 20).expect("zlib"), &body[..]);
        let mut d = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        d.write_all(body).expect("in memory");
        let raw = d.finish().expect("in memory");
        assert_eq!(decode("deflate", &raw, 1 << 20).expect("raw"), &body[..]);
    }

    #[test]
    fn unknown_corrupt_and_oversized_bodies_are_refused() {
        assert!(matches!(
            decode("br", b"\x0b\x02\x80", 1 << 20),
            Err(DecodeError::Unsupported(_))
        ));
        assert!(matches!(
            decode("gzip", b"not gzip at all", 1 << 20),
            Err(DecodeError::Corrupt { .. })
        ));
        let bomb = gzip(&vec![b'a'; 4096]);
        assert!(matches!(
            decode("gzip", &bomb, 1024),
            Err(DecodeError::TooLarge(1024))
        ));
    }
}
