//! batch/v1 Jobs and CronJobs as upstream's `pkg/apis/batch/validation` checks them.

use serde_json::Value;

use super::field::{
    gorepr, invalid, invalid_str, not_supported, required, BadValue, ErrorList, Path,
};
use super::meta::{immutable, label_selector, nonnegative, selector_matches};
use super::obj::{self, bad, named};
use super::pod::template_spec;

/// `validateJobSpec`: counts, completion mode and the pod template.
fn job_spec(spec: &Value, p: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for f in [
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
    ] {
        if let Some(v) = obj::opt_i(spec, f) {
            errs.extend(nonnegative(v, &p.child(f)));
        }
    }
    if let Some(mode) = obj::opt_s(spec, "completionMode") {
        if mode != "NonIndexed" && mode != "Indexed" {
            errs.push(not_supported(
                &p.child("completionMode"),
                named(mode),
                &["NonIndexed", "Indexed"],
            ));
        }
        if mode == "Indexed" && obj::get(spec, "completions").is_none() {
            errs.push(required(
                &p.child("completions"),
                "when completion mode is Indexed",
            ));
        }
    }
    if let Some(prp) = obj::opt_s(spec, "podReplacementPolicy") {
        if prp != "TerminatingOrFailed" && prp != "Failed" {
            errs.push(not_supported(
                &p.child("podReplacementPolicy"),
                named(prp),
                &["Failed", "TerminatingOrFailed"],
            ));
        }
    }
    let tp = p.child("template");
    let template = obj::get(spec, "template");
    errs.extend(template_spec(template, &tp));
    let rp = template
        .and_then(|t| obj::at(t, &["spec", "restartPolicy"]))
        .and_then(Value::as_str)
        .unwrap_or("");
    if rp != "OnFailure" && rp != "Never" {
        errs.push(not_supported(
            &tp.child("spec").child("restartPolicy"),
            named(rp),
            &["OnFailure", "Never"],
        ));
    }
    errs
}

/// `ValidateJob` (+ `ValidateJobUpdate`), ObjectMeta excluded.
pub fn job(o: &Value, old: Option<&Value>) -> ErrorList {
    let sp = Path::new("spec");
    let spec = obj::get(o, "spec").cloned().unwrap_or(Value::Null);
    let mut errs = job_spec(&spec, &sp);
    match obj::get(&spec, "selector") {
        None => errs.push(required(&sp.child("selector"), "")),
        Some(sel) => {
            errs.extend(label_selector(sel, &sp.child("selector")));
            let labels = obj::at(&spec, &["template", "metadata", "labels"])
                .cloned()
                .unwrap_or(Value::Null);
            if !selector_matches(sel, &labels) {
                errs.push(invalid(
                    &sp.child("template").child("metadata").child("labels"),
                    BadValue::GoRepr(gorepr::string_map(obj::at(
                        &spec,
                        &["template", "metadata", "labels"],
                    ))),
                    "`selector` does not match template `labels`",
                ));
            }
        }
    }
    if let Some(old) = old {
        // Upstream's `ValidateJobSpecUpdate` order.
        let os = obj::get(old, "spec").cloned().unwrap_or(Value::Null);
        if obj::s(&spec, "completionMode") != "Indexed" {
            errs.extend(immutable(
                spec.get("completions"),
                os.get("completions"),
                &sp.child("completions"),
            ));
        }
        if !obj::same(spec.get("selector"), os.get("selector")) {
            errs.push(invalid(
                &sp.child("selector"),
                BadValue::GoRepr(gorepr::label_selector(spec.get("selector"))),
                super::meta::FIELD_IMMUTABLE,
            ));
        }
        // The template may change only while the Job is suspended (scheduling directives).
        if !obj::b(&os, "suspend") || !obj::b(&spec, "suspend") {
            errs.extend(immutable(
                spec.get("template"),
                os.get("template"),
                &sp.child("template"),
            ));
        }
        for f in [
            "completionMode",
            "podFailurePolicy",
            "backoffLimitPerIndex",
            "managedBy",
            "successPolicy",
        ] {
            errs.extend(immutable(spec.get(f), os.get(f), &sp.child(f)));
        }
    }
    errs
}

