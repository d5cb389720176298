//! The deploy kits of `examples/deploy/` agree with the configuration they run: the sidecar's
//! probes reach the admin listener, every stop timeout outlasts the drain, the image and the
//! unit run the file `scimgate check` accepts, without privileges. All offline; the systemd
//! unit is also put through `systemd-analyze verify` where it is installed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::support::*;

/// The environment `scimgate.toml` reads the app's token from.
const TOKEN_ENV: (&str, &str) = ("APP_SCIM_TOKEN", "app-secret");

pub fn kit(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/deploy")
        .join(name)
}

pub fn read(name: &str) -> String {
    std::fs::read_to_string(kit(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Whether CI installed the outside checkers, so that a missing one is a failure there and a
/// note elsewhere.
pub fn tools_required() -> bool {
    std::env::var_os("SCIMGATE_REQUIRE_TOOLS").is_some()
}

/// What the kits must agree with, read from the example configuration.
struct Deployed {
    listen_port: u16,
    admin_port: u16,
    grace: Duration,
    token_env: String,
}

fn deployed(text: &str) -> Deployed {
    let doc: toml::Value = toml::from_str(text).unwrap();
    let port = |addr: &str| addr.parse::<std::net::SocketAddr>().unwrap().port();
    let grace = doc["server"]
        .get("shutdown_grace")
        .map_or(Duration::from_secs(30), |g| {
            humantime::parse_duration(g.as_str().unwrap()).unwrap()
        });
    Deployed {
        listen_port: port(doc["server"]["listen"].as_str().unwrap()),
        admin_port: port(doc["admin"]["listen"].as_str().unwrap()),
        grace,
        token_env: doc["tenant"][0]["upstream"]["token_env"]
            .as_str()
            .unwrap()
            .to_owned(),
    }
}

/// The documents of a multi-document YAML file, as JSON values.
pub fn yaml_docs(text: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|doc| serde::Deserialize::deserialize(doc).unwrap())
        .filter(|doc: &Value| !doc.is_null())
        .collect()
}

#[test]
fn the_configuration_the_kits_run_passes_check() {
    let path = kit("scimgate.toml");
    let (code, out, err) =
        run_cli_env(&["check", "--config", path.to_str().unwrap()], &[TOKEN_ENV]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(": valid"), "{out}");
    let d = deployed(&read("scimgate.toml"));
    assert_eq!(d.token_env, TOKEN_ENV.0);
}

#[test]
fn the_sidecar_probes_the_admin_listener_and_outlives_the_drain() {
    let config = read("scimgate.toml");
    let d = deployed(&config);
    let docs = yaml_docs(&read("kubernetes.yaml"));
    let of_kind = |kind: &str| {
        docs.iter()
            .find(|doc| doc["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind}"))
    };
    let (map, secret, deployment) = (
        of_kind("ConfigMap"),
        of_kind("Secret"),
        of_kind("Deployment"),
    );
    // The ConfigMap carries the very file `scimgate check` accepted above.
    assert_eq!(map["data"]["scimgate.toml"].as_str(), Some(config.as_str()));
    let pod = &deployment["spec"]["template"]["spec"];
    let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
    assert!(grace > d.grace.as_secs(), "{grace}s ≤ shutdown_grace");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let containers = pod["containers"].as_array().unwrap();
    assert!(containers.len() >= 2, "the proxy beside an app container");
    let proxy = containers
        .iter()
        .find(|c| c["name"] == "scimgate")
        .expect("a scimgate container");
    // Ports: the listeners of the file, and probes on the admin one, by name or number.
    let ports = proxy["ports"].as_array().unwrap();
    let port_of = |p: &Value| -> u64 {
        match p {
            Value::Number(n) => n.as_u64().unwrap(),
            Value::String(name) => ports
                .iter()
                .find(|q| q["name"] == name.as_str())
                .unwrap_or_else(|| panic!("no port named {name}"))["containerPort"]
                .as_u64()
                .unwrap(),
            other => panic!("port {other}"),
        }
    };
    let declared: Vec<u64> = ports
        .iter()
        .map(|p| p["containerPort"].as_u64().unwrap())
        .collect();
    assert!(declared.contains(&u64::from(d.listen_port)), "{declared:?}");
    for (probe, path) in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")] {
        let get = &proxy[probe]["httpGet"];
        assert_eq!(get["path"], path, "{probe}");
        assert_eq!(port_of(&get["port"]), u64::from(d.admin_port), "{probe}");
    }
    // The configuration file is the ConfigMap's, mounted where the arguments say.
    let args: Vec<&str> = proxy["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(args[..2], ["serve", "--config"]);
    let config_path = Path::new(args[2]);
    let mount = proxy["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| Path::new(m["mountPath"].as_str().unwrap()) == config_path.parent().unwrap())
        .expect("the configuration's folder is mounted");
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])
        .expect("the mounted volume");
    assert_eq!(volume["configMap"]["name"], map["metadata"]["name"]);
    assert_eq!(
        config_path.file_name().unwrap().to_str(),
        Some("scimgate.toml")
    );
    // The app's token comes from the Secret, under the name the file reads.
    let env = proxy["env"].as_array().unwrap();
    let token = env
        .iter()
        .find(|e| e["name"] == d.token_env.as_str())
        .expect("the token's variable is set");
    let from = &token["valueFrom"]["secretKeyRef"];
    assert_eq!(from["name"], secret["metadata"]["name"]);
    let key = from["key"].as_str().unwrap();
    assert!(
        secret["stringData"].get(key).is_some(),
        "the Secret has {key}"
    );
    // Locked down, with resources.
    let sc = &proxy["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"][0], "ALL");
    assert!(proxy["resources"]["requests"]["memory"].is_string());
    assert!(proxy["resources"]["limits"]["memory"].is_string());
    // The Service exposes IdP traffic only, never the admin listener.
    let service = of_kind("Service");
    for p in service["spec"]["ports"].as_array().unwrap() {
        assert_ne!(port_of(&p["targetPort"]), u64::from(d.admin_port));
    }
}

