//! The audit writer: one thread that owns the file. Requests hand it their line through a
//! bounded channel and wait for its answer; it takes every line waiting, chains them, writes
//! them in one write followed by one `fdatasync`, and only then answers each. A full channel
//! makes requests wait (back-pressure); no line is ever dropped.
//!
//! When a write fails, the lines stay with the writer, which tries them again every second,
//! and their requests are answered at once that their line is not yet written (a change is then
//! answered 503). While it fails, new lines are taken and kept the same way, up to a bound past
//! which the channel fills and requests wait. Files rotate by size: the full file ends with a
//! `rotate` checkpoint and is renamed `<path>.000001` (then `.000002`, …), and the chain goes on
//! in a new file. Rotated files are never deleted: that is the operator's to do.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::chain::Chain;
use crate::config::AuditConfig;
use crate::metrics::AuditMetrics;

/// Lines that may wait in the channel for the writer.
const QUEUE: usize = 4096;
/// The most lines written in one write.
const BATCH: usize = 1024;
/// Lines kept while the file cannot be written, before the writer stops taking more.
const RETAIN_MAX: u64 = QUEUE as u64;
/// How often a failing file is tried again.
const RETRY: Duration = Duration::from_secs(1);

/// Why a line is not (yet) in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unwritten {
    #[error("the audit file cannot be written now; the line is kept and written when it can be")]
    Failing,
    #[error("the audit log is closed")]
    Closed,
}

enum Msg {
    /// The lines of one request, written together, with one answer.
    Lines {
        lines: Vec<String>,
        ack: Ack,
    },
    Close(oneshot::Sender<()>),
}

/// The requests' side of the writer.
pub struct Writer {
    tx: mpsc::Sender<Msg>,
    failing: Arc<AtomicBool>,
    metrics: AuditMetrics,
}

impl Writer {
    /// Opens (or continues) the log and starts the writer's thread. The chain is taken up
    /// from the last line found; a start checkpoint records how the log was left.
    pub fn start(config: &AuditConfig, metrics: AuditMetrics) -> io::Result<Self> {
        let mut sink = Sink::open(config)?;
        sink.checkpoint_start()?;
        metrics.lines.inc();
        Self::spawn(sink, metrics, config)
    }

    fn spawn(sink: Sink, metrics: AuditMetrics, config: &AuditConfig) -> io::Result<Self> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let failing = Arc::new(AtomicBool::new(false));
        let state = Thread {
            sink,
            rx,
            failing: failing.clone(),
            metrics: metrics.clone(),
            every: config.checkpoint_every,
        };
        std::thread::Builder::new()
            .name("scimgate-audit".into())
            .spawn(move || state.run())?;
        Ok(Self {
            tx,
            failing,
            metrics,
        })
    }

    /// Whether the last write failed (and no write has succeeded since).
    pub fn failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }

    /// Hands a request's lines to the writer and waits until they are in the file. They are
    /// handed over even if the caller stops waiting.
    pub async fn write(&self, lines: Vec<String>) -> Result<(), Unwritten> {
        let (ack, done) = oneshot::channel();
        let tx = self.tx.clone();
        let pending = self.metrics.pending.clone();
        let n = i64::try_from(lines.len()).unwrap_or(i64::MAX);
        pending.inc_by(n);
        let sent = tokio::spawn(async move { tx.send(Msg::Lines { lines, ack }).await.is_ok() });
        if !sent.await.unwrap_or(false) {
            pending.dec_by(n);
            return Err(Unwritten::Closed);
        }
        done.await.unwrap_or(Err(Unwritten::Closed))
    }

    /// Writes the closing checkpoint and stops the writer; lines handed over before are
    /// written first.
    pub async fn close(&self) {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Msg::Close(ack)).await.is_ok() {
            let _ = done.await;
        }
    }
}

/// The writer's thread.
struct Thread {
    sink: Sink,
    rx: mpsc::Receiver<Msg>,
    failing: Arc<AtomicBool>,
    metrics: AuditMetrics,
    every: Duration,
}

type Ack = oneshot::Sender<Result<(), Unwritten>>;

