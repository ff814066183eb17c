#!/usr/bin/env python3
"""Measures what a Redis outage costs a Herald node (issue #7, "Redis down and back").

Run from the repository root:  .venv/bin/python scripts/outage.py [--runs 5] [--herald PATH]

It starts its own redis-server on a free port and one herald (`--redis redis://127.0.0.1:<port>`),
connects a python-socketio client subscribed to a public channel, and publishes a Laravel-format
event (`{"event":"tick","data":{"seq":N,"t":<ms>},"socket":null}`) every 10 ms with `PUBLISH`,
from a publisher thread that reconnects on its own. Two scenarios, each repeated `--runs` times:

  kill     SIGKILL redis-server, restart it on the same port 2 s later (server lost)
  pubsub   `redis-cli CLIENT KILL TYPE pubsub` (herald's subscription connection dropped,
           Redis itself stays up)

For each run it reports:
  failed    PUBLISH calls that raised (Redis unreachable: the event never entered Redis)
  lost      PUBLISH calls Redis accepted but the client never received (herald not subscribed;
            PUBLISH's receiver count is recorded too)
  window    first/last lost seq and their send times, relative to the fault
  ready     time from Redis being reachable again (kill) / from the CLIENT KILL (pubsub) to
            herald's GET /ready = 200, polled every 5 ms
  first     time from the same instant to the first delivered event published after the fault
"""
from __future__ import annotations

import argparse
import json
import re
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import itertools

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
import requests
import socketio

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHANNEL = "outage"
PERIOD = 0.010
SEQ = itertools.count(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def now_ms() -> float:
    return time.time() * 1000.0


class Redis:
    def __init__(self, port: int, workdir: str):
        self.port, self.workdir, self.proc = port, workdir, None

    def start(self) -> float:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.workdir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        while True:
            try:
                client.ping()
                return now_ms()  # reachable again
            except redis.RedisError:
                time.sleep(0.002)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


class Publisher(threading.Thread):
    """PUBLISH every 10 ms; on failure it records the seq as failed and carries on (redis-py
    reconnects on the next command)."""

    def __init__(self, port: int):
        super().__init__(daemon=True)
        # No redis-py retries (its default retries with backoff would hide the outage): a failed
        # PUBLISH is recorded, and the next one opens a new connection.
        self.client = redis.Redis(port=port, socket_connect_timeout=0.05, socket_timeout=0.5,
                                  retry=Retry(NoBackoff(), 0))
        self.sent: dict[int, tuple[float, int]] = {}   # seq -> (t_ms, receivers)
        self.failed: dict[int, float] = {}             # seq -> t_ms
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def run(self) -> None:
        next_at = time.monotonic()
        while not self.stop.is_set():
            seq = next(SEQ)  # unique across runs, so one listener serves every run
            t = now_ms()
            payload = json.dumps({"event": "tick", "data": {"seq": seq, "t": t}, "socket": None})
            try:
                receivers = self.client.publish(CHANNEL, payload)
                with self.lock:
                    self.sent[seq] = (t, receivers)
            except redis.RedisError:
                with self.lock:
                    self.failed[seq] = t
            next_at += PERIOD
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_at = time.monotonic()


class Listener:
    def __init__(self, url: str):
        self.received: dict[int, float] = {}  # seq -> receive time (ms)
        self.sio = socketio.Client(reconnection=False)

        @self.sio.on("tick")
        def tick(channel, data):
            self.received.setdefault(data["seq"], now_ms())

        self.sio.connect(url, transports=["websocket"], socketio_path="socket.io", wait_timeout=5)
        self.sio.emit("subscribe", {"channel": CHANNEL, "auth": {"headers": {}}})


def poll_ready(url: str, until_ok_after: float, timeout: float = 30.0) -> tuple[float | None, bool]:
    """Polls /ready every 5 ms; returns (time of the first 200 seen after `until_ok_after` following
    a non-200, whether a non-200 was seen)."""
    saw_down = False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            code = requests.get(url + "/ready", timeout=1).status_code
        except requests.RequestException:
            code = 0
        t = now_ms()
        if code != 200:
            saw_down = True
        elif saw_down or t >= until_ok_after:
            return t, saw_down
        time.sleep(0.005)
    return None, saw_down


def run_once(kind: str, rds: Redis, url: str, herald_log: str) -> dict:
    pub = Publisher(rds.port)
    pub.start()
    time.sleep(1.0)  # steady state
    log_offset = os.path.getsize(herald_log)
    t_fault = now_ms()
    if kind == "kill":
        rds.kill()
        # /ready must go 503 while Redis is away
        ready_down = False
        while now_ms() - t_fault < 2000:
            try:
                ready_down |= requests.get(url + "/ready", timeout=1).status_code == 503
            except requests.RequestException:
                pass
            time.sleep(0.05)
        t_back = rds.start()
        t_ready, _ = poll_ready(url, until_ok_after=t_back)
    else:
        subprocess.run(["redis-cli", "-p", str(rds.port), "CLIENT", "KILL", "TYPE", "pubsub"],
                       check=True, stdout=subprocess.DEVNULL)
        t_back = t_fault
        t_ready, ready_down = poll_ready(url, until_ok_after=t_fault + 1e9)
    time.sleep(1.0)  # steady again
    pub.stop.set()
    pub.join()
    time.sleep(0.5)  # let the last deliveries arrive
    with open(herald_log) as f:
        f.seek(log_offset)
        waits = [m.group(1) for m in re.finditer(r"retrying Redis in ([0-9.e-]+ seconds)", f.read())]
    return {"pub": pub, "t_fault": t_fault, "t_back": t_back, "t_ready": t_ready, "ready_down": ready_down,
            "waits": waits}


def analyse(kind: str, r: dict, received: dict[int, float]) -> dict:
    pub = r["pub"]
    t_fault, t_back = r["t_fault"], r["t_back"]
    lost = sorted(s for s in pub.sent if s not in received)
    lost_zero = [s for s in lost if pub.sent[s][1] == 0]
    after = [s for s in pub.sent if pub.sent[s][0] >= t_fault and s in received]
    first = min(after, key=lambda s: received[s]) if after else None
    row = {
        "failed": len(pub.failed),
        "lost": len(lost),
        "lost_receivers0": len(lost_zero),
        "lost_first": lost[0] if lost else None,
        "lost_last": lost[-1] if lost else None,
        "lost_from_ms": pub.sent[lost[0]][0] - t_fault if lost else None,
        "lost_to_ms": pub.sent[lost[-1]][0] - t_fault if lost else None,
        "lost_span_ms": pub.sent[lost[-1]][0] - pub.sent[lost[0]][0] if lost else 0.0,
        "ready_ms": r["t_ready"] - t_back if r["t_ready"] else None,
        "ready_went_503": r["ready_down"],
        "first_ms": received[first] - t_back if first else None,
        "first_seq": first,
        "published_ok": len(pub.sent),
        "waits": r["waits"],
    }
    # Anything lost while herald WAS subscribed (receivers > 0) would be a bug, not the outage.
    row["lost_while_subscribed"] = len(lost) - len(lost_zero)
    return row


def fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.0f}"
    return str(v)


