"""Herald's Pusher Channels protocol 7 face, driven by clients nobody here wrote.

* `pysher` (a Pusher WebSocket client; it signs private channels itself with the app secret),
* raw `websocket-client` connections where a test needs exact frames or close codes,
* the official `pusher` HTTP library for the signed HTTP API (and its `authenticate()` to sign
  presence `channel_data` the real Laravel app returned),

next to python-socketio clients and real Laravel (Redis publishing, `/broadcasting/auth`) on the
same herald: channels, events and presence are shared between both protocols.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from urllib.parse import urlencode

import pusher
import pysher
from pysher.channel import Channel as PysherChannel
import pytest
import requests
import websocket
from pusher.errors import PusherBadAuth, PusherBadStatus

from conftest import LARAVEL_PREFIX, WECHAT_EVENT, auth_args, bearer, member, unique, wait_until, wechat_data

APP_ID = "4242"
APP_KEY = "herald-app-key"
APP_SECRET = "herald-app-secret"
PUSHER_JS_QUERY = "protocol=7&client=js&version=8.4.0&flash=false"
SOCKET_ID = re.compile(r"^\d+\.\d+$")


def start(herald_factory, redis_server, *extra):
    return herald_factory("--redis", redis_server.url, "--key-prefix", LARAVEL_PREFIX,
                          "--app-id", APP_ID, "--app-key", APP_KEY, "--app-secret", APP_SECRET, *extra)


def api(herald, app_id: str = APP_ID, key: str = APP_KEY, secret: str = APP_SECRET) -> pusher.Pusher:
    """The official `pusher` HTTP library pointed at herald."""
    return pusher.Pusher(app_id=app_id, key=key, secret=secret, host="127.0.0.1", port=herald.port, ssl=False)


def pusher_js_data(frame: dict):
    """`data` as pusher-js hands it to bindings: a string holding JSON is parsed, else raw."""
    data = frame.get("data")
    if isinstance(data, str):
        try:
            return json.loads(data)
        except ValueError:
            return data
    return data


def compact(value) -> str:
    return json.dumps(value, separators=(",", ":"))


# --------------------------------------------------------------------------------------------
# Clients


class Frames:
    """Records every parsed server frame; waits on them."""

    def _init_frames(self) -> None:
        self.frames: list[dict] = []
        self.cond = threading.Condition()
        self.close_code: int | None = None
        self.closed = threading.Event()

    def _record(self, text) -> None:
        try:
            frame = json.loads(text)
        except ValueError:
            frame = {"unparsable": text}
        with self.cond:
            self.frames.append(frame)
            self.cond.notify_all()

    def _record_close(self, code) -> None:
        self.close_code = code
        self.closed.set()

    def received(self) -> list[dict]:
        with self.cond:
            return list(self.frames)

    def named(self, event: str, channel: str | None = None) -> list[dict]:
        return [f for f in self.received() if f.get("event") == event and (channel is None or f.get("channel") == channel)]

    def wait_for(self, predicate, timeout: float = 5.0, message: str = "frame", count: int = 1) -> dict:
        """Waits until `count` frames satisfy `predicate`; returns the last of them."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                matching = [f for f in self.frames if predicate(f)]
                if len(matching) >= count:
                    return matching[count - 1]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    pytest.fail(f"timed out after {timeout}s waiting for {message}; got {self.frames!r}")
                self.cond.wait(remaining)

    def wait_event(self, event: str, channel: str | None = None, timeout: float = 5.0, count: int = 1) -> dict:
        return self.wait_for(lambda f: f.get("event") == event and (channel is None or f.get("channel") == channel),
                             timeout, f"{event!r} on {channel!r}", count)


