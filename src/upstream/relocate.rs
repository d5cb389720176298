//! The app's own base URL found in the bytes of its answers and replaced by the proxy's, so
//! that no `meta.location` (or any other text) shows the IdP the app's internal address. A
//! byte search built once per tenant; answers that do not contain the address are not parsed,
//! copied or changed. JSON may write `/` as `\/` (RFC 8259 §7), so that spelling is searched
//! for too.

use bytes::{Buf, Bytes, BytesMut};
use memchr::memmem::Finder;

use crate::body::Rewrite;

/// The upstream's base URL as two byte patterns: as written, and with JSON's `\/`.
pub struct BaseUrl {
    plain: Finder<'static>,
    escaped: Finder<'static>,
}

impl std::fmt::Debug for BaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BaseUrl")
            .field("plain", &String::from_utf8_lossy(self.plain.needle()))
            .finish_non_exhaustive()
    }
}

/// What the app's address becomes, in both spellings, for one request.
pub struct Public {
    plain: Vec<u8>,
    escaped: Vec<u8>,
}

impl Public {
    /// The proxy's base URL as the request reached it. It goes into JSON strings, so it is
    /// written as JSON would write it: a `Host` with a quote cannot end the string early.
    pub fn new(public_base: &str) -> Self {
        let json = serde_json::to_string(public_base).expect("a string always serializes");
        let plain = json.as_bytes()[1..json.len() - 1].to_vec();
        let escaped = String::from_utf8_lossy(&plain)
            .replace('/', "\\/")
            .into_bytes();
        Self { plain, escaped }
    }
}

/// One occurrence of the base URL: where it starts, how long it is, which spelling.
#[derive(Clone, Copy)]
struct Found {
    at: usize,
    len: usize,
    escaped: bool,
}

impl BaseUrl {
    /// `base` is the upstream's `scheme://authority/path`, without a trailing slash.
    pub fn new(base: &str) -> Self {
        let escaped = base.replace('/', "\\/");
        Self {
            plain: Finder::new(base.as_bytes()).into_owned(),
            escaped: Finder::new(escaped.as_bytes()).into_owned(),
        }
    }

    /// The longest pattern: how much of a chunk's end may be the start of an occurrence.
    fn longest(&self) -> usize {
        self.escaped.needle().len()
    }

    /// Whether `bytes` name the app's address anywhere (a cheap test before any copy).
    pub fn occurs_in(&self, bytes: &[u8]) -> bool {
        self.plain.find(bytes).is_some() || self.escaped.find(bytes).is_some()
    }

    /// `bytes` with every occurrence replaced, or `None` when there is none.
    pub fn replace_all(&self, bytes: &[u8], public: &Public) -> Option<Vec<u8>> {
        if !self.occurs_in(bytes) {
            return None;
        }
        let mut out = Vec::with_capacity(bytes.len() + 64);
        self.rewrite(bytes, &mut out, public, true);
        Some(out)
    }

    /// Copies `buf` into `out` with occurrences replaced, and returns how much of `buf` it
    /// consumed. Unless `last`, the end of `buf` that may be the start of an occurrence (or an
    /// occurrence whose next byte is not there yet) is left for the next call.
    fn rewrite(&self, buf: &[u8], out: &mut Vec<u8>, public: &Public, last: bool) -> usize {
        let find = |finder: &Finder<'_>, from: usize, escaped: bool| {
            finder.find(&buf[from..]).map(|i| Found {
                at: from + i,
                len: finder.needle().len(),
                escaped,
            })
        };
        let (mut plain, mut escaped) = (find(&self.plain, 0, false), find(&self.escaped, 0, true));
        let mut pos = 0;
        loop {
            let next = match (plain, escaped) {
                (Some(p), Some(e)) => Some(if p.at < e.at { p } else { e }),
                (p, e) => p.or(e),
            };
            let Some(found) = next else { break };
            let end = found.at + found.len;
            if !last && end >= buf.len() {
                // The byte after it decides whether it is the address; wait for it.
                out.extend_from_slice(&buf[pos..found.at]);
                return found.at;
            }
            out.extend_from_slice(&buf[pos..found.at]);
            if buf.get(end).is_some_and(|&b| continues_url(b)) {
                // `http://app:3000` in `http://app:30001/…` is another address.
                out.extend_from_slice(&buf[found.at..end]);
            } else if found.escaped {
                out.extend_from_slice(&public.escaped);
            } else {
                out.extend_from_slice(&public.plain);
            }
            pos = end;
            // Each pattern is searched again only once passed: a list of a hundred resources
            // is scanned twice in all, not twice per resource.
            if plain.is_some_and(|p| p.at < pos) {
                plain = find(&self.plain, pos, false);
            }
            if escaped.is_some_and(|e| e.at < pos) {
                escaped = find(&self.escaped, pos, true);
            }
        }
        let keep = if last {
            buf.len()
        } else {
            pos.max(buf.len().saturating_sub(self.longest() - 1))
        };
        out.extend_from_slice(&buf[pos..keep]);
        keep
    }
}

