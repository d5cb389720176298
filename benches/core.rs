//! Micro-benchmarks of the pure work on the request path, on realistic SCIM payloads:
//! token check, JSON guard, filter parse and evaluation, PATCH application (a user's attributes
//! and a large group's members), error rewriting, and stage 6 (IdP normalization with its schema
//! check); and, with 10,000 tenants, loading the configuration into the running state and
//! routing one request.
//! Run with `cargo bench --bench core`; figures go in BENCHMARKS.md.

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use std::path::{Path, PathBuf};

use http::{HeaderMap, HeaderValue, Method};
use scimgate::config::{AuthConfig, BearerToken, Config};
use scimgate::rule_pack::request::{normalize, Request};
use scimgate::rule_pack::{schema, Packs};
use scimgate::runtime::Runtime;
use scimgate::scim::discovery::{Extensions, SchemaInfo, GROUP, USER};
use scimgate::scim::patch::{PatchRequest, MAX_EXAMINED, MAX_OPERATIONS, MAX_VALUES};
use scimgate::scim::request::Endpoint;
use scimgate::scim::{filter, json as scim_json};

#[path = "../examples/many_tenants.rs"]
#[allow(dead_code)] // its `main` and the tokens are for the example and the tests
mod many_tenants;

/// The allocator the binary runs with (src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// RFC 7643 §8.2: the full representation of a user, the size an IdP sends on create.
fn user() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "id": "2819c223-7f76-453a-919d-413861904646",
        "externalId": "701984",
        "userName": "bjensen@example.com",
        "name": {"formatted": "Ms. Barbara J Jensen, III", "familyName": "Jensen", "givenName": "Barbara",
                 "middleName": "Jane", "honorificPrefix": "Ms.", "honorificSuffix": "III"},
        "displayName": "Babs Jensen",
        "nickName": "Babs",
        "profileUrl": "https://login.example.com/bjensen",
        "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true},
                   {"value": "babs@jensen.org", "type": "home"}],
        "addresses": [{"type": "work", "streetAddress": "100 Universal City Plaza", "locality": "Hollywood",
                       "region": "CA", "postalCode": "91608", "country": "USA", "primary": true}],
        "phoneNumbers": [{"value": "555-555-5555", "type": "work"}, {"value": "555-555-4444", "type": "mobile"}],
        "userType": "Employee",
        "title": "Tour Guide",
        "preferredLanguage": "en-US",
        "locale": "en-US",
        "timezone": "America/Los_Angeles",
        "active": true,
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "employeeNumber": "701984", "costCenter": "4130", "organization": "Universal Studios",
            "division": "Theme Park", "department": "Tour Operations",
            "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d", "displayName": "John Smith"}},
        "meta": {"resourceType": "User", "created": "2010-01-23T04:56:22Z", "lastModified": "2011-05-13T04:42:34Z",
                 "version": "W/\"3694e05e9dff591\"",
                 "location": "https://example.com/v2/Users/2819c223-7f76-453a-919d-413861904646"}
    })
}

fn auth(c: &mut Criterion) {
    let tokens: Vec<BearerToken> = ["old-token", "current-token"]
        .iter()
        .map(|t| BearerToken {
            sha256: Sha256::digest(t.as_bytes()).into(),
            label: (*t).into(),
            not_after: None,
        })
        .collect();
    let cfg = AuthConfig {
        bearer: tokens,
        mtls: None,
    };
    let now = time::OffsetDateTime::now_utc();
    c.bench_function("auth: bearer token against 2 hashes", |b| {
        b.iter(|| {
            scimgate::auth::authenticate(&cfg, Some(black_box(b"Bearer current-token")), None, now)
        })
    });
}

fn json_guard(c: &mut Criterion) {
    let body = serde_json::to_vec(&user()).expect("serializes");
    c.bench_function(
        &format!("json guard: depth + syntax, {} B user", body.len()),
        |b| b.iter(|| scim_json::check(black_box(&body))),
    );
}

fn filters(c: &mut Criterion) {
    let text = r#"userName eq "bjensen@example.com" and emails[type eq "work" and value co "@example.com"]"#;
    c.bench_function("filter: parse a two-clause filter", |b| {
        b.iter(|| filter::parse(black_box(text)))
    });
    let parsed = filter::parse(text).expect("valid filter");
    let doc = user();
    let info = SchemaInfo::new(&USER);
    c.bench_function("filter: evaluate it on the RFC user", |b| {
        b.iter(|| filter::matches(&parsed, black_box(&doc), &info))
    });
}

