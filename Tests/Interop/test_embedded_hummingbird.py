"""Herald embedded in a Hummingbird 2 application: the `EmbeddedHummingbird` example, for real.

The built example binary runs the shop's Hummingbird app and Herald in one process. Real clients
nobody here wrote connect to Herald's port: python-socketio (Laravel Echo's socket.io dialect;
Herald asks the *app's* `/broadcasting/auth`, answered in Swift) and pysher (Pusher protocol; it
asks the app's `/broadcasting/auth` itself and gets a signed answer). `POST /orders/{id}/ship`
on the app broadcasts `OrderShipped` in-process, or with `--redis` through a real redis-server
in Laravel's wire format.

Run from the repository root after `swift build`:
    .venv/bin/python -m pytest -q Tests/Interop/test_embedded_hummingbird.py
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import threading
from pathlib import Path
from urllib.parse import quote

import pysher
import pytest
import requests

from conftest import ROOT, bearer, free_port, wait_until

EMBEDDED_BINARY = Path(os.environ.get("HERALD_EMBEDDED_BINARY", ROOT / ".build" / "debug" / "EmbeddedHummingbird"))
STAFF = bearer(1)  # user 1 is the shop's staff
APP_ID, APP_KEY, APP_SECRET = "77", "embedded-key", "embedded-secret"
SHIPPED_7 = {"order": {"id": 7, "item": "Espresso machine", "status": "shipped"}, "carrier": "Swift Parcel"}


class HeraldPort:
    """Herald's listener inside the app, shaped like conftest's `Herald` for `connect(...)`."""

    ca_file = None  # plain HTTP
    scheme = "http"

    def __init__(self, port: int):
        self.port = port

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


class EmbeddedApp:
    """One EmbeddedHummingbird process (app + Herald) on free ports; output in `log_path`."""

    def __init__(self, directory: Path, args: list[str]):
        if not EMBEDDED_BINARY.is_file() or not os.access(EMBEDDED_BINARY, os.X_OK):
            pytest.fail(f"EmbeddedHummingbird not found at {EMBEDDED_BINARY}; run `swift build` first")
        self.port, herald_port = free_port(), free_port()
        self.herald = HeraldPort(herald_port)
        self.log_path = directory / f"embedded-{self.port}.log"
        self.args = [str(EMBEDDED_BINARY), "--host", "127.0.0.1", "--port", str(self.port),
                     "--herald-port", str(herald_port), "--log-level", "debug", *args]
        log = open(self.log_path, "wb")
        self.process = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT, cwd=directory)
        log.close()
        wait_until(self._ready, timeout=10, message="EmbeddedHummingbird app and Herald listening")

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            pytest.fail(f"EmbeddedHummingbird exited with {self.process.returncode}:\n{self.log_tail()}")
        try:
            return (requests.get(self.url("/"), timeout=1).text == "EmbeddedHummingbird ok"
                    and requests.get(self.herald.url("/health"), timeout=1).status_code == 200)
        except requests.ConnectionError:
            return False

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def ship(self, order_id: int, headers: dict | None = None) -> requests.Response:
        return requests.post(self.url(f"/orders/{order_id}/ship"), headers={**STAFF, **(headers or {})}, timeout=5)

    def publish(self, channel: str, name: str, data) -> None:
        """Herald's publish route, mounted by the app under /herald (staff only)."""
        response = requests.post(self.url("/herald/events"), json={"channel": channel, "name": name, "data": data},
                                 headers=STAFF, timeout=5)
        assert response.status_code == 200, response.text

    def subscription_count(self, channel: str) -> int:
        response = requests.get(self.url(f"/herald/channels/{quote(channel, safe='')}"), headers=STAFF, timeout=5)
        assert response.status_code == 200, response.text
        return response.json()["subscription_count"]

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(10)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)


@pytest.fixture
def embedded(request, tmp_path):
    """`embedded(*args)` starts the example; every one is killed after the test (log tail
    printed on failure). One that died on its own, or logged a Swift 'Fatal error', fails it."""
    started: list[EmbeddedApp] = []
    stopped: set[int] = set()

    def start(*args: str) -> EmbeddedApp:
        app = EmbeddedApp(tmp_path, list(args))
        started.append(app)
        return app

    start.stopped = stopped
    yield start
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    problems = []
    for app in started:
        if app.process.poll() is not None and app.port not in stopped:
            problems.append(f"EmbeddedHummingbird on {app.port} died with {app.process.returncode}")
        if "Fatal error" in app.log_path.read_text(errors="replace"):
            problems.append(f"EmbeddedHummingbird on {app.port} logged 'Fatal error'")
        app.kill()
        if failed or problems:
            print(f"\n----- EmbeddedHummingbird log tail ({' '.join(app.args[1:])}) -----\n{app.log_tail()}")
    assert not problems, "; ".join(problems)


