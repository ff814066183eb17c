"""Several Pusher apps on one herald (issue #4): each app after the first has channels of its own.

herald starts from a real `herald.yaml` holding two apps. The first app ("A") shares Herald's
channels with Socket.IO clients and Laravel events from Redis; the second ("B") is isolated:
its pysher clients, its signed HTTP API (the official `pusher` library), its presence members,
its `#server-to-user-*` channels and its webhooks see only its own channels, though both apps
use the very same channel names. Nothing on the wire names a namespace.

"Nothing else arrived" is asserted behind a barrier, never after a sleep: herald routes events
in the order it accepted them and writes a connection's frames in order, and a webhook URL's
batches are delivered one at a time, in order, so a later event's arrival proves an earlier
one would have arrived first.
"""

from __future__ import annotations

import json

import pusher
import pytest
from pusher.errors import PusherBadAuth
from pysher.channel import Channel as PysherChannel

from conftest import LARAVEL_PREFIX, WECHAT_EVENT, unique, wait_until, wechat_data
from test_pusher import Collector, RawPusher, compact, pusher_clients  # noqa: F401
from test_pusher_webhooks import WebhookReceiver

A = {"id": "7001", "key": "app-a-key", "secret": "app-a-secret"}
B = {"id": "7002", "key": "app-b-key", "secret": "app-b-secret"}


def api(herald, app: dict, key: str | None = None, secret: str | None = None) -> pusher.Pusher:
    """The official `pusher` HTTP library for `app` (optionally with another app's credentials)."""
    return pusher.Pusher(app_id=app["id"], key=key or app["key"], secret=secret or app["secret"],
                         host="127.0.0.1", port=herald.port, ssl=False)


def signer(app: dict) -> pusher.Pusher:
    return pusher.Pusher(app_id=app["id"], key=app["key"], secret=app["secret"])


class Receiver(WebhookReceiver):
    """The webhook receiver of one app: every request verified with the `pusher` library's
    `validate_webhook` and that app's secret; events of the valid ones in arrival order."""

    def __init__(self, app: dict):
        super().__init__(validator=signer(app), key=app["key"])

    def snapshot(self) -> list[dict]:
        with self.lock:
            assert self.invalid == [], f"webhooks whose signature did not verify with {self.key}'s secret: {self.invalid!r}"
            return list(self.events)

    def wait_for_event(self, name: str, channel: str) -> None:
        wait_until(lambda: {"name": name, "channel": channel} in self.snapshot(), timeout=10,
                   message=f"webhook {name} on {channel} for {self.key}")


@pytest.fixture
def receivers():
    made = {"a": Receiver(A), "b": Receiver(B)}
    yield made
    for receiver in made.values():
        receiver.stop()


def two_apps(herald_factory, redis_server, tmp_path, receivers=None):
    """herald from a herald.yaml with apps A (first: shared channels) and B (its own)."""
    def hooks(name):
        if receivers is None:
            return ""
        return f"""
      webhooks: [{{url: "{receivers[name].url}"}}]
      webhook_delivery: {{batch_interval: 20ms}}"""

    config = tmp_path / "herald.yaml"
    config.write_text(f"""
redis:
  key_prefix: {LARAVEL_PREFIX}
pusher:
  apps:
    - id: "{A['id']}"
      key: {A['key']}
      secret: {A['secret']}{hooks('a')}
    - id: "{B['id']}"
      key: {B['key']}
      secret: {B['secret']}{hooks('b')}
""")
    return herald_factory("--config", str(config), "--redis", redis_server.url)


def app_client(pusher_clients, herald, app: dict):
    """A pysher client of `app` (test_pusher's PysherClient: every frame it receives is
    recorded; it signs private channels with the app's secret)."""
    return pusher_clients.pysher(herald, key=app["key"], secret=app["secret"])


def join_presence(client, app: dict, channel: str, user_id: str, name: str) -> PysherChannel:
    """Presence, with `channel_data` signed by `app`'s secret as its server would (the `pusher`
    library's `authenticate`), sent on the pysher connection."""
    auth = signer(app).authenticate(channel, client.socket_id, {"user_id": user_id, "user_info": {"name": name}})
    client.pusher.connection.send_event("pusher:subscribe", {"channel": channel, **auth})
    subscribed = PysherChannel(channel, client.pusher.connection)
    client.pusher.channels[channel] = subscribed
    frame = client.wait_event("pusher_internal:subscription_succeeded", channel)
    return json.loads(frame["data"])["presence"]


def data_of(frames: list[dict]) -> list:
    return [json.loads(f["data"]) for f in frames]


# --------------------------------------------------------------------------------------------


