//! Eviction signals and thresholds (upstream `pkg/kubelet/eviction/api` and the parsing in
//! `helpers.go`): `memory.available<100Mi`, `nodefs.available<10%`, their grace periods,
//! and which of them an observation meets.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use bramble_api::quantity::Quantity;

/// An eviction signal (upstream's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Signal {
    /// `memory.available`: node memory capacity minus the root cgroup's working set.
    MemoryAvailable,
    /// `allocatableMemory.available`: allocatable memory minus the `kubepods` working set
    /// (upstream derives its threshold from the hard `memory.available` one).
    AllocatableMemoryAvailable,
    /// `nodefs.available`: free space of the kubelet's filesystem.
    NodeFsAvailable,
    /// `nodefs.inodesFree`.
    NodeFsInodesFree,
    /// `imagefs.available`: free space of the image store's filesystem.
    ImageFsAvailable,
    /// `imagefs.inodesFree`.
    ImageFsInodesFree,
    /// `pid.available`: `kernel.pid_max` minus the processes running.
    PidAvailable,
}

impl Signal {
    /// Every signal a configuration may name.
    pub const CONFIGURABLE: [Signal; 6] = [
        Signal::MemoryAvailable,
        Signal::NodeFsAvailable,
        Signal::NodeFsInodesFree,
        Signal::ImageFsAvailable,
        Signal::ImageFsInodesFree,
        Signal::PidAvailable,
    ];

    /// Upstream's name.
    pub fn name(self) -> &'static str {
        match self {
            Signal::MemoryAvailable => "memory.available",
            Signal::AllocatableMemoryAvailable => "allocatableMemory.available",
            Signal::NodeFsAvailable => "nodefs.available",
            Signal::NodeFsInodesFree => "nodefs.inodesFree",
            Signal::ImageFsAvailable => "imagefs.available",
            Signal::ImageFsInodesFree => "imagefs.inodesFree",
            Signal::PidAvailable => "pid.available",
        }
    }

    /// The signal a configuration key names.
    pub fn parse(s: &str) -> Option<Signal> {
        Signal::CONFIGURABLE.into_iter().find(|x| x.name() == s)
    }

    /// The resource the signal starves (`memory`, `ephemeral-storage`, `inodes`, `pids`),
    /// as eviction messages name it.
    pub fn resource(self) -> &'static str {
        match self {
            Signal::MemoryAvailable | Signal::AllocatableMemoryAvailable => "memory",
            Signal::NodeFsAvailable | Signal::ImageFsAvailable => "ephemeral-storage",
            Signal::NodeFsInodesFree | Signal::ImageFsInodesFree => "inodes",
            Signal::PidAvailable => "pids",
        }
    }

    /// The node condition the signal drives.
    pub fn condition(self) -> &'static str {
        match self {
            Signal::MemoryAvailable | Signal::AllocatableMemoryAvailable => "MemoryPressure",
            Signal::PidAvailable => "PIDPressure",
            _ => "DiskPressure",
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A threshold's value: an absolute amount (bytes, inodes, pids) or a share of capacity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ThresholdValue {
    /// `100Mi`
    Quantity(i64),
    /// `10%` as 0.10
    Percentage(f64),
}

impl ThresholdValue {
    /// The absolute amount for a resource of `capacity`.
    pub fn amount(self, capacity: i64) -> i64 {
        match self {
            ThresholdValue::Quantity(q) => q,
            ThresholdValue::Percentage(p) => (capacity as f64 * p) as i64,
        }
    }
}

/// One eviction threshold: `signal < value`, met for `grace_period` (zero for hard ones).
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// What is measured.
    pub signal: Signal,
    /// Below what.
    pub value: ThresholdValue,
    /// How long it must be met before pods are evicted; zero for a hard threshold.
    pub grace_period: Duration,
    /// Whether it is a hard threshold.
    pub hard: bool,
}

/// Why a threshold map was refused; each names its field as `field[key]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ThresholdError {
    #[error("{field}[{key}]: unknown eviction signal")]
    UnknownSignal { field: String, key: String },
    #[error("{field}[{key}]: invalid quantity {value:?}")]
    Quantity {
        field: String,
        key: String,
        value: String,
    },
    #[error("{field}[{key}]: invalid percentage {value:?} (must be between 0% and 100%)")]
    Percentage {
        field: String,
        key: String,
        value: String,
    },
    #[error("{field}[{key}]: eviction threshold must be positive: {value:?}")]
    Negative {
        field: String,
        key: String,
        value: String,
    },
    #[error("{field}[{key}]: invalid duration {value:?}")]
    Duration {
        field: String,
        key: String,
        value: String,
    },
    #[error("evictionSoftGracePeriod[{key}]: grace period must be specified for the soft eviction threshold {key}")]
    MissingGracePeriod { key: String },
    #[error("evictionSoftGracePeriod[{key}]: no soft eviction threshold for this signal")]
    GraceWithoutThreshold { key: String },
}

