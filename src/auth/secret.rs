//! Secrets stored as a salted slow hash: HTTP Basic passwords (argon2 PHC strings, or bcrypt
//! hashes carried over from another system) and OAuth client secrets (argon2). A check costs tens of milliseconds of CPU and memory on purpose, so it runs
//! on the blocking pool, a few at a time, and a success is remembered for a few minutes (keyed
//! by a SHA-256 of the credential) so that an IdP syncing steadily pays for it once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

/// How long a verified credential is taken on trust. A password removed from the file stops
/// working at the reload all the same: the stored hash is part of the key.
pub const REMEMBER: Duration = Duration::from_secs(300);
/// Successes remembered at most; past it the oldest half is forgotten.
const REMEMBERED_MAX: usize = 4096;
/// How long a check waits for a slot before the caller is told to retry (503).
const MAX_WAIT: Duration = Duration::from_secs(2);
/// Hash parameters past these would let one configured hash pin the CPU or memory: 256 MiB,
/// 16 passes, 8 lanes.
const MAX_M_COST: u32 = 256 * 1024;
const MAX_T_COST: u32 = 16;
const MAX_P_COST: u32 = 8;
/// bcrypt's cost is the log2 of its rounds: 14 is about a second of one core, and each step
/// doubles it. Below 4 the crate refuses to hash at all.
const MIN_BCRYPT_COST: u32 = 4;
const MAX_BCRYPT_COST: u32 = 14;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("every slot for slow hash checks is taken")]
pub struct Busy;

/// Checks at most `parallel` hashes at once and remembers recent successes.
#[derive(Debug)]
pub struct SecretVerifier {
    slots: Arc<Semaphore>,
    remembered: Mutex<HashMap<[u8; 32], Instant>>,
}

/// Half the cores, at least one and at most four: argon2 is CPU- and memory-bound, and the
/// rest of the proxy must keep running while a flood of guesses is checked.
pub fn default_parallelism() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get() / 2)
        .clamp(1, 4)
}

impl SecretVerifier {
    pub fn new(parallel: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(parallel.max(1))),
            remembered: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `secret` matches `stored` (an argon2 PHC string or a bcrypt hash). `scope` (the
    /// tenant and the user or client) is part of the cache key, so a success in one place
    /// counts nowhere else.
    pub async fn verify(
        &self,
        scope: &str,
        stored: &Arc<str>,
        secret: &[u8],
    ) -> Result<bool, Busy> {
        let key = cache_key(scope, stored, secret);
        if self.recently_verified(&key) {
            return Ok(true);
        }
        let ok = self.run(stored.clone(), secret.to_vec()).await?;
        if ok {
            self.remember(key);
        }
        Ok(ok)
    }

    /// Spends what a real check against `like` (one of the tenant's stored hashes, so of the
    /// same kind and cost) would, for a user name that is not configured: the answer's timing
    /// must not tell which names exist. The outcome is thrown away.
    pub async fn waste(&self, like: Option<&Arc<str>>, secret: &[u8]) -> Result<(), Busy> {
        let stored: Arc<str> = like.unwrap_or_else(|| decoy()).clone();
        self.run(stored, secret.to_vec()).await.map(|_| ())
    }

    async fn run(&self, stored: Arc<str>, secret: Vec<u8>) -> Result<bool, Busy> {
        let slot = tokio::time::timeout(MAX_WAIT, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| Busy)?
            .map_err(|_| Busy)?;
        let checked = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            matches(&stored, &secret)
        });
        // A panic in the hash crate is a refusal, not a crash of the request's task.
        Ok(checked.await.unwrap_or(false))
    }

    fn recently_verified(&self, key: &[u8; 32]) -> bool {
        let remembered = self
            .remembered
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        remembered
            .get(key)
            .is_some_and(|at| at.elapsed() < REMEMBER)
    }

    fn remember(&self, key: [u8; 32]) {
        let mut remembered = self
            .remembered
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if remembered.len() >= REMEMBERED_MAX {
            remembered.retain(|_, at| at.elapsed() < REMEMBER);
            if remembered.len() >= REMEMBERED_MAX / 2 {
                let mut ages: Vec<Instant> = remembered.values().copied().collect();
                ages.sort_unstable();
                let cut = ages[ages.len() / 2];
                remembered.retain(|_, at| *at > cut);
            }
        }
        remembered.insert(key, Instant::now());
    }
}

