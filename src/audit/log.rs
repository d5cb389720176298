//! The audit log of the process, as the runtime keeps it across reloads, and why a change
//! can be refused because of it. Apart from the stage (`mod.rs`), so that the runtime and the
//! error mapping can name them without importing the stage.

use std::sync::OnceLock;

use super::writer::{self, Unwritten};
use crate::config::AuditConfig;
use crate::metrics::AuditMetrics;

/// Why a change is refused or not acknowledged because of the audit log.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("the audit log cannot be written now, so no change is made; retry later")]
    Unavailable,
    #[error(
        "the change was carried out but its audit line is not yet written; send it again later"
    )]
    NotWritten,
}

/// The audit log of the process: its settings, and its writer once started. Kept by the
/// runtime across reloads.
pub struct AuditLog {
    config: AuditConfig,
    writer: OnceLock<writer::Writer>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.config.path)
            .field("started", &self.writer.get().is_some())
            .finish()
    }
}

impl AuditLog {
    pub fn new(config: AuditConfig) -> Self {
        Self {
            config,
            writer: OnceLock::new(),
        }
    }

    pub fn config(&self) -> &AuditConfig {
        &self.config
    }

    /// Opens the file, takes up the chain where it ends, and starts the writer. Before this,
    /// changes are refused.
    pub fn start(&self, metrics: AuditMetrics) -> std::io::Result<()> {
        if self.writer.get().is_none() {
            let w = writer::Writer::start(&self.config, metrics)?;
            let _ = self.writer.set(w);
        }
        Ok(())
    }

    /// Whether a change may go ahead: the writer runs and its last write succeeded.
    pub fn available(&self) -> bool {
        self.writer.get().is_some_and(|w| !w.failing())
    }

    /// Writes the closing checkpoint (at shutdown).
    pub async fn close(&self) {
        if let Some(w) = self.writer.get() {
            w.close().await;
        }
    }

    pub(super) async fn write(&self, lines: Vec<String>) -> Result<(), Unwritten> {
        match self.writer.get() {
            Some(w) => w.write(lines).await,
            None => Err(Unwritten::Closed),
        }
    }
}
