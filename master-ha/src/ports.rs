//! Ports for masters that must know each other's addresses before any of them runs
//! (`--peers`), chosen by whoever starts them (`hearth local`, the test harness).
//!
//! Finding a free port by binding port 0 and closing it leaves a gap until the master
//! binds it, and in that gap anything binding port 0 or connecting out can be given the
//! same port by the kernel, since both draw from the ephemeral range. The ports here
//! come from just below that range instead, where the kernel never hands out ports by
//! itself, so only another explicit chooser could take one.

use std::net::TcpListener;
use std::sync::atomic::{AtomicU32, Ordering};

/// How many ports below the ephemeral range are candidates.
const SPAN: u32 = 12_000;

/// `n` distinct loopback ports that are free now, none handed out before by this
/// process. Starts at a pseudo-random offset so that two processes choosing at once
/// rarely try the same ports.
pub fn free_peer_ports(n: usize) -> std::io::Result<Vec<u16>> {
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let Some(first) = ephemeral_start().checked_sub(SPAN).filter(|f| *f >= 1024) else {
        return ephemeral_ports(n);
    };
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
        ^ std::process::id().wrapping_mul(2_654_435_761);
    let _ = NEXT.compare_exchange(u32::MAX, seed % SPAN, Ordering::SeqCst, Ordering::SeqCst);
    let mut ports = Vec::with_capacity(n);
    for _ in 0..SPAN {
        if ports.len() == n {
            return Ok(ports);
        }
        let port = (first + NEXT.fetch_add(1, Ordering::SeqCst) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            ports.push(port);
        }
    }
    if ports.len() == n {
        return Ok(ports);
    }
    Err(std::io::Error::other(format!(
        "no {n} free ports between {first} and {}",
        first + SPAN
    )))
}

/// The first port of the kernel's ephemeral range (Linux: 32768 unless configured).
fn ephemeral_start() -> u32 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

/// Where the ephemeral range starts too low to stay under it: ports from the kernel,
/// all held until every one is found so that they differ.
fn ephemeral_ports(n: usize) -> std::io::Result<Vec<u16>> {
    let held = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()?;
    held.iter().map(|l| Ok(l.local_addr()?.port())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_free_and_below_the_ephemeral_range() {
        let a = free_peer_ports(6).expect("ports");
        let b = free_peer_ports(6).expect("ports");
        let all: std::collections::BTreeSet<u16> = a.iter().chain(&b).copied().collect();
        assert_eq!(all.len(), 12, "{a:?} {b:?}");
        for p in &all {
            assert!(u32::from(*p) < ephemeral_start(), "{p}");
            TcpListener::bind(("127.0.0.1", *p)).expect("still free");
        }
    }
}
