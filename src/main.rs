//! The `scimgate` command: run the proxy, check a configuration, make tokens and development
//! certificates. The configuration is loaded and validated before any port is bound.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

/// Prints a line to stdout. A reader that went away (`scimgate check … | head`) loses the
/// rest of the output; the command carries on to its exit code instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

mod audit_cli;
mod auth_cli;
mod rules_cli;

use clap::{Parser, Subcommand};

/// mimalloc: the proxy allocates and frees small strings and maps per request, and glibc's
/// allocator spent about 45% of stage 6's instructions on them (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use scimgate::app::App;
use scimgate::config::{Config, Idp, LogFormat, Route, Supports, UpstreamTarget};
use scimgate::listener::{Drained, Workers};

/// EX_CONFIG from sysexits(3): the configuration is wrong.
const EXIT_BAD_CONFIG: u8 = 64;
/// The shutdown ended with requests still in flight (grace period over, or a second signal).
const EXIT_REQUESTS_CUT: u8 = 3;

#[derive(Parser)]
#[command(
    name = "scimgate",
    version,
    about = "A SCIM 2.0 edge proxy for identity providers and partial SCIM apps"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy with a configuration file (exit 64 if the file is invalid)
    Serve {
        #[arg(long, short, value_name = "FILE")]
        config: PathBuf,
    },
    /// Validate a configuration file and explain what it sets up (exit 1 if invalid)
    Check {
        #[arg(long, short, value_name = "FILE")]
        config: PathBuf,
    },
    /// Make and hash tenant bearer tokens
    #[command(subcommand)]
    Token(TokenCommand),
    /// Make certificates for development and tests
    #[command(subcommand)]
    Certs(CertsCommand),
    /// List the IdP rule packs, or try one on a request
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Verify or search audit log files
    #[command(subcommand)]
    Audit(audit_cli::AuditCommand),
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Print every pack and rule with its description and source
    List {
        /// Also load the packs in this folder, as `[rules] dir` does
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Run a pack over a request and print the result and the rules that fired (exit 1 when
    /// the result fails the schema check)
    Test {
        /// The pack: entra, okta, google, onelogin, jumpcloud, ping, generic, or one of DIR's
        #[arg(long)]
        pack: String,
        /// Also load the packs in this folder, as `[rules] dir` does
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Run the pack's response rules over an app's answer instead of its request rules
        #[arg(long)]
        response: bool,
        /// A schema file (RFC 7643 §7: a Schema, an array, or a /Schemas answer) describing
        /// the app's extensions, as a tenant's `schemas` does; may be given more than once
        #[arg(long = "schema", value_name = "FILE")]
        schemas: Vec<PathBuf>,
        /// A JSON request {"method", "path", "headers", "query", "body"}, or a bare SCIM body;
        /// with --response, an answer {"request": "GET /Users", "status", "headers", "body"}
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Print a fresh random token once, with the SHA-256 that goes into the configuration
    New,
    /// Print the SHA-256 of a token read from standard input (a tenant's bearer token, or the
    /// admin API's `admin.token_sha256`)
    Hash,
    /// Print the argon2 hash of a secret read from standard input: a Basic password
    /// (`auth.basic`) or an OAuth client secret (`auth.oauth.clients`)
    HashSecret,
}

#[derive(Subcommand)]
enum CertsCommand {
    /// Write a development CA, a server certificate and a client certificate
    Dev {
        /// Folder to write ca.pem, server.pem/.key and client.pem/.key into
        #[arg(long, default_value = "certs/dev")]
        out: PathBuf,
        /// A DNS name or IP address for the server certificate (repeatable)
        #[arg(long = "server-name", default_values = ["localhost", "127.0.0.1"])]
        server_names: Vec<String>,
        /// A client certificate's subject CN, also its DNS SAN (repeatable)
        #[arg(long = "client-cn", default_values = ["idp-client"])]
        client_cns: Vec<String>,
        /// A tenant id: writes tenant-ID/ca.pem, a CA for that tenant alone, and
        /// tenant-ID/client.pem/.key named ID-idp and urn:scimgate:idp:ID (repeatable)
        #[arg(long = "tenant", value_name = "ID")]
        tenants: Vec<String>,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Serve { config } => serve(config),
        Command::Check { config } => check(config),
        Command::Rules(RulesCommand::List { dir }) => rules_cli::list(dir.as_deref()),
        Command::Rules(RulesCommand::Test {
            pack,
            dir,
            response,
            schemas,
            file,
        }) => rules_cli::test(&pack, dir.as_deref(), &schemas, &file, response),
        Command::Audit(cmd) => audit_cli::run(cmd),
        Command::Token(TokenCommand::New) => token_new(),
        Command::Token(TokenCommand::Hash) => token_hash(),
        Command::Token(TokenCommand::HashSecret) => token_hash_secret(),
        Command::Certs(CertsCommand::Dev {
            out,
            server_names,
            client_cns,
            tenants,
        }) => {
            let names = scimgate::certs::DevNames {
                server_names: &server_names,
                client_cns: &client_cns,
                tenants: &tenants,
            };
            match scimgate::certs::write_dev_certs(&out, &names) {
                Ok(files) => {
                    files.iter().for_each(|f| out!("wrote {f}"));
                    ExitCode::SUCCESS
                }
                Err(e) => fail(1, &format!("certs dev: {e}")),
            }
        }
    }
}

pub(crate) fn fail(code: u8, message: &str) -> ExitCode {
    eprintln!("scimgate: {message}");
    ExitCode::from(code)
}

fn serve(path: PathBuf) -> ExitCode {
    let config = match Config::load(&path) {
        Ok(c) => c,
        Err(e) => return fail(EXIT_BAD_CONFIG, &format!("invalid configuration\n{e}")),
    };
    let telemetry = match init_logs(config.log.format, &config.log.level) {
        Ok(telemetry) => telemetry,
        Err(e) => return fail(EXIT_BAD_CONFIG, &e),
    };
    let app = match App::build(config, path) {
        Ok(app) => app,
        Err(e) => return fail(EXIT_BAD_CONFIG, &e.to_string()),
    };
    if let Err(e) = app.start_audit() {
        return fail(1, &format!("cannot open the audit log: {e}"));
    }
    // One worker per CPU this process may use; the first is this thread.
    let cpus = scimgate::listener::workers::count();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let (runtime, workers) = match runtime.and_then(|r| Ok((r, Workers::start(cpus)?))) {
        Ok(started) => started,
        Err(e) => return fail(1, &format!("cannot start the runtime: {e}")),
    };
    let listen = app.listen_addr();
    let served = runtime.block_on(app.run(&workers));
    // Requests cut by the drain may have left work on the blocking pool (a password hash);
    // it is not waited for.
    workers.stop();
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    // After the last request: the closing checkpoint seals the log.
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(closing) => closing.block_on(app.close_audit()),
        Err(e) => {
            tracing::error!(error = %e, "could not seal the audit log: no runtime to close it on")
        }
    }
    telemetry.flush();
    match served {
        Ok(Drained::All) => ExitCode::SUCCESS,
        Ok(Drained::Cut { .. }) => ExitCode::from(EXIT_REQUESTS_CUT),
        Err(e) => fail(
            1,
            &format!("cannot serve on {listen} or the admin address: {e}"),
        ),
    }
}

/// Where spans go besides the log: with the `otel` feature, to the OpenTelemetry collector
/// the environment names.
#[derive(Default)]
struct Telemetry {
    #[cfg(feature = "otel")]
    export: Option<scimgate::trace::otel::Export>,
}

impl Telemetry {
    /// Sends the spans not sent yet: after the last request.
    fn flush(self) {
        #[cfg(feature = "otel")]
        if let Some(export) = self.export {
            export.shutdown();
        }
    }
}

fn init_logs(format: LogFormat, level: &str) -> Result<Telemetry, String> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    #[cfg(feature = "otel")]
    {
        let export = scimgate::trace::otel::Export::from_env();
        let export = export.map_err(|e| format!("OpenTelemetry export: {e}"))?;
        if let Some(export) = export {
            init_logs_and_export(format, filter, &export);
            return Ok(Telemetry {
                export: Some(export),
            });
        }
    }
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Pretty => builder.with_ansi(colours_wanted()).init(),
    }
    Ok(Telemetry::default())
}