fn patches(c: &mut Criterion) {
    // Entra's default user PATCH, RFC-clean.
    let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
        {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "b.jensen@example.com"},
        {"op": "replace", "path": "name.familyName", "value": "Jensen-Smith"},
        {"op": "add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Ops"},
        {"op": "replace", "path": "active", "value": false}]});
    let info = SchemaInfo::new(&USER);
    let doc = user();
    c.bench_function("patch: parse + apply 4 operations to the RFC user", |b| {
        b.iter(|| {
            let patch = PatchRequest::from_json(black_box(&body)).expect("valid patch");
            let mut target = doc.clone();
            patch.apply(&mut target, &info)
        })
    });
}

/// A group of `n` members with ids `{prefix}{i}`, as the memory store hands it to PATCH.
fn group_of(n: usize, prefix: &str) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": "e9e30dba",
           "displayName": "All staff", "members": members(0..n, prefix)})
}

fn members(ids: std::ops::Range<usize>, prefix: &str) -> Vec<Value> {
    ids.map(|i| json!({"value": format!("{prefix}{i:08}")}))
        .collect()
}

fn patch_op(ops: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
}

/// Large groups: Entra's and Okta's member adds (one `add` with a value array, split at the
/// bound on values per operation) and Okta's member removes (one `remove members[value eq "…"]`
/// per member), then the shapes that cost a pass over the group per operation, as many as the
/// budget of values examined allows: what a hostile request can make the proxy do.
fn group_patches(c: &mut Criterion) {
    let mut group = c.benchmark_group("patch");
    group.sample_size(10);
    for n in [2_000, 20_000] {
        let adds: Vec<Value> = members(0..n, "n")
            .chunks(MAX_VALUES)
            .map(|chunk| json!({"op": "add", "path": "members", "value": chunk}))
            .collect();
        let name = format!("add {n} members to a group of {n}");
        bench_patch(&mut group, &name, &group_of(n, "u"), adds);
    }
    let doc = group_of(20_000, "u");
    let each = |n: usize, op: fn(usize) -> Value| (0..n).map(|i| op(i * 20)).collect();
    let removes = each(
        MAX_OPERATIONS,
        |i| json!({"op": "remove", "path": format!("members[value eq \"u{i:08}\"]")}),
    );
    let name = "remove 1000 members, one operation each, from a group of 20000";
    bench_patch(&mut group, name, &doc, removes);
    // As many passes over the group as the budget allows: a `co` filter is no run, and each add
    // looks for the value already present.
    let passes = MAX_EXAMINED / 20_000;
    let scans = each(
        passes,
        |i| json!({"op": "remove", "path": format!("members[value co \"x{i}\"]")}),
    );
    let name = format!("{passes} removals by `co` on a group of 20000 (the budget)");
    bench_patch(&mut group, &name, &doc, scans);
    // Each add grows the group by one, so one fewer fits.
    let adds = each(
        passes - 1,
        |i| json!({"op": "add", "path": "members", "value": [{"value": format!("n{i}")}]}),
    );
    let name = format!(
        "{} adds of one member to a group of 20000 (the budget)",
        passes - 1
    );
    bench_patch(&mut group, &name, &doc, adds);
    group.finish();
}

fn bench_patch(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    doc: &Value,
    ops: Vec<Value>,
) {
    let info = SchemaInfo::new(&GROUP);
    let body = patch_op(Value::Array(ops));
    group.bench_function(name, |b| {
        b.iter_batched(
            || doc.clone(),
            |mut target| {
                let patch = PatchRequest::from_json(black_box(&body)).expect("valid patch");
                patch.apply(&mut target, &info).expect("applies")
            },
            BatchSize::LargeInput,
        )
    });
}

fn error_rewrite(c: &mut Criterion) {
    let body = br#"{"error":"user already exists","code":"DUPLICATE"}"#;
    c.bench_function("answer: rewrite a framework 409 into a SCIM Error", |b| {
        b.iter(|| {
            scimgate::response::scim_error_body(409, Some("application/json"), black_box(body))
        })
    });
}

/// Stage 6 on one request, as the proxy does it: parse the body, pick the pack (auto), run it,
/// run the schema check, serialize the result.
fn normalize_once(packs: &Packs, method: &Method, headers: &HeaderMap, raw: &[u8]) -> Vec<u8> {
    let pack = packs.detect(headers, raw, "").expect("generic exists");
    let req = Request {
        method,
        endpoint: Endpoint::Users,
        search: false,
        headers,
        query: None,
        extensions: Extensions::none(),
    };
    // Parsed and written as stage 5 and the way upstream do it.
    let mut doc = scim_json::parse(raw).expect("JSON");
    let done = normalize(&pack, &req, Some(&mut doc));
    let rt = done.resource.expect("a Users request");
    schema::check(rt, done.shape, &doc, Extensions::none()).expect("schema-valid");
    black_box(done.fired);
    scim_json::to_vec(&doc, raw.len())
}