/// Lines chained into one buffer, the requests waiting for them, and a `Close` that came with
/// them.
struct Linked {
    bytes: Vec<u8>,
    lines: u64,
    acks: Vec<Ack>,
    close: Option<oneshot::Sender<()>>,
}

/// Lines chained but not yet in the file, their requests already told so.
struct Kept {
    bytes: Vec<u8>,
    lines: u64,
}

impl Thread {
    fn run(mut self) {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                tracing::error!(error = %e, "the audit writer cannot start; changes are refused");
                self.failing.store(true, Ordering::Relaxed);
                return;
            }
        };
        rt.block_on(self.serve());
    }

    async fn serve(&mut self) {
        let mut kept: Option<Kept> = None;
        let mut next_checkpoint = Instant::now() + self.every;
        let mut msgs = Vec::with_capacity(BATCH);
        loop {
            if let Some(k) = kept.as_mut() {
                let room = k.lines < RETAIN_MAX;
                tokio::select! {
                    () = tokio::time::sleep(RETRY) => {
                        if self.sink.write(&k.bytes).is_ok() {
                            self.written(k.lines, k.lines);
                            self.failing.store(false, Ordering::Relaxed);
                            tracing::info!(lines = k.lines, "the audit file can be written again; the lines kept are written");
                            kept = None;
                        } else {
                            self.metrics.failures.inc();
                        }
                    }
                    n = self.rx.recv_many(&mut msgs, BATCH), if room => {
                        if n == 0 {
                            break;
                        }
                        let Linked { bytes, lines, acks, close } = self.link(&mut msgs);
                        k.bytes.extend_from_slice(&bytes);
                        k.lines += lines;
                        acks.into_iter().for_each(|a| { let _ = a.send(Err(Unwritten::Failing)); });
                        if let Some(close) = close {
                            self.close_failing(k);
                            let _ = close.send(());
                            return;
                        }
                    }
                }
                continue;
            }
            tokio::select! {
                n = self.rx.recv_many(&mut msgs, BATCH) => {
                    if n == 0 {
                        break;
                    }
                    if self.sink.needs_rotation(&msgs) {
                        if let Err(e) = self.sink.rotate() {
                            self.metrics.failures.inc();
                            tracing::error!(error = %e, path = %self.sink.path.display(), "the audit file cannot be rotated; it grows past max_file_bytes");
                        } else {
                            self.written(1, 0);
                        }
                    }
                    let Linked { bytes, lines, acks, close } = self.link(&mut msgs);
                    match self.sink.write(&bytes) {
                        Ok(()) => {
                            self.written(lines, lines);
                            acks.into_iter().for_each(|a| { let _ = a.send(Ok(())); });
                        }
                        Err(e) => {
                            self.metrics.failures.inc();
                            self.failing.store(true, Ordering::Relaxed);
                            tracing::error!(error = %e, path = %self.sink.path.display(), "the audit file cannot be written; changes are refused until it can");
                            acks.into_iter().for_each(|a| { let _ = a.send(Err(Unwritten::Failing)); });
                            kept = Some(Kept { bytes, lines });
                        }
                    }
                    if let Some(close) = close {
                        match kept.as_mut() {
                            Some(k) => self.close_failing(k),
                            None => self.close("shutdown"),
                        }
                        let _ = close.send(());
                        return;
                    }
                }
                () = tokio::time::sleep_until(next_checkpoint) => {
                    next_checkpoint = Instant::now() + self.every;
                    if self.sink.since_checkpoint > 0 {
                        self.checkpoint("periodic");
                    }
                }
            }
        }
        // Every sender is gone (the runtime was dropped without closing the log).
        match kept.as_mut() {
            Some(k) => self.close_failing(k),
            None => self.close("shutdown"),
        }
    }

    /// Chains the lines of `msgs` (up to a `Close`, which is returned) into one buffer.
    fn link(&mut self, msgs: &mut Vec<Msg>) -> Linked {
        let mut bytes = Vec::new();
        let mut acks = Vec::with_capacity(msgs.len());
        let mut close = None;
        let mut count = 0u64;
        for msg in msgs.drain(..) {
            match msg {
                Msg::Lines { lines, ack } if close.is_none() => {
                    for fields in &lines {
                        bytes.extend_from_slice(self.sink.chain.link(fields).as_bytes());
                        bytes.push(b'\n');
                    }
                    count += lines.len() as u64;
                    acks.push(ack);
                }
                Msg::Lines { lines, ack } => {
                    let n = i64::try_from(lines.len()).unwrap_or(i64::MAX);
                    self.metrics.pending.dec_by(n);
                    let _ = ack.send(Err(Unwritten::Closed));
                }
                Msg::Close(ack) => close = Some(ack),
            }
        }
        let lines = count;
        self.sink.since_checkpoint += lines;
        Linked {
            bytes,
            lines,
            acks,
            close,
        }
    }

    fn written(&self, lines: u64, queued: u64) {
        self.metrics.written(lines, queued);
    }

    fn checkpoint(&mut self, reason: &'static str) {
        match self.sink.checkpoint(reason) {
            Ok(()) => self.written(1, 0),
            Err(e) => {
                self.metrics.failures.inc();
                tracing::error!(error = %e, reason, "the audit checkpoint cannot be written");
            }
        }
    }

    fn close(&mut self, reason: &'static str) {
        self.checkpoint(reason);
    }

    /// Closing while lines are kept: one last try, else they are lost with the process.
    fn close_failing(&mut self, k: &Kept) {
        if self.sink.write(&k.bytes).is_ok() {
            self.written(k.lines, k.lines);
            self.close("shutdown");
        } else {
            tracing::error!(
                lines = k.lines,
                path = %self.sink.path.display(),
                "the audit file still cannot be written at shutdown; the lines kept are lost"
            );
        }
    }
}