/// Parses one threshold value (`100Mi`, `10%`) as upstream's `parseThresholdStatement`:
/// `0%` and `100%` turn the threshold off (`None`).
pub fn parse_value(
    field: &str,
    key: &str,
    value: &str,
) -> Result<Option<ThresholdValue>, ThresholdError> {
    if value == "0%" || value == "100%" {
        return Ok(None);
    }
    if let Some(p) = value.strip_suffix('%') {
        let pct: f64 = p.parse().map_err(|_| ThresholdError::Percentage {
            field: field.into(),
            key: key.into(),
            value: value.into(),
        })?;
        if !(0.0..=100.0).contains(&pct) {
            return Err(ThresholdError::Percentage {
                field: field.into(),
                key: key.into(),
                value: value.into(),
            });
        }
        return Ok(Some(ThresholdValue::Percentage(pct / 100.0)));
    }
    let q = Quantity::parse(value).map_err(|_| ThresholdError::Quantity {
        field: field.into(),
        key: key.into(),
        value: value.into(),
    })?;
    if q.sign() < 0 {
        return Err(ThresholdError::Negative {
            field: field.into(),
            key: key.into(),
            value: value.into(),
        });
    }
    Ok(Some(ThresholdValue::Quantity(q.value())))
}

/// Parses a Go duration (`1m30s`, `500ms`, `2h`), as `time.ParseDuration` for the non-negative
/// values kubelet configurations hold.
pub fn parse_go_duration(s: &str) -> Option<Duration> {
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += n * scale;
    }
    Some(Duration::from_secs_f64(total))
}

/// Parses `evictionHard` / `evictionSoft` (with `evictionSoftGracePeriod`) into thresholds,
/// validated as upstream's `ParseThresholdConfig`.
pub fn parse_thresholds(
    hard: &BTreeMap<String, String>,
    soft: &BTreeMap<String, String>,
    soft_grace: &BTreeMap<String, String>,
) -> Result<Vec<Threshold>, ThresholdError> {
    let mut out = Vec::new();
    for (field, map, is_hard) in [("evictionHard", hard, true), ("evictionSoft", soft, false)] {
        for (key, value) in map {
            let signal = Signal::parse(key).ok_or_else(|| ThresholdError::UnknownSignal {
                field: field.into(),
                key: key.clone(),
            })?;
            let Some(value) = parse_value(field, key, value)? else {
                continue;
            };
            let grace_period = if is_hard {
                Duration::ZERO
            } else {
                let g = soft_grace
                    .get(key)
                    .ok_or_else(|| ThresholdError::MissingGracePeriod { key: key.clone() })?;
                parse_go_duration(g).ok_or_else(|| ThresholdError::Duration {
                    field: "evictionSoftGracePeriod".into(),
                    key: key.clone(),
                    value: g.clone(),
                })?
            };
            out.push(Threshold {
                signal,
                value,
                grace_period,
                hard: is_hard,
            });
        }
    }
    if let Some(k) = soft_grace.keys().find(|k| !soft.contains_key(*k)) {
        return Err(ThresholdError::GraceWithoutThreshold { key: k.clone() });
    }
    Ok(out)
}

/// Upstream's default hard thresholds (`memory.available<100Mi`, `nodefs.available<10%`,
/// `nodefs.inodesFree<5%`, `imagefs.available<15%`).
pub fn default_hard() -> Vec<Threshold> {
    let hard = |signal, value| Threshold {
        signal,
        value,
        grace_period: Duration::ZERO,
        hard: true,
    };
    vec![
        hard(Signal::MemoryAvailable, ThresholdValue::Quantity(100 << 20)),
        hard(Signal::NodeFsAvailable, ThresholdValue::Percentage(0.10)),
        hard(Signal::NodeFsInodesFree, ThresholdValue::Percentage(0.05)),
        hard(Signal::ImageFsAvailable, ThresholdValue::Percentage(0.15)),
    ]
}

