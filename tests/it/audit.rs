//! The audit log: a line for each change and refusal (Bulk operations the proxy carries out
//! included) in the file before the IdP is answered, a chain `scimgate audit verify` checks,
//! rotation that continues it, and `scimgate audit grep` answering who changed what.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::support::*;

const KEY: &str = "0123456789abcdef0123456789abcdef";

/// A folder with the checkpoint key, and the configuration: `[audit]` (plus `audit_extra`),
/// tenant "acme" on the memory store with `tenant_extra`.
fn setup(audit_extra: &str, tenant_extra: &str, server_extra: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("audit.key"), KEY).unwrap();
    let config = format!(
        "{}[audit]\npath = \"audit.log\"\nkey_file = \"audit.key\"\n{audit_extra}\n{}{tenant_extra}\n",
        server(server_extra),
        tenant("acme", "memory:", "tok"),
    );
    (dir, config)
}

/// The lines of the audit file now, as JSON.
fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn changes(path: &Path) -> Vec<Value> {
    lines(path)
        .into_iter()
        .filter(|l| l["type"] == "change")
        .collect()
}

fn user(name: &str) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name,
        "externalId": format!("ext-{name}"), "displayName": "Alice", "title": "Boss", "active": true})
}

async fn send(req: reqwest::RequestBuilder, status: u16) -> Value {
    let resp = req.bearer_auth("tok").send().await.unwrap();
    assert_eq!(resp.status(), status);
    resp.json().await.unwrap_or(Value::Null)
}