/// The file and where the chain stands.
struct Sink {
    path: PathBuf,
    file: Option<File>,
    size: u64,
    chain: Chain,
    key: Arc<[u8]>,
    max_file_bytes: u64,
    stdout: bool,
    since_checkpoint: u64,
    /// How the log was found at start: `new`, `closed`, or `unclean` (no closing checkpoint:
    /// the process stopped without closing it, or its end was cut off).
    previous: &'static str,
    /// Bytes of an unfinished last line removed at start (a write cut short by a crash; it
    /// was never acknowledged).
    cut: u64,
}

impl Sink {
    fn open(config: &AuditConfig) -> io::Result<Self> {
        let path = config.path.clone();
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)?;
        let (last, cut) = last_line(&file)?;
        let size = file.metadata()?.len();
        let last = match last {
            Some(line) => Some(line),
            None => match newest_rotated(&path)? {
                Some(rotated) => last_line(&File::open(rotated)?)?.0,
                None => None,
            },
        };
        let (chain, previous) = match last {
            None => (Chain::default(), "new"),
            Some(line) => {
                let v: serde_json::Value = serde_json::from_slice(&line).map_err(|_| {
                    invalid(
                        &path,
                        "its last line is not an audit line; move the file away",
                    )
                })?;
                let seq = v["seq"]
                    .as_u64()
                    .ok_or_else(|| invalid(&path, "its last line has no seq"))?;
                let closed = v["type"] == "checkpoint"
                    && matches!(v["reason"].as_str(), Some("shutdown" | "rotate"));
                (
                    Chain::after(seq, &line),
                    if closed { "closed" } else { "unclean" },
                )
            }
        };
        Ok(Self {
            path,
            file: Some(file),
            size,
            chain,
            key: config.key.clone(),
            max_file_bytes: config.max_file_bytes,
            stdout: config.stdout,
            since_checkpoint: 0,
            previous,
            cut,
        })
    }

    fn checkpoint_start(&mut self) -> io::Result<()> {
        let fields = serde_json::json!({
            "time": crate::scim::now(),
            "type": "checkpoint",
            "reason": "start",
            "previous": self.previous,
            "cut_bytes": self.cut,
        });
        let line = self.chain.seal(&fields.to_string(), &self.key);
        self.since_checkpoint = 0;
        self.write(format!("{line}\n").as_bytes())
    }

    fn checkpoint(&mut self, reason: &'static str) -> io::Result<()> {
        // `{"time":…,"type":"checkpoint",…}`, the fields in this order.
        let fields = format!(
            "{{\"time\":\"{}\",\"type\":\"checkpoint\",\"reason\":\"{reason}\",\"lines\":{}}}",
            crate::scim::now(),
            self.since_checkpoint
        );
        let mut chain = self.chain.clone();
        let line = chain.seal(&fields, &self.key);
        self.write(format!("{line}\n").as_bytes())?;
        self.chain = chain;
        self.since_checkpoint = 0;
        Ok(())
    }

    /// Whether the lines waiting would take the file past its size: each line is its fields
    /// and about 110 bytes of chain.
    fn needs_rotation(&self, msgs: &[Msg]) -> bool {
        let incoming: u64 = msgs
            .iter()
            .map(|m| match m {
                Msg::Lines { lines, .. } => lines.iter().map(|f| f.len() as u64 + 110).sum(),
                Msg::Close(_) => 0,
            })
            .sum();
        self.size > 0 && self.size + incoming > self.max_file_bytes
    }

    /// Ends the file with a `rotate` checkpoint, renames it to the next free number, and
    /// starts a new one.
    fn rotate(&mut self) -> io::Result<()> {
        self.checkpoint("rotate")?;
        let to = numbered(&self.path, next_number(&self.path)?);
        std::fs::rename(&self.path, &to)?;
        self.file = None;
        self.size = 0;
        self.open_file()?;
        Ok(())
    }

    fn open_file(&mut self) -> io::Result<&mut File> {
        if self.file.is_none() {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
            self.size = file.metadata()?.len();
            self.file = Some(file);
        }
        Ok(self.file.as_mut().expect("opened above"))
    }

    /// Writes whole lines and waits until they are on disk. On failure the file is cut back to
    /// where it was (no half line stays) and opened again on the next try.
    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        let before = self.size;
        let file = self.open_file()?;
        let done = file.write_all(bytes).and_then(|()| file.sync_data());
        if let Err(e) = done {
            let _ = file.set_len(before);
            self.file = None;
            return Err(e);
        }
        self.size += bytes.len() as u64;
        if self.stdout {
            // Log shippers read these; a closed stdout does not stop the file.
            let _ = io::stdout().lock().write_all(bytes);
        }
        Ok(())
    }
}