def only(events: list[tuple], name: str) -> list[tuple]:
    return [e for e in events if e[0] == name]


# --------------------------------------------------------------------------------------------


def test_owner_receives_order_shipped_in_process_and_another_user_is_refused(embedded, connect):
    app = embedded()
    owner = connect(app.herald, "websocket")
    stranger = connect(app.herald, "websocket")
    owner.subscribe("private-orders.7", sync=False, headers=bearer(7))
    stranger.subscribe("shop-news", sync=False)
    stranger.subscribe("private-orders.7", sync=False, headers=bearer(8))

    # Herald asked the app's /broadcasting/auth, answered in Swift: user 8 does not own order 7.
    assert stranger.wait_refusal("private-orders.7") == ("subscription_error", "private-orders.7", 403)
    wait_until(lambda: app.subscription_count("private-orders.7") == 1, message="the owner admitted to private-orders.7")

    shipped = app.ship(7)
    assert shipped.status_code == 200, shipped.text
    assert shipped.json()["via"] == "in-process"
    assert owner.wait_event("OrderShipped") == ("OrderShipped", "private-orders.7", SHIPPED_7)

    # Events leave the relay in order: once the stranger has a later public event, it would
    # already have had OrderShipped if it had been let in.
    app.publish("shop-news", "Marker", {"n": 1})
    stranger.wait_event("Marker")
    assert only(stranger.received(), "OrderShipped") == []

    # X-Socket-ID (Laravel's toOthers()): the socket that made the request is skipped.
    assert app.ship(7, headers={"X-Socket-ID": owner.sid}).status_code == 200
    app.publish("private-orders.7", "Marker", {"n": 2})
    owner.wait_event("Marker")
    assert len(only(owner.received(), "OrderShipped")) == 1

    # Only staff may ship; unknown orders are 404.
    assert requests.post(app.url("/orders/7/ship"), headers=bearer(7), timeout=5).status_code == 403
    assert requests.post(app.url("/orders/7/ship"), timeout=5).status_code == 401
    assert app.ship(12345).status_code == 404

    # One lifecycle: SIGTERM stops the app and Herald together, cleanly.
    embedded.stopped.add(app.port)
    assert app.terminate() == 0
    assert owner.disconnected.wait(5), "Herald closed its connections on shutdown"


def test_presence_members_come_from_the_swift_rule(embedded, connect):
    app = embedded()
    seven = connect(app.herald, "websocket")
    seven.subscribe("presence-store", sync=False, headers=bearer(7))
    wait_until(lambda: app.subscription_count("presence-store") == 1, message="user 7 in presence-store")
    eight = connect(app.herald, "websocket")
    eight.subscribe("presence-store", sync=False, headers=bearer(8))

    _, channel, members = eight.wait_event("presence:subscribed")
    assert channel == "presence-store"
    assert [(m["user_id"], m["user_info"]) for m in members] == [(8, {"name": "User 8"}), (7, {"name": "User 7"})]
    joining = seven.wait_event("presence:joining")
    assert (joining[1], joining[2]["user_id"], joining[2]["user_info"]) == ("presence-store", 8, {"name": "User 8"})

    users = requests.get(app.url("/herald/channels/presence-store/users"), headers=STAFF, timeout=5).json()
    assert sorted(u["id"] for u in users["users"]) == [7, 8]
    # An anonymous subscriber is refused by the rule.
    anonymous = connect(app.herald, "websocket")
    anonymous.subscribe("presence-store", sync=False)
    assert anonymous.wait_refusal("presence-store") == ("subscription_error", "presence-store", 403)


