#!/usr/bin/env python3
"""Connection-churn soak for Herald (issue #7): RSS flat, no leaked connections or descriptors.

Run from the repository root:  .venv/bin/python scripts/soak.py [--seconds 120] [--workers 6]
                                                                 [--herald .build/debug/herald]

Starts its own redis-server and one herald with a Pusher app (`--app-id 1 --app-key soak-key
--app-secret soak-secret-0123456789`) and `--ping-interval 5000 --ping-timeout 5000` (so an
abandoned polling session is reaped within ~10 s instead of 45 s). A background publisher sends
Laravel-format events through Redis `PUBLISH` every 50 ms and Pusher HTTP API events every 250 ms.
For `--seconds`, `--workers` threads repeatedly:
  * open a connection, one of
      sio-ws    Socket.IO 4 over a raw WebSocket (websocket-client speaking Engine.IO 4)
      sio-poll  Socket.IO over long-polling (python-socketio client)
      pusher    Pusher protocol 7 over a raw WebSocket (websocket-client), incl. a presence
                channel signed with the `pusher` library's `authenticate`
  * subscribe to three channels, wait for two events (or 3 s), and
  * leave cleanly (Socket.IO disconnect / WebSocket close frame), or abruptly: a TCP reset
    (SO_LINGER 0, no close frame) for WebSockets, an abandoned session (no more polls) for polling.
Every 5 s it samples herald's VmRSS, open descriptors, threads, and the /metrics gauges
`herald_connections` (summed over protocols) and `herald_subscriptions`. At the end, after every
client is gone and a settle period, it checks: both gauges 0, descriptors back to the baseline
taken before the first client (± --fd-slack), RSS growth from the first sample after warm-up to
the last within max(--rss-slack-mb, 10 %). Prints the series and a verdict; exit 1 on FAIL.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pusher
import redis
import requests
import socketio
import websocket

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APP_ID, APP_KEY, APP_SECRET = "1", "soak-key", "soak-secret-0123456789"
CHANNELS = [f"soak-{i}" for i in range(4)]
PRESENCE = "presence-soak"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_redis(port: int) -> None:
    """Waits (about 4 s at most) until the redis-server on `port` answers PING."""
    for _ in range(200):
        try:
            redis.Redis(port=port).ping()
            return
        except redis.RedisError:
            time.sleep(0.02)


def wait_ready(url: str) -> bool:
    """Waits (500 tries, 20 ms apart) until the herald at `url` answers /ready with 200."""
    for _ in range(500):
        try:
            if requests.get(url + "/ready", timeout=1).status_code == 200:
                return True
        except requests.RequestException:
            pass
        time.sleep(0.02)
    return False


def proc_sample(pid: int) -> dict:
    status = open(f"/proc/{pid}/status").read()
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
    threads = int(re.search(r"Threads:\s+(\d+)", status).group(1))
    return {"rss_kb": rss, "fds": len(os.listdir(f"/proc/{pid}/fd")), "threads": threads}


def gauges(url: str) -> dict:
    text = requests.get(url + "/metrics", timeout=5).text
    conns = subs = 0.0
    for line in text.splitlines():
        if line.startswith("herald_connections"):
            conns += float(line.split()[-1])
        elif line.startswith("herald_subscriptions"):
            subs += float(line.split()[-1])
    return {"connections": int(conns), "subscriptions": int(subs)}


def abrupt(sock: socket.socket) -> None:
    """Drops a TCP connection with a reset: no close frame, no FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    except OSError:
        pass
    sock.close()


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = collections.Counter()

    def add(self, key: str, n: int = 1) -> None:
        with self.lock:
            self.counts[key] += n


