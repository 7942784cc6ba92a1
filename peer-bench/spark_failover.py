#!/usr/bin/env python3
"""Peer harness: how long Apache Spark's standalone master takes to fail over.

Measures, on loopback only:

* ZOOKEEPER recovery: ZooKeeper, two Spark masters and one worker. Each round SIGKILLs the
  ALIVE master's JVM and times, from the kill, the standby's `/json/` leaving STANDBY
  (elected), saying ALIVE, and listing the worker ALIVE. The killed master is then
  restarted as the new standby.
* FILESYSTEM recovery: one master with a recovery directory and one worker. Each round
  SIGKILLs the master, restarts it at once, and times, from the restart, its `/json/`
  answering, saying ALIVE, and listing the worker ALIVE.

Then, given `--hearth-json FILE` (the final JSON line of hearth's
`cargo run --release -p hearth-tests --bin bench-failover`), prints hearth's matching
figures beside Spark's with the ratio Spark/hearth.

Python 3 standard library only. `run.sh` beside this file installs pyspark (which ships
the standalone Master and Worker) in its own virtualenv and ZooKeeper from Debian, then
runs this script; see README.md.
"""

import argparse
import atexit
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

# --------------------------------------------------------------------------------------
# Process bookkeeping: everything started here is killed on exit, Ctrl-C or error.

PROCS = []  # (name, Popen)


def log(msg):
    print(msg, flush=True)


def start(name, argv, logfile, env=None, cwd=None):
    """Starts argv in its own process group, stdout+stderr appended to logfile."""
    out = open(logfile, "ab")
    out.write(("\n==== %s  %s\n" % (time.strftime("%H:%M:%S"), " ".join(argv))).encode())
    out.flush()
    p = subprocess.Popen(
        argv,
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        cwd=cwd,
        start_new_session=True,
    )
    out.close()
    PROCS.append((name, p))
    return p


def kill(p, sig=signal.SIGKILL):
    """Sends sig to p's process group (p leads it: start_new_session), then reaps p."""
    if p.poll() is None:
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            pass
        except PermissionError:
            p.send_signal(sig)
    else:
        # p is gone; a child it left in its group may not be.
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    try:
        p.wait(timeout=20)
    except subprocess.TimeoutExpired:
        return
    for i, (_, q) in enumerate(PROCS):
        if q is p:
            del PROCS[i]
            break


def kill_all():
    while PROCS:
        _, p = PROCS.pop()
        kill(p)


def on_signal(signum, _frame):
    kill_all()
    log("\ninterrupted (signal %d): every process started here was killed" % signum)
    os._exit(128 + signum)


# --------------------------------------------------------------------------------------
# Small helpers


class Timeout(Exception):
    pass


