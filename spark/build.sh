#!/usr/bin/env bash
# Builds hearth's Spark plugin jar (javac --release 17 + jar) against a Spark/pyspark install.
#
#   spark/build.sh [--spark-home DIR] [--out DIR]
#
# SPARK_HOME (or --spark-home): a Spark distribution or pip-installed pyspark package dir (the
# one holding jars/). Default: the pyspark package of $HEARTH_PYSPARK_VENV if set, else of
# ~/.cache/hearth-spark/venv-pyspark-4.3.0. Output: --out DIR (default
# $HOME/.cache/hearth-spark/jar). Nothing is written inside the clone. The last line printed is
# the jar's absolute path.
set -euo pipefail

die() { echo "spark/build.sh: $*" >&2; exit 1; }

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="$HOME/.cache/hearth-spark/jar"
SH="${SPARK_HOME:-}"

while [ $# -gt 0 ]; do
  case "$1" in
    --spark-home) [ $# -ge 2 ] || die "--spark-home needs a directory"; SH="$2"; shift 2 ;;
    --spark-home=*) SH="${1#*=}"; shift ;;
    --out) [ $# -ge 2 ] || die "--out needs a directory"; OUT="$2"; shift 2 ;;
    --out=*) OUT="${1#*=}"; shift ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (usage: build.sh [--spark-home DIR] [--out DIR])" ;;
  esac
done

if [ -z "$SH" ]; then
  VENV="${HEARTH_PYSPARK_VENV:-$HOME/.cache/hearth-spark/venv-pyspark-4.3.0}"
  SH="$(ls -d "$VENV"/lib/python3*/site-packages/pyspark 2>/dev/null | head -n 1 || true)"
  [ -n "$SH" ] || die "no SPARK_HOME: set SPARK_HOME or --spark-home, or install pyspark in $VENV (looked for $VENV/lib/python3*/site-packages/pyspark)"
fi
[ -d "$SH/jars" ] || die "no Spark jars in $SH/jars (SPARK_HOME / --spark-home must be a Spark or pyspark dir holding jars/)"
ls "$SH"/jars/spark-core_*.jar >/dev/null 2>&1 || die "$SH/jars holds no spark-core_*.jar"
SH="$(cd "$SH" && pwd)"

command -v javac >/dev/null 2>&1 || die "javac not found on PATH (install a JDK 17 or newer, e.g. apt-get install openjdk-17-jdk-headless)"
command -v jar >/dev/null 2>&1 || die "jar not found on PATH (it ships with the JDK)"

SRC="$HERE/src/main/java"
RES="$HERE/src/main/resources"
CLONE="$(dirname "$HERE")"
case "$OUT" in /*) ;; *) OUT="$PWD/$OUT" ;; esac
OUT_ABS="$(realpath -m "$OUT" 2>/dev/null || echo "$OUT")"
case "$OUT_ABS/" in "$CLONE"/*) die "--out must be outside the clone ($OUT_ABS is under $CLONE)";; esac
mkdir -p "$OUT_ABS" || die "cannot create the output dir $OUT_ABS"
OUT="$(cd "$OUT_ABS" && pwd)"
JAR="$OUT/hearth-spark.jar"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/hearth-spark-build.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/classes"
find "$SRC" -name '*.java' | sort > "$TMP/sources"
[ -s "$TMP/sources" ] || die "no Java sources under $SRC"

javac --release 17 -nowarn -encoding UTF-8 -cp "$SH/jars/*" -d "$TMP/classes" @"$TMP/sources" \
  || die "javac failed (against $SH/jars)"
cp -R "$RES"/. "$TMP/classes/"
jar --create --file "$TMP/hearth-spark.jar" -C "$TMP/classes" . || die "jar failed"
mv -f "$TMP/hearth-spark.jar" "$JAR"
echo "built against $SH" >&2
echo "$JAR"
