//! Validation scenarios: bad configuration strings in, and the exact problem text out.

use std::path::Path;

use super::*;

fn load(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml(text, Path::new("c.toml"))
}

/// Every problem the text has, one per line; panics if it is valid.
fn problems(text: &str) -> String {
    match load(text) {
        Ok(_) => panic!("expected problems in:\n{text}"),
        Err(e) => e.to_string(),
    }
}

fn tenant_with(auth: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n\n[[tenant]]\nid = \"a\"\nroute = {{ path_prefix = \"/a\" }}\nupstream = {{ url = \"memory:\" }}\n{auth}\n"
    )
}

#[test]
fn mtls_without_a_client_ca_is_refused_with_the_tenant_and_line() {
    let text = tenant_with("auth.mtls = { subject_cn = [\"okta\"] }");
    let err = problems(&text);
    assert!(
        err.contains(
            "c.toml:8: tenant \"a\": auth.mtls: needs server.tls.client_ca or auth.mtls.client_ca"
        ),
        "{err}"
    );
    // Written as a table of its own, the line is that of its header.
    let text = tenant_with("[tenant.auth.mtls]\nsan = [\"okta\"]");
    let err = problems(&text);
    assert!(
        err.contains(
            "c.toml:8: tenant \"a\": auth.mtls: needs server.tls.client_ca or auth.mtls.client_ca"
        ),
        "{err}"
    );
}

#[test]
fn mtls_with_a_client_ca_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["s.pem", "s.key", "ca.pem"] {
        std::fs::write(dir.path().join(f), "").unwrap();
    }
    let text = tenant_with("auth.mtls = { subject_cn = [\"okta\"] }").replace(
        "listen = \"127.0.0.1:0\"\n",
        "listen = \"127.0.0.1:0\"\ntls = { cert = \"s.pem\", key = \"s.key\", client_ca = \"ca.pem\" }\n",
    );
    let config = Config::from_toml(&text, &dir.path().join("c.toml")).unwrap();
    assert!(config.tenants[0].auth.mtls.is_some());
}

fn with_level(level: &str) -> String {
    tenant_with("auth.bearer = [{ sha256 = \"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\" }]")
        .replace("\n\n[[tenant]]", &format!("\n[log]\nlevel = \"{level}\"\n\n[[tenant]]"))
}

#[test]
fn a_misspelt_log_level_is_refused_with_its_line() {
    for level in [
        "infoo",
        "scimgate=loud",
        "info,warnn",
        "[unclosed=info",
        "",
        // Valid to EnvFilter (everything from scimgate), but not told apart from a typo.
        "scimgate",
    ] {
        let err = problems(&with_level(level));
        assert!(
            err.contains("c.toml:4: log.level: expected a level such as \"info\" or \"warn\""),
            "{level:?}: {err}"
        );
    }
}

#[test]
fn log_levels_and_per_target_directives_are_accepted() {
    for level in [
        "info",
        "WARN",
        "off",
        "scimgate=debug",
        "warn,scimgate::upstream=trace",
    ] {
        let config = load(&with_level(level)).unwrap();
        assert_eq!(config.log.level, level);
    }
}

#[test]
fn a_tenant_without_auth_gets_the_validation_message_not_a_parse_error() {
    let err = problems(&tenant_with(""));
    assert!(
        err.contains("c.toml:5: tenant \"a\": auth: configure auth.bearer, auth.basic, auth.jwt, auth.oauth or auth.mtls"),
        "{err}"
    );
}

#[test]
fn a_tenant_without_route_gets_the_validation_message_not_a_parse_error() {
    let text = tenant_with("auth.bearer = []").replace("route = { path_prefix = \"/a\" }\n", "");
    let err = problems(&text);
    assert!(
        err.contains("c.toml:5: tenant \"a\": route: expected exactly one of path_prefix or host"),
        "{err}"
    );
    assert!(err.contains("configure auth.bearer, auth.basic"), "{err}");
}

