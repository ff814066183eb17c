#!/usr/bin/env python3
"""Does a client that stops reading cost anyone else anything? (issue #7, "Slow consumers")

Run from the repository root:  .venv/bin/python scripts/slowconsumer.py [--runs 3]
                               [--herald .build-release/release/herald] [--clients 200] ...

Build the release binary first:
    swift build -c release --scratch-path .build-release --product herald

Starts its own redis-server and one herald (`--max-outbound-bytes 262144` by default, a Pusher
app so both protocols are served), then:

  * `--clients` healthy clients (half Socket.IO 4 over a raw WebSocket, half Pusher protocol 7
    over a raw WebSocket), spread over `--procs` reader processes (selectors, no threads), all
    subscribed to one public channel; they answer pings and time every event;
  * a publisher process `PUBLISH`es Laravel-format events to that channel at `--rate` per second,
    `--size` bytes each, with the send time (`time.monotonic()`, one clock for every process on
    Linux), a sequence number and the phase in `data`;
  * four phases of `--phase-seconds` each, in the same run:
      baseline  no slow client
      stalled   `--slow-waves` waves of `--slow` clients (half Socket.IO, half Pusher; SO_RCVBUF
                4 KiB) that connect, subscribe and never read again, until Herald cuts them off
      after     the stalled clients are gone
      laggard   `--laggards` clients that read, but only every `--laggard-pause` s (slow but
                reading: their backlog peaks at about rate x frame size x pause, meant to stay
                below the limit); 0 skips the phase
  * `/metrics` is polled every 10 ms: `herald_slow_consumer_disconnects_total` gives each
    cut-off's time, from which the time from a wave's subscription to its cut-off follows;
  * after a wave is cut (and `--drain-delay` s, when `ss` shows what the kernel still queues for
    the cut sockets in FIN-WAIT-1; `--orphan-watch N` keeps watching them for up to N s), each
    stalled client resumes reading to see what Herald left it: the bytes still in the kernel
    buffers, then a close frame (its code), a `pusher:error`, a clean EOF or a reset.
  * `--slow 0` is the A/A control: the same phases without any stalled client.

Latency = receive time at the healthy client (one clock read per `recv`) minus the send time in
the payload: publisher -> Redis -> Herald -> kernel -> Python reader. Per phase it prints
p50/p90/p99/p99.9/max over every (client, event) pair, events lost per client, healthy clients
disconnected, Herald's CPU share, and the load average. The readers are Python: at 200 clients x
200 events/s they handle 40,000 frames/s, so their own scheduling is part of every number —
compare the phases with each other, not with other tools.
"""
from __future__ import annotations

import argparse
import base64
import json
import multiprocessing as mp
import os
import re
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from array import array

import redis
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APP_ID, APP_KEY, APP_SECRET = "1", "slow-key", "slow-secret-0123456789abcdef"
CHANNEL = "bench"
EVENT = "App\\Events\\Tick"
PHASES = ["baseline", "stalled", "after", "laggard"]
# seq, send time and phase, in the Socket.IO frame (plain JSON) and in Pusher's (data is a JSON string).
STAMP = re.compile(rb'seq\\?":(\d+),\\?"t\\?":([0-9.]+),\\?"p\\?":(\d+)')


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from soak import free_port, wait_for_redis, wait_ready  # noqa: E402  (shared with soak.py, sndbuf_burst.py)


# MARK: A minimal WebSocket client (raw sockets: the readers must be cheap, the stalled clients raw)

def client_frame(text: str, opcode: int = 1) -> bytes:
    """A masked client frame (zero mask key, which RFC 6455 allows)."""
    payload = text.encode()
    n = len(payload)
    if n < 126:
        head = bytes([0x80 | opcode, 0x80 | n])
    elif n < 65536:
        head = bytes([0x80 | opcode, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, 0x80 | 127]) + n.to_bytes(8, "big")
    return head + b"\0\0\0\0" + payload