/// The log as `init_logs` sets it up, its filter now its own, beside the span export with
/// the export's filter: the log stays as configured while the export gets the DEBUG spans.
#[cfg(feature = "otel")]
fn init_logs_and_export(
    format: LogFormat,
    filter: tracing_subscriber::EnvFilter,
    export: &scimgate::trace::otel::Export,
) {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::Layer as _;
    let log = tracing_subscriber::fmt::layer();
    let log = match format {
        LogFormat::Json => log.json().flatten_event(true).with_filter(filter).boxed(),
        LogFormat::Pretty => log.with_ansi(colours_wanted()).with_filter(filter).boxed(),
    };
    tracing_subscriber::registry()
        .with(log)
        .with(export.layer())
        .init();
}

/// Colour codes only for a terminal (a file or a log collector would keep them as noise), and
/// not when `NO_COLOR` asks for none (no-color.org).
fn colours_wanted() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stdout())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn check(path: PathBuf) -> ExitCode {
    let config = match Config::load(&path) {
        Ok(c) => c,
        Err(e) => return fail(1, &format!("invalid configuration\n{e}")),
    };
    out!("{}: valid", path.display());
    explain(&config);
    if let Err(e) = App::build(config, path) {
        return fail(1, &e.to_string());
    }
    ExitCode::SUCCESS
}

