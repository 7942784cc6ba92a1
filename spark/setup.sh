#!/usr/bin/env bash
# Makes what running Spark on hearth needs on this machine, once, under ~/.cache (never in
# the clone), and prints where it is:
#
#   SPARK_HOME=...        pyspark 4.3.0's Spark (jars/, bin/spark-submit, examples/)
#   PYSPARK_PYTHON=...    the virtualenv's python (drivers and executors use it)
#   HEARTH_SPARK_JAR=...  the hearth cluster manager for Spark (built by spark/build.sh)
#
# Needs python3 with venv and a JDK 17 (javac); `.ci/run` installs both when missing.
# Environment: HEARTH_SPARK_CACHE (default ~/.cache/hearth-spark), PYSPARK_VERSION
# (default 4.3.0). Safe to run concurrently (a lock), quick when everything is there.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
cache="${HEARTH_SPARK_CACHE:-$HOME/.cache/hearth-spark}"
version="${PYSPARK_VERSION:-4.3.0}"
venv="$cache/venv-pyspark-$version"
mkdir -p "$cache"

exec 9>"$cache/.setup.lock"
flock 9

say() { printf '%s\n' "$*" >&2; }

# One pyspark per virtualenv: two versions in one site-packages mix their netty jars.
if ! "$venv/bin/python" -c "import sys, pyspark; sys.exit(pyspark.__version__ != '$version')" 2>/dev/null; then
  command -v python3 >/dev/null || { say "error: python3 is missing (apt-get install python3-venv)"; exit 1; }
  rm -rf "$venv"
  say "setup: creating $venv and installing pyspark==$version (about 460 MB; once per machine)"
  t0=$(date +%s)
  if ! python3 -m venv "$venv" >&2; then
    say "error: python3 -m venv failed (apt-get install python3-venv)"
    exit 1
  fi
  "$venv/bin/pip" install -q --disable-pip-version-check "pyspark==$version" >&2
  say "setup: pyspark installed in $(( $(date +%s) - t0 )) s"
fi
spark_home="$("$venv/bin/python" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')"

command -v javac >/dev/null || { say "error: javac is missing (apt-get install openjdk-17-jdk-headless)"; exit 1; }
jar="$(bash "$here/build.sh" --spark-home "$spark_home" --out "$cache/jar" | tail -n 1)"
[ -f "$jar" ] || { say "error: spark/build.sh printed no jar ($jar)"; exit 1; }

echo "SPARK_HOME=$spark_home"
echo "PYSPARK_PYTHON=$venv/bin/python"
echo "HEARTH_SPARK_JAR=$jar"