def summary(rows: list[dict], key: str) -> str:
    vals = [r[key] for r in rows if r[key] is not None]
    if not vals:
        return "-"
    return f"{min(vals):.0f} / {statistics.median(vals):.0f} / {max(vals):.0f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--herald", default=os.path.join(ROOT, ".build/debug/herald"))
    ap.add_argument("--scenarios", default="kill,pubsub")
    args = ap.parse_args()

    workdir = tempfile.mkdtemp(prefix="herald-outage-")
    rport, hport = free_port(), free_port()
    rds = Redis(rport, workdir)
    rds.start()
    log_path = os.path.join(workdir, "herald.log")
    log = open(log_path, "w")
    herald = subprocess.Popen([args.herald, "--host", "127.0.0.1", "--port", str(hport),
                               "--redis", f"redis://127.0.0.1:{rport}", "--log-level", "info"],
                              stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{hport}"
    try:
        t, _ = poll_ready(url, until_ok_after=0)
        if t is None:
            print("herald never became ready; log:", open(log_path).read(), file=sys.stderr)
            return 1
        listener = Listener(url)
        time.sleep(0.3)
        print(f"herald {args.herald} (pid {herald.pid}) on :{hport}, redis-server on :{rport}; "
              f"publishing every {PERIOD * 1000:.0f} ms; all times in ms")
        results: dict[str, list[dict]] = {}
        for kind in args.scenarios.split(","):
            rows = []
            for i in range(args.runs):
                r = run_once(kind, rds, url, log_path)
                row = analyse(kind, r, listener.received)
                rows.append(row)
                print(f"{kind:6} run {i + 1}: published {row['published_ok']}, failed {row['failed']}, "
                      f"lost {row['lost']} (seq {fmt(row['lost_first'])}..{fmt(row['lost_last'])}, sent "
                      f"{fmt(row['lost_from_ms'])}..{fmt(row['lost_to_ms'])} ms after the fault, "
                      f"receivers=0 for {row['lost_receivers0']}), /ready 503 seen: {row['ready_went_503']}, "
                      f"ready +{fmt(row['ready_ms'])}, first event +{fmt(row['first_ms'])}; herald's backoff waits: "
                      f"{', '.join(row['waits']) or '-'}", flush=True)
                time.sleep(0.5)
            results[kind] = rows
        print()
        print("scenario | metric (ms or count)                                   | min / median / max")
        print("---------|--------------------------------------------------------|-------------------")
        labels = [
            ("failed", "PUBLISH failed (Redis unreachable; never entered Redis)"),
            ("lost", "accepted by Redis, never delivered (lost)"),
            ("lost_while_subscribed", "lost although PUBLISH counted a receiver (in flight)"),
            ("lost_span_ms", "lost window: last lost send - first lost send"),
            ("lost_from_ms", "first lost event sent, after the fault"),
            ("lost_to_ms", "last lost event sent, after the fault"),
            ("ready_ms", "/ready 200 again, after Redis back / CLIENT KILL"),
            ("first_ms", "first delivered event, after Redis back / CLIENT KILL"),
        ]
        for kind, rows in results.items():
            for key, label in labels:
                print(f"{kind:8} | {label:54} | {summary(rows, key)}")
        crashed = herald.poll() is not None
        reconnect_lines = sum(1 for line in open(log_path) if "retrying Redis in" in line)
        print(f"\nherald still running: {not crashed}; 'retrying Redis in' log lines: {reconnect_lines}")
        return 0 if not crashed else 1
    finally:
        herald.send_signal(signal.SIGTERM)
        try:
            herald.wait(10)
        except subprocess.TimeoutExpired:
            herald.kill()
        if rds.proc and rds.proc.poll() is None:
            rds.proc.terminate()
            rds.proc.wait()
        log.close()
        if os.environ.get("KEEP_OUTAGE_LOGS"):
            print("logs kept in", workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
