#!/usr/bin/env python3
"""The PySpark program `spark_jobs.py` runs against each cluster manager.

    python spark_jobs_driver.py --conf spark.master=URL [--conf K=V ...] --jobs sum,wordcount,slow ...

Run it with plain `python` (not spark-submit): the clock starts on this file's first line,
before pyspark is imported and before `SparkSession.builder...getOrCreate()` starts the
driver JVM (pyspark runs spark-submit for it, with every `--conf` given here).

It times:

* `context_ms`: program start -> `getOrCreate()` returned;
* `first_executor_ms`: program start -> the first executor registered with the driver
  (`sc._jsc.sc().getExecutorIds()` polled every 10 ms), and `all_executors_ms` for
  `--executors` of them;
* each job in `--jobs`, in that order, after a warm-up job (Python workers started):
  - `sum`: `spark.range(0, N).selectExpr("sum(id)")`, checked against N(N-1)/2;
  - `wordcount`: words of `--words FILE` split on spaces, `groupBy(word).count()`;
    the counts are written to `--counts-out` for the harness to check;
  - `slow`: `sc.parallelize(range(P), P).map(sleep S; sum of PER integers).sum()`,
    checked against sum(range(P*PER)). While it runs, a thread polls the executor list
    every 50 ms and records executors lost and added, in ms from the job's start.

Prints its progress as lines `SPARK_JOBS_EVENT {json}` on stdout (the harness kills a
master on `job_start` of the slow job) and the result as the last such line
(`"event": "result"`). Exits 0 only when every checked result was exact.
"""

import time

T0 = time.monotonic()  # the program's start: before pyspark is even imported

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402


def ms_since(t):
    return round((time.monotonic() - t) * 1000.0, 1)


def emit(event, **kw):
    kw = dict(kw)
    kw["event"] = event
    kw["t_ms"] = ms_since(T0)
    sys.stdout.write("SPARK_JOBS_EVENT " + json.dumps(kw) + "\n")
    sys.stdout.flush()


def executor_ids(sc):
    s = sc._jsc.sc().getExecutorIds().mkString(",")
    return [x for x in s.split(",") if x]


def part_sum(sleep_s, per):
    def f(i):
        time.sleep(sleep_s)
        return sum(range(i * per, (i + 1) * per))

    return f