#[test]
fn upstream_credentials_and_ca_on_the_memory_store_are_refused() {
    let bearer = "auth.bearer = [{ sha256 = \"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\" }]";
    let text = tenant_with(bearer).replace(
        "upstream = { url = \"memory:\" }\n",
        "[tenant.upstream]\nurl = \"memory:\"\ntoken_env = \"PATH\"\nca = \"c.toml\"\n[tenant.auth]\n",
    ).replace("auth.bearer", "bearer");
    let err = problems(&text);
    for key in [
        "c.toml:9: tenant \"a\": upstream.token_env",
        "c.toml:10: tenant \"a\": upstream.ca",
    ] {
        assert!(
            err.contains(&format!("{key}: has no effect with url = \"memory:\"")),
            "{key}: {err}"
        );
    }
    let text = tenant_with(bearer).replace(
        "url = \"memory:\"",
        "url = \"memory:\", token_file = \"c.toml\"",
    );
    let err = problems(&text);
    assert!(
        err.contains(
            "c.toml:7: tenant \"a\": upstream.token_file: has no effect with url = \"memory:\""
        ),
        "{err}"
    );
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    const VALID: &str = "[server]\nlisten = \"127.0.0.1:0\"\nread_timeout = \"10s\"\nmax_connections = 100\n\n[[tenant]]\nid = \"a\"\nroute = { path_prefix = \"/a\" }\nupstream = { url = \"memory:\" }\nauth.bearer = [{ sha256 = \"0000000000000000000000000000000000000000000000000000000000000000\" }]\nlimits = { rate_per_s = 10, burst = 5 }\n";

    /// A value TOML can hold, of any of the types a key might wrongly be given.
    fn toml_value() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            any::<bool>().prop_map(|b| b.to_string()),
            "[ -~]{0,16}".prop_map(|s| format!("{s:?}")),
            "[0-9]{1,4}(ms|s|m|h|d|x)?".prop_map(|s| format!("{s:?}")),
            Just("[]".to_owned()),
            Just("{}".to_owned()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        /// Any text is answered with a configuration or with problems, never a panic.
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
            let _ = load(&text);
        }

        /// A valid file with one line's value replaced by anything, or one line cut short.
        #[test]
        fn a_valid_file_with_one_line_broken_never_panics(
            line in 0usize..12,
            value in toml_value(),
            cut in any::<bool>(),
        ) {
            let lines: Vec<String> = VALID
                .lines()
                .enumerate()
                .map(|(i, l)| match (i == line, l.split_once(" = ")) {
                    (true, Some((key, _))) if !cut => format!("{key} = {value}"),
                    (true, _) => l[..l.len() / 2].to_owned(),
                    _ => l.to_owned(),
                })
                .collect();
            let _ = load(&lines.join("\n"));
        }
    }
}

#[test]
fn max_connections_has_an_upper_bound() {
    let text = "[server]\nlisten = \"127.0.0.1:0\"\nmax_connections = 9223372036854775807\n\n[[tenant]]\nid = \"a\"\nroute = { path_prefix = \"/a\" }\nupstream = { url = \"memory:\" }\n";
    let err = problems(text);
    assert!(
        err.contains("c.toml:3: server.max_connections: expected a whole number from 1 to 1048576"),
        "{err}"
    );
}

fn http_upstream(keys: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n\n[[tenant]]\nid = \"a\"\nroute = {{ path_prefix = \"/a\" }}\nauth.bearer = [{{ sha256 = \"{}\" }}]\nupstream = {{ url = \"http://127.0.0.1:3000\", {keys} }}\n",
        "ab".repeat(32)
    )
}

