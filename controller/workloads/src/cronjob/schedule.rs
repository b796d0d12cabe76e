//! Cron schedule times: the most recent missed start and the next start, in a time zone,
//! using bramble-api's cron parser (upstream `robfig/cron` semantics, minute resolution).

use bramble_api::validation::cron::{self, Schedule};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

/// How many missed starts upstream tolerates before it gives up on catching up.
pub const TOO_MANY_MISSED: usize = 100;
/// How far ahead [`next_after`] looks (a little over four years, for `0 0 29 2 *`).
const HORIZON_MINUTES: i64 = 4 * 366 * 24 * 60 + 1;

/// A schedule and the zone it is read in.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    schedule: Schedule,
    tz: TimeZone,
}

/// Errors of schedule parsing.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// The cron expression is invalid.
    #[error("unparseable schedule {spec:?}: {reason}")]
    Parse { spec: String, reason: String },
    /// The time zone is unknown.
    #[error("unknown time zone {0:?}")]
    TimeZone(String),
}

impl CronSchedule {
    /// Parses `spec` (a `CRON_TZ=`/`TZ=` prefix wins over `time_zone`); no zone means the
    /// controller's local zone, as upstream.
    pub fn parse(spec: &str, time_zone: Option<&str>) -> Result<CronSchedule, ScheduleError> {
        let schedule = cron::parse(spec).map_err(|reason| ScheduleError::Parse {
            spec: spec.into(),
            reason,
        })?;
        let prefix = spec
            .strip_prefix("CRON_TZ=")
            .or_else(|| spec.strip_prefix("TZ="))
            .and_then(|s| s.split_whitespace().next());
        let tz = match prefix.or(time_zone) {
            Some(name) => {
                TimeZone::get(name).map_err(|_| ScheduleError::TimeZone(name.to_string()))?
            }
            None => TimeZone::system(),
        };
        Ok(CronSchedule { schedule, tz })
    }

    /// Whether the wall-clock minute of `t` matches.
    pub fn matches(&self, t: Timestamp) -> bool {
        let z = t.to_zoned(self.tz.clone());
        self.schedule.matches(
            z.minute() as u32,
            z.hour() as u32,
            z.day() as u32,
            z.month() as u32,
            z.weekday().to_sunday_zero_offset() as u32,
        )
    }

    /// The most recent start in `(earliest, now]` and how many starts fell in that window
    /// (capped a little above [`TOO_MANY_MISSED`]).
    pub fn most_recent(&self, earliest: Timestamp, now: Timestamp) -> (Option<Timestamp>, usize) {
        let mut t = next_minute(earliest);
        let mut last = None;
        let mut count = 0;
        // Scan at most a year of minutes backwards-compatible with upstream's catch-up logic.
        let mut budget = 366 * 24 * 60;
        while t <= now && budget > 0 {
            if self.matches(t) {
                last = Some(t);
                count += 1;
            }
            t += SignedDuration::from_mins(1);
            budget -= 1;
        }
        (last, count)
    }

    /// The first start strictly after `t`.
    pub fn next_after(&self, t: Timestamp) -> Option<Timestamp> {
        let mut c = next_minute(t);
        for _ in 0..HORIZON_MINUTES {
            if self.matches(c) {
                return Some(c);
            }
            c += SignedDuration::from_mins(1);
        }
        None
    }
}

/// The first whole minute strictly after `t`.
fn next_minute(t: Timestamp) -> Timestamp {
    let s = t.as_second();
    Timestamp::from_second(s - s.rem_euclid(60) + 60).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn next_times_for_fields_and_macros() {
        let s = CronSchedule::parse("*/15 * * * *", Some("UTC")).unwrap();
        assert_eq!(
            s.next_after(at("2026-01-01T10:07:30Z")),
            Some(at("2026-01-01T10:15:00Z"))
        );
        assert_eq!(
            s.next_after(at("2026-01-01T10:15:00Z")),
            Some(at("2026-01-01T10:30:00Z"))
        );
        let h = CronSchedule::parse("@hourly", Some("UTC")).unwrap();
        assert_eq!(
            h.next_after(at("2026-01-01T10:00:00Z")),
            Some(at("2026-01-01T11:00:00Z"))
        );
        let leap = CronSchedule::parse("0 0 29 2 *", Some("UTC")).unwrap();
        assert_eq!(
            leap.next_after(at("2026-03-01T00:00:00Z")),
            Some(at("2028-02-29T00:00:00Z"))
        );
    }

    #[test]
    fn time_zones_shift_wall_clock_minutes() {
        let s = CronSchedule::parse("0 9 * * *", Some("Europe/Berlin")).unwrap();
        // 09:00 in Berlin in January is 08:00 UTC
        assert_eq!(
            s.next_after(at("2026-01-05T00:00:00Z")),
            Some(at("2026-01-05T08:00:00Z"))
        );
        let prefixed = CronSchedule::parse("CRON_TZ=America/New_York 0 9 * * *", None).unwrap();
        assert_eq!(
            prefixed.next_after(at("2026-01-05T00:00:00Z")),
            Some(at("2026-01-05T14:00:00Z"))
        );
        assert!(CronSchedule::parse("* * * * *", Some("Mars/Olympus")).is_err());
    }

    #[test]
    fn most_recent_counts_missed_starts() {
        let s = CronSchedule::parse("* * * * *", Some("UTC")).unwrap();
        let (last, n) = s.most_recent(at("2026-01-01T10:00:00Z"), at("2026-01-01T10:05:30Z"));
        assert_eq!(last, Some(at("2026-01-01T10:05:00Z")));
        assert_eq!(n, 5);
        let (none, _) = s.most_recent(at("2026-01-01T10:00:00Z"), at("2026-01-01T10:00:59Z"));
        assert_eq!(none, None);
    }
}
