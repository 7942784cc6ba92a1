#!/usr/bin/env bash
# Peer harness: Spark standalone's master failover (ZOOKEEPER and FILESYSTEM recovery),
# optionally beside hearth's own figures. Not part of CI: it downloads ~490 MB.
#
#   peer-bench/run.sh [--fresh] [--with-hearth] [spark_failover.py options...]
#
#   --fresh         recreate the virtualenv (and re-download pyspark)
#   --with-hearth   first run hearth's bench-failover (cargo, release build) and compare
#   anything else   passed to spark_failover.py: --rounds N (default 3), --modes zk,fs,
#                   --deadline S, --poll-ms MS, --hearth-json FILE, --map K=PATH, ...
#
# Environment: PEER_BENCH_HOME (default ~/.cache/hearth-peer-bench), PYSPARK_VERSION
# (default the pin below), JAVA_HOME (default: a Java 17 under /usr/lib/jvm),
# HEARTH_BENCH_ARGS (extra bench-failover arguments, default "--skip-commit 1").
# See peer-bench/README.md.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
PYSPARK_VERSION="${PYSPARK_VERSION:-4.3.0}"
home="${PEER_BENCH_HOME:-$HOME/.cache/hearth-peer-bench}"
t_start=$(date +%s)

fresh=0
with_hearth=0
rounds=3
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --fresh) fresh=1 ;;
    --with-hearth) with_hearth=1 ;;
    --rounds) rounds="$2"; args+=("$1" "$2"); shift ;;
    --rounds=*) rounds="${1#*=}"; args+=("$1") ;;
    -h|--help)
      sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
      exec python3 "$here/spark_failover.py" --help ;;
    *) args+=("$1") ;;
  esac
  shift
done

say() { printf '== %s\n' "$*"; }
mkdir -p "$home"

# --- Java 17 -----------------------------------------------------------------------------
java_major() { "$1/bin/java" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1; }
pick_java() {
  local c
  if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then
    local m; m="$(java_major "$JAVA_HOME")"
    if [ "${m:-0}" -ge 17 ]; then echo "$JAVA_HOME"; return; fi
    echo "JAVA_HOME=$JAVA_HOME is Java $m, not 17+: looking for another" >&2
  fi
  for c in /usr/lib/jvm/java-17-openjdk-* /usr/lib/jvm/temurin-17* /usr/lib/jvm/*-17* /usr/lib/jvm/java-21-openjdk-* /usr/lib/jvm/*; do
    [ -x "$c/bin/java" ] || continue
    local m; m="$(java_major "$c")"
    if [ "${m:-0}" -ge 17 ]; then echo "$c"; return; fi
  done
  if command -v java >/dev/null; then
    c="$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")"
    local m; m="$(java_major "$c")"
    if [ "${m:-0}" -ge 17 ]; then echo "$c"; return; fi
  fi
  return 1
}
if ! JAVA_HOME="$(pick_java)"; then
  echo "error: no Java 17+ found (set JAVA_HOME, or apt-get install openjdk-17-jre-headless)" >&2
  exit 1
fi
export JAVA_HOME
say "Java: $("$JAVA_HOME/bin/java" -version 2>&1 | head -n 1) at $JAVA_HOME"

# --- ZooKeeper from Debian -----------------------------------------------------------------
# The package 'zookeeper' (server classes and scripts) is enough: the harness runs its own
# server on a loopback port. 'zookeeperd' would also start a system-wide service.
if [ ! -e /usr/share/java/zookeeper.jar ]; then
  if command -v apt-get >/dev/null; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    say "installing ZooKeeper from Debian (apt-get install zookeeper, ~33 MB)"
    $sudo apt-get update -qq
    if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends zookeeper \
        >"$home/apt-zookeeper.log" 2>&1; then
      tail -n 20 "$home/apt-zookeeper.log" >&2
      echo "warning: apt-get install zookeeper failed (log: $home/apt-zookeeper.log)" >&2
    fi
  fi
fi
if [ -e /usr/share/java/zookeeper.jar ]; then
  say "ZooKeeper: Debian package zookeeper $(dpkg-query -W -f='${Version}' zookeeper 2>/dev/null || echo '?')"
else
  say "ZooKeeper: Debian's package not available; the harness runs the ZooKeeper classes shipped with Spark"
fi

# --- pyspark in its own virtualenv ----------------------------------------------------------
# One pyspark version per venv: two versions in one site-packages mix their netty jars and
# the worker cannot connect to the master.
venv="$home/venv-pyspark-$PYSPARK_VERSION"
dist="$home/dist"
if [ "$fresh" = 1 ]; then
  rm -rf "$venv" "$dist"
fi
if ! "$venv/bin/python" -c "import sys, pyspark; sys.exit(pyspark.__version__ != '$PYSPARK_VERSION')" 2>/dev/null; then
  rm -rf "$venv"
  say "creating virtualenv $venv"
  python3 -m venv "$venv"
  mkdir -p "$dist"
  say "downloading pyspark==$PYSPARK_VERSION (about 460 MB) into $dist"
  t0=$(date +%s)
  "$venv/bin/pip" download -q -d "$dist" "pyspark==$PYSPARK_VERSION"
  say "downloaded in $(( $(date +%s) - t0 )) s: $(du -sh "$dist" | cut -f1) ($(find "$dist" -type f -printf '%f %s bytes; '))"
  t0=$(date +%s)
  # pyspark is an sdist: pip builds it (setuptools, fetched for the build) into a wheel.
  "$venv/bin/pip" install -q --find-links "$dist" "pyspark==$PYSPARK_VERSION"
  say "installed in $(( $(date +%s) - t0 )) s"
else
  say "reusing virtualenv $venv (--fresh to recreate)"
fi
spark_home="$("$venv/bin/python" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')"
say "pyspark $("$venv/bin/python" -c 'import pyspark; print(pyspark.__version__)') at $spark_home ($(du -sh "$venv" | cut -f1) installed)"

run_dir="$home/runs/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$run_dir"

# --- hearth (optional) ----------------------------------------------------------------------
if [ "$with_hearth" = 1 ]; then
  say "hearth: cargo run --release -p hearth-tests --bin bench-failover -- --rounds $rounds ${HEARTH_BENCH_ARGS:---skip-commit 1}"
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/hearth-target}"
  # shellcheck disable=SC2086
  (cd "$repo" && cargo run --release -p hearth-tests --bin bench-failover -- \
      --rounds "$rounds" ${HEARTH_BENCH_ARGS:---skip-commit 1}) 2>&1 | tee "$run_dir/hearth-bench.log"
  grep '^{' "$run_dir/hearth-bench.log" | tail -n 1 > "$run_dir/hearth.json" || true
  if [ ! -s "$run_dir/hearth.json" ]; then
    echo "error: hearth's benchmark printed no JSON line (see $run_dir/hearth-bench.log)" >&2
    exit 1
  fi
  args+=(--hearth-json "$run_dir/hearth.json")
fi

# --- Spark ----------------------------------------------------------------------------------
say "Spark: $venv/bin/python $here/spark_failover.py ${args[*]:-}"
set +e
"$venv/bin/python" "$here/spark_failover.py" --spark-home "$spark_home" --java-home "$JAVA_HOME" \
  --work-dir "$run_dir" --json-out "$run_dir/result.json" ${args[@]+"${args[@]}"}
rc=$?
set -e
say "total wall time $(( $(date +%s) - t_start )) s; result in $run_dir/result.json"
exit $rc