/// Adds the `allocatableMemory.available` threshold upstream derives from each hard
/// `memory.available` one (pod-level enforcement of node allocatable).
pub fn with_allocatable(thresholds: &[Threshold]) -> Vec<Threshold> {
    let mut out = thresholds.to_vec();
    for t in thresholds {
        if t.signal == Signal::MemoryAvailable && t.hard {
            out.push(Threshold {
                signal: Signal::AllocatableMemoryAvailable,
                ..t.clone()
            });
        }
    }
    out
}

/// A measured signal: what is available of what capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation {
    /// Available amount (bytes, inodes, pids).
    pub available: i64,
    /// Capacity the percentage thresholds apply to.
    pub capacity: i64,
}

/// The thresholds `observations` meet (a signal not observed meets nothing).
pub fn met<'a>(
    thresholds: &'a [Threshold],
    observations: &BTreeMap<Signal, Observation>,
) -> Vec<&'a Threshold> {
    thresholds
        .iter()
        .filter(|t| {
            observations
                .get(&t.signal)
                .is_some_and(|o| o.available < t.value.amount(o.capacity))
        })
        .collect()
}

/// The amount a threshold stands for, printed as eviction messages print it.
pub fn format_amount(t: &Threshold, capacity: i64) -> String {
    format_quantity(t.signal, t.value.amount(capacity))
}

/// An amount of a signal's resource, binary-suffixed for bytes (`100Mi`, `1884Ki`).
pub fn format_quantity(signal: Signal, amount: i64) -> String {
    match signal.resource() {
        "memory" | "ephemeral-storage" => {
            let q = Quantity::from_int(amount, bramble_api::quantity::Format::BinarySI);
            q.to_string()
        }
        _ => amount.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_hard_and_soft_as_upstream() {
        let t = parse_thresholds(
            &map(&[("memory.available", "100Mi"), ("nodefs.available", "10%")]),
            &map(&[("memory.available", "300Mi")]),
            &map(&[("memory.available", "1m30s")]),
        )
        .unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!(t[0].value, ThresholdValue::Quantity(100 << 20));
        assert_eq!(t[1].value, ThresholdValue::Percentage(0.10));
        assert!(!t[2].hard);
        assert_eq!(t[2].grace_period, Duration::from_secs(90));
    }

    #[test]
    fn zero_and_hundred_percent_turn_a_threshold_off() {
        let t = parse_thresholds(
            &map(&[
                ("memory.available", "100Mi"),
                ("nodefs.available", "0%"),
                ("imagefs.available", "100%"),
            ]),
            &map(&[("nodefs.available", "0%")]),
            &map(&[]),
        )
        .unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].signal, Signal::MemoryAvailable);
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse_thresholds(&map(&[("memory.available", "12Zi")]), &map(&[]), &map(&[]))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "evictionHard[memory.available]: invalid quantity \"12Zi\""
        );
        let e =
            parse_thresholds(&map(&[("memory.free", "1Gi")]), &map(&[]), &map(&[])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "evictionHard[memory.free]: unknown eviction signal"
        );
        let e = parse_thresholds(&map(&[]), &map(&[("nodefs.available", "15%")]), &map(&[]))
            .unwrap_err();
        assert!(e
            .to_string()
            .starts_with("evictionSoftGracePeriod[nodefs.available]"));
        let e = parse_thresholds(&map(&[("nodefs.available", "150%")]), &map(&[]), &map(&[]))
            .unwrap_err();
        assert!(matches!(e, ThresholdError::Percentage { .. }));
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_go_duration("1h2m3s"), Some(Duration::from_secs(3723)));
        assert_eq!(parse_go_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_go_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_go_duration("10"), None);
        assert_eq!(parse_go_duration("3d"), None);
    }

    #[test]
    fn met_compares_against_capacity_shares() {
        let t = with_allocatable(&default_hard());
        assert_eq!(t.len(), 5);
        let mut obs = BTreeMap::new();
        obs.insert(
            Signal::MemoryAvailable,
            Observation {
                available: 50 << 20,
                capacity: 1 << 30,
            },
        );
        obs.insert(
            Signal::NodeFsAvailable,
            Observation {
                available: 20,
                capacity: 100,
            },
        );
        let m = met(&t, &obs);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].signal, Signal::MemoryAvailable);
        assert_eq!(format_amount(m[0], 1 << 30), "100Mi");
    }
}
