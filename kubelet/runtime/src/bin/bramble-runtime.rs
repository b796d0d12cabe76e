//! Development and test binary with the runtime's multi-call entry points (`pause`,
//! `runtime-helper`); the shipped `bramble` binary dispatches to the same functions.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match bramble_runtime::multicall::dispatch(&args) {
        Some(code) => std::process::exit(code),
        None => {
            eprintln!("usage: bramble-runtime pause | runtime-helper --fd N [--state-root DIR] [--cgroup-root DIR]");
            std::process::exit(2);
        }
    }
}
