#!/usr/bin/env bash
# Runs the benchmark matrix: Herald (release build) and the python-socketio peer, started fresh
# for every cell, measured by the same load generator with the same parameters, in one run.
# Writes the results tables into BENCHMARKS.md (Socket.IO cells between the RESULTS markers,
# Pusher cells between the PUSHER-RESULTS markers) and prints them.
#
#   Benchmarks/run.sh                 # default matrix
#   CELLS="seed:1000:1000 echo:1000:100" DURATION=10 Benchmarks/run.sh
#   PEER=0 Benchmarks/run.sh          # Herald only
#   CELLS="$PUSHER_CELLS" Benchmarks/run.sh          # the Pusher cells (below)
#   HERALD_BIN=/path/to/herald Benchmarks/run.sh     # measure that binary instead of building one
#   PLOT_ONLY=1 Benchmarks/run.sh     # only redraw Benchmarks/results.png from BENCHMARKS.md
#
# A cell is [pusher-]MODE:CONNECTIONS:EVENTS_PER_S. MODE is seed or echo (publish for DURATION
# seconds), idle (connect, subscribe one channel each, stay idle 3 s: RSS per connection; then
# 1 s of light publishing) or storm (the same with 1 s idle: connect rate). `pusher-` cells
# speak Pusher 7 to Herald started with a Pusher app (no --emit-to-all: in pusher-seed every
# connection subscribes to every channel instead); no peer speaks Pusher here, so they run
# Herald only.
#   PUSHER_CELLS="pusher-seed:10000:100 pusher-seed:1000:1000 pusher-echo:10000:1000 pusher-echo:1000:100 pusher-idle:19900:10 pusher-storm:10000:10"
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# matplotlib in the git-ignored .venv-bench (the peer's virtualenv) draws the plot.
plot_results() {
  [ -x .venv-bench/bin/python ] || python3 -m venv .venv-bench
  .venv-bench/bin/python -c 'import matplotlib' 2>/dev/null \
    || .venv-bench/bin/pip install -q --disable-pip-version-check -r Benchmarks/requirements-plot.txt
  .venv-bench/bin/python Benchmarks/plot.py BENCHMARKS.md Benchmarks/results.png
}
if [ "${PLOT_ONLY:-0}" = 1 ]; then plot_results; exit 0; fi
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
if [ -n "${HERALD_BIN:-}" ]; then
  echo "==> swift build -c release (herald-load); herald: $HERALD_BIN"
  HERALD=$HERALD_BIN
else
  echo "==> swift build -c release (herald, herald-load)"
  swift build -c release --scratch-path "$BUILD_PATH" --product herald
  HERALD=$BIN/herald
fi
swift build -c release --scratch-path "$BUILD_PATH" --product herald-load
NEED_PEER=0
for cell in $CELLS; do case $cell in pusher-*) ;; *) NEED_PEER=$PEER ;; esac; done
if [ "$NEED_PEER" = 1 ]; then
  [ -x .venv-bench/bin/python ] || python3 -m venv .venv-bench
  .venv-bench/bin/pip install -q --disable-pip-version-check -r Benchmarks/peer/requirements.txt
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
RPORT=$(free_port)
redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes --dir "$WORK" --pidfile "$WORK/redis.pid" --logfile "$WORK/redis.log"
sleep 0.5

