"""Missed-message recovery (RECOVERY.md): the `herald_recovery` protocol extension, end to end.

The clients that opt in are written here, on raw WebSockets (websocket-client): an Engine.IO 4 /
Socket.IO 5 client and a Pusher protocol 7 client (`RawPusher`), plus python-socketio over
long-polling sending the extension from its ordinary `emit`. Events are published while they are
away by real Laravel through Redis and through the signed Pusher HTTP API (the `pusher`
library). Stock clients on the same channels — python-socketio and pysher — are the positive
control: they get every event, and never an offset or a `herald:recovery` notice.
"""

from __future__ import annotations

import json
import threading
import time

import pusher
import pytest
import websocket

from conftest import LARAVEL_PREFIX, WECHAT_EVENT, auth_args, bearer, unique, wait_until, wechat_data
from test_pusher import APP_ID, APP_KEY, APP_SECRET, api, pusher_clients  # noqa: F401

NOTICE = "herald:recovery"
ORDER_EVENT = "App\\Events\\OrderShipped"
SIGNER = pusher.Pusher(app_id=APP_ID, key=APP_KEY, secret=APP_SECRET)


def start(herald_factory, redis_server, *extra):
    return herald_factory("--redis", redis_server.url, "--key-prefix", LARAVEL_PREFIX,
                          "--app-id", APP_ID, "--app-key", APP_KEY, "--app-secret", APP_SECRET, "--history", *extra)


# --------------------------------------------------------------------------------------------
# A Socket.IO client on a raw WebSocket that implements the extension


class RawSocketIO:
    """Engine.IO 4 over a raw WebSocket: `40` to join `/`, answers pings, records every
    Socket.IO event as the list of its arguments (`[name, channel, data, {"herald_offset": N}]`)."""

    def __init__(self, herald, headers: dict | None = None):
        self.events: list[list] = []
        self.cond = threading.Condition()
        self.ws = websocket.create_connection(herald.ws_url("/socket.io/?EIO=4&transport=websocket"), timeout=5,
                                              header=[f"{k}: {v}" for k, v in (headers or {}).items()])
        opened = self.ws.recv()
        assert opened.startswith("0{"), opened
        self.ws.send("40")
        connected = self.ws.recv()
        assert connected.startswith("40{"), connected
        self.sid = json.loads(connected[2:])["sid"]
        self.closed = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True, name="raw-socketio")
        self.thread.start()

    def _read(self) -> None:
        try:
            while True:
                packet = self.ws.recv()
                if packet == "2":
                    self.ws.send("3")
                elif packet.startswith("42"):
                    with self.cond:
                        self.events.append(json.loads(packet[2:]))
                        self.cond.notify_all()
        except Exception:
            self.closed.set()

    def emit(self, name: str, data) -> None:
        self.ws.send("42" + json.dumps([name, data]))

    def subscribe(self, channel: str, recovery=None, headers: dict | None = None) -> None:
        data = {"channel": channel, "auth": {"headers": headers or {}}}
        if recovery is not None:
            data["herald_recovery"] = recovery
        self.emit("subscribe", data)

    def received(self) -> list[list]:
        with self.cond:
            return list(self.events)

    def wait_for(self, predicate, timeout: float = 5.0, message: str = "event") -> list:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for event in self.events:
                    if predicate(event):
                        return event
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    pytest.fail(f"timed out after {timeout}s waiting for {message}; got {self.events!r}")
                self.cond.wait(remaining)

    def notice(self, channel: str, count: int = 1) -> dict:
        """The `count`-th `herald:recovery` notice for `channel` (its data)."""
        wait_until(lambda: len(self.notices(channel)) >= count, message=f"{count} herald:recovery for {channel}")
        return self.notices(channel)[count - 1]

    def notices(self, channel: str) -> list[dict]:
        return [e[2] for e in self.received() if e[0] == NOTICE and e[1] == channel]

    def close(self) -> None:
        try:
            self.ws.close()
        except Exception:
            pass


@pytest.fixture
def raw_sio():
    opened: list[RawSocketIO] = []

    def make(herald, **kwargs) -> RawSocketIO:
        client = RawSocketIO(herald, **kwargs)
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.close()