fn explain(config: &Config) {
    let s = &config.server;
    let scheme = if s.tls.is_some() { "https" } else { "http" };
    out!(
        "  listen   {scheme}://{} (up to {} connections, bodies up to {} bytes)",
        s.listen,
        s.max_connections,
        s.max_body_bytes
    );
    if let Some(tls) = s.tls.as_ref().and_then(|t| t.client_ca.as_ref()) {
        out!(
            "  mTLS     client certificates checked against {}",
            tls.display()
        );
    }
    let api = match config.admin.token_sha256 {
        Some(_) => "; the admin API under /api, with its token",
        None => "; the admin API is off without admin.token_sha256",
    };
    out!(
        "  admin    http://{} (/healthz, /readyz, /metrics){api}",
        config.admin.listen
    );
    match &config.audit {
        Some(a) => out!(
            "  audit    {}: a line per change and refusal, rotated past {} bytes (rotated files are kept), checkpoints every {:?} sealed with the key in {}{}",
            a.path.display(),
            a.max_file_bytes,
            a.checkpoint_every,
            a.key_file.display(),
            if a.stdout { "; lines also on standard output" } else { "" }
        ),
        None => out!("  audit    none: there is no [audit] section, so no audit log is kept"),
    }
    for t in &config.tenants {
        let route = match &t.route {
            Route::PathPrefix(p) => format!("path /{p}"),
            Route::Host(h) => format!("host {h}"),
        };
        let upstream = match &t.upstream.target {
            UpstreamTarget::Memory => "the embedded memory store".to_owned(),
            UpstreamTarget::Http(u) => u.to_string(),
        };
        let expiring = t
            .auth
            .bearer
            .iter()
            .filter(|b| b.not_after.is_some())
            .count();
        out!(
            "  tenant   {}: {route} → {upstream}; {} bearer token(s), {expiring} with an expiry",
            t.id,
            t.auth.bearer.len()
        );
        for line in auth_cli::explain(t, s.token_key.as_ref()) {
            out!("           {line}");
        }
        if matches!(t.upstream.target, UpstreamTarget::Http(_)) {
            out!(
                "           upstream: {}",
                describe_supports(&t.upstream.supports)
            );
        }
        if t.soft_delete {
            out!("           DELETE of a User deactivates it (soft_delete)");
        }
        if t.test_mode {
            out!("           starts in test mode: writes are recorded and answered by the proxy, not sent to the app");
        }
        if let Some(l) = &t.limits {
            out!(
                "           limits: {} calls/s, burst {}, {} at once (reads {}), wait up to {:?} in a queue of {}",
                l.rate_per_s,
                l.burst,
                l.max_in_flight,
                (l.max_in_flight.get() as f64 * l.read_share).floor().max(1.0),
                l.max_wait,
                l.queue
            );
        }
        if !t.audit_loggable.is_empty() {
            out!(
                "           audit lines show the values of {}",
                t.audit_loggable.join(", ")
            );
        }
        if let Some(cap) = t.upstream.max_in_flight {
            out!("           the app takes at most {cap} calls at once from all its tenants");
        }
        if !t.app_rules.is_empty() {
            let names: Vec<&str> = t.app_rules.iter().map(|p| &*p.name).collect();
            out!("           app packs: {}", names.join(", "));
        }
        if !t.policy.is_empty() {
            use scimgate::policy::Direction;
            out!(
                "           attributes to the app: {}",
                t.policy.rules(Direction::Inbound)
            );
            out!(
                "           attributes to the IdP: {}",
                t.policy.rules(Direction::Outbound)
            );
        }
        match &t.idp {
            Some(Idp::Pack(pack)) => out!(
                "           requests normalized by the {} rule pack",
                pack.name
            ),
            Some(Idp::Auto) => out!(
                "           requests normalized by the rule pack of the detected IdP (idp = auto)"
            ),
            None => {}
        }
    }
}

