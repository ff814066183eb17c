"""A client that stops reading is disconnected as a slow consumer; nobody else notices."""

import base64
import json
import os
import socket

from conftest import unique, wait_until


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

    # ~6 MB: more than the kernel buffers on both sides plus Herald's 64 KiB allowance.
    pad = "x" * 4000
    redis = redis_server.client()
    with redis.pipeline(transaction=False) as pipe:
        for i in range(1500):
            pipe.publish(channel, json.dumps({"event": "bulk", "data": {"i": i, "pad": pad}, "socket": None}))
        pipe.execute()

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
