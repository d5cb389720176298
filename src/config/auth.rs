//! A tenant's `auth` table → [`AuthConfig`] and [`AuthSchemes`]: static bearer tokens, client
//! certificates, HTTP Basic users, JWTs of an outside issuer and the OAuth token endpoint.
//! Files named here (CAs, CRLs, key sets) are read now, so a bad one stops the load.

use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::Algorithm;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer};
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use toml::Spanned;

use super::raw::*;
use super::validate::{valid_label, Checker};
use super::*;
use crate::auth::anchor;
use crate::auth::jwks::MAX_JWKS_BYTES;
use crate::auth::secret;
use crate::conn::San;

/// Clocks of an issuer and of the proxy disagree by seconds, not minutes.
const MAX_LEEWAY: Duration = Duration::from_secs(300);
const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(3600);
const MIN_TOKEN_TTL: Duration = Duration::from_secs(60);

/// Fewer bytes than this are no key to sign with.
const MIN_TOKEN_KEY_BYTES: usize = 32;

/// The next [`MtlsRule::check_id`]: process-wide, so no two loads share one.
static NEXT_CHECK_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// 32 bytes in hex, upper or lower case, optionally with ':' between bytes as OpenSSL prints
/// fingerprints.
fn parse_fingerprint(s: &str) -> Option<[u8; 32]> {
    let hex: String = s.trim().chars().filter(|&c| c != ':').collect();
    let mut out = [0u8; 32];
    hex::decode_to_slice(&hex, &mut out).ok()?;
    Some(out)
}

