//! Distributions as the benchmark binaries print and record them: n, p50, p99 and max in
//! milliseconds, on one readable line and as JSON (hearth-client's
//! [`Distribution`](hearth_client::failover::Distribution) computes them).

use hearth_client::failover::stats::ms;
use hearth_client::failover::Distribution;
use serde_json::{json, Value};
use std::time::Duration;

/// n, p50, p99 and max of `values` (printed in ms) under `label`, returned as JSON
/// (`{"n": 0}` when there are none).
pub fn dist(label: &str, values: impl IntoIterator<Item = Duration>) -> Value {
    let (v, line) = dist_line(label, values);
    println!("{line}");
    v
}

/// [`dist`] without printing: the JSON and the line it would print.
pub fn dist_line(label: &str, values: impl IntoIterator<Item = Duration>) -> (Value, String) {
    let d = Distribution::of(values);
    let (Some(p50), Some(p99), Some(max)) = (d.p50, d.p99, d.max) else {
        return (json!({ "n": 0 }), format!("  {label:<52} n=  0"));
    };
    let (p50, p99, max) = (ms(p50), ms(p99), ms(max));
    let line = format!(
        "  {label:<52} n={:>4}  p50 {p50:>8.1} ms  p99 {p99:>8.1} ms  max {max:>8.1} ms",
        d.n
    );
    let v = json!({
        "n": d.n,
        "p50_ms": round3(p50),
        "p99_ms": round3(p99),
        "max_ms": round3(max),
    });
    (v, line)
}

/// `x` rounded to three decimals.
pub fn round3(x: f64) -> f64 {
    (x * 1e3).round() / 1e3
}