def sio_ws_session(host: str, port: int, rng: random.Random, stats: Stats) -> None:
    ws = websocket.create_connection(f"ws://{host}:{port}/socket.io/?EIO=4&transport=websocket", timeout=5)
    try:
        assert ws.recv().startswith("0")       # Engine.IO open
        ws.send("40")                           # Socket.IO connect
        while not ws.recv().startswith("40"):
            pass
        for channel in rng.sample(CHANNELS, 3):
            ws.send("42" + json.dumps(["subscribe", {"channel": channel, "auth": {"headers": {}}}]))
        got, deadline = 0, time.monotonic() + 3
        ws.settimeout(0.5)
        while got < 2 and time.monotonic() < deadline:
            try:
                frame = ws.recv()
            except websocket.WebSocketTimeoutException:
                continue
            if frame == "2":
                ws.send("3")
            elif frame.startswith("42"):
                got += 1
        stats.add("events", got)
        if got < 2:
            stats.add("sessions_short_of_events")
        if rng.random() < 0.5:
            ws.send("41")
            ws.close()
            stats.add("sio-ws clean")
        else:
            abrupt(ws.sock)
            stats.add("sio-ws abrupt")
    except Exception:
        abrupt(ws.sock) if ws.sock else None
        raise


def sio_poll_session(host: str, port: int, rng: random.Random, stats: Stats) -> None:
    url = f"http://{host}:{port}"
    if rng.random() < 0.5:
        received = []
        sio = socketio.Client(reconnection=False)
        sio.on("*", lambda event, *args: received.append(event))
        sio.connect(url, transports=["polling"], socketio_path="socket.io", wait_timeout=5)
        for channel in rng.sample(CHANNELS, 3):
            sio.emit("subscribe", {"channel": channel, "auth": {"headers": {}}})
        deadline = time.monotonic() + 3
        while len(received) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        stats.add("events", len(received))
        if len(received) < 2:
            stats.add("sessions_short_of_events")
        sio.disconnect()
        stats.add("sio-poll clean")
        return
    # Abandoned: a raw Engine.IO polling session that stops polling without saying goodbye.
    base = f"{url}/socket.io/?EIO=4&transport=polling"
    with requests.Session() as http:
        open_packet = http.get(base, timeout=5).text
        sid = json.loads(open_packet[open_packet.index("{"):])["sid"]
        session = f"{base}&sid={sid}"
        http.post(session, data="40", timeout=5)
        http.get(session, timeout=30)  # the Socket.IO CONNECT reply
        body = "\x1e".join("42" + json.dumps(["subscribe", {"channel": c, "auth": {"headers": {}}}])
                           for c in rng.sample(CHANNELS, 3))
        http.post(session, data=body, timeout=5)
        got, deadline = 0, time.monotonic() + 3
        while got < 2 and time.monotonic() < deadline:
            payload = http.get(session, timeout=30).text
            for packet in payload.split("\x1e"):
                if packet == "2":
                    http.post(session, data="3", timeout=5)
                elif packet.startswith("42"):
                    got += 1
        stats.add("events", got)
        if got < 2:
            stats.add("sessions_short_of_events")
    stats.add("sio-poll abandoned")


def pusher_session(host: str, port: int, rng: random.Random, stats: Stats, signer: pusher.Pusher, user: int) -> None:
    ws = websocket.create_connection(f"ws://{host}:{port}/app/{APP_KEY}?protocol=7&client=soak&version=1.0", timeout=5)
    try:
        established = json.loads(ws.recv())
        assert established["event"] == "pusher:connection_established", established
        socket_id = json.loads(established["data"])["socket_id"]
        for channel in rng.sample(CHANNELS, 2):
            ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": channel}}))
        auth = signer.authenticate(PRESENCE, socket_id, {"user_id": str(user), "user_info": {"name": f"u{user}"}})
        ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": PRESENCE, **auth}}))
        got, deadline = 0, time.monotonic() + 3
        ws.settimeout(0.5)
        while got < 2 and time.monotonic() < deadline:
            try:
                frame = json.loads(ws.recv())
            except websocket.WebSocketTimeoutException:
                continue
            event = frame.get("event", "")
            if event == "pusher:ping":
                ws.send(json.dumps({"event": "pusher:pong", "data": {}}))
            elif event == "pusher:error":
                stats.add("pusher errors")
            elif not event.startswith("pusher"):  # pusher: and pusher_internal: frames
                got += 1
        stats.add("events", got)
        if got < 2:
            stats.add("sessions_short_of_events")
        if rng.random() < 0.5:
            ws.close()
            stats.add("pusher clean")
        else:
            abrupt(ws.sock)
            stats.add("pusher abrupt")
    except Exception:
        abrupt(ws.sock) if ws.sock else None
        raise


