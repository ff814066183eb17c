"""Bad input from clients and from Redis: precise errors, closed sessions, no crash."""

import json
import socket
import threading
import time

import requests
import websocket

from conftest import LARAVEL_PREFIX, WECHAT_EVENT, unique, wait_until, wechat_data

EIO = "/socket.io/?EIO=4"


def handshake(herald) -> str:
    response = requests.get(herald.url(f"{EIO}&transport=polling"), timeout=3)
    assert response.status_code == 200
    assert response.text[0] == "0"
    open_packet = json.loads(response.text[1:])
    assert open_packet["upgrades"] == ["websocket"]
    return open_packet["sid"]


def assert_error(response, status: int, code: int, message: str) -> None:
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == {"code": code, "message": message}


def test_engineio_http_errors(herald_factory):
    herald = herald_factory("--max-payload", "2048")
    assert_error(requests.get(herald.url(f"{EIO}&transport=polling&sid=nope"), timeout=3), 400, 1, "Session ID unknown")
    assert_error(requests.get(herald.url(f"{EIO}&transport=carrier-pigeon"), timeout=3), 400, 0, "Transport unknown")
    assert_error(requests.get(herald.url("/socket.io/?EIO=9&transport=polling"), timeout=3), 400, 5, "Unsupported protocol version")
    assert_error(requests.post(herald.url(f"{EIO}&transport=polling"), data="40", timeout=3), 400, 2, "Bad handshake method")

    sid = handshake(herald)
    big = requests.post(herald.url(f"{EIO}&transport=polling&sid={sid}"), data="4" + "x" * 3000,
                        headers={"Content-Type": "text/plain;charset=UTF-8"}, timeout=3)
    assert big.status_code == 413
    # Just under the limit is fine.
    ok = requests.post(herald.url(f"{EIO}&transport=polling&sid={handshake(herald)}"), data="40",
                       headers={"Content-Type": "text/plain;charset=UTF-8"}, timeout=3)
    assert (ok.status_code, ok.text) == (200, "ok")
    herald.assert_healthy()


def raw_get(port: int, path: str) -> socket.socket:
    """Sends a GET on a fresh connection and returns the socket (the request is on the wire)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    return sock


def read_response(sock: socket.socket) -> tuple[int, str]:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    sock.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode()


def test_overlapping_polling_get_closes_the_session(herald_factory):
    herald = herald_factory("--ping-interval", "25000")
    sid = handshake(herald)
    poll = f"{EIO}&transport=polling&sid={sid}"

    first = raw_get(herald.port, poll)  # nothing queued: herald holds it
    result: dict = {}
    reader = threading.Thread(target=lambda: result.setdefault("first", read_response(first)))
    reader.start()
    time.sleep(0.3)  # let herald park the first GET (no observable signal for that)
    assert reader.is_alive(), f"first GET returned early: {result}"

    second = requests.get(herald.url(poll), timeout=3)
    assert second.status_code == 400
    assert second.json()["code"] == 3
    reader.join(5)
    assert result["first"] == (200, "1")  # the pending GET gets the close packet
    assert_error(requests.get(herald.url(poll), timeout=3), 400, 1, "Session ID unknown")
    herald.wait_for_log("overlapping polling GET; closing the session")
    herald.assert_healthy()


def test_garbage_websocket_packet_closes_only_that_session(herald_factory, connect, laravel, redis_server):
    herald = herald_factory("--redis", redis_server.url, "--key-prefix", LARAVEL_PREFIX)
    bystander = connect(herald, "websocket")
    channel = unique("wechat-login")
    bystander.subscribe(channel)

    ws = websocket.create_connection(herald.ws_url(f"{EIO}&transport=websocket"), timeout=5)
    opened = ws.recv()
    assert opened.startswith("0{")
    assert json.loads(opened[1:])["upgrades"] == []
    ws.send("40")
    connected = ws.recv()
    assert connected.startswith('40{"sid":"')
    ws.send("x this is not an Engine.IO packet")
    frames = []
    while True:  # herald may send an Engine.IO close packet, then must close the WebSocket
        opcode, data = ws.recv_data(control_frame=True)
        frames.append((opcode, data))
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            break
        assert len(frames) < 3, frames
    assert frames[:-1] in ([], [(websocket.ABNF.OPCODE_TEXT, b"1")]), frames
    herald.wait_for_log("bad WebSocket packet; closing the session")
    ws.close()

    laravel.publish(redis_server, channel, token="still-here")
    assert bystander.wait_event(WECHAT_EVENT) == (WECHAT_EVENT, channel, wechat_data(channel, "still-here"))
    assert not bystander.disconnected.is_set()
    herald.assert_healthy()


def test_bad_redis_payloads_are_dropped_with_a_warning(herald_factory, connect, laravel, redis_server):
    herald = herald_factory("--redis", redis_server.url, "--key-prefix", LARAVEL_PREFIX)
    client = connect(herald, "polling")
    channel = unique("wechat-login")
    client.subscribe(channel)
    warning = "dropped a Redis message that is not a Laravel broadcast"

    r = redis_server.client()
    assert r.publish(LARAVEL_PREFIX + channel, b"this is not JSON {") >= 1
    assert r.publish(LARAVEL_PREFIX + channel, json.dumps({"data": {"token": "x"}, "socket": None})) >= 1
    laravel.publish(redis_server, channel, token="valid")

    assert client.wait_event(WECHAT_EVENT) == (WECHAT_EVENT, channel, wechat_data(channel, "valid"))
    assert client.received() == [(WECHAT_EVENT, channel, wechat_data(channel, "valid"))]
    herald.wait_for_log(warning, count=2)
    lines = [line for line in herald.log.splitlines() if warning in line]
    assert len(lines) == 2
    assert all(" warning " in line and f"herald.channel={LARAVEL_PREFIX}{channel}" in line for line in lines)
    herald.assert_healthy()