fn invalid(path: &Path, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: {what}", path.display()),
    )
}

/// The last complete line of a file (without its newline), and how many bytes of an unfinished
/// line after it were cut off.
fn last_line(file: &File) -> io::Result<(Option<Vec<u8>>, u64)> {
    let len = file.metadata()?.len();
    let mut f = file;
    let mut tail = Vec::new();
    let mut from = len;
    // Read backwards in growing chunks until the line before the last is found.
    let start = loop {
        let step = (64 << 10).max(tail.len() as u64);
        let at = from.saturating_sub(step);
        let mut chunk = vec![0; (from - at) as usize];
        f.seek(SeekFrom::Start(at))?;
        f.read_exact(&mut chunk)?;
        chunk.extend_from_slice(&tail);
        tail = chunk;
        from = at;
        let complete = match tail.iter().rposition(|&b| b == b'\n') {
            Some(end) => end,
            None if at == 0 => break None,
            None => continue,
        };
        match tail[..complete].iter().rposition(|&b| b == b'\n') {
            Some(i) => break Some((i + 1, complete)),
            None if at == 0 => break Some((0, complete)),
            None => continue,
        }
    };
    let Some((begin, end)) = start else {
        // No newline at all: everything is one unfinished line.
        if len > 0 {
            file.set_len(0)?;
        }
        return Ok((None, len));
    };
    let cut = tail.len() as u64 - end as u64 - 1;
    if cut > 0 {
        file.set_len(len - cut)?;
    }
    Ok((Some(tail[begin..end].to_vec()), cut))
}

fn numbered(path: &Path, n: u64) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n:06}"));
    PathBuf::from(name)
}

/// The rotated files of `path`, by number.
pub fn rotated(path: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let Some(base) = path.file_name().and_then(|n| n.to_str()) else {
        return Ok(Vec::new());
    };
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(n) = name
            .to_str()
            .and_then(|n| n.strip_prefix(base)?.strip_prefix('.'))
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse().ok())
        else {
            continue;
        };
        found.push((n, entry.path()));
    }
    found.sort();
    Ok(found)
}

