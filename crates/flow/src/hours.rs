//! Business hours: a weekly schedule in a named IANA time zone plus holiday dates.
//!
//! Times are wall-clock times of the zone, so a schedule of 09:00–17:00 stays 09:00–17:00 local
//! across daylight-saving changes. The zone database is bundled into the binary (jiff's
//! `tzdb-bundle-always`), so no `/usr/share/zoneinfo` is needed.

use jiff::Timestamp;
use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

/// A weekly schedule with holidays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// IANA time zone, e.g. `Europe/London`.
    pub time_zone: String,
    /// Opening spans; open when any span covers the local time.
    #[serde(default)]
    pub open: Vec<Span>,
    /// Local dates (`YYYY-MM-DD`) closed all day.
    #[serde(default)]
    pub holidays: Vec<String>,
}

/// Open from `from` to `to` (local `HH:MM`, `to` may be `24:00`) on each of `days`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Span {
    /// `mon`, `tue`, `wed`, `thu`, `fri`, `sat`, `sun`.
    pub days: Vec<String>,
    /// Opening time, inclusive.
    pub from: String,
    /// Closing time, exclusive.
    pub to: String,
}

/// What is wrong with a schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduleError {
    /// Not a known IANA zone.
    TimeZone(String),
    /// Not a day name.
    Day(String),
    /// Not an `HH:MM` time (or `to` not after `from`).
    Time(String),
    /// Not a `YYYY-MM-DD` date.
    Date(String),
}

impl std::fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScheduleError::TimeZone(z) => write!(f, "unknown time zone {z:?}"),
            ScheduleError::Day(d) => write!(f, "unknown day {d:?} (use mon..sun)"),
            ScheduleError::Time(t) => {
                write!(f, "bad time span {t:?} (use HH:MM, from before to)")
            }
            ScheduleError::Date(d) => write!(f, "bad holiday date {d:?} (use YYYY-MM-DD)"),
        }
    }
}

fn weekday(name: &str) -> Result<Weekday, ScheduleError> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "mon" | "monday" => Weekday::Monday,
        "tue" | "tuesday" => Weekday::Tuesday,
        "wed" | "wednesday" => Weekday::Wednesday,
        "thu" | "thursday" => Weekday::Thursday,
        "fri" | "friday" => Weekday::Friday,
        "sat" | "saturday" => Weekday::Saturday,
        "sun" | "sunday" => Weekday::Sunday,
        _ => return Err(ScheduleError::Day(name.to_owned())),
    })
}

/// Minutes since local midnight of `HH:MM` (`24:00` allowed).
fn minutes(t: &str) -> Option<u32> {
    let (h, m) = t.split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    let total = h * 60 + m;
    (m < 60 && total <= 24 * 60).then_some(total)
}

impl Schedule {
    /// Checks the schedule; the same checks [`is_open`] relies on.
    pub fn check(&self) -> Result<(), ScheduleError> {
        self.zone()?;
        for s in &self.open {
            for d in &s.days {
                weekday(d)?;
            }
            match (minutes(&s.from), minutes(&s.to)) {
                (Some(a), Some(b)) if a < b => {}
                _ => return Err(ScheduleError::Time(format!("{}-{}", s.from, s.to))),
            }
        }
        for h in &self.holidays {
            h.parse::<Date>()
                .map_err(|_| ScheduleError::Date(h.clone()))?;
        }
        Ok(())
    }

    fn zone(&self) -> Result<TimeZone, ScheduleError> {
        TimeZone::get(&self.time_zone).map_err(|_| ScheduleError::TimeZone(self.time_zone.clone()))
    }
}

