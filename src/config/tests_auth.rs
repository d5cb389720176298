//! Validation of a tenant's `auth` table: each method's keys, and the problem text for each
//! mistake.

use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use super::*;

/// A tenant "a" with `auth`, in a folder holding `jwks.json` with one key.
fn load_in(dir: &Path, auth: &str) -> Result<Config, ConfigError> {
    std::fs::write(
        dir.join("jwks.json"),
        r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#,
    )
    .expect("written");
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n\n[[tenant]]\nid = \"a\"\nroute = {{ path_prefix = \"/a\" }}\nupstream = {{ url = \"memory:\" }}\n{auth}\n"
    );
    Config::from_toml(&text, &dir.join("c.toml"))
}

fn problems(auth: &str) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    match load_in(dir.path(), auth) {
        Ok(_) => panic!("expected problems in:\n{auth}"),
        Err(e) => e.to_string(),
    }
}

const PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$0eeXTHjpB9oXLIWwdGugVw$2ezGEm/74JsXZuzYwhI8Mk8QIdzTHHP07lZL6+nk/ew";

#[test]
fn a_tenant_may_take_basic_jwt_and_oauth_at_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let auth = format!(
        "auth.basic = [{{ username = \"okta\", argon2 = \"{PHC}\" }}, {{ username = \"okta\", argon2 = \"{PHC}\", not_after = \"2027-01-01T00:00:00Z\" }}]\n\
         auth.jwt = {{ issuer = \"https://issuer.test\", audience = [\"api://a\", \"api://b\"], algorithms = [\"ES256\", \"RS256\"], jwks_file = \"jwks.json\", leeway = \"30s\" }}\n\
         auth.oauth = {{ clients = [{{ client_id = \"ping\", argon2 = \"{PHC}\" }}], token_ttl = \"15m\" }}"
    );
    let config = load_in(dir.path(), &auth).expect("valid");
    let s = &config.tenants[0].schemes;
    assert_eq!(s.basic.len(), 2);
    let jwt = s.jwt.as_ref().expect("jwt");
    assert_eq!(jwt.audience, ["api://a", "api://b"]);
    assert_eq!(jwt.leeway, Duration::from_secs(30));
    assert!(matches!(&jwt.keys, JwksFrom::File { set, .. } if set.keys.len() == 1));
    let oauth = s.oauth.as_ref().expect("oauth");
    assert_eq!(oauth.token_ttl, Duration::from_secs(900));
}

#[test]
fn basic_wants_an_argon2_hash_and_a_name_without_colon() {
    let err = problems(
        "auth.basic = [{ username = \"ok:ta\", argon2 = \"9f86d081884c7d659a2feaa0c55ad015\" }]",
    );
    assert!(
        err.contains(
            "c.toml:8: tenant \"a\": auth.basic[0].username: a Basic user name cannot contain ':'"
        ),
        "{err}"
    );
    assert!(
        err.contains("auth.basic[0].argon2: expected an argon2 PHC string"),
        "{err}"
    );
    assert!(err.contains("scimgate token hash-secret"), "{err}");
}

/// A bcrypt hash of "pw" at cost 4, made the way a system exporting its users would.
fn bcrypt_of(pw: &str) -> String {
    bcrypt::hash_with_salt(pw, 4, *b"saltsaltsaltsalt")
        .expect("hashed")
        .format_for_version(bcrypt::Version::TwoY)
}

#[test]
fn basic_takes_a_bcrypt_hash_instead_of_argon2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let hash = bcrypt_of("pw");
    let auth = format!(
        "auth.basic = [{{ username = \"okta\", bcrypt = \"{hash}\" }}, {{ username = \"ping\", argon2 = \"{PHC}\" }}]"
    );
    let config = load_in(dir.path(), &auth).expect("valid");
    let users = &config.tenants[0].schemes.basic;
    assert_eq!(&*users[0].hash, hash.as_str());
    assert_eq!(&*users[1].hash, PHC);
}

