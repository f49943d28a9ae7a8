//! Accounts and devices: passwords, device tokens, sync tickets, login throttling, the
//! username rule, and signing in and out ([`sign_in`]).
//!
//! Passwords are hashed with Argon2id. A device token is 32 random bytes shown to the client
//! once; the server keeps only its SHA-256. A sync ticket is a single-use token for clients that
//! can only put credentials in a URL, valid for `ticket_seconds`. Failed logins are counted per
//! account and per client address in a sliding window, each as it begins (before its password
//! is checked, so concurrent guesses get no more tries); past the limit, attempts are refused
//! before any password is checked.

mod sign_in;

pub use sign_in::{SignIn, SignInError, SignedIn, sign_in, sign_out};

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use argon2::password_hash::phc::Output;
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, PasswordHasher, Version};
use base64::Engine as _;
use saksi_shared::Timestamp;
use sha2::{Digest, Sha256};

/// Shortest password accepted when one is set.
pub const MIN_PASSWORD_CHARS: usize = 10;

/// Argon2id hashing with the configured cost.
#[derive(Debug, Clone)]
pub struct Passwords {
    params: Params,
    turns: Arc<Turns>,
}

/// Password checks take turns, one per core: each takes a core and `memory_kib` of memory
/// (19 MiB by default), so more at once only costs memory, and anyone can ask for a check.
/// Each turn's memory is kept for the next one. Argon2 allocating its own every time, the
/// allocator kept what was freed in its per-thread arenas: 1,000 phones signing in took the
/// server to 1.2 GB, and it stayed there (BENCHMARKS.md).
#[derive(Debug)]
struct Turns {
    semaphore: Arc<tokio::sync::Semaphore>,
    memory: Mutex<Vec<Vec<Block>>>,
}

/// A turn to check a password ([`Passwords::turn`]).
#[derive(Debug)]
pub struct Turn {
    _permit: tokio::sync::OwnedSemaphorePermit,
    memory: Vec<Block>,
    turns: Arc<Turns>,
}

impl Turn {
    /// The turn's memory, grown to `blocks` if it is smaller.
    fn blocks(&mut self, blocks: usize) -> &mut [Block] {
        if self.memory.len() < blocks {
            self.memory.resize(blocks, Block::new());
        }
        &mut self.memory[..]
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let memory = std::mem::take(&mut self.memory);
        self.turns.memory.lock().expect("turns lock").push(memory);
    }
}

/// Why a password was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("a password needs at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    #[error("password hashing failed")]
    Hashing,
}

impl Passwords {
    pub fn new(memory_kib: u32, iterations: u32) -> Passwords {
        let params = Params::new(memory_kib, iterations, 1, None)
            .expect("validated configuration gives valid Argon2 parameters");
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Passwords {
            params,
            turns: Arc::new(Turns {
                semaphore: Arc::new(tokio::sync::Semaphore::new(cores)),
                memory: Mutex::new(Vec::new()),
            }),
        }
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// Waits for a turn to check a password ([`Passwords::verify`]).
    pub async fn turn(&self) -> Turn {
        let permit = self
            .turns
            .semaphore
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let memory = self
            .turns
            .memory
            .lock()
            .expect("turns lock")
            .pop()
            .unwrap_or_default();
        Turn {
            _permit: permit,
            memory,
            turns: self.turns.clone(),
        }
    }

    /// Hashes a new password (checking its length).
    pub fn hash(&self, password: &str) -> Result<String, PasswordError> {
        if password.chars().count() < MIN_PASSWORD_CHARS {
            return Err(PasswordError::TooShort);
        }
        self.argon2()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|_| PasswordError::Hashing)
    }