fn cache_key(scope: &str, stored: &str, secret: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    for part in [scope.as_bytes(), stored.as_bytes(), secret] {
        // Length-prefixed, so that no two different triples hash the same bytes.
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    h.finalize().into()
}

/// The comparison itself; both argon2 and bcrypt read their parameters and salt from the
/// stored string and compare the outputs in constant time.
fn matches(stored: &str, secret: &[u8]) -> bool {
    if is_bcrypt(stored) {
        // bcrypt reads at most 72 bytes of a password, as every implementation does; the
        // systems these hashes come from accepted the same passwords.
        return bcrypt::verify(secret, stored).unwrap_or(false);
    }
    match PasswordHash::new(stored) {
        Ok(hash) => Argon2::default().verify_password(secret, &hash).is_ok(),
        Err(_) => false,
    }
}

/// The versions of bcrypt's modular crypt format that are checked (`$2x$`, the marker of
/// hashes made by a buggy implementation, is not).
const BCRYPT_PREFIXES: [&str; 3] = ["$2a$", "$2b$", "$2y$"];

/// Whether a stored hash is a bcrypt one (else it is read as an argon2 PHC string).
pub fn is_bcrypt(stored: &str) -> bool {
    BCRYPT_PREFIXES.iter().any(|p| stored.starts_with(p))
}

/// A hash of a secret nobody has, with the default parameters, checked for unknown names.
fn decoy() -> &'static Arc<str> {
    static DECOY: std::sync::OnceLock<Arc<str>> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        hash(b"scimgate: no user has this secret")
            .unwrap_or_default()
            .into()
    })
}