#[test]
fn the_breaker_is_on_by_default_and_its_keys_are_checked() {
    let config = load(&http_upstream("timeout = \"5s\"")).unwrap();
    let up = &config.tenants[0].upstream;
    assert_eq!(up.breaker, Some(Breaker::default()));
    assert_eq!(up.pool_idle_timeout, Duration::from_secs(4));
    let config = load(&http_upstream("breaker = { enabled = false }")).unwrap();
    assert_eq!(config.tenants[0].upstream.breaker, None);
    let config = load(&http_upstream(
        "pool_idle_timeout = \"2s\", breaker = { failures = 2, cool_down = \"30s\" }",
    ))
    .unwrap();
    let up = &config.tenants[0].upstream;
    assert_eq!(up.pool_idle_timeout, Duration::from_secs(2));
    let b = up.breaker.unwrap();
    assert_eq!(
        (b.failures.get(), b.cool_down),
        (2, Duration::from_secs(30))
    );
    let err = problems(&http_upstream(
        "pool_idle_timeout = \"0s\", breaker = { failures = 0, cool_down = \"soon\" }",
    ));
    for key in [
        "upstream.pool_idle_timeout: expected a positive duration",
        "upstream.breaker.failures: expected a whole number from 1 to 1000",
        "upstream.breaker.cool_down: expected a positive duration",
    ] {
        assert!(
            err.contains(&format!("c.toml:8: tenant \"a\": {key}")),
            "{err}"
        );
    }
}

#[test]
fn pool_and_breaker_keys_on_the_memory_store_are_refused() {
    let bearer = format!("auth.bearer = [{{ sha256 = \"{}\" }}]", "ab".repeat(32));
    let text = tenant_with(&bearer).replace(
        "url = \"memory:\"",
        "url = \"memory:\", pool_idle_timeout = \"1s\", breaker = { failures = 2 }",
    );
    let err = problems(&text);
    assert!(
        err.contains("upstream.pool_idle_timeout: has no effect"),
        "{err}"
    );
    assert!(err.contains("upstream.breaker: has no effect"), "{err}");
}

fn with_admin(admin: &str) -> String {
    let tenant = format!(
        "[[tenant]]\nid = \"a\"\nroute = {{ path_prefix = \"/a\" }}\nupstream = {{ url = \"memory:\" }}\nauth.bearer = [{{ sha256 = \"{}\" }}]\n",
        "ab".repeat(32)
    );
    format!("[server]\nlisten = \"127.0.0.1:0\"\n\n[admin]\n{admin}\n\n{tenant}")
}

#[test]
fn the_admin_api_is_off_and_keeps_100_requests_unless_told_otherwise() {
    let config = load(&with_admin("")).unwrap();
    assert_eq!(config.admin.listen.to_string(), "127.0.0.1:9090");
    assert_eq!(config.admin.token_sha256, None);
    assert_eq!(config.admin.request_log, 100);
    // A token without `listen` keeps the loopback default.
    let text = with_admin(&format!(
        "token_sha256 = \"{}\"\nrequest_log = 0",
        "AB".repeat(32)
    ));
    let config = load(&text).unwrap();
    assert_eq!(config.admin.listen.to_string(), "127.0.0.1:9090");
    assert_eq!(config.admin.token_sha256, Some([0xab; 32]));
    assert_eq!(config.admin.request_log, 0);
}

#[test]
fn a_bad_admin_token_hash_or_request_log_is_refused_with_its_line() {
    let text =
        with_admin("listen = \"127.0.0.1:0\"\ntoken_sha256 = \"s3cret\"\nrequest_log = 20000");
    let err = problems(&text);
    assert!(
        err.contains(
            "c.toml:6: admin.token_sha256: expected the admin token's SHA-256 as 64 hex characters"
        ),
        "{err}"
    );
    assert!(
        err.contains(
            "c.toml:7: admin.request_log: expected a whole number from 0 (keep none) to 10000"
        ),
        "{err}"
    );
    let err = problems(&with_admin("token = \"s3cret\""));
    assert!(err.contains("unknown field `token`"), "{err}");
}

#[test]
fn a_tenant_may_start_in_test_mode_and_the_key_takes_a_boolean() {
    let config = load(&with_admin("")).unwrap();
    assert!(!config.tenants[0].test_mode);
    let text = with_admin("").replace(
        "url = \"memory:\" }",
        "url = \"memory:\" }\ntest_mode = true",
    );
    assert!(load(&text).unwrap().tenants[0].test_mode);
    let err = load(&text.replace("test_mode = true", "test_mode = \"yes\"")).unwrap_err();
    assert!(err.to_string().contains("test_mode"), "{err}");
}