fn verify(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let key = dir.join("audit.key");
    let mut all = vec!["audit", "verify", "--key-file", key.to_str().unwrap()];
    all.extend_from_slice(args);
    run_cli(&all)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[tokio::test]
async fn each_change_and_refusal_has_its_line_before_the_answer() {
    let (dir, config) = setup(
        "",
        "[tenant.audit]\nloggable = [\"active\", \"displayName\"]\n[tenant.attributes]\ndeny = [\"title\"]\ndetect = [\"us_ssn\"]\non_detect = \"reject\"\n",
        "",
    );
    let proxy = Proxy::start_in(dir, &config).await;
    let log = proxy.dir.path().join("audit.log");
    let c = client();
    let created = send(c.post(proxy.url("/acme/Users")).json(&user("alice")), 201).await;
    let id = created["id"].as_str().unwrap().to_owned();
    // In the file before the answer came back.
    let create = changes(&log).pop().unwrap();
    assert_eq!(create["op"], "create");
    assert_eq!(create["resource"], "User");
    assert_eq!(create["id"], id.as_str());
    assert_eq!(create["externalId"], "ext-alice");
    assert_eq!(create["tenant"], "acme");
    assert_eq!(create["status"], 201);
    assert!(create["principal"].as_str().unwrap().starts_with("token "));
    let names: Vec<&str> = create["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"userName") && names.contains(&"active"),
        "{names:?}"
    );
    assert!(
        !names.contains(&"title"),
        "withheld before the app: {names:?}"
    );
    assert_eq!(
        create["values"],
        json!({"active": true, "displayName": "Alice"})
    );
    assert!(create["request_id"].as_str().is_some_and(|r| !r.is_empty()));

    let user_url = proxy.url(&format!("/acme/Users/{id}"));
    send(c.put(&user_url).json(&user("alice")), 200).await;
    let off = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": false}]});
    send(c.patch(&user_url).json(&off), 200).await;
    send(c.get(&user_url), 200).await;
    let group = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": "Ops", "members": [{"value": id}]});
    let g = send(c.post(proxy.url("/acme/Groups")).json(&group), 201).await;
    let gid = g["id"].as_str().unwrap().to_owned();
    let remove = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "remove", "path": format!("members[value eq \"{id}\"]")}]});
    let group_url = proxy.url(&format!("/acme/Groups/{gid}"));
    let resp = c
        .patch(&group_url)
        .bearer_auth("tok")
        .json(&remove)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    // The proxy carries out a Bulk for the memory store: a line per operation.
    let bulk = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "b1", "data": user("bob")},
            {"method": "DELETE", "path": format!("/Users/{id}")}]});
    send(c.post(proxy.url("/acme/Bulk")).json(&bulk), 200).await;

    let ops: Vec<(String, Option<u64>)> = changes(&log)
        .iter()
        .map(|l| {
            (
                format!(
                    "{} {}",
                    l["op"].as_str().unwrap(),
                    l["resource"].as_str().unwrap()
                ),
                l["bulk_op"].as_u64(),
            )
        })
        .collect();
    let want = [
        ("create User", None),
        ("replace User", None),
        ("patch User", None),
        ("create Group", None),
        ("patch Group", None),
        ("create User", Some(0)),
        ("delete User", Some(1)),
    ];
    let want: Vec<(String, Option<u64>)> = want.iter().map(|(o, b)| (o.to_string(), *b)).collect();
    assert_eq!(
        ops, want,
        "no line for the read, none for the Bulk as a whole"
    );
    let all = changes(&log);
    assert_eq!(all[2]["values"], json!({"active": false}));
    assert_eq!(all[3]["members_added"], json!([id]));
    assert_eq!(all[4]["members_removed"], json!([id]));
    assert_eq!(all[4]["id"], gid.as_str());
    assert_eq!(all[6]["id"], id.as_str());
    assert!(all[5]["id"]
        .as_str()
        .is_some_and(|b| !b.is_empty() && b != id));

    // Refusals: a wrong token, and a value the policy refuses (never logged).
    let wrong = c
        .post(proxy.url("/acme/Users"))
        .bearer_auth("nope")
        .json(&user("eve"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let mut ssn = user("mallory");
    ssn["displayName"] = json!("123-45-6789");
    send(c.post(proxy.url("/acme/Users")).json(&ssn), 400).await;
    let refusals: Vec<Value> = lines(&log)
        .into_iter()
        .filter(|l| l["type"] == "refusal")
        .collect();
    assert_eq!(refusals.len(), 2, "{refusals:?}");
    assert_eq!(
        (
            refusals[0]["refusal"].as_str(),
            refusals[0]["status"].as_u64()
        ),
        (Some("auth"), Some(401))
    );
    let named = (refusals[0]["op"].as_str(), refusals[0]["resource"].as_str());
    assert_eq!(named, (Some("create"), Some("User")), "named by its path");
    assert_eq!(
        (
            refusals[1]["refusal"].as_str(),
            refusals[1]["status"].as_u64()
        ),
        (Some("policy"), Some(400))
    );
    assert!(refusals[1].get("values").is_none());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        !text.contains("123-45-6789") && !text.contains("Boss"),
        "no withheld value in the log"
    );

    // The live file verifies as such; once closed, it verifies as closed.
    let (code, out, err) = verify(proxy.dir.path(), &["--live", s(&log)]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) = verify(proxy.dir.path(), &[s(&log)]);
    assert_eq!(code, 1, "not closed yet");
    assert!(err.contains("closing checkpoint"), "{err}");
    let mut proxy = proxy;
    proxy.terminate();
    proxy.wait().await;
    let (code, out, err) = verify(proxy.dir.path(), &[s(&log)]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("every checkpoint's MAC matches the key"),
        "{out}"
    );
}

/// A closed log of a few changes, and its lines.
async fn closed_log() -> (tempfile::TempDir, PathBuf, Vec<String>) {
    let (dir, config) = setup("", "", "");
    let mut proxy = Proxy::start_in(dir, &config).await;
    let c = client();
    for name in ["a", "b", "c", "d"] {
        send(c.post(proxy.url("/acme/Users")).json(&user(name)), 201).await;
    }
    proxy.terminate();
    proxy.wait().await;
    let dir = std::mem::replace(&mut proxy.dir, tempfile::tempdir().unwrap());
    let log = dir.path().join("audit.log");
    let text = std::fs::read_to_string(&log).unwrap();
    (dir, log, text.lines().map(str::to_owned).collect())
}

