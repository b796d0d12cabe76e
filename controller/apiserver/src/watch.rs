//! `watch=true`: a chunked stream of `{"type", "object"}` lines from the store's history and
//! live events, with selectors, bookmarks and resume from a resourceVersion.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http::{header, HeaderValue};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use rand::Rng;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use bramble_api::{ResourceInfo, Status};
use bramble_store::{Event, EventType, ListOptions, StoreError};

use crate::body::Response;
use crate::filter::Filter;
use crate::handlers::Ctx;

/// Where a watch starts.
enum Start {
    /// Synthetic ADDED events for the current state, then changes after it.
    InitialState,
    /// Changes after this revision.
    After(u64),
}

/// Serves a watch request. Errors before the stream starts are plain `Status` responses.
pub async fn serve(ctx: &Ctx<'_>) -> Result<Response, Status> {
    let mut filter = Filter::from_query(&ctx.info, &ctx.query)?;
    if let Some(name) = &ctx.route.name {
        // `/watch/namespaces/x/pods/name`: the legacy single-object watch
        filter = Some(Filter::and_name(filter, name));
    }
    let bookmarks = ctx.query.flag("allowWatchBookmarks");
    let send_initial = ctx.query.get("sendInitialEvents").map(|v| v == "true");
    let start = match (ctx.query.get("resourceVersion"), send_initial) {
        (_, Some(true)) => Start::InitialState,
        (None | Some("0"), _) => Start::InitialState,
        (Some(rv), _) => Start::After(
            rv.parse()
                .map_err(|_| Status::bad_request(format!("invalid resource version: {rv}")))?,
        ),
    };
    let timeout = match ctx.query.u64("timeoutSeconds")? {
        Some(s) => Duration::from_secs(s),
        None => {
            let base = ctx.state.settings.max_watch_timeout;
            base.mul_f64(1.0 + rand::rng().random::<f64>())
        }
    };
    let prefix = crate::handlers::read_prefix(ctx);
    let store = ctx.store();
    let info = ctx.info.clone();
    let bookmark_interval = ctx.state.settings.bookmark_interval;

    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let table = match &ctx.output {
        crate::negotiate::Output::Json => None,
        output => Some((output.clone(), ctx.query.clone())),
    };
    let params = WatchParams {
        table,
        info,
        filter,
        bookmarks,
        initial_end_bookmark: send_initial == Some(true) && bookmarks,
        bookmark_interval,
        timeout,
    };
    tokio::spawn(async move {
        if let Err(e) = run(store, prefix, start, params, tx.clone()).await {
            let _ = tx.send(error_line(&e)).await;
        }
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx)
        .map(|b| Ok::<_, std::io::Error>(Frame::data(b)));
    let mut resp = http::Response::new(BodyExt::boxed(StreamBody::new(stream)));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

struct WatchParams {
    /// Events rendered as Tables (or metadata) for `kubectl get -w`.
    table: Option<(crate::negotiate::Output, crate::query::Query)>,
    info: Arc<ResourceInfo>,
    filter: Option<Filter>,
    bookmarks: bool,
    initial_end_bookmark: bool,
    bookmark_interval: Duration,
    timeout: Duration,
}

impl WatchParams {
    /// An event line in the watcher's form: unchanged for JSON, else its object rendered.
    fn render(&self, event_line: Bytes) -> Bytes {
        let Some((output, query)) = &self.table else {
            return event_line;
        };
        let Ok(mut event) = serde_json::from_slice::<Value>(&event_line) else {
            return event_line;
        };
        let obj = event["object"].take();
        match crate::negotiate::render(output, &self.info, &[obj], None, query) {
            Ok(Some(rendered)) => {
                let kind = event["type"].as_str().unwrap_or("MODIFIED").to_string();
                line(&kind, &serde_json::to_vec(&rendered).unwrap_or_default())
            }
            _ => event_line,
        }
    }
}

/// Why a watch ended early, as the ERROR event the client gets.
fn error_line(s: &Status) -> Bytes {
    line(
        "ERROR",
        &serde_json::to_vec(&s.to_json()).unwrap_or_default(),
    )
}

fn line(kind: &str, object: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(object.len() + 32);
    out.extend_from_slice(b"{\"type\":\"");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\",\"object\":");
    out.extend_from_slice(object);
    out.extend_from_slice(b"}\n");
    Bytes::from(out)
}

fn store_end(e: StoreError) -> Status {
    match e {
        StoreError::Compacted {
            requested,
            compacted,
        } => Status::expired(format!(
            "too old resource version: {requested} ({compacted})"
        )),
        other => Status::internal(other.to_string()),
    }
}

async fn run(
    store: Arc<dyn bramble_store::Store>,
    prefix: String,
    start: Start,
    p: WatchParams,
    tx: mpsc::Sender<Bytes>,
) -> Result<(), Status> {
    let deadline = tokio::time::Instant::now() + p.timeout;
    let after = match start {
        Start::After(r) => r,
        Start::InitialState => {
            let matcher = |kv: &bramble_store::KeyValue| {
                p.filter.as_ref().is_none_or(|f| f.matches_raw(&kv.value))
            };
            let listed = store
                .list(
                    &prefix,
                    ListOptions {
                        filter: p.filter.as_ref().map(|_| &matcher as _),
                        ..Default::default()
                    },
                )
                .map_err(store_end)?;
            for kv in &listed.items {
                if tx.send(p.render(line("ADDED", &kv.value))).await.is_err() {
                    return Ok(());
                }
            }
            if p.initial_end_bookmark
                && tx
                    .send(bookmark(&p.info, listed.revision, true))
                    .await
                    .is_err()
            {
                return Ok(());
            }
            listed.revision
        }
    };
    let mut events = store.watch(&prefix, after).map_err(store_end)?;
    let mut last_revision = after;
    let mut ticker = tokio::time::interval(p.bookmark_interval);
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => return Ok(()),
            _ = tx.closed() => return Ok(()),
            _ = ticker.tick(), if p.bookmarks => {
                if tx.send(bookmark(&p.info, last_revision, false)).await.is_err() {
                    return Ok(());
                }
            }
            next = events.next() => {
                let Some(next) = next else { return Ok(()) };
                let event = next.map_err(store_end)?;
                last_revision = event.revision;
                if let Some(out) = to_line(&event, p.filter.as_ref()) {
                    if tx.send(p.render(out)).await.is_err() {
                        return Ok(());
                    }
                }
            }
        }
    }
}