/// Zone names the API server accepts without a tz database (Area/Location IANA form).
fn time_zone(tz: Option<&Value>, p: &str) -> ErrorList {
    let Some(v) = tz.filter(|v| !v.is_null()) else {
        return vec![];
    };
    let name = v.as_str().unwrap_or("");
    if name.is_empty() {
        return vec![invalid(
            p,
            bad(Some(v)),
            "timeZone must be nil or non-empty string",
        )];
    }
    let part_ok = |part: &str| {
        !part.is_empty()
            && part.len() <= 14
            && part != "."
            && part != ".."
            && !part.starts_with('-')
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-+".contains(c))
    };
    if !name.split('/').all(part_ok) {
        return vec![invalid(
            p,
            bad(Some(v)),
            &format!("unknown time zone {name}"),
        )];
    }
    if name.eq_ignore_ascii_case("Local") {
        return vec![invalid(
            p,
            bad(Some(v)),
            "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
        )];
    }
    const AREAS: &[&str] = &[
        "Africa",
        "America",
        "Antarctica",
        "Arctic",
        "Asia",
        "Atlantic",
        "Australia",
        "Brazil",
        "Canada",
        "Chile",
        "Etc",
        "Europe",
        "Indian",
        "Mexico",
        "Pacific",
        "US",
    ];
    const SINGLE: &[&str] = &[
        "UTC",
        "GMT",
        "UCT",
        "Zulu",
        "Universal",
        "Greenwich",
        "CET",
        "EET",
        "WET",
        "MET",
        "EST",
        "MST",
        "HST",
        "EST5EDT",
        "CST6CDT",
        "MST7MDT",
        "PST8PDT",
        "Japan",
        "Singapore",
        "Iceland",
        "Israel",
        "Egypt",
        "Turkey",
        "Poland",
        "Portugal",
        "Hongkong",
        "NZ",
        "PRC",
        "ROC",
        "ROK",
        "Cuba",
        "Iran",
        "Jamaica",
        "Libya",
        "Navajo",
        "Eire",
        "GB",
        "W-SU",
        "Kwajalein",
    ];
    let known = match name.split_once('/') {
        Some((area, _)) => AREAS.contains(&area),
        None => SINGLE.contains(&name),
    };
    if known {
        vec![]
    } else {
        vec![invalid(
            p,
            bad(Some(v)),
            &format!("unknown time zone {name}"),
        )]
    }
}

