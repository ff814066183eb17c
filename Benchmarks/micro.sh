#!/usr/bin/env bash
# Runs Herald's micro-benchmarks (the nested package Benchmarks/Micro, ordo-one/benchmark) in
# release mode and writes their table into BENCHMARKS.md between the MICRO-RESULTS markers
# (date, nproc, CPU model, the exact command), and prints it.
#
#   Benchmarks/micro.sh                       # benchmarks the working tree
#   SNAPSHOT=1 Benchmarks/micro.sh            # benchmarks `git archive HEAD` (with this tree's
#                                             # Benchmarks/Micro), when the tree is mid-edit
#   FILTER='Pusher.*' Benchmarks/micro.sh     # only benchmarks matching the regex
#   WRITE=0 Benchmarks/micro.sh               # print only
#
# Build only (what CI checks):
#   swift build --package-path Benchmarks/Micro --scratch-path .build-micro-debug
set -euo pipefail
cd "$(dirname "$0")/.."
SCRATCH=${SCRATCH:-.build-micro}
PKG=Benchmarks/Micro
REV=$(git rev-parse --short HEAD 2>/dev/null || echo "?")
TREE="working tree at $REV"
if [ "${SNAPSHOT:-0}" = 1 ]; then
  # tar keeps the commit's mtimes, so an unchanged HEAD does not rebuild.
  SRC=.build-micro-src
  rm -rf "$SRC" && mkdir -p "$SRC"
  git archive HEAD | tar -x -C "$SRC"
  rm -rf "$SRC/Benchmarks/Micro" && mkdir -p "$SRC/Benchmarks/Micro"
  cp -R Benchmarks/Micro/Package.swift Benchmarks/Micro/Benchmarks "$SRC/Benchmarks/Micro/"
  PKG=$SRC/Benchmarks/Micro
  TREE="commit $REV (git archive HEAD)"
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

ARGS=(benchmark --no-progress --format markdown --path stdout)
[ -n "${FILTER:-}" ] && ARGS+=(--filter "$FILTER")
echo "==> swift package --package-path $PKG --scratch-path $SCRATCH ${ARGS[*]}" >&2
# The plugin builds the benchmark targets in release mode first.
swift package --package-path "$PKG" --scratch-path "$SCRATCH" "${ARGS[@]}" >"$WORK/out.md" 2>"$WORK/err.log" || {
  cat "$WORK/err.log" "$WORK/out.md" >&2; exit 1; }
COMMAND="${SNAPSHOT:+SNAPSHOT=$SNAPSHOT }${FILTER:+FILTER='$FILTER' }Benchmarks/micro.sh"

python3 - "$WORK/out.md" "$WORK/table.md" "$COMMAND" "$TREE" "swift package --package-path $PKG --scratch-path $SCRATCH ${ARGS[*]}" <<'PY'
import datetime, re, subprocess, sys
src, dst, command, tree, inner = sys.argv[1:6]
text = open(src, encoding="utf-8").read()
SCALE = {"": 1, "K": 1e3, "M": 1e6, "G": 1e9}
NS = {"ns": 1, "μs": 1e3, "µs": 1e3, "us": 1e3, "ms": 1e6, "s": 1e9}

def cells(line):
    return [c.strip() for c in line.strip().strip("|").split("|")]

results, name, header = [], None, None
for line in text.splitlines():
    if line.startswith("### "):
        name, header = line[4:].strip(), None
        results.append({"name": name})
    elif name and line.startswith("| Metric"):
        header = cells(line)
    elif name and header and line.startswith("|") and not line.startswith("|:"):
        row = dict(zip(header, cells(line)))
        label = row["Metric"]
        units = re.findall(r"\(([^()]*)\)", label)
        if label.startswith("Time (wall clock)"):
            f = NS.get(units[-1], 1) if len(units) > 1 else 1
            results[-1]["p50_ns"] = float(row["p50"]) * f
            results[-1]["p99_ns"] = float(row["p99"]) * f
            results[-1]["samples"] = row.get("Samples", "")
        elif label.startswith("Throughput"):
            f = SCALE.get(units[-1], 1) if len(units) > 1 else 1
            results[-1]["ops"] = float(row["p50"]) * f
        elif label.startswith("Malloc (total)"):
            results[-1]["mallocs"] = row["p50"]

def ns(v):
    if v is None: return "–"
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}"
def rate(v):
    if v is None: return "–"
    return f"{v/1e6:.2f} M/s" if v >= 1e6 else f"{v/1e3:.0f} k/s"

cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
load = open("/proc/loadavg").read().split()[0]
now = datetime.datetime.now(datetime.timezone.utc)
with open(dst, "w", encoding="utf-8") as out:
    print(f"Run {now:%Y-%m-%d %H:%M} UTC on {nproc} cores ({cpu}), load average {load} at the end; Herald {tree}, release build; "
          "ordo-one/benchmark 1.38.1 with its malloc interposer. Per operation (the inner loop of 1,000 divided out), "
          "median (p50) and p99 over the samples.\n", file=out)
    print("| benchmark (one operation) | p50 ns/op | p99 ns/op | throughput (p50) | mallocs/op | samples |", file=out)
    print("|---|---|---|---|---|---|", file=out)
    for r in sorted(results, key=lambda r: r["name"]):
        print(f'| {r["name"]} | {ns(r.get("p50_ns"))} | {ns(r.get("p99_ns"))} | {rate(r.get("ops"))} | {r.get("mallocs", "–")} | {r.get("samples", "–")} |', file=out)
    print(f"\nCommand: `{command}`, which runs `{inner}`.", file=out)
PY
cat "$WORK/out.md"
echo
cat "$WORK/table.md"
if [ "${WRITE:-1}" = 1 ] && [ -f BENCHMARKS.md ]; then
  python3 - "$WORK/table.md" <<'PY'
import sys
doc = open("BENCHMARKS.md", encoding="utf-8").read()
table = open(sys.argv[1], encoding="utf-8").read()
start, end = "<!-- MICRO-RESULTS -->", "<!-- /MICRO-RESULTS -->"
if start in doc:
    head, rest = doc.split(start, 1)
    _, tail = rest.split(end, 1)
    open("BENCHMARKS.md", "w", encoding="utf-8").write(head + start + "\n" + table + end + tail)
else:
    print("BENCHMARKS.md has no MICRO-RESULTS markers; not written", file=sys.stderr)
PY
fi