class RawPusher(Frames):
    """A bare websocket-client connection to `/app/<key>`: exact frames and close codes."""

    def __init__(self, herald, key: str = APP_KEY, query: str = PUSHER_JS_QUERY, established: bool = True):
        self._init_frames()
        self.opened = threading.Event()
        self.app = websocket.WebSocketApp(
            herald.ws_url(f"/app/{key}?{query}"),
            on_open=lambda ws: self.opened.set(),
            on_message=lambda ws, message: self._record(message),
            on_close=lambda ws, code, reason: self._record_close(code),
        )
        self.thread = threading.Thread(target=self.app.run_forever, daemon=True, name="raw-pusher")
        self.thread.start()
        assert self.opened.wait(5), "WebSocket to /app/<key> did not open"
        self.socket_id = None
        if established:
            frame = self.wait_event("pusher:connection_established")
            self.socket_id = json.loads(frame["data"])["socket_id"]

    def send(self, message: dict) -> None:
        self.app.send(json.dumps(message))

    def send_text(self, text: str) -> None:
        self.app.send(text)

    def send_binary(self, data: bytes) -> None:
        self.app.send(data, opcode=websocket.ABNF.OPCODE_BINARY)

    def subscribe(self, channel: str, auth: str | None = None, channel_data: str | None = None) -> None:
        data = {"channel": channel, "auth": auth or ""}
        if channel_data is not None:
            data["channel_data"] = channel_data
        self.send({"event": "pusher:subscribe", "data": data})

    def ping(self, count: int = 1) -> None:
        """Sends a ping and waits for the `count`-th pong (a barrier: frames are handled in order)."""
        self.send({"event": "pusher:ping", "data": {}})
        self.wait_event("pusher:pong", count=count)

    def close(self) -> None:
        try:
            self.app.close()
        except Exception:
            pass


class PysherClient(Frames):
    """A pysher client; every frame it receives is also recorded here."""

    def __init__(self, herald, key: str = APP_KEY, secret: str = APP_SECRET):
        self._init_frames()
        self.pusher = pysher.Pusher(key, custom_host="127.0.0.1", port=herald.port, secure=False, secret=secret,
                                    reconnect_interval=60, log_level=logging.WARNING)
        connection = self.pusher.connection
        on_message, on_close = connection._on_message, connection._on_close

        def record_message(*args):
            self._record(args[-1])
            on_message(*args)

        def record_close(*args):
            self._record_close(args[1] if len(args) > 1 else None)
            on_close(*args)

        # WebSocketApp is built in Connection._connect, after these instance attributes are set.
        connection._on_message = record_message
        connection._on_close = record_close
        self.pusher.connect()
        wait_until(lambda: connection.state == "connected", message="pysher connection_established")
        self.socket_id = connection.socket_id

    def subscribe(self, channel: str, wait: bool = True) -> PysherChannel:
        """pysher's own subscribe (it signs private channels with the secret)."""
        subscribed = self.pusher.subscribe(channel)
        if wait:
            self.wait_event("pusher_internal:subscription_succeeded", channel)
        return subscribed

    def join_presence(self, channel: str, channel_data: dict) -> PysherChannel:
        """Presence with the app's `channel_data` (pysher would sign its own `user_data`):
        signed by the `pusher` library's `authenticate`, subscribe sent on pysher's connection."""
        signer = pusher.Pusher(app_id=APP_ID, key=APP_KEY, secret=APP_SECRET)
        auth = signer.authenticate(channel, self.socket_id, channel_data)
        self.pusher.connection.send_event("pusher:subscribe", {"channel": channel, **auth})
        subscribed = PysherChannel(channel, self.pusher.connection)
        self.pusher.channels[channel] = subscribed
        return subscribed

    def close(self) -> None:
        try:
            self.pusher.disconnect(timeout=0.5)  # pysher's thread may linger in select(); it is a daemon
        except Exception:
            pass


@pytest.fixture
def pusher_clients():
    """`raw(herald, ...)` and `pysher(herald, ...)` open clients that are closed after the test."""
    opened: list = []

    class Factory:
        @staticmethod
        def raw(herald, **kwargs) -> RawPusher:
            client = RawPusher(herald, **kwargs)
            opened.append(client)
            return client

        @staticmethod
        def pysher(herald, **kwargs) -> PysherClient:
            client = PysherClient(herald, **kwargs)
            opened.append(client)
            return client

    yield Factory
    for client in opened:
        client.close()


class Collector:
    """Collects what a pysher channel binding hands to its callback."""

    def __init__(self):
        self.items: list = []
        self.lock = threading.Lock()

    def __call__(self, data) -> None:
        with self.lock:
            self.items.append(data)

    def snapshot(self) -> list:
        with self.lock:
            return list(self.items)

    def wait(self, count: int = 1, timeout: float = 5.0) -> list:
        wait_until(lambda: len(self.snapshot()) >= count, timeout=timeout, message=f"{count} pysher callback(s)")
        return self.snapshot()


