//! HTTP Basic credentials: argon2-hashed passwords, per tenant, checked off the async workers.

use std::time::{Duration, Instant};

use crate::support::*;

/// The argon2 hash the configuration wants for a password, as `scimgate token hash-secret`
/// makes it.
pub fn argon2(secret: &str) -> String {
    scimgate::auth::secret::hash(secret.as_bytes()).unwrap()
}

/// Tenants "okta" (user okta / okta-pw, and user old whose password has expired), "ping"
/// (user okta too, with another password) and "acme" (bearer token acme-token).
async fn basic_tenants(server_extra: &str) -> Proxy {
    let config = format!(
        "{}{}\
         [[tenant]]\nid = \"okta\"\nroute = {{ path_prefix = \"/okta\" }}\nupstream = {{ url = \"memory:\" }}\n\
         auth.basic = [{{ username = \"okta\", argon2 = \"{}\" }}, {{ username = \"old\", argon2 = \"{}\", not_after = \"2020-01-01T00:00:00Z\" }}]\n\
         [[tenant]]\nid = \"ping\"\nroute = {{ path_prefix = \"/ping\" }}\nupstream = {{ url = \"memory:\" }}\n\
         auth.basic = [{{ username = \"okta\", argon2 = \"{}\" }}]\n",
        server(server_extra),
        tenant("acme", "memory:", "acme-token"),
        argon2("okta-pw"),
        argon2("old-pw"),
        argon2("ping-pw"),
    );
    Proxy::start(&config).await
}

