//! Reconnect timing: exponential backoff with jitter and a cap.

use std::time::Duration;

use crate::net::identity::random_bytes;

/// Exponential backoff with jitter and a cap. The caller resets it only after a connection
/// stayed up for [`Backoff::STABLE_AFTER`], so a server that accepts and then drops at once
/// keeps being backed off from.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(Duration::from_millis(250), Duration::from_secs(30))
    }
}

impl Backoff {
    /// How long a connection must last before it counts as a success.
    pub const STABLE_AFTER: Duration = Duration::from_secs(10);

    pub fn new(base: Duration, cap: Duration) -> Self {
        Self {
            base,
            cap,
            attempt: 0,
        }
    }

    /// The next delay, with `unit` in [0, 1) choosing where in the upper half of the current
    /// step it lands ("equal jitter": never less than half the step, so retries stay spread
    /// out without collapsing to zero).
    pub fn next_with(&mut self, unit: f64) -> Duration {
        let step = self
            .base
            .saturating_mul(2u32.saturating_pow(self.attempt.min(16)))
            .min(self.cap);
        self.attempt = self.attempt.saturating_add(1);
        let half = step / 2;
        half + half.mul_f64(unit.clamp(0.0, 1.0))
    }

    pub fn next_delay(&mut self) -> Duration {
        let mut b = [0u8; 4];
        let unit = match random_bytes(&mut b) {
            Ok(()) => f64::from(u32::from_le_bytes(b)) / (f64::from(u32::MAX) + 1.0),
            Err(_) => 0.5,
        };
        self.next_with(unit)
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}
