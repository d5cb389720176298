//! Raw configuration → validated [`Config`]. Every problem is collected, not just the first,
//! and each names the file, the line and the key, and says what is expected.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::{HeaderValue, Uri};
use toml::Spanned;
use tracing_subscriber::filter::{EnvFilter, LevelFilter};

use super::raw::*;
use crate::limit::RawLimits;
use crate::upstream::client::DEFAULT_POOL_IDLE;

/// More open connections than a process can hold file descriptors for, in practice; the
/// connection cap is a semaphore that a larger count would overflow.
const MAX_CONNECTIONS: usize = 1 << 20;

/// Upstream calls in flight for the whole process, unless `server.max_upstream_calls` says
/// otherwise: far above what one app should see, low enough that a flood of emulated work
/// cannot open thousands of connections.
const DEFAULT_MAX_UPSTREAM_CALLS: usize = 1024;
use super::*;

/// The shortest checkpoint key accepted: 128 bits.
const MIN_AUDIT_KEY: usize = 16;
const DEFAULT_AUDIT_FILE_BYTES: u64 = 100 << 20;
const MIN_AUDIT_FILE_BYTES: u64 = 64 << 10;

/// Loopback only: the probes and `/metrics` need no token.
const DEFAULT_ADMIN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9090);

pub(super) struct Checker<'a> {
    text: &'a str,
    file: &'a Path,
    pub(super) base: &'a Path,
    /// Whether the listener speaks TLS, and whether it has a CA for client certificates of its
    /// own: `auth.mtls` needs TLS, and a CA (the listener's or the tenant's).
    pub(super) tls: bool,
    pub(super) client_ca: bool,
    /// `server.tls.client_ca` from the file's folder, where tenants' pinned issuers are looked
    /// up.
    pub(super) listener_ca: Option<PathBuf>,
    /// Every tenant's own client CA, which the listener's handshake accepts too.
    pub(super) tenant_cas: Vec<PathBuf>,
    /// Whether the file has an `[audit]` section, which a tenant's `audit` needs.
    audit_on: bool,
    problems: Vec<String>,
}

pub(super) fn validate(
    raw: RawConfig,
    text: &str,
    file: &Path,
    base: &Path,
) -> Result<Config, Vec<String>> {
    let mut c = Checker {
        text,
        file,
        base,
        tls: raw.server.tls.is_some(),
        client_ca: raw
            .server
            .tls
            .as_ref()
            .is_some_and(|t| t.client_ca.is_some()),
        listener_ca: raw
            .server
            .tls
            .as_ref()
            .and_then(|t| t.client_ca.as_ref())
            .map(|ca| base.join(ca.get_ref())),
        tenant_cas: Vec::new(),
        audit_on: false,
        problems: Vec::new(),
    };
    let mut server = c.server(&raw.server);
    let admin = c.admin(raw.admin.as_ref());
    let log = Log {
        format: raw.log.format.unwrap_or_default(),
        level: c.log_level(raw.log.level.as_ref()),
    };
    let packs = c.packs(raw.rules.as_ref());
    let audit = raw.audit.as_ref().and_then(|a| c.audit(a));
    c.audit_on = raw.audit.is_some();
    let tenants = c.tenants(&raw.tenants, &packs);
    if let Some(f) = &raw.server.token_key_file {
        if tenants.iter().all(|t| t.schemes.oauth.is_none()) {
            let msg = "has no effect: no tenant has auth.oauth, so the proxy issues no tokens";
            c.problem(f.span(), "server.token_key_file", msg);
        }
    }
    if let Some(tls) = server.as_mut().and_then(|s| s.tls.as_mut()) {
        tls.tenant_cas = std::mem::take(&mut c.tenant_cas);
    }
    match (c.problems.is_empty(), server) {
        (true, Some(server)) => Ok(Config {
            server,
            admin,
            log,
            packs: Arc::new(packs),
            tenants,
            audit,
        }),
        _ => Err(c.problems),
    }
}