# --------------------------------------------------------------------------------------------
# 1. Connection


def test_connection_established_ping_and_refusals(herald_factory, redis_server, pusher_clients):
    herald = start(herald_factory, redis_server)
    client = pusher_clients.raw(herald)
    first = client.received()[0]
    assert first["event"] == "pusher:connection_established"
    assert set(first) == {"event", "data"}
    assert isinstance(first["data"], str), "connection_established data must be a JSON string"
    established = json.loads(first["data"])
    assert SOCKET_ID.match(established["socket_id"]), established
    assert established == {"socket_id": established["socket_id"], "activity_timeout": 30}

    client.send({"event": "pusher:ping", "data": {}})
    assert client.wait_event("pusher:pong") == {"event": "pusher:pong", "data": {}}
    # Reverb-style string data is accepted too.
    client.send({"event": "pusher:ping", "data": "{}"})
    client.wait_event("pusher:pong", count=2)

    # pysher (protocol 6, pings with data "") gets its own socket id and its pong.
    other = pusher_clients.pysher(herald)
    assert SOCKET_ID.match(other.socket_id)
    assert other.socket_id != client.socket_id
    assert other.wait_event("pusher:pong") == {"event": "pusher:pong", "data": {}}

    # Unknown app key: pusher:error 4001, then close 4001.
    stranger = pusher_clients.raw(herald, key="no-such-key", established=False)
    assert stranger.closed.wait(5), "herald did not close a connection with an unknown key"
    assert stranger.close_code == 4001
    assert stranger.received() == [{"event": "pusher:error", "data": {"code": 4001, "message": "Application does not exist"}}]

    # protocol=3: 4007.
    old = pusher_clients.raw(herald, query="protocol=3&client=js&version=1.0", established=False)
    assert old.closed.wait(5), "herald did not close a protocol 3 connection"
    assert old.close_code == 4007
    [error] = old.received()
    assert error["event"] == "pusher:error" and error["data"]["code"] == 4007
    assert not old.named("pusher:connection_established")

    # The healthy connection was not disturbed.
    client.ping(count=3)
    assert not client.closed.is_set()
    herald.assert_healthy()


# --------------------------------------------------------------------------------------------
# 2. Public channels, Laravel through Redis, the HTTP API


def test_laravel_redis_event_reaches_pusher_and_socketio(herald_factory, redis_server, laravel, connect, pusher_clients):
    herald = start(herald_factory, redis_server)
    channel = unique("orders")
    pysher_client = pusher_clients.pysher(herald)
    bound = Collector()
    pysher_client.subscribe(channel).bind(WECHAT_EVENT, bound)
    sio = connect(herald, "websocket")
    sio.subscribe(channel)

    laravel.publish(redis_server, channel)
    expected = wechat_data(channel)
    [data] = bound.wait()
    assert data == compact(expected), "Pusher clients get Laravel's data as the JSON string Laravel encoded"
    assert json.loads(data) == expected
    assert pysher_client.named(WECHAT_EVENT) == [{"event": WECHAT_EVENT, "channel": channel, "data": compact(expected)}]
    assert sio.wait_event(WECHAT_EVENT) == (WECHAT_EVENT, channel, expected)
    herald.assert_healthy()


