#!/usr/bin/env python3
"""Plots bench-scale's curve: failover time and leader RSS against N simulated workers.

Usage: plot.py OUT.png RUN.json [RUN.json ...]
Each RUN.json is the one JSON object `bench-scale --json` printed for one N. Needs
matplotlib (e.g. `python3 -m venv ~/.cache/scale-plot-venv && ~/.cache/scale-plot-venv/bin/pip
install matplotlib`); it is not part of any build.
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out, files = sys.argv[1], sys.argv[2:]
    runs = sorted((json.load(open(f)) for f in files), key=lambda r: r["workers"])
    n = [r["workers"] for r in runs]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
    a.plot(n, [r["failover_p50_ms"] for r in runs], "o-", label="p50")
    a.plot(n, [r["failover_p99_ms"] for r in runs], "s--", label="p99")
    a.plot(n, [r["alive_p50_ms"] for r in runs], "^:", label="ALIVE p50 (/readyz)")
    a.set_title("leader SIGKILL -> new leader ALIVE, every worker back")
    a.set_ylabel("ms")
    b.plot(n, [r["leader_rss_mb"] for r in runs], "o-", label="leader, steady state")
    b.plot(n, [r["workers_rss_mb"] for r in runs], "s--", label="leader, workers only")
    b.plot(n, [r["leader_follower_rss_mb"] for r in runs], "^:", label="follower, steady state")
    b.set_title("master RSS")
    b.set_ylabel("MB")
    for ax in (a, b):
        ax.set_xscale("log")
        ax.minorticks_off()
        ax.set_xticks(n)
        ax.set_xticklabels([f"{x:,}" for x in n])
        ax.set_xlabel("simulated workers (executors: %s)" % ", ".join(
            sorted({f"{r['executors']:,}" for r in runs})))
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend()
    args = " ".join(runs[0].get("master_args", [])) or "default Raft timings"
    fig.suptitle(f"hearth bench-scale: 3 Raft masters (fsync), one 2-core machine\n{args}")
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    main()
