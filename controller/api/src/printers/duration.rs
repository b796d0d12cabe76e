//! Durations as upstream's `k8s.io/apimachinery/pkg/util/duration` prints them, and the
//! printers' `translateTimestampSince` (`<unknown>` for a zero time).

use chrono::{DateTime, TimeDelta, Utc};

const NANOS_PER_SECOND: i64 = 1_000_000_000;
const NANOS_PER_MINUTE: i64 = 60 * NANOS_PER_SECOND;
const NANOS_PER_HOUR: i64 = 60 * NANOS_PER_MINUTE;

/// Nanoseconds of a delta, saturating like Go's `time.Sub`.
fn nanos(d: TimeDelta) -> i64 {
    d.num_nanoseconds().unwrap_or(if d < TimeDelta::zero() {
        i64::MIN
    } else {
        i64::MAX
    })
}

/// Upstream `duration.HumanDuration`: ~2-3 significant figures (`70s`, `3m10s`, `70m`,
/// `2d1h`, `367d`, `2y1d`); `<invalid>` two seconds or more in the future, `0s` for less.
pub fn human_duration(d: TimeDelta) -> String {
    let d = nanos(d);
    // Go's int(d.Seconds()) truncates toward zero.
    let seconds = d / NANOS_PER_SECOND;
    if seconds < -1 {
        return "<invalid>".into();
    } else if seconds < 0 {
        return "0s".into();
    } else if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = d / NANOS_PER_MINUTE;
    if minutes < 10 {
        let s = (d / NANOS_PER_SECOND) % 60;
        if s == 0 {
            return format!("{minutes}m");
        }
        return format!("{minutes}m{s}s");
    } else if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = d / NANOS_PER_HOUR;
    if hours < 8 {
        let m = (d / NANOS_PER_MINUTE) % 60;
        if m == 0 {
            return format!("{hours}h");
        }
        return format!("{hours}h{m}m");
    } else if hours < 48 {
        return format!("{hours}h");
    } else if hours < 24 * 8 {
        let h = hours % 24;
        if h == 0 {
            return format!("{}d", hours / 24);
        }
        return format!("{}d{h}h", hours / 24);
    } else if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    } else if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        if dy == 0 {
            return format!("{}y", hours / 24 / 365);
        }
        return format!("{}y{dy}d", hours / 24 / 365);
    }
    format!("{}y", hours / 24 / 365)
}

/// Upstream `duration.ShortHumanDuration`: one unit (`59s`, `1m`, `23h`, `364d`, `2y`).
pub fn short_human_duration(d: TimeDelta) -> String {
    let d = nanos(d);
    let seconds = d / NANOS_PER_SECOND;
    if seconds < -1 {
        return "<invalid>".into();
    } else if seconds < 0 {
        return "0s".into();
    } else if seconds < 60 {
        return format!("{seconds}s");
    }
    let minutes = d / NANOS_PER_MINUTE;
    if minutes < 60 {
        return format!("{minutes}m");
    }
    let hours = d / NANOS_PER_HOUR;
    if hours < 24 {
        format!("{hours}h")
    } else if hours < 24 * 365 {
        format!("{}d", hours / 24)
    } else {
        format!("{}y", hours / 24 / 365)
    }
}

