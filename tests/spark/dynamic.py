"""Dynamic allocation: a burst of slow tasks (Spark asks for more executors), then idle
until Spark has released all but MIN executors (at most DEADLINE seconds).
Prints `BURST <sum>` after the burst and `IDLE <ids>` (the executor ids Spark still
has, comma-separated) at the end, then keeps the context until the file GO exists (at
most DEADLINE seconds more), so the test can look at the cluster meanwhile.

    dynamic.py APP_NAME TASKS PAUSE MIN DEADLINE GO
"""
import os
import sys
import time

from pyspark.sql import SparkSession

name, tasks, pause = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
keep, deadline, go = int(sys.argv[4]), float(sys.argv[5]), sys.argv[6]
spark = SparkSession.builder.appName(name).getOrCreate()
sc = spark.sparkContext


def slow(i):
    time.sleep(pause)
    return i


print("BURST", sc.parallelize(range(tasks), tasks).map(slow).sum(), flush=True)


def executor_ids():
    ids = sc._jsc.sc().getExecutorIds().mkString(",")
    return [i for i in ids.split(",") if i]


end = time.time() + deadline
while len(executor_ids()) > keep and time.time() < end:
    time.sleep(0.2)
print("IDLE", ",".join(sorted(executor_ids(), key=int)), flush=True)
end = time.time() + deadline
while not os.path.exists(go) and time.time() < end:
    time.sleep(0.1)
spark.stop()