/// A tenant with `tenant_audit` (a `[tenant.…]` table) and then `audit` (the `[audit]`
/// section, if any), in `dir` where `audit.key` holds `key`.
fn with_audit(
    dir: &Path,
    key: &str,
    tenant_audit: &str,
    audit: &str,
) -> Result<Config, ConfigError> {
    std::fs::write(dir.join("audit.key"), key).unwrap();
    let bearer = format!("auth.bearer = [{{ sha256 = \"{}\" }}]", "ab".repeat(32));
    let text = format!("{}{tenant_audit}\n{audit}", tenant_with(&bearer));
    Config::from_toml(&text, &dir.join("c.toml"))
}

const KEY: &str = "0123456789abcdef0123";

#[test]
fn an_audit_section_is_read_with_its_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let audit = "[audit]\npath = \"audit.log\"\nkey_file = \"audit.key\"\n";
    let loggable = "[tenant.audit]\nloggable = [\"active\", \"displayName\"]";
    let config = with_audit(dir.path(), KEY, loggable, audit).unwrap();
    let a = config.audit.unwrap();
    assert_eq!(a.path, dir.path().join("audit.log"));
    assert_eq!(&a.key[..], KEY.as_bytes());
    assert_eq!(
        (a.max_file_bytes, a.checkpoint_every, a.stdout),
        (100 << 20, Duration::from_secs(60), false)
    );
    assert_eq!(
        &config.tenants[0].audit_loggable[..],
        ["active", "displayName"]
    );
    let none = with_audit(dir.path(), KEY, "", "").unwrap();
    assert!(none.audit.is_none(), "no [audit]: no audit log");
}

#[test]
fn bad_audit_settings_are_refused_with_their_lines() {
    let dir = tempfile::tempdir().unwrap();
    let audit = "[audit]\npath = \"nowhere/audit.log\"\nkey_file = \"audit.key\"\nmax_file_bytes = 1000\ncheckpoint_every = \"0s\"\n";
    let err = with_audit(dir.path(), "short", "", audit)
        .unwrap_err()
        .to_string();
    for expected in [
        "c.toml:11: audit.path: no folder at",
        "c.toml:12: audit.key_file: ",
        "holds 5 bytes; expected a secret of at least 16 bytes",
        "c.toml:13: audit.max_file_bytes: expected at least 65536 (64 KiB)",
        "c.toml:14: audit.checkpoint_every: expected a positive duration",
    ] {
        assert!(err.contains(expected), "{expected} not in\n{err}");
    }
    let missing = "[audit]\npath = \"audit.log\"\n";
    let err = problems(&(tenant_with("") + missing));
    assert!(err.contains("missing field `key_file`"), "{err}");
}

#[test]
fn loggable_values_must_be_attribute_names_the_policy_lets_pass_and_need_an_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let audit = "[audit]\npath = \"audit.log\"\nkey_file = \"audit.key\"\n";
    let tenant = "[tenant.attributes]\ndeny = [\"title\"]\n[tenant.audit]\nloggable = [\"title\", \"password\", \"1x\", \"active\"]";
    let err = with_audit(dir.path(), KEY, tenant, audit)
        .unwrap_err()
        .to_string();
    for expected in [
        "tenant \"a\": audit.loggable: \"title\" is withheld by the tenant's attributes policy",
        "tenant \"a\": audit.loggable: a password is never logged",
        "tenant \"a\": audit.loggable: \"1x\" is not an attribute name",
    ] {
        assert!(err.contains(expected), "{expected} not in\n{err}");
    }
    assert!(!err.contains("loggable: \"active\""), "{err}");
    let err = with_audit(
        dir.path(),
        KEY,
        "[tenant.audit]\nloggable = [\"active\"]",
        "",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("c.toml:9: tenant \"a\": audit: has no effect: there is no [audit] section"),
        "{err}"
    );
}
