//! Writes a configuration with many tenants, each with its own route, upstream and bearer
//! tokens, as a provider hosting one tenant per customer has: the input of the load, reload and
//! routing measurements in BENCHMARKS.md, and of the integration test that serves 10,000 tenants.

/// What one generated configuration holds.
pub struct Fleet {
    pub tenants: usize,
    /// The `host:port` of every app; tenant `i` goes to `apps[i % apps.len()]`, under a base
    /// path of its own (`/scim/{id}`), as tenants of a hosted product do.
    pub apps: Vec<String>,
}

/// Tenant `i`'s id: `t00000`, `t00001`, ….
pub fn id(i: usize) -> String {
    format!("t{i:05}")
}

/// Every third tenant is routed by host (`{id}.scim.test`), the others by path prefix.
pub fn routed_by_host(i: usize) -> bool {
    i % 3 == 2
}

/// The bearer token tenant `i`'s IdP presents (its current one; an older one is listed too).
pub fn token(i: usize) -> String {
    format!("token-{}-current", id(i))
}

/// The SHA-256 of a token in hex, as `scimgate token hash` prints it.
fn sha256_hex(token: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

/// The `[server]`, `[admin]` and `[log]` tables, on ephemeral loopback ports.
pub fn head() -> String {
    "[server]\nlisten = \"127.0.0.1:0\"\n\n[admin]\nlisten = \"127.0.0.1:0\"\n\n[log]\nformat = \"json\"\nlevel = \"info\"\n\n".to_owned()
}

impl Fleet {
    /// The whole file: `head()` and one `[[tenant]]` per tenant. A realistic mix: two tokens
    /// per tenant (one expiring), the IdP packs in turn, limits on half the tenants, an
    /// attribute policy on a quarter, an app pack and a shared cap on some.
    pub fn config(&self) -> String {
        let mut out = head();
        out.reserve(self.tenants * 640);
        for i in 0..self.tenants {
            self.tenant(i, &mut out);
        }
        out
    }

    fn tenant(&self, i: usize, out: &mut String) {
        use std::fmt::Write;
        const IDPS: [&str; 6] = ["okta", "entra", "google", "onelogin", "auto", "generic"];
        let id = id(i);
        let app = &self.apps[i % self.apps.len()];
        let route = if routed_by_host(i) {
            format!("host = \"{id}.scim.test\"")
        } else {
            format!("path_prefix = \"/{id}\"")
        };
        let cap = if i % 10 == 0 {
            ", max_in_flight = 32"
        } else {
            ""
        };
        let _ = writeln!(out, "[[tenant]]\nid = \"{id}\"\nroute = {{ {route} }}");
        let _ = writeln!(
            out,
            "upstream = {{ url = \"http://{app}/scim/{id}\", timeout = \"20s\"{cap} }}"
        );
        let _ = writeln!(out, "idp = \"{}\"", IDPS[i % IDPS.len()]);
        let _ = writeln!(
            out,
            "auth.bearer = [\n  {{ sha256 = \"{}\", label = \"{id}-2026\" }},\n  {{ sha256 = \"{}\", label = \"{id}-2025\", not_after = \"2027-01-31T00:00:00Z\" }},\n]",
            sha256_hex(&token(i)),
            sha256_hex(&format!("token-{id}-old"))
        );
        if i % 2 == 0 {
            out.push_str("limits = { rate_per_s = 50, burst = 100, max_wait = \"5s\", max_in_flight = 16 }\n");
        }
        if i % 4 == 1 {
            out.push_str("attributes = { deny = [\"employeeNumber\", \"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter\"], detect = [\"us_ssn\", \"card\"], on_detect = \"redact\" }\n");
        }
        if i % 7 == 3 {
            out.push_str("app_rules = [\"app-generic\"]\n");
        }
        out.push('\n');
    }
}

#[allow(dead_code)] // unused where the benches and tests include this file as a module
fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let mut fleet = Fleet {
        tenants: 10_000,
        apps: Vec::new(),
    };
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--tenants", Some(n)) if n.parse::<usize>().is_ok_and(|n| n > 0) => {
                fleet.tenants = n.parse().unwrap_or(1);
            }
            ("--app", Some(addr)) => fleet.apps.push(addr),
            _ => {
                eprintln!("usage: many_tenants [--tenants N] [--app HOST:PORT]... > big.toml");
                return std::process::ExitCode::from(2);
            }
        }
    }
    if fleet.apps.is_empty() {
        fleet.apps.push("127.0.0.1:3000".to_owned());
    }
    print!("{}", fleet.config());
    std::process::ExitCode::SUCCESS
}
