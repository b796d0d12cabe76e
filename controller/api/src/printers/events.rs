//! The Event printer (upstream `printEvent`), for core/v1 Events and for events.k8s.io/v1
//! Events (which upstream converts to the same internal type before printing).

use serde_json::{json, Value};

use super::descriptions as d;
use super::duration::since;
use super::format::{at, int_at, name, opt_str, parse_time, s, str_at};
use super::{col, wide, Column, Ctx, Printer, Row, NAME};

const COLUMNS: &[Column] = &[
    col("Last Seen", d::EV_LAST),
    col("Type", d::EV_TYPE),
    col("Reason", d::EV_REASON),
    col("Object", d::EV_OBJECT),
    wide("Subobject", d::EV_FIELD_PATH),
    wide("Source", d::EV_SOURCE),
    col("Message", d::EV_MESSAGE),
    wide("First Seen", d::EV_FIRST),
    wide("Count", d::EV_COUNT),
    super::Column {
        priority: 1,
        ..NAME
    },
];

pub(crate) const EVENT: Printer = Printer {
    columns: COLUMNS,
    row: event_row,
};

pub(crate) const EVENT_V1: Printer = Printer {
    columns: COLUMNS,
    row: |ev, ctx| event_row(&as_core_event(ev), ctx),
};

/// An events.k8s.io/v1 Event in core/v1 field names (upstream's conversion to the internal
/// type).
fn as_core_event(ev: &Value) -> Value {
    crate::conversion::event_v1_to_core(ev.clone())
}

/// Upstream `formatEventSource`: component (or reporting controller), then `, host` (or
/// reporting instance) when there is one.
fn event_source(ev: &Value) -> String {
    let component = opt_str(ev, "/source/component")
        .or_else(|| opt_str(ev, "/reportingComponent"))
        .unwrap_or("");
    match opt_str(ev, "/source/host").or_else(|| opt_str(ev, "/reportingInstance")) {
        Some(instance) => format!("{component}, {instance}"),
        None => component.to_string(),
    }
}

fn event_row(ev: &Value, ctx: &Ctx) -> Row {
    let first = match parse_time(ev.get("firstTimestamp")) {
        Some(t) => since(Some(t), ctx.now),
        None => since(parse_time(ev.get("eventTime")), ctx.now),
    };
    let mut last = match parse_time(ev.get("lastTimestamp")) {
        Some(t) => since(Some(t), ctx.now),
        None => first.clone(),
    };
    let mut count = int_at(ev, "/count");
    if let Some(series) = at(ev, "/series") {
        last = since(parse_time(series.get("lastObservedTime")), ctx.now);
        count = int_at(series, "/count");
    } else if count == 0 {
        // Singleton events don't have a count set in the new API.
        count = 1;
    }
    let kind = str_at(ev, "/involvedObject/kind").to_lowercase();
    let target = match opt_str(ev, "/involvedObject/name") {
        Some(n) => format!("{kind}/{n}"),
        None => kind,
    };
    vec![
        s(last),
        s(str_at(ev, "/type")),
        s(str_at(ev, "/reason")),
        s(target),
        s(str_at(ev, "/involvedObject/fieldPath")),
        s(event_source(ev)),
        s(str_at(ev, "/message").trim()),
        s(first),
        json!(count),
        name(ev),
    ]
    .into()
}