fn write_lines(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

#[tokio::test]
async fn verify_finds_an_edited_a_reordered_a_removed_line_and_a_cut_off_end() {
    let (dir, log, original) = closed_log().await;
    assert_eq!(
        original.len(),
        6,
        "start, four creates, shutdown: {original:?}"
    );
    let (code, out, _) = verify(dir.path(), &[s(&log)]);
    assert_eq!(code, 0);
    assert!(out.contains("6 line(s)"), "{out}");

    let mut edited = original.clone();
    edited[2] = edited[2].replace("\"status\":201", "\"status\":409");
    write_lines(&log, &edited);
    let (code, _, err) = verify(dir.path(), &[s(&log)]);
    assert_eq!(code, 1);
    assert!(err.contains("audit.log:3: edited"), "{err}");

    let mut reordered = original.clone();
    reordered.swap(2, 3);
    write_lines(&log, &reordered);
    let (code, _, err) = verify(dir.path(), &[s(&log)]);
    assert_eq!(code, 1);
    assert!(err.contains("audit.log:3: reordered"), "{err}");

    let mut removed = original.clone();
    removed.remove(3);
    write_lines(&log, &removed);
    let (code, _, err) = verify(dir.path(), &[s(&log)]);
    assert_eq!(code, 1);
    assert!(err.contains("audit.log:4: 1 line(s) removed"), "{err}");

    // The last two lines cut off: no closing checkpoint, and none can be forged without the key.
    write_lines(&log, &original[..4]);
    let (code, _, err) = verify(dir.path(), &[s(&log)]);
    assert_eq!(code, 1);
    assert!(
        err.contains("audit.log:5: the log does not end with the proxy's closing checkpoint"),
        "{err}"
    );
    let mut forged = original;
    forged[5] = forged[5].replace("shutdown", "periodic");
    write_lines(&log, &forged);
    let (code, _, err) = verify(dir.path(), &[s(&log)]);
    assert_eq!(code, 1);
    assert!(
        err.contains("audit.log:6: checkpoint edited or forged"),
        "{err}"
    );
}

#[tokio::test]
async fn a_restart_continues_the_chain_and_says_how_it_found_the_log() {
    let (dir, log, original) = closed_log().await;
    // A crash: the closing checkpoint never written, half a line at the end.
    let half = "{\"seq\":5,\"time\":\"2026";
    let crashed = format!("{}\n{half}", original[..5].join("\n"));
    std::fs::write(&log, crashed).unwrap();
    let config = std::fs::read_to_string(dir.path().join("scimgate.toml")).unwrap();
    let mut proxy = Proxy::start_in(dir, &config).await;
    send(
        client().post(proxy.url("/acme/Users")).json(&user("e")),
        201,
    )
    .await;
    proxy.terminate();
    proxy.wait().await;
    let all = lines(&log);
    let start = &all[5];
    assert_eq!(
        (start["reason"].as_str(), start["previous"].as_str()),
        (Some("start"), Some("unclean"))
    );
    assert_eq!(start["cut_bytes"], half.len());
    let (code, out, err) = verify(proxy.dir.path(), &[s(&log)]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("the proxy started on a log it had not closed"),
        "{out}"
    );
}

#[tokio::test]
async fn no_line_is_lost_under_a_thousand_concurrent_writes() {
    let (dir, config) = setup("", "", "max_connections_per_address = 2000");
    let proxy = Proxy::start_in(dir, &config).await;
    let c = client();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..1000 {
        let req = c
            .post(proxy.url("/acme/Users"))
            .bearer_auth("tok")
            .json(&user(&format!("u{i}")));
        tasks.spawn(async move { req.send().await.map(|r| r.status().as_u16()) });
    }
    let mut acknowledged = 0;
    while let Some(done) = tasks.join_next().await {
        if done.unwrap().is_ok_and(|s| s == 201) {
            acknowledged += 1;
        }
    }
    assert!(acknowledged > 0);
    let log = proxy.dir.path().join("audit.log");
    let created: Vec<Value> = changes(&log)
        .into_iter()
        .filter(|l| l["status"] == 201)
        .collect();
    assert_eq!(
        created.len(),
        acknowledged,
        "a line for every acknowledged write"
    );
    let total = lines(&log).len();
    let metrics = client()
        .get(format!("http://{}/metrics", proxy.admin))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        format!("scimgate_audit_lines_total {total}"),
        "scimgate_audit_pending_lines 0".to_owned(),
        "scimgate_audit_write_failures_total 0".to_owned(),
    ] {
        assert!(metrics.contains(&line), "{line} not in\n{metrics}");
    }
    assert!(metrics.contains("scimgate_audit_last_write_timestamp_seconds "));
}