#[test]
fn a_malformed_or_doubled_basic_hash_is_refused_with_its_reason() {
    let hash = bcrypt_of("pw");
    let err = problems(&format!(
        "auth.basic = [{{ username = \"a\", bcrypt = \"{}\" }}, {{ username = \"b\", bcrypt = \"{}\" }}, {{ username = \"c\", bcrypt = \"{hash}\", argon2 = \"{PHC}\" }}, {{ username = \"d\" }}, {{ username = \"e\", bcrypt = \"{PHC}\" }}]",
        &hash[..hash.len() - 2],
        hash.replacen("$04$", "$20$", 1),
    ));
    for expected in [
        "auth.basic[0].bcrypt: expected a bcrypt hash such as \"$2b$12$\"",
        "auth.basic[1].bcrypt: bcrypt cost 20 is too costly to check per request (at most 14)",
        "auth.basic[2].bcrypt: give argon2 or bcrypt, not both",
        "auth.basic[3]: needs argon2 (`scimgate token hash-secret`) or bcrypt",
        "auth.basic[4].bcrypt: expected a bcrypt hash such as \"$2b$12$\" followed by 53 characters of salt and hash ($2a$, $2b$ or $2y$)",
    ] {
        assert!(err.contains(expected), "{expected}\n{err}");
    }
}