def test_http_api_trigger_socket_id_batch_and_errors(herald_factory, redis_server, connect, pusher_clients):
    herald = start(herald_factory, redis_server)
    client = api(herald)
    channel, other_channel = unique("orders"), unique("news")
    first, second = pusher_clients.pysher(herald), pusher_clients.pysher(herald)
    first_got, second_got = Collector(), Collector()
    first.subscribe(channel).bind("order.shipped", first_got)
    second.subscribe(channel).bind("order.shipped", second_got)
    second.subscribe(other_channel)
    sio = connect(herald, "websocket")
    sio.subscribe(channel)
    sio.subscribe(other_channel)

    payload = json.dumps({"id": 5, "note": "caf\u00e9 / \"quoted\"", "items": [1, 2]}, ensure_ascii=False)
    assert client.trigger(channel, "order.shipped", payload) == {}
    assert first_got.wait() == [payload]
    assert second_got.wait() == [payload]
    assert sio.wait_event("order.shipped") == ("order.shipped", channel, json.loads(payload))

    # socket_id excludes that connection only.
    excluded = json.dumps({"id": 6})
    assert client.trigger([channel], "order.shipped", excluded, socket_id=first.socket_id) == {}
    assert second_got.wait(2) == [payload, excluded]
    sio.wait_for(lambda e: e == ("order.shipped", channel, {"id": 6}), message="the excluded-socket event")
    barrier = json.dumps({"id": 7})
    client.trigger(channel, "order.shipped", barrier)
    assert first_got.wait(2) == [payload, barrier], "the socket_id connection must not get the event"
    assert second_got.wait(3) == [payload, excluded, barrier]

    # Batch.
    assert client.trigger_batch([
        {"channel": channel, "name": "batch.one", "data": json.dumps({"n": 1})},
        {"channel": other_channel, "name": "batch.two", "data": json.dumps({"n": 2})},
    ]) == {}
    assert first.wait_event("batch.one", channel) == {"event": "batch.one", "channel": channel, "data": '{"n": 1}'}
    assert second.wait_event("batch.two", other_channel) == {"event": "batch.two", "channel": other_channel, "data": '{"n": 2}'}
    sio.wait_for(lambda e: e == ("batch.one", channel, {"n": 1}), message="batch.one")
    sio.wait_for(lambda e: e == ("batch.two", other_channel, {"n": 2}), message="batch.two")
    assert first.named("batch.two") == []

    # Over 10 KB of data: 413 (the library lets it through and raises on the status).
    with pytest.raises(PusherBadStatus) as too_large:
        client.trigger(channel, "big", "x" * 11000)
    status, _, body = str(too_large.value).partition(": ")
    assert status == "413"
    assert json.loads(body)["code"] == 413 and json.loads(body)["error"]

    # Bad signature (wrong secret) and a wrong key: 401 with a JSON error.
    for wrong in (api(herald, secret="not-the-secret"), api(herald, key="not-the-key")):
        with pytest.raises(PusherBadAuth) as refused:
            wrong.trigger(channel, "nope", "{}")
        error = json.loads(str(refused.value))
        assert error["code"] == 401 and isinstance(error["error"], str) and error["error"]

    # Unknown app id: 404.
    with pytest.raises(PusherBadStatus) as unknown:
        api(herald, app_id="999999").trigger(channel, "nope", "{}")
    status, _, body = str(unknown.value).partition(": ")
    assert status == "404" and json.loads(body)["code"] == 404

    # A stale auth_timestamp (signed correctly with the pusher library's signer) is refused.
    from pusher.signature import sign
    body = json.dumps({"name": "stale", "channels": [channel], "data": "{}"})
    query = {"auth_key": APP_KEY, "auth_timestamp": str(int(time.time()) - 3600), "auth_version": "1.0",
             "body_md5": hashlib.md5(body.encode()).hexdigest()}
    path = f"/apps/{APP_ID}/events"
    to_sign = "\n".join(["POST", path, "&".join(f"{k}={query[k]}" for k in sorted(query))])
    query["auth_signature"] = sign(APP_SECRET, to_sign)
    response = requests.post(herald.url(path + "?" + urlencode(query)), data=body,
                             headers={"Content-Type": "application/json"}, timeout=5)
    assert response.status_code == 401
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["code"] == 401
    # The same request with a fresh timestamp goes through (so only the timestamp was wrong).
    query.pop("auth_signature")
    query["auth_timestamp"] = str(int(time.time()))
    to_sign = "\n".join(["POST", path, "&".join(f"{k}={query[k]}" for k in sorted(query))])
    query["auth_signature"] = sign(APP_SECRET, to_sign)
    fresh = requests.post(herald.url(path + "?" + urlencode(query)), data=body,
                          headers={"Content-Type": "application/json"}, timeout=5)
    assert (fresh.status_code, fresh.json()) == (200, {})
    first.wait_event("stale", channel)

    # Channel info counts every subscriber, Pusher and Socket.IO alike.
    assert client.channel_info(channel, ["subscription_count"]) == {"occupied": True, "subscription_count": 3}
    assert client.channel_info(unique("empty"), ["subscription_count"]) == {"occupied": False, "subscription_count": 0}
    assert set(client.channels_info()["channels"]) >= {channel, other_channel}

    # pysher unsubscribes (a ping answered proves herald handled it); then nothing reaches it.
    first.pusher.unsubscribe(channel)
    first.pusher.connection.send_ping()
    first.wait_event("pusher:pong", count=2)
    assert client.channel_info(channel, ["subscription_count"]) == {"occupied": True, "subscription_count": 2}

    # None of the refused requests delivered anything.
    client.trigger(channel, "after", "{}")
    second.wait_event("after", channel)
    sio.wait_event("after")
    time.sleep(0.1)
    assert first.named("after") == []
    for receiver in (first, second):
        assert receiver.named("big") == [] and receiver.named("nope") == []
    assert sio.named("big") == [] and sio.named("nope") == []
    herald.assert_healthy()