/// `ValidateCronJobCreate/Update`, ObjectMeta excluded.
pub fn cron_job(o: &Value, old: Option<&Value>) -> ErrorList {
    let mut errs = ErrorList::new();
    let name = obj::at(o, &["metadata", "name"])
        .and_then(Value::as_str)
        .unwrap_or("");
    if name.len() > 52 {
        errs.push(invalid_str(
            "metadata.name",
            name,
            "must be no more than 52 characters",
        ));
    }
    let sp = Path::new("spec");
    let spec = obj::get(o, "spec").cloned().unwrap_or(Value::Null);
    let old_spec = old.and_then(|x| obj::get(x, "spec"));
    let schedule = obj::s(&spec, "schedule");
    let schp = sp.child("schedule");
    if schedule.is_empty() {
        errs.push(required(&schp, ""));
    } else {
        if let Err(e) = super::cron::parse(schedule) {
            errs.push(invalid_str(&schp, schedule, &e));
        }
        let allow_tz = old_spec.is_some_and(|s| obj::s(s, "schedule").contains("TZ"));
        if allow_tz && schedule.contains("TZ") && obj::get(&spec, "timeZone").is_some() {
            errs.push(invalid_str(
                &schp,
                schedule,
                "cannot use both timeZone field and TZ or CRON_TZ in schedule",
            ));
        } else if !allow_tz && schedule.contains("TZ") {
            errs.push(invalid_str(
                &schp,
                schedule,
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            ));
        }
    }
    if let Some(s) = obj::opt_i(&spec, "startingDeadlineSeconds") {
        errs.extend(nonnegative(s, &sp.child("startingDeadlineSeconds")));
    }
    if old_spec.is_none_or(|os| !obj::same(os.get("timeZone"), spec.get("timeZone"))) {
        errs.extend(time_zone(spec.get("timeZone"), &sp.child("timeZone")));
    }
    match obj::s(&spec, "concurrencyPolicy") {
        "Allow" | "Forbid" | "Replace" => {}
        "" => errs.push(required(&sp.child("concurrencyPolicy"), "")),
        other => errs.push(not_supported(
            &sp.child("concurrencyPolicy"),
            named(other),
            &["Allow", "Forbid", "Replace"],
        )),
    }
    let jtp = sp.child("jobTemplate");
    let jt_spec = obj::at(&spec, &["jobTemplate", "spec"])
        .cloned()
        .unwrap_or(Value::Null);
    errs.extend(job_spec(&jt_spec, &jtp.child("spec")));
    if let Some(sel) = obj::get(&jt_spec, "selector") {
        errs.push(invalid(
            &jtp.child("spec").child("selector"),
            BadValue::GoRepr(gorepr::label_selector(Some(sel))),
            "`selector` will be auto-generated",
        ));
    }
    if obj::b(&jt_spec, "manualSelector") {
        errs.push(not_supported(
            &jtp.child("spec").child("manualSelector"),
            BadValue::Bool(true),
            &["nil", "false"],
        ));
    }
    for f in ["successfulJobsHistoryLimit", "failedJobsHistoryLimit"] {
        if let Some(v) = obj::opt_i(&spec, f) {
            errs.extend(nonnegative(v, &sp.child(f)));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(errs: &ErrorList) -> Vec<String> {
        errs.iter()
            .map(|e| format!("{}: {}", e.field, e.body()))
            .collect()
    }

    fn pod_template(restart: &str) -> Value {
        json!({"metadata": {"labels": {"job-name": "pi"}}, "spec": {
            "containers": [{"name": "c", "image": "perl", "imagePullPolicy": "Always", "terminationMessagePolicy": "File"}],
            "restartPolicy": restart, "dnsPolicy": "ClusterFirst", "terminationGracePeriodSeconds": 30}})
    }

    #[test]
    fn job_restart_policy_must_be_on_failure_or_never() {
        let j = json!({"spec": {"selector": {"matchLabels": {"job-name": "pi"}}, "template": pod_template("Always"),
            "parallelism": 1, "completions": 1, "backoffLimit": 6}});
        assert_eq!(render(&job(&j, None)), vec![
            "spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\"",
        ]);
        let mut ok = j.clone();
        ok["spec"]["template"] = pod_template("Never");
        assert!(job(&ok, None).is_empty());
        let mut bad = ok.clone();
        bad["spec"]["parallelism"] = json!(-1);
        assert_eq!(
            render(&job(&bad, None)),
            vec!["spec.parallelism: Invalid value: -1: must be greater than or equal to 0"]
        );
    }

    #[test]
    fn job_template_is_immutable() {
        let old = json!({"spec": {"selector": {"matchLabels": {"job-name": "pi"}}, "template": pod_template("Never")}});
        let mut new = old.clone();
        new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("perl:2");
        let out = render(&job(&new, Some(&old)));
        assert_eq!(out.len(), 1);
        assert!(
            out[0].starts_with("spec.template: Invalid value: {"),
            "{out:?}"
        );
        assert!(out[0].ends_with(": field is immutable"));
    }

    #[test]
    fn cron_job_schedule_and_policy() {
        let cj = json!({"metadata": {"name": "c"}, "spec": {"schedule": "61 * * * *", "concurrencyPolicy": "Sometimes",
            "timeZone": "Mars/Olympus", "jobTemplate": {"spec": {"template": pod_template("OnFailure")}}}});
        assert_eq!(render(&cron_job(&cj, None)), vec![
            "spec.schedule: Invalid value: \"61 * * * *\": end of range (61) above maximum (59): 61",
            "spec.timeZone: Invalid value: \"Mars/Olympus\": unknown time zone Mars/Olympus",
            "spec.concurrencyPolicy: Unsupported value: \"Sometimes\": supported values: \"Allow\", \"Forbid\", \"Replace\"",
        ]);
        let ok = json!({"metadata": {"name": "c"}, "spec": {"schedule": "@hourly", "concurrencyPolicy": "Allow",
            "timeZone": "Europe/Berlin", "jobTemplate": {"spec": {"template": pod_template("OnFailure")}}}});
        assert!(cron_job(&ok, None).is_empty());
    }
}
