//! The one clock of the process (DESIGN rule 2). Everything else receives `now` from here:
//! engines get [`MonoTime`], stored rows get UTC milliseconds. New ids are made here too, since
//! UUIDv7 reads the wall clock.
#![allow(clippy::disallowed_methods)] // the single place allowed to read the clocks

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use switchboard_model::MonoTime;
use uuid::Uuid;

/// Monotonic time starts this far after the engines' origin, so that a time restored from the
/// store (an interaction that began waiting before this process started) is still a valid,
/// ordered `MonoTime`.
const HEADROOM: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// The process clock.
#[derive(Debug, Clone)]
pub struct Clock {
    origin: Instant,
    tokio_origin: tokio::time::Instant,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        Clock {
            origin: Instant::now(),
            tokio_origin: tokio::time::Instant::now(),
        }
    }

    /// Monotonic now, for engines.
    pub fn mono(&self) -> MonoTime {
        MonoTime::from_duration(HEADROOM + self.origin.elapsed())
    }

    /// Wall-clock now in UTC milliseconds since the Unix epoch, for stored rows.
    pub fn wall_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }

    /// The monotonic time that corresponds to a stored wall-clock time.
    pub fn mono_at_wall(&self, wall_ms: i64) -> MonoTime {
        let age = Duration::from_millis(self.wall_ms().saturating_sub(wall_ms).max(0) as u64);
        MonoTime::from_duration(self.mono().since_origin().saturating_sub(age))
    }

    /// The tokio instant of a monotonic time (for sleeping until an engine's deadline).
    pub fn tokio_instant(&self, at: MonoTime) -> tokio::time::Instant {
        self.tokio_origin + at.since_origin().saturating_sub(HEADROOM)
    }

    /// A fresh, time-ordered id.
    pub fn new_uuid(&self) -> Uuid {
        Uuid::now_v7()
    }
}

/// RFC 3339 rendering of stored milliseconds.
pub fn rfc3339(ms: i64) -> String {
    // Fixed millisecond precision, so that the strings sort like the times they name.
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_times_map_to_ordered_mono_times() {
        let c = Clock::new();
        let now = c.wall_ms();
        let a = c.mono_at_wall(now - 60_000);
        let b = c.mono_at_wall(now - 1_000);
        assert!(a < b);
        assert!(b <= c.mono());
        let gap = b - a;
        assert!(gap >= Duration::from_millis(58_000) && gap <= Duration::from_millis(60_000));
    }

    #[test]
    fn renders_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_764_000_000_870), "2025-11-24T16:00:00.870Z");
    }
}
