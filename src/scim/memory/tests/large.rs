//! PATCH on large groups through the store, in the shapes of the quadratic-work finding: adding
//! 20,000 members to a group of 20,000 held a worker and the store's write lock for a minute
//! when every added value was compared with every member. Each scenario runs on its own thread
//! under a generous bound that only guards against a hang; none asserts a duration.

use std::collections::HashSet;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use serde_json::{json, Value};

use super::*;
use crate::scim::urn;

/// Linear work finishes these scenarios in well under a second even in a debug build; the old
/// quadratic work took minutes.
const HANG_GUARD: Duration = Duration::from_secs(30);

fn finishes<T: Send + 'static>(scenario: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, outcome) = mpsc::channel();
    let worker = thread::spawn(move || {
        // The receiver may have given up already; then there is no one left to tell.
        let _ = done.send(scenario());
    });
    match outcome.recv_timeout(HANG_GUARD) {
        Ok(value) => value,
        Err(mpsc::RecvTimeoutError::Disconnected) => match worker.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => panic!("the scenario ended without an outcome"),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("not finished after {HANG_GUARD:?}: the PATCH work is no longer linear")
        }
    }
}

fn ids(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix}{i:08}")).collect()
}

fn group_with(store: &MemoryStore, members: &[String]) -> String {
    let members: Vec<&str> = members.iter().map(String::as_str).collect();
    post_group(store, "All staff", &members)
}

fn patch_group(store: &MemoryStore, group: &str, ops: Value) -> Value {
    let body = json!({"schemas": [urn::PATCH_OP], "Operations": ops});
    let a = call(
        store,
        Method::Patch,
        &format!("/Groups/{group}"),
        Some(body),
    );
    assert_eq!(a.status, 200, "{}", a.doc);
    a.doc
}

fn member_ids(doc: &Value) -> Vec<String> {
    let members = doc["members"].as_array().cloned().unwrap_or_default();
    members
        .iter()
        .filter_map(|m| m["value"].as_str().map(str::to_owned))
        .collect()
}

fn add_members(values: &[Value]) -> Value {
    json!({"op": "add", "path": "members", "value": values})
}

#[test]
fn adding_20000_members_to_a_group_of_20000_keeps_each_member_once() {
    let (before, after, in_one) = finishes(|| {
        let store = MemoryStore::new();
        let old = ids("u", 0..20_000);
        let group = group_with(&store, &old);
        // 19,000 new members and 1,000 that are already in the group (RFC 7644 §3.5.2.1: an
        // existing value is not added again), at most 10,000 to an operation.
        let mut added: Vec<Value> = ids("n", 0..19_000)
            .into_iter()
            .map(|id| json!({"value": id}))
            .collect();
        added.extend(old.iter().step_by(20).map(|id| json!({"value": id})));
        let body = json!({"schemas": [urn::PATCH_OP], "Operations": [add_members(&added)]});
        let in_one = call(
            &store,
            Method::Patch,
            &format!("/Groups/{group}"),
            Some(body),
        );
        let (first, second) = added.split_at(10_000);
        let ops = json!([add_members(first), add_members(second)]);
        let doc = patch_group(&store, &group, ops);
        (old, member_ids(&doc), in_one)
    });
    assert_error(&in_one, 413, None);
    assert_eq!(after.len(), 39_000);
    assert_eq!(after[..20_000], before[..]);
    assert_eq!(after[20_000..], ids("n", 0..19_000)[..]);
}

#[test]
fn removing_1000_members_one_operation_each_from_a_group_of_40000() {
    // Okta's shape, and Entra's legacy remove once the rule packs have split it: one
    // `remove members[value eq "…"]` per member, as many as a request may carry.
    let (gone, after) = finishes(|| {
        let store = MemoryStore::new();
        let old = ids("u", 0..40_000);
        let group = group_with(&store, &old);
        let gone: Vec<String> = old.iter().step_by(40).cloned().collect();
        let ops: Vec<Value> = gone
            .iter()
            .map(|id| json!({"op": "remove", "path": format!("members[value eq \"{id}\"]")}))
            .collect();
        let doc = patch_group(&store, &group, Value::Array(ops));
        (gone, member_ids(&doc))
    });
    assert_eq!(gone.len(), 1_000);
    assert_eq!(after.len(), 39_000);
    let gone: HashSet<&String> = gone.iter().collect();
    assert!(after.iter().all(|m| !gone.contains(m)));
}