def next_frame(buf: bytearray, pos: int = 0) -> tuple[int, int, int] | None:
    """(opcode, payload start, payload end) of the first complete frame at `buf[pos:]`, or None."""
    n = len(buf)
    if n - pos < 2:
        return None
    length, j = buf[pos + 1] & 0x7F, pos + 2
    if length == 126:
        if n - j < 2:
            return None
        length, j = int.from_bytes(buf[j:j + 2], "big"), j + 2
    elif length == 127:
        if n - j < 8:
            return None
        length, j = int.from_bytes(buf[j:j + 8], "big"), j + 8
    if buf[pos + 1] & 0x80:
        j += 4  # a server never masks, but be lenient
    if n < j + length:
        return None
    return buf[pos] & 0x0F, j, j + length


def ws_open(host: str, port: int, path: str, rcvbuf: int | None = None, timeout: float = 10) -> tuple[socket.socket, bytearray]:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:  # before connect, so the window scale is chosen for it
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout)
    s.connect((host, port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError(f"{path}: closed during the upgrade")
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    if not head.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(f"{path}: {head.splitlines()[0]!r}")
    return s, bytearray(rest)


def read_text(s: socket.socket, buf: bytearray) -> str:
    """Blocks for the next text frame (handshake only)."""
    while True:
        f = next_frame(buf)
        if f:
            opcode, a, b = f
            text = bytes(buf[a:b]).decode()
            del buf[:b]
            if opcode == 1:
                return text
            if opcode == 8:
                raise ConnectionError(f"closed during the handshake: {text!r}")
            continue
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("closed during the handshake")
        buf.extend(chunk)


def open_client(kind: str, host: str, port: int, rcvbuf: int | None = None) -> tuple[socket.socket, bytearray]:
    """Connects, joins and subscribes to CHANNEL; returns the socket and its unread bytes."""
    if kind == "sio":
        s, buf = ws_open(host, port, "/socket.io/?EIO=4&transport=websocket", rcvbuf)
        assert read_text(s, buf).startswith("0{")
        s.sendall(client_frame("40"))
        while not read_text(s, buf).startswith("40"):
            pass
        s.sendall(client_frame("42" + json.dumps(["subscribe", {"channel": CHANNEL}])))
    else:
        s, buf = ws_open(host, port, f"/app/{APP_KEY}?protocol=7&client=slowconsumer&version=1.0", rcvbuf)
        assert "connection_established" in read_text(s, buf)
        s.sendall(client_frame(json.dumps({"event": "pusher:subscribe", "data": {"channel": CHANNEL}})))
        while "subscription_succeeded" not in read_text(s, buf):
            pass
    return s, buf


# MARK: Healthy readers (one process each)

def reader_main(index: int, kinds: list[str], host: str, port: int, conn) -> None:
    """Opens its clients, reports ready, then times every event until told to stop."""
    clients = []
    for kind in kinds:
        s, buf = open_client(kind, host, port)
        s.setblocking(False)
        clients.append({"kind": kind, "sock": s, "buf": buf, "last": 0, "count": [0] * len(PHASES),
                        "gaps": 0, "closed": None})
    conn.send("ready")
    lat = [array("d") for _ in PHASES]
    sent = [array("d") for _ in PHASES]  # send times, to window the stalled phase
    sel = selectors.DefaultSelector()
    for c in clients:
        sel.register(c["sock"], selectors.EVENT_READ, c)
    sel.register(conn, selectors.EVENT_READ, None)
    cpu0 = time.process_time()
    running = True
    while running:
        for key, _ in sel.select(1.0):
            c = key.data
            if c is None:
                running = False
                break
            try:
                data = c["sock"].recv(262144)
            except BlockingIOError:
                continue
            except OSError as error:
                data, c["closed"] = b"", repr(error)
            now = time.monotonic()
            if not data:
                c["closed"] = c["closed"] or "EOF"
                sel.unregister(c["sock"])
                continue
            buf = c["buf"]
            buf.extend(data)
            pos = 0
            while True:
                f = next_frame(buf, pos)
                if f is None:
                    break
                opcode, a, b = f
                pos = b
                if opcode == 8:
                    c["closed"] = f"close frame {int.from_bytes(buf[a:a + 2], 'big') if b - a >= 2 else ''}"
                    continue
                if opcode != 1:
                    continue
                m = STAMP.search(buf, a, b)
                if m:
                    seq, t, p = int(m.group(1)), float(m.group(2)), int(m.group(3))
                    lat[p].append(now - t)
                    sent[p].append(t)
                    c["count"][p] += 1
                    if c["last"] and seq != c["last"] + 1:
                        c["gaps"] += 1
                    c["last"] = seq
                elif c["kind"] == "sio" and b - a == 1 and buf[a] == ord("2"):
                    c["sock"].sendall(client_frame("3"))
                elif c["kind"] == "pusher" and b"pusher:ping" in buf[a:b]:
                    c["sock"].sendall(client_frame('{"event":"pusher:pong","data":{}}'))
            if pos:
                del buf[:pos]
    conn.send({
        "lat": lat, "sent": sent, "cpu": time.process_time() - cpu0,
        "clients": [{k: c[k] for k in ("kind", "count", "gaps", "closed")} for c in clients],
    })
    for c in clients:
        c["sock"].close()


# MARK: Publisher (own process: its timing must not depend on the main process's threads)

def publisher_main(port: int, rate: float, size: int, phase, stop, conn) -> None:
    client = redis.Redis(port=port)
    pad = "x" * max(0, size - 120)
    period, seq, late = 1.0 / rate, 0, 0
    counts = [0] * len(PHASES)
    next_at = time.monotonic()
    while not stop.is_set():
        now = time.monotonic()
        if now < next_at:
            time.sleep(next_at - now)
        elif now - next_at > 0.005:
            late += 1
        seq += 1
        p = phase.value
        payload = ('{"event":%s,"data":{"seq":%d,"t":%.6f,"p":%d,"pad":"%s"},"socket":null}'
                   % (json.dumps(EVENT), seq, time.monotonic(), p, pad))
        client.publish(CHANNEL, payload)
        counts[p] += 1
        next_at += period
    conn.send({"counts": counts, "late": late, "bytes": len(payload)})


# MARK: Slow clients (threads of the main process)

def drain(s: socket.socket, buf: bytearray, limit: float = 10.0) -> str:
    """Reads what Herald left a stalled client after cutting it off; says how it ended. A
    connection still delivering after `limit` s was not cut (reading it makes it healthy)."""
    s.settimeout(2.0)
    got, outcome, notes = 0, None, []
    until = time.monotonic() + limit
    while outcome is None:
        if time.monotonic() > until:
            outcome = "still open after %.0f s of reading (not cut)" % limit
            break
        try:
            chunk = s.recv(262144)
        except socket.timeout:
            outcome = "open, silent for 2 s"
            break
        except ConnectionResetError:
            outcome = "reset"
            break
        if not chunk:
            outcome = "EOF"
        got += len(chunk)
        buf.extend(chunk)
        while (f := next_frame(buf)) is not None:
            opcode, a, b = f
            if opcode == 8:
                code = int.from_bytes(buf[a:a + 2], "big") if b - a >= 2 else None
                notes.append(f"close frame {code}")
            elif opcode == 1 and b"pusher:error" in buf[a:b]:
                m = re.search(rb'"code\\?":(\d+)', bytes(buf[a:b]))
                notes.append(f"pusher:error {m.group(1).decode() if m else '?'}")
            del buf[:b]
    s.close()
    return " + ".join(notes + [outcome]) + f" ({got // 1024} KiB left to read)"


def stalled_wave(kinds: list[str], host: str, port: int, rcvbuf: int) -> list[dict]:
    wave = []
    for kind in kinds:
        s, buf = open_client(kind, host, port, rcvbuf)
        wave.append({"kind": kind, "sock": s, "buf": buf, "subscribed": time.monotonic()})
    return wave


def laggard(kind: str, host: str, port: int, pause: float, stop: threading.Event, out: dict) -> None:
    s, buf = open_client(kind, host, port, 4096)
    total, max_burst, ended = 0, 0, None
    s.settimeout(1.0)
    while not stop.is_set() and ended is None:
        stop.wait(pause)
        burst = 0
        while True:  # read until caught up (the newest event read is < 20 ms old), Herald's buffer included
            try:
                chunk = s.recv(262144)
            except socket.timeout:
                break
            except OSError as error:
                ended = repr(error)
                break
            if not chunk:
                ended = "EOF"
                break
            burst += len(chunk)
            stamps = STAMP.findall(chunk[-4096:])
            if stamps and time.monotonic() - float(stamps[-1][1]) < 0.02:
                break
        total += burst
        max_burst = max(max_burst, burst)
    s.close()
    out.update({"kind": kind, "bytes": total, "max_burst": max_burst, "ended": ended})


# MARK: Herald's side

class MetricsPoller(threading.Thread):
    """Polls /metrics every 10 ms; records when the slow-consumer counter moves."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url, self.stop, self.cuts, self.value = url, threading.Event(), [], 0
        self.session = requests.Session()

    def read(self) -> dict:
        out = {}
        for line in self.session.get(self.url + "/metrics", timeout=5).text.splitlines():
            if line.startswith("herald_slow_consumer_disconnects_total") or line.startswith("herald_subscriptions") \
                    or line.startswith("herald_connections") or line.startswith("herald_events_dropped_total"):
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out

    def run(self) -> None:
        while not self.stop.is_set():
            t = time.monotonic()
            try:
                v = int(self.read().get("herald_slow_consumer_disconnects_total", 0))
            except requests.RequestException:
                v = self.value
            while self.value < v:
                self.value += 1
                self.cuts.append(t)
            self.stop.wait(0.01)


def send_queues(port: int, state: str = "established") -> list[tuple[int, int]]:
    """(Send-Q bytes, socket send buffer bytes) of Herald's connections in `state` (`ss -tmn`)."""
    out = subprocess.run(["ss", "-tmnH", "state", state, f"( sport = :{port} )"],
                         capture_output=True, text=True).stdout
    rows, send_q = [], None
    for line in out.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[1].isdigit():
            send_q = int(fields[1])
        m = re.search(r"skmem:\(.*?,tb(\d+),", line)
        if m and send_q is not None:
            rows.append((send_q, int(m.group(1))))
            send_q = None
    return rows


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(sorted_values, q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def summary(values) -> str:
    v = sorted(values)
    if not v:
        return "no events"
    ms = lambda x: x * 1000
    return (f"n={len(v):>7}  p50 {ms(pct(v, .5)):6.2f}  p90 {ms(pct(v, .9)):6.2f}  p99 {ms(pct(v, .99)):6.2f}  "
            f"p99.9 {ms(pct(v, .999)):6.2f}  max {ms(v[-1]):7.2f} ms")


def one_run(args, run: int) -> dict:
    workdir = tempfile.mkdtemp(prefix="herald-slow-")
    rport, hport = free_port(), free_port()
    host = "127.0.0.1"
    rds = subprocess.Popen(["redis-server", "--port", str(rport), "--bind", host, "--save", "", "--appendonly", "no",
                            "--dir", workdir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log_path = os.path.join(workdir, "herald.log")
    log = open(log_path, "w")
    herald, readers, pub = None, [], None
    ctx = mp.get_context("fork")
    try:
        wait_for_redis(rport)
        herald = subprocess.Popen(
            [args.herald, "--host", host, "--port", str(hport), "--redis", f"redis://{host}:{rport}",
             "--app-id", APP_ID, "--app-key", APP_KEY, "--app-secret", APP_SECRET,
             "--max-outbound-bytes", str(args.max_outbound_bytes), "--log-level", "warning"],
            stdout=log, stderr=subprocess.STDOUT)
        url = f"http://{host}:{hport}"
        if not wait_ready(url):
            raise RuntimeError("herald never became ready:\n" + open(log_path).read())

        kinds = ["sio" if i % 2 == 0 else "pusher" for i in range(args.clients)]
        for i in range(args.procs):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=reader_main, args=(i, kinds[i::args.procs], host, hport, child), daemon=True)
            proc.start()
            readers.append((proc, parent))
        for _, parent in readers:
            if not parent.poll(60) or parent.recv() != "ready":
                raise RuntimeError("a reader did not get ready")
        poller = MetricsPoller(url)
        deadline = time.monotonic() + 10
        while poller.read().get("herald_subscriptions", 0) < args.clients:
            if time.monotonic() > deadline:
                raise RuntimeError("subscriptions never reached %d" % args.clients)
            time.sleep(0.05)
        poller.start()

        phase, stop_pub = ctx.Value("i", 0), ctx.Event()
        pub_parent, pub_child = ctx.Pipe()
        pub = ctx.Process(target=publisher_main, args=(rport, args.rate, args.size, phase, stop_pub, pub_child), daemon=True)
        load = [os.getloadavg()]
        cpu = {}
        marks = {}
        pub.start()
        time.sleep(1.0)  # warm-up: events of the first second count as baseline too, that is fine

        def run_phase(index: int, body) -> None:
            phase.value = index
            marks[PHASES[index]] = [time.monotonic()]
            c0 = cpu_seconds(herald.pid)
            body()
            cpu[PHASES[index]] = (cpu_seconds(herald.pid) - c0) / (time.monotonic() - marks[PHASES[index]][0])
            marks[PHASES[index]].append(time.monotonic())
            load.append(os.getloadavg())

        waves, drains, drain_threads = [], [], []

        def baseline() -> None:
            time.sleep(args.phase_seconds)

        kernel: list = []
        orphans: list = []
        orphan_series: list = []

        def stalled() -> None:
            # Waves `--wave-gap` s apart; the phase lasts at least `--phase-seconds` and until every
            # stalled client is cut (at most `--stalled-max` s).
            start = time.monotonic()
            for w in range(args.slow_waves if args.slow else 0):  # --slow 0: an A/A control phase
                at = start + w * args.wave_gap
                time.sleep(max(0.0, at - time.monotonic()))
                kinds_w = ["sio" if i % 2 == 0 else "pusher" for i in range(args.slow)]
                before = len(poller.cuts)
                wave = stalled_wave(kinds_w, host, hport, 4096)
                waves.append({"clients": wave, "cuts_before": before, "opened": at,
                              "subscribed": max(c["subscribed"] for c in wave)})

                def reap(wave=wave, before=before):
                    # Once this wave is cut (or the phase gives up), read what is left on each socket.
                    while len(poller.cuts) < before + len(wave) and time.monotonic() < start + args.stalled_max:
                        time.sleep(0.01)
                    time.sleep(args.drain_delay)  # what the kernel still holds for the cut sockets
                    orphans.extend(send_queues(hport, "fin-wait-1"))
                    # --orphan-watch: how long the kernel keeps them if the client never reads again.
                    t0 = time.monotonic() - args.drain_delay
                    while args.orphan_watch and time.monotonic() - t0 < args.orphan_watch:
                        left = send_queues(hport, "fin-wait-1")
                        orphan_series.append((time.monotonic() - t0, len(left), sum(q for q, _ in left)))
                        if not left:
                            break
                        time.sleep(1.0)
                    for c in wave:
                        drains.append((c["kind"], drain(c["sock"], c["buf"])))
                t = threading.Thread(target=reap, daemon=True)
                t.start()
                drain_threads.append(t)
            # Where the stalled bytes are, a few seconds in: the kernel's queue on Herald's side.
            time.sleep(max(0.0, start + args.snapshot_at - time.monotonic()))
            kernel.extend(send_queues(hport))
            total = args.slow * args.slow_waves
            while time.monotonic() - start < args.stalled_max:
                if len(poller.cuts) >= total and time.monotonic() - start >= args.phase_seconds:
                    break
                time.sleep(0.05)
            time.sleep(2.0)  # a little of the phase after the last cut

        def after() -> None:
            time.sleep(args.phase_seconds)

        laggards: dict = {}

        def laggard_phase() -> None:
            stop = threading.Event()
            outs = [dict() for _ in range(args.laggards)]
            threads = [threading.Thread(target=laggard, args=("sio" if i % 2 == 0 else "pusher", host, hport,
                                                               args.laggard_pause, stop, outs[i]), daemon=True)
                       for i in range(args.laggards)]
            before = len(poller.cuts)
            for t in threads:
                t.start()
            time.sleep(args.phase_seconds)
            stop.set()
            for t in threads:
                t.join(5)
            laggards["cut"] = len(poller.cuts) - before
            laggards["clients"] = [o or {"ended": "never connected"} for o in outs]

        run_phase(0, baseline)
        run_phase(1, stalled)
        run_phase(2, after)
        if args.laggards:
            run_phase(3, laggard_phase)
        stop_pub.set()
        published = pub_parent.recv()
        time.sleep(1.0)  # in-flight events
        for _, parent in readers:
            parent.send("stop")
        results = [parent.recv() for _, parent in readers]
        for t in drain_threads:
            t.join(10 + args.orphan_watch + args.drain_delay)
        poller.stop.set()
        poller.join(2)
        final_metrics = poller.read()
        alive = herald.poll() is None
        log_text = open(log_path).read()
    finally:
        for proc, _ in readers:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
        if pub is not None:
            pub.join(5)
        if herald is not None:
            herald.send_signal(signal.SIGTERM)
            try:
                herald.wait(15)
            except subprocess.TimeoutExpired:
                herald.kill()
        rds.terminate()
        rds.wait()
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)

    # MARK: report
    phases = PHASES if args.laggards else PHASES[:3]
    print(f"\n=== run {run}: {args.clients} healthy clients ({args.procs} reader processes), "
          f"{args.rate:.0f} events/s of {published['bytes']} B, {args.phase_seconds:.0f} s per phase, "
          f"--max-outbound-bytes {args.max_outbound_bytes}")
    print(f"load average (1/5/15 min) at start {load[0][0]:.2f}/{load[0][1]:.2f}/{load[0][2]:.2f}, "
          + ", ".join(f"after {p} {l[0]:.2f}" for p, l in zip(phases, load[1:])))
    print(f"published per phase: {dict(zip(phases, published['counts']))}; publisher ticks late by > 5 ms: {published['late']}")
    out = {"phases": {}, "cut_times": [], "drains": drains, "laggards": laggards}
    for p_index, p in enumerate(phases):
        values = array("d")
        for r in results:
            values.extend(r["lat"][p_index])
        counts = [c["count"][p_index] for r in results for c in r["clients"]]
        expected = published["counts"][p_index]
        lost = sum(expected - n for n in counts)
        line = summary(values)
        out["phases"][p] = sorted(values)
        print(f"  {p:<9} {line}  | lost {lost}  | herald CPU {cpu.get(p, 0) * 100:4.0f}%")
    # The stalled phase's windows: from a wave's first connect to its last cut.
    windows = []
    for w in waves:
        n = len(w["clients"])
        cut = poller.cuts[w["cuts_before"]:w["cuts_before"] + n]
        if len(cut) == n:
            windows.append((w["opened"], cut[-1]))
            out["cut_times"].append((cut[0] - w["subscribed"], cut[-1] - w["subscribed"]))
    if windows:
        inside = array("d")
        for r in results:
            for t, l in zip(r["sent"][1], r["lat"][1]):
                if any(a <= t <= b for a, b in windows):
                    inside.append(l)
        out["inside"] = sorted(inside)
        print(f"  {'stalled, while a wave was being filled (connect -> last cut)':<9}\n            {summary(inside)}")
    if kernel and args.slow:
        big = sorted(kernel, reverse=True)[:args.slow * args.slow_waves]
        print(f"herald's kernel send queues {args.snapshot_at:.0f} s into the stall (ss, largest {len(big)}): "
              f"Send-Q {min(q for q, _ in big) // 1024}-{max(q for q, _ in big) // 1024} KiB, "
              f"socket send buffer {min(b for _, b in big) // 1024}-{max(b for _, b in big) // 1024} KiB; "
              f"other connections' Send-Q max {max((q for q, _ in sorted(kernel, reverse=True)[len(big):]), default=0) // 1024} KiB")
    if orphans:
        print(f"{args.drain_delay:.0f} s after the cut, before the stalled clients read: {len(orphans)} herald sockets in "
              f"FIN-WAIT-1 holding {sum(q for q, _ in orphans) // 1024} KiB in their send queues")
    if orphan_series:
        shown = [x for i, x in enumerate(orphan_series) if i % 10 == 0 or i == len(orphan_series) - 1]
        print("FIN-WAIT-1 sockets after the cut (s: sockets, KiB queued): "
              + ", ".join(f"{t:.0f}: {n}, {q // 1024}" for t, n, q in shown))
    print(f"stalled waves: {len(waves)} x {args.slow}; cut-offs counted {len(poller.cuts)} "
          f"(herald_slow_consumer_disconnects_total = {int(final_metrics.get('herald_slow_consumer_disconnects_total', -1))})")
    for i, (first, last) in enumerate(out["cut_times"]):
        print(f"  wave {i + 1}: first cut {first:.2f} s, last cut {last:.2f} s after the wave subscribed")
    kinds_outcomes: dict = {}
    for kind, outcome in drains:
        key = re.sub(r"\(\d+ KiB", "(N KiB", outcome)
        kinds_outcomes.setdefault((kind, key), []).append(int(re.search(r"\((\d+) KiB", outcome).group(1)))
    for (kind, outcome), kib in sorted(kinds_outcomes.items()):
        print(f"  stalled {kind:<6} x{len(kib):<3} saw: {outcome.replace('N KiB', f'{min(kib)}-{max(kib)} KiB')}")
    if args.laggards:
        lg = laggards.get("clients", [])
        print(f"laggards (read every {args.laggard_pause} s): {len(lg)}, cut {laggards.get('cut')}, "
              f"largest burst read {max((c.get('max_burst', 0) for c in lg), default=0) // 1024} KiB, "
              f"ended early: {[c['ended'] for c in lg if c.get('ended')]}")
    closed = [c for r in results for c in r["clients"] if c["closed"]]
    gaps = sum(c["gaps"] for r in results for c in r["clients"])
    print(f"healthy clients disconnected: {len(closed)} {[c['closed'] for c in closed][:5]}; out-of-order/gaps: {gaps}; "
          f"reader CPU s: {[round(r['cpu'], 1) for r in results]}; "
          f"herald alive: {alive}; dropped: { {k: v for k, v in final_metrics.items() if 'dropped' in k and v} }")
    errors = [l for l in log_text.splitlines() if " error " in l or "critical" in l]
    print(f"herald log: {log_text.count('slow consumer')} 'slow consumer' lines, {len(errors)} error/critical lines")
    out["ok"] = alive and not closed
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--herald", default=os.path.join(ROOT, ".build-release/release/herald"))
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--procs", type=int, default=2, help="reader processes for the healthy clients")
    ap.add_argument("--rate", type=float, default=200, help="events per second")
    ap.add_argument("--size", type=int, default=1024, help="approximate bytes per Redis message")
    ap.add_argument("--phase-seconds", type=float, default=20)
    ap.add_argument("--slow", type=int, default=10, help="stalled clients per wave")
    ap.add_argument("--slow-waves", type=int, default=1)
    ap.add_argument("--wave-gap", type=float, default=5, help="seconds between stalled waves")
    ap.add_argument("--stalled-max", type=float, default=90, help="longest stalled phase, seconds")
    ap.add_argument("--drain-delay", type=float, default=3, help="seconds after a wave's cut before its clients read")
    ap.add_argument("--orphan-watch", type=float, default=0,
                    help="after a cut, watch herald's FIN-WAIT-1 sockets for up to this many seconds before reading")
    ap.add_argument("--snapshot-at", type=float, default=5, help="when to sample herald's send queues (ss)")
    ap.add_argument("--laggards", type=int, default=10)
    ap.add_argument("--laggard-pause", type=float, default=0.8)
    ap.add_argument("--max-outbound-bytes", type=int, default=262144)
    args = ap.parse_args()
    if not os.path.exists(args.herald):
        print(f"{args.herald} not found; build it: swift build -c release --scratch-path .build-release --product herald",
              file=sys.stderr)
        return 2
    runs = [one_run(args, i + 1) for i in range(args.runs)]
    if args.runs > 1:
        print("\n=== all runs (ms): p50 / p99 / max per phase")
        for p in PHASES + ["inside"]:
            cells = []
            for r in runs:
                v = r["phases"].get(p) if p != "inside" else r.get("inside")
                if v:
                    cells.append(f"{pct(v, .5) * 1000:.2f} / {pct(v, .99) * 1000:.2f} / {v[-1] * 1000:.1f}")
            if cells:
                print(f"  {p:<9} " + "  |  ".join(cells))
        cuts = [c for r in runs for c in r["cut_times"]]
        if cuts:
            print(f"  cut-off after subscribing: first {min(c[0] for c in cuts):.2f}-{max(c[0] for c in cuts):.2f} s, "
                  f"last {min(c[1] for c in cuts):.2f}-{max(c[1] for c in cuts):.2f} s")
    return 0 if all(r["ok"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