impl Checker<'_> {
    /// `server.token_key_file`: at least 32 bytes (surrounding whitespace aside), used as the
    /// SHA-256 of its content.
    pub(super) fn token_key(&mut self, f: &Spanned<PathBuf>) -> Option<TokenKey> {
        let path = self.file_path(f, "server.token_key_file");
        let content = std::fs::read(&path).unwrap_or_default();
        let secret = content.trim_ascii();
        if secret.len() < MIN_TOKEN_KEY_BYTES {
            let msg = format!("expected at least {MIN_TOKEN_KEY_BYTES} bytes of secret, such as the output of `openssl rand -hex 32`");
            self.problem(f.span(), "server.token_key_file", msg);
            return None;
        }
        let key =
            sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(secret)).into();
        Some(TokenKey { path, key })
    }

    pub(super) fn auth(
        &mut self,
        a: &RawAuth,
        ctx: &str,
        at: Range<usize>,
    ) -> (AuthConfig, AuthSchemes) {
        let bearer = a
            .bearer
            .iter()
            .enumerate()
            .filter_map(|(i, b)| self.bearer(b, &format!("{ctx}: auth.bearer[{i}]")))
            .collect();
        let mtls = a.mtls.as_ref().map(|m| self.mtls(m, ctx));
        let basic = a
            .basic
            .iter()
            .enumerate()
            .filter_map(|(i, b)| self.basic(b, &format!("{ctx}: auth.basic[{i}]")))
            .collect();
        let jwt = a.jwt.as_ref().and_then(|j| self.jwt(j, ctx));
        let oauth = a.oauth.as_ref().and_then(|o| self.oauth(o, ctx));
        if a.bearer.is_empty()
            && a.mtls.is_none()
            && a.basic.is_empty()
            && a.jwt.is_none()
            && a.oauth.is_none()
        {
            self.problem(
                at,
                &format!("{ctx}: auth"),
                "configure auth.bearer, auth.basic, auth.jwt, auth.oauth or auth.mtls: a tenant is never open to anyone",
            );
        }
        (
            AuthConfig { bearer, mtls },
            AuthSchemes { basic, jwt, oauth },
        )
    }

    fn mtls(&mut self, m: &Spanned<RawMtls>, ctx: &str) -> MtlsRule {
        let key = format!("{ctx}: auth.mtls");
        let raw = m.get_ref();
        if raw.subject_cn.is_empty() && raw.san.is_empty() {
            self.problem(
                m.span(),
                &key,
                "list at least one subject_cn or san to accept",
            );
        }
        let mut san = Vec::with_capacity(raw.san.len());
        for s in &raw.san {
            match San::parse(s) {
                Some(s) => san.push(s),
                None => {
                    let msg = format!("san {s:?}: expected a typed name such as \"dns:okta.example.com\", \"uri:spiffe://example.com/okta\" or \"email:scim@example.com\"");
                    self.problem(m.span(), &key, msg);
                }
            }
        }
        if !self.client_ca && raw.client_ca.is_none() {
            // Without a CA the handshake never asks for a certificate, so every request to
            // the tenant would be refused.
            let msg = "needs server.tls.client_ca or auth.mtls.client_ca: without one no client certificate reaches the proxy and every request to this tenant is refused";
            self.problem(m.span(), &key, msg);
        } else if !self.tls {
            let msg = "needs server.tls: client certificates come only over TLS";
            self.problem(m.span(), &key, msg);
        }
        if raw.client_ca.is_none() {
            if let Some(crl) = raw.crl.first() {
                let msg = "needs auth.mtls.client_ca: revocation lists are checked against the tenant's own CA";
                self.problem(crl.span(), &format!("{key}.crl"), msg);
            }
        }
        let trust = raw
            .client_ca
            .as_ref()
            .and_then(|ca| self.tenant_ca(ca, &raw.crl, &key));
        let issuers = match &raw.issuer_sha256 {
            Some(pins) => self.issuer_pins(pins, trust.as_ref(), &key),
            None => Vec::new(),
        };
        MtlsRule {
            subject_cn: raw.subject_cn.clone(),
            san,
            trust,
            issuers,
            check_id: NEXT_CHECK_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// `auth.mtls.issuer_sha256`: each a SHA-256 fingerprint, looked up in the CA files the
    /// handshake uses (the listener's `client_ca`, the tenant's own) so that a pinned root is
    /// known now; a pin found in neither must name an intermediate CA that clients send.
    fn issuer_pins(
        &mut self,
        pins: &Spanned<OneOrMany>,
        trust: Option<&TenantCa>,
        key: &str,
    ) -> Vec<IssuerPin> {
        let key = format!("{key}.issuer_sha256");
        let listed = match pins.get_ref() {
            OneOrMany::One(p) => vec![p.clone()],
            OneOrMany::Many(p) => p.clone(),
        };
        if listed.is_empty() {
            let msg = "an empty list would refuse every certificate; leave the key out to accept any CA of the handshake";
            self.problem(pins.span(), &key, msg);
        }
        let files: Vec<PathBuf> = self
            .listener_ca
            .iter()
            .cloned()
            .chain(trust.map(|t| t.ca.clone()))
            .collect();
        let known: Vec<CertificateDer<'static>> = files
            .iter()
            .filter_map(|f| CertificateDer::pem_file_iter(f).ok())
            .flat_map(|it| it.filter_map(Result::ok))
            .collect();
        let mut out = Vec::with_capacity(listed.len());
        for pin in &listed {
            let Some(sha256) = parse_fingerprint(pin) else {
                let msg = format!("{pin:?}: expected the SHA-256 fingerprint of the CA's certificate: 64 hex characters, with or without ':' between bytes (`openssl x509 -in ca.pem -noout -fingerprint -sha256`)");
                self.problem(pins.span(), &key, msg);
                continue;
            };
            let known = match known.iter().find(|c| anchor::fingerprint(c) == sha256) {
                None => None,
                Some(ca) => match anchor::verifier_anchored_at(ca) {
                    Ok(v) => Some(v),
                    Err(why) => {
                        self.problem(pins.span(), &key, format!("{pin:?}: {why}"));
                        continue;
                    }
                },
            };
            out.push(IssuerPin { sha256, known });
        }
        out
    }

    /// Reads the tenant's CA and CRLs into a verifier; the listener is told of the CA too.
    fn tenant_ca(
        &mut self,
        ca: &Spanned<PathBuf>,
        crls: &[Spanned<PathBuf>],
        key: &str,
    ) -> Option<TenantCa> {
        let ca_path = self.file_path(ca, &format!("{key}.client_ca"));
        let mut roots = RootCertStore::empty();
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&ca_path)
            .map(|it| it.filter_map(Result::ok).collect())
            .unwrap_or_default();
        let (added, _) = roots.add_parsable_certificates(certs);
        if added == 0 {
            self.problem(
                ca.span(),
                &format!("{key}.client_ca"),
                "no usable PEM certificate in it",
            );
            return None;
        }
        let mut crl_paths = Vec::new();
        let mut crl_ders = Vec::new();
        for crl in crls {
            let path = self.file_path(crl, &format!("{key}.crl"));
            match CertificateRevocationListDer::pem_file_iter(&path)
                .map(|it| it.collect::<Result<Vec<_>, _>>())
            {
                Ok(Ok(ders)) if !ders.is_empty() => crl_ders.extend(ders),
                _ => {
                    let msg =
                        "expected a PEM certificate revocation list (-----BEGIN X509 CRL-----)";
                    self.problem(crl.span(), &format!("{key}.crl"), msg);
                }
            }
            crl_paths.push(path);
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let built = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .with_crls(crl_ders)
            // The CA's own CRL speaks for the certificates it issued; intermediates are not
            // required to have one.
            .only_check_end_entity_revocation()
            .build();
        match built {
            Ok(verifier) => {
                self.tenant_cas.push(ca_path.clone());
                Some(TenantCa {
                    ca: ca_path,
                    crls: crl_paths,
                    verifier,
                })
            }
            Err(e) => {
                self.problem(ca.span(), &format!("{key}.client_ca"), e);
                None
            }
        }
    }

    fn bearer(&mut self, b: &RawBearer, key: &str) -> Option<BearerToken> {
        let mut sha256 = [0u8; 32];
        if hex::decode_to_slice(b.sha256.get_ref(), &mut sha256).is_err() {
            let msg =
                "expected the token's SHA-256 as 64 hex characters (see `scimgate token new`)";
            self.problem(b.sha256.span(), &format!("{key}.sha256"), msg);
            return None;
        }
        let not_after = self.not_after(b.not_after.as_ref(), key)?;
        let label = match &b.label {
            None => format!("sha256:{}", &b.sha256.get_ref()[..12].to_ascii_lowercase()),
            Some(l) if valid_label(l.get_ref()) => l.get_ref().clone(),
            Some(l) => {
                let msg = "expected 1 to 64 printable characters (letters, digits, '-', '_', '.', ':', '@')";
                self.problem(l.span(), &format!("{key}.label"), msg);
                return None;
            }
        };
        Some(BearerToken {
            sha256,
            label: label.into(),
            not_after,
        })
    }

    /// `None` when the time is given but malformed (the problem is recorded).
    fn not_after(
        &mut self,
        v: Option<&Spanned<String>>,
        key: &str,
    ) -> Option<Option<OffsetDateTime>> {
        let Some(t) = v else { return Some(None) };
        match OffsetDateTime::parse(t.get_ref(), &Rfc3339) {
            Ok(t) => Some(Some(t)),
            Err(_) => {
                let msg = "expected an RFC 3339 time such as \"2027-06-30T00:00:00Z\"";
                self.problem(t.span(), &format!("{key}.not_after"), msg);
                None
            }
        }
    }

    fn basic(&mut self, b: &Spanned<RawBasic>, key: &str) -> Option<BasicUser> {
        let raw = b.get_ref();
        let username = raw.username.get_ref();
        // RFC 7617 §2: the user-id cannot contain a colon; it names the user in logs too.
        if !valid_label(username) {
            let msg = "expected 1 to 64 letters, digits, '-', '_', '.', '@' (no ':')";
            self.problem(raw.username.span(), &format!("{key}.username"), msg);
        } else if username.contains(':') {
            let msg = "a Basic user name cannot contain ':' (RFC 7617 §2)";
            self.problem(raw.username.span(), &format!("{key}.username"), msg);
        }
        let hash = match (&raw.argon2, &raw.bcrypt) {
            (Some(a), None) => self.argon2(a, &format!("{key}.argon2")),
            (None, Some(b)) => self.bcrypt(b, &format!("{key}.bcrypt")),
            (Some(_), Some(b)) => {
                let msg = "give argon2 or bcrypt, not both";
                self.problem(b.span(), &format!("{key}.bcrypt"), msg);
                None
            }
            (None, None) => {
                let msg = "needs argon2 (`scimgate token hash-secret`) or bcrypt: the hash of the password";
                self.problem(b.span(), key, msg);
                None
            }
        };
        let not_after = self.not_after(raw.not_after.as_ref(), key)?;
        Some(BasicUser {
            username: username.as_str().into(),
            hash: hash?,
            not_after,
        })
    }

    fn bcrypt(&mut self, v: &Spanned<String>, key: &str) -> Option<Arc<str>> {
        match secret::check_bcrypt(v.get_ref()) {
            Ok(()) => Some(v.get_ref().as_str().into()),
            Err(why) => {
                self.problem(v.span(), key, why);
                None
            }
        }
    }

    fn argon2(&mut self, v: &Spanned<String>, key: &str) -> Option<Arc<str>> {
        match secret::check_phc(v.get_ref()) {
            Ok(()) => Some(v.get_ref().as_str().into()),
            Err(why) => {
                let msg = format!("{why} (make one with `scimgate token hash-secret`)");
                self.problem(v.span(), key, msg);
                None
            }
        }
    }

    fn jwt(&mut self, j: &Spanned<RawJwt>, ctx: &str) -> Option<JwtRule> {
        let key = |k: &str| format!("{ctx}: auth.jwt.{k}");
        let raw = j.get_ref();
        let issuer = raw.issuer.get_ref().clone();
        if issuer.is_empty() {
            self.problem(
                raw.issuer.span(),
                &key("issuer"),
                "expected the issuer's `iss` value",
            );
        }
        let audience = match raw.audience.get_ref() {
            OneOrMany::One(a) => vec![a.clone()],
            OneOrMany::Many(a) => a.clone(),
        };
        if audience.is_empty() || audience.iter().any(String::is_empty) {
            let msg = "expected the `aud` value(s) tokens for this tenant carry";
            self.problem(raw.audience.span(), &key("audience"), msg);
        }
        let algorithms = self.algorithms(raw.algorithms.as_ref(), &key("algorithms"));
        let leeway = match &raw.leeway {
            None => DEFAULT_LEEWAY,
            Some(v) => match humantime::parse_duration(v.get_ref()) {
                Ok(d) if d <= MAX_LEEWAY => d,
                _ => {
                    let msg = "expected a duration of at most \"5m\", such as \"60s\" or \"0s\"";
                    self.problem(v.span(), &key("leeway"), msg);
                    DEFAULT_LEEWAY
                }
            },
        };
        let subjects = raw
            .subjects
            .as_ref()
            .map(|s| s.get_ref().clone())
            .unwrap_or_default();
        if raw
            .subjects
            .as_ref()
            .is_some_and(|s| s.get_ref().is_empty())
        {
            let msg =
                "an empty list would refuse every token; leave the key out to accept any subject";
            self.problem(j.span(), &key("subjects"), msg);
        }
        let keys = self.jwks_from(raw, j.span(), ctx)?;
        Some(JwtRule {
            issuer,
            audience,
            algorithms,
            keys,
            leeway,
            subjects,
        })
    }

    fn algorithms(&mut self, v: Option<&Spanned<Vec<String>>>, key: &str) -> Vec<Algorithm> {
        let Some(v) = v else {
            return vec![Algorithm::RS256];
        };
        let mut out = Vec::new();
        for name in v.get_ref() {
            match name.parse::<Algorithm>() {
                Ok(a) if crate::auth::jwt::asymmetric(a) => out.push(a),
                _ => {
                    let msg = format!("{name:?}: expected public-key algorithms among RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA");
                    self.problem(v.span(), key, msg);
                }
            }
        }
        if v.get_ref().is_empty() {
            self.problem(v.span(), key, "list at least one algorithm");
        }
        out
    }

    /// `auth.jwt.jwks_ca`: PEM certificates, for an https `jwks_url` only.
    fn jwks_ca(&mut self, ca: &Spanned<PathBuf>, url: &Uri, key: &str) -> Option<PathBuf> {
        let key = format!("{key}.jwks_ca");
        let path = self.file_path(ca, &key);
        if url.scheme_str() != Some("https") {
            let msg = "has no effect: the jwks_url is plain http (loopback), which has no server certificate to check";
            self.problem(ca.span(), &key, msg);
            return None;
        }
        let certs = CertificateDer::pem_file_iter(&path)
            .map(|it| it.filter_map(Result::ok).collect::<Vec<_>>())
            .unwrap_or_default();
        let mut roots = RootCertStore::empty();
        if path.is_file() && roots.add_parsable_certificates(certs).0 == 0 {
            let msg = "no usable PEM certificate in it (-----BEGIN CERTIFICATE-----)";
            self.problem(ca.span(), &key, msg);
            return None;
        }
        Some(path)
    }

    fn jwks_from(&mut self, raw: &RawJwt, at: Range<usize>, ctx: &str) -> Option<JwksFrom> {
        let key = format!("{ctx}: auth.jwt");
        if let (Some(ca), None) = (&raw.jwks_ca, &raw.jwks_url) {
            let msg = "needs jwks_url: the CA checks the server the keys are fetched from";
            self.problem(ca.span(), &format!("{key}.jwks_ca"), msg);
        }
        match (&raw.jwks_file, &raw.jwks_url) {
            (Some(f), None) => {
                let path = self.file_path(f, &format!("{key}.jwks_file"));
                let text = std::fs::read(&path).unwrap_or_default();
                if text.len() > MAX_JWKS_BYTES {
                    let msg = format!("larger than {MAX_JWKS_BYTES} bytes");
                    self.problem(f.span(), &format!("{key}.jwks_file"), msg);
                    return None;
                }
                match serde_json::from_slice::<JwkSet>(&text) {
                    Ok(set) if !set.keys.is_empty() => Some(JwksFrom::File {
                        path,
                        set: Arc::new(set),
                    }),
                    _ => {
                        let msg = "expected a JSON Web Key Set ({\"keys\": [...]}, RFC 7517 §5) with at least one key";
                        self.problem(f.span(), &format!("{key}.jwks_file"), msg);
                        None
                    }
                }
            }
            (None, Some(u)) => match crate::auth::jwks::parse_url(u.get_ref()) {
                Ok(url) => {
                    let ca = raw
                        .jwks_ca
                        .as_ref()
                        .and_then(|ca| self.jwks_ca(ca, &url, &key));
                    Some(JwksFrom::Url { url, ca })
                }
                Err(msg) => {
                    self.problem(u.span(), &format!("{key}.jwks_url"), msg);
                    None
                }
            },
            (Some(_), Some(u)) => {
                let msg = "give jwks_file or jwks_url, not both";
                self.problem(u.span(), &format!("{key}.jwks_url"), msg);
                None
            }
            (None, None) => {
                let msg = "needs jwks_file or jwks_url: the keys the issuer signs with";
                self.problem(at, &key, msg);
                None
            }
        }
    }

    fn oauth(&mut self, o: &Spanned<RawOAuth>, ctx: &str) -> Option<OAuthRule> {
        let key = format!("{ctx}: auth.oauth");
        let raw = o.get_ref();
        if raw.clients.is_empty() {
            self.problem(
                o.span(),
                &format!("{key}.clients"),
                "list at least one client",
            );
        }
        let mut ids = std::collections::HashSet::new();
        let mut clients = Vec::with_capacity(raw.clients.len());
        for (i, c) in raw.clients.iter().enumerate() {
            let at = format!("{key}.clients[{i}]");
            let id = c.client_id.get_ref();
            if !valid_label(id) {
                let msg = "expected 1 to 64 letters, digits, '-', '_', '.', ':', '@'";
                self.problem(c.client_id.span(), &format!("{at}.client_id"), msg);
            } else if !ids.insert(id.clone()) {
                let msg = format!("client {id:?} is listed twice");
                self.problem(c.client_id.span(), &format!("{at}.client_id"), msg);
            }
            if let Some(argon2) = self.argon2(&c.argon2, &format!("{at}.argon2")) {
                clients.push(OAuthClient {
                    client_id: id.as_str().into(),
                    argon2,
                });
            }
        }
        let token_ttl = match &raw.token_ttl {
            None => DEFAULT_TOKEN_TTL,
            Some(v) => {
                let d = self.duration(
                    &Some(v.clone()),
                    &format!("{key}.token_ttl"),
                    DEFAULT_TOKEN_TTL,
                );
                if d < MIN_TOKEN_TTL {
                    let msg = "expected at least \"1m\": an IdP fetches a token before each sync, not before each request";
                    self.problem(v.span(), &format!("{key}.token_ttl"), msg);
                }
                d
            }
        };
        Some(OAuthRule { clients, token_ttl })
    }
}