#[test]
fn jwks_ca_applies_to_an_https_jwks_url_only() {
    let dir = tempfile::tempdir().expect("temp dir");
    crate::certs::write_dev_certs(
        dir.path(),
        &crate::certs::DevNames {
            server_names: &["localhost".to_owned()],
            client_cns: &[],
            tenants: &[],
        },
    )
    .expect("certificates");
    let ok = "auth.jwt = { issuer = \"i\", audience = \"a\", jwks_url = \"https://keys.example.com/k\", jwks_ca = \"ca.pem\" }";
    let config = load_in(dir.path(), ok).expect("valid");
    let jwt = config.tenants[0].schemes.jwt.as_ref().expect("jwt");
    assert!(
        matches!(&jwt.keys, JwksFrom::Url { ca: Some(ca), .. } if ca.ends_with("ca.pem")),
        "{:?}",
        jwt.keys
    );
    for (auth, expected) in [
        (
            "auth.jwt = { issuer = \"i\", audience = \"a\", jwks_url = \"http://127.0.0.1:1/k\", jwks_ca = \"ca.pem\" }",
            "auth.jwt.jwks_ca: has no effect: the jwks_url is plain http",
        ),
        (
            "auth.jwt = { issuer = \"i\", audience = \"a\", jwks_file = \"jwks.json\", jwks_ca = \"ca.pem\" }",
            "auth.jwt.jwks_ca: needs jwks_url",
        ),
        (
            "auth.jwt = { issuer = \"i\", audience = \"a\", jwks_url = \"https://keys.example.com/k\", jwks_ca = \"jwks.json\" }",
            "auth.jwt.jwks_ca: no usable PEM certificate in it",
        ),
    ] {
        let err = match load_in(dir.path(), auth) {
            Ok(_) => panic!("expected a problem in {auth}"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains(expected), "{expected}\n{err}");
    }
}

#[test]
fn issuer_sha256_wants_32_bytes_of_hex_and_a_nonempty_list() {
    let dir = tempfile::tempdir().expect("temp dir");
    let names = crate::certs::DevNames {
        server_names: &["localhost".to_owned()],
        client_cns: &[],
        tenants: &[],
    };
    crate::certs::write_dev_certs(dir.path(), &names).expect("certificates");
    let ca = CertificateDer::pem_file_iter(dir.path().join("ca.pem"))
        .expect("readable")
        .next()
        .expect("one")
        .expect("PEM");
    let fp = hex::encode(crate::auth::anchor::fingerprint(&ca));
    let with = |pins: &str| {
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ntls = {{ cert = \"server.pem\", key = \"server.key\", client_ca = \"ca.pem\" }}\n[[tenant]]\nid = \"a\"\nroute = {{ path_prefix = \"/a\" }}\nupstream = {{ url = \"memory:\" }}\nauth.mtls = {{ subject_cn = [\"idp\"], issuer_sha256 = {pins} }}\n"
        );
        Config::from_toml(&text, &dir.path().join("c.toml"))
    };
    let config = with(&format!("\"{}\"", fp.to_ascii_uppercase())).expect("valid");
    let rule = config.tenants[0].auth.mtls.as_ref().expect("mtls");
    assert_eq!(hex::encode(rule.issuers[0].sha256), fp);
    assert!(
        rule.issuers[0].known.is_some(),
        "found in server.tls.client_ca"
    );
    let other = "ab".repeat(32);
    let config = with(&format!("[\"{other}\"]")).expect("valid: an intermediate clients send");
    let rule = config.tenants[0].auth.mtls.as_ref().expect("mtls");
    assert!(rule.issuers[0].known.is_none());
    let again = with(&format!("[\"{other}\"]")).expect("valid");
    assert_ne!(
        again.tenants[0].auth.mtls.as_ref().expect("mtls").check_id,
        rule.check_id,
        "every load checks chains anew"
    );

    for (pins, expected) in [
        (
            "\"abcd\"",
            "auth.mtls.issuer_sha256: \"abcd\": expected the SHA-256 fingerprint",
        ),
        (
            "[]",
            "auth.mtls.issuer_sha256: an empty list would refuse every certificate",
        ),
        (
            &format!("\"{}zz\"", &fp[..62]),
            "expected the SHA-256 fingerprint",
        ),
    ] {
        let err = with(pins).expect_err("refused").to_string();
        assert!(err.contains(expected), "{expected}\n{err}");
    }
}

#[test]
fn every_jwt_mistake_is_reported() {
    let err = problems(
        "auth.jwt = { issuer = \"\", audience = [], algorithms = [\"HS256\", \"none\"], jwks_url = \"http://keys.example.com/k\", leeway = \"1h\", subjects = [] }",
    );
    for expected in [
        "auth.jwt.issuer: expected the issuer's `iss` value",
        "auth.jwt.audience: expected the `aud` value(s)",
        "auth.jwt.algorithms: \"HS256\": expected public-key algorithms",
        "auth.jwt.algorithms: \"none\"",
        "auth.jwt.jwks_url: \"http://keys.example.com/k\": expected an https URL",
        "auth.jwt.leeway: expected a duration of at most \"5m\"",
        "auth.jwt.subjects: an empty list would refuse every token",
    ] {
        assert!(err.contains(expected), "{expected}\n{err}");
    }
    let both = problems(
        "auth.jwt = { issuer = \"i\", audience = \"a\", jwks_file = \"jwks.json\", jwks_url = \"https://k.test/\" }",
    );
    assert!(
        both.contains("give jwks_file or jwks_url, not both"),
        "{both}"
    );
    let neither = problems("auth.jwt = { issuer = \"i\", audience = \"a\" }");
    assert!(neither.contains("needs jwks_file or jwks_url"), "{neither}");
}

#[test]
fn oauth_clients_are_required_unique_and_hashed() {
    let err = problems("auth.oauth = { clients = [] }");
    assert!(
        err.contains("auth.oauth.clients: list at least one client"),
        "{err}"
    );
    let err = problems(&format!(
        "auth.oauth = {{ clients = [{{ client_id = \"p\", argon2 = \"{PHC}\" }}, {{ client_id = \"p\", argon2 = \"x\" }}], token_ttl = \"5s\" }}"
    ));
    assert!(
        err.contains("clients[1].client_id: client \"p\" is listed twice"),
        "{err}"
    );
    assert!(
        err.contains("clients[1].argon2: expected an argon2 PHC string"),
        "{err}"
    );
    assert!(
        err.contains("auth.oauth.token_ttl: expected at least \"1m\""),
        "{err}"
    );
}

#[test]
fn mtls_sans_are_typed_and_crls_need_the_tenants_own_ca() {
    let err =
        problems("auth.mtls = { san = [\"okta.example\", \"ip:10.0.0.1\"], crl = [\"x.pem\"] }");
    assert!(
        err.contains(
            "san \"okta.example\": expected a typed name such as \"dns:okta.example.com\""
        ),
        "{err}"
    );
    assert!(err.contains("san \"ip:10.0.0.1\""), "{err}");
    assert!(
        err.contains("auth.mtls.crl: needs auth.mtls.client_ca"),
        "{err}"
    );
}

#[test]
fn a_tenants_own_ca_must_hold_a_certificate() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("empty.pem"), "").expect("written");
    let err = load_in(
        dir.path(),
        "auth.mtls = { san = [\"dns:idp\"], client_ca = \"empty.pem\" }",
    )
    .expect_err("refused")
    .to_string();
    assert!(
        err.contains("auth.mtls.client_ca: no usable PEM certificate in it"),
        "{err}"
    );
    assert!(err.contains("auth.mtls: needs server.tls"), "{err}");
}

#[test]
fn a_token_key_must_be_long_and_used() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("short.key"), "too short\n").expect("written");
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ntoken_key_file = \"short.key\"\n\n[[tenant]]\nid = \"a\"\nroute = {{ path_prefix = \"/a\" }}\nupstream = {{ url = \"memory:\" }}\nauth.bearer = [{{ sha256 = \"{}\" }}]\n",
        "ab".repeat(32)
    );
    let err = Config::from_toml(&text, &dir.path().join("c.toml"))
        .expect_err("refused")
        .to_string();
    assert!(
        err.contains("c.toml:3: server.token_key_file: expected at least 32 bytes"),
        "{err}"
    );
    assert!(
        err.contains("server.token_key_file: has no effect: no tenant has auth.oauth"),
        "{err}"
    );
}