# --------------------------------------------------------------------------------------------
# 3. Private channels


def test_private_channel_signatures(herald_factory, redis_server, pusher_clients):
    herald = start(herald_factory, redis_server)
    channel = "private-" + unique("orders")
    owner = pusher_clients.pysher(herald)
    owner.subscribe(channel, wait=False)
    assert owner.wait_event("pusher_internal:subscription_succeeded", channel) == {
        "event": "pusher_internal:subscription_succeeded", "channel": channel}

    forger = pusher_clients.pysher(herald, secret="not-the-secret")
    forger.subscribe(channel, wait=False)
    assert forger.wait_event("pusher:subscription_error", channel) == {
        "event": "pusher:subscription_error", "channel": channel,
        "data": {"type": "AuthError", "error": "The connection is unauthorized.", "status": 401}}

    # A signature for another socket is no good either.
    thief = pusher_clients.raw(herald)
    stolen = pusher.Pusher(app_id=APP_ID, key=APP_KEY, secret=APP_SECRET).authenticate(channel, owner.socket_id)["auth"]
    thief.subscribe(channel, auth=stolen)
    assert thief.wait_event("pusher:subscription_error", channel)["data"]["status"] == 401
    # An invalid channel name.
    thief.subscribe("private-bad channel!", auth=stolen)
    invalid = thief.wait_event("pusher:subscription_error", "private-bad channel!")
    assert invalid["data"]["status"] == 4009 and invalid["data"]["type"] == "InvalidChannel"
    thief.subscribe("x" * 300)
    assert thief.wait_event("pusher:subscription_error", "x" * 300)["data"]["status"] == 4009

    api(herald).trigger(channel, "order.shipped", '{"id":1}')
    assert owner.wait_event("order.shipped", channel) == {"event": "order.shipped", "channel": channel, "data": '{"id":1}'}
    thief.ping()
    forger.pusher.connection.send_event("pusher:ping", {})
    forger.wait_event("pusher:pong", count=2)
    assert thief.named("order.shipped") == [] and forger.named("order.shipped") == []
    assert thief.named("pusher_internal:subscription_succeeded") == []
    herald.assert_healthy()


# --------------------------------------------------------------------------------------------
# 4. Presence shared with Socket.IO and Laravel


def laravel_channel_data(laravel_app, channel: str, socket_id: str, user: int) -> dict:
    """What the real Laravel app's /broadcasting/auth answers for `user` (its channel_data)."""
    response = requests.post(laravel_app.url + "/broadcasting/auth", data={"socket_id": socket_id, "channel_name": channel},
                             headers=bearer(user), timeout=10)
    assert response.status_code == 200, response.text
    channel_data = response.json()["channel_data"]
    return json.loads(channel_data) if isinstance(channel_data, str) else channel_data


def pusher_info(user: int) -> dict:
    return {"id": user, "name": f"User {user}"}


def members_of(frame: dict) -> dict:
    assert isinstance(frame["data"], str), "presence subscription_succeeded data must be a JSON string"
    return json.loads(frame["data"])["presence"]