/// `key=value` lines of a unit file, every occurrence of each key in order.
fn unit_values<'a>(unit: &'a str, key: &str) -> Vec<&'a str> {
    unit.lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim())
        .collect()
}

#[test]
fn the_systemd_unit_is_hardened_and_waits_out_the_drain() {
    let unit = read("scimgate.service");
    let d = deployed(&read("scimgate.toml"));
    let one = |key: &str| match unit_values(&unit, key)[..] {
        [v] => v,
        ref all => panic!("{key}: {all:?}"),
    };
    for (key, want) in [
        ("DynamicUser", "yes"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("KillSignal", "SIGTERM"),
        ("ExecReload", "/bin/kill -HUP $MAINPID"),
        // Exit 64 is a bad configuration: restarting cannot help.
        ("RestartPreventExitStatus", "64"),
    ] {
        assert_eq!(one(key), want, "{key}");
    }
    let stop = humantime::parse_duration(&format!("{}s", one("TimeoutStopSec"))).unwrap();
    assert!(stop > d.grace, "TimeoutStopSec {stop:?} ≤ shutdown_grace");
    // No capability: both listeners are above the privileged ports.
    assert_eq!(one("CapabilityBoundingSet"), "");
    assert!(d.listen_port >= 1024 && d.admin_port >= 1024);
    let serve = one("ExecStart");
    let check = one("ExecStartPre");
    assert!(
        serve.ends_with(" serve --config /etc/scimgate/scimgate.toml"),
        "{serve}"
    );
    assert_eq!(check, serve.replace(" serve ", " check "));
    assert!(
        !unit_values(&unit, "EnvironmentFile").is_empty(),
        "the app's token"
    );
    verify_with_systemd(&unit);
}

/// `systemd-analyze verify` on the unit, its binary pointed at the one just built (verify
/// wants it to exist). Anything it prints is a problem: it exits 0 on some of them.
fn verify_with_systemd(unit: &str) {
    let probe = std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        assert!(!tools_required(), "systemd-analyze is not installed");
        eprintln!("systemd-analyze not installed: the unit's syntax is not verified");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scimgate.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/scimgate", BIN)).unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && said.trim().is_empty(), "{said}");
}

#[test]
fn the_image_is_static_non_root_and_runs_the_checked_file() {
    let dockerfile = read("Dockerfile");
    let d = deployed(&read("scimgate.toml"));
    let instructions: Vec<&str> = dockerfile
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let from: Vec<&str> = instructions
        .iter()
        .filter_map(|l| l.strip_prefix("FROM "))
        .collect();
    assert!(from.len() >= 2, "a build stage and a run stage: {from:?}");
    let run_stage = from.last().unwrap();
    assert!(
        run_stage.starts_with("gcr.io/distroless/static") || *run_stage == "scratch",
        "{run_stage}"
    );
    assert!(dockerfile.contains("--target x86_64-unknown-linux-musl"));
    assert!(dockerfile.contains("--locked"));
    let user = instructions
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER");
    let uid: u32 = user.split(':').next().unwrap().parse().unwrap();
    assert_ne!(uid, 0);
    // The sidecar runs as the image's user, and the image exposes the file's listeners.
    let docs = yaml_docs(&read("kubernetes.yaml"));
    let pod = docs.iter().find(|doc| doc["kind"] == "Deployment").unwrap();
    let run_as = &pod["spec"]["template"]["spec"]["securityContext"]["runAsUser"];
    assert_eq!(run_as.as_u64(), Some(u64::from(uid)));
    let exposed = instructions
        .iter()
        .find_map(|l| l.strip_prefix("EXPOSE "))
        .expect("EXPOSE");
    for port in [d.listen_port, d.admin_port] {
        assert!(exposed.split(' ').any(|p| p == port.to_string()), "{port}");
    }
    assert!(dockerfile.contains(r#"CMD ["serve", "--config", "/etc/scimgate/scimgate.toml"]"#));
    // A static musl build stays possible while nothing links OpenSSL.
    let lock =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.lock")).unwrap();
    for native in ["name = \"openssl-sys\"", "name = \"native-tls\""] {
        assert!(!lock.contains(native), "{native} in Cargo.lock");
    }
}

#[test]
fn every_kit_is_indexed_in_the_readmes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let index = std::fs::read_to_string(root.join("examples/README.md")).unwrap();
    for entry in std::fs::read_dir(kit("")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(
            readme.contains(&format!("examples/deploy/{name}")),
            "README: {name}"
        );
        assert!(
            index.contains(&format!("deploy/{name}")),
            "examples/README: {name}"
        );
    }
}