class Pysher:
    """A pysher client that asks the app's /broadcasting/auth (no secret on the client)."""

    def __init__(self, app: EmbeddedApp, user: int):
        self.pusher = pysher.Pusher(APP_KEY, custom_host="127.0.0.1", port=app.herald.port, secure=False,
                                    auth_endpoint=app.url("/broadcasting/auth"), auth_endpoint_headers=bearer(user),
                                    reconnect_interval=60, log_level=logging.WARNING)
        self.frames: list[dict] = []
        self.cond = threading.Condition()
        connection = self.pusher.connection
        on_message = connection._on_message

        def record(*args):
            with self.cond:
                self.frames.append(json.loads(args[-1]))
                self.cond.notify_all()
            on_message(*args)

        connection._on_message = record  # WebSocketApp is built later, in Connection._connect
        self.pusher.connect()
        wait_until(lambda: connection.state == "connected", message="pysher connection_established")

    def wait_frame(self, event: str, channel: str) -> dict:
        def found():
            with self.cond:
                return next((f for f in self.frames if f.get("event") == event and f.get("channel") == channel), None)
        return wait_until(found, message=f"pysher {event} on {channel}")

    def close(self) -> None:
        try:
            self.pusher.disconnect(timeout=0.5)
        except Exception:
            pass


def test_pysher_and_socketio_both_receive_order_shipped(embedded, connect):
    app = embedded("--pusher-app-id", APP_ID, "--pusher-app-key", APP_KEY, "--pusher-app-secret", APP_SECRET)
    owner_pusher = Pysher(app, user=7)
    try:
        got = []
        owner_pusher.pusher.subscribe("private-orders.7").bind("OrderShipped", got.append)
        owner_pusher.wait_frame("pusher_internal:subscription_succeeded", "private-orders.7")
        owner_sio = connect(app.herald, "websocket")
        owner_sio.subscribe("private-orders.7", sync=False, headers=bearer(7))
        wait_until(lambda: app.subscription_count("private-orders.7") == 2, message="both owners admitted")

        assert app.ship(7).status_code == 200
        frame = owner_pusher.wait_frame("OrderShipped", "private-orders.7")
        assert json.loads(frame["data"]) == SHIPPED_7
        wait_until(lambda: got, message="pysher's OrderShipped binding")
        assert owner_sio.wait_event("OrderShipped") == ("OrderShipped", "private-orders.7", SHIPPED_7)

        # The app refuses user 8 a signature; one forged with the wrong secret is refused by Herald.
        socket_id = owner_pusher.pusher.connection.socket_id
        allowed = requests.post(app.url("/broadcasting/auth"), headers=bearer(8), timeout=5,
                                data={"socket_id": socket_id, "channel_name": "private-orders.8"})
        assert allowed.status_code == 200 and allowed.json()["auth"].startswith(f"{APP_KEY}:"), "user 8 owns order 8"
        refused = requests.post(app.url("/broadcasting/auth"), headers=bearer(8), timeout=5,
                                data={"socket_id": socket_id, "channel_name": "private-orders.7"})
        assert refused.status_code == 403 and "denied" in refused.json()["error"]
        owner_pusher.pusher.connection.send_event("pusher:subscribe", {"channel": "private-orders.9", "auth": f"{APP_KEY}:{'0' * 64}"})
        error = owner_pusher.wait_frame("pusher:subscription_error", "private-orders.9")
        assert error["data"]["status"] == 401
    finally:
        owner_pusher.close()


def test_redis_mode_publishes_laravels_wire_format(embedded, connect, redis_server):
    app = embedded("--redis", redis_server.url, "--key-prefix", "laravel_database_")
    wait_until(lambda: requests.get(app.herald.url("/ready"), timeout=1).status_code == 200, message="Herald subscribed to Redis")
    raw = redis_server.client().pubsub()
    raw.subscribe("laravel_database_private-orders.7")
    wait_until(lambda: raw.get_message(timeout=0.1), message="redis-py subscribed")  # the subscribe confirmation

    owner = connect(app.herald, "websocket")
    owner.subscribe("private-orders.7", sync=False, headers=bearer(7))
    wait_until(lambda: app.subscription_count("private-orders.7") == 1, message="the owner admitted")

    shipped = app.ship(7, headers={"X-Socket-ID": "someone-else"})
    assert shipped.status_code == 200 and shipped.json()["via"] == "redis"
    message = wait_until(lambda: raw.get_message(timeout=0.1), message="the Laravel payload on Redis")
    assert json.loads(message["data"]) == {"event": "OrderShipped", "data": SHIPPED_7, "socket": "someone-else"}
    # Herald, subscribed to the same Redis, delivers it once.
    assert owner.wait_event("OrderShipped") == ("OrderShipped", "private-orders.7", SHIPPED_7)
    app.publish("private-orders.7", "Marker", {})
    owner.wait_event("Marker")
    assert len(only(owner.received(), "OrderShipped")) == 1
    raw.close()
