//! Resource quantities (`100m`, `128Mi`, `1e3`) parsed and printed the way upstream's
//! `resource.Quantity` does: exact fixed point (nano units in an `i128`), values finer than
//! a nano rounded up away from zero, binary-SI values capped at 2^63-1, and the canonical
//! form (`1000m` -> `1`, `1024Mi` -> `1Gi`, `0.5` -> `500m`, `1.5Gi` -> `1536Mi`).
//!
//! Known difference: upstream keeps arbitrarily large decimal values in a big decimal; here
//! a value whose nano count does not fit an `i128` (beyond about 1.7e29) is a numeric error.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

const NANOS_PER_UNIT: i128 = 1_000_000_000;
const MAX_BINARY_UNITS: i128 = i64::MAX as i128;

/// Upstream `resource.Format`: the kind of suffix a quantity was written with, kept when
/// it is printed again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `12e6`
    DecimalExponent,
    /// `12Mi` (powers of 1024)
    BinarySI,
    /// `12M`, `100m` (powers of 1000)
    DecimalSI,
}

/// Upstream's quantity parse errors, with upstream's messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error("quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")]
    FormatWrong,
    #[error("unable to parse numeric part of quantity")]
    Numeric,
    #[error("unable to parse quantity's suffix")]
    Suffix,
}

/// A parsed quantity: an exact count of nano units plus the format it prints in.
/// Equality and ordering compare the value only (`1Gi == 1024Mi`).
#[derive(Debug, Clone, Copy)]
pub struct Quantity {
    nanos: i128,
    format: Format,
}

impl Quantity {
    /// Parses a quantity string exactly as upstream `resource.ParseQuantity` (no whitespace
    /// allowed).
    pub fn parse(s: &str) -> Result<Quantity, QuantityError> {
        if s.is_empty() {
            return Err(QuantityError::FormatWrong);
        }
        if s == "0" {
            return Ok(Quantity::zero());
        }
        let scanned = scan(s)?;
        let (base, exponent, mut format) =
            interpret_suffix(scanned.suffix).ok_or(QuantityError::Suffix)?;
        let digits = format!("{}{}", scanned.num, scanned.denom);
        let digits = digits.trim_start_matches('0');
        let denom_len = scanned.denom.len() as i64;
        let mut magnitude = if base == 10 {
            scale_digits(digits, exponent + 9 - denom_len)?
        } else {
            // digits * 2^exponent * 10^(9 - denom_len), rounding up what falls below a nano.
            let d = parse_digits(digits)?;
            let shifted = d
                .checked_mul(1i128 << exponent)
                .ok_or(QuantityError::Numeric)?;
            scale_value(shifted, 9 - denom_len)?
        };
        if format == Format::BinarySI {
            magnitude = magnitude.min(MAX_BINARY_UNITS * NANOS_PER_UNIT);
            if magnitude > 0 && magnitude < NANOS_PER_UNIT {
                format = Format::DecimalSI;
            }
        }
        let nanos = if scanned.positive {
            magnitude
        } else {
            -magnitude
        };
        Ok(Quantity { nanos, format })
    }

    /// Parses a JSON quantity as upstream's `UnmarshalJSON`: a string (surrounding
    /// whitespace trimmed) or a number.
    pub fn from_json(v: &Value) -> Result<Quantity, QuantityError> {
        match v {
            Value::String(s) => Quantity::parse(s.trim()),
            Value::Number(n) => Quantity::parse(&n.to_string()),
            _ => Err(QuantityError::FormatWrong),
        }
    }

    /// Zero (`"0"`, DecimalSI).
    pub fn zero() -> Quantity {
        Quantity {
            nanos: 0,
            format: Format::DecimalSI,
        }
    }

    /// A whole number of units in the given format (`from_int(128 << 20, BinarySI)` is
    /// `128Mi`).
    pub fn from_int(value: i64, format: Format) -> Quantity {
        Quantity {
            nanos: value as i128 * NANOS_PER_UNIT,
            format,
        }
    }

    /// Milli-units, DecimalSI (`from_milli(250)` is `250m`).
    pub fn from_milli(milli: i64) -> Quantity {
        Quantity {
            nanos: milli as i128 * 1_000_000,
            format: Format::DecimalSI,
        }
    }

    /// The exact value in nano units.
    pub fn nanos(&self) -> i128 {
        self.nanos
    }

    pub fn format(&self) -> Format {
        self.format
    }

    pub fn is_zero(&self) -> bool {
        self.nanos == 0
    }