def test_presence_shared_between_pusher_and_socketio(herald_factory, redis_server, laravel_app, connect, pusher_clients):
    herald = start(herald_factory, redis_server, *auth_args(laravel_app.url))
    http = api(herald)
    channel = "presence-chat.1"

    one = pusher_clients.pysher(herald)
    one.join_presence(channel, laravel_channel_data(laravel_app, channel, one.socket_id, 1))
    assert members_of(one.wait_event("pusher_internal:subscription_succeeded", channel)) == {
        "ids": ["1"], "hash": {"1": pusher_info(1)}, "count": 1}

    two = pusher_clients.pysher(herald)
    two_joined = Collector()
    two.join_presence(channel, laravel_channel_data(laravel_app, channel, two.socket_id, 2)).bind(
        "pusher_internal:member_added", two_joined)
    presence = members_of(two.wait_event("pusher_internal:subscription_succeeded", channel))
    assert sorted(presence["ids"]) == ["1", "2"]
    assert presence["hash"] == {"1": pusher_info(1), "2": pusher_info(2)} and presence["count"] == 2
    added = one.wait_event("pusher_internal:member_added", channel)
    assert json.loads(added["data"]) == {"user_id": "2", "user_info": pusher_info(2)}

    # A Socket.IO member authorized by Laravel (user 7) sees both Pusher members ...
    seven = connect(herald, "websocket")
    seven.subscribe(channel, sync=False, headers=bearer(7))
    subscribed = seven.wait_event("presence:subscribed")
    assert subscribed[:2] == ("presence:subscribed", channel)
    # Pusher members appear with their string user_id and their Pusher socket id.
    assert sorted(subscribed[2], key=lambda m: str(m["user_id"])) == [
        {"user_id": "1", "user_info": pusher_info(1), "socketId": one.socket_id},
        {"user_id": "2", "user_info": pusher_info(2), "socketId": two.socket_id},
        dict(member(7), socketId=seven.sid)]
    # ... and the Pusher members see user "7" arrive (user_id as a string).
    for client in (one, two):
        frame = client.wait_event("pusher_internal:member_added", channel, count=2 if client is one else 1)
        assert json.loads(frame["data"]) == {"user_id": "7", "user_info": pusher_info(7)}
    assert [json.loads(d) for d in two_joined.wait()] == [{"user_id": "7", "user_info": pusher_info(7)}]

    # A second connection of user "1": nobody hears a join.
    one_again = pusher_clients.pysher(herald)
    one_again.join_presence(channel, laravel_channel_data(laravel_app, channel, one_again.socket_id, 1))
    presence = members_of(one_again.wait_event("pusher_internal:subscription_succeeded", channel))
    assert sorted(presence["ids"]) == ["1", "2", "7"] and presence["count"] == 3
    assert presence["hash"] == {"1": pusher_info(1), "2": pusher_info(2), "7": pusher_info(7)}

    # The HTTP API counts users (distinct) and connections.
    assert http.channels_info(prefix_filter="presence-", attributes=["user_count"]) == {
        "channels": {channel: {"user_count": 3}}}
    assert http.channel_info(channel, ["user_count", "subscription_count"]) == {
        "occupied": True, "user_count": 3, "subscription_count": 4}
    users = http.users_info(channel)
    assert sorted(users["users"], key=lambda u: u["id"]) == [{"id": "1"}, {"id": "2"}, {"id": "7"}]

    # Barrier: an event after the second "1" joined reaches everyone, with no join in between.
    http.trigger(channel, "room.note", '{"n":1}')
    for client in (one, two, one_again):
        client.wait_event("room.note", channel)
    seven.wait_event("room.note")
    assert len(one.named("pusher_internal:member_added")) == 2
    assert len(two.named("pusher_internal:member_added")) == 1
    joining = [e for e in seven.received() if e[0] == "presence:joining"]
    assert joining == []  # 7 joined last: it heard no one join

    # The first "1" connection leaves: user 1 is still there (one_again).
    one.close()
    http.trigger(channel, "room.note", '{"n":2}')
    two.wait_event("room.note", channel, count=2)
    seven.wait_for(lambda e: e == ("room.note", channel, {"n": 2}), message="room.note 2")
    assert two.named("pusher_internal:member_removed") == []
    assert [e for e in seven.received() if e[0] == "presence:leaving"] == []

    # User 2 leaves: the Pusher and Socket.IO members hear it.
    two.close()
    removed = one_again.wait_event("pusher_internal:member_removed", channel)
    assert json.loads(removed["data"]) == {"user_id": "2"}
    assert seven.wait_event("presence:leaving") == ("presence:leaving", channel, {"user_id": "2", "user_info": pusher_info(2)})

    # A new Pusher member "3" joins: the Socket.IO member hears presence:joining.
    three = pusher_clients.pysher(herald)
    three.join_presence(channel, laravel_channel_data(laravel_app, channel, three.socket_id, 3))
    three.wait_event("pusher_internal:subscription_succeeded", channel)
    assert seven.wait_event("presence:joining") == (
        "presence:joining", channel, {"user_id": "3", "user_info": pusher_info(3), "socketId": three.socket_id})
    assert json.loads(one_again.wait_event("pusher_internal:member_added", channel)["data"]) == {
        "user_id": "3", "user_info": pusher_info(3)}

    # The Socket.IO user leaves: the Pusher members hear member_removed "7".
    seven.close()
    for client in (one_again, three):
        removed = client.wait_for(lambda f: f.get("event") == "pusher_internal:member_removed"
                                  and json.loads(f["data"]) == {"user_id": "7"}, message="member_removed 7")
        assert removed["channel"] == channel
    wait_until(lambda: sorted(http.users_info(channel)["users"], key=lambda u: u["id"]) == [{"id": "1"}, {"id": "3"}],
               message="users 1 and 3 remaining")
    assert [e for e in seven.received() if e[0] == "presence:leaving"] == [
        ("presence:leaving", channel, {"user_id": "2", "user_info": pusher_info(2)})]
    herald.assert_healthy()


