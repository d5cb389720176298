//! The command line: check, token, certs, and serve's refusal of a bad configuration.

use crate::support::*;

fn write(dir: &tempfile::TempDir, text: &str) -> String {
    let path = dir.path().join("c.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn check_explains_a_valid_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        &format!("{}{}", server(""), tenant("acme", "memory:", "t")),
    );
    let (code, out, _) = run_cli(&["check", "--config", &path]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("valid"));
    assert!(
        out.contains("tenant   acme: path /acme → the embedded memory store; 1 bearer token(s)"),
        "{out}"
    );
}

#[test]
fn unknown_keys_are_refused_with_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{}{}upstreem = 1\n",
        server(""),
        tenant("acme", "memory:", "t")
    );
    let path = write(&dir, &text);
    let (code, _, err) = run_cli(&["check", "--config", &path]);
    assert_eq!(code, 1);
    assert!(err.contains("unknown field `upstreem`"), "{err}");
    assert!(err.contains("line 14"), "{err}");
    let (code, _, _) = run_cli(&["serve", "--config", &path]);
    assert_eq!(code, 64);
}

#[test]
fn every_invalid_value_is_reported_with_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let text = "[server]\nlisten = \"nowhere\"\nidle_timeout = \"soon\"\n\n[[tenant]]\nid = \"a b\"\nroute = {}\nupstream = { url = \"ftp://x\" }\nauth.bearer = [{ sha256 = \"abc\", not_after = \"tomorrow\" }]\n";
    let path = write(&dir, text);
    let (code, _, err) = run_cli(&["check", "--config", &path]);
    assert_eq!(code, 1);
    for expected in [
        "c.toml:2: server.listen: expected an address",
        "c.toml:3: server.idle_timeout: expected a positive duration",
        "c.toml:6: tenant.id: expected letters",
        "route: expected exactly one of path_prefix or host",
        "c.toml:8: tenant \"a b\": upstream.url: expected \"memory:\" or an http(s) base URL",
        "c.toml:9: tenant \"a b\": auth.bearer[0].sha256: expected the token's SHA-256",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
}

#[test]
fn missing_upstream_token_variable_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{}[[tenant]]\nid = \"a\"\nroute = {{ path_prefix = \"/a\" }}\nupstream = {{ url = \"http://127.0.0.1:1\", token_env = \"SCIMGATE_TEST_UNSET_VAR\" }}\nauth.bearer = [{{ sha256 = \"{}\" }}]\n",
        server(""),
        hash("t")
    );
    let (code, _, err) = run_cli(&["check", "--config", &write(&dir, &text)]);
    assert_eq!(code, 1);
    assert!(
        err.contains("environment variable SCIMGATE_TEST_UNSET_VAR is not set"),
        "{err}"
    );
}

#[test]
fn token_new_prints_a_token_and_its_hash() {
    let (code, out, _) = run_cli(&["token", "new"]);
    assert_eq!(code, 0);
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap()
            .trim()
            .to_owned()
    };
    let token = field("token:");
    assert!(token.len() > 40);
    assert_eq!(field("sha256:"), hash(&token));
    let (_, again, _) = run_cli(&["token", "new"]);
    assert_ne!(out, again);
}

#[test]
fn certs_dev_writes_a_usable_set() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("dev");
    let (code, stdout, err) = run_cli(&[
        "certs",
        "dev",
        "--out",
        out.to_str().unwrap(),
        "--client-cn",
        "okta",
    ]);
    assert_eq!(code, 0, "{err}");
    for f in [
        "ca.pem",
        "server.pem",
        "server.key",
        "client-okta.pem",
        "client-okta.key",
    ] {
        assert!(out.join(f).is_file(), "{f} missing: {stdout}");
    }
    let tls =
        "tls = { cert = \"dev/server.pem\", key = \"dev/server.key\", client_ca = \"dev/ca.pem\" }";
    let text = format!("{}{}", server(tls), tenant("a", "memory:", "t"));
    let (code, stdout, err) = run_cli(&["check", "--config", &write(&dir, &text)]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("https://127.0.0.1:0"), "{stdout}");
}

#[test]
fn without_an_admin_table_the_admin_listener_is_on_loopback_9090() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n{}",
        tenant("a", "memory:", "t")
    );
    let (code, out, err) = run_cli(&["check", "--config", &write(&dir, &text)]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("admin    http://127.0.0.1:9090 (/healthz, /readyz, /metrics)"),
        "{out}"
    );
}

