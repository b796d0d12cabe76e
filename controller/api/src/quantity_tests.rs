//! Cases from upstream's documentation and `quantity_test.go` behaviour.

use super::*;
use serde_json::json;

fn canon(s: &str) -> String {
    Quantity::parse(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .canonical()
}

#[test]
fn canonical_forms_match_upstream() {
    let cases = [
        ("0", "0"),
        ("0n", "0"),
        ("0Mi", "0"),
        ("-0", "0"),
        ("+000", "0"),
        ("1", "1"),
        ("+1", "1"),
        ("-1", "-1"),
        ("100m", "100m"),
        ("1000m", "1"),
        ("1001m", "1001m"),
        ("0.5", "500m"),
        (".5", "500m"),
        ("5.", "5"),
        ("1.5", "1500m"),
        ("0.1", "100m"),
        ("1500", "1500"),
        ("1.5k", "1500"),
        ("1000k", "1M"),
        ("1500k", "1500k"),
        ("1000M", "1G"),
        ("1n", "1n"),
        ("1u", "1u"),
        ("1k", "1k"),
        ("1M", "1M"),
        ("1G", "1G"),
        ("1T", "1T"),
        ("1P", "1P"),
        ("1E", "1E"),
        ("1Ki", "1Ki"),
        ("1Mi", "1Mi"),
        ("1Gi", "1Gi"),
        ("1Ti", "1Ti"),
        ("1Pi", "1Pi"),
        ("1Ei", "1Ei"),
        ("128Mi", "128Mi"),
        ("1024Ki", "1Mi"),
        ("1024Mi", "1Gi"),
        ("1025Mi", "1025Mi"),
        ("1.5Gi", "1536Mi"),
        ("1.25Gi", "1280Mi"),
        ("0.5Ki", "512"),
        ("0.1Ki", "102400m"),
        ("1e3", "1e3"),
        ("1E6", "1e6"),
        ("12e6", "12e6"),
        ("1e-3", "1e-3"),
        ("1e+3", "1e3"),
        ("1000e0", "1e3"),
        ("0.9n", "1n"),
        ("1e-20", "1e-9"),
        ("-100m", "-100m"),
        ("-1.5Gi", "-1536Mi"),
        ("8Ei", "9223372036854775807"),
    ];
    for (input, want) in cases {
        assert_eq!(canon(input), want, "input {input}");
    }
}

#[test]
fn rejects_malformed_quantities_with_upstream_errors() {
    let format = [
        "", "1.5.5", "1 Mi", " 1", "1 ", "aoeu", "1+1.0M", "0.1am", "1.1.M",
    ];
    for s in format {
        assert_eq!(
            Quantity::parse(s),
            Err(QuantityError::FormatWrong),
            "input {s:?}"
        );
    }
    for s in ["0.1mi", ".5i", "1i", "-3.01i", "-3.01e-", "1e", "1K"] {
        assert_eq!(
            Quantity::parse(s),
            Err(QuantityError::Suffix),
            "input {s:?}"
        );
    }
    assert_eq!(
        QuantityError::FormatWrong.to_string(),
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    );
}

#[test]
fn a_bare_suffix_reads_as_zero_like_upstream() {
    // Upstream's scanner turns an empty numerator into "0": `Mi` parses as zero.
    assert!(Quantity::parse("Mi").unwrap().is_zero());
}

#[test]
fn values_round_up_away_from_zero() {
    let q = Quantity::parse("100m").unwrap();
    assert_eq!(q.milli_value(), 100);
    assert_eq!(q.value(), 1);
    assert_eq!(Quantity::parse("1.5").unwrap().value(), 2);
    assert_eq!(Quantity::parse("-1.5").unwrap().value(), -2);
    assert_eq!(Quantity::parse("0.1m").unwrap().milli_value(), 1);
    assert_eq!(Quantity::parse("128Mi").unwrap().value(), 134_217_728);
    assert_eq!(Quantity::parse("1G").unwrap().value(), 1_000_000_000);
    assert_eq!(Quantity::parse("2").unwrap().milli_value(), 2000);
    assert_eq!(Quantity::parse("1k").unwrap().scaled_value(3), 1);
    assert_eq!(Quantity::parse("1500").unwrap().scaled_value(3), 2);
    assert_eq!(
        Quantity::parse("1").unwrap().scaled_value(-9),
        1_000_000_000
    );
    assert_eq!(Quantity::parse("1E").unwrap().milli_value(), i64::MAX);
}

#[test]
fn compares_by_value() {
    let a = Quantity::parse("1Gi").unwrap();
    let b = Quantity::parse("1024Mi").unwrap();
    assert_eq!(a, b);
    assert!(Quantity::parse("500m").unwrap() < Quantity::parse("1").unwrap());
    assert!(Quantity::parse("1k").unwrap() < Quantity::parse("1Ki").unwrap());
    assert_eq!(Quantity::parse("0.5").unwrap(), Quantity::from_milli(500));
    assert_eq!(
        Quantity::from_int(128 << 20, Format::BinarySI).canonical(),
        "128Mi"
    );
    let sum = Quantity::parse("100m")
        .unwrap()
        .add(&Quantity::parse("900m").unwrap());
    assert_eq!(sum.canonical(), "1");
    assert_eq!(
        Quantity::parse("1")
            .unwrap()
            .sub(&Quantity::parse("2").unwrap())
            .sign(),
        -1
    );
}

#[test]
fn json_accepts_numbers_and_trims_strings() {
    assert_eq!(
        Quantity::from_json(&json!(0.5)).unwrap().canonical(),
        "500m"
    );
    assert_eq!(Quantity::from_json(&json!(2)).unwrap().canonical(), "2");
    assert_eq!(
        Quantity::from_json(&json!(" 128Mi ")).unwrap().canonical(),
        "128Mi"
    );
    assert!(Quantity::from_json(&json!(true)).is_err());
    let q: Quantity = serde_json::from_value(json!("1024Mi")).unwrap();
    assert_eq!(serde_json::to_value(q).unwrap(), json!("1Gi"));
    assert_eq!(canonicalize("1000m").unwrap(), "1");
    assert_eq!(Quantity::parse("250m").unwrap().as_f64(), 0.25);
}