def sio_channel_events(client, channel: str) -> list[list]:
    """Application events of `channel` (not the notice) as the raw client received them."""
    return [e for e in client.received() if e[0] not in (NOTICE, "subscription_error") and len(e) > 1 and e[1] == channel]


def pusher_channel_events(client, channel: str) -> list[dict]:
    return [f for f in client.received() if f.get("channel") == channel and not f.get("event", "").startswith(("pusher", "herald:"))]


def pusher_notices(client, channel: str) -> list[dict]:
    return [json.loads(f["data"]) for f in client.named(NOTICE, channel)]


def pusher_subscribe(client, channel: str, recovery, auth: str = "") -> None:
    client.send({"event": "pusher:subscribe", "data": {"channel": channel, "auth": auth, "herald_recovery": recovery}})


def position(notice: dict) -> dict:
    return {"epoch": notice["epoch"], "offset": notice["offset"]}


# --------------------------------------------------------------------------------------------
# 1. Reconnect within the window: exactly the missed events, in order, then recovered: true


def test_reconnect_gets_exactly_the_missed_events_then_recovered_true(
        herald_factory, redis_server, laravel, connect, raw_sio, pusher_clients):
    herald = start(herald_factory, redis_server)
    channel = unique("orders")
    http = api(herald)

    # Opted in (first subscription: `true`), one per protocol and Socket.IO transport.
    sio = raw_sio(herald)
    sio.subscribe(channel, recovery=True)
    first = sio.notice(channel)
    assert first["channel"] == channel and first["recovered"] is False, first
    assert len(first["epoch"]) == 16 and isinstance(first["offset"], int)
    raw_pusher = pusher_clients.raw(herald)
    pusher_subscribe(raw_pusher, channel, True)
    raw_pusher.wait_event("pusher_internal:subscription_succeeded", channel)
    pusher_first = json.loads(raw_pusher.wait_event(NOTICE, channel)["data"])
    assert pusher_first["epoch"] == first["epoch"] and pusher_first["recovered"] is False
    # The notice comes right after subscription_succeeded.
    frames = [f.get("event") for f in raw_pusher.received() if f.get("channel") == channel]
    assert frames == ["pusher_internal:subscription_succeeded", NOTICE], frames
    polling = connect(herald, "polling")
    polling.emit("subscribe", {"channel": channel, "auth": {"headers": {}}, "herald_recovery": True})
    polling.wait_for(lambda e: e[0] == NOTICE and e[1] == channel, message="notice over polling")

    # Stock clients on the same channel: the positive control.
    stock_sio = connect(herald, "websocket")
    stock_sio.subscribe(channel)
    stock_pysher = pusher_clients.pysher(herald)
    stock_pysher.subscribe(channel)

    # A live event: opted-in subscriptions get its offset, stock ones today's bytes.
    laravel.publish(redis_server, channel, token="live-1")
    live = sio.wait_for(lambda e: e[0] == WECHAT_EVENT, message="live-1")
    assert live[:3] == [WECHAT_EVENT, channel, wechat_data(channel, "live-1")]
    assert set(live[3]) == {"herald_offset"} and live[3]["herald_offset"] > first["offset"]
    live_offset = live[3]["herald_offset"]
    pusher_live = raw_pusher.wait_event(WECHAT_EVENT, channel)
    assert pusher_live == {"event": WECHAT_EVENT, "channel": channel,
                           "data": json.dumps(wechat_data(channel, "live-1"), separators=(",", ":")),
                           "herald_offset": live_offset}
    polled = polling.wait_for(lambda e: e[0] == WECHAT_EVENT, message="live-1 over polling")
    assert polled == (WECHAT_EVENT, channel, wechat_data(channel, "live-1"), {"herald_offset": live_offset})
    assert stock_sio.wait_event(WECHAT_EVENT) == (WECHAT_EVENT, channel, wechat_data(channel, "live-1"))
    assert set(stock_pysher.wait_event(WECHAT_EVENT, channel)) == {"event", "channel", "data"}

    # Both opted-in clients go away; five events are published meanwhile, through Redis and the
    # HTTP API, two of them toOthers() from the departed clients' sockets.
    old_sio_sid, old_pusher_socket = sio.sid, raw_pusher.socket_id
    sio.close()
    raw_pusher.close()
    assert sio.closed.wait(5)
    away = [
        ("redis", "away-1", None),
        ("api", "away-2", None),
        ("redis", "away-3", old_sio_sid),        # toOthers() from the Socket.IO client's old socket
        ("api", "away-4", old_pusher_socket),    # toOthers() from the Pusher client's old socket
        ("redis", "away-5", None),
    ]
    for count, (path, token, socket_id) in enumerate(away, start=2):
        if path == "redis":
            laravel.publish(redis_server, channel, token=token, socket_id=socket_id)
            name = WECHAT_EVENT
        else:
            http.trigger(channel, "order.shipped", json.dumps({"token": token}), socket_id=socket_id)
            name = "order.shipped"
        # The stock clients get every one (a barrier keeping the publications in order, too).
        stock_sio.wait_for(lambda e, n=name, t=token: e[0] == n and e[2].get("token") == t, message=token)
        stock_pysher.wait_for(lambda f, n=name, t=token: f.get("event") == n and t in f.get("data", ""), message=token)

    # Reconnect with the last offset seen (and the previous socket id, for toOthers()).
    sio_again = raw_sio(herald)
    sio_again.subscribe(channel, recovery={**position(first), "offset": live_offset, "socket_id": old_sio_sid})
    notice = sio_again.notice(channel)
    assert notice["recovered"] is True and notice["epoch"] == first["epoch"], notice
    replayed = sio_channel_events(sio_again, channel)
    assert [(e[0], e[2]["token"]) for e in replayed] == [
        (WECHAT_EVENT, "away-1"), ("order.shipped", "away-2"), ("order.shipped", "away-4"), (WECHAT_EVENT, "away-5")]
    assert replayed[0][:3] == [WECHAT_EVENT, channel, wechat_data(channel, "away-1")]
    offsets = [e[3]["herald_offset"] for e in replayed]
    assert offsets == sorted(offsets) and len(set(offsets)) == 4 and offsets[0] > live_offset
    assert notice["offset"] >= offsets[-1]
    # Order on the wire: the missed events, then the notice.
    assert [e[0] for e in sio_again.received()][-1] == NOTICE

    pusher_again = pusher_clients.raw(herald)
    pusher_subscribe(pusher_again, channel, {**position(first), "offset": live_offset, "socket_id": old_pusher_socket})
    pusher_notice = json.loads(pusher_again.wait_event(NOTICE, channel)["data"])
    assert pusher_notice["recovered"] is True, pusher_notice
    events = [f["event"] for f in pusher_again.received() if f.get("channel") == channel]
    assert events == ["pusher_internal:subscription_succeeded", WECHAT_EVENT, "order.shipped", WECHAT_EVENT, WECHAT_EVENT, NOTICE]
    replayed_pusher = pusher_channel_events(pusher_again, channel)
    assert [json.loads(f["data"])["token"] for f in replayed_pusher] == ["away-1", "away-2", "away-3", "away-5"]
    pusher_offsets = {json.loads(f["data"])["token"]: f["herald_offset"] for f in replayed_pusher}
    assert list(pusher_offsets.values()) == sorted(pusher_offsets.values())
    # One event, one offset, whichever protocol carries it.
    sio_offsets = {e[2]["token"]: e[3]["herald_offset"] for e in replayed}
    assert all(pusher_offsets[t] == sio_offsets[t] for t in ("away-1", "away-2", "away-5"))

    # After the notice, live events keep coming with offsets, once each.
    laravel.publish(redis_server, channel, token="live-2")
    after = sio_again.wait_for(lambda e: e[0] == WECHAT_EVENT and e[2]["token"] == "live-2", message="live-2")
    assert after[3]["herald_offset"] > notice["offset"]
    pusher_after = pusher_again.wait_for(lambda f: f.get("event") == WECHAT_EVENT and "live-2" in f["data"], message="live-2")
    assert pusher_after["herald_offset"] == after[3]["herald_offset"]
    stock_sio.wait_for(lambda e: e[0] == WECHAT_EVENT and e[2]["token"] == "live-2", message="live-2 stock")
    stock_pysher.wait_for(lambda f: f.get("event") == WECHAT_EVENT and "live-2" in f.get("data", ""), message="live-2 stock")
    assert len([e for e in sio_again.received() if e[0] == WECHAT_EVENT and e[2]["token"] == "live-2"]) == 1

    # Stock clients: every event, never an offset, never a notice.
    stock_tokens = [e[2]["token"] for e in stock_sio.received() if e[1:2] == (channel,)]
    assert stock_tokens == ["live-1", "away-1", "away-2", "away-3", "away-4", "away-5", "live-2"]
    assert all(len(e) == 3 for e in stock_sio.received()), stock_sio.received()
    assert stock_sio.named(NOTICE) == []
    stock_frames = [f for f in stock_pysher.received() if f.get("channel") == channel]
    assert [json.loads(f["data"])["token"] for f in stock_frames if not f["event"].startswith("pusher")] == stock_tokens
    assert all("herald_offset" not in f for f in stock_pysher.received())
    assert stock_pysher.named(NOTICE) == []
    herald.assert_healthy()


