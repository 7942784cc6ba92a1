#!/usr/bin/env python3
"""Peer harness: the same Spark jobs on Spark standalone and on hearth, side by side.

Cluster managers, one at a time on this machine, same executor shape (2 workers of
2 cores / 2 GB, executors of 2 cores / 1 GB, spark.cores.max 4):

* Spark standalone with ZooKeeper recovery: one ZooKeeper, two Masters, two Workers, all
  started with `spark-class` as `spark_failover.py` starts them (its helpers are imported);
* hearth: `hearth local --workers 2` (3 Raft masters, 2 workers) and the hearth plugin jar
  on the driver's class path (`spark+hearth://...`).

Each round, on each cluster manager (the order alternates round by round), runs
`spark_jobs_driver.py` (a PySpark program started with plain `python`):

1. one driver that times its first executor, then runs `sum`, `wordcount` and the `slow`
   job undisturbed (the baseline);
2. one driver per kill scenario running only the `slow` job; ~3 s into it the harness
   SIGKILLs the leading master (`leader`), the leading master and one executor JVM
   (`leader+executor`), or the leading master and every executor JVM
   (`leader+executors`), at the same moment. The figure is the job's wall time minus
   the median baseline of that cluster manager.

Every result is checked: the sums exactly, wordcount's counts against a count made by
this script from the file. Python 3 standard library only. Start it with
`spark_jobs.sh` beside it (it finds Java, ZooKeeper, pyspark and the jar); see README.md.
"""

import argparse
import atexit
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the clone
import spark_failover as sf  # noqa: E402  (ZooKeeper, Master, Worker, start/kill, JSON polling)

log = sf.log
RUN_MARK = "SPARK_JOBS_RUN"  # every process started here carries it in its environment
SCENARIOS = ("leader", "leader+executor", "leader+executors")

# --------------------------------------------------------------------------------------
# Processes: sf.PROCS holds everything started here (process groups, killed at exit);
# sweep() also kills any process still carrying this run's mark in its environment (an
# executor a worker started in a group of its own, say).