def test_same_channel_names_in_two_apps_are_two_channels(herald_factory, redis_server, tmp_path, laravel, connect,
                                                         pusher_clients):
    herald = two_apps(herald_factory, redis_server, tmp_path)
    public, private, room = unique("orders"), unique("private-orders"), unique("presence-room")
    a, b = app_client(pusher_clients, herald, A), app_client(pusher_clients, herald, B)
    for client in (a, b):
        client.subscribe(public)
        client.subscribe(private)  # pysher signs with its own app's secret
    sio = connect(herald, "websocket")
    sio.subscribe(public)

    # Presence: user 1 is in both apps' "room", with different info; each sees only its own.
    assert join_presence(a, A, room, "1", "Ann of A") == {"ids": ["1"], "hash": {"1": {"name": "Ann of A"}}, "count": 1}
    assert join_presence(b, B, room, "1", "Bob of B") == {"ids": ["1"], "hash": {"1": {"name": "Bob of B"}}, "count": 1}
    a2 = app_client(pusher_clients, herald, A)
    a2.subscribe(public)
    assert join_presence(a2, A, room, "2", "Cid of A")["count"] == 2
    added = a.wait_event("pusher_internal:member_added", room)
    assert json.loads(added["data"]) == {"user_id": "2", "user_info": {"name": "Cid of A"}}

    # Each app's HTTP API reaches only its own subscribers, on the same names.
    api_a, api_b = api(herald, A), api(herald, B)
    api_a.trigger([public, private], "from-a", {"n": 1})
    api_b.trigger([public, private], "from-b", {"n": 2})
    for channel in (public, private):
        assert data_of([a.wait_event("from-a", channel)]) == [{"n": 1}]
        assert data_of([b.wait_event("from-b", channel)]) == [{"n": 2}]
    assert sio.wait_event("from-a") == ("from-a", public, {"n": 1})
    # Barriers: herald accepted A's event before B's, so B, having B's, would have had A's
    # already; and A's clients, having a later event of A's, would have had B's.
    api_a.trigger(public, "a-barrier", {})
    a.wait_event("a-barrier", public)
    a2.wait_event("a-barrier", public)
    sio.wait_event("a-barrier")
    assert not b.named("from-a") and not a.named("from-b") and not a2.named("from-b")
    assert not b.named("pusher_internal:member_added"), "B heard of A's presence member"
    assert not [e for e in sio.received() if e[0] == "from-b"]

    # A Laravel event through Redis is a shared-channel event: the first app and Socket.IO get
    # it, B does not (the barrier: B's own later event).
    laravel.publish(redis_server, public)
    expected = wechat_data(public)
    assert a.wait_event(WECHAT_EVENT, public)["data"] == compact(expected)
    assert sio.wait_event(WECHAT_EVENT) == (WECHAT_EVENT, public, expected)
    api_b.trigger(public, "b-barrier", {})
    b.wait_event("b-barrier", public)
    assert not b.named(WECHAT_EVENT)

    # Queries: each app lists, counts and names the members of its own channels only.
    only_a, only_b = unique("only-a"), unique("only-b")
    a.subscribe(only_a)
    b.subscribe(only_b)
    listed_a = api_a.channels_info()["channels"]
    listed_b = api_b.channels_info()["channels"]
    assert {public, private, room, only_a} <= set(listed_a) and only_b not in listed_a
    assert {public, private, room, only_b} <= set(listed_b) and only_a not in listed_b
    assert api_a.channel_info(public, ["subscription_count"]) == {"occupied": True, "subscription_count": 3}  # a, a2, sio
    assert api_b.channel_info(public, ["subscription_count"]) == {"occupied": True, "subscription_count": 1}
    assert api_b.channel_info(only_a) == {"occupied": False}
    assert sorted(u["id"] for u in api_a.users_info(room)["users"]) == ["1", "2"]
    assert api_b.users_info(room)["users"] == [{"id": "1"}]
    assert api_a.channel_info(room, ["user_count"])["user_count"] == 2
    assert api_b.channel_info(room, ["user_count"])["user_count"] == 1
    herald.assert_healthy()