# --------------------------------------------------------------------------------------------
# 2. Beyond the window, another epoch: recovered: false and nothing replayed


def test_gap_beyond_the_window_or_another_epoch_is_recovered_false(
        herald_factory, redis_server, laravel, raw_sio, pusher_clients):
    herald = start(herald_factory, redis_server, "--history-max-events", "3", "--history-max-age", "1500ms")
    channel, aged = unique("orders"), unique("aged")
    sio = raw_sio(herald)
    sio.subscribe(channel, recovery=True)
    sio.subscribe(aged, recovery=True)
    seen = position(sio.notice(channel))
    seen_aged = position(sio.notice(aged))
    sio.close()

    # Four events while away: the first one falls out of the three kept.
    for n in range(4):
        laravel.publish(redis_server, channel, token=f"gap-{n}")
    # One event on `aged`, then longer than max age.
    laravel.publish(redis_server, aged, token="too-old")
    probe = raw_sio(herald)
    probe.subscribe(channel)
    probe.subscribe(aged)
    laravel.publish(redis_server, channel, token="probe")
    probe.wait_for(lambda e: e[0] == WECHAT_EVENT and e[2]["token"] == "probe", message="probe")
    time.sleep(2.0)  # past --history-max-age

    back = raw_sio(herald)
    back.subscribe(channel, recovery=seen)
    back.subscribe(aged, recovery=seen_aged)
    other = unique("other")
    back.subscribe(other, recovery={"epoch": "0000000000000000", "offset": seen["offset"]})
    gap = back.notice(channel)
    assert gap["recovered"] is False and gap["offset"] > seen["offset"], gap
    assert back.notice(aged)["recovered"] is False
    assert back.notice(other)["recovered"] is False  # another epoch
    assert sio_channel_events(back, channel) == [] and sio_channel_events(back, aged) == [], "nothing replayed"
    # The subscription works and carries offsets from the new position on.
    laravel.publish(redis_server, channel, token="after-gap")
    after = back.wait_for(lambda e: e[0] == WECHAT_EVENT and e[2]["token"] == "after-gap", message="after-gap")
    assert after[3]["herald_offset"] > gap["offset"]

    # Pusher: the same answer.
    client = pusher_clients.raw(herald)
    pusher_subscribe(client, channel, seen)
    assert json.loads(client.wait_event(NOTICE, channel)["data"])["recovered"] is False
    assert pusher_channel_events(client, channel) == []

    # A restarted (or another) node has another epoch: nothing it could replay is trusted.
    restarted = start(herald_factory, redis_server)
    elsewhere = raw_sio(restarted)
    elsewhere.subscribe(channel, recovery={"epoch": gap["epoch"], "offset": after[3]["herald_offset"]})
    moved = elsewhere.notice(channel)
    assert moved["recovered"] is False and moved["epoch"] != gap["epoch"]
    herald.assert_healthy()
    restarted.assert_healthy()


