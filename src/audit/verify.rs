//! `scimgate audit verify`: walks the chain through the given files (in the order of their
//! first sequence numbers, so a glob's order does not matter) and reports the first line that
//! was edited, removed or moved, or a checkpoint whose MAC the key does not make.
//!
//! What the end of the log says: a log the proxy closed ends with a `shutdown` checkpoint. A
//! log that ends otherwise was cut off, or the proxy stopped without closing it (killed,
//! crashed), or is still writing it (`--live`). The file alone cannot tell a cut-off end from
//! a crash; the proxy's next start can: it writes a `start` checkpoint saying the log it found
//! was left `unclean`, which verification reports. Lines cut from the end of a rotated file are
//! found, since the next file's first line goes on from the line that was removed.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::chain::{self, GENESIS};

/// What an intact log holds.
#[derive(Debug, Default)]
pub struct Report {
    pub files: usize,
    pub lines: u64,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    pub checkpoints: u64,
    pub macs_checked: bool,
    /// Things an operator should know that are not tampering.
    pub notes: Vec<String>,
}

/// The first thing wrong: where, and what.
#[derive(Debug)]
pub struct Problem {
    pub file: PathBuf,
    /// 1-based; 0 when the problem is the file as a whole.
    pub line: usize,
    pub what: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            0 => write!(f, "{}: {}", self.file.display(), self.what),
            n => write!(f, "{}:{n}: {}", self.file.display(), self.what),
        }
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (first, last) = (self.first_seq.unwrap_or(0), self.last_seq.unwrap_or(0));
        write!(
            f,
            "intact: {} file(s), {} line(s), seq {first} to {last}, {} checkpoint(s)",
            self.files, self.lines, self.checkpoints
        )?;
        if self.macs_checked {
            f.write_str(", every checkpoint's MAC matches the key")?;
        } else {
            f.write_str("; checkpoint MACs not checked (no --key-file)")?;
        }
        for note in &self.notes {
            write!(f, "\nnote: {note}")?;
        }
        Ok(())
    }
}

/// One line of the log as read.
struct Read<'a> {
    file: &'a Path,
    number: usize,
    raw: &'a [u8],
    finished: bool,
}

/// The files' contents, ordered by the sequence number of their first line; empty files are
/// left out.
pub fn ordered(files: &[PathBuf]) -> Result<Vec<(PathBuf, Vec<u8>)>, Problem> {
    let mut read = Vec::with_capacity(files.len());
    for f in files {
        let bytes = std::fs::read(f).map_err(|e| Problem {
            file: f.clone(),
            line: 0,
            what: format!("cannot be read: {e}"),
        })?;
        if bytes.is_empty() {
            continue;
        }
        let first = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
        let seq = serde_json::from_slice::<Value>(first)
            .ok()
            .and_then(|v| v["seq"].as_u64())
            .ok_or_else(|| Problem {
                file: f.clone(),
                line: 1,
                what: "not an audit line (no JSON with a seq): edited or not an audit file".into(),
            })?;
        read.push((seq, f.clone(), bytes));
    }
    read.sort_by_key(|(seq, ..)| *seq);
    Ok(read.into_iter().map(|(_, f, b)| (f, b)).collect())
}

