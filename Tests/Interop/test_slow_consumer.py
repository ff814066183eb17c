"""A client that stops reading is disconnected as a slow consumer; nobody else notices.

Its session leaves the registry at the cut; the connection gets its close code (Socket.IO 1013,
Pusher `pusher:error` + 4100) behind its backlog if it reads again within `--slow-consumer-grace`,
and is reset (no kernel buffers left behind) if it does not."""

import base64
import json
import os
import re
import socket
import subprocess
import time

import pusher
import pytest
import requests

from conftest import require_tool, unique, wait_until

APP_ID, APP_KEY, APP_SECRET = "77", "slow-key", "slow-secret-0123456789"
PUSHER_APP = ["--app-id", APP_ID, "--app-key", APP_KEY, "--app-secret", APP_SECRET]


def raw_socketio_websocket(herald, channel: str) -> socket.socket:
    """A Socket.IO client over a raw WebSocket that joins `/`, subscribes, then never reads."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", herald.port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
    response = b""
    while b"\r\n\r\n" not in response:
        response += s.recv(1)
    assert response.startswith(b"HTTP/1.1 101")

    def frame(text: str) -> bytes:
        payload = text.encode()
        assert len(payload) < 126
        return bytes([0x81, 0x80 | len(payload)]) + b"\0\0\0\0" + payload  # zero mask key

    s.sendall(frame("40"))
    s.sendall(frame("42" + json.dumps(["subscribe", {"channel": channel}], separators=(",", ":"))))
    return s


def test_a_client_that_stops_reading_is_disconnected_and_others_keep_receiving(herald_factory, redis_server, connect):
    herald = herald_factory("--redis", redis_server.url, "--max-outbound-bytes", "65536")
    channel = unique("firehose")
    stalled = raw_socketio_websocket(herald, channel)
    healthy = connect(herald, "websocket")
    healthy.subscribe(channel)
    wait_until(lambda: herald.log.count(f"herald.channel={channel}") >= 2, message="both subscriptions")

    publish_bulk(redis_server, channel, healthy)

    herald.wait_for_log("slow consumer: outbound buffer over the limit; disconnecting", timeout=15)
    # The healthy client got every event, in order, and is still connected.
    wait_until(lambda: len(healthy.named("bulk")) == 1500, timeout=20, message="all 1500 events at the healthy client")
    assert [e[2]["i"] for e in healthy.named("bulk")] == list(range(1500))
    assert not healthy.disconnected.is_set()

    # The stalled client's connection was closed by Herald: reading drains, then EOF or reset.
    stalled.settimeout(10)
    closed = False
    try:
        while stalled.recv(1 << 20):
            pass
        closed = True
    except ConnectionResetError:
        closed = True
    assert closed
    herald.assert_healthy()


# MARK: The close code, the registry and the kernel after a cut

def raw_pusher_websocket(herald, channel: str) -> socket.socket:
    """A Pusher protocol 7 client over a raw WebSocket that subscribes, then never reads."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", herald.port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET /app/{APP_KEY}?protocol=7&client=test&version=1.0 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
    response = b""
    while b"\r\n\r\n" not in response:
        response += s.recv(1)
    assert response.startswith(b"HTTP/1.1 101")
    payload = json.dumps({"event": "pusher:subscribe", "data": {"channel": channel}}).encode()
    assert len(payload) < 126
    s.sendall(bytes([0x81, 0x80 | len(payload)]) + b"\0\0\0\0" + payload)
    return s


def stalled_client(kind: str, herald, channel: str) -> socket.socket:
    return raw_socketio_websocket(herald, channel) if kind == "sio" else raw_pusher_websocket(herald, channel)


def subscription_count(herald, channel: str) -> int:
    """The channel query (Pusher's HTTP API; Pusher and Socket.IO clients share the channel)."""
    api = pusher.Pusher(app_id=APP_ID, key=APP_KEY, secret=APP_SECRET, host="127.0.0.1", port=herald.port, ssl=False)
    return api.channel_info(channel, ["subscription_count"]).get("subscription_count", 0)


