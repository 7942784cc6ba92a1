#!/usr/bin/env python3
"""hearth's side of the FILESYSTEM restart comparison, measured like Spark's in
spark_failover.py: one `hearth master --recovery-mode filesystem` and one worker with a
running app; each round SIGKILLs the master, restarts it on its directory and times (a)
until its /json answers, (b) until it is ALIVE with the worker back. Prints a table and
one JSON line with the same keys as Spark's FILESYSTEM measures (hearth_fs_...).

    python3 peer-bench/hearth_fs_restart.py --hearth target/release/hearth --rounds 3
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

DEADLINE_S = 60.0


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def get_json(url, timeout=0.5):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return json.load(r)
    except Exception:
        return None


def wait(what, cond, start, poll=0.005):
    while True:
        v = cond()
        if v:
            return (time.monotonic() - start) * 1000.0
        if time.monotonic() - start > DEADLINE_S:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(poll)


def quantiles(xs):
    xs = sorted(xs)
    return {"n": len(xs), "p50": xs[len(xs) // 2], "max": xs[-1], "samples": xs}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hearth", required=True, help="path to the hearth binary")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="hearth-fs-restart-")
    grpc, http = free_port(), free_port()
    url = f"http://127.0.0.1:{http}/json"
    masters = f"hearth://127.0.0.1:{grpc}"
    master_args = [a.hearth, "master", "--port", str(grpc), "--http-port", str(http),
                   "--recovery-mode", "filesystem", "--recovery-dir", f"{work}/rec",
                   "--worker-timeout", "60s"]
    logs = open(f"{work}/master.log", "ab")
    procs = []

    def start_master():
        return subprocess.Popen(master_args, stdout=subprocess.DEVNULL, stderr=logs)

    try:
        m = start_master()
        procs.append(m)
        w = subprocess.Popen([a.hearth, "worker", "--masters", masters, "--cores", "2",
                              "--memory", "2g", "--work-dir", f"{work}/w",
                              "--heartbeat-interval", "15s"],
                             stdout=subprocess.DEVNULL, stderr=open(f"{work}/worker.log", "ab"))
        procs.append(w)
        t = time.monotonic()
        wait("the master ALIVE with its worker", lambda: (j := get_json(url)) and
             j.get("status") == "ALIVE" and j.get("aliveworkers") == 1, t)
        subprocess.run([a.hearth, "submit", "--master", masters, "--deploy-mode", "cluster",
                        "--driver-memory", "64m", "--executor-memory", "64m",
                        "--executor-cores", "1", "--total-executor-cores", "1",
                        "--executor-command", "exec sleep 100000", "--",
                        "sh", "-c", "exec sleep 100000"],
                       check=True, stdout=subprocess.DEVNULL)
        up, alive = [], []
        for r in range(1, a.rounds + 1):
            m.send_signal(signal.SIGKILL)
            m.wait()
            start = time.monotonic()
            m = start_master()
            procs.append(m)
            up.append(wait("/json answers", lambda: get_json(url) is not None, start))
            alive.append(wait("ALIVE with the worker back", lambda: (j := get_json(url))
                              and j.get("status") == "ALIVE" and j.get("aliveworkers") == 1,
                              start))
            print(f"  round {r}/{a.rounds}: SIGKILL + restart -> /json answers {up[-1]:8.1f} ms,"
                  f" ALIVE with the worker back {alive[-1]:8.1f} ms")
        out = {"bench": "hearth-fs-restart", "rounds": a.rounds,
               "hearth_fs_restart_ui_up_ms": quantiles(up),
               "hearth_fs_restart_to_alive_ms": quantiles(alive)}
        print(f"hearth FILESYSTEM restart (ms): /json answers p50 {out['hearth_fs_restart_ui_up_ms']['p50']:.1f}"
              f" max {max(up):.1f}; ALIVE with the worker back p50"
              f" {out['hearth_fs_restart_to_alive_ms']['p50']:.1f} max {max(alive):.1f}")
        print(json.dumps(out))
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        if os.environ.get("KEEP") != "1":
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