async fn get_basic(proxy: &Proxy, path: &str, user: &str, pw: &str) -> reqwest::Response {
    client()
        .get(proxy.url(path))
        .basic_auth(user, Some(pw))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn basic_credentials_open_their_tenant_and_no_other() {
    let proxy = basic_tenants("auth_throttle = { burst = 100, rate_per_s = 100 }").await;
    let ok = get_basic(&proxy, "/okta/Users", "okta", "okta-pw").await;
    assert_eq!(ok.status(), 200);
    // Remembered for a while: the second request does not pay for argon2 (and still works).
    let again = get_basic(&proxy, "/okta/Users", "okta", "okta-pw").await;
    assert_eq!(again.status(), 200);
    assert_eq!(
        get_basic(&proxy, "/ping/Users", "okta", "ping-pw")
            .await
            .status(),
        200
    );

    let mut details = Vec::new();
    for (path, user, pw) in [
        ("/ping/Users", "okta", "okta-pw"), // another tenant's user of the same name
        ("/okta/Users", "okta", "ping-pw"), // a password of another tenant
        ("/okta/Users", "okta", "wrong"),   // a wrong password
        ("/okta/Users", "nobody", "okta-pw"), // no such user
        ("/okta/Users", "old", "old-pw"),   // expired
        ("/acme/Users", "okta", "okta-pw"), // a tenant without Basic
        ("/nobody/Users", "okta", "okta-pw"), // no such tenant
    ] {
        let resp = get_basic(&proxy, path, user, pw).await;
        assert_eq!(
            resp.headers()["www-authenticate"],
            "Basic realm=\"scim\", charset=\"UTF-8\"",
            "{path} {user}"
        );
        details.push(scim_error(resp, 401).await["detail"].clone());
    }
    assert!(
        details.iter().all(|d| *d == details[0]),
        "every refusal reads the same: {details:?}"
    );
    let logs = proxy.logs();
    for reason in ["wrong password", "no such user", "the password has expired"] {
        assert!(logs.contains(reason), "the log keeps the reason: {reason}");
    }
    assert!(
        logs.contains("basic:okta\""),
        "the principal is named: {logs}"
    );
    for secret in ["okta-pw", "ping-pw", "old-pw"] {
        assert!(!logs.contains(secret), "a password reached the log");
    }
}

#[tokio::test]
async fn failed_basic_attempts_feed_the_auth_throttle() {
    let proxy = basic_tenants("auth_throttle = { burst = 3, rate_per_s = 0.01 }").await;
    for _ in 0..3 {
        let resp = get_basic(&proxy, "/okta/Users", "okta", "guess").await;
        assert_eq!(resp.status(), 401);
    }
    let resp = get_basic(&proxy, "/okta/Users", "okta", "okta-pw").await;
    assert_eq!(resp.status(), 429, "the address is throttled, right or not");
    assert!(resp.headers().contains_key("retry-after"));
}

/// A flood of Basic guesses is checked a few at a time on the blocking pool: the async workers
/// keep serving other tenants, and a guess that waits too long for its turn is told to retry.
#[tokio::test]
async fn a_flood_of_basic_guesses_does_not_stall_other_tenants() {
    let proxy = basic_tenants("auth_throttle = { burst = 1000, rate_per_s = 1000 }").await;
    let c = client();
    let guesses: Vec<_> = (0..40)
        .map(|i| {
            let req = c
                .get(proxy.url("/okta/Users"))
                .basic_auth("okta", Some(format!("guess-{i}")))
                .send();
            tokio::spawn(req)
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    let resp = c
        .get(proxy.url("/acme/Users"))
        .bearer_auth("acme-token")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "another tenant waited {:?}",
        started.elapsed()
    );
    for g in guesses {
        let status = g.await.unwrap().unwrap().status().as_u16();
        assert!(matches!(status, 401 | 503), "{status}");
    }
}

#[tokio::test]
async fn hash_secret_makes_a_hash_the_configuration_takes() {
    use std::io::Write;
    let mut child = std::process::Command::new(BIN)
        .args(["token", "hash-secret"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"s3cret\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let phc = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(phc.starts_with("$argon2id$"), "{phc}");

    let config = format!(
        "{}[[tenant]]\nid = \"okta\"\nroute = {{ path_prefix = \"/okta\" }}\nupstream = {{ url = \"memory:\" }}\nauth.basic = [{{ username = \"okta\", argon2 = \"{phc}\" }}]\n",
        server("")
    );
    let proxy = Proxy::start(&config).await;
    let resp = get_basic(&proxy, "/okta/Users", "okta", "s3cret").await;
    assert_eq!(resp.status(), 200, "the newline is not part of the secret");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, &config).unwrap();
    let (code, out, _) = run_cli(&["check", "--config", path.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(out.contains("HTTP Basic for user(s) okta"), "{out}");
}

/// A bcrypt hash as another system exports it, with a fresh salt and the lowest cost.
fn bcrypt_hash(secret: &str, version: bcrypt::Version) -> String {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).unwrap();
    bcrypt::hash_with_salt(secret, 4, salt)
        .unwrap()
        .format_for_version(version)
}

#[tokio::test]
async fn bcrypt_hashed_passwords_open_their_tenant() {
    let (two_b, two_y) = (
        bcrypt_hash("okta-pw", bcrypt::Version::TwoB),
        bcrypt_hash("jc-pw", bcrypt::Version::TwoY),
    );
    let config = format!(
        "{}[[tenant]]\nid = \"okta\"\nroute = {{ path_prefix = \"/okta\" }}\nupstream = {{ url = \"memory:\" }}\n\
         auth.basic = [{{ username = \"okta\", bcrypt = \"{two_b}\" }}, {{ username = \"jc\", bcrypt = \"{two_y}\" }}, {{ username = \"ping\", argon2 = \"{}\" }}]\n",
        server("auth_throttle = { burst = 100, rate_per_s = 100 }"),
        argon2("ping-pw"),
    );
    let proxy = Proxy::start(&config).await;
    for (user, pw) in [("okta", "okta-pw"), ("jc", "jc-pw"), ("ping", "ping-pw")] {
        let resp = get_basic(&proxy, "/okta/Users", user, pw).await;
        assert_eq!(resp.status(), 200, "{user}");
    }
    for (user, pw) in [("okta", "jc-pw"), ("jc", "okta-pw"), ("nobody", "okta-pw")] {
        let resp = get_basic(&proxy, "/okta/Users", user, pw).await;
        scim_error(resp, 401).await;
    }
    let logs = proxy.logs();
    assert!(logs.contains("basic:jc\""), "{logs}");
    assert!(logs.contains("wrong password") && logs.contains("no such user"));
    assert!(!logs.contains("okta-pw") && !logs.contains(&two_b));
}

#[test]
fn check_refuses_a_malformed_bcrypt_hash_and_names_it() {
    let good = bcrypt_hash("pw", bcrypt::Version::TwoB);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    let write = |hash: &str| {
        let config = format!(
            "{}[[tenant]]\nid = \"okta\"\nroute = {{ path_prefix = \"/okta\" }}\nupstream = {{ url = \"memory:\" }}\nauth.basic = [{{ username = \"okta\", bcrypt = \"{hash}\" }}]\n",
            server("")
        );
        std::fs::write(&path, config).unwrap();
    };
    write(&good);
    let (code, out, err) = run_cli(&["check", "--config", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("HTTP Basic for user(s) okta (bcrypt"), "{out}");

    write(&good[..50]);
    let (code, _, err) = run_cli(&["check", "--config", path.to_str().unwrap()]);
    assert_eq!(code, 1, "`check` says the file is not valid");
    assert!(
        err.contains("tenant \"okta\": auth.basic[0].bcrypt: expected a bcrypt hash"),
        "{err}"
    );
}

/// The ServiceProviderConfig tells the IdP what the tenant it asks accepts (RFC 7643 §5),
/// whether the proxy writes the document or amends the app's own.
#[tokio::test]
async fn auth_schemes_announced_are_the_tenants_own() {
    // An app without discovery of its own: the proxy writes the whole document.
    let app = json_upstream(|_, _| (404, "{}".to_owned())).await;
    let config = format!(
        "{}{}\
         [[tenant]]\nid = \"okta\"\nroute = {{ path_prefix = \"/okta\" }}\nupstream = {{ url = \"memory:\" }}\n\
         auth.basic = [{{ username = \"okta\", argon2 = \"{}\" }}]\n\
         [[tenant]]\nid = \"both\"\nroute = {{ path_prefix = \"/both\" }}\nupstream = {{ url = \"http://{app}/scim/v2\", supports = {{ discovery = false }} }}\n\
         auth.bearer = [{{ sha256 = \"{}\" }}]\nauth.basic = [{{ username = \"okta\", argon2 = \"{}\" }}]\n",
        server(""),
        tenant("acme", "memory:", "acme-token"),
        argon2("okta-pw"),
        hash("both-token"),
        argon2("both-pw"),
    );
    let proxy = Proxy::start(&config).await;
    let c = client();
    let announced = |req: reqwest::RequestBuilder| async move {
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let spc: serde_json::Value = resp.json().await.unwrap();
        let schemes = spc["authenticationSchemes"].as_array().unwrap().clone();
        for s in &schemes {
            for field in ["type", "name", "description", "specUri", "primary"] {
                assert!(s.get(field).is_some(), "{field} in {s}");
            }
        }
        schemes
            .iter()
            .map(|s| (s["type"].as_str().unwrap().to_owned(), s["primary"] == true))
            .collect::<Vec<_>>()
    };
    let spc = |t: &str| proxy.url(&format!("/{t}/ServiceProviderConfig"));
    let pair = |t: &str, p: bool| (t.to_owned(), p);
    assert_eq!(
        announced(c.get(spc("acme")).bearer_auth("acme-token")).await,
        [pair("oauthbearertoken", true)]
    );
    assert_eq!(
        announced(c.get(spc("okta")).basic_auth("okta", Some("okta-pw"))).await,
        [pair("httpbasic", true)]
    );
    let both = [pair("oauthbearertoken", true), pair("httpbasic", false)];
    assert_eq!(
        announced(c.get(spc("both")).bearer_auth("both-token")).await,
        both
    );
    assert_eq!(
        announced(c.get(spc("both")).basic_auth("okta", Some("both-pw"))).await,
        both
    );
}