def free_ports(n):
    """n distinct free TCP ports on 127.0.0.1 (the kernel's picks, released at once)."""
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def get_json(url, timeout=1.0):
    """The JSON at url, or None when it does not answer (yet)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return json.loads(r.read().decode("utf-8", "replace"))
    except Exception:
        return None


def until(what, deadline_s, poll_s, f, proc=None):
    """Calls f every poll_s until it returns a true value; Timeout after deadline_s.

    proc: a process that must stay alive meanwhile (its death ends the wait at once).
    """
    t0 = time.monotonic()
    while True:
        v = f()
        if v:
            return v
        if proc is not None and proc.poll() is not None:
            name = next((n for n, q in PROCS if q is proc), "a process")
            raise RuntimeError("%s exited (code %s) while waiting for %s" % (name, proc.returncode, what))
        if time.monotonic() - t0 > deadline_s:
            raise Timeout("timed out after %.0f s waiting for %s" % (deadline_s, what))
        time.sleep(poll_s)


def pct(sorted_vals, p):
    """Nearest-rank percentile of sorted values (the rule hearth's benchmark uses)."""
    n = len(sorted_vals)
    rank = min(max(int(math.ceil(p * n)), 1), n)
    return sorted_vals[rank - 1]


def dist(values):
    v = sorted(values)
    if not v:
        return {"n": 0}
    return {
        "n": len(v),
        "p50_ms": round(pct(v, 0.50), 1),
        "p99_ms": round(pct(v, 0.99), 1),
        "max_ms": round(v[-1], 1),
        "samples_ms": [round(x, 1) for x in values],
    }


def worker_alive(j, worker_port):
    """True when master JSON j lists our worker (by port) as ALIVE."""
    for w in (j or {}).get("workers", []) or []:
        if int(w.get("port", -1)) == worker_port and w.get("state") == "ALIVE":
            return True
    return False


def status(j):
    return (j or {}).get("status")


# --------------------------------------------------------------------------------------
# Versions


def java_version(java):
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
        first = (out.stderr or out.stdout).strip().splitlines()[0]
        return first
    except Exception as e:  # noqa: BLE001
        return "unknown (%s)" % e


def spark_version(spark_home):
    for name in os.listdir(os.path.join(spark_home, "jars")):
        m = re.match(r"spark-core_[0-9.]+-(.+)\.jar$", name)
        if m:
            return m.group(1)
    return "unknown"


def debian_version(package):
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True, timeout=30)
        return out.stdout.strip() if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def zk_version_srvr(port):
    """ZooKeeper's own version, from its 'srvr' four-letter command."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(b"srvr")
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        text = data.decode("utf-8", "replace")
        m = re.search(r"Zookeeper version:\s*(.+)", text)
        return m.group(1).strip() if m else None
    except OSError:
        return None


# --------------------------------------------------------------------------------------
# The cluster pieces


class Env:
    def __init__(self, args):
        self.args = args
        self.spark_home = args.spark_home
        self.java_home = args.java_home
        self.work = args.work_dir
        self.poll = args.poll_ms / 1000.0
        self.deadline = args.deadline
        self.spark_class = os.path.join(self.spark_home, "bin", "spark-class")
        self.java = os.path.join(self.java_home, "bin", "java") if self.java_home else "java"
        conf = os.path.join(self.work, "conf")
        os.makedirs(conf, exist_ok=True)
        self.env = dict(os.environ)
        self.env.update(
            {
                "SPARK_HOME": self.spark_home,
                "SPARK_CONF_DIR": conf,  # empty: nothing from elsewhere leaks in
                "SPARK_LOCAL_IP": "127.0.0.1",
                "SPARK_LOCAL_HOSTNAME": "127.0.0.1",
                "SPARK_LOG_DIR": os.path.join(self.work, "logs"),
                "SPARK_PID_DIR": os.path.join(self.work, "pids"),
            }
        )
        if self.java_home:
            self.env["JAVA_HOME"] = self.java_home
        for k in ("SPARK_MASTER_OPTS", "SPARK_WORKER_OPTS", "SPARK_DAEMON_JAVA_OPTS", "PYSPARK_PYTHON"):
            self.env.pop(k, None)
        os.makedirs(os.path.join(self.work, "logs"), exist_ok=True)

    def logfile(self, name):
        return os.path.join(self.work, "logs", name + ".log")


class ZooKeeper:
    def __init__(self, env, classpath, port, tick_ms):
        self.env, self.port = env, port
        d = os.path.join(env.work, "zookeeper")
        os.makedirs(os.path.join(d, "data"), exist_ok=True)
        self.cfg = os.path.join(d, "zoo.cfg")
        with open(self.cfg, "w") as f:
            f.write(
                "tickTime=%d\n"
                "dataDir=%s\n"
                "clientPort=%d\n"
                "clientPortAddress=127.0.0.1\n"
                "admin.enableServer=false\n"
                "4lw.commands.whitelist=srvr,ruok\n" % (tick_ms, os.path.join(d, "data"), port)
            )
        self.classpath = classpath
        self.proc = None

    def start(self):
        argv = [
            self.env.java,
            "-Xmx256m",
            "-Dzookeeper.log.dir=" + os.path.join(self.env.work, "logs"),
            "-cp",
            self.classpath,
            "org.apache.zookeeper.server.ZooKeeperServerMain",
            self.cfg,
        ]
        self.proc = start("zookeeper", argv, self.env.logfile("zookeeper"), env=self.env.env)
        until(
            "ZooKeeper on 127.0.0.1:%d" % self.port,
            self.env.deadline,
            self.env.poll,
            lambda: zk_version_srvr(self.port),
            proc=self.proc,
        )
        return zk_version_srvr(self.port)


class Master:
    def __init__(self, env, name, props):
        self.env, self.name = env, name
        self.port, self.ui = free_ports(2)
        self.props_file = os.path.join(env.work, "conf", name + ".properties")
        props = dict(props)
        props.setdefault("spark.master.rest.enabled", "false")
        with open(self.props_file, "w") as f:
            for k, v in props.items():
                f.write("%s=%s\n" % (k, v))
        self.proc = None

    @property
    def url(self):
        return "127.0.0.1:%d" % self.port

    @property
    def json_url(self):
        return "http://127.0.0.1:%d/json/" % self.ui

    def start(self):
        argv = [
            self.env.spark_class,
            "org.apache.spark.deploy.master.Master",
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--webui-port", str(self.ui),
            "--properties-file", self.props_file,
        ]
        self.proc = start(self.name, argv, self.env.logfile(self.name), env=self.env.env)
        return self.proc

    def json(self):
        return get_json(self.json_url)

    def sigkill(self):
        """SIGKILLs the master's JVM (spark-class execs java, so it is our child itself)."""
        p = self.proc
        try:
            with open("/proc/%d/cmdline" % p.pid, "rb") as f:
                cmd = f.read().split(b"\0")
            if not cmd or not os.path.basename(cmd[0].decode()).startswith("java"):
                log("warning: %s's pid %d runs %r, not java" % (self.name, p.pid, cmd[:1]))
        except OSError:
            pass
        os.kill(p.pid, signal.SIGKILL)
        # Reap it (and anything it left in its group) off the clock.
        return p