# --------------------------------------------------------------------------------------------
# 3. Private channels: replay only after authorization


def test_private_channel_replays_only_to_an_authorized_resubscription(
        herald_factory, redis_server, laravel, laravel_app, raw_sio, pusher_clients):
    herald = start(herald_factory, redis_server, *auth_args(laravel_app.url))
    user = 700_000 + (int(time.time() * 1000) % 100_000)
    channel = f"private-orders.{user}"

    owner = raw_sio(herald)
    owner.subscribe(channel, recovery=True, headers=bearer(user))
    seen = position(owner.notice(channel))
    owner.close()
    laravel.publish(redis_server, f"orders.{user}", token="secret-1", private=True)
    laravel.publish(redis_server, f"orders.{user}", token="secret-2", private=True)

    # Another user, and nobody, ask to recover the owner's channel: refused, nothing replayed.
    stranger = raw_sio(herald)
    stranger.subscribe(channel, recovery=seen, headers=bearer(user + 1))
    anonymous = raw_sio(herald)
    anonymous.subscribe(channel, recovery=seen)
    for client in (stranger, anonymous):
        assert client.wait_for(lambda e: e[0] == "subscription_error")[1:] == [channel, 403]
    # Pusher with a forged signature: refused, nothing replayed.
    forger = pusher_clients.raw(herald)
    forged = pusher.Pusher(app_id=APP_ID, key=APP_KEY, secret="not-the-secret").authenticate(channel, forger.socket_id)["auth"]
    pusher_subscribe(forger, channel, seen, auth=forged)
    assert forger.wait_event("pusher:subscription_error", channel)["data"]["status"] == 401

    # The owner comes back: both events, then recovered: true. So does a signed Pusher client.
    back = raw_sio(herald)
    back.subscribe(channel, recovery=seen, headers=bearer(user))
    assert back.notice(channel)["recovered"] is True
    assert [e[2]["token"] for e in sio_channel_events(back, channel)] == ["secret-1", "secret-2"]
    signed = pusher_clients.raw(herald)
    pusher_subscribe(signed, channel, seen, auth=SIGNER.authenticate(channel, signed.socket_id)["auth"])
    assert json.loads(signed.wait_event(NOTICE, channel)["data"])["recovered"] is True
    assert [json.loads(f["data"])["token"] for f in pusher_channel_events(signed, channel)] == ["secret-1", "secret-2"]

    # The refused clients never got a byte of it (a later barrier proves their frames were handled).
    forger.ping()
    for client in (stranger, anonymous):
        client.subscribe(unique("barrier"), recovery=True)
        client.wait_for(lambda e: e[0] == NOTICE)
        assert sio_channel_events(client, channel) == []
        assert [e for e in client.received() if e[0] == NOTICE and e[1] == channel] == []
    assert pusher_channel_events(forger, channel) == [] and forger.named(NOTICE) == []
    herald.assert_healthy()


