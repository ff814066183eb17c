#!/usr/bin/env python3
"""Does a capped kernel send buffer (`--send-buffer-bytes`) slow down clients that read? (RELIABILITY.md)

Run from the repository root:
    .venv/bin/python scripts/sndbuf_burst.py [--runs 5] [--send-buffer-bytes 131072 0] ...

Build the release binary first:
    swift build -c release --scratch-path .build-release --product herald

For each `--send-buffer-bytes` value (0 = Linux's autotuning) and run: starts its own
redis-server and a release herald (a Pusher app, `--max-outbound-bytes` as given), connects
`--clients` raw WebSocket readers (half Socket.IO 4, half Pusher 7, one channel) that read as
fast as Python's `recv` allows, then `PUBLISH`es a burst of `--events` Laravel events of `--size`
bytes through one Redis pipeline and times, per client, the last event's arrival after the first
`PUBLISH`. Prints each client's throughput (MB/s of WebSocket bytes), the slowest client's time,
and Herald's slow-consumer count (a reading client must never be cut). Everything on loopback.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import redis
import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from slowconsumer import APP_ID, APP_KEY, APP_SECRET, CHANNEL, EVENT, ROOT, open_client  # noqa: E402
from soak import free_port, wait_for_redis, wait_ready  # noqa: E402


def reader(kind: str, host: str, port: int, ready: threading.Barrier, out: dict) -> None:
    s, buf = open_client(kind, host, port)
    s.settimeout(30)
    tail, got = bytes(buf[-8:]), len(buf)
    ready.wait()
    while True:
        chunk = s.recv(1 << 20)
        if not chunk:
            out["ended"] = "EOF"
            break
        got += len(chunk)
        if b"LAST" in tail + chunk:
            out["done"] = time.monotonic()
            break
        tail = chunk[-8:]
    out["bytes"] = got
    s.close()


def one(args, sndbuf: int) -> dict:
    workdir = tempfile.mkdtemp(prefix="herald-burst-")
    rport, hport, host = free_port(), free_port(), "127.0.0.1"
    rds = subprocess.Popen(["redis-server", "--port", str(rport), "--bind", host, "--save", "", "--appendonly", "no",
                            "--dir", workdir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    herald = None
    try:
        wait_for_redis(rport)
        herald = subprocess.Popen(
            [args.herald, "--host", host, "--port", str(hport), "--redis", f"redis://{host}:{rport}",
             "--app-id", APP_ID, "--app-key", APP_KEY, "--app-secret", APP_SECRET, "--log-level", "warning",
             "--max-outbound-bytes", str(args.max_outbound_bytes), "--send-buffer-bytes", str(sndbuf)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://{host}:{hport}"
        if not wait_ready(url):
            raise RuntimeError("herald never became ready")
        ready = threading.Barrier(args.clients + 1)
        outs = [dict() for _ in range(args.clients)]
        threads = [threading.Thread(target=reader, args=("sio" if i % 2 == 0 else "pusher", host, hport, ready, outs[i]),
                                    daemon=True) for i in range(args.clients)]
        for t in threads:
            t.start()
        ready.wait()
        time.sleep(0.5)
        pad = "x" * max(0, args.size - 100)
        client = redis.Redis(port=rport)
        load = os.getloadavg()[0]
        start = time.monotonic()
        with client.pipeline(transaction=False) as pipe:
            for i in range(args.events):
                marker = "LAST" if i == args.events - 1 else "evt"
                pipe.publish(CHANNEL, '{"event":"%s","data":{"i":%d,"m":"%s","pad":"%s"},"socket":null}' % (
                    EVENT.replace("\\", "\\\\"), i, marker, pad))
            pipe.execute()
        for t in threads:
            t.join(60)
        cut = 0
        for line in requests.get(url + "/metrics", timeout=5).text.splitlines():
            if line.startswith("herald_slow_consumer_disconnects_total"):
                cut = int(float(line.rsplit(" ", 1)[1]))
        times = [o["done"] - start for o in outs if "done" in o]
        rates = [o["bytes"] / (o["done"] - start) / 1e6 for o in outs if "done" in o]
        return {"times": times, "rates": rates, "missing": len(outs) - len(times), "cut": cut, "load": load}
    finally:
        if herald is not None:
            herald.send_signal(signal.SIGTERM)
            try:
                herald.wait(10)
            except subprocess.TimeoutExpired:
                herald.kill()
        rds.terminate()
        rds.wait()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--herald", default=os.path.join(ROOT, ".build-release/release/herald"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--send-buffer-bytes", type=int, nargs="+", default=[131072, 0])
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--events", type=int, default=4000)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--max-outbound-bytes", type=int, default=1 << 20)
    args = ap.parse_args()
    ok = True
    results = {b: [] for b in args.send_buffer_bytes}
    for run in range(args.runs):
        for b in args.send_buffer_bytes:  # interleaved, so drifting machine load hits both alike
            r = one(args, b)
            results[b].append(r)
            ok &= r["missing"] == 0 and r["cut"] == 0
            print(f"run {run + 1} --send-buffer-bytes {b:>7}: slowest client {max(r['times'], default=float('nan')):.3f} s, "
                  f"MB/s per client {min(r['rates'], default=0):.1f}-{max(r['rates'], default=0):.1f}, "
                  f"missing {r['missing']}, cut {r['cut']}, load {r['load']:.2f}", flush=True)
    print(f"\n{args.clients} clients, burst of {args.events} events of ~{args.size} B, --max-outbound-bytes {args.max_outbound_bytes}")
    for b, rs in results.items():
        slowest = [max(r["times"]) for r in rs if r["times"]]
        print(f"  --send-buffer-bytes {b:>7}: slowest client's time, median {statistics.median(slowest):.3f} s "
              f"(min {min(slowest):.3f}, max {max(slowest):.3f}); cut {sum(r['cut'] for r in rs)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