class Worker:
    def __init__(self, env, name, master_urls):
        self.env, self.name = env, name
        self.port, self.ui = free_ports(2)
        self.master = "spark://" + ",".join(master_urls)
        self.dir = os.path.join(env.work, name)
        os.makedirs(self.dir, exist_ok=True)
        self.proc = None

    def start(self):
        argv = [
            self.env.spark_class,
            "org.apache.spark.deploy.worker.Worker",
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--webui-port", str(self.ui),
            "--cores", "1",
            "--memory", "512m",
            "--work-dir", self.dir,
            self.master,
        ]
        self.proc = start(self.name, argv, self.env.logfile(self.name), env=self.env.env)
        return self.proc


# --------------------------------------------------------------------------------------
# The measurements


def poll_after(env, t0, master, worker_port, deadline=None):
    """Polls master's /json from t0 on; returns ms (from t0) to its first answer ("ui"),
    its status leaving STANDBY ("leading": RECOVERING or ALIVE), ALIVE ("alive"), and our
    worker ALIVE in its list while it leads ("worker"). Each is the time an answer showing
    it arrived, so each is late by at most one poll period plus one HTTP round trip."""
    deadline = deadline or env.deadline
    got = {}
    while True:
        j = master.json()
        now = time.monotonic()
        ms = (now - t0) * 1000.0
        if j is not None:
            got.setdefault("ui", ms)
            st = status(j)
            if st and st != "STANDBY":
                got.setdefault("leading", ms)
            if st == "ALIVE":
                got.setdefault("alive", ms)
            if st and st != "STANDBY" and worker_alive(j, worker_port):
                got.setdefault("worker", ms)
        if "alive" in got and "worker" in got:
            return got
        if master.proc.poll() is not None:
            raise RuntimeError(
                "%s exited (code %s) during the measurement; see %s"
                % (master.name, master.proc.returncode, env.logfile(master.name))
            )
        if now - t0 > deadline:
            raise Timeout(
                "%s: no ALIVE status with the worker within %.0f s (got %s, last status %s)"
                % (master.name, deadline, sorted(got), status(j))
            )
        time.sleep(env.poll)


def wait_state(env, master, want_status, worker_port=None, what=None):
    def ok():
        j = master.json()
        if status(j) != want_status:
            return None
        if worker_port is not None and not worker_alive(j, worker_port):
            return None
        return j

    return until(
        what or "%s %s" % (master.name, want_status), env.deadline, env.poll, ok, proc=master.proc
    )