#[tokio::test]
async fn rotation_continues_the_chain_across_files() {
    let (dir, config) = setup("max_file_bytes = 65536", "", "");
    let mut proxy = Proxy::start_in(dir, &config).await;
    let c = client();
    // About 450 bytes a line: three files or more.
    for i in 0..400 {
        send(
            c.post(proxy.url("/acme/Users"))
                .json(&user(&format!("r{i}"))),
            201,
        )
        .await;
    }
    proxy.terminate();
    proxy.wait().await;
    let d = proxy.dir.path();
    let mut files: Vec<PathBuf> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("audit.log")
        })
        .collect();
    files.sort();
    assert!(files.len() >= 3, "{files:?}");
    for f in &files {
        assert!(f.is_file(), "{}", f.display());
        assert!(std::fs::metadata(f).unwrap().len() <= 65536 + 1024);
    }
    let first_rotated = lines(&files[1]);
    assert_eq!(first_rotated.last().unwrap()["reason"], "rotate");
    let second = std::fs::read_to_string(&files[2]).unwrap();
    let last_of_first = std::fs::read_to_string(&files[1]).unwrap();
    let last_of_first = last_of_first.lines().last().unwrap();
    let head: Value = serde_json::from_str(second.lines().next().unwrap()).unwrap();
    use sha2::Digest;
    assert_eq!(
        head["prev"],
        hex::encode(sha2::Sha256::digest(last_of_first.as_bytes()))
    );
    // Given in any order, the files verify as one chain.
    let args: Vec<&str> = files.iter().map(|f| s(f)).collect();
    let (code, out, err) = verify(d, &args);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("intact: {} file(s)", files.len())),
        "{out}"
    );
    let created: usize = files.iter().map(|f| changes(f).len()).sum();
    assert_eq!(created, 400);
    // The end of a rotated file cut off: the next file's first line says lines are missing.
    let mut cut: Vec<String> = last_of_first_lines(&files[1]);
    cut.truncate(cut.len() - 2);
    write_lines(&files[1], &cut);
    let (code, _, err) = verify(d, &args);
    assert_eq!(code, 1);
    assert!(
        err.contains("audit.log.000002:1: 2 line(s) removed"),
        "{err}"
    );
}