/// `patch: no, filter: yes as declared; the rest from its ServiceProviderConfig; uniqueness: yes`
fn describe_supports(s: &Supports) -> String {
    let keys = [
        ("patch", s.patch),
        ("filter", s.filter),
        ("sort", s.sort),
        ("bulk", s.bulk),
        ("etag", s.etag),
        ("discovery", s.discovery),
    ];
    let yes_no = |v: bool| if v { "yes" } else { "no" };
    let declared: Vec<String> = keys
        .iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k}: {}", yes_no(v))))
        .collect();
    let read = match declared.len() {
        0 => "all read from its ServiceProviderConfig".to_owned(),
        6 => format!("{} as declared", declared.join(", ")),
        _ => format!(
            "{} as declared; the rest from its ServiceProviderConfig",
            declared.join(", ")
        ),
    };
    format!(
        "{read}; uniqueness: {}",
        yes_no(s.uniqueness.unwrap_or(true))
    )
}

fn token_new() -> ExitCode {
    let mut bytes = [0u8; 32];
    if let Err(e) = getrandom::fill(&mut bytes) {
        return fail(1, &format!("no randomness available: {e}"));
    }
    let token = format!("sgt_{}", hex::encode(bytes));
    let hash = scimgate::auth::token_hash(&token);
    out!("token:  {token}");
    out!("sha256: {hash}");
    out!();
    out!("Give the token to the identity provider now: it is not stored anywhere.");
    out!("Put its hash in the tenant's configuration:");
    out!("  auth.bearer = [{{ sha256 = \"{hash}\" }}]");
    ExitCode::SUCCESS
}

fn token_hash_secret() -> ExitCode {
    let mut secret = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut secret) {
        return fail(1, &format!("reading the secret from standard input: {e}"));
    }
    // One trailing newline is what `echo` and a terminal add, not part of the secret.
    let secret = secret.strip_suffix('\n').unwrap_or(&secret);
    let secret = secret.strip_suffix('\r').unwrap_or(secret);
    if secret.is_empty() {
        return fail(1, "the secret read from standard input is empty");
    }
    match scimgate::auth::secret::hash(secret.as_bytes()) {
        Ok(phc) => {
            out!("{phc}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(1, &format!("hashing the secret: {e}")),
    }
}

fn token_hash() -> ExitCode {
    let mut token = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut token) {
        return fail(1, &format!("reading the token from standard input: {e}"));
    }
    out!("{}", scimgate::auth::token_hash(token.trim()));
    ExitCode::SUCCESS
}