def run_zookeeper(env, zk_classpath, results):
    args = env.args
    (zk_port,) = free_ports(1)
    zk = ZooKeeper(env, zk_classpath, zk_port, args.zk_tick_ms)
    zk_ver = zk.start()
    if zk_classpath.startswith("/usr/share/java/zookeeper"):
        deb = debian_version("zookeeper")
        if deb:
            zk_ver = "%s (Debian package zookeeper %s)" % (zk_ver.split("-")[0].split(",")[0], deb)
    log("ZooKeeper %s on 127.0.0.1:%d (tickTime %d ms: sessions time out after at most %d ms)"
        % (zk_ver, zk_port, args.zk_tick_ms, 20 * args.zk_tick_ms))
    results["zookeeper_version"] = zk_ver
    results["zk_tick_ms"] = args.zk_tick_ms
    props = {
        "spark.deploy.recoveryMode": "ZOOKEEPER",
        "spark.deploy.zookeeper.url": "127.0.0.1:%d" % zk_port,
        "spark.deploy.zookeeper.dir": "/spark-peer-bench",
    }
    masters = [Master(env, "zk-master1", props), Master(env, "zk-master2", props)]
    worker = Worker(env, "zk-worker", [m.url for m in masters])

    t = time.monotonic()
    masters[0].start()
    wait_state(env, masters[0], "ALIVE", what="zk-master1 ALIVE (first leader)")
    masters[1].start()
    wait_state(env, masters[1], "STANDBY", what="zk-master2 STANDBY")
    worker.start()
    wait_state(env, masters[0], "ALIVE", worker.port, what="the worker registered on zk-master1")
    log("ZOOKEEPER mode up in %.1f s: leader zk-master1 (%s), standby zk-master2 (%s), worker %s"
        % (time.monotonic() - t, masters[0].json_url, masters[1].json_url, worker.master))

    leader, standby = 0, 1
    leading, alive, back = [], [], []
    for r in range(1, args.rounds + 1):
        old, new = masters[leader], masters[standby]
        # Preconditions: old ALIVE with the worker, new STANDBY.
        wait_state(env, old, "ALIVE", worker.port, what="%s ALIVE with the worker" % old.name)
        wait_state(env, new, "STANDBY", what="%s STANDBY" % new.name)
        t0 = time.monotonic()
        p = old.sigkill()
        got = poll_after(env, t0, new, worker.port)
        kill(p)  # reap
        leading.append(got.get("leading", got["alive"]))
        alive.append(got["alive"])
        back.append(got["worker"])
        log("  round %d/%d: SIGKILL %s -> %s leading %7.0f ms, ALIVE %7.0f ms, worker ALIVE on it %7.0f ms"
            % (r, args.rounds, old.name, new.name, leading[-1], alive[-1], back[-1]))
        # The killed master comes back as the standby.
        t1 = time.monotonic()
        old.start()
        wait_state(env, old, "STANDBY", what="restarted %s STANDBY" % old.name)
        log("           %s restarted as STANDBY in %.1f s" % (old.name, time.monotonic() - t1))
        leader, standby = standby, leader

    for m in masters:
        kill(m.proc)
    kill(worker.proc)
    kill(zk.proc)
    results["spark_zk_leading_ms"] = dist(leading)
    results["spark_zk_to_alive_ms"] = dist(alive)
    results["spark_zk_worker_back_ms"] = dist(back)


def run_filesystem(env, results):
    args = env.args
    rec = os.path.join(env.work, "fs-recovery")
    os.makedirs(rec, exist_ok=True)
    props = {
        "spark.deploy.recoveryMode": "FILESYSTEM",
        "spark.deploy.recoveryDirectory": rec,
    }
    m = Master(env, "fs-master", props)
    worker = Worker(env, "fs-worker", [m.url])
    t = time.monotonic()
    m.start()
    wait_state(env, m, "ALIVE", what="fs-master ALIVE")
    worker.start()
    wait_state(env, m, "ALIVE", worker.port, what="the worker registered on fs-master")
    log("FILESYSTEM mode up in %.1f s: master %s, recovery dir %s" % (time.monotonic() - t, m.json_url, rec))

    ui, alive, back = [], [], []
    for r in range(1, args.rounds + 1):
        wait_state(env, m, "ALIVE", worker.port, what="fs-master ALIVE with the worker")
        p = m.sigkill()
        kill(p)  # reaped before the restart: the restart is the clock's start
        t0 = time.monotonic()
        m.start()
        got = poll_after(env, t0, m, worker.port)
        ui.append(got["ui"])
        alive.append(got["alive"])
        back.append(got["worker"])
        log("  round %d/%d: SIGKILL + restart fs-master -> /json answers %7.0f ms, ALIVE %7.0f ms, worker ALIVE %7.0f ms"
            % (r, args.rounds, ui[-1], alive[-1], back[-1]))

    kill(m.proc)
    kill(worker.proc)
    results["spark_fs_restart_ui_up_ms"] = dist(ui)
    results["spark_fs_restart_to_alive_ms"] = dist(alive)
    results["spark_fs_restart_worker_back_ms"] = dist(back)