    /// Whether `password` matches the stored `hash` (with the cost recorded in the hash), in
    /// the turn's memory.
    pub fn verify(&self, turn: &mut Turn, password: &str, hash: &str) -> bool {
        let Ok(hash) = PasswordHash::new(hash) else {
            return false;
        };
        let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
            return false;
        };
        let algorithm = Algorithm::try_from(hash.algorithm.as_str());
        let version = hash
            .version
            .map_or(Ok(Version::default()), Version::try_from);
        let (Ok(algorithm), Ok(version), Ok(params)) =
            (algorithm, version, Params::try_from(&hash))
        else {
            return false;
        };
        let mut out = vec![0u8; expected.len()];
        let memory = turn.blocks(params.block_count());
        let computed = Argon2::new(algorithm, version, params).hash_password_into_with_memory(
            password.as_bytes(),
            salt,
            &mut out,
            memory,
        );
        // `Output`'s comparison takes the same time wherever the bytes differ.
        computed.is_ok() && Output::new(&out).is_ok_and(|out| &out == expected)
    }

    /// [`Passwords::verify`] in a turn of its own, for tests (which wait for no one).
    #[cfg(test)]
    pub fn verify_now(&self, password: &str, hash: &str) -> bool {
        let mut turn = futures_util::FutureExt::now_or_never(self.turn()).expect("a free turn");
        self.verify(&mut turn, password, hash)
    }

    /// Spends the same effort as a real check, for unknown usernames (no timing oracle).
    pub fn verify_nothing(&self, turn: &mut Turn, password: &str) {
        let salt = [0u8; 16];
        let mut out = [0u8; 32];
        let memory = turn.blocks(self.params.block_count());
        let _ = self.argon2().hash_password_into_with_memory(
            password.as_bytes(),
            &salt,
            &mut out,
            memory,
        );
    }
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::fill(&mut bytes[..]);
    bytes
}

/// A new device token (shown once) and the hash the server keeps.
pub fn new_token() -> (String, [u8; 32]) {
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>());
    let hash = token_hash(&token);
    (token, hash)
}

pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A new device id (not secret).
pub fn new_device_id() -> saksi_shared::DeviceId {
    format!("dev_{}", hex::encode(random_bytes::<10>())).into()
}

/// A username that follows the one rule for usernames: 1-64 letters (any script, Khmer
/// included), digits, `.`, `_` or `-`. Parsed where a username comes in (the admin CLI and
/// console, sign-in), so nothing past the edge sees another.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Username(String);

/// What the rule says, for error messages.
pub const USERNAME_RULE: &str = "a username is 1-64 letters, digits, '.', '_' or '-'";

