//! The server's clock: the current time as [`Timestamp`] since the Unix epoch, injected so that
//! tests can move time (session expiry, throttling windows, purge grace periods).

use saksi_shared::Timestamp;

/// The current time, in milliseconds since the Unix epoch. Injected so tests can move time.
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
        let millis = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.0
            .fetch_add(millis, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.0.load(std::sync::atomic::Ordering::SeqCst))
    }
}
