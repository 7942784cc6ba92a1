//! The process guard as its own binary, for hearth-worker's tests. Production runs the
//! same code as `hearth __guard`. Arguments: `[--cgroup DIR] [--status-fd N] -- PROGRAM
//! [ARGS...]` (see `hearth_worker::guard`).

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    hearth_worker::guard::main(&args)
}
