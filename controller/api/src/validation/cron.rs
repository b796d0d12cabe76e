//! Cron schedule parsing as upstream's CronJob validation does it (`robfig/cron/v3`
//! `ParseStandard`): five fields or a descriptor, with the parser's own error texts.
//! The parsed form is returned so a CronJob controller can use it too.

/// One parsed field: the set of allowed values as a bitmask (bit n = value n).
pub type FieldBits = u64;

/// A parsed five-field schedule, or an `@every` interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    Fields {
        minute: FieldBits,
        hour: FieldBits,
        dom: FieldBits,
        month: FieldBits,
        dow: FieldBits,
        /// Day-of-month or day-of-week was `*`/`?` (cron's "star bit" rules).
        dom_star: bool,
        dow_star: bool,
    },
    Every {
        seconds: u64,
    },
}

impl Schedule {
    /// Whether a wall-clock minute matches (`dow` 0 = Sunday), with cron's day rule: when
    /// day-of-month or day-of-week is `*`, both must match; otherwise either may.
    /// `Every` schedules match every minute at a multiple of their interval from midnight.
    pub fn matches(&self, minute: u32, hour: u32, dom: u32, month: u32, dow: u32) -> bool {
        match self {
            Schedule::Fields {
                minute: mi,
                hour: h,
                dom: d,
                month: mo,
                dow: w,
                dom_star,
                dow_star,
            } => {
                let bit = |bits: &FieldBits, v: u32| v < 64 && bits & (1 << v) != 0;
                let (dm, wm) = (bit(d, dom), bit(w, dow));
                let day = if *dom_star || *dow_star {
                    dm && wm
                } else {
                    dm || wm
                };
                bit(mi, minute) && bit(h, hour) && bit(mo, month) && day
            }
            Schedule::Every { seconds } => {
                let since_midnight = u64::from(hour * 3600 + minute * 60);
                since_midnight % (*seconds).max(60) == 0
            }
        }
    }
}

struct Bounds {
    min: u32,
    max: u32,
    names: &'static [(&'static str, u32)],
}

const MINUTES: Bounds = Bounds {
    min: 0,
    max: 59,
    names: &[],
};
const HOURS: Bounds = Bounds {
    min: 0,
    max: 23,
    names: &[],
};
const DOM: Bounds = Bounds {
    min: 1,
    max: 31,
    names: &[],
};
const MONTHS: Bounds = Bounds {
    min: 1,
    max: 12,
    names: &[
        ("jan", 1),
        ("feb", 2),
        ("mar", 3),
        ("apr", 4),
        ("may", 5),
        ("jun", 6),
        ("jul", 7),
        ("aug", 8),
        ("sep", 9),
        ("oct", 10),
        ("nov", 11),
        ("dec", 12),
    ],
};
const DOW: Bounds = Bounds {
    min: 0,
    max: 6,
    names: &[
        ("sun", 0),
        ("mon", 1),
        ("tue", 2),
        ("wed", 3),
        ("thu", 4),
        ("fri", 5),
        ("sat", 6),
    ],
};

/// Parses a schedule; `Err` carries the text upstream puts after `Invalid value: "...":`.
pub fn parse(spec: &str) -> Result<Schedule, String> {
    if spec.is_empty() {
        return Err("empty spec string".into());
    }
    let mut spec = spec;
    if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
        let i = spec.find(' ').unwrap_or(spec.len());
        spec = spec[i..].trim();
    }
    if spec.starts_with('@') {
        return descriptor(spec);
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        ));
    }
    let (minute, _) = field(fields[0], &MINUTES)?;
    let (hour, _) = field(fields[1], &HOURS)?;
    let (dom, dom_star) = field(fields[2], &DOM)?;
    let (month, _) = field(fields[3], &MONTHS)?;
    let (dow, dow_star) = field(fields[4], &DOW)?;
    Ok(Schedule::Fields {
        minute,
        hour,
        dom,
        month,
        dow,
        dom_star,
        dow_star,
    })
}

fn all(b: &Bounds) -> FieldBits {
    (b.min..=b.max).fold(0, |acc, v| acc | (1 << v))
}

fn descriptor(d: &str) -> Result<Schedule, String> {
    let fields = |minute: FieldBits,
                  hour: FieldBits,
                  dom: FieldBits,
                  month: FieldBits,
                  dow: FieldBits,
                  dom_star,
                  dow_star| {
        Ok(Schedule::Fields {
            minute,
            hour,
            dom,
            month,
            dow,
            dom_star,
            dow_star,
        })
    };
    match d {
        "@yearly" | "@annually" => fields(1, 1, 1 << 1, 1 << 1, all(&DOW), false, true),
        "@monthly" => fields(1, 1, 1 << 1, all(&MONTHS), all(&DOW), false, true),
        "@weekly" => fields(1, 1, all(&DOM), all(&MONTHS), 1, true, false),
        "@daily" | "@midnight" => fields(1, 1, all(&DOM), all(&MONTHS), all(&DOW), true, true),
        "@hourly" => fields(
            1,
            all(&HOURS),
            all(&DOM),
            all(&MONTHS),
            all(&DOW),
            true,
            true,
        ),
        d if d.starts_with("@every ") => {
            let dur = &d["@every ".len()..];
            match parse_duration(dur) {
                Some(s) => Ok(Schedule::Every { seconds: s.max(1) }),
                None => Err(format!(
                    "failed to parse duration {d}: time: invalid duration \"{dur}\""
                )),
            }
        }
        _ => Err(format!("unrecognized descriptor: {d}")),
    }
}