wait_port() { for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

run_cell() { # relay protocol mode connections rate
  local relay=$1 proto=$2 mode=$3 conns=$4 rate=$5 port pid
  # idle and storm cells connect, subscribe (one channel each, as echo), wait, then publish
  # lightly for 1 s to show the connections are live.
  local loadmode=$mode duration=$DURATION idle=1
  case $mode in idle) loadmode=echo duration=1 idle=3 ;; storm) loadmode=echo duration=1 idle=1 ;; esac
  port=$(free_port)
  if [ "$relay" = herald ]; then
    local extra=()
    [ "$proto" = socketio ] && [ "$mode" = seed ] && extra+=(--emit-to-all)
    [ "$proto" = pusher ] && extra+=(--app-id 1 --app-key app-key --app-secret app-secret)
    "$HERALD" --host 127.0.0.1 --port "$port" --redis "redis://127.0.0.1:$RPORT" --log-level error ${extra[@]+"${extra[@]}"} >"$WORK/relay.log" 2>&1 &
  else
    .venv-bench/bin/python Benchmarks/peer/seed_relay.py --port "$port" --redis "redis://127.0.0.1:$RPORT" --mode "$loadmode" >"$WORK/relay.log" 2>&1 &
  fi
  pid=$!
  wait_port "$port"
  local out
  out=$("$BIN/herald-load" --port "$port" --redis "redis://127.0.0.1:$RPORT" --protocol "$proto" --app-key app-key \
        --mode "$loadmode" --connections "$conns" --rate "$rate" --duration "$duration" --idle "$idle" --pid "$pid" 2>&1 || true)
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
  echo "$out" >&2
  echo "$out" | sed -n 's/^RESULT //p' | tail -1
}