fn last_of_first_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn grep_finds_who_was_deactivated_and_who_was_added_to_which_group() {
    let (dir, config) = setup(
        "stdout = true",
        "idp = \"entra\"\n[tenant.audit]\nloggable = [\"active\"]\n",
        "",
    );
    let mut proxy = Proxy::start_in(dir, &config).await;
    let c = client();
    let u = send(c.post(proxy.url("/acme/Users")).json(&user("leaver")), 201).await;
    let id = u["id"].as_str().unwrap().to_owned();
    let g = send(c.post(proxy.url("/acme/Groups")).json(&json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Admins"})), 201).await;
    let gid = g["id"].as_str().unwrap().to_owned();
    let add = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Add", "path": "members", "value": [{"value": id}]}]});
    let resp = c
        .patch(proxy.url(&format!("/acme/Groups/{gid}")))
        .bearer_auth("tok")
        .json(&add)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    let off = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Replace", "path": "active", "value": "False"}]});
    send(
        c.patch(proxy.url(&format!("/acme/Users/{id}"))).json(&off),
        200,
    )
    .await;
    // `stdout = true`: the same lines, for a log shipper, between the log lines.
    proxy.wait_for_log("\"values\":{\"active\":false}", 1).await;
    let shipped = proxy.logs();
    let file = std::fs::read_to_string(proxy.dir.path().join("audit.log")).unwrap();
    assert!(file.lines().all(|l| shipped.contains(l)), "{shipped}");
    proxy.terminate();
    proxy.wait().await;
    let log = proxy.dir.path().join("audit.log");
    let grep = |extra: &[&str]| {
        let mut args = vec!["audit", "grep", "--tenant", "acme"];
        args.extend_from_slice(extra);
        args.push(s(&log));
        run_cli(&args)
    };
    let (code, out, err) = grep(&["--user", &id, "--since", "7d", "--summary"]);
    assert_eq!(code, 0, "{err}");
    let found: Vec<&str> = out.lines().collect();
    assert_eq!(found.len(), 3, "{out}");
    assert!(
        found[1].contains(&format!("patch Group {gid}"))
            && found[1].contains(&format!("added members {id}")),
        "{out}"
    );
    assert!(found[1].contains("(entra)"), "by which IdP: {out}");
    assert!(found[2].contains("active=false"), "the deactivation: {out}");
    let (code, out, _) = grep(&["--group", &gid]);
    assert_eq!(code, 0);
    assert_eq!(
        out.lines().count(),
        2,
        "the group's create and its member add: {out}"
    );
    let line: Value = serde_json::from_str(out.lines().nth(1).unwrap()).unwrap();
    assert_eq!(line["members_added"], json!([id]));
    let (code, out, _) = grep(&["--user", &id, "--until", "2000-01-01T00:00:00Z"]);
    assert_eq!((code, out.as_str()), (1, ""));
}

#[test]
fn check_says_whether_an_audit_log_is_kept() {
    let (dir, config) = setup("", "", "");
    let path = dir.path().join("scimgate.toml");
    std::fs::write(&path, &config).unwrap();
    let (code, out, err) = run_cli(&["check", "--config", s(&path)]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("  audit    ") && out.contains("audit.log"),
        "{out}"
    );
    assert!(
        !dir.path().join("audit.log").exists(),
        "check does not touch the log"
    );
    let without = format!("{}{}", server(""), tenant("acme", "memory:", "tok"));
    std::fs::write(&path, without).unwrap();
    let (code, out, _) = run_cli(&["check", "--config", s(&path)]);
    assert_eq!(code, 0);
    assert!(out.contains("no audit log is kept"), "{out}");
}

#[tokio::test]
async fn a_log_the_proxy_cannot_continue_stops_it_from_starting() {
    let (dir, config) = setup("", "", "");
    std::fs::write(dir.path().join("audit.log"), "not an audit line\n").unwrap();
    let path = dir.path().join("scimgate.toml");
    std::fs::write(&path, &config).unwrap();
    let (code, _, err) = run_cli(&["serve", "--config", s(&path)]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("cannot open the audit log") && err.contains("not an audit line"),
        "{err}"
    );
}

/// An app that does Bulk itself: its BulkResponse, with the new user's location.
fn bulk_app(path: &str, addr: std::net::SocketAddr) -> (u16, String) {
    if !path.ends_with("/Bulk") {
        return (404, String::new());
    }
    let answer = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkResponse"],
        "Operations": [
            {"method": "POST", "bulkId": "n", "location": format!("http://{addr}/scim/v2/Users/new-1"), "status": "201"},
            {"method": "PATCH", "location": format!("http://{addr}/scim/v2/Groups/g-1"), "status": "200"}]});
    (200, answer.to_string())
}

#[tokio::test]
async fn a_bulk_the_app_carries_out_gets_a_line_per_operation() {
    let app = json_upstream(bulk_app).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("audit.key"), KEY).unwrap();
    let config = format!(
        "{}[audit]\npath = \"audit.log\"\nkey_file = \"audit.key\"\n{}",
        server(""),
        complete_app_tenant(app, "")
    );
    let proxy = Proxy::start_in(dir, &config).await;
    let bulk = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "n", "data": user("nat")},
            {"method": "PATCH", "path": "/Groups/g-1", "data": {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "add", "path": "members", "value": [{"value": "new-1"}]}]}}]});
    let resp = client()
        .post(proxy.url("/e/Bulk"))
        .bearer_auth("tok")
        .json(&bulk)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(
        answer["Operations"][0]["status"], "201",
        "the answer is passed on whole"
    );
    let all = changes(&proxy.dir.path().join("audit.log"));
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(
        (
            all[0]["op"].as_str(),
            all[0]["id"].as_str(),
            all[0]["status"].as_u64()
        ),
        (Some("create"), Some("new-1"), Some(201))
    );
    assert_eq!(all[0]["bulk_op"], 0);
    assert_eq!(
        (
            all[1]["op"].as_str(),
            all[1]["id"].as_str(),
            all[1]["status"].as_u64()
        ),
        (Some("patch"), Some("g-1"), Some(200))
    );
    assert_eq!(all[1]["members_added"], json!(["new-1"]));
}
