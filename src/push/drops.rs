//! Pushes given up because a queue was full: counted every time, logged at
//! most once per interval, so that a flood of messages does not become a
//! flood of log lines too.

use crate::metrics::Metrics;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often a warning about dropped pushes may be logged.
const EVERY: Duration = Duration::from_secs(10);

/// Counts drops and says so now and then.
pub struct Drops {
    /// When the last warning went out, and the drops since.
    since: Mutex<(Option<Instant>, u64)>,
}

impl Drops {
    /// Nothing dropped yet.
    pub fn new() -> Self {
        Drops {
            since: Mutex::new((None, 0)),
        }
    }

    /// One push (or one message's pushes) dropped: `what` says which.
    pub fn dropped(&self, metrics: &Metrics, what: &'static str) {
        metrics.pushes_failed.inc();
        if let Some(n) = self.due(Instant::now()) {
            tracing::warn!(dropped = n, what, "push queue full: pushes dropped");
        }
    }

    /// The drops to report now, if a warning is due at `now`.
    fn due(&self, now: Instant) -> Option<u64> {
        let mut since = self.since.lock().unwrap_or_else(|e| e.into_inner());
        since.1 += 1;
        if since.0.is_some_and(|last| now.duration_since(last) < EVERY) {
            return None;
        }
        let n = since.1;
        *since = (Some(now), 0);
        Some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warns_once_per_interval_with_the_count() {
        let drops = Drops::new();
        let t = Instant::now();
        assert_eq!(drops.due(t), Some(1), "the first drop is told at once");
        for _ in 0..99 {
            assert_eq!(drops.due(t + Duration::from_secs(1)), None);
        }
        assert_eq!(drops.due(t + EVERY), Some(100), "then how many since");
        assert_eq!(drops.due(t + EVERY), None);
    }
}