# --------------------------------------------------------------------------------------------
# 4. History off (the default): the extension is ignored


def test_without_history_the_extension_is_ignored(herald_factory, redis_server, laravel, raw_sio, pusher_clients):
    herald = herald_factory("--redis", redis_server.url, "--key-prefix", LARAVEL_PREFIX,
                            "--app-id", APP_ID, "--app-key", APP_KEY, "--app-secret", APP_SECRET)
    channel = unique("orders")
    sio = raw_sio(herald)
    sio.subscribe(channel, recovery=True)
    client = pusher_clients.raw(herald)
    pusher_subscribe(client, channel, True)
    client.wait_event("pusher_internal:subscription_succeeded", channel)
    # Barrier: without an auth host a private subscribe is refused at once, after the first one.
    sio.subscribe("private-sync.1")
    sio.wait_for(lambda e: e == ["subscription_error", "private-sync.1", 403])
    laravel.publish(redis_server, channel, token="plain")
    assert sio.wait_for(lambda e: e[0] == WECHAT_EVENT) == [WECHAT_EVENT, channel, wechat_data(channel, "plain")]
    assert set(client.wait_event(WECHAT_EVENT, channel)) == {"event", "channel", "data"}
    assert sio.notices(channel) == [] and client.named(NOTICE) == []
    herald.assert_healthy()