#[cfg(unix)]
#[test]
fn certs_dev_writes_private_keys_readable_by_the_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("dev");
    // A key left by an earlier run with open permissions is tightened too.
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("server.key"), "old").unwrap();
    std::fs::set_permissions(out.join("server.key"), PermissionsExt::from_mode(0o644)).unwrap();
    let (code, _, err) = run_cli(&["certs", "dev", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let mode = |f: &str| std::fs::metadata(out.join(f)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("server.key"), 0o600);
    assert_eq!(mode("client-idp-client.key"), 0o600);
}

#[tokio::test]
async fn pretty_logs_have_no_colour_codes_when_stdout_is_not_a_terminal() {
    let config = format!("{}{}", server(""), tenant("a", "memory:", "t"))
        .replace("format = \"json\"", "format = \"pretty\"");
    let out = serve_output_until(&config, "listening").await;
    assert!(!out.contains('\u{1b}'), "ANSI escape in: {out:?}");
}

#[test]
fn every_example_configuration_is_valid() {
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut checked = Vec::new();
    for entry in std::fs::read_dir(&examples).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let path = path.display().to_string();
        // sidecar.toml reads the legacy app's token from here, as its comment says.
        let env = [("LEGACY_TOKEN", "legacy-secret")];
        let (code, out, err) = run_cli_env(&["check", "--config", &path], &env);
        assert_eq!(code, 0, "{path}:\n{out}{err}");
        assert!(out.contains(": valid"), "{path}: {out}");
        checked.push(path);
    }
    assert!(checked.len() >= 2, "examples not found: {checked:?}");
}

#[test]
fn check_explains_what_the_proxy_will_do_for_the_upstream() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{}[[tenant]]\nid = \"a\"\nroute = {{ path_prefix = \"/a\" }}\nsoft_delete = true\nupstream = {{ url = \"http://127.0.0.1:1/scim\", supports = {{ patch = false, uniqueness = false }} }}\nauth.bearer = [{{ sha256 = \"{}\" }}]\n",
        server(""),
        hash("t")
    );
    let (code, out, err) = run_cli(&["check", "--config", &write(&dir, &text)]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("upstream: patch: no as declared; the rest from its ServiceProviderConfig; uniqueness: no"), "{out}");
    assert!(out.contains("DELETE of a User deactivates it"), "{out}");
}

#[test]
fn rules_list_names_every_built_in_pack_and_its_sources() {
    let (code, out, _) = run_cli(&["rules", "list"]);
    assert_eq!(code, 0);
    for pack in [
        "generic",
        "entra",
        "okta",
        "google",
        "onelogin",
        "jumpcloud",
        "ping",
    ] {
        assert!(
            out.contains(&format!("\n{pack}: ")) || out.starts_with(&format!("{pack}: ")),
            "{pack}"
        );
    }
    assert!(out.contains("generic/op-lowercase") && out.contains("source: https://"));
}

#[test]
fn rules_test_prints_the_normalized_request_and_the_rules_that_fired() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("entra.json");
    let request = r#"{"method":"PATCH","path":"/scim/Users/9f1c","body":{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations":[{"op":"Add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":"2c2f6fb8"}]}}"#;
    std::fs::write(&file, request).unwrap();
    let (code, out, err) = run_cli(&["rules", "test", "--pack", "entra", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let json_end = out.rfind('}').unwrap();
    let body: serde_json::Value =
        serde_json::from_str(&out[out.find('{').unwrap()..=json_end]).unwrap();
    assert_eq!(body["Operations"][0]["op"], "add");
    assert_eq!(
        body["Operations"][0]["value"],
        serde_json::json!({"value": "2c2f6fb8"})
    );
    assert!(out.contains("generic/op-lowercase"), "{out}");
    assert!(out.contains("schema check: ok"), "{out}");
}

#[test]
fn rules_test_exits_1_when_the_result_fails_the_schema_check() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.json");
    // No rule can make a number of a userName: the result is still not a valid User.
    std::fs::write(
        &file,
        r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":{"first":"b"}}"#,
    )
    .unwrap();
    let (code, out, _) = run_cli(&["rules", "test", "--pack", "generic", file.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("schema check: refused"), "{out}");
}

#[test]
fn a_pack_that_does_not_compile_fails_check_with_its_file_and_rule() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("packs")).unwrap();
    std::fs::write(
        dir.path().join("packs/acme.toml"),
        "name = \"acme\"\ndescription = \"d\"\n[[rule]]\nid = \"upper\"\ndescription = \"d\"\nsource = \"s\"\nactions = [ { action = \"uppercase\", at = \"$.x\" } ]\n",
    )
    .unwrap();
    let config = format!(
        "{}[rules]\ndir = \"packs\"\n{}idp = \"acme\"\n{}idp = \"nosuch\"\n",
        server(""),
        tenant("a", "memory:", "tok"),
        tenant("b", "memory:", "tok")
    );
    let path = write(&dir, &config);
    let (code, _, err) = run_cli(&["check", "--config", &path]);
    assert_eq!(code, 1);
    assert!(
        err.contains("acme.toml: rule \"upper\": actions[0]: unknown action \"uppercase\""),
        "{err}"
    );
    assert!(
        err.contains("tenant \"b\": idp: no rule pack named \"nosuch\""),
        "{err}"
    );
}