# --------------------------------------------------------------------------------------
# hearth's figures

LABELS = {
    "spark_zk_leading_ms": "ZK: kill leader -> standby leading",
    "spark_zk_to_alive_ms": "ZK: kill leader -> standby ALIVE",
    "spark_zk_worker_back_ms": "ZK: kill leader -> worker back on new leader",
    "spark_fs_restart_ui_up_ms": "FS: restart -> /json answers",
    "spark_fs_restart_to_alive_ms": "FS: restart -> ALIVE",
    "spark_fs_restart_worker_back_ms": "FS: restart -> worker ALIVE",
}

# For each Spark measure, hearth keys that mean the same thing, best first. A candidate
# matches a hearth distribution whose dotted path ends with it (e.g. "failover.alive").
# A failover in hearth (Raft) is compared with Spark's ZooKeeper failover; hearth's
# restart figures with Spark's FILESYSTEM restart.
HEARTH_CANDIDATES = {
    "spark_zk_leading_ms": ["failover.leading", "leading", "elected", "to_leader"],
    "spark_zk_to_alive_ms": ["failover.to_alive", "failover.alive", "to_alive", "to_alive_ms", "alive", "alive_ms"],
    "spark_zk_worker_back_ms": ["failover.workers_back", "workers_back", "worker_back", "workers_back_ms", "worker_back_ms"],
    "spark_fs_restart_ui_up_ms": ["restart_ui_up", "restart.ui_up"],
    "spark_fs_restart_to_alive_ms": ["restart_to_alive", "restart.to_alive", "restart.alive", "restart_to_alive_ms"],
    "spark_fs_restart_worker_back_ms": ["restart_worker_back", "restart.workers_back", "restart.worker_back", "restart_workers_back"],
}


def load_json_lenient(path):
    """A JSON object from path: the whole file, or else its last line that is one (so a
    saved copy of bench-failover's whole output works too)."""
    with open(path) as f:
        text = f.read()
    try:
        v = json.loads(text)
        if isinstance(v, dict):
            return v
    except ValueError:
        pass
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                v = json.loads(line)
                if isinstance(v, dict):
                    return v
            except ValueError:
                continue
    raise ValueError("%s holds no JSON object" % path)


def _num(d, *keys):
    for k in keys:
        if isinstance(d.get(k), (int, float)):
            return float(d[k])
    return None


def distributions(obj, prefix=""):
    """{dotted.path: {"p50": ms, "p99": ms or None, "max": ms or None, "n": n or None}} for
    every object in obj that has a p50 (keys p50_ms / p50; values in ms)."""
    out = {}
    if isinstance(obj, dict):
        p50 = _num(obj, "p50_ms", "p50")
        if p50 is not None:
            out[prefix] = {
                "p50": p50,
                "p99": _num(obj, "p99_ms", "p99"),
                "max": _num(obj, "max_ms", "max"),
                "n": _num(obj, "n", "count"),
            }
        for k, v in obj.items():
            out.update(distributions(v, "%s.%s" % (prefix, k) if prefix else str(k)))
    return out


def match_hearth(hearth, explicit):
    """{spark_key: hearth_path} for every Spark measure with a matching hearth figure."""
    m = {}
    for key, cands in HEARTH_CANDIDATES.items():
        if key in explicit:
            if explicit[key] in hearth:
                m[key] = explicit[key]
            continue
        fs = key.startswith("spark_fs_")
        for c in cands:
            hits = [
                p for p in hearth
                if (p == c or p.endswith("." + c))
                and (fs or not re.search(r"restart|rejoin|commit", p))
            ]
            if hits:
                m[key] = sorted(hits, key=len)[0]
                break
    return m


# --------------------------------------------------------------------------------------
# Output