/// The CPU time of the benchmark's own thread rather than the wall clock: stage 6's target is
/// per request on one core, and a build or a load generator sharing the machine stretches wall
/// time (by ±20% here) but not the time this thread ran.
struct ThreadCpu;

impl Measurement for ThreadCpu {
    type Intermediate = cpu_time::ThreadTime;
    type Value = std::time::Duration;

    fn start(&self) -> Self::Intermediate {
        cpu_time::ThreadTime::now()
    }
    fn end(&self, started: Self::Intermediate) -> Self::Value {
        started.elapsed()
    }
    fn add(&self, a: &Self::Value, b: &Self::Value) -> Self::Value {
        *a + *b
    }
    fn zero(&self) -> Self::Value {
        std::time::Duration::ZERO
    }
    fn to_f64(&self, value: &Self::Value) -> f64 {
        value.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &Nanoseconds
    }
}

/// Nanoseconds shown as µs, which is what stage 6's figures are in.
struct Nanoseconds;

impl ValueFormatter for Nanoseconds {
    fn scale_values(&self, _typical: f64, values: &mut [f64]) -> &'static str {
        values.iter_mut().for_each(|v| *v /= 1000.0);
        "µs (thread CPU)"
    }
    fn scale_throughputs(
        &self,
        _: f64,
        throughput: &Throughput,
        values: &mut [f64],
    ) -> &'static str {
        let per_iteration = match *throughput {
            Throughput::Bytes(n) | Throughput::BytesDecimal(n) | Throughput::Elements(n) => {
                n as f64
            }
        };
        values
            .iter_mut()
            .for_each(|v| *v = per_iteration * 1e9 / *v);
        "per CPU-second"
    }
    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

fn normalization(c: &mut Criterion<ThreadCpu>) {
    let packs = Packs::load(None).expect("built-in packs compile");
    // Entra's legacy PATCH of several attributes (QUIRKS E1/E2/E7): capitalised ops, a string
    // boolean, a bare manager id, dotted and URN-qualified keys in a path-less value.
    let entra = serde_json::to_vec(&json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
        {"op": "Replace", "path": "active", "value": "False"},
        {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "bjensen@example.com"},
        {"op": "Replace", "path": "name.givenName", "value": "Barbara"},
        {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": "26118915-6090-4610-87e4-49d8ca9f808d"},
        {"op": "Replace", "value": {"displayName": "Babs Jensen", "name.familyName": "Jensen", "title": "Tour Guide",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "701984",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Tour Operations"}},
        {"op": "Add", "path": "roles", "value": [{"value": "{\"id\":\"06b07648-ecfe-589f-9d2f-6325724a46ee\",\"value\":\"25\",\"displayName\":\"Role1234\"}"}]},
        {"op": "Replace", "path": "addresses[type eq \"work\"].formatted", "value": "100 Universal City Plaza, Hollywood, CA 91608 USA"},
        {"op": "Replace", "path": "phoneNumbers[type eq \"work\"].value", "value": "555-555-5555"}]}))
    .expect("serializes");
    // Okta's user create (QUIRKS O4), grown to the RFC user's size: readOnly groups, id, meta.
    let mut okta = user();
    okta["groups"] = json!([]);
    okta["password"] = json!("1mz050nq");
    let okta = serde_json::to_vec(&okta).expect("serializes");
    let mut okta_headers = HeaderMap::new();
    okta_headers.insert(
        http::header::USER_AGENT,
        HeaderValue::from_static("Okta SCIM Client 1.0.0"),
    );
    let none = HeaderMap::new();
    // The bundled schemas are parsed on first use; that one-time cost is not per request.
    normalize_once(&packs, &Method::PATCH, &none, &entra);
    let mut group = c.benchmark_group("normalize");
    group.bench_function(format!("entra PATCH, {} B", entra.len()), |b| {
        b.iter(|| normalize_once(&packs, &Method::PATCH, &none, black_box(&entra)))
    });
    group.bench_function(format!("okta POST /Users, {} B", okta.len()), |b| {
        b.iter(|| normalize_once(&packs, &Method::POST, &okta_headers, black_box(&okta)))
    });
    group.finish();
}

