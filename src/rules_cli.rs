//! `scimgate rules list` and `scimgate rules test`: the rule packs made visible, and a rule
//! written and checked without an IdP.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use scimgate::rule_pack::trial::{self, TrialAnswer, TrialRequest};
use scimgate::rule_pack::Packs;
use scimgate::scim::discovery::Extensions;

use crate::fail;

fn load(dir: Option<&Path>) -> Result<Packs, ExitCode> {
    Packs::load(dir)
        .map_err(|problems| fail(1, &format!("invalid rule packs\n{}", problems.join("\n"))))
}

pub fn list(dir: Option<&Path>) -> ExitCode {
    let packs = match load(dir) {
        Ok(p) => p,
        Err(code) => return code,
    };
    // Written with errors ignored: `rules list | head` closes the pipe early.
    let mut out = std::io::stdout().lock();
    for pack in packs.iter() {
        let own = format!("{}/", pack.name);
        let inherited = pack
            .rules
            .iter()
            .filter(|r| !r.id.starts_with(&own))
            .count();
        let _ = writeln!(out, "{}: {}", pack.name, pack.description);
        if inherited > 0 {
            let _ = writeln!(
                out,
                "  (runs {inherited} rules of the packs it extends first)"
            );
        }
        for rule in pack.rules.iter().filter(|r| r.id.starts_with(&own)) {
            let _ = writeln!(out, "  {}", rule.id);
            let _ = writeln!(out, "      {}", rule.description);
            let _ = writeln!(out, "      source: {}", rule.source);
        }
    }
    ExitCode::SUCCESS
}

pub fn test(
    name: &str,
    dir: Option<&Path>,
    schemas: &[PathBuf],
    file: &Path,
    response: bool,
) -> ExitCode {
    let packs = match load(dir) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let mut ext = Extensions::default();
    for f in schemas {
        let read = std::fs::read_to_string(f)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str(&t).map_err(|e| format!("not JSON: {e}")))
            .and_then(|doc| Extensions::from_document(&doc));
        match read {
            Ok(found) => ext = ext.and(&found),
            Err(e) => return fail(1, &format!("{}: {e}", f.display())),
        }
    }
    let Some(pack) = packs.get(name) else {
        let names: Vec<&str> = packs.iter().map(|p| &*p.name).collect();
        return fail(
            1,
            &format!("no pack named {name:?}; there are {}", names.join(", ")),
        );
    };
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => return fail(1, &format!("{}: {e}", file.display())),
    };
    let doc: serde_json::Value = match serde_json::from_str(&text) {
        Ok(d) => d,
        Err(e) => return fail(1, &format!("{}: not JSON: {e}", file.display())),
    };
    let tried = if response {
        TrialAnswer::from_json(&doc).map(|a| {
            out!("{} answer to {} {}", a.status, a.method, a.path);
            trial::run_answer(&pack, &a, &ext)
        })
    } else {
        TrialRequest::from_json(&doc).map(|r| {
            out!("{} {}", r.method, r.path);
            trial::run(&pack, &r, &ext)
        })
    };
    let out = match tried {
        Ok(out) => out,
        Err(e) => return fail(1, &format!("{}: {e}", file.display())),
    };
    if let Some(q) = &out.query {
        out!("query: {q}");
    }
    if let Some(body) = &out.body {
        out!(
            "{}",
            serde_json::to_string_pretty(body).expect("a JSON value always serializes")
        );
    }
    if out.fired.is_empty() {
        out!("rules fired: none");
    } else {
        out!("rules fired:");
        for id in &out.fired {
            out!("  {id}");
        }
    }
    match out.schema {
        Ok(()) => {
            out!("schema check: ok");
            ExitCode::SUCCESS
        }
        Err(e) => {
            let kind = e
                .scim_type
                .map(|t| format!(" ({})", t.as_str()))
                .unwrap_or_default();
            out!("schema check: refused{kind}: {}", e.detail);
            ExitCode::from(1)
        }
    }
}
