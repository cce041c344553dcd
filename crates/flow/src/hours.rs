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

/// Longest search for open time: a schedule open less than this never reaches a due time.
const MAX_DAYS: i32 = 800;

/// The open intervals of one local date, as `[from, to)` minutes since midnight, merged and
/// sorted (none on a holiday).
fn open_minutes(schedule: &Schedule, date: Date) -> Vec<(u32, u32)> {
    let holiday = schedule
        .holidays
        .iter()
        .any(|h| h.parse::<Date>().ok() == Some(date));
    if holiday {
        return Vec::new();
    }
    let day = date.weekday();
    let mut spans: Vec<(u32, u32)> = schedule
        .open
        .iter()
        .filter(|s| s.days.iter().any(|d| weekday(d).ok() == Some(day)))
        .filter_map(|s| Some((minutes(&s.from)?, minutes(&s.to)?)))
        .filter(|(a, b)| a < b)
        .collect();
    spans.sort_unstable();
    let mut merged: Vec<(u32, u32)> = Vec::new();
    for (a, b) in spans {
        match merged.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    merged
}

/// The instant of a local date and minute of the day (`24:00` is the next midnight). A time
/// that does not exist (a daylight-saving gap) is taken as the first instant after the gap;
/// a repeated one as its first occurrence (jiff's "compatible" rule).
fn instant(zone: &TimeZone, date: Date, minute: u32) -> Option<Timestamp> {
    let (date, minute) = if minute >= 24 * 60 {
        (date.tomorrow().ok()?, minute - 24 * 60)
    } else {
        (date, minute)
    };
    let h = i8::try_from(minute / 60).ok()?;
    let m = i8::try_from(minute % 60).ok()?;
    let dt = date.at(h, m, 0, 0);
    zone.to_ambiguous_timestamp(dt).compatible().ok()
}

/// The instant by which `budget` of open time has passed, counting from `start` and only while
/// `schedule` is open (nights, weekends and holidays do not count): the due time of a
/// service-level clock in business hours. A zero budget is due at `start`. `None` when the
/// schedule has no open time in the next two years or so (e.g. no spans at all).
///
/// Open time is real elapsed time: the night the clocks go forward, an interval of 01:00-05:00
/// lasts three hours.
pub fn add_open_time(
    schedule: &Schedule,
    start: Timestamp,
    budget: std::time::Duration,
) -> Result<Option<Timestamp>, ScheduleError> {
    schedule.check()?;
    let zone = schedule.zone()?;
    let mut left = jiff::SignedDuration::try_from(budget)
        .map_err(|_| ScheduleError::Time("budget too long".into()))?;
    if left.is_zero() {
        return Ok(Some(start));
    }
    let mut date = start.to_zoned_datetime(zone.clone()).date();
    // The day before too: a span to 24:00 yesterday may hold `start` only across a gap.
    date = date.yesterday().unwrap_or(date);
    for _ in 0..MAX_DAYS {
        for (from, to) in open_minutes(schedule, date) {
            let (Some(a), Some(b)) = (instant(&zone, date, from), instant(&zone, date, to)) else {
                continue;
            };
            if b <= start {
                continue;
            }
            let a = a.max(start);
            let span = b.duration_since(a);
            if span >= left {
                return Ok(a.checked_add(left).ok());
            }
            left -= span;
        }
        date = match date.tomorrow() {
            Ok(d) => d,
            Err(_) => return Ok(None),
        };
    }
    Ok(None)
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

    fn due(s: &Schedule, start: &str, hours: f64) -> String {
        let d = std::time::Duration::from_secs_f64(hours * 3600.0);
        add_open_time(s, at(start), d)
            .expect("valid")
            .expect("reached")
            .to_string()
    }

    #[test]
    fn due_times_count_only_business_hours_over_nights_and_weekends() {
        let s = sched("UTC", &[]);
        // Within one day.
        assert_eq!(due(&s, "2026-01-14T10:00:00Z", 4.0), "2026-01-14T14:00:00Z");
        // Exactly to closing time.
        assert_eq!(due(&s, "2026-01-14T13:00:00Z", 4.0), "2026-01-14T17:00:00Z");
        // Over the night: 2 h on Wednesday, 2 h on Thursday.
        assert_eq!(due(&s, "2026-01-14T15:00:00Z", 4.0), "2026-01-15T11:00:00Z");
        // Written at night: the clock starts at opening.
        assert_eq!(due(&s, "2026-01-14T22:00:00Z", 4.0), "2026-01-15T13:00:00Z");
        assert_eq!(due(&s, "2026-01-15T03:00:00Z", 4.0), "2026-01-15T13:00:00Z");
        // Friday afternoon: over the weekend to Monday.
        assert_eq!(due(&s, "2026-01-16T15:00:00Z", 4.0), "2026-01-19T11:00:00Z");
        // Saturday: Monday.
        assert_eq!(due(&s, "2026-01-17T12:00:00Z", 4.0), "2026-01-19T13:00:00Z");
        // Longer than a day: 24 business hours are three working days.
        assert_eq!(
            due(&s, "2026-01-14T09:00:00Z", 24.0),
            "2026-01-16T17:00:00Z"
        );
        // Zero budget: due at once.
        assert_eq!(due(&s, "2026-01-17T12:00:00Z", 0.0), "2026-01-17T12:00:00Z");
    }

    #[test]
    fn due_times_skip_holidays_and_use_the_zone_of_the_schedule() {
        // Thursday 2026-01-15 is a holiday: from Wednesday 15:00 on to Friday.
        let s = sched("UTC", &["2026-01-15"]);
        assert_eq!(due(&s, "2026-01-14T15:00:00Z", 4.0), "2026-01-16T11:00:00Z");
        // Tehran (UTC+03:30), Saturday to Wednesday: Wednesday 16:00 local (12:30 UTC) plus
        // 4 h is Saturday 12:00 local (08:30 UTC), past Thursday and Friday.
        let mut t = sched("Asia/Tehran", &[]);
        t.open[0].days = ["sat", "sun", "mon", "tue", "wed"]
            .map(String::from)
            .to_vec();
        assert_eq!(due(&t, "2026-01-14T12:30:00Z", 4.0), "2026-01-17T08:30:00Z");
        // New York (UTC-5 in winter): Friday 16:00 local is 21:00 UTC; 4 h on is Monday
        // 12:00 local, 17:00 UTC.
        let ny = sched("America/New_York", &[]);
        assert_eq!(
            due(&ny, "2026-01-16T21:00:00Z", 4.0),
            "2026-01-19T17:00:00Z"
        );
    }

    #[test]
    fn due_times_follow_local_hours_across_daylight_saving() {
        // London: Friday 2026-03-27 16:00 GMT (16:00 UTC) + 2 h: 1 h on Friday, 1 h on
        // Monday 2026-03-30 from 09:00 BST (08:00 UTC).
        let s = sched("Europe/London", &[]);
        assert_eq!(due(&s, "2026-03-27T16:00:00Z", 2.0), "2026-03-30T09:00:00Z");
        // A night span over the spring change counts real time: 00:00-04:00 local on
        // Sunday 2026-03-29 is 3 hours (01:00 jumps to 02:00).
        let mut n = sched("Europe/London", &[]);
        n.open = vec![Span {
            days: vec!["sun".into()],
            from: "00:00".into(),
            to: "04:00".into(),
        }];
        assert_eq!(due(&n, "2026-03-29T00:00:00Z", 3.0), "2026-03-29T03:00:00Z");
        // The fourth hour is the next Sunday's first.
        assert_eq!(due(&n, "2026-03-29T00:00:00Z", 4.0), "2026-04-05T00:00:00Z");
    }

    #[test]
    fn a_schedule_that_never_opens_has_no_due_time_and_bad_ones_are_errors() {
        let mut s = sched("UTC", &[]);
        s.open.clear();
        let d = std::time::Duration::from_secs(3600);
        assert_eq!(add_open_time(&s, at("2026-01-14T10:00:00Z"), d), Ok(None));
        s.time_zone = "Nowhere/Atlantis".into();
        assert!(add_open_time(&s, at("2026-01-14T10:00:00Z"), d).is_err());
        // 24/7 is plain elapsed time.
        let mut all = sched("UTC", &[]);
        all.open[0].days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
            .map(String::from)
            .to_vec();
        all.open[0].from = "00:00".into();
        all.open[0].to = "24:00".into();
        assert_eq!(
            due(&all, "2026-01-16T20:00:00Z", 10.0),
            "2026-01-17T06:00:00Z"
        );
    }
}
