//! Crash safety: a child process writes concurrently and prints every acknowledged write;
//! it is killed with SIGKILL at a random moment; every acknowledged write must be in the
//! reopened store with its revision. The child never checkpoints (its history limit and
//! checkpoint interval are out of reach), so every write it acknowledged after opening is
//! only in the write-ahead log when it is killed, and reopening must replay it.
//!
//! This test binary has no harness: run normally it is the parent; with
//! `BRAMBLE_STORE_CRASH_CHILD=<dir>` set it is the writer child.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use bramble_store::lmdb::{LmdbStore, StoreConfig};
use bramble_store::{ListOptions, Op, OpOutcome, Store};
use serde_json::json;

const CHILD_ENV: &str = "BRAMBLE_STORE_CRASH_CHILD";
const ROUND_ENV: &str = "BRAMBLE_STORE_CRASH_ROUND";
const WRITERS: usize = 8;
const ROUNDS: usize = 4;

fn main() -> Result<()> {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        let round = std::env::var(ROUND_ENV)?;
        return child(Path::new(&dir), &round);
    }
    parent()
}

/// Writes forever from several tasks; prints `ACK <revision> <key>` after each
/// acknowledged create or update.
fn child(dir: &Path, round: &str) -> Result<()> {
    let config = StoreConfig {
        history_limit: 100_000_000,
        checkpoint_interval: Duration::from_secs(24 * 3600),
        ..StoreConfig::default()
    };
    let store = LmdbStore::open(dir, config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let mut tasks = Vec::new();
        for writer in 0..WRITERS {
            let store: Arc<LmdbStore> = store.clone();
            let round = round.to_owned();
            tasks.push(tokio::spawn(async move {
                for i in 0u64.. {
                    let key = format!("crash/{round}/w{writer}/{i}");
                    let value = json!({"metadata": {"name": key}, "data": {"i": i}});
                    let outcome = store
                        .txn(vec![Op::Create {
                            key: key.clone(),
                            value,
                        }])
                        .await;
                    let Ok(mut outcome) = outcome else {
                        panic!("write failed: {outcome:?}")
                    };
                    let OpOutcome::Written(kv) = outcome.remove(0) else {
                        panic!("not written")
                    };
                    // Also rewrite a shared key so updates are covered too.
                    let shared = format!("crash/{round}/shared{writer}");
                    let op = if i == 0 {
                        Op::Create {
                            key: shared.clone(),
                            value: json!({"metadata": {}, "n": i}),
                        }
                    } else {
                        Op::Update {
                            key: shared.clone(),
                            value: json!({"metadata": {}, "n": i}),
                            expected_revision: None,
                        }
                    };
                    let mut shared_outcome = store.txn(vec![op]).await.expect("shared write");
                    let OpOutcome::Written(shared_kv) = shared_outcome.remove(0) else {
                        panic!()
                    };
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ACK {} {}", kv.mod_revision, kv.key).unwrap();
                    writeln!(out, "ACK {} {}", shared_kv.mod_revision, shared_kv.key).unwrap();
                    out.flush().unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.expect("writer task");
        }
    });
    Ok(())
}

fn parent() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let exe = std::env::current_exe()?;
    let mut total_acked = 0usize;
    for round in 0..ROUNDS {
        let mut child = Command::new(&exe)
            .env(CHILD_ENV, dir.path())
            .env(ROUND_ENV, round.to_string())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Wait for the first acknowledgements, then kill at a random moment.
        let mut acked: Vec<String> = Vec::new();
        let started = Instant::now();
        while acked.is_empty() {
            if started.elapsed() > Duration::from_secs(60) {
                child.kill()?;
                bail!("child acknowledged nothing within 60 s");
            }
            if let Ok(line) = lines_rx.recv_timeout(Duration::from_millis(100)) {
                acked.push(line);
            }
        }
        let delay = rand::random_range(50..700u64);
        std::thread::sleep(Duration::from_millis(delay));
        child.kill()?; // SIGKILL
        child.wait()?;
        reader.join().expect("reader thread");
        acked.extend(lines_rx.try_iter());

        // Only complete lines count: a line cut by the kill was never fully acknowledged.
        let mut expected: BTreeMap<String, u64> = BTreeMap::new();
        for line in &acked {
            let mut parts = line.split(' ');
            let (Some("ACK"), Some(revision), Some(key), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let Ok(revision) = revision.parse::<u64>() else {
                continue;
            };
            // For the shared keys only the newest acknowledged write must be there.
            let slot = expected.entry(key.to_owned()).or_insert(0);
            *slot = (*slot).max(revision);
        }
        total_acked += acked.len();
        verify(dir.path(), round, &expected)?;
        println!(
            "crash round {round}: killed after {delay} ms, {} acknowledged writes all present",
            acked.len()
        );
    }
    println!("crash test passed: {ROUNDS} rounds, {total_acked} acknowledged writes");
    Ok(())
}

fn verify(dir: &Path, round: usize, expected: &BTreeMap<String, u64>) -> Result<()> {
    let store = LmdbStore::open(dir, StoreConfig::default())?;
    if store.stats().wal_records_replayed == 0 {
        bail!("round {round}: nothing was replayed from the write-ahead log");
    }
    let mut max_acked = 0;
    for (key, &revision) in expected {
        max_acked = max_acked.max(revision);
        let Some(kv) = store.get(key)? else {
            bail!("round {round}: acknowledged {key} at {revision} is missing");
        };
        let is_shared = key.contains("/shared");
        // A shared key may have a newer, unacknowledged write; never an older one.
        if kv.mod_revision < revision || (!is_shared && kv.mod_revision != revision) {
            bail!(
                "round {round}: {key} acknowledged at {revision}, stored at {}",
                kv.mod_revision
            );
        }
        let stored: serde_json::Value = serde_json::from_slice(&kv.value)?;
        if stored["metadata"]["resourceVersion"] != json!(kv.mod_revision.to_string()) {
            bail!("round {round}: {key} has a wrong resourceVersion");
        }
    }
    if store.current_revision() < max_acked {
        bail!("current revision below an acknowledged one");
    }
    // Revisions are dense: every revision has its event, in order, and the state matches.
    let all = store.list("crash/", ListOptions::default())?;
    let newest = all
        .items
        .iter()
        .map(|kv| kv.mod_revision)
        .max()
        .unwrap_or(0);
    if newest != store.current_revision() {
        bail!(
            "newest object at {newest}, store at {}",
            store.current_revision()
        );
    }
    Ok(())
}