fn newest_rotated(path: &Path) -> io::Result<Option<PathBuf>> {
    Ok(rotated(path)?.pop().map(|(_, p)| p))
}

fn next_number(path: &Path) -> io::Result<u64> {
    Ok(rotated(path)?.last().map_or(1, |(n, _)| n + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_line_is_found_and_an_unfinished_one_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        std::fs::write(&path, "{\"seq\":0}\n{\"seq\":1}\n{\"seq\":2,\"hal").unwrap();
        let file = OpenOptions::new()
            .append(true)
            .read(true)
            .open(&path)
            .unwrap();
        let (last, cut) = last_line(&file).unwrap();
        assert_eq!(last.as_deref(), Some(&b"{\"seq\":1}"[..]));
        assert_eq!(cut, 13);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"seq\":0}\n{\"seq\":1}\n"
        );
        std::fs::write(&path, "{\"seq\":0}\n").unwrap();
        let file = File::open(&path).unwrap();
        assert_eq!(
            last_line(&file).unwrap().0.as_deref(),
            Some(&b"{\"seq\":0}"[..])
        );
    }

    fn config(dir: &Path) -> AuditConfig {
        AuditConfig {
            path: dir.join("a.log"),
            key_file: dir.join("key"),
            key: Arc::from(&b"0123456789abcdef"[..]),
            max_file_bytes: 1 << 20,
            checkpoint_every: Duration::from_secs(3600),
            stdout: false,
        }
    }

    #[tokio::test]
    async fn a_line_whose_write_failed_is_kept_and_written_later_never_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path());
        let metrics = AuditMetrics::default();
        let mut sink = Sink::open(&config).unwrap();
        sink.checkpoint_start().unwrap();
        // Read-only: the next write fails, as on a full or vanished disk.
        sink.file = Some(File::open(&config.path).unwrap());
        let writer = Writer::spawn(sink, metrics.clone(), &config).unwrap();
        let first = writer
            .write(vec![r#"{"type":"change","id":"1"}"#.into()])
            .await;
        assert_eq!(first, Err(Unwritten::Failing));
        assert!(writer.failing(), "changes are refused from now on");
        assert_eq!(metrics.failures.get(), 1);
        assert_eq!(
            metrics.pending.get(),
            1,
            "the line still waits for the file"
        );
        // Closing writes what was kept (the file opens again), then the closing checkpoint.
        writer.close().await;
        let text = std::fs::read_to_string(&config.path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[1].contains(r#""id":"1""#));
        assert_eq!(metrics.pending.get(), 0);
        let key = &config.key[..];
        let report =
            super::super::verify::verify(std::slice::from_ref(&config.path), Some(key), false);
        assert!(report.is_ok(), "{:?}", report.err());
    }

    #[tokio::test]
    async fn lines_handed_over_together_are_chained_in_one_file_and_each_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path());
        let writer = Arc::new(Writer::start(&config, AuditMetrics::default()).unwrap());
        let mut all = tokio::task::JoinSet::new();
        for i in 0..200 {
            let w = writer.clone();
            all.spawn(async move {
                w.write(vec![format!("{{\"type\":\"change\",\"id\":\"{i}\"}}")])
                    .await
            });
        }
        while let Some(done) = all.join_next().await {
            assert_eq!(done.unwrap(), Ok(()));
        }
        writer.close().await;
        let text = std::fs::read_to_string(&config.path).unwrap();
        assert_eq!(text.lines().count(), 202, "start, 200 lines, shutdown");
        let report = super::super::verify::verify(
            std::slice::from_ref(&config.path),
            Some(&config.key[..]),
            false,
        );
        assert!(report.is_ok(), "{:?}", report.err());
    }

    #[test]
    fn rotated_files_are_numbered_after_the_highest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        assert_eq!(next_number(&path).unwrap(), 1);
        std::fs::write(numbered(&path, 7), "").unwrap();
        std::fs::write(dir.path().join("a.log.x"), "").unwrap();
        assert_eq!(next_number(&path).unwrap(), 8);
    }
}
