//! Monotonic time as a plain value. Engines never read a clock: the runtime (or a test, or the
//! simulator) passes `now` in as a [`MonoTime`], an offset from an origin the caller chose.

use std::ops::{Add, AddAssign, Sub};
use std::time::Duration;

/// A point on a monotonic time line: the time elapsed since the caller's origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MonoTime(Duration);

impl MonoTime {
    /// The origin.
    pub const ZERO: MonoTime = MonoTime(Duration::ZERO);

    /// The point `d` after the origin.
    pub const fn from_duration(d: Duration) -> Self {
        MonoTime(d)
    }

    /// The point `s` seconds after the origin.
    pub const fn from_secs(s: u64) -> Self {
        MonoTime(Duration::from_secs(s))
    }

    /// The point `ms` milliseconds after the origin.
    pub const fn from_millis(ms: u64) -> Self {
        MonoTime(Duration::from_millis(ms))
    }

    /// Time since the origin.
    pub const fn since_origin(self) -> Duration {
        self.0
    }

    /// Time from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_since(self, earlier: MonoTime) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

impl Add<Duration> for MonoTime {
    type Output = MonoTime;
    fn add(self, rhs: Duration) -> MonoTime {
        MonoTime(self.0 + rhs)
    }
}

impl AddAssign<Duration> for MonoTime {
    fn add_assign(&mut self, rhs: Duration) {
        self.0 += rhs;
    }
}

impl Sub<MonoTime> for MonoTime {
    type Output = Duration;
    /// Saturating: a later `rhs` gives zero.
    fn sub(self, rhs: MonoTime) -> Duration {
        self.saturating_since(rhs)
    }
}
