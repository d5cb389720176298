//! The hash chain and its keyed checkpoints. Every line is a JSON object that begins with its
//! sequence number and ends with the SHA-256 of the line before it (`"prev"`), so editing,
//! removing or reordering a line breaks the next one. A checkpoint line also ends with an
//! HMAC-SHA256 (`"mac"`) over everything before it, made with the operator's key: without the
//! key no one can rewrite the chain from an edited line onwards, nor seal a cut-off file.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The `prev` of the very first line of a log.
pub const GENESIS: [u8; 32] = [0; 32];

/// What precedes the MAC in a checkpoint line: the MAC covers every byte before it.
pub const MAC_FIELD: &str = ",\"mac\":\"";

type HmacSha256 = Hmac<Sha256>;

/// Where the chain stands: the next line's number and the hash of the last line written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain {
    pub next_seq: u64,
    pub prev: [u8; 32],
}

impl Default for Chain {
    fn default() -> Self {
        Self {
            next_seq: 0,
            prev: GENESIS,
        }
    }
}

impl Chain {
    /// Continues after `line` (its bytes without the newline), whose number was `seq`.
    pub fn after(seq: u64, line: &[u8]) -> Self {
        Self {
            next_seq: seq + 1,
            prev: hash(line),
        }
    }

    /// Chains an event: `fields` is a JSON object (`{"time":…}`); the line is the same object
    /// with `seq` first and `prev` last. Returns the line without its newline.
    pub fn link(&mut self, fields: &str) -> String {
        let line = self.frame(fields);
        self.advance(&line);
        line
    }

    /// Chains a checkpoint: as [`Self::link`], with the MAC over the line so far appended.
    pub fn seal(&mut self, fields: &str, key: &[u8]) -> String {
        let mut line = self.frame(fields);
        line.pop();
        let mac = hex::encode(mac(key, line.as_bytes()));
        line.push_str(MAC_FIELD);
        line.push_str(&mac);
        line.push_str("\"}");
        self.advance(&line);
        line
    }

    fn frame(&self, fields: &str) -> String {
        let inner = fields
            .trim()
            .strip_prefix('{')
            .and_then(|f| f.strip_suffix('}'))
            .unwrap_or_default();
        let sep = if inner.is_empty() { "" } else { "," };
        format!(
            "{{\"seq\":{}{sep}{inner},\"prev\":\"{}\"}}",
            self.next_seq,
            hex::encode(self.prev)
        )
    }

    fn advance(&mut self, line: &str) {
        self.prev = hash(line.as_bytes());
        self.next_seq += 1;
    }
}

pub fn hash(line: &[u8]) -> [u8; 32] {
    Sha256::digest(line).into()
}

fn mac(key: &[u8], bytes: &[u8]) -> [u8; 32] {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes a key of any length");
    m.update(bytes);
    m.finalize().into_bytes().into()
}

/// Whether a checkpoint line's MAC is the one `key` makes. `None`: the line has no MAC.
pub fn mac_matches(line: &str, key: &[u8]) -> Option<bool> {
    let at = line.rfind(MAC_FIELD)?;
    let given = line[at + MAC_FIELD.len()..].strip_suffix("\"}")?;
    let given = hex::decode(given).ok()?;
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes a key of any length");
    m.update(&line.as_bytes()[..at]);
    // Constant time: the comparison the crate makes.
    Some(m.verify_slice(&given).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_line_carries_the_hash_of_the_one_before() {
        let mut chain = Chain::default();
        let first = chain.link(r#"{"type":"change","id":"1"}"#);
        let second = chain.link(r#"{"type":"change","id":"2"}"#);
        assert!(first.starts_with(r#"{"seq":0,"type":"change","id":"1","prev":"0000"#));
        let v: serde_json::Value = serde_json::from_str(&second).unwrap();
        assert_eq!(v["seq"], 1);
        assert_eq!(v["prev"], hex::encode(hash(first.as_bytes())));
        assert_eq!(chain, Chain::after(1, second.as_bytes()));
    }

    #[test]
    fn a_checkpoint_is_sealed_with_the_key_and_fails_under_another_or_when_edited() {
        let mut chain = Chain::default();
        chain.link(r#"{"type":"change"}"#);
        let cp = chain.seal(r#"{"type":"checkpoint","reason":"shutdown"}"#, b"k1");
        let v: serde_json::Value = serde_json::from_str(&cp).unwrap();
        assert_eq!(v["reason"], "shutdown");
        assert_eq!(mac_matches(&cp, b"k1"), Some(true));
        assert_eq!(mac_matches(&cp, b"k2"), Some(false));
        let edited = cp.replace("shutdown", "periodic");
        assert_eq!(mac_matches(&edited, b"k1"), Some(false));
        assert_eq!(mac_matches(r#"{"seq":1}"#, b"k1"), None);
    }
}