/// The argon2id PHC string of `secret` with a fresh random salt and argon2's default
/// parameters (19 MiB, 2 passes, 1 lane: OWASP's recommendation).
pub fn hash(secret: &[u8]) -> Result<String, String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| format!("no randomness available: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(secret, &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Whether a configured string is an argon2 PHC string the proxy can check in bounded time.
pub fn check_phc(stored: &str) -> Result<(), String> {
    let hash = PasswordHash::new(stored).map_err(|_| {
        "expected an argon2 PHC string such as \"$argon2id$v=19$m=19456,t=2,p=1$…\"".to_owned()
    })?;
    if !matches!(hash.algorithm.as_str(), "argon2id" | "argon2i" | "argon2d") {
        return Err(format!(
            "{} is not an argon2 hash; expected \"$argon2id$…\"",
            hash.algorithm
        ));
    }
    let params = argon2::Params::try_from(&hash).map_err(|e| format!("argon2 parameters: {e}"))?;
    if params.m_cost() > MAX_M_COST || params.t_cost() > MAX_T_COST || params.p_cost() > MAX_P_COST
    {
        return Err(format!(
            "argon2 parameters too costly to check per request (at most m={MAX_M_COST}, t={MAX_T_COST}, p={MAX_P_COST})"
        ));
    }
    if hash.hash.is_none() || hash.salt.is_none() {
        return Err("the PHC string has no salt or no hash".to_owned());
    }
    Ok(())
}

/// Whether a configured string is a bcrypt hash the proxy can check in bounded time:
/// `$2b$` (or `$2a$`, `$2y$`), a two-digit cost, then 53 characters of salt and hash.
pub fn check_bcrypt(stored: &str) -> Result<(), String> {
    let expected =
        "expected a bcrypt hash such as \"$2b$12$\" followed by 53 characters of salt and hash";
    if !is_bcrypt(stored) {
        return Err(format!("{expected} ($2a$, $2b$ or $2y$)"));
    }
    let parts: bcrypt::HashParts = stored
        .parse()
        .map_err(|e: bcrypt::BcryptError| format!("{expected}: {e}"))?;
    let cost = parts.get_cost();
    if cost < MIN_BCRYPT_COST {
        return Err(format!(
            "bcrypt cost {cost} is below {MIN_BCRYPT_COST}, which bcrypt does not allow"
        ));
    }
    if cost > MAX_BCRYPT_COST {
        return Err(format!(
            "bcrypt cost {cost} is too costly to check per request (at most {MAX_BCRYPT_COST})"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cheap parameters, so the tests do not wait on the hash.
    fn quick_hash(secret: &[u8]) -> Arc<str> {
        let params = argon2::Params::new(64, 1, 1, None).expect("valid parameters");
        let argon = Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let salt = SaltString::encode_b64(b"0123456789abcdef").expect("salt");
        argon
            .hash_password(secret, &salt)
            .expect("hashed")
            .to_string()
            .into()
    }

    #[tokio::test]
    async fn the_right_secret_matches_and_a_wrong_one_does_not() {
        let v = SecretVerifier::new(1);
        let stored = quick_hash(b"s3cret");
        assert_eq!(v.verify("t/u", &stored, b"s3cret").await, Ok(true));
        assert_eq!(v.verify("t/u", &stored, b"s3creT").await, Ok(false));
    }

    #[tokio::test]
    async fn a_success_is_remembered_for_its_scope_only() {
        let v = SecretVerifier::new(1);
        let stored = quick_hash(b"pw");
        assert_eq!(v.verify("a/okta", &stored, b"pw").await, Ok(true));
        assert!(v.recently_verified(&cache_key("a/okta", &stored, b"pw")));
        assert!(!v.recently_verified(&cache_key("b/okta", &stored, b"pw")));
        assert!(!v.recently_verified(&cache_key("a/okta", &stored, b"pW")));
    }

    #[tokio::test]
    async fn a_check_that_cannot_get_a_slot_in_time_is_busy() {
        let v = SecretVerifier::new(1);
        let _taken = v.slots.clone().acquire_owned().await.expect("open");
        tokio::time::pause();
        let stored = quick_hash(b"pw");
        assert_eq!(v.verify("t/u", &stored, b"pw").await, Err(Busy));
    }

    #[test]
    fn the_cache_stays_bounded() {
        let v = SecretVerifier::new(1);
        for i in 0..(3 * REMEMBERED_MAX) {
            v.remember(cache_key("t", "h", &i.to_be_bytes()));
        }
        let n = v.remembered.lock().expect("not poisoned").len();
        assert!(n <= REMEMBERED_MAX, "{n}");
    }

    #[test]
    fn hashes_made_here_are_accepted_by_the_configuration_check() {
        let phc = hash(b"pw").expect("hashed");
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert_eq!(check_phc(&phc), Ok(()));
        assert!(matches(&phc, b"pw"));
    }

    #[test]
    fn other_and_costly_hashes_are_refused_by_the_configuration_check() {
        assert!(check_phc("9f86d081884c7d659a2feaa0c55ad015").is_err());
        let costly = "$argon2id$v=19$m=4194304,t=2,p=1$MDEyMzQ1Njc4OWFiY2RlZg$o4YdOSZGW3v8f/CnW2n6iqKuEuAk8i+rcJvKdgSe6DI";
        assert!(check_phc(costly).unwrap_err().contains("too costly"));
        assert!(check_phc("$scrypt$ln=15,r=8,p=1$c2FsdHNhbHQ$aGFzaGhhc2g").is_err());
    }

    /// A bcrypt hash at the lowest cost, so the tests do not wait on it, in the version given.
    fn quick_bcrypt(secret: &[u8], version: bcrypt::Version) -> Arc<str> {
        bcrypt::hash_with_salt(secret, 4, *b"0123456789abcdef")
            .expect("hashed")
            .format_for_version(version)
            .into()
    }

    #[tokio::test]
    async fn bcrypt_hashes_are_checked_on_the_same_path_as_argon2() {
        let v = SecretVerifier::new(1);
        for version in [
            bcrypt::Version::TwoA,
            bcrypt::Version::TwoB,
            bcrypt::Version::TwoY,
        ] {
            let stored = quick_bcrypt(b"s3cret", version);
            assert_eq!(check_bcrypt(&stored), Ok(()), "{stored}");
            assert_eq!(v.verify("t/u", &stored, b"s3creT").await, Ok(false));
            assert_eq!(v.verify("t/u", &stored, b"s3cret").await, Ok(true));
            assert!(v.recently_verified(&cache_key("t/u", &stored, b"s3cret")));
        }
    }

    #[tokio::test]
    async fn a_bcrypt_check_waits_for_a_slot_like_any_other() {
        let v = SecretVerifier::new(1);
        let _taken = v.slots.clone().acquire_owned().await.expect("open");
        tokio::time::pause();
        let stored = quick_bcrypt(b"pw", bcrypt::Version::TwoB);
        assert_eq!(v.verify("t/u", &stored, b"pw").await, Err(Busy));
        assert_eq!(v.waste(Some(&stored), b"pw").await, Err(Busy));
    }

    #[test]
    fn malformed_and_costly_bcrypt_hashes_are_refused_by_the_configuration_check() {
        let good = quick_bcrypt(b"pw", bcrypt::Version::TwoB);
        let truncated = &good[..good.len() - 1];
        assert!(check_bcrypt(truncated)
            .unwrap_err()
            .contains("expected a bcrypt hash"));
        let x = good.replacen("$2b$", "$2x$", 1);
        assert!(check_bcrypt(&x).unwrap_err().contains("$2a$, $2b$ or $2y$"));
        let bad_cost = good.replacen("$04$", "$xx$", 1);
        assert!(check_bcrypt(&bad_cost).is_err());
        let costly = good.replacen("$04$", "$15$", 1);
        assert!(check_bcrypt(&costly).unwrap_err().contains("too costly"));
        let cheap = good.replacen("$04$", "$03$", 1);
        assert!(check_bcrypt(&cheap).unwrap_err().contains("below 4"));
        assert!(check_bcrypt(&hash(b"pw").expect("hashed")).is_err());
    }
}