/// Verifies the chain through `files`. `key`: the checkpoint key, when given. `live`: the
/// last file is being written, so its end need not be a closing checkpoint.
pub fn verify(files: &[PathBuf], key: Option<&[u8]>, live: bool) -> Result<Report, Problem> {
    let contents = ordered(files)?;
    let mut lines = Vec::new();
    for (file, bytes) in &contents {
        let finished_file = bytes.last() == Some(&b'\n');
        let pieces: Vec<&[u8]> = bytes
            .strip_suffix(b"\n")
            .unwrap_or(bytes)
            .split(|&b| b == b'\n')
            .collect();
        let count = pieces.len();
        for (i, raw) in pieces.into_iter().enumerate() {
            lines.push(Read {
                file,
                number: i + 1,
                raw,
                finished: finished_file || i + 1 < count,
            });
        }
    }
    let mut report = Report {
        files: contents.len(),
        macs_checked: key.is_some(),
        ..Report::default()
    };
    let seqs: Vec<Option<u64>> = lines
        .iter()
        .map(|l| serde_json::from_slice::<Value>(l.raw).ok()?["seq"].as_u64())
        .collect();
    let mut before: Option<(&Read, u64)> = None;
    let mut last_doc = Value::Null;
    for (at, l) in lines.iter().enumerate() {
        let problem = |what: String| Problem {
            file: l.file.to_owned(),
            line: l.number,
            what,
        };
        if !l.finished {
            return Err(problem(
                "unfinished last line (no newline): a write cut short, or the end of the file was cut off"
                    .into(),
            ));
        }
        let doc: Value = serde_json::from_slice(l.raw)
            .map_err(|_| problem("not JSON: the line was edited or corrupted".into()))?;
        let (Some(seq), Some(prev)) = (doc["seq"].as_u64(), doc["prev"].as_str()) else {
            return Err(problem("no seq or prev: not an audit line".into()));
        };
        match before {
            None if prev != hex::encode(GENESIS) => report.notes.push(format!(
                "the chain begins at seq {seq}, after lines not given here (older rotated files)"
            )),
            None => {}
            Some((b, b_seq)) => {
                if seq <= b_seq {
                    return Err(problem(format!(
                        "reordered: seq {seq} comes after seq {b_seq} ({}:{})",
                        b.file.display(),
                        b.number
                    )));
                }
                if seq > b_seq + 1 {
                    let expected = b_seq + 1;
                    let later = seqs[at..].iter().position(|s| *s == Some(expected));
                    return Err(problem(match later {
                        Some(k) => {
                            let moved = &lines[at + k];
                            format!(
                                "reordered: seq {expected} should come here but is at {}:{}",
                                moved.file.display(),
                                moved.number
                            )
                        }
                        None => format!(
                            "{} line(s) removed before this one (seq {expected} to {} are missing)",
                            seq - expected,
                            seq - 1
                        ),
                    }));
                }
                if prev != hex::encode(chain::hash(b.raw)) {
                    return Err(Problem {
                        file: b.file.to_owned(),
                        line: b.number,
                        what: format!(
                            "edited: the line's hash does not match what the next line (seq {seq}) recorded"
                        ),
                    });
                }
            }
        }
        if doc["type"] == "checkpoint" {
            report.checkpoints += 1;
            if let Some(key) = key {
                let text = std::str::from_utf8(l.raw).unwrap_or_default();
                if chain::mac_matches(text, key) != Some(true) {
                    return Err(problem(
                        "checkpoint edited or forged: its MAC is not the one the key makes".into(),
                    ));
                }
            }
            if doc["reason"] == "start" && doc["previous"] == "unclean" {
                report.notes.push(format!(
                    "{}:{} (seq {seq}): the proxy started on a log it had not closed (it was killed or crashed, or the log's end was cut off before this start)",
                    l.file.display(),
                    l.number
                ));
            }
        }
        report.first_seq.get_or_insert(seq);
        report.last_seq = Some(seq);
        report.lines += 1;
        before = Some((l, seq));
        last_doc = doc;
    }
    let closed = last_doc["type"] == "checkpoint" && last_doc["reason"] == "shutdown";
    if let (false, Some((last, _))) = (closed, before) {
        let what = "the log does not end with the proxy's closing checkpoint: its end was cut off, or the proxy stopped without closing it (its next start says so), or it is still being written (--live)";
        if !live {
            return Err(Problem {
                file: last.file.to_owned(),
                line: last.number + 1,
                what: what.into(),
            });
        }
        report
            .notes
            .push("the last file is still being written: lines after its last checkpoint are not sealed yet".into());
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::chain::Chain;

    fn log(dir: &Path, name: &str, n: usize, close: bool) -> PathBuf {
        let mut chain = Chain::default();
        let mut text = String::new();
        for i in 0..n {
            text.push_str(&chain.link(&format!("{{\"type\":\"change\",\"id\":\"{i}\"}}")));
            text.push('\n');
        }
        if close {
            text.push_str(&chain.seal(r#"{"type":"checkpoint","reason":"shutdown"}"#, b"key"));
            text.push('\n');
        }
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn edit(path: &Path, f: impl FnOnce(&mut Vec<String>)) {
        let text = std::fs::read_to_string(path).unwrap();
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        f(&mut lines);
        std::fs::write(path, lines.join("\n") + "\n").unwrap();
    }

    fn check(path: &Path) -> Result<Report, Problem> {
        verify(&[path.to_owned()], Some(b"key"), false)
    }

    #[test]
    fn an_intact_closed_log_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let path = log(dir.path(), "a", 5, true);
        let r = check(&path).unwrap();
        assert_eq!((r.lines, r.checkpoints, r.last_seq), (6, 1, Some(5)));
    }

    #[test]
    fn an_edited_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = log(dir.path(), "a", 5, true);
        edit(&path, |l| {
            l[2] = l[2].replace("\"id\":\"2\"", "\"id\":\"9\"")
        });
        let p = check(&path).unwrap_err();
        assert_eq!(p.line, 3, "{p}");
        assert!(p.what.starts_with("edited"), "{p}");
    }

    #[test]
    fn removed_and_reordered_lines_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let path = log(dir.path(), "a", 5, true);
        edit(&path, |l| {
            l.remove(1);
        });
        let p = check(&path).unwrap_err();
        assert_eq!(p.line, 2);
        assert!(p.what.contains("1 line(s) removed"), "{p}");
        let path = log(dir.path(), "b", 5, true);
        edit(&path, |l| l.swap(1, 2));
        let p = check(&path).unwrap_err();
        assert_eq!(p.line, 2);
        assert!(p.what.starts_with("reordered"), "{p}");
    }

    #[test]
    fn a_cut_off_end_fails_unless_live_and_a_forged_seal_fails_the_mac() {
        let dir = tempfile::tempdir().unwrap();
        let path = log(dir.path(), "a", 5, false);
        let p = check(&path).unwrap_err();
        assert_eq!(p.line, 6);
        assert!(p.what.contains("closing checkpoint"), "{p}");
        assert!(verify(std::slice::from_ref(&path), Some(b"key"), true).is_ok());
        let sealed = log(dir.path(), "b", 5, true);
        let p = verify(std::slice::from_ref(&sealed), Some(b"other"), false).unwrap_err();
        assert!(p.what.contains("MAC"), "{p}");
        assert!(verify(&[sealed], None, false).is_ok());
    }
}