/// The printers' `translateTimestampSince`: `<unknown>` for a missing (zero) time, else
/// the human duration from `t` to `now`.
pub(crate) fn since(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    match t {
        Some(t) => human_duration(now - t),
        None => "<unknown>".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: i64) -> TimeDelta {
        TimeDelta::milliseconds(v)
    }
    fn s(v: i64) -> TimeDelta {
        TimeDelta::seconds(v)
    }
    fn m(v: i64) -> TimeDelta {
        TimeDelta::minutes(v)
    }
    fn h(v: i64) -> TimeDelta {
        TimeDelta::hours(v)
    }

    // Cases of upstream's duration_test.go TestHumanDuration and TestHumanDurationBoundaries.
    #[test]
    fn human_duration_matches_upstream_cases() {
        let year = h(365 * 24);
        let cases: Vec<(TimeDelta, &str)> = vec![
            (s(1), "1s"),
            (s(70), "70s"),
            (s(190), "3m10s"),
            (m(70), "70m"),
            (h(47), "47h"),
            (h(49), "2d1h"),
            (h(8 * 24 + 2), "8d"),
            (h(367 * 24), "367d"),
            (h(365 * 2 * 24 + 25), "2y1d"),
            (h(365 * 8 * 24 + 2), "8y"),
            (s(-2), "<invalid>"),
            (s(-2) + TimeDelta::nanoseconds(1), "0s"),
            (s(0), "0s"),
            (s(1) - ms(1), "0s"),
            (m(2) - ms(1), "119s"),
            (m(2), "2m"),
            (m(2) + s(1), "2m1s"),
            (m(10) - ms(1), "9m59s"),
            (m(10), "10m"),
            (m(10) + s(1), "10m"),
            (h(3) - ms(1), "179m"),
            (h(3), "3h"),
            (h(3) + m(1), "3h1m"),
            (h(8) - ms(1), "7h59m"),
            (h(8), "8h"),
            (h(8) + m(59), "8h"),
            (h(48) - ms(1), "47h"),
            (h(48), "2d"),
            (h(49), "2d1h"),
            (h(8 * 24) - ms(1), "7d23h"),
            (h(8 * 24), "8d"),
            (h(8 * 24 + 23), "8d"),
            (year * 2 - ms(1), "729d"),
            (year * 2, "2y"),
            (year * 2 + h(23) + m(59), "2y"),
            (year * 2 + h(24) - ms(1), "2y"),
            (year * 2 + h(24), "2y1d"),
            (year * 3, "3y"),
            (year * 7, "7y"),
            (year * 8 - ms(1), "7y364d"),
            (year * 8, "8y"),
            (year * 8 + h(364 * 24), "8y"),
            (year * 9, "9y"),
        ];
        for (d, want) in cases {
            assert_eq!(human_duration(d), want, "{d:?}");
        }
    }

    // Upstream's TestShortHumanDurationBoundaries.
    #[test]
    fn short_human_duration_matches_upstream_cases() {
        let year = h(365 * 24);
        let cases: Vec<(TimeDelta, &str)> = vec![
            (s(-2), "<invalid>"),
            (s(-2) + TimeDelta::nanoseconds(1), "0s"),
            (s(0), "0s"),
            (s(1) - ms(1), "0s"),
            (s(1), "1s"),
            (s(2) - ms(1), "1s"),
            (m(1) - ms(1), "59s"),
            (m(1), "1m"),
            (m(2) - ms(1), "1m"),
            (h(1) - ms(1), "59m"),
            (h(1), "1h"),
            (h(2) - ms(1), "1h"),
            (h(24) - ms(1), "23h"),
            (h(24), "1d"),
            (h(48) - ms(1), "1d"),
            (year - ms(1), "364d"),
            (year, "1y"),
            (year * 2 - ms(1), "1y"),
            (year * 2, "2y"),
        ];
        for (d, want) in cases {
            assert_eq!(short_human_duration(d), want, "{d:?}");
        }
    }

    // Upstream's TestTranslateTimestampSince.
    #[test]
    fn since_matches_translate_timestamp_since() {
        let now = DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(since(Some(now + ms(2100)), now), "<invalid>");
        assert_eq!(since(Some(now + ms(1900)), now), "0s");
        assert_eq!(since(Some(now), now), "0s");
        assert_eq!(since(None, now), "<unknown>");
        assert_eq!(since(Some(now - s(30)), now), "30s");
        assert_eq!(since(Some(now - m(5)), now), "5m");
        assert_eq!(since(Some(now - m(100)), now), "100m");
        assert_eq!(since(Some(now - h(48)), now), "2d");
        assert_eq!(since(Some(now - h(90 * 24)), now), "90d");
        assert_eq!(since(Some(now - h(10 * 365 * 24)), now), "10y");
    }
}