def worker(index: int, host: str, port: int, stop: threading.Event, stats: Stats, errors: list) -> None:
    rng = random.Random(index)
    signer = pusher.Pusher(app_id=APP_ID, key=APP_KEY, secret=APP_SECRET)
    n = 0
    while not stop.is_set():
        n += 1
        mode = rng.choice(["sio-ws", "sio-poll", "pusher"])
        try:
            if mode == "sio-ws":
                sio_ws_session(host, port, rng, stats)
            elif mode == "sio-poll":
                sio_poll_session(host, port, rng, stats)
            else:
                pusher_session(host, port, rng, stats, signer, user=index * 1000 + n % 5)
            stats.add("sessions")
        except Exception as error:  # counted and shown; the soak goes on
            stats.add("session errors")
            if len(errors) < 10:
                errors.append(f"{mode}: {error!r}")


def publisher(port: int, hport: int, stop: threading.Event, stats: Stats) -> None:
    client = redis.Redis(port=port)
    api = pusher.Pusher(app_id=APP_ID, key=APP_KEY, secret=APP_SECRET, host="127.0.0.1", port=hport, ssl=False)
    i = 0
    while not stop.is_set():
        i += 1
        channel = CHANNELS[i % len(CHANNELS)]
        client.publish(channel, json.dumps({"event": "tick", "data": {"n": i}, "socket": None}))
        if i % 5 == 0:
            try:
                api.trigger([channel, PRESENCE], "api-tick", {"n": i})
            except Exception:
                stats.add("api trigger errors")
        stats.add("published")
        time.sleep(0.05)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--workers", type=int, default=6)
    ap.add_argument("--herald", default=os.path.join(ROOT, ".build/debug/herald"))
    ap.add_argument("--warmup", type=float, default=20, help="seconds before the RSS reference sample")
    ap.add_argument("--fd-slack", type=int, default=4)
    ap.add_argument("--rss-slack-mb", type=float, default=8)
    ap.add_argument("--settle", type=float, default=30, help="most seconds to wait for the gauges to reach 0")
    args = ap.parse_args()

    workdir = tempfile.mkdtemp(prefix="herald-soak-")
    rport, hport = free_port(), free_port()
    rds = subprocess.Popen(["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--save", "",
                            "--appendonly", "no", "--dir", workdir],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log_path = os.path.join(workdir, "herald.log")
    log = open(log_path, "w")
    herald = None
    try:
        wait_for_redis(rport)
        herald = subprocess.Popen(
            [args.herald, "--host", "127.0.0.1", "--port", str(hport), "--redis", f"redis://127.0.0.1:{rport}",
             "--app-id", APP_ID, "--app-key", APP_KEY, "--app-secret", APP_SECRET,
             "--ping-interval", "5000", "--ping-timeout", "5000", "--log-level", "warning"],
            stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{hport}"
        if not wait_ready(url):
            print("herald never became ready:\n" + open(log_path).read(), file=sys.stderr)
            return 1
        time.sleep(0.5)
        baseline = {**proc_sample(herald.pid), **gauges(url)}
        print(f"herald {args.herald} pid {herald.pid}; {args.workers} workers for {args.seconds:.0f} s; "
              f"baseline: rss {baseline['rss_kb'] / 1024:.1f} MiB, fds {baseline['fds']}, threads {baseline['threads']}")
        print(f"{'t (s)':>6} {'rss MiB':>8} {'fds':>5} {'thr':>4} {'conns':>6} {'subs':>5} {'sessions':>9}")

        stats, errors = Stats(), []
        stop_pub, stop_workers = threading.Event(), threading.Event()
        pub = threading.Thread(target=publisher, args=(rport, hport, stop_pub, stats), daemon=True)
        pub.start()
        workers = [threading.Thread(target=worker, args=(i, "127.0.0.1", hport, stop_workers, stats, errors), daemon=True)
                   for i in range(args.workers)]
        start = time.monotonic()
        for w in workers:
            w.start()
        series = []

        def sample(label: float) -> dict:
            s = {"t": label, **proc_sample(herald.pid), **gauges(url), "sessions": stats.counts["sessions"]}
            series.append(s)
            print(f"{s['t']:>6.0f} {s['rss_kb'] / 1024:>8.1f} {s['fds']:>5} {s['threads']:>4} "
                  f"{s['connections']:>6} {s['subscriptions']:>5} {s['sessions']:>9}", flush=True)
            return s

        next_sample = start
        while time.monotonic() - start < args.seconds:
            sample(time.monotonic() - start)
            next_sample += 5
            time.sleep(max(0.0, next_sample - time.monotonic()))
        stop_workers.set()
        for w in workers:
            w.join(30)
        stop_pub.set()
        pub.join(5)
        churn_end = time.monotonic()
        print(f"-- churn stopped at {churn_end - start:.0f} s; settling (abandoned polling sessions are reaped "
              f"after ping interval + timeout = 10 s)")
        settled_after = None
        while time.monotonic() - churn_end < args.settle:
            g = gauges(url)
            if g["connections"] == 0 and g["subscriptions"] == 0 and settled_after is None:
                settled_after = time.monotonic() - churn_end
                time.sleep(2)  # a little more, for descriptors closing behind the gauges
                break
            time.sleep(0.5)
        final = sample(time.monotonic() - start)

        ref = next((s for s in series if s["t"] >= args.warmup), series[0])
        growth_kb = final["rss_kb"] - ref["rss_kb"]
        allowed_kb = max(args.rss_slack_mb * 1024, 0.10 * ref["rss_kb"])
        peak = max(series, key=lambda s: s["rss_kb"])
        checks = [
            ("connections gauge back to 0", final["connections"] == 0, f"{final['connections']}"),
            ("subscriptions gauge back to 0", final["subscriptions"] == 0, f"{final['subscriptions']}"),
            (f"fds back to baseline ±{args.fd_slack}", abs(final["fds"] - baseline["fds"]) <= args.fd_slack,
             f"{final['fds']} vs {baseline['fds']}"),
            (f"RSS growth after warm-up ≤ {allowed_kb / 1024:.1f} MiB", growth_kb <= allowed_kb,
             f"{ref['rss_kb'] / 1024:.1f} MiB at {ref['t']:.0f} s -> {final['rss_kb'] / 1024:.1f} MiB "
             f"({growth_kb / 1024:+.1f} MiB; peak {peak['rss_kb'] / 1024:.1f} MiB at {peak['t']:.0f} s)"),
            ("threads back to baseline", final["threads"] <= baseline["threads"], f"{final['threads']} vs {baseline['threads']}"),
            ("herald still running", herald.poll() is None, ""),
        ]
        c = stats.counts
        print(f"\nsessions {c['sessions']} ({', '.join(f'{k} {c[k]}' for k in sorted(c) if ' ' in k and 'error' not in k)}); "
              f"session errors {c['session errors']}; sessions short of 2 events {c['sessions_short_of_events']}; "
              f"events received {c['events']}; publisher iterations {c['published']}; "
              f"gauges reached 0 {'%.1f s' % settled_after if settled_after is not None else 'NOT within ' + str(args.settle) + ' s'} after the churn")
        for e in errors:
            print("  error:", e)
        ok = True
        for name, passed, detail in checks:
            ok &= passed
            print(f"  [{'ok' if passed else 'FAIL'}] {name}: {detail}")
        warnings_in_log = sum(1 for line in open(log_path) if "error" in line.lower() or "critical" in line.lower())
        print(f"herald log lines mentioning error/critical: {warnings_in_log}")
        print("VERDICT:", "PASS" if ok else "FAIL")
        return 0 if ok else 1
    finally:
        if herald is not None:
            herald.send_signal(signal.SIGTERM)
            try:
                herald.wait(15)
            except subprocess.TimeoutExpired:
                herald.kill()
        rds.terminate()
        rds.wait()
        log.close()
        if os.environ.get("KEEP_SOAK_LOGS"):
            print("logs kept in", workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