impl Username {
    pub fn parse(s: &str) -> Result<Username, &'static str> {
        if s.is_empty()
            || s.chars().count() > 64
            || !s
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(USERNAME_RULE);
        }
        Ok(Username(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Username {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// 16 random bytes (document ids, actor ids).
pub fn random_16() -> [u8; 16] {
    random_bytes()
}

/// A random password for the first admin: 20 characters from an unambiguous alphabet.
pub fn random_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    random_bytes::<20>()
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

/// Single-use sync tickets, in memory (a restart simply invalidates them).
#[derive(Debug, Default)]
pub struct Tickets {
    live: Mutex<HashMap<[u8; 32], (String, Timestamp)>>,
}

impl Tickets {
    /// Issues a ticket for `device`, valid until `expires_at`.
    pub fn issue(&self, device: &str, now: Timestamp, expires_at: Timestamp) -> String {
        let (ticket, hash) = new_token();
        let mut live = self.live.lock().expect("tickets lock");
        live.retain(|_, (_, exp)| *exp > now);
        live.insert(hash, (device.to_owned(), expires_at));
        ticket
    }

    /// Redeems a ticket once; returns the device it was issued to.
    pub fn redeem(&self, ticket: &str, now: Timestamp) -> Option<String> {
        let hash = token_hash(ticket);
        let (device, expires_at) = self.live.lock().expect("tickets lock").remove(&hash)?;
        (expires_at > now).then_some(device)
    }
}

/// Counts login attempts per account and per address within a sliding window.
///
/// [`Throttle::begin`] is one step under the lock, taken before any password is checked: it
/// refuses the attempt if the account or the address has reached its limit, and otherwise
/// counts the attempt at once, as a failure, for both. Checking and counting in separate steps
/// let a burst of concurrent guesses all pass the check before the first (slow) password check
/// had counted anything: 60 at once were all checked. Counted first, at most `per_account`
/// attempts for one account are ever in flight or failed within the window.
///
/// A successful attempt ([`Throttle::succeeded`]) clears the account's count, and takes back
/// its own count at the address, so that, as before, only failures count against an address
/// (an office behind one address signs in many people) and a success does not forgive the
/// address's failures.
#[derive(Debug)]
pub struct Throttle {
    window: Duration,
    per_account: usize,
    per_address: usize,
    attempts: Mutex<HashMap<String, VecDeque<Timestamp>>>,
}

impl Throttle {
    pub fn new(window_seconds: u64, per_account: u32, per_address: u32) -> Throttle {
        Throttle {
            window: Duration::from_secs(window_seconds),
            per_account: per_account as usize,
            per_address: per_address as usize,
            attempts: Mutex::new(HashMap::new()),
        }
    }

    fn account_key(account: &str) -> String {
        format!("u:{}", account.to_lowercase())
    }

    fn address_key(address: &str) -> String {
        format!("a:{address}")
    }

    /// Begins a login attempt at `now`: `Err(seconds)` until the next attempt is allowed if
    /// the account or the address has reached its limit (nothing is counted then); otherwise
    /// the attempt is counted as a failure for both, before its password is checked, and
    /// stays counted unless [`Throttle::succeeded`] is called.
    pub fn begin(&self, account: &str, address: &str, now: Timestamp) -> Result<(), u64> {
        let mut attempts = self.attempts.lock().expect("throttle lock");
        // Bound memory under a flood of distinct names: forget the windows that have passed.
        if attempts.len() > 100_000 {
            let window = self.window;
            attempts.retain(|_, times| times.back().is_some_and(|t| *t + window > now));
        }
        let keys = [
            (Self::account_key(account), self.per_account),
            (Self::address_key(address), self.per_address),
        ];
        let mut wait = Duration::ZERO;
        for (key, limit) in &keys {
            if let Some(times) = attempts.get_mut(key) {
                while times.front().is_some_and(|t| *t + self.window <= now) {
                    times.pop_front();
                }
                if times.len() >= *limit {
                    let oldest = times.front().copied().unwrap_or(now);
                    wait = wait.max((oldest + self.window).since(now));
                }
            }
        }
        if wait > Duration::ZERO {
            return Err(wait.as_millis().div_ceil(1000) as u64);
        }
        for (key, _) in keys {
            attempts.entry(key).or_default().push_back(now);
        }
        Ok(())
    }

    /// The attempt begun at `began` succeeded: clears the account's count, and takes the
    /// attempt back from the address's count (the address's failures stay counted).
    pub fn succeeded(&self, account: &str, address: &str, began: Timestamp) {
        let mut attempts = self.attempts.lock().expect("throttle lock");
        attempts.remove(&Self::account_key(account));
        let key = Self::address_key(address);
        if let Some(times) = attempts.get_mut(&key) {
            if let Some(at) = times.iter().rposition(|t| *t == began) {
                times.remove(at);
            }
            if times.is_empty() {
                attempts.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use saksi_testkit::at;

    #[test]
    fn one_rule_for_usernames_in_any_script() {
        for ok in [
            "sophea",
            "dara.k",
            "srey_01",
            "សុខា",
            "ស".repeat(64).as_str(),
        ] {
            assert_eq!(
                Username::parse(ok).map(|u| u.to_string()),
                Ok(ok.to_owned())
            );
        }
        for bad in ["", "two words", "a/b", "x\u{0}", "name\n", &"ស".repeat(65)] {
            assert_eq!(Username::parse(bad), Err(USERNAME_RULE), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn password_checks_take_turns_one_per_core_across_clones() {
        let p = Passwords::new(4096, 1);
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut turns = Vec::new();
        for _ in 0..cores {
            turns.push(p.turn().await);
        }
        let mut first = turns.pop().expect("a turn");
        p.verify_nothing(&mut first, "a password of some length");
        assert_eq!(
            first.memory.len(),
            4096,
            "a turn's memory: one block per KiB"
        );
        drop(first);
        let again = p.turn().await;
        assert_eq!(again.memory.len(), 4096, "kept for the next turn");
        turns.push(again);
        let other = p.clone();
        let waiting = tokio::spawn(async move { other.turn().await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "no turn while every core has one");
        drop(turns.pop());
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("a released turn goes to the one waiting")
            .expect("task");
    }

    #[test]
    fn passwords_verify_and_short_ones_are_refused() {
        let p = Passwords::new(19_456, 2);
        let hash = p.hash("correct horse battery").expect("hashes");
        assert!(hash.starts_with("$argon2id$"));
        let mut turn = futures_util::FutureExt::now_or_never(p.turn()).expect("a free turn");
        assert!(p.verify(&mut turn, "correct horse battery", &hash));
        assert!(!p.verify(&mut turn, "correct horse batterY", &hash));
        assert!(!p.verify(&mut turn, "anything", "not a hash"));
        // A hash made with another cost is checked with the cost it records, in the same turn.
        let older = Passwords::new(8_192, 3)
            .hash("ពាក្យសម្ងាត់ចាស់")
            .expect("hashes");
        assert!(p.verify(&mut turn, "ពាក្យសម្ងាត់ចាស់", &older));
        assert!(!p.verify(&mut turn, "ពាក្យសម្ងាត់ថ្មី", &older));
        // As argon2's own check says.
        use argon2::PasswordVerifier as _;
        let parsed = PasswordHash::new(&older).expect("parses");
        assert!(
            p.argon2()
                .verify_password("ពាក្យសម្ងាត់ចាស់".as_bytes(), &parsed)
                .is_ok()
        );
        assert_eq!(p.hash("short"), Err(PasswordError::TooShort));
    }

    #[test]
    fn tickets_are_single_use_and_expire() {
        let t = Tickets::default();
        let ticket = t.issue("dev_1", at(1_000), at(61_000));
        assert_eq!(t.redeem(&ticket, at(2_000)), Some("dev_1".into()));
        assert_eq!(t.redeem(&ticket, at(2_000)), None, "replayed");
        let late = t.issue("dev_1", at(1_000), at(61_000));
        assert_eq!(t.redeem(&late, at(61_000)), None, "expired");
        assert_eq!(t.redeem("forged", at(2_000)), None);
    }

    #[test]
    fn throttle_counts_per_account_and_address() {
        let t = Throttle::new(900, 3, 5);
        for _ in 0..3 {
            assert!(t.begin("sokha", "10.0.0.1", at(0)).is_ok());
        }
        // Every attempt was counted when it began: the fourth is refused, from any address.
        assert_eq!(t.begin("Sokha", "10.0.0.2", at(1_000)), Err(899));
        assert_eq!(t.begin("sokha", "10.0.0.1", at(1_000)), Err(899));
        assert!(t.begin("vanna", "10.0.0.1", at(1_000)).is_ok());
        assert!(t.begin("dara", "10.0.0.1", at(1_000)).is_ok());
        assert!(
            t.begin("kosal", "10.0.0.1", at(2_000)).is_err(),
            "address limit"
        );
        assert!(t.begin("kosal", "10.0.0.3", at(2_000)).is_ok());
        assert!(
            t.begin("sokha", "10.0.0.9", at(900_000)).is_ok(),
            "window passed"
        );
    }

    #[test]
    fn a_refused_attempt_is_not_counted() {
        let t = Throttle::new(900, 2, 100);
        assert!(t.begin("sokha", "10.0.0.1", at(0)).is_ok());
        assert!(t.begin("sokha", "10.0.0.1", at(0)).is_ok());
        for s in 1..100 {
            assert!(t.begin("sokha", "10.0.0.1", at(s * 1_000)).is_err());
        }
        // Only the two counted attempts hold the account back: both leave the window at 900 s.
        assert!(t.begin("sokha", "10.0.0.1", at(900_000)).is_ok());
    }

    #[test]
    fn success_clears_the_account_and_takes_back_only_its_own_address_count() {
        let t = Throttle::new(900, 3, 3);
        assert!(t.begin("sokha", "10.0.0.1", at(0)).is_ok());
        assert!(t.begin("sokha", "10.0.0.1", at(0)).is_ok());
        assert!(t.begin("sokha", "10.0.0.1", at(1_000)).is_ok());
        t.succeeded("Sokha", "10.0.0.1", at(1_000));
        // The account starts again; the address keeps its two failures (a limit of three).
        assert!(t.begin("sokha", "10.0.0.2", at(2_000)).is_ok());
        assert!(t.begin("vanna", "10.0.0.1", at(2_000)).is_ok());
        t.succeeded("vanna", "10.0.0.1", at(2_000));
        // Successes do not count against an address (an office signs in many people)...
        for name in ["dara", "kosal", "vanna"] {
            assert!(t.begin(name, "10.0.0.1", at(3_000)).is_ok(), "{name}");
            t.succeeded(name, "10.0.0.1", at(3_000));
        }
        // ...but its failures do.
        assert!(t.begin("dara", "10.0.0.1", at(4_000)).is_ok());
        assert_eq!(t.begin("kosal", "10.0.0.1", at(4_000)), Err(896));
    }

    #[test]
    fn concurrent_attempts_for_one_account_let_exactly_the_limit_through() {
        let t = Throttle::new(900, 5, 1_000);
        let start = std::sync::Barrier::new(60);
        let allowed = std::sync::atomic::AtomicUsize::new(0);
        let refused = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for i in 0..60 {
                let (t, start, allowed, refused) = (&t, &start, &allowed, &refused);
                scope.spawn(move || {
                    start.wait();
                    let address = format!("10.0.0.{}", i % 4);
                    let counter = match t.begin("sokha", &address, at(0)) {
                        Ok(()) => allowed,
                        Err(_) => refused,
                    };
                    counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                });
            }
        });
        assert_eq!(allowed.into_inner(), 5);
        assert_eq!(refused.into_inner(), 55);
        assert!(t.begin("sokha", "10.0.0.9", at(1_000)).is_err());
    }
}