def test_one_apps_credentials_open_nothing_of_another(herald_factory, redis_server, tmp_path, connect, pusher_clients):
    herald = two_apps(herald_factory, redis_server, tmp_path)
    private = unique("private-orders")

    # A connection to app A presenting B's signature (B's key, B's secret) for the channel.
    raw = pusher_clients.raw(herald, key=A["key"])
    signed_by_b = signer(B).authenticate(private, raw.socket_id)
    raw.subscribe(private, auth=signed_by_b["auth"])
    refused = raw.wait_event("pusher:subscription_error", private)
    assert refused["data"] == {"type": "AuthError", "error": "The connection is unauthorized.", "status": 401}
    # And to app B with A's: same answer. Each app's own signature opens its own channel.
    raw_b = pusher_clients.raw(herald, key=B["key"])
    raw_b.subscribe(private, auth=signer(A).authenticate(private, raw_b.socket_id)["auth"])
    assert raw_b.wait_event("pusher:subscription_error", private)["data"]["status"] == 401
    raw_b.subscribe(private, auth=signer(B).authenticate(private, raw_b.socket_id)["auth"])
    raw_b.wait_event("pusher_internal:subscription_succeeded", private)

    # B's credentials on A's API path are refused; A's API cannot reach B's subscriber.
    with pytest.raises(PusherBadAuth):
        api(herald, A, key=B["key"], secret=B["secret"]).trigger(private, "sneaky", {})
    api(herald, A).trigger(private, "from-a", {})
    api(herald, B).trigger(private, "b-barrier", {})
    raw_b.wait_event("b-barrier", private)
    assert not raw_b.named("from-a") and not raw_b.named("sneaky")

    # Socket.IO clients cannot type a channel name holding a control character (the kind of
    # name that might otherwise pass for a namespaced one).
    sio = connect(herald, "websocket")
    sneaky = f"{B['id']}\x1f{unique('orders')}"
    sio.emit("subscribe", {"channel": sneaky, "auth": {"headers": {}}})
    assert sio.wait_refusal(sneaky) == ("subscription_error", sneaky, 403)
    herald.assert_healthy()


def test_user_channels_are_per_app(herald_factory, redis_server, tmp_path, pusher_clients):
    herald = two_apps(herald_factory, redis_server, tmp_path)
    user = unique("user").replace(".", "-")
    own = f"#server-to-user-{user}"
    connections = {}
    for name, app in (("a", A), ("b", B)):
        raw = pusher_clients.raw(herald, key=app["key"])
        raw.send({"event": "pusher:signin", "data": signer(app).authenticate_user(raw.socket_id, {"id": user})})
        raw.wait_event("pusher:signin_success")
        raw.subscribe(own)
        raw.wait_event("pusher_internal:subscription_succeeded", own)
        connections[name] = raw

    # B's send_to_user reaches B's user only; A's reaches A's, which is the barrier for A.
    api(herald, B).send_to_user(user, "for-b", {"n": 2})
    api(herald, A).send_to_user(user, "for-a", {"n": 1})
    assert json.loads(connections["b"].wait_event("for-b", own)["data"]) == {"n": 2}
    assert json.loads(connections["a"].wait_event("for-a", own)["data"]) == {"n": 1}
    api(herald, B).send_to_user(user, "b-barrier", {})
    connections["b"].wait_event("b-barrier", own)
    assert not connections["a"].named("for-b") and not connections["b"].named("for-a")
    herald.assert_healthy()


def test_webhooks_of_each_app_hear_only_its_channels(herald_factory, redis_server, tmp_path, receivers, connect,
                                                     pusher_clients):
    herald = two_apps(herald_factory, redis_server, tmp_path, receivers)
    lobby, only_a, shared_sio, last_a, last_b = (unique("lobby"), unique("only-a"), unique("sio"),
                                                 unique("last-a"), unique("last-b"))
    a, b = app_client(pusher_clients, herald, A), app_client(pusher_clients, herald, B)
    a.subscribe(lobby)
    b.subscribe(lobby)
    a.subscribe(only_a)
    sio = connect(herald, "websocket")
    sio.subscribe(shared_sio)

    # B signs in and joins its user channel: Herald's internal channel, no occupancy webhooks.
    user = unique("user").replace(".", "-")
    raw_b = pusher_clients.raw(herald, key=B["key"])
    raw_b.send({"event": "pusher:signin", "data": signer(B).authenticate_user(raw_b.socket_id, {"id": user})})
    raw_b.wait_event("pusher:signin_success")
    raw_b.subscribe(f"#server-to-user-{user}")
    raw_b.wait_event("pusher_internal:subscription_succeeded", f"#server-to-user-{user}")
    raw_b.close()

    # Barriers, each app's last channel: its webhooks are delivered in order.
    a.subscribe(last_a)
    b.subscribe(last_b)
    receivers["a"].wait_for_event("channel_occupied", last_a)
    receivers["b"].wait_for_event("channel_occupied", last_b)

    # B: its own lobby (under its plain name) and its barrier, nothing of A's, Socket.IO's or
    # its user channel.
    assert receivers["b"].snapshot() == [{"name": "channel_occupied", "channel": lobby},
                                         {"name": "channel_occupied", "channel": last_b}]
    # A (the first app): the shared channels, whoever occupied them — its clients and Socket.IO.
    heard_by_a = receivers["a"].snapshot()
    assert {"name": "channel_occupied", "channel": shared_sio} in heard_by_a
    assert [e for e in heard_by_a if e["channel"] in (lobby, only_a, last_a)] == [
        {"name": "channel_occupied", "channel": lobby},
        {"name": "channel_occupied", "channel": only_a},
        {"name": "channel_occupied", "channel": last_a},
    ]
    assert not [e for e in heard_by_a if e["channel"] in (last_b,) or e["channel"].startswith("#")]
    herald.assert_healthy()