def publish_bulk(redis_server, channel: str, healthy, start: int = 0, count: int = 1500, batch: int = 10) -> None:
    """~6 MB in batches of `batch` 4 KB events, each sent once `healthy` has read the one before:
    far more than a stalled client's kernel buffers plus Herald's 64 KiB allowance, but paced by
    a client that reads (a 6 MB burst at once would rightly cut a reader slower than the burst,
    see RELIABILITY.md)."""
    pad = "x" * 4000
    redis = redis_server.client()
    for first in range(start, count, batch):
        with redis.pipeline(transaction=False) as pipe:
            for i in range(first, min(count, first + batch)):
                pipe.publish(channel, json.dumps({"event": "bulk", "data": {"i": i, "pad": pad}, "socket": None}))
            pipe.execute()
        wait_until(lambda: len(healthy.named("bulk")) >= min(count, first + batch) or healthy.disconnected.is_set(),
                   timeout=10, message=f"the healthy client reading events {first}-{first + batch - 1}")
        assert not healthy.disconnected.is_set(), "the healthy client was disconnected"


def herald_side(herald, client: socket.socket) -> list[dict]:
    """Herald's end of `client`'s connection as `ss` sees it (any state, FIN-WAIT-1 included):
    its state, Send-Q and kernel send buffer (skmem tb); empty once the kernel freed it."""
    ss = require_tool("ss")
    port = client.getsockname()[1]
    out = subprocess.run([ss, "-tnmH", "state", "all", f"( sport = :{herald.port} and dport = :{port} )"],
                         capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        fields = line.split()
        if fields and not fields[0].startswith("skmem"):
            rows.append({"state": fields[0], "send_q": int(fields[2])})
        m = re.search(r"tb(\d+)", line)
        if m and rows:
            rows[-1]["tb"] = int(m.group(1))
    return rows


def read_to_the_end(s: socket.socket, timeout: float = 20) -> dict:
    """Reads a stalled client's backlog frame by frame until the connection ends."""
    s.settimeout(timeout)
    buf, events, errors, close_code, ended = bytearray(), [], [], None, None
    while ended is None:
        try:
            chunk = s.recv(1 << 20)
        except ConnectionResetError:
            ended = "reset"
            break
        except socket.timeout:
            ended = "timeout"
            break
        if not chunk:
            ended = "EOF"
        buf.extend(chunk)
        while len(buf) >= 2:
            length, at = buf[1] & 0x7F, 2
            if length == 126:
                length, at = int.from_bytes(buf[2:4], "big"), 4
            elif length == 127:
                length, at = int.from_bytes(buf[2:10], "big"), 10
            if len(buf) < at + length:
                break
            opcode, payload = buf[0] & 0x0F, bytes(buf[at:at + length])
            del buf[:at + length]
            if opcode == 8:
                close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
            elif close_code is not None:
                pytest.fail(f"a frame after the close frame: opcode {opcode}")
            elif opcode == 1:
                if payload.startswith(b"42"):  # Socket.IO event
                    events.append(json.loads(payload[2:])[2]["i"])
                elif payload.startswith(b"{"):  # Pusher
                    message = json.loads(payload)
                    if message["event"] == "bulk":
                        events.append(json.loads(message["data"])["i"])
                    elif message["event"] == "pusher:error":
                        errors.append((len(events), message["data"]["code"]))
    s.close()
    return {"events": events, "errors": errors, "close_code": close_code, "ended": ended}


@pytest.mark.parametrize("kind", ["sio", "pusher"])
def test_a_stalled_client_that_reads_again_gets_the_close_code(kind, herald_factory, redis_server, connect):
    # A long grace: the client reads again well within it, however loaded the machine is.
    herald = herald_factory("--redis", redis_server.url, "--max-outbound-bytes", "65536", *PUSHER_APP,
                            "--slow-consumer-grace", "30s")
    channel = unique(f"resume-{kind}")
    stalled = stalled_client(kind, herald, channel)
    healthy = connect(herald, "websocket")
    healthy.subscribe(channel)
    wait_until(lambda: subscription_count(herald, channel) == 2, message="both subscriptions")

    publish_bulk(redis_server, channel, healthy, count=300)  # 1.2 MB: far past the stalled client's buffers
    herald.wait_for_log("slow consumer: outbound buffer over the limit; disconnecting", timeout=15)
    # The session left the channel at the cut, before its close frame went anywhere.
    wait_until(lambda: subscription_count(herald, channel) == 1, message="the stalled client leaving the channel")
    assert herald_side(herald, stalled), "the connection is still open during the grace period"

    seen = read_to_the_end(stalled)
    # What was queued before the cut, in order and without a gap, then the close code.
    assert seen["events"] == list(range(len(seen["events"]))) and seen["events"], seen["events"][:5]
    assert len(seen["events"]) < 300
    if kind == "sio":
        assert seen["close_code"] == 1013, seen
        assert seen["errors"] == []
    else:
        assert seen["close_code"] == 4100, seen
        assert seen["errors"] == [(len(seen["events"]), 4100)], seen  # pusher:error right before the close
    assert seen["ended"] in ("EOF", "reset"), seen

    publish_bulk(redis_server, channel, healthy, start=300)
    wait_until(lambda: len(healthy.named("bulk")) == 1500, timeout=20, message="all 1500 events at the healthy client")
    assert [e[2]["i"] for e in healthy.named("bulk")] == list(range(1500))
    assert not healthy.disconnected.is_set()
    assert re.search(r"^herald_slow_consumer_disconnects_total(\{[^}]*\})? 1(\.0)?$",
                     requests.get(herald.url("/metrics"), timeout=5).text, re.M)
    herald.assert_healthy()


def test_a_client_that_never_reads_leaves_at_once_and_is_reset_after_the_grace(herald_factory, redis_server, connect):
    grace = 8
    herald = herald_factory("--redis", redis_server.url, "--max-outbound-bytes", "65536", *PUSHER_APP,
                            "--send-buffer-bytes", "65536", "--slow-consumer-grace", f"{grace}s")
    channel = unique("never-reads")
    stalled = [raw_socketio_websocket(herald, channel), raw_pusher_websocket(herald, channel)]
    healthy = connect(herald, "websocket")
    healthy.subscribe(channel)
    wait_until(lambda: subscription_count(herald, channel) == 3, message="three subscriptions")
    # --send-buffer-bytes caps the kernel's send buffer (Linux doubles the value it is given).
    for s in stalled:
        assert all(row.get("tb", 0) <= 2 * 65536 for row in herald_side(herald, s)), herald_side(herald, s)

    publish_bulk(redis_server, channel, healthy, count=300)  # 1.2 MB: far past the stalled clients' buffers
    herald.wait_for_log("slow consumer: outbound buffer over the limit; disconnecting", count=2, timeout=15)
    # Gone from the registry at once: while herald still holds both connections (the grace).
    wait_until(lambda: subscription_count(herald, channel) == 1, message="the stalled clients leaving the channel")
    held = [herald_side(herald, s) for s in stalled]
    assert all(held), f"the connections were closed before the grace ran out: {held}"

    # Then reset: herald's end is gone entirely (no FIN-WAIT-1 socket holding the backlog).
    wait_until(lambda: not any(herald_side(herald, s) for s in stalled), timeout=grace + 10,
               message="herald's ends of the stalled connections to be freed")
    for s in stalled:
        s.settimeout(5)
        with pytest.raises(ConnectionResetError):
            while s.recv(1 << 20):  # what sat in the client's own receive buffer, then the reset
                pass
        s.close()

    publish_bulk(redis_server, channel, healthy, start=300)
    wait_until(lambda: len(healthy.named("bulk")) == 1500, timeout=20, message="all 1500 events at the healthy client")
    assert [e[2]["i"] for e in healthy.named("bulk")] == list(range(1500))
    assert not healthy.disconnected.is_set()
    herald.assert_healthy()