/// A byte that would make the text go on as the same host, port or path segment.
fn continues_url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'%')
}

/// The rewrite of a streamed answer: each chunk rewritten as it passes, with the end that
/// may be cut in the middle of the address carried over to the next chunk.
pub struct Relocating {
    base: std::sync::Arc<BaseUrl>,
    public: Public,
    carried: BytesMut,
}

impl Relocating {
    pub fn new(base: std::sync::Arc<BaseUrl>, public: Public) -> Self {
        Self {
            base,
            public,
            carried: BytesMut::new(),
        }
    }
}

impl Rewrite for Relocating {
    fn chunk(&mut self, data: Bytes) -> Bytes {
        self.carried.extend_from_slice(&data);
        let mut out = Vec::with_capacity(self.carried.len());
        let used = self
            .base
            .rewrite(&self.carried, &mut out, &self.public, false);
        self.carried.advance(used);
        Bytes::from(out)
    }

    fn finish(&mut self) -> Bytes {
        let mut out = Vec::with_capacity(self.carried.len());
        self.base
            .rewrite(&self.carried, &mut out, &self.public, true);
        self.carried.clear();
        Bytes::from(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP: &str = "http://10.0.0.7:3000/scim/v2";
    const PROXY: &str = "https://scim.example.com/acme";

    fn replaced(body: &str) -> String {
        let base = BaseUrl::new(APP);
        let out = base.replace_all(body.as_bytes(), &Public::new(PROXY));
        String::from_utf8(out.unwrap_or_else(|| body.as_bytes().to_vec())).expect("text")
    }

    #[test]
    fn every_occurrence_in_either_spelling_names_the_proxy() {
        let body = r#"{"meta":{"location":"http://10.0.0.7:3000/scim/v2/Users/1"},"x":"http:\/\/10.0.0.7:3000\/scim\/v2\/Groups\/2","y":"see http://10.0.0.7:3000/scim/v2"}"#;
        assert_eq!(
            replaced(body),
            r#"{"meta":{"location":"https://scim.example.com/acme/Users/1"},"x":"https:\/\/scim.example.com\/acme\/Groups\/2","y":"see https://scim.example.com/acme"}"#
        );
    }

    #[test]
    fn a_longer_address_that_starts_like_the_app_is_kept() {
        let body =
            r#"{"a":"http://10.0.0.7:3000/scim/v2x/Users","b":"http://10.0.0.7:3000/scim/v2"}"#;
        assert_eq!(
            replaced(body),
            r#"{"a":"http://10.0.0.7:3000/scim/v2x/Users","b":"https://scim.example.com/acme"}"#
        );
    }

    #[test]
    fn an_answer_without_the_address_is_left_alone() {
        let base = BaseUrl::new(APP);
        let body = br#"{"meta":{"location":"https://elsewhere.example/Users/1"}}"#;
        assert!(base.replace_all(body, &Public::new(PROXY)).is_none());
    }

    #[test]
    fn a_host_with_a_quote_cannot_break_the_json_string() {
        let base = BaseUrl::new(APP);
        let body = br#"{"l":"http://10.0.0.7:3000/scim/v2/Users/1"}"#;
        let out = base
            .replace_all(body, &Public::new("http://evil\",\"x\":\"/p"))
            .expect("replaced");
        let doc: serde_json::Value = serde_json::from_slice(&out).expect("still JSON");
        assert_eq!(doc["l"], "http://evil\",\"x\":\"/p/Users/1");
        assert!(doc.get("x").is_none());
    }

    #[test]
    fn an_address_cut_across_chunks_at_every_place_is_replaced() {
        let body = r#"{"Resources":[{"meta":{"location":"http://10.0.0.7:3000/scim/v2/Users/1"}},{"l":"http:\/\/10.0.0.7:3000\/scim\/v2"},{"l":"http://10.0.0.7:3000/scim/v2"}]}"#;
        let whole = replaced(body);
        let base = std::sync::Arc::new(BaseUrl::new(APP));
        for a in 0..body.len() {
            for b in [a, (a + 7).min(body.len()), (a + 40).min(body.len())] {
                let mut r = Relocating::new(base.clone(), Public::new(PROXY));
                let mut out = Vec::new();
                for part in [&body[..a], &body[a..b], &body[b..]] {
                    out.extend_from_slice(&r.chunk(Bytes::copy_from_slice(part.as_bytes())));
                }
                out.extend_from_slice(&r.finish());
                assert_eq!(
                    String::from_utf8(out).expect("text"),
                    whole,
                    "cut at {a}, {b}"
                );
            }
        }
    }
}
