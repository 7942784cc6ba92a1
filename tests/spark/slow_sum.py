"""A job that runs for a while and has one exact answer: PARTS tasks, each sleeping
PAUSE seconds and then summing its range of PER integers. Prints `SUM <n>`; the test
knows n = sum(range(PARTS * PER)).

    slow_sum.py APP_NAME PARTS PER PAUSE
"""
import sys
import time

from pyspark.sql import SparkSession

name, parts, per, pause = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
spark = SparkSession.builder.appName(name).getOrCreate()
sc = spark.sparkContext


def part(i):
    time.sleep(pause)
    return sum(range(i * per, (i + 1) * per))


print("STARTED", sc.applicationId, flush=True)
total = sc.parallelize(range(parts), parts).map(part).sum()
print("SUM", total, flush=True)
spark.stop()