/// What `scimgate serve` and a reload do with the file: parse, validate, build the snapshot.
/// The generated file is what `cargo run --release --example many_tenants` writes.
fn load(text: &str, path: &Path) -> Runtime {
    let config = Config::from_toml(text, path).expect("the generated file is valid");
    Runtime::build(config).expect("builds")
}

fn fleet(tenants: usize) -> (String, PathBuf) {
    let fleet = many_tenants::Fleet {
        tenants,
        apps: vec!["127.0.0.1:3000".into(), "127.0.0.1:3001".into()],
    };
    (fleet.config(), PathBuf::from("scimgate.toml"))
}

fn tenant_load(c: &mut Criterion) {
    let (text, path) = fleet(10_000);
    let mut group = c.benchmark_group("tenants");
    group.sample_size(10);
    group.bench_function("load 10000 tenants (parse, validate, build)", |b| {
        b.iter(|| load(black_box(&text), &path))
    });
    let rt = load(&text, &path);
    group.bench_function("reload 10000 tenants, the same file", |b| {
        b.iter(|| {
            let config = Config::from_toml(black_box(&text), &path).expect("valid");
            rt.reload(config).expect("reloads")
        })
    });
    group.finish();
}

/// Routing one request by path prefix and one by host, among 1 and among 10,000 tenants: the
/// table's two hash lookups cost the same whatever its size.
fn tenant_routing(c: &mut Criterion) {
    let mut group = c.benchmark_group("route");
    for n in [1, 10_000] {
        let (text, path) = fleet(n);
        let snapshot = load(&text, &path).snapshot();
        let last = n - 1;
        let (prefix, host) = if n == 1 {
            (0, None)
        } else {
            // The last tenants of each kind: a list would find them last.
            let host = (0..n).rev().find(|&i| many_tenants::routed_by_host(i));
            let prefix = (0..n).rev().find(|&i| !many_tenants::routed_by_host(i));
            (prefix.unwrap_or(last), host)
        };
        let by_path = format!("/{}/Users/2819c223", many_tenants::id(prefix));
        group.bench_function(format!("by path prefix among {n}"), |b| {
            b.iter(|| {
                let routed = snapshot
                    .tenants
                    .lookup(Some("scim.test:8443"), None, black_box(&by_path))
                    .expect("routed");
                routed.prefix_len
            })
        });
        if let Some(host) = host {
            let name = format!("{}.scim.test:8443", many_tenants::id(host));
            group.bench_function(format!("by host among {n}"), |b| {
                b.iter(|| {
                    let routed = snapshot
                        .tenants
                        .lookup(Some(black_box(&name)), None, "/Users/2819c223")
                        .expect("routed");
                    routed.prefix_len
                })
            });
        }
    }
    group.finish();
}

/// The outbound policy on the load table's 1.5 KB answer: walked as text (the members the
/// deny list names read, the rest passed on) against parsed, walked and written whole.
fn policy_walks(c: &mut Criterion) {
    #[derive(serde::Deserialize)]
    struct T {
        attributes: scimgate::policy::RawAttributes,
    }
    let t: T = toml::from_str(r#"attributes = { deny = ["employeeNumber"] }"#).expect("TOML");
    let policy = scimgate::policy::Policy::compile(&t.attributes).expect("a policy");
    let text = include_str!("load/user.json").trim_end();
    let out = scimgate::policy::Direction::Outbound;
    let user = &USER;
    c.bench_function(
        &format!("json: the members of a {} B user", text.len()),
        |b| b.iter(|| scim_json::members(black_box(text)).expect("an object")),
    );
    c.bench_function(
        "policy: deny one attribute, the answer walked as text",
        |b| {
            b.iter(|| {
                let edit = policy.apply_text(out, user, black_box(text), false);
                edit.expect("for the text walk")
                    .expect("lists never refuse")
            })
        },
    );
    c.bench_function(
        "policy: deny one attribute, the answer parsed and written",
        |b| {
            b.iter(|| {
                let mut doc: Value = serde_json::from_str(black_box(text)).expect("JSON");
                policy
                    .apply_resource(out, user, &mut doc)
                    .expect("lists never refuse");
                serde_json::to_vec(&doc).expect("serializes")
            })
        },
    );
}

criterion_group!(
    benches,
    auth,
    json_guard,
    policy_walks,
    filters,
    patches,
    group_patches,
    error_rewrite,
    tenant_load,
    tenant_routing
);
criterion_group! {
    name = stage6;
    config = Criterion::default().with_measurement(ThreadCpu);
    targets = normalization
}

criterion_main!(benches, stage6);
