//! What authentication keeps for the whole process, across reloads. Free of requests, so the
//! runtime can hold it without depending on the stage that uses it.

use std::sync::Arc;

use super::secret::SecretVerifier;
use super::signer::Signer;

/// The bound on slow hash checks with its cache of recent successes, and the key OAuth tokens
/// are signed with.
#[derive(Debug)]
pub struct Services {
    pub secrets: Arc<SecretVerifier>,
    pub signer: Arc<Signer>,
}
