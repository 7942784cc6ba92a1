//! hearth-tests: tests that span crates (in-process clusters, real-process fault tests,
//! the drill harness) and benchmarks.
//!
//! Owns: test fixtures and harnesses only.
//!
//! Must not: be depended on by any product crate.
//!
//! Status: the cross-crate suites arrive with the master and worker; hearth-core's own
//! tests live in `core/`.