# --------------------------------------------------------------------------------------------
# 5. Client events


def test_client_events(herald_factory, redis_server, laravel_app, connect, pusher_clients):
    herald = start(herald_factory, redis_server, *auth_args(laravel_app.url))
    channel = "private-chat.4"
    sender, other = pusher_clients.pysher(herald), pusher_clients.pysher(herald)
    sender_channel = sender.subscribe(channel)
    other_channel = other.subscribe(channel)
    sio = connect(herald, "websocket")
    sio.subscribe(channel, sync=False, headers=bearer(8))
    herald.wait_admitted(sio, channel)

    sender_channel.trigger("client-typing", {"name": "Ann", "typing": True})
    relayed = other.wait_event("client-typing", channel)
    assert set(relayed) == {"event", "channel", "data"} and relayed["channel"] == channel
    # Client events are relayed as sent (D.8): the object stays an object.
    assert relayed["data"] == {"name": "Ann", "typing": True}
    assert sio.wait_event("client-typing") == ("client-typing", channel, {"name": "Ann", "typing": True})
    # Back the other way: the first sender hears it, the second never hears itself.
    other_channel.trigger("client-typing", {"name": "Bob"})
    sender.wait_event("client-typing", channel)
    sio.wait_for(lambda e: e == ("client-typing", channel, {"name": "Bob"}), message="Bob's whisper")
    # A Socket.IO whisper reaches both Pusher members.
    sio.whisper(channel, "client-typing", {"name": "User 8"})
    for client in (sender, other):
        client.wait_for(lambda f: f.get("event") == "client-typing" and pusher_js_data(f) == {"name": "User 8"},
                        message="the Socket.IO whisper")
    assert [pusher_js_data(f) for f in sender.named("client-typing")] == [{"name": "Bob"}, {"name": "User 8"}]
    assert [pusher_js_data(f) for f in other.named("client-typing")] == [{"name": "Ann", "typing": True}, {"name": "User 8"}]
    assert not sender.named("pusher:error") and not other.named("pusher:error")

    # On a public channel: pusher:error 4301, and the connection stays open.
    public = unique("lobby")
    raw = pusher_clients.raw(herald)
    raw.subscribe(public)
    raw.wait_event("pusher_internal:subscription_succeeded", public)
    listener = pusher_clients.raw(herald)
    listener.subscribe(public)
    listener.wait_event("pusher_internal:subscription_succeeded", public)
    raw.send({"event": "client-typing", "channel": public, "data": {"x": 1}})
    error = raw.wait_event("pusher:error")
    assert error["data"]["code"] == 4301 and error["data"]["message"]
    raw.ping()
    listener.ping()
    assert not raw.closed.is_set() and listener.named("client-typing") == []

    # A burst of 30 on a private channel: at most ~11 get through, the rest are refused with 4301.
    signer = pusher.Pusher(app_id=APP_ID, key=APP_KEY, secret=APP_SECRET)
    raw.subscribe(channel, auth=signer.authenticate(channel, raw.socket_id)["auth"])
    raw.wait_event("pusher_internal:subscription_succeeded", channel)
    before = len(other.named("client-typing"))
    for n in range(30):
        raw.send({"event": "client-typing", "channel": channel, "data": {"n": n}})
    raw.ping(count=2)
    errors = [f for f in raw.named("pusher:error") if f["data"]["code"] == 4301 and f.get("channel") == channel]
    delivered = 30 - len(errors)
    # A full bucket of 10 plus what refills while the burst is read (about 1 per 100 ms).
    assert 10 <= delivered <= 12, f"{delivered} client events passed the 10/s limit"
    other.wait_for(lambda f: f.get("event") == "client-typing" and "n" in pusher_js_data(f),
                   message="burst events", count=delivered)
    time.sleep(0.2)
    burst = [pusher_js_data(f)["n"] for f in other.named("client-typing")[before:]]
    assert burst == list(range(delivered)), burst
    assert raw.named("client-typing") == [], "a sender never hears its own client event"
    herald.assert_healthy()


