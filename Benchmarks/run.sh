#!/usr/bin/env bash
# Runs the benchmark matrix: Herald (release build) and the python-socketio peer, started fresh
# for every cell, measured by the same load generator with the same parameters, in one run.
# Writes the results table into BENCHMARKS.md (between the RESULTS markers) and prints it.
#
#   Benchmarks/run.sh                 # default matrix
#   CELLS="seed:1000:1000 echo:1000:100" DURATION=10 Benchmarks/run.sh
#   PEER=0 Benchmarks/run.sh          # Herald only
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CELLS=${CELLS:-"seed:1000:100 seed:1000:1000 echo:1000:100 echo:1000:1000"}
DURATION=${DURATION:-10}
PEER=${PEER:-1}
# A scratch path of its own, so a release build never waits on (or disturbs) the debug build.
BUILD_PATH=${BUILD_PATH:-.build-release}
BIN=$BUILD_PATH/release
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; [ -f "$WORK/redis.pid" ] && kill "$(cat "$WORK/redis.pid")" 2>/dev/null; rm -rf "$WORK"' EXIT

ulimit -n 20000 2>/dev/null || true
scripts/setup.sh --no-build
echo "==> swift build -c release (herald, herald-load)"
swift build -c release --scratch-path "$BUILD_PATH" --product herald
swift build -c release --scratch-path "$BUILD_PATH" --product herald-load
if [ "$PEER" = 1 ]; then
  [ -x .venv-bench/bin/python ] || python3 -m venv .venv-bench
  .venv-bench/bin/pip install -q --disable-pip-version-check -r Benchmarks/peer/requirements.txt
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
RPORT=$(free_port)
redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes --dir "$WORK" --pidfile "$WORK/redis.pid" --logfile "$WORK/redis.log"
sleep 0.5

wait_port() { for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

run_cell() { # relay mode connections rate
  local relay=$1 mode=$2 conns=$3 rate=$4 port pid
  port=$(free_port)
  if [ "$relay" = herald ]; then
    local extra=""; [ "$mode" = seed ] && extra="--emit-to-all"
    "$BIN/herald" --host 127.0.0.1 --port "$port" --redis "redis://127.0.0.1:$RPORT" --log-level error $extra >"$WORK/relay.log" 2>&1 &
  else
    .venv-bench/bin/python Benchmarks/peer/seed_relay.py --port "$port" --redis "redis://127.0.0.1:$RPORT" --mode "$mode" >"$WORK/relay.log" 2>&1 &
  fi
  pid=$!
  wait_port "$port"
  local out
  out=$("$BIN/herald-load" --port "$port" --redis "redis://127.0.0.1:$RPORT" --mode "$mode" \
        --connections "$conns" --rate "$rate" --duration "$DURATION" --pid "$pid" 2>&1 || true)
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
  echo "$out" >&2
  echo "$out" | sed -n 's/^RESULT //p' | tail -1
}

results="$WORK/results.jsonl"
for cell in $CELLS; do
  IFS=: read -r mode conns rate <<<"$cell"
  echo "==> herald $mode ${conns}x${rate}" >&2
  r=$(run_cell herald "$mode" "$conns" "$rate"); echo "{\"relay\":\"herald\",\"cell\":\"$cell\",\"r\":${r:-null}}" >>"$results"
  if [ "$PEER" = 1 ]; then
    echo "==> python-socketio $mode ${conns}x${rate}" >&2
    r=$(run_cell peer "$mode" "$conns" "$rate"); echo "{\"relay\":\"peer\",\"cell\":\"$cell\",\"r\":${r:-null}}" >>"$results"
  fi
done

python3 - "$results" "$DURATION" <<'PY' >"$WORK/table.md"
import json, sys, platform, subprocess, datetime
rows = [json.loads(l) for l in open(sys.argv[1])]
cells = []
for r in rows:
    if r["cell"] not in cells: cells.append(r["cell"])
def get(relay, cell):
    for r in rows:
        if r["relay"] == relay and r["cell"] == cell: return r["r"]
cpu = next((l.split(":",1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
print(f"Run {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC on {nproc} cores ({cpu}), {sys.argv[2]} s per cell, load generator and Redis on the same machine.\n")
print("| cell (mode:connections:events/s) | Herald µs/delivery | Herald loss | Herald p50 / p99 ms | Herald KiB/conn | peer µs/delivery | peer loss | peer p99 ms | CPU ratio peer÷Herald |")
print("|---|---|---|---|---|---|---|---|---|")
for c in cells:
    h, p = get("herald", c), get("peer", c)
    def f(x, k, d="–"): return d if not x or x.get(k) is None else x[k]
    ratio = "–"
    if h and p and h["us_per_delivery"] > 0 and p["us_per_delivery"] > 0:
        ratio = f'{p["us_per_delivery"]/h["us_per_delivery"]:.0f}×'
    print(f'| {c} | {f(h,"us_per_delivery")} | {f(h,"loss_pct")} % | {f(h,"p50_ms")} / {f(h,"p99_ms")} | {f(h,"rss_kib_per_conn")} | {f(p,"us_per_delivery")} | {f(p,"loss_pct")} % | {f(p,"p99_ms")} | {ratio} |')
PY
cat "$WORK/table.md"
if [ -f BENCHMARKS.md ] && grep -q "<!-- RESULTS -->" BENCHMARKS.md; then
  python3 - "$WORK/table.md" <<'PY'
import sys
table = open(sys.argv[1]).read()
doc = open("BENCHMARKS.md").read()
head, rest = doc.split("<!-- RESULTS -->", 1)
_, tail = rest.split("<!-- /RESULTS -->", 1)
open("BENCHMARKS.md", "w").write(head + "<!-- RESULTS -->\n" + table + "<!-- /RESULTS -->" + tail)
PY
fi
