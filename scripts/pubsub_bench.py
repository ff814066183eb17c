#!/usr/bin/env python3
"""How many messages one Redis moves through pub/sub, and what sharding changes (SCALING.md).

Run from the repository root:  .venv/bin/python scripts/pubsub_bench.py [--repeat 3] [--no-pin]
                                                                         [--only single|cluster]

Everything runs on loopback, each server started here on free ports (`--save ""`,
`--appendonly no`). Publishing is redis-benchmark's (C, 50 connections, pipelined); the
subscribers are raw sockets in Python processes that read and throw the bytes away, counting
them (delivered < published x subscribers would show a loss;
the limit of Redis's output buffers for subscribers is lifted, so a slow Python reader costs
memory, not a disconnection; each run waits until the subscribers have read everything, and
Redis's CPU time is counted up to then).

  single   one redis-server; PUBLISH of a ~200 B Laravel-shaped payload to
           `laravel_database_bench`, with 0, 1 and 3 subscribers doing what a Herald node does:
           `PSUBSCRIBE laravel_database_*`; pipelines of 16 and 64.
  cluster  three masters (`--cluster-enabled yes`, `redis-cli --cluster create`, no replicas):
           * `redis-benchmark --cluster ... SPUBLISH bench{tag} <payload>` (its clients spread over
             the masters, random slots, no subscribers);
           * per master, one channel hashed to a slot it owns, 0/1/3 `SSUBSCRIBE`rs on that
             master, and one redis-benchmark per master publishing SPUBLISH to its channel, all
             three at once (the sum is the cluster's rate);
           * the same with global PUBLISH on one master and a PSUBSCRIBEr on every master: the
             message crosses the cluster bus to every node (`cluster_stats_messages_publish_sent`).

  slot-move  a channel's slot moved to another master (`CLUSTER SETSLOT … IMPORTING/MIGRATING/NODE`):
           what its SSUBSCRIBEr is pushed, what SPUBLISH/SSUBSCRIBE answer on the old owner.

Each row also gives Redis's CPU time per published message (from /proc), and what one core
would do at that cost — the number to extrapolate from when the clients, not Redis, were the
bottleneck of a row (Redis CPU well below 100 %).

With `--pin` (the default) redis-server processes run on CPU 0 and every client on CPU 1
(`taskset`), so "one Redis" means one core. On a 2-core machine the three masters then share
one core: the cluster rows measure what sharding costs per message, not what it gains — that
needs a core (a machine) per master.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PATTERN = "laravel_database_*"
CHANNEL = "laravel_database_bench"
# A Laravel broadcast of about 200 bytes, as RedisBroadcaster publishes it (JSON, `socket` null).
PAYLOAD = ('{"event":"App\\\\Events\\\\OrderShipped","data":{"order":{"id":123456,"status":"shipped",'
           '"carrier":"DHL","tracking":"JD014600006281234567"},"user_id":42,"socket":null},"socket":null}')
PAYLOAD = PAYLOAD + " " * max(0, 200 - len(PAYLOAD))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free too."""
    for _ in range(1000):
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free cluster port")


def crc16(data: bytes) -> int:
    """CRC16-CCITT (XMODEM), Redis Cluster's key hash."""
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def key_slot(key: str) -> int:
    """The cluster slot of a key or shard channel, honouring `{hash tags}`."""
    s = key.find("{")
    if s >= 0:
        e = key.find("}", s + 1)
        if e > s + 1:
            key = key[s + 1:e]
    return crc16(key.encode()) % 16384


def pinned(cmd: list[str], cpu: int | None) -> list[str]:
    return (["taskset", "-c", str(cpu)] + cmd) if cpu is not None else cmd


def cli(port: int, *args: str) -> str:
    return subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True, check=True).stdout