    /// -1, 0 or 1.
    pub fn sign(&self) -> i32 {
        self.nanos.signum() as i32
    }

    /// Whole units, rounded up away from zero like upstream `Value()` (`100m` -> 1),
    /// saturating at the `i64` range.
    pub fn value(&self) -> i64 {
        saturate(div_away_from_zero(self.nanos, NANOS_PER_UNIT))
    }

    /// Milli-units, rounded up away from zero like upstream `MilliValue()`.
    pub fn milli_value(&self) -> i64 {
        saturate(div_away_from_zero(self.nanos, 1_000_000))
    }

    /// Value in units of 10^scale (`scaled_value(-3)` is milli), rounded up away from zero
    /// like upstream `ScaledValue`.
    pub fn scaled_value(&self, scale: i32) -> i64 {
        let shift = scale + 9;
        if shift <= 0 {
            let mul = 10i128.checked_pow((-shift) as u32);
            return match mul.and_then(|m| self.nanos.checked_mul(m)) {
                Some(v) => saturate(v),
                None if self.nanos < 0 => i64::MIN,
                None => i64::MAX,
            };
        }
        match 10i128.checked_pow(shift as u32) {
            Some(d) => saturate(div_away_from_zero(self.nanos, d)),
            None => self.nanos.signum() as i64,
        }
    }

    /// The value as a float (upstream `AsApproximateFloat64`), e.g. for HPA ratios.
    pub fn as_f64(&self) -> f64 {
        self.nanos as f64 / NANOS_PER_UNIT as f64
    }

    /// Sum; keeps `self`'s format (as upstream `Add`). Saturates on overflow.
    pub fn add(&self, other: &Quantity) -> Quantity {
        Quantity {
            nanos: self.nanos.saturating_add(other.nanos),
            format: self.format,
        }
    }

    /// Difference; keeps `self`'s format. Saturates on overflow.
    pub fn sub(&self, other: &Quantity) -> Quantity {
        Quantity {
            nanos: self.nanos.saturating_sub(other.nanos),
            format: self.format,
        }
    }

    /// The canonical string upstream serializes.
    pub fn canonical(&self) -> String {
        if self.nanos == 0 {
            return "0".to_string();
        }
        let mut format = self.format;
        if format == Format::BinarySI
            && (self.nanos.abs() < 1024 * NANOS_PER_UNIT || self.nanos % NANOS_PER_UNIT != 0)
        {
            format = Format::DecimalSI;
        }
        if format == Format::BinarySI {
            let mut units = self.nanos / NANOS_PER_UNIT;
            let mut power = 0usize;
            while power < 6 && units % 1024 == 0 {
                units /= 1024;
                power += 1;
            }
            const BIN: [&str; 7] = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
            return format!("{units}{}", BIN[power]);
        }
        let mut mantissa = self.nanos;
        let mut exponent: i32 = -9;
        while mantissa % 10 == 0 {
            mantissa /= 10;
            exponent += 1;
        }
        match exponent.rem_euclid(3) {
            1 => {
                mantissa *= 10;
                exponent -= 1;
            }
            2 => {
                mantissa *= 100;
                exponent -= 2;
            }
            _ => {}
        }
        let suffix = match (format, exponent) {
            (Format::DecimalExponent, 0) => String::new(),
            (Format::DecimalExponent, e) => format!("e{e}"),
            (_, -9) => "n".into(),
            (_, -6) => "u".into(),
            (_, -3) => "m".into(),
            (_, 0) => String::new(),
            (_, 3) => "k".into(),
            (_, 6) => "M".into(),
            (_, 9) => "G".into(),
            (_, 12) => "T".into(),
            (_, 15) => "P".into(),
            (_, 18) => "E".into(),
            (_, e) => format!("e{e}"),
        };
        format!("{mantissa}{suffix}")
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.nanos == other.nanos
    }
}

impl Eq for Quantity {}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical())
    }
}

impl FromStr for Quantity {
    type Err = QuantityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Quantity::parse(s)
    }
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.canonical())
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Quantity::from_json(&v).map_err(serde::de::Error::custom)
    }
}

/// Canonical form of a quantity string (`"0.5"` -> `"500m"`).
pub fn canonicalize(s: &str) -> Result<String, QuantityError> {
    Ok(Quantity::parse(s)?.canonical())
}

struct Scanned<'a> {
    positive: bool,
    num: &'a str,
    denom: &'a str,
    suffix: &'a str,
}