/// Go `time.ParseDuration` for the units a schedule uses (h, m, s, ms), rounded to seconds.
fn parse_duration(s: &str) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let mut total_ms: u64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let ms = match unit {
            "h" => 3_600_000.0,
            "m" => 60_000.0,
            "s" => 1000.0,
            "ms" => 1.0,
            _ => return None,
        };
        total_ms += (n * ms) as u64;
    }
    Some(total_ms / 1000)
}

fn field(expr: &str, b: &Bounds) -> Result<(FieldBits, bool), String> {
    let mut bits = 0;
    let mut star = false;
    for part in expr.split(',') {
        let (r, s) = range(part, b)?;
        bits |= r;
        star |= s;
    }
    Ok((bits, star))
}

fn range(expr: &str, b: &Bounds) -> Result<(FieldBits, bool), String> {
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_high: Vec<&str> = range_and_step[0].split('-').collect();
    let single = low_high.len() == 1;
    let (start, mut end, mut star);
    if low_high[0] == "*" || low_high[0] == "?" {
        start = b.min;
        end = b.max;
        star = true;
    } else {
        start = int_or_name(low_high[0], b)?;
        end = match low_high.len() {
            1 => start,
            2 => int_or_name(low_high[1], b)?,
            _ => return Err(format!("too many hyphens: {expr}")),
        };
        star = false;
    }
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let step = must_int(range_and_step[1])?;
            if single {
                end = b.max;
            }
            if step > 1 {
                star = false;
            }
            step
        }
        _ => return Err(format!("too many slashes: {expr}")),
    };
    if start < b.min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({}): {expr}",
            b.min
        ));
    }
    if end > b.max {
        return Err(format!(
            "end of range ({end}) above maximum ({}): {expr}",
            b.max
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    if step == 0 {
        return Err(format!("step of range should be a positive number: {expr}"));
    }
    let mut bits = 0;
    let mut v = start;
    while v <= end {
        bits |= 1 << v;
        v += step;
    }
    Ok((bits, star))
}

fn int_or_name(expr: &str, b: &Bounds) -> Result<u32, String> {
    let lower = expr.to_lowercase();
    if let Some((_, v)) = b.names.iter().find(|(n, _)| *n == lower) {
        return Ok(*v);
    }
    must_int(expr)
}

fn must_int(expr: &str) -> Result<u32, String> {
    let n: i64 = expr.parse().map_err(|e: std::num::ParseIntError| {
        let why = match e.kind() {
            std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                "value out of range"
            }
            _ => "invalid syntax",
        };
        format!("failed to parse int from {expr}: strconv.Atoi: parsing \"{expr}\": {why}")
    })?;
    if n < 0 {
        return Err(format!("negative number ({n}) not allowed: {expr}"));
    }
    Ok(n.min(u32::MAX as i64) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_standard_schedules_and_descriptors() {
        for s in [
            "*/5 * * * *",
            "0 0 * * 0",
            "0 9-17 * jan-jun mon-fri",
            "@hourly",
            "@daily",
            "@every 1h30m",
            "TZ=UTC 0 * * * *",
        ] {
            assert!(parse(s).is_ok(), "{s}");
        }
        match parse("*/15 * * * *").unwrap() {
            Schedule::Fields { minute, .. } => assert_eq!(minute, 1 | 1 << 15 | 1 << 30 | 1 << 45),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn matching_follows_cron_day_rules() {
        let s = parse("30 9 1 * mon").unwrap();
        assert!(s.matches(30, 9, 1, 5, 3));
        assert!(s.matches(30, 9, 7, 5, 1));
        assert!(!s.matches(30, 9, 7, 5, 2));
        let s = parse("0 0 * * sun").unwrap();
        assert!(s.matches(0, 0, 12, 1, 0));
        assert!(!s.matches(0, 0, 12, 1, 1));
        assert!(parse("@hourly").unwrap().matches(0, 13, 4, 4, 4));
        assert!(!parse("@hourly").unwrap().matches(1, 13, 4, 4, 4));
    }

    #[test]
    fn errors_match_robfig_cron() {
        assert_eq!(
            parse("foo").unwrap_err(),
            "expected exactly 5 fields, found 1: [foo]"
        );
        assert_eq!(
            parse("61 * * * *").unwrap_err(),
            "end of range (61) above maximum (59): 61"
        );
        assert_eq!(
            parse("x * * * *").unwrap_err(),
            "failed to parse int from x: strconv.Atoi: parsing \"x\": invalid syntax"
        );
        assert_eq!(
            parse("@sometimes").unwrap_err(),
            "unrecognized descriptor: @sometimes"
        );
        assert_eq!(
            parse("* * 0 * *").unwrap_err(),
            "beginning of range (0) below minimum (1): 0"
        );
        assert_eq!(
            parse("5-1 * * * *").unwrap_err(),
            "beginning of range (5) beyond end of range (1): 5-1"
        );
        assert_eq!(parse("").unwrap_err(), "empty spec string");
    }
}