results="$WORK/results.jsonl"
for cell in $CELLS; do
  IFS=: read -r mode conns rate <<<"$cell"
  proto=socketio
  case $mode in pusher-*) proto=pusher mode=${mode#pusher-} ;; esac
  echo "==> herald $proto $mode ${conns}x${rate}" >&2
  r=$(run_cell herald "$proto" "$mode" "$conns" "$rate"); echo "{\"relay\":\"herald\",\"cell\":\"$cell\",\"r\":${r:-null}}" >>"$results"
  if [ "$PEER" = 1 ] && [ "$proto" = socketio ]; then
    echo "==> python-socketio $mode ${conns}x${rate}" >&2
    r=$(run_cell peer "$proto" "$mode" "$conns" "$rate"); echo "{\"relay\":\"peer\",\"cell\":\"$cell\",\"r\":${r:-null}}" >>"$results"
  fi
done
COMMAND="CELLS=\"$CELLS\" DURATION=$DURATION${HERALD_BIN:+ HERALD_BIN=$HERALD_BIN} Benchmarks/run.sh"

python3 - "$results" "$DURATION" "$WORK" "$COMMAND" <<'PY'
import json, sys, subprocess, datetime
results, duration, work, command = sys.argv[1:5]
rows = [json.loads(l) for l in open(results)]
cells = []
for r in rows:
    if r["cell"] not in cells: cells.append(r["cell"])
def get(relay, cell):
    for r in rows:
        if r["relay"] == relay and r["cell"] == cell: return r["r"]
def f(x, k, d="–"): return d if not x or x.get(k) is None else x[k]
cpu = next((l.split(":",1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
head = f"Run {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on {nproc} cores ({cpu}), {duration} s per publishing cell, load generator and Redis on the same machine."

sio = [c for c in cells if not c.startswith("pusher-")]
with open(f"{work}/table.md", "w") as out:
    if sio:
        print(head + "\n", file=out)
        print("| cell (mode:connections:events/s) | Herald µs/delivery | Herald loss | Herald p50 / p99 ms | Herald KiB/conn | peer µs/delivery | peer loss | peer p99 ms | CPU ratio peer÷Herald |", file=out)
        print("|---|---|---|---|---|---|---|---|---|", file=out)
        for c in sio:
            h, p = get("herald", c), get("peer", c)
            ratio = "–"
            if h and p and h["us_per_delivery"] > 0 and p["us_per_delivery"] > 0:
                ratio = f'{p["us_per_delivery"]/h["us_per_delivery"]:.0f}×'
            print(f'| {c} | {f(h,"us_per_delivery")} | {f(h,"loss_pct")} % | {f(h,"p50_ms")} / {f(h,"p99_ms")} | {f(h,"rss_kib_per_conn")} | {f(p,"us_per_delivery")} | {f(p,"loss_pct")} % | {f(p,"p99_ms")} | {ratio} |', file=out)

# The issue's targets by cell shape (mode, connections, events/s); idle and storm by mode.
TARGETS = {
    ("seed", 10000, 100): ("≤ 1.4 µs, 0 % loss", lambda r: r["us_per_delivery"] <= 1.4 and r["loss_pct"] == 0),
    ("seed", 1000, 1000): ("≤ 1.5 µs, 0 % loss", lambda r: r["us_per_delivery"] <= 1.5 and r["loss_pct"] == 0),
    ("echo", 10000, 1000): ("≤ 1.6 µs, 0 % loss", lambda r: r["us_per_delivery"] <= 1.6 and r["loss_pct"] == 0),
    ("echo", 1000, 100): ("≤ 22 µs, p99 ≤ 7 ms", lambda r: r["us_per_delivery"] <= 22 and (r["p99_ms"] or 1e9) <= 7),
    ("idle",): ("≤ 6 KiB RSS/conn", lambda r: r["rss_kib_per_conn"] <= 6 and r["failed"] == 0),
    ("storm",): ("≥ 5,000 conn/s, no failure", lambda r: r["connect_per_s"] >= 5000 and r["failed"] == 0 and r["established"] == r["connections"]),
}
pus = [c for c in cells if c.startswith("pusher-")]
with open(f"{work}/pusher-table.md", "w") as out:
    if pus:
        print(head + " Herald only: no peer that speaks Pusher runs here.\n", file=out)
        print("| cell (pusher-mode:connections:events/s) | established / failed | connect/s | µs/delivery | loss | deliveries/s | p50 / p99 / p99.9 / max ms | KiB/conn | target | status |", file=out)
        print("|---|---|---|---|---|---|---|---|---|---|", file=out)
        for c in pus:
            h = get("herald", c)
            mode, conns, rate = c[len("pusher-"):].split(":")
            t = TARGETS.get((mode, int(conns), int(rate))) or TARGETS.get((mode,))
            status = "–"
            if t:
                status = "no result" if not h else ("met" if t[1](h) else "**missed**")
            print(f'| {c} | {f(h,"established")} / {f(h,"failed")} | {f(h,"connect_per_s")} | {f(h,"us_per_delivery")} | {f(h,"loss_pct")} % | {f(h,"delivery_per_s")} | {f(h,"p50_ms")} / {f(h,"p99_ms")} / {f(h,"p999_ms")} / {f(h,"max_ms")} | {f(h,"rss_kib_per_conn")} | {t[0] if t else "–"} | {status} |', file=out)
        print(f"\nCommand: `{command}`", file=out)
PY
cat "$WORK/table.md" "$WORK/pusher-table.md"
# Each table replaces its own block in BENCHMARKS.md; a run without cells of a kind leaves that
# block alone. WRITE=0 only prints.
if [ "${WRITE:-1}" = 1 ] && [ -f BENCHMARKS.md ]; then
  python3 - "$WORK/table.md" "$WORK/pusher-table.md" <<'PY'
import sys
doc = open("BENCHMARKS.md").read()
for path, marker in ((sys.argv[1], "RESULTS"), (sys.argv[2], "PUSHER-RESULTS")):
    table = open(path).read()
    start, end = f"<!-- {marker} -->", f"<!-- /{marker} -->"
    if not table or start not in doc: continue
    head, rest = doc.split(start, 1)
    _, tail = rest.split(end, 1)
    doc = head + start + "\n" + table + end + tail
open("BENCHMARKS.md", "w").write(doc)
PY
fi
# The plot (Benchmarks/results.png, linked from BENCHMARKS.md) is drawn from the tables now in
# BENCHMARKS.md, so it always shows the latest Socket.IO and Pusher runs. PLOT=0 skips it;
# `PLOT_ONLY=1 Benchmarks/run.sh` only redraws it.
if [ "${WRITE:-1}" = 1 ] && [ "${PLOT:-1}" = 1 ] && [ -f BENCHMARKS.md ]; then
  plot_results || echo "warning: the plot was not drawn (matplotlib missing?)" >&2
fi
