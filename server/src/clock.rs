//! The server's clock: the current time as a [`Timestamp`], injected so that tests can move
//! time (session expiry, throttling windows, purge grace periods).

use saksi_shared::Timestamp;

/// The current time. Injected so tests can move time.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    fn now(&self) -> Timestamp;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| Timestamp::from_millis(d.as_millis() as i64))
            .unwrap_or(Timestamp::EPOCH)
    }
}

/// A clock tests move by hand. Starts at the system time.
#[derive(Debug)]
pub struct ManualClock(std::sync::atomic::AtomicI64);

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock(std::sync::atomic::AtomicI64::new(
            SystemClock.now().as_millis(),
        ))
    }
}

impl ManualClock {
    pub fn advance(&self, by: std::time::Duration) {
        use std::sync::atomic::Ordering::SeqCst;
        let later = |t| Some((Timestamp::from_millis(t) + by).as_millis());
        let _ = self.0.fetch_update(SeqCst, SeqCst, later);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.0.load(std::sync::atomic::Ordering::SeqCst))
    }
}