/// Requests the admin API keeps per tenant unless `admin.request_log` says otherwise.
const DEFAULT_REQUEST_LOG: usize = 100;
/// Enough to look back over a sync; each entry is a few hundred bytes.
const MAX_REQUEST_LOG: usize = 10_000;

impl Checker<'_> {
    fn admin(&mut self, raw: Option<&RawAdmin>) -> Admin {
        let Some(raw) = raw else {
            return Admin {
                listen: DEFAULT_ADMIN,
                token_sha256: None,
                request_log: DEFAULT_REQUEST_LOG,
            };
        };
        let listen = match &raw.listen {
            Some(l) => self.addr(l, "admin.listen").unwrap_or(DEFAULT_ADMIN),
            None => DEFAULT_ADMIN,
        };
        let token_sha256 = raw.token_sha256.as_ref().and_then(|t| {
            let mut sha256 = [0u8; 32];
            if hex::decode_to_slice(t.get_ref(), &mut sha256).is_err() {
                let msg = "expected the admin token's SHA-256 as 64 hex characters (`scimgate token new`, or `scimgate token hash` of a token of your own)";
                self.problem(t.span(), "admin.token_sha256", msg);
                return None;
            }
            Some(sha256)
        });
        let request_log = match &raw.request_log {
            Some(n) if usize::try_from(*n.get_ref()).map_or(true, |n| n > MAX_REQUEST_LOG) => {
                let msg =
                    format!("expected a whole number from 0 (keep none) to {MAX_REQUEST_LOG}");
                self.problem(n.span(), "admin.request_log", msg);
                DEFAULT_REQUEST_LOG
            }
            Some(n) => *n.get_ref() as usize,
            None => DEFAULT_REQUEST_LOG,
        };
        Admin {
            listen,
            token_sha256,
            request_log,
        }
    }

    fn line(&self, span: Range<usize>) -> usize {
        self.text[..span.start.min(self.text.len())]
            .matches('\n')
            .count()
            + 1
    }

    pub(super) fn problem(&mut self, span: Range<usize>, key: &str, msg: impl std::fmt::Display) {
        let line = self.line(span);
        self.problems
            .push(format!("{}:{line}: {key}: {msg}", self.file.display()));
    }

    fn addr(&mut self, v: &Spanned<String>, key: &str) -> Option<SocketAddr> {
        let parsed = v.get_ref().parse();
        if parsed.is_err() {
            self.problem(
                v.span(),
                key,
                "expected an address and port such as \"127.0.0.1:8443\"",
            );
        }
        parsed.ok()
    }

    pub(super) fn duration(
        &mut self,
        v: &Option<Spanned<String>>,
        key: &str,
        default: Duration,
    ) -> Duration {
        let Some(v) = v else { return default };
        // A day bounds every wait the proxy has; it also keeps deadline arithmetic far from
        // overflowing.
        const MAX: Duration = Duration::from_secs(24 * 60 * 60);
        match humantime::parse_duration(v.get_ref()) {
            Ok(d) if !d.is_zero() && d <= MAX => d,
            _ => {
                self.problem(
                    v.span(),
                    key,
                    "expected a positive duration of at most a day, such as \"10s\" or \"250ms\"",
                );
                default
            }
        }
    }

    /// A count that must be at least 1.
    fn nonzero(&mut self, v: &Option<Spanned<u64>>, key: &str, default: usize) -> NonZeroUsize {
        let n = self.count(v, key, default);
        NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN)
    }

    fn count(&mut self, v: &Option<Spanned<u64>>, key: &str, default: usize) -> usize {
        match v {
            None => default,
            Some(n) if *n.get_ref() > 0 => usize::try_from(*n.get_ref()).unwrap_or(usize::MAX),
            Some(n) => {
                self.problem(n.span(), key, "expected a whole number above 0");
                default
            }
        }
    }

    /// A count that also has an upper bound.
    fn count_at_most(
        &mut self,
        v: &Option<Spanned<u64>>,
        key: &str,
        default: usize,
        max: usize,
    ) -> usize {
        match v {
            Some(n) if usize::try_from(*n.get_ref()).map_or(true, |n| n > max) => {
                self.problem(
                    n.span(),
                    key,
                    format!("expected a whole number from 1 to {max}"),
                );
                default
            }
            _ => self.count(v, key, default),
        }
    }

    /// The extension schemas in a tenant's schema files, in order: the first definition of a
    /// URN stands.
    fn schemas(&mut self, files: &[Spanned<PathBuf>], ctx: &str) -> Extensions {
        let key = format!("{ctx}: schemas");
        let mut all = Extensions::default();
        for f in files {
            let path = self.file_path(f, &key);
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let read = serde_json::from_str(&text)
                .map_err(|e| e.to_string())
                .and_then(|doc| Extensions::from_document(&doc));
            match read {
                Ok(found) if found.is_empty() => self.problem(
                    f.span(),
                    &key,
                    format_args!("{} defines no extension schema", path.display()),
                ),
                Ok(found) => all = all.and(&found),
                Err(e) => self.problem(f.span(), &key, format_args!("{}: {e}", path.display())),
            }
        }
        all
    }

    pub(super) fn file_path(&mut self, v: &Spanned<PathBuf>, key: &str) -> PathBuf {
        let path = self.base.join(v.get_ref());
        if !path.is_file() {
            self.problem(
                v.span(),
                key,
                format_args!("no readable file at {}", path.display()),
            );
        }
        path
    }

    /// `server.max_buffered_bytes`: 256 MiB unless set, and at least 1 MiB.
    fn buffered_bytes(&mut self, s: &RawServer) -> usize {
        let key = "server.max_buffered_bytes";
        let bytes = self.count(&s.max_buffered_bytes, key, 256 << 20);
        if bytes < 1 << 20 {
            if let Some(v) = &s.max_buffered_bytes {
                self.problem(v.span(), key, "expected at least 1048576 (1 MiB)");
            }
            return 1 << 20;
        }
        bytes
    }

    fn server(&mut self, s: &RawServer) -> Option<Server> {
        let listen = self.addr(&s.listen, "server.listen");
        let tls = s.tls.as_ref().map(|t| TlsFiles {
            cert: self.file_path(&t.cert, "server.tls.cert"),
            key: self.file_path(&t.key, "server.tls.key"),
            client_ca: t
                .client_ca
                .as_ref()
                .map(|c| self.file_path(c, "server.tls.client_ca")),
            tenant_cas: Vec::new(),
        });
        Some(Server {
            tls,
            max_connections: self.count_at_most(
                &s.max_connections,
                "server.max_connections",
                10_000,
                MAX_CONNECTIONS,
            ),
            max_connections_per_address: self.count(
                &s.max_connections_per_address,
                "server.max_connections_per_address",
                256,
            ),
            max_body_bytes: self.count(&s.max_body_bytes, "server.max_body_bytes", 1 << 20),
            read_timeout: self.duration(
                &s.read_timeout,
                "server.read_timeout",
                Duration::from_secs(10),
            ),
            idle_timeout: self.duration(
                &s.idle_timeout,
                "server.idle_timeout",
                Duration::from_secs(60),
            ),
            unauthenticated_timeout: self.duration(
                &s.unauthenticated_timeout,
                "server.unauthenticated_timeout",
                Duration::from_secs(10),
            ),
            shutdown_grace: self.duration(
                &s.shutdown_grace,
                "server.shutdown_grace",
                Duration::from_secs(30),
            ),
            max_upstream_calls: self.nonzero(
                &s.max_upstream_calls,
                "server.max_upstream_calls",
                DEFAULT_MAX_UPSTREAM_CALLS,
            ),
            max_buffered_bytes: self.buffered_bytes(s),
            auth_throttle: match s.auth_throttle.as_ref().map(|t| t.validate()) {
                None => AuthThrottleConfig::default(),
                Some(Ok(t)) => t,
                Some(Err(problems)) => {
                    for p in problems {
                        self.problem(s.listen.span(), "server", p);
                    }
                    AuthThrottleConfig::default()
                }
            },
            token_key: s.token_key_file.as_ref().and_then(|f| self.token_key(f)),
            listen: listen?,
        })
    }

    fn log_level(&mut self, v: Option<&Spanned<String>>) -> String {
        let Some(v) = v else { return "info".to_owned() };
        if !valid_log_filter(v.get_ref()) {
            let msg = "expected a level such as \"info\" or \"warn\", or levels per module such as \"warn,scimgate=debug\"";
            self.problem(v.span(), "log.level", msg);
        }
        v.get_ref().clone()
    }

    /// The built-in packs and the operator's folder; a pack that does not compile is a
    /// problem of this file too, named by its own file and rule.
    fn packs(&mut self, rules: Option<&RawRules>) -> Packs {
        let dir = rules.map(|r| {
            let dir = self.base.join(r.dir.get_ref());
            if !dir.is_dir() {
                self.problem(
                    r.dir.span(),
                    "rules.dir",
                    format_args!("no folder at {}", dir.display()),
                );
            }
            dir
        });
        match Packs::load(dir.as_deref().filter(|d| d.is_dir())) {
            Ok(packs) => packs,
            Err(problems) => {
                self.problems.extend(problems);
                Packs::default()
            }
        }
    }

    fn idp(&mut self, v: &Spanned<String>, ctx: &str, packs: &Packs) -> Option<Idp> {
        match v.get_ref().as_str() {
            "auto" => Some(Idp::Auto),
            _ => self
                .pack(v, &format!("{ctx}: idp"), "\"auto\" or ", packs)
                .map(Idp::Pack),
        }
    }

    fn pack(
        &mut self,
        v: &Spanned<String>,
        key: &str,
        also: &str,
        packs: &Packs,
    ) -> Option<Arc<Pack>> {
        let name = v.get_ref();
        let found = packs.get(name);
        if found.is_none() {
            let names: Vec<&str> = packs.iter().map(|p| &*p.name).collect();
            let msg = format!(
                "no rule pack named {name:?}; expected {also}one of {}",
                names.join(", ")
            );
            self.problem(v.span(), key, msg);
        }
        found
    }

    fn tenants(&mut self, raw: &[RawTenant], packs: &Packs) -> Vec<TenantConfig> {
        let mut ids = HashSet::new();
        let mut routes = HashSet::new();
        let mut out = Vec::with_capacity(raw.len());
        for t in raw {
            let id = t.id.get_ref();
            if !valid_id(id) {
                self.problem(
                    t.id.span(),
                    "tenant.id",
                    "expected letters, digits, '-' or '_' (1-64 characters)",
                );
            } else if !ids.insert(id.clone()) {
                self.problem(
                    t.id.span(),
                    "tenant.id",
                    format_args!("tenant \"{id}\" is defined twice"),
                );
            }
            let ctx = format!("tenant \"{id}\"");
            let route = self.route(&t.route, &ctx, t.id.span());
            if let Some(r) = &route {
                if !routes.insert(r.clone()) {
                    self.problem(
                        t.id.span(),
                        &format!("{ctx}: route"),
                        "another tenant has the same route",
                    );
                }
            }
            let upstream = self.upstream(&t.upstream, &ctx);
            let (auth, schemes) = self.auth(&t.auth, &ctx, t.id.span());
            let idp = t.idp.as_ref().and_then(|v| self.idp(v, &ctx, packs));
            let app_rules = t
                .app_rules
                .iter()
                .filter_map(|v| self.pack(v, &format!("{ctx}: app_rules"), "", packs))
                .collect();
            let schemas = self.schemas(&t.schemas, &ctx);
            let limits = match t.limits.as_ref().map(RawLimits::validate) {
                None => None,
                Some(Ok(limits)) => Some(limits),
                Some(Err(problems)) => {
                    for p in problems {
                        self.problem(t.id.span(), &ctx, p);
                    }
                    None
                }
            };
            let policy = match t.attributes.as_ref().map(Policy::compile) {
                None => Policy::default(),
                Some(Ok(policy)) => policy,
                Some(Err(problems)) => {
                    for p in problems {
                        self.problem(t.id.span(), &ctx, p);
                    }
                    Policy::default()
                }
            };
            let audit_loggable = self.loggable(t.audit.as_ref(), &policy, &ctx);
            if let (Some(route), Some(upstream)) = (route, upstream) {
                out.push(TenantConfig {
                    id: id.as_str().into(),
                    route,
                    upstream,
                    auth,
                    schemes,
                    soft_delete: t.soft_delete,
                    test_mode: t.test_mode,
                    idp,
                    app_rules,
                    schemas: Arc::new(schemas),
                    policy: Arc::new(policy),
                    limits,
                    audit_loggable,
                });
            }
        }
        if raw.is_empty() {
            self.problems.push(format!(
                "{}: no [[tenant]] is configured; the proxy would refuse every request",
                self.file.display()
            ));
        }
        out
    }

    /// `[audit]`: the folder must exist, the key must be long enough to be a secret.
    fn audit(&mut self, a: &Spanned<RawAudit>) -> Option<AuditConfig> {
        let a = a.get_ref();
        let path = self.base.join(a.path.get_ref());
        let folder = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        let mut ok = true;
        if !folder.is_dir() {
            let msg = format_args!(
                "no folder at {} to write the audit log in",
                folder.display()
            );
            self.problem(a.path.span(), "audit.path", msg);
            ok = false;
        } else if path.is_dir() {
            let msg = format_args!("{} is a folder; expected a file name in it", path.display());
            self.problem(a.path.span(), "audit.path", msg);
            ok = false;
        }
        let key_file = self.file_path(&a.key_file, "audit.key_file");
        let key = std::fs::read(&key_file).unwrap_or_default();
        if key_file.is_file() && key.len() < MIN_AUDIT_KEY {
            let msg = format_args!(
                "{} holds {} bytes; expected a secret of at least {MIN_AUDIT_KEY} bytes, such as `head -c 32 /dev/urandom > audit.key`",
                key_file.display(),
                key.len()
            );
            self.problem(a.key_file.span(), "audit.key_file", msg);
            ok = false;
        }
        let max_file_bytes = match &a.max_file_bytes {
            None => DEFAULT_AUDIT_FILE_BYTES,
            Some(n) if *n.get_ref() >= MIN_AUDIT_FILE_BYTES => *n.get_ref(),
            Some(n) => {
                let msg = format!("expected at least {MIN_AUDIT_FILE_BYTES} (64 KiB)");
                self.problem(n.span(), "audit.max_file_bytes", msg);
                ok = false;
                DEFAULT_AUDIT_FILE_BYTES
            }
        };
        let checkpoint_every = self.duration(
            &a.checkpoint_every,
            "audit.checkpoint_every",
            Duration::from_secs(60),
        );
        (ok && key_file.is_file()).then(|| AuditConfig {
            path,
            key_file,
            key: key.into(),
            max_file_bytes,
            checkpoint_every,
            stdout: a.stdout,
        })
    }

    /// `[tenant.audit] loggable`: attribute names, none that the tenant's policy withholds.
    fn loggable(
        &mut self,
        a: Option<&Spanned<RawTenantAudit>>,
        policy: &Policy,
        ctx: &str,
    ) -> Arc<[String]> {
        let Some(a) = a else { return Arc::from([]) };
        let key = format!("{ctx}: audit.loggable");
        if !self.audit_on {
            let msg = "has no effect: there is no [audit] section, so no audit log is kept";
            self.problem(a.span(), &format!("{ctx}: audit"), msg);
        }
        let mut out = Vec::new();
        for name in &a.get_ref().loggable {
            let text = name.get_ref();
            if crate::scim::path::AttrPath::parse(text).is_err() {
                let msg = format_args!(
                    "{text:?} is not an attribute name such as \"active\" or \"name.givenName\""
                );
                self.problem(name.span(), &key, msg);
            } else if text.eq_ignore_ascii_case("password") {
                self.problem(name.span(), &key, "a password is never logged");
            } else if crate::audit::line::withheld_by(policy, text) {
                let msg = format_args!("{text:?} is withheld by the tenant's attributes policy, so its values are never logged");
                self.problem(name.span(), &key, msg);
            } else {
                out.push(text.clone());
            }
        }
        out.into()
    }

    fn route(&mut self, r: &RawRoute, ctx: &str, at: Range<usize>) -> Option<Route> {
        match (&r.path_prefix, &r.host) {
            (Some(p), None) => {
                let seg = p.get_ref().trim_matches('/');
                if seg.is_empty() || seg.contains('/') || !seg.is_ascii() {
                    self.problem(
                        p.span(),
                        &format!("{ctx}: route.path_prefix"),
                        "expected one path segment such as \"/acme\"",
                    );
                    return None;
                }
                Some(Route::PathPrefix(seg.to_owned()))
            }
            (None, Some(h)) => {
                let host = h.get_ref().to_ascii_lowercase();
                if host.is_empty() || host.contains([':', '/', ' ']) {
                    self.problem(
                        h.span(),
                        &format!("{ctx}: route.host"),
                        "expected a host name without port, such as \"acme.scim.example.com\"",
                    );
                    return None;
                }
                Some(Route::Host(host))
            }
            _ => {
                self.problem(
                    at,
                    &format!("{ctx}: route"),
                    "expected exactly one of path_prefix or host",
                );
                None
            }
        }
    }

    fn upstream(&mut self, u: &RawUpstream, ctx: &str) -> Option<UpstreamConfig> {
        let key = |k: &str| format!("{ctx}: upstream.{k}");
        let target = self.upstream_target(&u.url, &key("url"));
        let (credential, ca) = if matches!(target, Some(UpstreamTarget::Memory)) {
            self.unused_by_memory(u, ctx);
            (None, None)
        } else {
            let ca = u.ca.as_ref().map(|c| self.file_path(c, &key("ca")));
            (self.upstream_credential(u, ctx), ca)
        };
        Some(UpstreamConfig {
            credential,
            ca,
            connect_timeout: self.duration(
                &u.connect_timeout,
                &key("connect_timeout"),
                Duration::from_secs(3),
            ),
            timeout: self.duration(&u.timeout, &key("timeout"), Duration::from_secs(30)),
            pool_idle_timeout: self.duration(
                &u.pool_idle_timeout,
                &key("pool_idle_timeout"),
                DEFAULT_POOL_IDLE,
            ),
            breaker: self.breaker(u.breaker.as_ref(), &key("breaker")),
            max_in_flight: u
                .max_in_flight
                .as_ref()
                .map(|v| self.nonzero(&Some(v.clone()), &key("max_in_flight"), 1)),
            supports: u.supports,
            target: target?,
        })
    }

    /// On unless `enabled = false`; a key left out takes its default.
    fn breaker(&mut self, b: Option<&Spanned<RawBreaker>>, key: &str) -> Option<Breaker> {
        let Some(b) = b else {
            return Some(Breaker::default());
        };
        let (b, default) = (b.get_ref(), Breaker::default());
        let failures = match &b.failures {
            None => default.failures,
            Some(n) => match u32::try_from(*n.get_ref()).ok().and_then(NonZeroU32::new) {
                Some(n) if n.get() <= 1000 => n,
                _ => {
                    let msg = "expected a whole number from 1 to 1000";
                    self.problem(n.span(), &format!("{key}.failures"), msg);
                    default.failures
                }
            },
        };
        let cool_down = self.duration(&b.cool_down, &format!("{key}.cool_down"), default.cool_down);
        b.enabled.unwrap_or(true).then_some(Breaker {
            failures,
            cool_down,
        })
    }

    /// The embedded store is called in-process: no credential is sent and no TLS is spoken,
    /// so these keys would be silently ignored.
    fn unused_by_memory(&mut self, u: &RawUpstream, ctx: &str) {
        let msg = "has no effect with url = \"memory:\"";
        if let Some(v) = &u.token_env {
            self.problem(v.span(), &format!("{ctx}: upstream.token_env"), msg);
        }
        if let Some(v) = &u.token_file {
            self.problem(v.span(), &format!("{ctx}: upstream.token_file"), msg);
        }
        if let Some(v) = &u.ca {
            self.problem(v.span(), &format!("{ctx}: upstream.ca"), msg);
        }
        if let Some(v) = &u.pool_idle_timeout {
            self.problem(v.span(), &format!("{ctx}: upstream.pool_idle_timeout"), msg);
        }
        if let Some(v) = &u.breaker {
            self.problem(v.span(), &format!("{ctx}: upstream.breaker"), msg);
        }
        if u.supports != Supports::default() {
            // No span survives the table's deserialization; the URL's line is the upstream's.
            let msg =
                "has no effect with url = \"memory:\": the store announces what it does itself";
            self.problem(u.url.span(), &format!("{ctx}: upstream.supports"), msg);
        }
    }

    fn upstream_credential(&mut self, u: &RawUpstream, ctx: &str) -> Option<HeaderValue> {
        let key = |k: &str| format!("{ctx}: upstream.{k}");
        match (&u.token_env, &u.token_file) {
            (Some(_), Some(f)) => {
                self.problem(
                    f.span(),
                    &key("token_file"),
                    "give token_env or token_file, not both",
                );
                None
            }
            (Some(env), None) => match std::env::var(env.get_ref()) {
                Ok(token) => self.credential(token.trim(), env.span(), &key("token_env")),
                Err(_) => {
                    let msg = format_args!("environment variable {} is not set", env.get_ref());
                    self.problem(env.span(), &key("token_env"), msg);
                    None
                }
            },
            (None, Some(f)) => {
                let path = self.file_path(f, &key("token_file"));
                let token = std::fs::read_to_string(&path).unwrap_or_default();
                self.credential(token.trim(), f.span(), &key("token_file"))
            }
            (None, None) => None,
        }
    }

    fn upstream_target(&mut self, url: &Spanned<String>, key: &str) -> Option<UpstreamTarget> {
        let s = url.get_ref();
        if s == "memory:" {
            return Some(UpstreamTarget::Memory);
        }
        match s.trim_end_matches('/').parse::<Uri>() {
            Ok(uri)
                if matches!(uri.scheme_str(), Some("http" | "https"))
                    && uri.authority().is_some()
                    && uri.query().is_none() =>
            {
                Some(UpstreamTarget::Http(uri))
            }
            _ => {
                let msg = "expected \"memory:\" or an http(s) base URL such as \"http://127.0.0.1:3000/scim/v2\"";
                self.problem(url.span(), key, msg);
                None
            }
        }
    }

    fn credential(&mut self, token: &str, at: Range<usize>, key: &str) -> Option<HeaderValue> {
        match HeaderValue::try_from(format!("Bearer {token}")) {
            Ok(mut v) if !token.is_empty() => {
                v.set_sensitive(true);
                Some(v)
            }
            _ => {
                self.problem(
                    at,
                    key,
                    "the upstream token is empty or has characters a header cannot carry",
                );
                None
            }
        }
    }
}

/// A filter `tracing_subscriber` accepts in which every directive ends in a level. A bare word
/// that is not a level is valid to `EnvFilter` as a module name: a typo such as `infoo` would
/// enable logs of a module that does not exist and silence all others.
fn valid_log_filter(filter: &str) -> bool {
    let mut directives = filter
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .peekable();
    directives.peek().is_some()
        && directives.all(|d| {
            let level = d.rsplit_once('=').map_or(d, |(_, level)| level);
            level.parse::<LevelFilter>().is_ok()
        })
        && EnvFilter::try_new(filter).is_ok()
}

/// A token label goes into log lines as it is: short, without spaces or control characters.
pub(super) fn valid_label(label: &str) -> bool {
    (1..=64).contains(&label.len())
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:@".contains(&b))
}

fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