/// The event as the watcher sees it through its selectors: a change that moves an object
/// into the selection is ADDED, out of it DELETED (with the old object at the new revision).
fn to_line(event: &Event, filter: Option<&Filter>) -> Option<Bytes> {
    let kind = match event.kind {
        EventType::Added => "ADDED",
        EventType::Modified => "MODIFIED",
        EventType::Deleted => "DELETED",
    };
    let Some(filter) = filter else {
        return Some(line(kind, &event.value));
    };
    let now = filter.matches_raw(&event.value);
    match event.kind {
        EventType::Added | EventType::Deleted => now.then(|| line(kind, &event.value)),
        EventType::Modified => {
            let before = event
                .prev_value
                .as_ref()
                .is_some_and(|p| filter.matches_raw(p));
            match (before, now) {
                (true, true) => Some(line("MODIFIED", &event.value)),
                (false, true) => Some(line("ADDED", &event.value)),
                (true, false) => {
                    let prev = event.prev_value.as_ref()?;
                    let mut old: Value = serde_json::from_slice(prev).ok()?;
                    old["metadata"]["resourceVersion"] = json!(event.revision.to_string());
                    Some(line("DELETED", &serde_json::to_vec(&old).ok()?))
                }
                (false, false) => None,
            }
        }
    }
}

fn bookmark(info: &ResourceInfo, revision: u64, initial_end: bool) -> Bytes {
    let mut meta = json!({"resourceVersion": revision.to_string()});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    let obj = json!({"kind": info.kind, "apiVersion": info.api_version(), "metadata": meta});
    line("BOOKMARK", &serde_json::to_vec(&obj).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_json() {
        let l = line("ADDED", br#"{"a":1}"#);
        let v: Value = serde_json::from_slice(&l).unwrap();
        assert_eq!(v["type"], "ADDED");
        assert_eq!(v["object"]["a"], 1);
        assert!(l.ends_with(b"\n"));
    }
}