def fmt(x):
    if x is None:
        return "-"
    return "%.0f" % x if x >= 100 else "%.1f" % x


def print_tables(results, hearth, matches):
    log("")
    log("Spark %s standalone, %d round(s) per mode, /json polled every %d ms (ms):"
        % (results["spark_version"], results["rounds"], results["poll_ms"]))
    hdr = "  %-44s %9s %9s %4s" % ("measure", "p50", "max", "n")
    log(hdr)
    for key, label in LABELS.items():
        d = results.get(key)
        if not d:
            continue
        log("  %-44s %9s %9s %4d" % (label, fmt(d.get("p50_ms")), fmt(d.get("max_ms")), d.get("n", 0)))

    if hearth is None:
        log("")
        log("No hearth figures given. To compare, run hearth's benchmark from the repository root:")
        log("  cargo run --release -p hearth-tests --bin bench-failover -- --skip-commit 1 | tee hearth-bench.log")
        log("then pass its output (the final JSON line is read): --hearth-json hearth-bench.log")
        log("(peer-bench/run.sh --hearth-json FILE, or peer-bench/run.sh --with-hearth to run both).")
        return {}

    log("")
    log("Spark vs hearth (ms; ratio = Spark p50 / hearth p50):")
    log("  %-44s %9s %9s | %-24s %9s %9s | %8s" % ("measure", "Spark p50", "max", "hearth key", "p50", "p99", "ratio"))
    ratios = {}
    for key, label in LABELS.items():
        d = results.get(key)
        if not d or key not in matches:
            continue
        path = matches[key]
        h = hearth[path]
        ratio = d["p50_ms"] / h["p50"] if h["p50"] and h["p50"] > 0 else None
        if ratio is not None:
            ratios[key] = {"hearth_key": path, "spark_p50_ms": d["p50_ms"], "hearth_p50_ms": h["p50"],
                           "hearth_p99_ms": h["p99"], "ratio_p50": round(ratio, 1)}
        log("  %-44s %9s %9s | %-24s %9s %9s | %8s"
            % (label[:44], fmt(d["p50_ms"]), fmt(d["max_ms"]), path[:24], fmt(h["p50"]), fmt(h["p99"]),
               ("%.1fx" % ratio) if ratio is not None else "-"))
    unmatched = [k for k in LABELS if k in results and k not in matches]
    if unmatched:
        log("  (no hearth figure matched: %s)" % ", ".join(unmatched))
    others = [p for p in sorted(hearth) if p not in matches.values()]
    if others:
        log("")
        log("hearth's other figures (ms):")
        for p in others:
            h = hearth[p]
            log("  %-52s p50 %9s  p99 %9s  max %9s" % (p, fmt(h["p50"]), fmt(h["p99"]), fmt(h["max"])))
    return ratios


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spark-home", help="Spark's home (default: the pyspark package of this Python)")
    ap.add_argument("--java-home", default=os.environ.get("JAVA_HOME"), help="Java 17+ (default: $JAVA_HOME, else java on PATH)")
    ap.add_argument("--zk-classpath", default=None,
                    help="classpath of a ZooKeeper server (default: Debian's /usr/share/java/zookeeper.jar, "
                         "else the ZooKeeper jars that ship with Spark)")
    ap.add_argument("--rounds", type=int, default=3, help="kills per mode (default 3)")
    ap.add_argument("--modes", default="zk,fs", help="zk, fs or zk,fs (default)")
    ap.add_argument("--deadline", type=float, default=180.0, help="seconds allowed for any one wait (default 180)")
    ap.add_argument("--poll-ms", type=int, default=50, help="/json poll period (default 50 ms)")
    ap.add_argument("--zk-tick-ms", type=int, default=2000,
                    help="ZooKeeper tickTime (default 2000, ZooKeeper's and Debian's; the server caps sessions at 20 ticks)")
    ap.add_argument("--work-dir", help="logs and state (default: a new directory under $TMPDIR)")
    ap.add_argument("--hearth-json", action="append", default=[],
                    help="hearth's figures: bench-failover's final JSON line (or its whole output); repeatable")
    ap.add_argument("--map", action="append", default=[], metavar="SPARK_KEY=HEARTH.PATH",
                    help="pair a Spark measure with a hearth figure explicitly, e.g. spark_zk_to_alive_ms=failover.alive")
    ap.add_argument("--json-out", help="also write the JSON result to this file")
    ap.add_argument("--from-result", metavar="FILE",
                    help="measure nothing: reprint a saved result (result.json) beside --hearth-json")
    args = ap.parse_args()

    # hearth's file first: a bad file should fail before minutes of Spark.
    hearth = None
    if args.hearth_json:
        hearth = {}
        for path in args.hearth_json:
            hearth.update(distributions(load_json_lenient(path)))
        if not hearth:
            sys.exit("error: %s: no distribution (an object with p50_ms) found" % ", ".join(args.hearth_json))
    explicit = {}
    for kv in args.map:
        k, _, v = kv.partition("=")
        if k not in LABELS:
            sys.exit("error: --map %s: Spark keys are %s" % (kv, ", ".join(LABELS)))
        explicit[k] = v

    if args.from_result:
        results = load_json_lenient(args.from_result)
        results.pop("vs_hearth", None)
        matches = match_hearth(hearth, explicit) if hearth is not None else {}
        ratios = print_tables(results, hearth, matches)
        if ratios:
            results["vs_hearth"] = ratios
        print(json.dumps(results), flush=True)
        return 0

    if not args.spark_home:
        try:
            import pyspark  # noqa: F401  (only to find its directory)
            args.spark_home = os.path.dirname(os.path.abspath(pyspark.__file__))
        except ImportError:
            sys.exit("error: no --spark-home and pyspark is not importable (run peer-bench/run.sh)")
    if not os.path.exists(os.path.join(args.spark_home, "bin", "spark-class")):
        sys.exit("error: %s/bin/spark-class not found" % args.spark_home)
    if args.zk_classpath is None:
        deb = "/usr/share/java/zookeeper.jar"
        if os.path.exists(deb):
            # Its manifest's Class-Path names Debian's netty, jute, slf4j... jars.
            args.zk_classpath = deb
        else:
            jars = os.path.join(args.spark_home, "jars")
            args.zk_classpath = os.path.join(jars, "*")
            log("note: Debian's ZooKeeper not found; running the ZooKeeper server classes that ship with Spark")
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for m in modes:
        if m not in ("zk", "fs"):
            sys.exit("error: unknown mode %r" % m)
    if not args.work_dir:
        args.work_dir = tempfile.mkdtemp(prefix="spark-peer-bench-")
    args.work_dir = os.path.abspath(args.work_dir)
    os.makedirs(args.work_dir, exist_ok=True)

    atexit.register(kill_all)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    env = Env(args)
    results = {
        "bench": "spark-standalone-failover",
        "spark_version": spark_version(args.spark_home),
        "java": java_version(env.java),
        "rounds": args.rounds,
        "poll_ms": args.poll_ms,
        "deadline_s": args.deadline,
    }
    log("Spark %s from %s" % (results["spark_version"], args.spark_home))
    log("Java: %s (%s)" % (results["java"], env.java))
    log("work dir (Spark, worker and ZooKeeper logs in logs/): %s" % args.work_dir)
    t_all = time.monotonic()
    ok = True
    try:
        if "zk" in modes:
            log("")
            log("== ZOOKEEPER recovery: 2 masters + 1 worker; SIGKILL the ALIVE master, time the standby")
            run_zookeeper(env, args.zk_classpath, results)
        if "fs" in modes:
            log("")
            log("== FILESYSTEM recovery: 1 master + 1 worker; SIGKILL the master, restart it, time it")
            run_filesystem(env, results)
    except (Timeout, RuntimeError) as e:
        ok = False
        log("error: %s" % e)
        log("logs: %s" % os.path.join(args.work_dir, "logs"))
    finally:
        kill_all()
    results["wall_s"] = round(time.monotonic() - t_all, 1)

    matches = match_hearth(hearth, explicit) if hearth is not None else {}
    ratios = print_tables(results, hearth, matches)
    if ratios:
        results["vs_hearth"] = ratios
    log("")
    log("measured in %.0f s; logs in %s" % (results["wall_s"], os.path.join(args.work_dir, "logs")))
    line = json.dumps(results, sort_keys=False)
    if args.json_out:
        with open(args.json_out, "w") as f:
            f.write(line + "\n")
    print(line, flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
