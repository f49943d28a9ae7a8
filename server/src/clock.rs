//! The server's clock: the current time as [`Millis`] since the Unix epoch, injected so that
//! tests can move time (session expiry, throttling windows, purge grace periods).

use saksi_shared::Millis;

/// The current time, in milliseconds since the Unix epoch. Injected so tests can move time.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    fn now(&self) -> Millis;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Millis {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as Millis)
            .unwrap_or(0)
    }
}

/// A clock tests move by hand. Starts at the system time.
#[derive(Debug)]
pub struct ManualClock(std::sync::atomic::AtomicI64);

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock(std::sync::atomic::AtomicI64::new(SystemClock.now()))
    }
}

impl ManualClock {
    pub fn advance(&self, millis: Millis) {
        self.0
            .fetch_add(millis, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Millis {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}