/// Upstream's `parseQuantityString` scanner.
fn scan(s: &str) -> Result<Scanned<'_>, QuantityError> {
    let b = s.as_bytes();
    let end = b.len();
    let mut out = Scanned {
        positive: true,
        num: "",
        denom: "",
        suffix: "",
    };
    let mut pos = 0;
    match b.first() {
        Some(b'-') => {
            out.positive = false;
            pos += 1;
        }
        Some(b'+') => pos += 1,
        _ => {}
    }
    while pos < end && b[pos] == b'0' {
        pos += 1;
    }
    if pos >= end {
        out.num = "0";
        return Ok(out);
    }
    let start = pos;
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    out.num = if pos == start { "0" } else { &s[start..pos] };
    if pos >= end {
        return Ok(out);
    }
    if b[pos] == b'.' {
        pos += 1;
        let start = pos;
        while pos < end && b[pos].is_ascii_digit() {
            pos += 1;
        }
        out.denom = &s[start..pos];
        if pos >= end {
            return Ok(out);
        }
    }
    let suffix_start = pos;
    while pos < end && b"eEinumkKMGTP".contains(&b[pos]) {
        pos += 1;
    }
    if pos < end && (b[pos] == b'-' || b[pos] == b'+') {
        pos += 1;
    }
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos < end {
        return Err(QuantityError::FormatWrong);
    }
    out.suffix = &s[suffix_start..];
    Ok(out)
}

/// (base, exponent, format) of a suffix, as upstream's suffixer.
fn interpret_suffix(suffix: &str) -> Option<(u32, i64, Format)> {
    let dec = match suffix {
        "n" => Some(-9),
        "u" => Some(-6),
        "m" => Some(-3),
        "" => Some(0),
        "k" => Some(3),
        "M" => Some(6),
        "G" => Some(9),
        "T" => Some(12),
        "P" => Some(15),
        "E" => Some(18),
        _ => None,
    };
    if let Some(e) = dec {
        return Some((10, e, Format::DecimalSI));
    }
    let bin = match suffix {
        "Ki" => Some(10),
        "Mi" => Some(20),
        "Gi" => Some(30),
        "Ti" => Some(40),
        "Pi" => Some(50),
        "Ei" => Some(60),
        _ => None,
    };
    if let Some(e) = bin {
        return Some((2, e, Format::BinarySI));
    }
    let first = suffix.as_bytes().first()?;
    if suffix.len() > 1 && (*first == b'e' || *first == b'E') {
        let exp: i64 = suffix[1..].parse().ok()?;
        return Some((10, exp, Format::DecimalExponent));
    }
    None
}

fn parse_digits(digits: &str) -> Result<i128, QuantityError> {
    if digits.is_empty() {
        return Ok(0);
    }
    digits.parse::<i128>().map_err(|_| QuantityError::Numeric)
}

/// `digits * 10^shift`, rounding a non-zero remainder up (away from zero).
fn scale_digits(digits: &str, shift: i64) -> Result<i128, QuantityError> {
    if digits.is_empty() {
        return Ok(0);
    }
    if shift >= 0 {
        return scale_value(parse_digits(digits)?, shift);
    }
    let drop = (-shift) as usize;
    if drop >= digits.len() {
        return Ok(1);
    }
    let (keep, rest) = digits.split_at(digits.len() - drop);
    let kept = parse_digits(keep)?;
    let round = i128::from(rest.bytes().any(|c| c != b'0'));
    Ok(kept + round)
}

/// `v * 10^shift` for a non-negative `v`, rounding up what a negative shift drops.
fn scale_value(v: i128, shift: i64) -> Result<i128, QuantityError> {
    if v == 0 {
        return Ok(0);
    }
    if shift >= 0 {
        let pow = u32::try_from(shift)
            .ok()
            .and_then(|s| 10i128.checked_pow(s))
            .ok_or(QuantityError::Numeric)?;
        return v.checked_mul(pow).ok_or(QuantityError::Numeric);
    }
    match u32::try_from(-shift)
        .ok()
        .and_then(|s| 10i128.checked_pow(s))
    {
        Some(d) => Ok(div_away_from_zero(v, d)),
        None => Ok(1),
    }
}

fn div_away_from_zero(v: i128, d: i128) -> i128 {
    let q = v / d;
    if v % d == 0 {
        q
    } else {
        q + v.signum()
    }
}

fn saturate(v: i128) -> i64 {
    v.clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

#[cfg(test)]
#[path = "quantity_tests.rs"]
mod tests;
