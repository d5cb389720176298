//! `scimgate audit verify` and `scimgate audit grep`: read audit files back, in the order of
//! their chain whatever order they are given in (`audit.log*` works).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use scimgate::audit::{grep, verify};

use crate::fail;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain and checkpoints of audit files; report the first line edited,
    /// removed or reordered (exit 1), or a summary (exit 0)
    Verify {
        /// The file holding the checkpoint key (`audit.key_file`); without it, checkpoint
        /// MACs are not checked
        #[arg(long, value_name = "FILE")]
        key_file: Option<PathBuf>,
        /// The newest file is still being written: lines after its last checkpoint need no
        /// closing checkpoint
        #[arg(long)]
        live: bool,
        /// The audit file and its rotated files
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print the lines about one tenant's user or group
    Grep {
        #[arg(long)]
        tenant: String,
        /// A User's id or externalId (also finds the Group lines that add or remove it)
        #[arg(long, conflicts_with = "group")]
        user: Option<String>,
        /// A Group's id or externalId
        #[arg(long)]
        group: Option<String>,
        /// From: an RFC 3339 time (2026-11-01T00:00:00Z) or a span back from now (7d, 12h)
        #[arg(long)]
        since: Option<String>,
        /// Up to: as --since
        #[arg(long)]
        until: Option<String>,
        /// One readable line per match instead of the JSON line
        #[arg(long)]
        summary: bool,
        /// The audit file and its rotated files
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

pub fn run(cmd: AuditCommand) -> ExitCode {
    match cmd {
        AuditCommand::Verify {
            key_file,
            live,
            files,
        } => verify_files(key_file, live, &files),
        AuditCommand::Grep {
            tenant,
            user,
            group,
            since,
            until,
            summary,
            files,
        } => {
            let now = time::OffsetDateTime::now_utc();
            let when = |t: Option<String>| t.map(|t| grep::parse_time(&t, now)).transpose();
            let (since, until) = match (when(since), when(until)) {
                (Ok(s), Ok(u)) => (s, u),
                (Err(e), _) | (_, Err(e)) => return fail(2, &e),
            };
            let query = grep::Query {
                tenant,
                user,
                group,
                since,
                until,
            };
            grep_files(&query, summary, &files)
        }
    }
}

fn verify_files(key_file: Option<PathBuf>, live: bool, files: &[PathBuf]) -> ExitCode {
    let key = match key_file.map(std::fs::read).transpose() {
        Ok(k) => k,
        Err(e) => return fail(2, &format!("reading the key file: {e}")),
    };
    match verify::verify(files, key.as_deref(), live) {
        Ok(report) => {
            out!("{report}");
            ExitCode::SUCCESS
        }
        Err(problem) => fail(1, &problem.to_string()),
    }
}

fn grep_files(query: &grep::Query, summary: bool, files: &[PathBuf]) -> ExitCode {
    let contents = match verify::ordered(files) {
        Ok(c) => c,
        Err(problem) => return fail(2, &problem.to_string()),
    };
    let mut found = 0usize;
    for (_, bytes) in &contents {
        for raw in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let Ok(line) = serde_json::from_slice::<serde_json::Value>(raw) else {
                continue;
            };
            if grep::matches(query, &line) {
                found += 1;
                if summary {
                    out!("{}", grep::summary(&line));
                } else {
                    out!("{}", String::from_utf8_lossy(raw));
                }
            }
        }
    }
    if found == 0 {
        // As grep(1): nothing found is exit 1.
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