# --------------------------------------------------------------------------------------------
# 6. Garbage and shutdown


def test_garbage_frames_answer_pusher_error(herald_factory, redis_server, connect, pusher_clients):
    herald = start(herald_factory, redis_server)
    channel = unique("orders")
    bystander = pusher_clients.pysher(herald)
    bystander.subscribe(channel)
    sio = connect(herald, "websocket")
    sio.subscribe(channel)

    noisy = pusher_clients.raw(herald)
    garbage = ["this is not json", "{\"data\":{}}", "[1,2,3]", "{\"event\":42}", "{\"event\":\"pusher:subscribe\",\"data\":7}",
               "{" * 5000, ""]
    for text in garbage:
        noisy.send_text(text)
    noisy.send_binary(b"\x00\x01binary\xff")
    noisy.ping()
    errors = noisy.named("pusher:error")
    assert len(errors) == len(garbage) + 1, errors
    for error in errors:
        assert set(error["data"]) == {"code", "message"} and isinstance(error["data"]["message"], str)
    assert not noisy.closed.is_set()

    # Herald keeps serving everyone, the noisy connection included.
    noisy.subscribe(channel)
    noisy.wait_event("pusher_internal:subscription_succeeded", channel)
    api(herald).trigger(channel, "still.alive", '{"ok":true}')
    for client in (bystander, noisy):
        assert client.wait_event("still.alive", channel)["data"] == '{"ok":true}'
    assert sio.wait_event("still.alive") == ("still.alive", channel, {"ok": True})
    herald.assert_healthy()


def test_sigterm_closes_pusher_connections_with_4200(herald_factory, redis_server, connect, pusher_clients):
    herald = start(herald_factory, redis_server)
    channel = unique("orders")
    raw = pusher_clients.raw(herald)
    raw.subscribe(channel)
    raw.wait_event("pusher_internal:subscription_succeeded", channel)
    pysher_client = pusher_clients.pysher(herald)
    pysher_client.subscribe(channel)
    sio = connect(herald, "websocket")
    sio.subscribe(channel)

    assert herald.terminate() == 0
    assert raw.closed.wait(5) and raw.close_code == 4200
    assert raw.received()[-1]["event"] == "pusher:error" and raw.received()[-1]["data"]["code"] == 4200
    # pysher reacts to the pusher:error 4200 itself (it closes to reconnect at once), so the
    # close frame's code may not reach it; the 4200 error always does.
    pysher_client.wait_for(lambda f: f.get("event") == "pusher:error" and f["data"]["code"] == 4200,
                           message="pusher:error 4200")
    assert pysher_client.closed.wait(5)
    assert pysher_client.close_code in (4200, None)
    assert sio.disconnected.wait(5)
    assert "Fatal error" not in herald.log
    assert "Herald stopped" in herald.log