def start_redis(port: int, workdir: str, cpu: int | None, cluster: bool = False) -> subprocess.Popen:
    cmd = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
           "--dir", workdir, "--protected-mode", "no",
           # The Python subscribers may fall behind for a moment on a busy machine: let Redis
           # buffer for them rather than disconnect them (its default pubsub limit is 32mb 8mb 60).
           "--client-output-buffer-limit", "pubsub 0 0 0"]
    if cluster:
        cmd += ["--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf", "--cluster-node-timeout", "5000"]
    proc = subprocess.Popen(pinned(cmd, cpu), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(500):
        try:
            if cli(port, "PING").strip() == "PONG":
                return proc
        except subprocess.CalledProcessError:
            pass
        time.sleep(0.01)
    raise RuntimeError(f"redis-server on {port} did not start")


# MARK: Subscribers

def resp(*args: str) -> bytes:
    out = [f"*{len(args)}\r\n".encode()]
    for a in args:
        b = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def subscriber_main(port: int, command: list[str], counter, ready, stop) -> None:
    if hasattr(os, "sched_setaffinity") and os.environ.get("BENCH_CLIENT_CPU"):
        os.sched_setaffinity(0, {int(os.environ["BENCH_CLIENT_CPU"])})
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(resp(*command))
    s.recv(65536)  # the subscribe confirmation
    ready.release()
    s.settimeout(0.2)
    buf = bytearray(1 << 20)  # recv_into: no 1 MiB allocation (an mmap) per read
    while not stop.is_set():
        try:
            n = s.recv_into(buf)
        except socket.timeout:
            continue
        if n == 0:
            counter.value = -1  # disconnected (output buffer limit?)
            return
        with counter.get_lock():
            counter.value += n


class Subscribers:
    def __init__(self, specs: list[tuple[int, list[str]]], cpu: int | None):
        ctx = mp.get_context("fork")
        self.stop, self.ready = ctx.Event(), ctx.Semaphore(0)
        self.counters, self.procs = [], []
        if cpu is not None:
            os.environ["BENCH_CLIENT_CPU"] = str(cpu)
        for port, command in specs:
            counter = ctx.Value("q", 0)
            p = ctx.Process(target=subscriber_main, args=(port, command, counter, self.ready, self.stop), daemon=True)
            p.start()
            self.counters.append(counter)
            self.procs.append(p)
        for _ in specs:
            if not self.ready.acquire(timeout=10):
                raise RuntimeError("a subscriber did not subscribe")

    def reset(self) -> None:
        for c in self.counters:
            with c.get_lock():
                if c.value > 0:  # -1 (disconnected) stays
                    c.value = 0

    def totals(self) -> list[int]:
        return [c.value for c in self.counters]

    def settle(self, expected: int, timeout: float = 120) -> list[int]:
        """Waits until the subscribers have read `expected` bytes in all (or stop making progress)."""
        last, still_since, deadline = -1, time.monotonic(), time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.totals()
            total = sum(max(g, 0) for g in got)
            if total >= expected or min(got) < 0:
                return got
            if total != last:
                last, still_since = total, time.monotonic()
            elif time.monotonic() - still_since > 3:
                return got
            time.sleep(0.1)
        return self.totals()

    def close(self) -> None:
        self.stop.set()
        for p in self.procs:
            p.join(2)
            if p.is_alive():
                p.kill()


def message_bytes(kind: str, channel: str, pattern: str | None = None) -> int:
    """Bytes of one pushed message on the wire (RESP2)."""
    if kind == "pmessage":
        return len(resp("pmessage", pattern, channel, PAYLOAD))
    return len(resp(kind, channel, PAYLOAD))


# MARK: Publishing with redis-benchmark

def benchmark(port: int, command: list[str], n: int, pipeline: int, cpu: int | None, cluster: bool = False,
              clients: int = 50) -> subprocess.Popen:
    cmd = ["redis-benchmark", "-p", str(port), "-c", str(clients), "-n", str(n), "-P", str(pipeline), "--csv"]
    if cluster:
        cmd.append("--cluster")
    return subprocess.Popen(pinned(cmd + command, cpu), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def rate_of(proc: subprocess.Popen) -> tuple[float, float]:
    """(requests per second, seconds) from redis-benchmark's --csv output."""
    t0 = time.monotonic()
    out, err = proc.communicate(timeout=600)
    elapsed = time.monotonic() - t0
    for line in out.splitlines()[1:]:
        numbers = re.findall(r'"([0-9.]+)"', line)  # the test name (the command) may hold quotes and commas
        if len(numbers) >= 7:
            return float(numbers[-7]), elapsed  # rps, then six latency columns
    raise RuntimeError(f"no rate in redis-benchmark output: {out!r} {err!r}")


def cpu_of(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def median_row(rows: list[dict]) -> dict:
    keyed = sorted(rows, key=lambda r: r["rate"])
    return keyed[len(keyed) // 2]


def show(label: str, rows: list[dict]) -> None:
    m = median_row(rows)
    rates = ", ".join(f"{r['rate'] / 1000:.0f}k" for r in rows)
    extra = f"  delivered {m['delivered'] / 1000:.0f}k msg/s ({m['ratio']:.2f} of published x subscribers)" \
        if m.get("subs") else ""
    cpu = f"  redis CPU {m['cpu'] * 100:.0f}%" if "cpu" in m else ""
    if "us" in m:
        cpu += f", {m['us']:.2f} us/msg (1 core: {1 / m['us']:.2f}M msg/s)"
    print(f"  {label:<58} {m['rate'] / 1000:7.0f}k msg/s (runs: {rates}){extra}{cpu}"
          + (f"  {m['note']}" if m.get("note") else ""), flush=True)


# MARK: Scenarios

def single(args, workdir: str) -> None:
    rcpu, ccpu = (0, 1) if args.pin else (None, None)
    port = free_port()
    server = start_redis(port, workdir, rcpu)
    try:
        print(f"\n== one redis-server (port {port}{', CPU 0' if args.pin else ''}), PUBLISH {CHANNEL} <{len(PAYLOAD)} B>, "
              f"subscribers PSUBSCRIBE {PATTERN}", flush=True)
        per_msg = message_bytes("pmessage", CHANNEL, PATTERN)
        for subs in args.subscribers:
            group = Subscribers([(port, ["PSUBSCRIBE", PATTERN])] * subs, ccpu) if subs else None
            try:
                n = min(args.n, args.n_subscribed) if subs else args.n
                for pipeline in args.pipelines:
                    rows = []
                    for _ in range(args.repeat):
                        if group:
                            group.reset()
                        c0 = cpu_of(server.pid)
                        t0 = time.monotonic()
                        rate, _ = rate_of(benchmark(port, ["PUBLISH", CHANNEL, PAYLOAD], n, pipeline, ccpu))
                        elapsed = time.monotonic() - t0
                        row = {"rate": rate, "subs": subs}
                        if group:
                            got = group.settle(n * subs * per_msg)
                            elapsed = time.monotonic() - t0  # Redis's CPU includes writing to the subscribers
                            row["note"] = "SUBSCRIBER DISCONNECTED" if min(got) < 0 else ""
                            delivered_msgs = sum(max(g, 0) for g in got) / per_msg
                            row["delivered"] = delivered_msgs / (n / rate)
                            row["ratio"] = delivered_msgs / (n * subs)
                        used = cpu_of(server.pid) - c0
                        row.update(cpu=used / elapsed, us=used / n * 1e6)
                        rows.append(row)
                    show(f"{subs} subscriber(s), -P {pipeline}", rows)
            finally:
                if group:
                    group.close()
    finally:
        server.terminate()
        server.wait()


def make_cluster(workdir: str, cpu: int | None) -> tuple[list[int], list[subprocess.Popen], dict[int, tuple[int, int]]]:
    ports = [free_cluster_port() for _ in range(3)]
    procs = [start_redis(p, workdir, cpu, cluster=True) for p in ports]
    subprocess.run(["redis-cli", "--cluster", "create", *[f"127.0.0.1:{p}" for p in ports], "--cluster-yes"],
                   capture_output=True, text=True, check=True)
    for _ in range(500):
        if all("cluster_state:ok" in cli(p, "CLUSTER", "INFO") for p in ports):
            break
        time.sleep(0.05)
    else:
        raise RuntimeError("cluster never became ok")
    ranges = {}
    for p in ports:  # each master's first slot range, from its CLUSTER NODES "myself" line
        for line in cli(p, "CLUSTER", "NODES").splitlines():
            if "myself" in line:
                lo, hi = line.split()[8].split("-")
                ranges[p] = (int(lo), int(hi))
    return ports, procs, ranges


def channel_on(lo: int, hi: int, base: str) -> str:
    """A shard channel name `<base>{<n>}` whose slot lies in [lo, hi]."""
    for n in range(100000):
        name = f"{base}{{{n}}}"
        if lo <= key_slot(name) <= hi:
            return name
    raise RuntimeError("no channel found")


def bus_stats(port: int) -> dict[str, int]:
    out = {}
    for line in cli(port, "CLUSTER", "INFO").splitlines():
        if line.startswith("cluster_stats_messages_publish"):
            k, v = line.strip().split(":")
            out[k] = int(v)
    return out


def cluster(args, workdir: str) -> None:
    rcpu, ccpu = (0, 1) if args.pin else (None, None)
    ports, procs, ranges = make_cluster(workdir, rcpu)
    try:
        print(f"\n== Redis Cluster, 3 masters on ports {ports}{' (all on CPU 0)' if args.pin else ''}, no replicas; "
              f"slots {[ranges[p] for p in ports]}", flush=True)
        # 1. redis-benchmark's own cluster mode: SPUBLISH to random slots of every master, no subscribers.
        for pipeline in args.pipelines:
            rows = []
            for _ in range(args.repeat):
                c0 = sum(cpu_of(p.pid) for p in procs)
                t0 = time.monotonic()
                rate, _ = rate_of(benchmark(ports[0], ["SPUBLISH", "bench{tag}", PAYLOAD], args.n, pipeline, ccpu, cluster=True))
                used = sum(cpu_of(p.pid) for p in procs) - c0
                rows.append({"rate": rate, "cpu": used / (time.monotonic() - t0), "us": used / args.n * 1e6})
            show(f"redis-benchmark --cluster SPUBLISH bench{{tag}}, -P {pipeline}", rows)

        channels = {p: channel_on(*ranges[p], "laravel_database_bench") for p in ports}
        print(f"  shard channels: {channels} (slots {[key_slot(c) for c in channels.values()]})", flush=True)
        per_msg = {p: message_bytes("smessage", channels[p]) for p in ports}
        for subs in args.subscribers:
            specs = [(p, ["SSUBSCRIBE", channels[p]]) for p in ports for _ in range(subs)]
            group = Subscribers(specs, ccpu) if specs else None
            try:
                n = min(args.n, args.n_subscribed) if subs else args.n
                for pipeline in args.pipelines:
                    # 2a. one master alone: what one shard does with SPUBLISH.
                    rows = []
                    for _ in range(args.repeat):
                        if group:
                            group.reset()
                        c0, t0 = cpu_of(procs[0].pid), time.monotonic()
                        rate, _ = rate_of(benchmark(ports[0], ["SPUBLISH", channels[ports[0]], PAYLOAD], n, pipeline, ccpu))
                        row = {"rate": rate, "subs": subs}
                        if group:
                            group.settle(n * subs * per_msg[ports[0]])
                            got = group.totals()[:subs]
                            delivered = sum(max(g, 0) for g in got) / per_msg[ports[0]]
                            row.update(delivered=delivered / (n / rate), ratio=delivered / (n * subs),
                                       note="SUBSCRIBER DISCONNECTED" if got and min(got) < 0 else "")
                        used = cpu_of(procs[0].pid) - c0
                        row.update(cpu=used / (time.monotonic() - t0), us=used / n * 1e6)
                        rows.append(row)
                    show(f"one master: SPUBLISH, {subs} SSUBSCRIBEr(s), -P {pipeline}", rows)
                    # 2b. all three masters at once, one redis-benchmark each.
                    rows = []
                    for _ in range(args.repeat):
                        if group:
                            group.reset()
                        c0 = sum(cpu_of(p.pid) for p in procs)
                        t0 = time.monotonic()
                        runs = [benchmark(p, ["SPUBLISH", channels[p], PAYLOAD], n, pipeline, ccpu, clients=17) for p in ports]
                        results = [rate_of(r) for r in runs]
                        wall = time.monotonic() - t0
                        # Sum of per-master rates over the common wall time: messages / wall.
                        rate = 3 * n / wall
                        row = {"rate": rate, "subs": subs,
                               "note": "per master " + "/".join(f"{r / 1000:.0f}k" for r, _ in results)}
                        if group:
                            got = group.settle(sum(n * per_msg[p] for p, _ in specs))
                            delivered = sum(max(g, 0) / per_msg[specs[i][0]] for i, g in enumerate(got))
                            row.update(delivered=delivered / wall, ratio=delivered / (3 * n * subs))
                            if min(got) < 0:
                                row["note"] += " SUBSCRIBER DISCONNECTED"
                        used = sum(cpu_of(p.pid) for p in procs) - c0
                        row.update(cpu=used / (time.monotonic() - t0), us=used / (3 * n) * 1e6)
                        rows.append(row)
                    show(f"3 masters at once: SPUBLISH, {subs} SSUBSCRIBEr(s) each, -P {pipeline}", rows)
            finally:
                if group:
                    group.close()

        # 3. Global PUBLISH in a cluster: every message is broadcast to every node over the bus.
        for subs in [s for s in args.subscribers if s][:1] or [1]:
            specs = [(p, ["PSUBSCRIBE", PATTERN]) for p in ports for _ in range(subs)]
            group = Subscribers(specs, ccpu)
            try:
                for pipeline in args.pipelines:
                    rows = []
                    for _ in range(args.repeat):
                        group.reset()
                        before = [bus_stats(p) for p in ports]
                        c0 = sum(cpu_of(p.pid) for p in procs)
                        t0 = time.monotonic()
                        n = max(10000, args.n // 10)  # ten times slower: a tenth of the messages
                        rate, _ = rate_of(benchmark(ports[0], ["PUBLISH", CHANNEL, PAYLOAD], n, pipeline, ccpu))
                        got = group.settle(n * len(specs) * message_bytes("pmessage", CHANNEL, PATTERN))
                        wall = time.monotonic() - t0
                        after = [bus_stats(p) for p in ports]
                        sent = after[0].get("cluster_stats_messages_publish_sent", 0) - before[0].get("cluster_stats_messages_publish_sent", 0)
                        delivered = sum(max(g, 0) for g in got) / message_bytes("pmessage", CHANNEL, PATTERN)
                        used = sum(cpu_of(p.pid) for p in procs) - c0
                        rows.append({"rate": rate, "subs": subs, "delivered": delivered / (n / rate),
                                     "ratio": delivered / (n * subs * 3), "cpu": used / wall, "us": used / n * 1e6,
                                     "note": f"bus: {sent / n:.2f} publish messages sent per PUBLISH by the receiving master"
                                             + (" SUBSCRIBER DISCONNECTED" if min(got) < 0 else "")})
                    show(f"PUBLISH on one master, {subs} PSUBSCRIBEr(s) on each, -P {pipeline}", rows)
            finally:
                group.close()
        # The bus counters of SPUBLISH for comparison (no replicas: nothing to forward).
        before = bus_stats(ports[0])
        rate_of(benchmark(ports[0], ["SPUBLISH", channels[ports[0]], PAYLOAD], 100000, 16, ccpu))
        after = bus_stats(ports[0])
        print(f"  bus after 100k SPUBLISH on one master (no replicas): "
              f"{ {k: after.get(k, 0) - before.get(k, 0) for k in after} }", flush=True)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()


def slot_move(workdir: str) -> None:
    """What a shard-channel subscriber sees when its channel's slot moves to another master."""
    ports, procs, ranges = make_cluster(workdir, None)
    try:
        a, b = ports[0], ports[1]
        ids = {p: cli(p, "CLUSTER", "MYID").strip() for p in ports}
        channel = channel_on(*ranges[a], "laravel_database_orders")
        slot = key_slot(channel)
        raw = lambda p, *args: subprocess.run(["redis-cli", "-p", str(p), *args], capture_output=True, text=True).stdout.strip()
        sub = socket.create_connection(("127.0.0.1", a))
        sub.sendall(resp("SSUBSCRIBE", channel))
        time.sleep(0.2)
        print(f"\n== slot move: {channel} (slot {slot}) from master :{a} to :{b}; a subscriber SSUBSCRIBEd on :{a}", flush=True)
        print(f"  subscriber got: {sub.recv(65536)!r}")
        print(f"  SPUBLISH on :{a} before the move -> {raw(a, 'SPUBLISH', channel, 'before')}")
        raw(b, "CLUSTER", "SETSLOT", str(slot), "IMPORTING", ids[a])
        raw(a, "CLUSTER", "SETSLOT", str(slot), "MIGRATING", ids[b])
        print(f"  SPUBLISH on :{a} while MIGRATING -> {raw(a, 'SPUBLISH', channel, 'migrating')!r}")
        for p in (b, a, ports[2]):
            raw(p, "CLUSTER", "SETSLOT", str(slot), "NODE", ids[b])
        time.sleep(0.3)
        sub.settimeout(1.0)
        try:
            got = sub.recv(65536)
        except socket.timeout:
            got = b"(nothing within 1 s)"
        print(f"  after CLUSTER SETSLOT {slot} NODE <:{b}>, the subscriber on :{a} got: {got!r}")
        print(f"  SPUBLISH on :{a} after the move -> {raw(a, 'SPUBLISH', channel, 'after')!r}")
        probe = socket.create_connection(("127.0.0.1", a))
        probe.sendall(resp("SSUBSCRIBE", channel))
        print(f"  SSUBSCRIBE on :{a} after the move -> {probe.recv(65536)!r}")
        probe.close()
        sub.close()
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("-n", type=int, default=3_000_000, help="requests per redis-benchmark run")
    ap.add_argument("--n-subscribed", type=int, default=1_000_000,
                    help="requests per run when there are subscribers (Redis may buffer them all)")
    ap.add_argument("--pipelines", type=lambda s: [int(x) for x in s.split(",")], default=[16, 64])
    ap.add_argument("--subscribers", type=lambda s: [int(x) for x in s.split(",")], default=[0, 1, 3])
    ap.add_argument("--no-pin", dest="pin", action="store_false", help="do not pin Redis to CPU 0 and clients to CPU 1")
    ap.add_argument("--only", choices=["single", "cluster", "slot-move"])
    args = ap.parse_args()
    print(f"redis: {subprocess.run(['redis-server', '--version'], capture_output=True, text=True).stdout.strip()}")
    print(f"nproc {os.cpu_count()}, load average {os.getloadavg()}, payload {len(PAYLOAD)} B, "
          f"-n {args.n}, repeat {args.repeat} (median shown)", flush=True)
    workdir = tempfile.mkdtemp(prefix="herald-pubsub-")
    try:
        if args.only in (None, "single"):
            single(args, workdir)
        if args.only in (None, "cluster"):
            cluster(args, workdir)
        if args.only in (None, "slot-move"):
            slot_move(workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"load average at the end {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
