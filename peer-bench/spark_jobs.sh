#!/usr/bin/env bash
# Peer harness: the same Spark jobs on Spark standalone (2 masters + ZooKeeper recovery)
# and on hearth (`hearth local`: 3 Raft masters), one after the other on this machine,
# printed side by side. Not part of CI: it needs pyspark (~460 MB) and ZooKeeper.
#
#   peer-bench/spark_jobs.sh [--hearth-bin PATH] [spark_jobs.py options...]
#
#   --hearth-bin PATH   the hearth binary (default: $CARGO_TARGET_DIR/release/hearth,
#                       else ~/.cache/hearth-target/release/hearth); use a release build
#   anything else       passed to spark_jobs.py: --rounds N (default 3), --only spark|hearth,
#                       --scenarios ..., --deadline S, --json-out FILE, ... (--help lists them)
#
# Uses spark/setup.sh (pyspark venv + the plugin jar) and run.sh's Java and ZooKeeper
# steps (read from run.sh, not copied). Environment: JAVA_HOME, HEARTH_SPARK_CACHE,
# PYSPARK_VERSION (see spark/setup.sh), SPARK_JOBS_HOME (default
# ~/.cache/hearth-peer-bench/spark-jobs: the generated text file and the runs' logs).
# See peer-bench/README.md, "Spark jobs on Spark standalone and on hearth".
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
t_start=$(date +%s)
jobs_home="${SPARK_JOBS_HOME:-$HOME/.cache/hearth-peer-bench/spark-jobs}"
mkdir -p "$jobs_home"

for a in "$@"; do
  case "$a" in
    -h|--help)
      sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
      exec python3 "$here/spark_jobs.py" --help ;;
  esac
done

say() { printf '== %s\n' "$*"; }

# --- Java 17 and ZooKeeper: run.sh's own steps ------------------------------------------------
# run.sh is a straight script (it also makes a venv and runs the failover harness), so its
# "Java 17" and "ZooKeeper from Debian" sections are read out of it and run here. They need
# `say` and `home` (where apt-get's log goes).
home="$jobs_home"
steps="$(sed -n '/^# --- Java 17/,/^# --- pyspark in its own virtualenv/p' "$here/run.sh")"
case "$steps" in
  *pick_java*apt-get*zookeeper*) ;;
  *) echo "error: could not find the Java/ZooKeeper sections in $here/run.sh" >&2; exit 1 ;;
esac
eval "$steps"

# --- pyspark and the hearth plugin jar: spark/setup.sh ------------------------------------------
say "spark/setup.sh"
setup_out="$(bash "$repo/spark/setup.sh")"
SPARK_HOME="$(printf '%s\n' "$setup_out" | sed -n 's/^SPARK_HOME=//p')"
PYSPARK_PYTHON="$(printf '%s\n' "$setup_out" | sed -n 's/^PYSPARK_PYTHON=//p')"
HEARTH_SPARK_JAR="$(printf '%s\n' "$setup_out" | sed -n 's/^HEARTH_SPARK_JAR=//p')"
for v in SPARK_HOME PYSPARK_PYTHON HEARTH_SPARK_JAR; do
  [ -n "${!v}" ] || { echo "error: spark/setup.sh printed no $v=" >&2; exit 1; }
done
say "SPARK_HOME=$SPARK_HOME"
say "PYSPARK_PYTHON=$PYSPARK_PYTHON"
say "HEARTH_SPARK_JAR=$HEARTH_SPARK_JAR"

run_dir="$jobs_home/runs/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$run_dir"
say "run dir: $run_dir"

set +e
"$PYSPARK_PYTHON" "$here/spark_jobs.py" \
  --spark-home "$SPARK_HOME" --java-home "$JAVA_HOME" --python "$PYSPARK_PYTHON" \
  --jar "$HEARTH_SPARK_JAR" --work-dir "$run_dir" --data-dir "$jobs_home/data" \
  --json-out "$run_dir/result.json" "$@"
rc=$?
set -e
if [ -s "$run_dir/result.json" ]; then
  say "total wall time $(( $(date +%s) - t_start )) s; result in $run_dir/result.json"
else
  say "total wall time $(( $(date +%s) - t_start )) s; no result (logs in $run_dir)"
fi
exit $rc