def proc_argv(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return [a.decode("utf-8", "replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def all_pids():
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def ppid_of(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def descendants(root):
    """Every live descendant of root (a pid), from /proc."""
    children = {}
    for pid in all_pids():
        pp = ppid_of(pid)
        if pp is not None:
            children.setdefault(pp, []).append(pid)
    out, todo = [], [root]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def marked_pids(mark):
    me = os.getpid()
    needle = ("%s=%s" % (RUN_MARK, mark)).encode()
    out = []
    for pid in all_pids():
        if pid == me:
            continue
        try:
            with open("/proc/%d/environ" % pid, "rb") as f:
                if needle in f.read().split(b"\0"):
                    out.append(pid)
        except OSError:
            pass
    return out


MARK = None


def sweep(grace_s=5.0):
    """SIGKILLs every process of this run still alive (its environment has our mark) after
    grace_s for the ones already on their way out; returns what it killed."""
    if not MARK:
        return []
    t = time.monotonic()
    while marked_pids(MARK) and time.monotonic() - t < grace_s:
        time.sleep(0.2)
    names = []
    for _ in range(3):
        pids = marked_pids(MARK)
        if not pids:
            break
        for pid in pids:
            argv = proc_argv(pid)
            try:
                os.kill(pid, signal.SIGKILL)
                names.append("%d %s" % (pid, " ".join(argv)[:120]))
            except OSError:
                pass
        time.sleep(0.3)
    return names


def stop_everything():
    sf.kill_all()
    sweep(grace_s=1.0)


def on_signal(signum, _frame):
    stop_everything()
    log("\ninterrupted (signal %d): every process started here was killed" % signum)
    os._exit(128 + signum)


def executor_jvms(root_pids):
    """{executor id: pid} of the CoarseGrainedExecutorBackend JVMs under root_pids."""
    out = {}
    for root in root_pids:
        for pid in descendants(root):
            argv = proc_argv(pid)
            if "org.apache.spark.executor.CoarseGrainedExecutorBackend" in argv:
                eid = argv[argv.index("--executor-id") + 1] if "--executor-id" in argv else str(pid)
                out[eid] = pid
    return out


def by_executor_id(eids):
    return sorted(eids, key=lambda e: (0, int(e)) if e.isdigit() else (1, e))


# --------------------------------------------------------------------------------------
# Figures


def dist(values):
    v = sorted(x for x in values if x is not None)
    if not v:
        return {"n": 0}
    return {
        "n": len(v),
        "min_ms": round(v[0], 1),
        "p50_ms": round(sf.pct(v, 0.50), 1),
        "max_ms": round(v[-1], 1),
        "samples_ms": [round(x, 1) for x in values if x is not None],
    }


def median(values):
    v = sorted(values)
    return sf.pct(v, 0.5) if v else None


# --------------------------------------------------------------------------------------
# The text for wordcount: generated once (deterministic), counted once by this script.


def make_vocab(n):
    syl = [c + v for c in "bcdfghjklmnprstvwz" for v in "aeiou"]  # 90 syllables
    out = []
    for i in range(n):
        w, k = "", i
        for _ in range(2):
            w += syl[k % 90]
            k //= 90
        while k:
            w += syl[k % 90]
            k //= 90
        out.append(w)
    assert len(set(out)) == n
    return out


def words_file(data_dir, mb, seed):
    """(path, {word: count}) for a ~mb MB text; made and counted once, then reused."""
    os.makedirs(data_dir, exist_ok=True)
    path = os.path.join(data_dir, "words-%dMB-seed%d.txt" % (mb, seed))
    counts_path = path + ".counts.json"
    if os.path.exists(path) and os.path.exists(counts_path):
        with open(counts_path) as f:
            meta = json.load(f)
        if meta.get("size") == os.path.getsize(path):
            log("wordcount input: %s (%.1f MB, %d words, %d distinct; reused)"
                % (path, meta["size"] / 1e6, meta["total"], len(meta["counts"])))
            return path, meta["counts"]
    t = time.monotonic()
    rng = random.Random(seed)
    vocab = make_vocab(10000)
    cum, acc = [], 0.0
    for i in range(len(vocab)):
        acc += 1.0 / (i + 1)  # Zipf-like
        cum.append(acc)
    target = mb * 1_000_000
    tmp = path + ".tmp"
    size = 0
    with open(tmp, "w") as f:
        while size < target:
            lines = []
            for _ in range(2000):
                n = rng.randint(6, 18)
                lines.append(" ".join(rng.choices(vocab, cum_weights=cum, k=n)))
            chunk = "\n".join(lines) + "\n"
            f.write(chunk)
            size += len(chunk)
    # The independent count: read the file back, split on spaces.
    counts = Counter()
    with open(tmp) as f:
        for line in f:
            counts.update(line.split())
    size = os.path.getsize(tmp)
    os.replace(tmp, path)
    meta = {"size": size, "total": sum(counts.values()), "counts": dict(counts)}
    with open(counts_path, "w") as f:
        json.dump(meta, f)
    log("wordcount input: %s (%.1f MB, %d words, %d distinct; made and counted in %.0f s)"
        % (path, size / 1e6, meta["total"], len(counts), time.monotonic() - t))
    return path, meta["counts"]


# --------------------------------------------------------------------------------------
# Cluster managers. Each: start(), ready() (idle, leader known, both workers ALIVE),
# master_conf() (driver confs), prepare_kill(scenario) -> kill() callable, after_kill(),
# stop().


class SparkStandalone:
    name = "spark"
    label = "Spark standalone + ZooKeeper"

    def __init__(self, args, work):
        ns = argparse.Namespace(spark_home=args.spark_home, java_home=args.java_home, work_dir=work,
                                poll_ms=50, deadline=args.deadline)
        self.args = args
        self.env = sf.Env(ns)
        self.zk = None
        self.masters, self.workers = [], []
        self.killed = None  # the master killed in this round (restarted in after_kill)

    def start(self):
        a, env = self.args, self.env
        t = time.monotonic()
        (zk_port,) = sf.free_ports(1)
        self.zk = sf.ZooKeeper(env, a.zk_classpath, zk_port, a.zk_tick_ms)
        self.zk_version = self.zk.start()
        if a.zk_classpath.startswith("/usr/share/java/zookeeper"):
            deb = sf.debian_version("zookeeper")
            if deb and self.zk_version:
                self.zk_version = "%s (Debian package zookeeper %s)" % (self.zk_version.split("-")[0].split(",")[0], deb)
        props = {
            "spark.deploy.recoveryMode": "ZOOKEEPER",
            "spark.deploy.zookeeper.url": "127.0.0.1:%d" % zk_port,
            "spark.deploy.zookeeper.dir": "/spark-jobs-bench",
        }
        self.masters = [sf.Master(env, "master1", props), sf.Master(env, "master2", props)]
        self.workers = [JobWorker(env, "worker%d" % i, [m.url for m in self.masters], a.worker_cores,
                                  a.worker_memory) for i in (1, 2)]
        self.masters[0].start()
        sf.wait_state(env, self.masters[0], "ALIVE", what="master1 ALIVE")
        self.masters[1].start()
        sf.wait_state(env, self.masters[1], "STANDBY", what="master2 STANDBY")
        for w in self.workers:
            w.start()
        self.ready()
        log("  Spark up in %.1f s: ZooKeeper 127.0.0.1:%d (tickTime %d ms), masters %s, 2 workers"
            % (time.monotonic() - t, zk_port, a.zk_tick_ms, self.master_url()))

    def master_url(self):
        return "spark://" + ",".join(m.url for m in self.masters)

    def master_conf(self):
        return {"spark.master": self.master_url()}

    def _state(self):
        """(alive master, standby master) when the cluster is ready and idle, else None."""
        js = [(m, m.json()) for m in self.masters]
        alive = [(m, j) for m, j in js if sf.status(j) == "ALIVE"]
        standby = [m for m, j in js if sf.status(j) == "STANDBY"]
        if len(alive) != 1 or len(standby) != 1:
            return None
        m, j = alive[0]
        if not all(sf.worker_alive(j, w.port) for w in self.workers):
            return None
        if j.get("activeapps"):
            return None
        if any(int(w.get("coresused", 0)) for w in j.get("workers", []) if w.get("state") == "ALIVE"):
            return None
        return m, standby[0]

    def ready(self):
        for p in [m.proc for m in self.masters] + [w.proc for w in self.workers] + [self.zk.proc]:
            if p is None or p.poll() is not None:
                raise RuntimeError("a Spark process exited; see %s" % os.path.join(self.env.work, "logs"))
        t = time.monotonic()
        st = sf.until("Spark: one master ALIVE with both workers and no app, the other STANDBY",
                      self.args.deadline, 0.1, self._state)
        self.alive, self.standby = st
        return time.monotonic() - t

    def prepare_kill(self, scenario, held=False):
        """Looked up when the job starts; returns the kill (run ~3 s later) and a monitor:
        (the new leader's name, whether it is ALIVE yet) once the standby leads, else None."""
        leader, standby = self.alive, self.standby
        execs = executor_jvms([w.proc.pid for w in self.workers])
        victims = pick_executors(execs, scenario)

        def kill():
            self.killed = leader
            os.kill(leader.proc.pid, signal.SIGKILL)
            for _, pid in victims:
                os.kill(pid, signal.SIGKILL)
            return {"leader": leader.name, "leader_pid": leader.proc.pid,
                    "executors": [e for e, _ in victims], "executor_pids": [p for _, p in victims]}

        def new_leader():
            st = sf.status(standby.json())
            if st and st != "STANDBY":
                return standby.name, st == "ALIVE"
            return None

        return kill, new_leader

    def after_kill(self):
        """Reaps the killed master and starts it again as the standby."""
        m, self.killed = self.killed, None
        if m is None:
            return
        sf.kill(m.proc)
        m.start()

    def stop(self):
        for p in [w.proc for w in self.workers] + [m.proc for m in self.masters] + [self.zk.proc if self.zk else None]:
            if p is not None:
                sf.kill(p)

    def describe(self):
        return {"zookeeper": self.zk_version, "zk_tick_ms": self.args.zk_tick_ms}


class JobWorker(sf.Worker):
    """spark_failover's Worker with this harness's cores and memory."""

    def __init__(self, env, name, master_urls, cores, memory):
        super().__init__(env, name, master_urls)
        self.cores, self.memory = cores, memory

    def start(self):
        argv = [
            self.env.spark_class, "org.apache.spark.deploy.worker.Worker",
            "--host", "127.0.0.1", "--port", str(self.port), "--webui-port", str(self.ui),
            "--cores", str(self.cores), "--memory", self.memory, "--work-dir", self.dir, self.master,
        ]
        self.proc = sf.start(self.name, argv, self.env.logfile(self.name), env=self.env.env)
        return self.proc


def pick_executors(execs, scenario):
    """[(executor id, pid)] to kill with the leader."""
    ids = by_executor_id(list(execs))
    if scenario == "leader":
        return []
    if scenario == "leader+executor":
        return [(ids[0], execs[ids[0]])] if ids else []
    return [(e, execs[e]) for e in ids]


class Hearth:
    name = "hearth"
    label = "hearth local (3 Raft masters)"

    def __init__(self, args, work):
        self.args, self.work = args, work
        os.makedirs(os.path.join(work, "logs"), exist_ok=True)
        self.proc = None
        self.stopped = False  # hearth local paused (SIGSTOP) by a held kill
        self.masters = []  # "host:port"
        self.secret_file = None  # HEARTH_SECRET_FILE, as hearth local prints it

    def start(self):
        a = self.args
        t = time.monotonic()
        out = os.path.join(self.work, "logs", "hearth-local.log")
        env = dict(os.environ)
        env.update({"SPARK_HOME": a.spark_home, "JAVA_HOME": a.java_home, "SPARK_LOCAL_IP": "127.0.0.1"})
        argv = [a.hearth_bin, "local", "--dir", os.path.join(self.work, "cluster"), "--workers", "2",
                "--worker-cores", str(a.worker_cores), "--worker-memory", a.worker_memory]
        self.proc = sf.start("hearth-local", argv, out, env=env)

        def announced():
            with open(out, errors="replace") as f:
                text = f.read()
            # HEARTH_DRILL_TOKEN is the last line hearth local prints.
            m = re.search(r"^HEARTH_MASTERS=hearth://(\S+)$", text, re.M)
            return m.group(1) if m and "HEARTH_DRILL_TOKEN=" in text else None

        self.masters = sf.until("hearth local's HEARTH_MASTERS", a.deadline, 0.05, announced, proc=self.proc).split(",")
        # The cluster secret hearth local makes (builds before it printed none).
        with open(out, errors="replace") as f:
            m = re.search(r"^HEARTH_SECRET_FILE=(\S+)$", f.read(), re.M)
        self.secret_file = m.group(1) if m else None
        self.ready()
        log("  hearth up in %.1f s: %s (%s)" % (time.monotonic() - t, self.master_url(), a.hearth_bin))

    def master_url(self):
        return "spark+hearth://" + ",".join(self.masters)

    def master_conf(self):
        conf = {"spark.master": self.master_url(), "spark.driver.extraClassPath": self.args.jar}
        if self.secret_file:
            conf["spark.hearth.secretFile"] = self.secret_file
        return conf

    def json(self, addr, timeout=1.0):
        return sf.get_json("http://%s/json" % addr, timeout=timeout)

    def master_pid(self, addr):
        port = addr.rsplit(":", 1)[1]
        for pid in descendants(self.proc.pid):
            argv = proc_argv(pid)
            if len(argv) > 1 and argv[1] == "master" and "--port" in argv and argv[argv.index("--port") + 1] == port:
                return pid
        return None

    def _state(self):
        js = {a: self.json(a) for a in self.masters}
        if any(j is None for j in js.values()):
            return None  # a master (restarting?) does not answer yet
        leaders = {j.get("leader") for j in js.values()}
        if len(leaders) != 1 or None in leaders:
            return None
        leader = leaders.pop()
        j = js.get(leader) or self.json(leader)
        if not j:
            return None
        alive = [w for w in j.get("workers", []) if w.get("state") == "ALIVE"]
        if len(alive) != 2 or j.get("activeapps") or any(int(w.get("coresused", 0)) for w in alive):
            return None
        if any(self.master_pid(a) is None for a in self.masters):
            return None
        return leader

    def ready(self):
        if self.proc.poll() is not None:
            raise RuntimeError("hearth local exited; see %s" % os.path.join(self.work, "logs"))
        t = time.monotonic()
        self.leader = sf.until("hearth: 3 masters answering, one leader, both workers ALIVE, no app",
                               self.args.deadline, 0.1, self._state, proc=self.proc)
        return time.monotonic() - t

    def prepare_kill(self, scenario, held=False):
        j = None
        for a in self.masters:
            j = self.json(a)
            if j and j.get("leader"):
                break
        leader = (j or {}).get("leader") or self.leader
        pid = self.master_pid(leader)
        if pid is None:
            raise RuntimeError("no process for hearth's leader %s" % leader)
        execs = executor_jvms([self.proc.pid])
        victims = pick_executors(execs, scenario)
        local = self.proc.pid

        def kill():
            if held:
                # hearth local would restart the killed master within milliseconds, and the
                # restarted process takes its leadership back; paused, it cannot, and the
                # two survivors must elect a leader (resumed in after_kill).
                os.kill(local, signal.SIGSTOP)
                self.stopped = True
            os.kill(pid, signal.SIGKILL)
            for _, p in victims:
                os.kill(p, signal.SIGKILL)
            return {"leader": leader, "leader_pid": pid, "held": held,
                    "executors": [e for e, _ in victims], "executor_pids": [p for _, p in victims]}

        def new_leader():
            # A master leading again (RECOVERING or ALIVE): a survivor elected, or (not held)
            # the killed one restarted by hearth local (then a new process at that address).
            found = None
            for a in self.masters:
                j = self.json(a, timeout=0.3)
                st = (j or {}).get("status")
                if st and st != "STANDBY":
                    who = "%s (term %s%s)" % (a, j.get("term"), ", the killed one restarted" if a == leader else "")
                    if st == "ALIVE":
                        return who, True
                    found = (who, False)
            return found

        return kill, new_leader

    def after_kill(self):
        # Not held: hearth local restarted the killed master by itself already.
        if self.stopped:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.stopped = False

    def stop(self):
        if self.proc is None:
            return
        if self.stopped:
            self.after_kill()
        if self.proc.poll() is None:
            # SIGTERM: hearth local stops its masters and workers (and they their executors).
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        sf.kill(self.proc)

    def describe(self):
        return {"hearth_bin": self.args.hearth_bin}


# --------------------------------------------------------------------------------------
# Drivers


def base_confs(args, app):
    return {
        "spark.app.name": app,
        "spark.executor.cores": "2",
        "spark.executor.memory": "1g",
        "spark.cores.max": "4",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.default.parallelism": "8",
        "spark.sql.shuffle.partitions": "8",
    }


def driver_env(args, conf_dir):
    env = dict(os.environ)
    for k in ("PYSPARK_SUBMIT_ARGS", "PYSPARK_DRIVER_PYTHON", "SPARK_MASTER", "MASTER"):
        env.pop(k, None)
    env.update({
        "SPARK_HOME": args.spark_home,
        "JAVA_HOME": args.java_home,
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": args.python,
        "SPARK_CONF_DIR": conf_dir,  # empty: no spark-defaults from elsewhere
        "PYTHONUNBUFFERED": "1",
    })
    return env


def run_driver(args, cm, work, tag, jobs, kill_plan=None, words=None, after=None):
    """Runs spark_jobs_driver.py against cm; returns (result dict, kill info or None).

    kill_plan: (scenario, seconds into the slow job, held) -> the harness kills then."""
    logs = os.path.join(work, "logs")
    os.makedirs(logs, exist_ok=True)
    conf_dir = os.path.join(work, "driver-conf")
    os.makedirs(conf_dir, exist_ok=True)
    confs = base_confs(args, "spark-jobs-%s-%s" % (cm.name, tag))
    confs.update(cm.master_conf())
    argv = [args.python, os.path.join(HERE, "spark_jobs_driver.py"), "--jobs", ",".join(jobs),
            "--executors", "2", "--sum-n", str(args.sum_n),
            "--slow-parts", str(args.slow_parts), "--slow-per", str(args.slow_per),
            "--slow-sleep", str(args.slow_sleep)]
    counts_out = None
    if words:
        counts_out = os.path.join(work, "counts-%s.json" % tag)
        argv += ["--words", words, "--counts-out", counts_out]
    for k, v in confs.items():
        argv += ["--conf", "%s=%s" % (k, v)]
    errlog = open(os.path.join(logs, "driver-%s.log" % tag), "ab")
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=errlog, stdin=subprocess.DEVNULL,
                         env=driver_env(args, conf_dir), cwd=work, start_new_session=True)
    errlog.close()
    sf.PROCS.append(("driver-" + tag, p))
    watchdog = threading.Timer(args.driver_deadline, lambda: sf.kill(p))
    watchdog.daemon = True
    watchdog.start()

    result, kill_info, threads, threads_timers = None, {}, [], []
    try:
        for raw in p.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if not line.startswith("SPARK_JOBS_EVENT "):
                continue
            ev = json.loads(line[len("SPARK_JOBS_EVENT "):])
            if ev["event"] == "result":
                result = ev
                # sc.stop() gets a minute; the figures are in already.
                stopper = threading.Timer(60.0, lambda: sf.kill(p))
                stopper.daemon = True
                stopper.start()
                threads_timers.append(stopper)
            elif ev["event"] == "job_start" and ev.get("job") == "slow" and kill_plan:
                t_start = time.monotonic()
                scenario, after_s, held = kill_plan
                kill, new_leader = cm.prepare_kill(scenario, held=held)
                th = threading.Thread(target=kill_later, daemon=True,
                                      args=(t_start, after_s, kill, new_leader, kill_info, args.deadline))
                th.start()
                threads.append(th)
        p.wait()
    finally:
        watchdog.cancel()
        for t in threads_timers:
            t.cancel()
        sf.kill(p)
        # The new leader is timed to ALIVE before anything else happens (a Spark master
        # restarted earlier changes how the workers re-register: see README.md).
        for th in threads:
            th.join(timeout=args.deadline)
        if after:
            after()  # e.g. restart the killed master as the standby
    if result is None:
        raise RuntimeError("driver %s printed no result (exit %s); see %s"
                           % (tag, p.returncode, os.path.join(logs, "driver-%s.log" % tag)))
    if counts_out:
        with open(counts_out) as f:
            result["_counts"] = json.load(f)
        os.remove(counts_out)
    return result, (kill_info or None)


def kill_later(t_start, after_s, kill, new_leader, info, deadline):
    """At t_start + after_s: kill; then times a master leading again (RECOVERING or ALIVE:
    `leading_ms`) and ALIVE (`alive_ms`), polled every 50 ms."""
    time.sleep(max(0.0, t_start + after_s - time.monotonic()))
    t_kill = time.monotonic()
    info.update(kill())
    info["kill_at_ms"] = round((t_kill - t_start) * 1000.0, 1)  # after the driver's job_start
    while time.monotonic() - t_kill < deadline:
        try:
            got = new_leader()
        except Exception:  # noqa: BLE001
            got = None
        if got:
            ms = round((time.monotonic() - t_kill) * 1000.0, 1)
            info.setdefault("leading_ms", ms)
            info["new_leader"] = got[0]
            if got[1]:
                info["alive_ms"] = ms
                return
        time.sleep(0.05)


# --------------------------------------------------------------------------------------
# One round on one cluster manager


def check_counts(result, reference):
    got = result.pop("_counts", None)
    if got is None:
        return False, "no counts"
    if got == reference:
        return True, "%d words, %d distinct: identical" % (sum(got.values()), len(got))
    diff = [w for w in set(got) | set(reference) if got.get(w) != reference.get(w)]
    return False, "%d words differ (e.g. %s)" % (len(diff), ", ".join(
        "%s: spark %s vs %s" % (w, got.get(w), reference.get(w)) for w in sorted(diff)[:3]))


def run_round(args, cm, work, r, words, reference, store):
    """Appends this round's samples to store (a dict of lists) for cm."""
    def add(key, v):
        store.setdefault(key, []).append(v)

    cm.ready()
    tag = "r%d-jobs" % r
    res, _ = run_driver(args, cm, work, tag, ["sum", "wordcount", "slow"], words=words)
    if not all(k in res for k in ("sum", "wordcount", "slow")):
        raise RuntimeError("driver %s failed: %s" % (tag, json.dumps({k: v for k, v in res.items() if k != "_counts"})[:2000]))
    wc_ok, wc_msg = check_counts(res, reference)
    ok = res.get("ok") and wc_ok
    add("first_executor_ms", res.get("first_executor_ms"))
    add("first_executor_at_context", bool(res.get("first_executor_at_context")))
    add("context_ms", res.get("context_ms"))
    add("all_executors_ms", res.get("all_executors_ms"))
    add("sum_ms", res["sum"]["wall_ms"])
    add("wordcount_ms", res["wordcount"]["wall_ms"])
    add("slow_baseline_ms", res["slow"]["wall_ms"])
    add("checks", {"round": r, "driver": tag, "sum_ok": res["sum"]["ok"], "wordcount_ok": wc_ok,
                   "wordcount": wc_msg, "slow_ok": res["slow"]["ok"]})
    log("  round %d %-6s context %6.0f  first executor %6.0f  both %6.0f | sum %6.0f %s | wordcount %6.0f %s | slow %6.0f %s"
        % (r, cm.name, res["context_ms"], res["first_executor_ms"], res["all_executors_ms"],
           res["sum"]["wall_ms"], "ok" if res["sum"]["ok"] else "WRONG",
           res["wordcount"]["wall_ms"], "ok" if wc_ok else "WRONG (%s)" % wc_msg,
           res["slow"]["wall_ms"], "ok" if res["slow"]["ok"] else "WRONG"))
    if not ok:
        store.setdefault("failures", []).append("round %d %s: %s" % (r, tag, json.dumps(
            {k: res.get(k) for k in ("sum", "wordcount", "slow", "error")})[:1500]))

    modes = [False]
    if cm.name == "hearth":
        modes = [m == "held" for m in args.hearth_kill_modes]
    for sc in args.scenarios:
        for held in modes:
            run_kill(args, cm, work, r, sc, held, store)


def run_kill(args, cm, work, r, sc, held, store):
    cm.ready()
    key = sc + ("@held" if held else "")
    tag = "r%d-kill-%s" % (r, key)
    try:
        res, info = run_driver(args, cm, work, tag, ["slow"], kill_plan=(sc, args.kill_after, held),
                               after=cm.after_kill)
    finally:
        cm.after_kill()
    slow = res.get("slow", {})
    info = info or {}
    # The replacement executor: the first executor the driver saw added after the kill.
    kill_ms = info.get("kill_at_ms")
    changes = slow.get("executor_changes") or []
    added = [c["ms"] for c in changes if c["added"] and kill_ms is not None and c["ms"] >= kill_ms]
    lost = [c["ms"] for c in changes if c["lost"] and kill_ms is not None and c["ms"] >= kill_ms]
    replaced = round(added[0] - kill_ms, 1) if added else None
    sample = {
        "round": r, "wall_ms": slow.get("wall_ms"), "ok": slow.get("ok"),
        "killed": info, "executor_changes": changes,
        "lost_seen_ms": round(lost[0] - kill_ms, 1) if lost else None,
        "replacement_ms": replaced,
    }
    store.setdefault("kill:" + key, []).append(sample)
    store.setdefault("checks", []).append({"round": r, "driver": tag, "slow_ok": slow.get("ok")})
    log("  round %d %-6s SIGKILL %-22s at %4.1f s: slow %6.0f %s | new leader leading / ALIVE %s%s | executor loss seen %s, replacement %s"
        % (r, cm.name, key, (kill_ms or 0) / 1000.0, slow.get("wall_ms") or -1,
           "ok" if slow.get("ok") else "WRONG", "%s / %s" % (fmt_ms(info.get("leading_ms")), fmt_ms(info.get("alive_ms"))),
           (" (%s)" % info["new_leader"]) if info.get("new_leader") else "",
           fmt_ms(sample["lost_seen_ms"]) if sc != "leader" else "-",
           fmt_ms(replaced) if sc != "leader" else "-"))
    if not slow.get("ok") or not info:
        store.setdefault("failures", []).append("round %d %s: %s %s" % (
            r, tag, json.dumps(slow)[:1500], "(no kill happened)" if not info else ""))


def fmt_ms(x):
    return "-" if x is None else "%.0f ms" % x


# --------------------------------------------------------------------------------------
# Summary


FIGS = [
    ("first_executor_ms", "1. program start -> first executor"),
    ("all_executors_ms", "   program start -> both executors"),
    ("context_ms", "   program start -> getOrCreate() returned"),
    ("wordcount_ms", "2. wordcount (%d MB) wall"),
    ("sum_ms", "2. range(0, %s) sum wall"),
    ("slow_baseline_ms", "3. slow job, no kill (baseline)"),
]


def summarize(store):
    out = {}
    for key, _ in FIGS:
        out[key] = dist(store.get(key, []))
    base = median(store.get("slow_baseline_ms", []))
    for sc in [x + y for x in SCENARIOS for y in ("", "@held")]:
        samples = store.get("kill:" + sc)
        if not samples:
            continue
        out["kill_" + sc] = {
            "overhead_ms": dist([s["wall_ms"] - base if (s["wall_ms"] is not None and base is not None) else None
                                 for s in samples]),
            "wall_ms": dist([s["wall_ms"] for s in samples]),
            "leading_ms": dist([s["killed"].get("leading_ms") for s in samples]),
            "alive_ms": dist([s["killed"].get("alive_ms") for s in samples]),
            "executor_loss_seen_ms": dist([s["lost_seen_ms"] for s in samples]),
            "replacement_executor_ms": dist([s["replacement_ms"] for s in samples]),
            "rounds": samples,
        }
    at = store.get("first_executor_at_context", [])
    out["first_executor_registered_before_getOrCreate_returned"] = "%d of %d" % (sum(at), len(at))
    out["checks"] = store.get("checks", [])
    out["failures"] = store.get("failures", [])
    return out


def cell(d):
    if not d or not d.get("n"):
        return "-"
    return "%s/%s/%s" % (fmt0(d["min_ms"]), fmt0(d["p50_ms"]), fmt0(d["max_ms"]))


def fmt0(x):
    return "%.0f" % x


def print_table(args, summ):
    """Columns: Spark, hearth (killed master restarted by hearth local at once), hearth with
    the killed master held down (only kill rows); ratios Spark p50 / hearth p50."""
    cols = []  # (title, manager, key suffix for kill rows, shown on non-kill rows)
    if "spark" in summ:
        cols.append(("Spark+ZooKeeper", "spark", "", True))
    if "hearth" in summ:
        if "restart" in args.hearth_kill_modes:
            cols.append(("hearth", "hearth", "", True))
        if "held" in args.hearth_kill_modes:
            cols.append(("hearth, killed held down", "hearth", "@held", "restart" not in args.hearth_kill_modes))
    log("")
    log("Spark jobs, %d round(s); ms as min/p50/max over the rounds; x = Spark p50 / hearth p50" % args.rounds)
    w = 44
    ratio_cols = [c for c in cols if c[1] == "hearth"] if cols and cols[0][1] == "spark" else []
    log("  %-*s" % (w, "figure") + "".join(" %24s" % c[0] for c in cols)
        + "".join(" %9s" % ("x " + ("held" if c[2] else "hearth")) for c in ratio_cols))

    def row(label, ds):
        line = "  %-*s" % (w, label) + "".join(" %24s" % cell(d) for d in ds)
        if ratio_cols:
            sp = ds[0]
            for i, c in enumerate(cols):
                if c in ratio_cols:
                    h = ds[i]
                    if sp and h and sp.get("n") and h.get("n") and sp["p50_ms"] >= 100 and h["p50_ms"] >= 100:
                        line += " %8.1fx" % (sp["p50_ms"] / h["p50_ms"])
                    else:
                        line += " %9s" % ""
        log(line.rstrip())

    for key, label in FIGS:
        if "%d" in label:
            label = label % args.words_mb
        elif "%s" in label:
            label = label % ("{:,}".format(args.sum_n))
        row(label, [summ[m].get(key) if show else None for _, m, _, show in cols])
    num = {"leader": "i", "leader+executor": "ii", "leader+executors": "iii"}
    for sc in args.scenarios:
        def get(field):
            return [summ[m].get("kill_" + sc + (suf if m == "hearth" else ""), {}).get(field) for _, m, suf, _ in cols]
        row("3%s. SIGKILL %s: wall - baseline" % (num[sc], sc), get("overhead_ms"))
        row("      job wall", get("wall_ms"))
        row("      kill -> new leader leading (RECOVERING)", get("leading_ms"))
        row("      kill -> new leader ALIVE", get("alive_ms"))
        if sc != "leader":
            row("      kill -> driver sees the executor(s) lost", get("executor_loss_seen_ms"))
            row("      kill -> replacement executor registered", get("replacement_executor_ms"))
    for title, m, suf, show in cols:
        if show:
            log("  (%s: executors already registered when getOrCreate() returned in %s driver runs)"
                % (title, summ[m].get("first_executor_registered_before_getOrCreate_returned")))
    for _, m, suf, _ in cols:
        for sc in args.scenarios:
            d = summ[m].get("kill_" + sc + (suf if m == "hearth" else ""))
            if sc != "leader" and d:
                miss = sum(1 for x in d["rounds"] if x["replacement_ms"] is None)
                if miss:
                    log("  (%s%s, %s: no replacement executor registered before the job ended in %d of %d round(s))"
                        % (m, suf, sc, miss, len(d["rounds"])))


def compact(results):
    """The printed JSON line: every figure's n/min/p50/max; result.json has everything
    (samples, every kill round's details, every check)."""
    def short(d):
        return {k: d[k] for k in ("n", "min_ms", "p50_ms", "max_ms") if k in d}

    out = {k: results[k] for k in ("bench", "spark_version", "java", "rounds", "shape", "jobs", "scenarios",
                                   "hearth_kill_modes", "hearth_bin", "managers", "wall_s", "ok", "error")
           if k in results}
    for m in ("spark", "hearth"):
        s = results.get(m)
        if not s:
            continue
        c = {}
        for k, v in s.items():
            if k.startswith("kill_"):
                c[k] = {f: short(d) for f, d in v.items() if f != "rounds"}
            elif k.endswith("_ms") and isinstance(v, dict):
                c[k] = short(v)
        checks = s.get("checks", [])
        good = sum(1 for ch in checks if all(v for k, v in ch.items() if k.endswith("_ok")))
        c["exact_results"] = "%d of %d driver runs" % (good, len(checks))
        c["executors_before_getOrCreate_returned"] = s.get("first_executor_registered_before_getOrCreate_returned")
        out[m] = c
    return out


def reprint(path):
    """--from-result: the table and the JSON line of a saved result.json, nothing measured."""
    with open(path) as f:
        results = json.load(f)
    a = argparse.Namespace(rounds=results["rounds"], scenarios=results["scenarios"],
                           hearth_kill_modes=results.get("hearth_kill_modes", ["restart"]),
                           words_mb=results["jobs"]["words_mb"], sum_n=results["jobs"]["sum_n"])
    print_table(a, results)
    print(json.dumps(compact(results)), flush=True)
    return 0


# --------------------------------------------------------------------------------------


def default_hearth_bin():
    t = os.environ.get("CARGO_TARGET_DIR")
    if t:
        return os.path.join(t, "release", "hearth")
    return os.path.expanduser("~/.cache/hearth-target/release/hearth")


def main():
    global MARK
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", choices=["spark", "hearth"], help="run one cluster manager only")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS),
                    help="kill scenarios, comma-separated (default: %s)" % ",".join(SCENARIOS))
    ap.add_argument("--hearth-kill-modes", default="restart,held",
                    help="hearth's kill rounds: restart (hearth local restarts the killed master at once, "
                         "as it does), held (hearth local paused until the job ends: the survivors elect); "
                         "default both")
    ap.add_argument("--hearth-bin", default=default_hearth_bin(),
                    help="the hearth binary (default $CARGO_TARGET_DIR/release/hearth, else ~/.cache/hearth-target/release/hearth)")
    ap.add_argument("--spark-home")
    ap.add_argument("--java-home", default=os.environ.get("JAVA_HOME"))
    ap.add_argument("--python", default=sys.executable, help="the venv's python (drivers and PYSPARK_PYTHON)")
    ap.add_argument("--jar", help="hearth's Spark plugin jar (copied into the work dir at start)")
    ap.add_argument("--zk-classpath", default=None, help="default Debian's /usr/share/java/zookeeper.jar, else Spark's jars")
    ap.add_argument("--zk-tick-ms", type=int, default=2000, help="ZooKeeper tickTime (default 2000, as spark_failover.py)")
    ap.add_argument("--worker-cores", type=int, default=2)
    ap.add_argument("--worker-memory", default="2g")
    ap.add_argument("--words-mb", type=int, default=100, help="size of the wordcount text (default 100)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--sum-n", type=int, default=100_000_000)
    ap.add_argument("--slow-parts", type=int, default=20, help="slow job: tasks (default 20: 5 waves on 4 cores)")
    ap.add_argument("--slow-per", type=int, default=100_000)
    ap.add_argument("--slow-sleep", type=float, default=2.0, help="slow job: seconds each task sleeps (default 2)")
    ap.add_argument("--kill-after", type=float, default=3.0, help="seconds into the slow job the kill comes (default 3)")
    ap.add_argument("--deadline", type=float, default=180.0, help="seconds allowed for any cluster wait (default 180)")
    ap.add_argument("--driver-deadline", type=float, default=600.0, help="seconds a driver may run (default 600)")
    ap.add_argument("--work-dir")
    ap.add_argument("--data-dir", help="where the generated text is kept (default WORK/data)")
    ap.add_argument("--json-out", help="where the whole result goes (the printed line is its summary)")
    ap.add_argument("--from-result", metavar="FILE", help="measure nothing: reprint a saved result.json")
    args = ap.parse_args()
    if args.from_result:
        return reprint(args.from_result)
    if not args.spark_home or not args.work_dir:
        sys.exit("error: --spark-home and --work-dir are needed (spark_jobs.sh passes them)")
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    args.hearth_kill_modes = [s for s in args.hearth_kill_modes.split(",") if s]
    for s in args.hearth_kill_modes:
        if s not in ("restart", "held"):
            sys.exit("error: unknown --hearth-kill-modes entry %r (restart, held)" % s)
    for s in args.scenarios:
        if s not in SCENARIOS:
            sys.exit("error: unknown scenario %r (known: %s)" % (s, ", ".join(SCENARIOS)))
    if not args.java_home:
        sys.exit("error: --java-home or JAVA_HOME needed")
    managers = [args.only] if args.only else ["spark", "hearth"]
    work = os.path.abspath(args.work_dir)
    os.makedirs(work, exist_ok=True)
    if "hearth" in managers:
        if not (os.path.isfile(args.hearth_bin) and os.access(args.hearth_bin, os.X_OK)):
            sys.exit("error: --hearth-bin %s is not an executable file" % args.hearth_bin)
        if not args.jar or not os.path.isfile(args.jar):
            sys.exit("error: --jar (hearth's Spark plugin jar) is needed for hearth")
        # A copy: a rebuild of the shared jar during the run cannot change this run.
        import shutil
        jar = os.path.join(work, "hearth-spark.jar")
        shutil.copyfile(args.jar, jar)
        args.jar = jar
    if args.zk_classpath is None:
        deb = "/usr/share/java/zookeeper.jar"
        args.zk_classpath = deb if os.path.exists(deb) else os.path.join(args.spark_home, "jars", "*")

    MARK = uuid.uuid4().hex
    os.environ[RUN_MARK] = MARK
    atexit.register(stop_everything)
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)

    t_all = time.monotonic()
    java = os.path.join(args.java_home, "bin", "java")
    results = {
        "bench": "spark-jobs",
        "spark_version": sf.spark_version(args.spark_home),
        "java": sf.java_version(java),
        "rounds": args.rounds,
        "shape": {"workers": 2, "worker_cores": args.worker_cores, "worker_memory": args.worker_memory,
                  "executor_cores": 2, "executor_memory": "1g", "cores_max": 4},
        "jobs": {"words_mb": args.words_mb, "sum_n": args.sum_n, "slow_parts": args.slow_parts,
                 "slow_per": args.slow_per, "slow_sleep_s": args.slow_sleep, "kill_after_s": args.kill_after},
        "scenarios": args.scenarios,
        "hearth_kill_modes": args.hearth_kill_modes,
        "hearth_bin": args.hearth_bin if "hearth" in managers else None,
        "load_before": os.getloadavg()[0],
    }
    log("Spark %s from %s; %s" % (results["spark_version"], args.spark_home, results["java"]))
    log("work dir (logs under spark/rN/logs, hearth/rN/logs): %s" % work)
    words, reference = words_file(args.data_dir or os.path.join(work, "data"), args.words_mb, args.seed)

    stores = {m: {} for m in managers}
    ok = True
    try:
        for r in range(1, args.rounds + 1):
            order = managers if r % 2 == 1 else list(reversed(managers))
            for m in order:
                # A fresh directory per round: hearth's Raft state and ZooKeeper's data name
                # the previous round's ports and processes.
                d = os.path.join(work, m, "r%d" % r)
                cm = SparkStandalone(args, d) if m == "spark" else Hearth(args, d)
                log("")
                log("== round %d/%d: %s" % (r, args.rounds, cm.label))
                t = time.monotonic()
                try:
                    cm.start()
                    results.setdefault("managers", {})[m] = cm.describe()
                    run_round(args, cm, d, r, words, reference, stores[m])
                finally:
                    cm.stop()
                    left = sweep()
                    if left:
                        log("  (swept %d leftover process(es) of this run: %s)" % (len(left), "; ".join(left)))
                log("  %s round %d took %.0f s" % (m, r, time.monotonic() - t))
    except (sf.Timeout, RuntimeError) as e:
        ok = False
        results["error"] = str(e)
        log("error: %s" % e)
    finally:
        stop_everything()

    for m in managers:
        results[m] = summarize(stores[m])
        if results[m]["failures"]:
            ok = False
    results["load_after"] = os.getloadavg()[0]
    results["wall_s"] = round(time.monotonic() - t_all, 1)
    results["ok"] = ok
    print_table(args, results)
    for m in managers:
        for f in results[m]["failures"]:
            log("  FAILED (%s): %s" % (m, f))
    nchk = sum(len(results[m]["checks"]) for m in managers)
    exact = not any(results[m]["failures"] for m in managers)
    log("")
    log("results checked: %d driver run(s), %s%s; measured in %.0f s; load average %.1f before, %.1f after"
        % (nchk, "all exact" if exact else "NOT ALL EXACT (see above)",
           "; the run stopped early: %s" % results["error"] if "error" in results else "",
           results["wall_s"], results["load_before"], results["load_after"]))
    if args.json_out:
        with open(args.json_out, "w") as f:
            f.write(json.dumps(results) + "\n")
    print(json.dumps(compact(results)), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