/// Whether `schedule` is open at `at`.
pub fn is_open(schedule: &Schedule, at: Timestamp) -> Result<bool, ScheduleError> {
    schedule.check()?;
    let local = at.to_zoned_datetime(schedule.zone()?);
    let date = local.date();
    for h in &schedule.holidays {
        if h.parse::<Date>().ok() == Some(date) {
            return Ok(false);
        }
    }
    let day = local.weekday();
    let minute = local.hour() as u32 * 60 + local.minute() as u32;
    for s in &schedule.open {
        let on_day = s.days.iter().any(|d| weekday(d).ok() == Some(day));
        let (from, to) = (minutes(&s.from), minutes(&s.to));
        if on_day
            && let (Some(from), Some(to)) = (from, to)
            && from <= minute
            && minute < to
        {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched(tz: &str, holidays: &[&str]) -> Schedule {
        Schedule {
            time_zone: tz.into(),
            open: vec![Span {
                days: ["mon", "tue", "wed", "thu", "fri"]
                    .map(String::from)
                    .to_vec(),
                from: "09:00".into(),
                to: "17:00".into(),
            }],
            holidays: holidays.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn at(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    #[test]
    fn london_hours_follow_local_time_across_dst() {
        let s = sched("Europe/London", &[]);
        // Winter (GMT = UTC): 09:30 UTC is 09:30 local.
        assert!(is_open(&s, at("2026-01-14T09:30:00Z")).expect("ok"));
        assert!(!is_open(&s, at("2026-01-14T08:30:00Z")).expect("ok"));
        // BST begins Sunday 2026-03-29. Monday 08:30 UTC is 09:30 local: open.
        assert!(is_open(&s, at("2026-03-30T08:30:00Z")).expect("ok"));
        // Monday 16:30 UTC is 17:30 BST: closed, though it was open in winter.
        assert!(!is_open(&s, at("2026-03-30T16:30:00Z")).expect("ok"));
        assert!(is_open(&s, at("2026-01-12T16:30:00Z")).expect("ok"));
        // Weekend closed.
        assert!(!is_open(&s, at("2026-03-28T12:00:00Z")).expect("ok"));
    }

    #[test]
    fn new_york_hours_across_the_autumn_change() {
        let s = sched("America/New_York", &[]);
        // EDT (UTC-4) on Friday 2026-10-30: 13:00 UTC is 09:00 local.
        assert!(is_open(&s, at("2026-10-30T13:00:00Z")).expect("ok"));
        // EST (UTC-5) from Sunday 2026-11-01: Monday 13:30 UTC is 08:30 local, closed...
        assert!(!is_open(&s, at("2026-11-02T13:30:00Z")).expect("ok"));
        // ...and 21:30 UTC is 16:30 local, open.
        assert!(is_open(&s, at("2026-11-02T21:30:00Z")).expect("ok"));
    }

    #[test]
    fn tehran_has_a_fixed_offset_and_holidays_close_all_day() {
        let mut s = sched("Asia/Tehran", &["2026-06-03"]);
        s.open[0].days = vec![
            "sat".into(),
            "sun".into(),
            "mon".into(),
            "tue".into(),
            "wed".into(),
        ];
        // UTC+03:30 all year: 06:00 UTC is 09:30 local, winter and summer alike.
        assert!(is_open(&s, at("2026-01-14T06:00:00Z")).expect("ok"));
        assert!(is_open(&s, at("2026-07-15T06:00:00Z")).expect("ok"));
        // Wednesday 2026-06-03 is a holiday in local time (even at 00:30 local = 21:00 UTC
        // of the day before).
        assert!(!is_open(&s, at("2026-06-03T06:00:00Z")).expect("ok"));
        s.open[0].from = "00:00".into();
        s.open[0].to = "24:00".into();
        assert!(!is_open(&s, at("2026-06-02T21:00:00Z")).expect("ok"));
        assert!(is_open(&s, at("2026-06-02T20:00:00Z")).expect("ok"));
    }

    #[test]
    fn bad_schedules_are_refused() {
        let mut s = sched("Mars/Olympus", &[]);
        assert!(matches!(s.check(), Err(ScheduleError::TimeZone(_))));
        s.time_zone = "UTC".into();
        s.open[0].to = "08:00".into();
        assert!(matches!(s.check(), Err(ScheduleError::Time(_))));
        s.open[0].to = "24:00".into();
        assert!(s.check().is_ok());
        s.open[0].days.push("someday".into());
        assert!(matches!(s.check(), Err(ScheduleError::Day(_))));
        s.open[0].days.pop();
        s.holidays.push("2026-02-30".into());
        assert!(matches!(s.check(), Err(ScheduleError::Date(_))));
    }
}