class ExecutorWatch(threading.Thread):
    """Polls the executor list while a job runs; records changes in ms from t0."""

    def __init__(self, sc, t0, period_s=0.05):
        super().__init__(daemon=True)
        self.sc, self.t0, self.period = sc, t0, period_s
        self.stop_flag = threading.Event()
        self.changes = []  # {"ms", "lost": [...], "added": [...], "now": [...]}
        self.error = None

    def run(self):
        try:
            prev = set(executor_ids(self.sc))
            self.initial = sorted(prev)
            while not self.stop_flag.wait(self.period):
                cur = set(executor_ids(self.sc))
                if cur != prev:
                    self.changes.append({
                        "ms": ms_since(self.t0),
                        "lost": sorted(prev - cur),
                        "added": sorted(cur - prev),
                        "now": sorted(cur),
                    })
                    prev = cur
        except Exception as e:  # noqa: BLE001 (the context may be stopping)
            self.error = repr(e)

    def stop(self):
        self.stop_flag.set()
        self.join(timeout=5)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--conf", action="append", default=[], metavar="K=V", help="a Spark conf (repeatable)")
    ap.add_argument("--executors", type=int, default=2, help="executors to wait for before the jobs (default 2)")
    ap.add_argument("--jobs", default="sum,wordcount,slow", help="comma-separated, run in this order")
    ap.add_argument("--words", help="the text file for wordcount")
    ap.add_argument("--counts-out", help="where wordcount's counts go (JSON {word: count})")
    ap.add_argument("--sum-n", type=int, default=100_000_000)
    ap.add_argument("--slow-parts", type=int, default=20)
    ap.add_argument("--slow-per", type=int, default=100_000)
    ap.add_argument("--slow-sleep", type=float, default=2.0)
    ap.add_argument("--wait-s", type=float, default=300.0, help="give up waiting for executors after this")
    args = ap.parse_args()
    jobs = [j for j in args.jobs.split(",") if j]
    for j in jobs:
        if j not in ("sum", "wordcount", "slow"):
            sys.exit("unknown job %r" % j)

    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    b = SparkSession.builder
    for kv in args.conf:
        k, _, v = kv.partition("=")
        b = b.config(k, v)
    spark = b.getOrCreate()
    res = {"ok": True, "context_ms": ms_since(T0)}
    sc = spark.sparkContext
    res["app_id"] = sc.applicationId
    emit("context", app_id=sc.applicationId, ms=res["context_ms"])

    # Figure 1: the first executor (then all of them), polled every 10 ms.
    ids = []
    t_wait = time.monotonic()
    while True:
        ids = executor_ids(sc)
        if ids and "first_executor_ms" not in res:
            res["first_executor_ms"] = ms_since(T0)
            res["first_executor_at_context"] = not res.get("_polled")
            emit("first_executor", ms=res["first_executor_ms"], ids=ids)
        if len(ids) >= args.executors:
            res["all_executors_ms"] = ms_since(T0)
            break
        res["_polled"] = True
        if time.monotonic() - t_wait > args.wait_s:
            res["ok"] = False
            res["error"] = "only %d executor(s) after %.0f s" % (len(ids), args.wait_s)
            emit("result", **res)
            spark.stop()
            return 1
        time.sleep(0.01)
    res.pop("_polled", None)
    res["executors"] = ids
    emit("executors", ms=res["all_executors_ms"], ids=ids)

    # Warm-up: Python workers on every executor, off the clock.
    t = time.monotonic()
    sc.parallelize(range(16), 16).map(lambda x: x * 2).sum()
    res["warmup_ms"] = ms_since(t)

    for job in jobs:
        if job == "sum":
            n = args.sum_n
            want = n * (n - 1) // 2
            emit("job_start", job="sum")
            t = time.monotonic()
            got = spark.range(0, n).selectExpr("sum(id) AS s").collect()[0]["s"]
            wall = ms_since(t)
            ok = int(got) == want
            res["sum"] = {"wall_ms": wall, "n": n, "result": int(got), "expected": want, "ok": ok}
            res["ok"] &= ok
            emit("job_end", job="sum", wall_ms=wall, ok=ok)
        elif job == "wordcount":
            emit("job_start", job="wordcount")
            t = time.monotonic()
            words = (
                spark.read.text(args.words)
                .select(F.explode(F.split(F.col("value"), " ")).alias("w"))
                .where(F.col("w") != "")
            )
            rows = words.groupBy("w").count().collect()
            wall = ms_since(t)
            counts = {r["w"]: int(r["count"]) for r in rows}
            if args.counts_out:
                with open(args.counts_out, "w") as f:
                    json.dump(counts, f)
            res["wordcount"] = {"wall_ms": wall, "distinct": len(counts), "total": sum(counts.values())}
            emit("job_end", job="wordcount", wall_ms=wall, distinct=len(counts))
        elif job == "slow":
            p, per = args.slow_parts, args.slow_per
            want = (p * per) * (p * per - 1) // 2
            rdd = sc.parallelize(range(p), p).map(part_sum(args.slow_sleep, per))
            emit("job_start", job="slow", executors=executor_ids(sc))
            t = time.monotonic()
            watch = ExecutorWatch(sc, t)
            watch.start()
            try:
                got = rdd.sum()
                err = None
            except Exception as e:  # noqa: BLE001
                got, err = None, repr(e)[:2000]
            wall = ms_since(t)
            watch.stop()
            ok = got is not None and int(got) == want
            res["slow"] = {
                "wall_ms": wall, "parts": p, "per": per, "sleep_s": args.slow_sleep,
                "result": got, "expected": want, "ok": ok,
                "executors_at_start": getattr(watch, "initial", None),
                "executor_changes": watch.changes,
            }
            if err:
                res["slow"]["error"] = err
            if watch.error:
                res["slow"]["watch_error"] = watch.error
            res["ok"] &= ok
            emit("job_end", job="slow", wall_ms=wall, ok=ok)

    emit("result", **res)
    spark.stop()
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
