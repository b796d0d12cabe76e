//! The Python `kubernetes` client (from PyPI, in the venv scripts/deps.sh makes) runs
//! tests/python/client_suite.py against a real controller: CRUD, every patch kind, server-side
//! apply with conflicts, watch from a resourceVersion, and a CRD round trip.

mod common;

use std::path::Path;
use std::process::Command;

use anyhow::{ensure, Context, Result};
use common::TestController;

const PYTHON: &str = "/usr/local/lib/bramble-tools/py/bin/python";

#[test]
fn python_client_suite() -> Result<()> {
    ensure!(
        Path::new(PYTHON).exists(),
        "{PYTHON} is missing: run `scripts/deps.sh test` (it installs the Python client)"
    );
    let c = TestController::start()?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/client_suite.py");
    let out = Command::new(PYTHON)
        .arg(&script)
        .arg(&c.kubeconfig)
        .output()
        .context("running the Python client suite")?;
    ensure!(
        out.status.success(),
        "python client suite failed ({}):\nstdout: {}\nstderr: {}\ncontroller log tail: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        c.log()
            .lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .join("\n")
    );
    Ok(())
}
