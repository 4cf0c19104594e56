//! Restart back-off of crashing containers: 10 s doubling up to 5 min, reset
//! after a container ran fine for a while (Kubernetes' CrashLoopBackOff).

use std::time::Duration;

/// One container's back-off.
#[derive(Clone, Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// Kubernetes' values: 10 s, doubling, capped at 300 s.
    pub fn kubernetes() -> Self {
        Self::new(Duration::from_secs(10), Duration::from_secs(300))
    }

    /// A back-off from `initial` doubling up to `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            next: initial,
        }
    }

    /// The delay before the next restart; each call doubles the following one.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }

    /// Starts over (the container ran long enough without crashing).
    pub fn reset(&mut self) {
        self.next = self.initial;
    }

    /// How long a container must run for its back-off to reset (twice the cap, as Kubernetes).
    pub fn reset_after(&self) -> Duration {
        self.max * 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_ten_seconds_to_five_minutes_and_resets() {
        let mut b = Backoff::kubernetes();
        let seq: Vec<u64> = (0..8).map(|_| b.next_delay().as_secs()).collect();
        assert_eq!(seq, vec![10, 20, 40, 80, 160, 300, 300, 300]);
        b.reset();
        assert_eq!(b.next_delay().as_secs(), 10);
        assert_eq!(b.reset_after().as_secs(), 600);
    }
}
