"""Pusher cache channels and `pusher_internal:subscription_count` (PROTOCOLS.md D.3, D.6).

Real herald binary, real redis-server, real Laravel publishing through Redis, the official
`pusher` HTTP library, pysher and raw websocket-client connections, python-socketio next to
them. Helpers come from test_pusher.py / conftest.py.
"""

from __future__ import annotations

import base64
import json
import time

import pusher

from conftest import WECHAT_EVENT, unique, wechat_data
from test_pusher import APP_ID, APP_KEY, APP_SECRET, Collector, api, compact, pusher_clients, start  # noqa: F401

COUNT_EVENT = "pusher_internal:subscription_count"
# The master key only lets the library sign private-encrypted- channels (herald never sees it).
SIGNER = pusher.Pusher(app_id=APP_ID, key=APP_KEY, secret=APP_SECRET,
                       encryption_master_key_base64=base64.b64encode(b"k" * 32).decode())


def channel_frames(client, channel: str) -> list[dict]:
    return [f for f in client.received() if f.get("channel") == channel]


def subscribe_raw(pusher_clients, herald, channel: str, member: dict | None = None):
    """A new raw connection subscribed to `channel` (signed by the `pusher` library when the
    channel needs it; `member` is a presence channel's `channel_data`); waits until every
    reply to the subscribe arrived."""
    raw = pusher_clients.raw(herald)
    auth = channel_data = None
    if channel.startswith(("private-", "presence-")):
        signed = SIGNER.authenticate(channel, raw.socket_id, member)
        auth, channel_data = signed["auth"], signed.get("channel_data")
    raw.subscribe(channel, auth=auth, channel_data=channel_data)
    raw.wait_event("pusher_internal:subscription_succeeded", channel)
    raw.ping()  # barrier: every reply to the subscribe was sent before the pong
    return raw


def cache_miss(channel: str) -> dict:
    return {"event": "pusher:cache_miss", "channel": channel}


def count_frame(channel: str, n: int) -> dict:
    return {"event": COUNT_EVENT, "channel": channel, "data": compact({"subscription_count": n})}


# --------------------------------------------------------------------------------------------
# Cache channels


def test_cache_channels_replay_the_last_event_from_every_source(herald_factory, redis_server, laravel, connect, pusher_clients):
    herald = start(herald_factory, redis_server)
    http = api(herald)

    # Empty cache channel: subscription_succeeded, then exactly pusher:cache_miss.
    prices = unique("cache-prices")
    first = subscribe_raw(pusher_clients, herald, prices)
    assert channel_frames(first, prices) == [
        {"event": "pusher_internal:subscription_succeeded", "channel": prices},
        cache_miss(prices),
    ]

    # An HTTP API event is delivered live and remembered.
    payload = json.dumps({"price": 10.5, "note": "caf\u00e9 \"x\""}, ensure_ascii=False)
    assert http.trigger(prices, "price.updated", payload) == {}
    live = first.wait_event("price.updated", prices)
    assert live == {"event": "price.updated", "channel": prices, "data": payload}
    late = subscribe_raw(pusher_clients, herald, prices)
    assert channel_frames(late, prices) == [
        {"event": "pusher_internal:subscription_succeeded", "channel": prices},
        {"event": "price.updated", "channel": prices, "data": payload},
    ]

    # Only the last event is kept.
    assert http.trigger(prices, "price.updated", compact({"price": 11})) == {}
    first.wait_event("price.updated", prices, count=2)
    pysher_client = pusher_clients.pysher(herald)
    got = Collector()
    pysher_client.subscribe(prices, wait=False).bind("price.updated", got)
    assert got.wait() == [compact({"price": 11})], "pysher hands the cached event to its binding"
    assert pysher_client.named("pusher:cache_miss") == []

    # Laravel through Redis.
    orders = unique("cache-orders")
    watcher = subscribe_raw(pusher_clients, herald, orders)
    laravel.publish(redis_server, orders)
    watcher.wait_event(WECHAT_EVENT, orders)
    replayed = subscribe_raw(pusher_clients, herald, orders)
    assert channel_frames(replayed, orders)[1:] == [
        {"event": WECHAT_EVENT, "channel": orders, "data": compact(wechat_data(orders))},
    ]

    # A client event on private-cache-: remembered as sent (data stays an object).
    chat = unique("private-cache-chat")
    sender = pusher_clients.pysher(herald)
    sender_channel = sender.subscribe(chat)
    listener = subscribe_raw(pusher_clients, herald, chat)
    sender_channel.trigger("client-typing", {"name": "Ann"})
    listener.wait_event("client-typing", chat)
    joiner = subscribe_raw(pusher_clients, herald, chat)
    assert channel_frames(joiner, chat) == [
        {"event": "pusher_internal:subscription_succeeded", "channel": chat},
        {"event": "client-typing", "channel": chat, "data": {"name": "Ann"}},
    ]

    # presence-cache- and private-encrypted-cache-: succeeded (presence data), then the miss.
    room = unique("presence-cache-room")
    member = subscribe_raw(pusher_clients, herald, room, member={"user_id": "7", "user_info": {"name": "Ann"}})
    frames = channel_frames(member, room)
    assert [f["event"] for f in frames] == ["pusher_internal:subscription_succeeded", "pusher:cache_miss"]
    assert json.loads(frames[0]["data"])["presence"]["count"] == 1
    assert frames[1] == cache_miss(room)
    secret = unique("private-encrypted-cache-vault")
    assert channel_frames(subscribe_raw(pusher_clients, herald, secret), secret)[1:] == [cache_miss(secret)]

    # Channels that are not cache channels get nothing extra.
    plain = unique("orders")
    assert http.trigger(plain, "order.shipped", compact({"id": 1})) == {}
    time.sleep(0.1)
    assert channel_frames(subscribe_raw(pusher_clients, herald, plain), plain) == [
        {"event": "pusher_internal:subscription_succeeded", "channel": plain},
    ]

    # Socket.IO subscribers of a cache channel get no replay, only live events.
    sio = connect(herald, "websocket")
    sio.subscribe(prices)
    assert sio.received() == []
    assert http.trigger(prices, "price.updated", compact({"price": 12})) == {}
    assert sio.wait_event("price.updated") == ("price.updated", prices, {"price": 12})
    time.sleep(0.1)
    assert sio.received() == [("price.updated", prices, {"price": 12})]
    herald.assert_healthy()


def test_cache_entries_expire_after_the_ttl(herald_factory, redis_server, pusher_clients):
    herald = start(herald_factory, redis_server, "--cache-ttl", "1")
    channel = unique("cache-ticker")
    watcher = subscribe_raw(pusher_clients, herald, channel)
    assert api(herald).trigger(channel, "tick", compact({"n": 1})) == {}
    watcher.wait_event("tick", channel)
    fresh = subscribe_raw(pusher_clients, herald, channel)
    assert channel_frames(fresh, channel)[1:] == [{"event": "tick", "channel": channel, "data": compact({"n": 1})}]
    time.sleep(1.2)
    stale = subscribe_raw(pusher_clients, herald, channel)
    assert channel_frames(stale, channel)[1:] == [cache_miss(channel)]
    herald.assert_healthy()


# --------------------------------------------------------------------------------------------
# pusher_internal:subscription_count


def test_subscription_count_follows_pusher_and_socketio_subscribers(herald_factory, redis_server, connect, pusher_clients):
    herald = start(herald_factory, redis_server, "--subscription-count")
    channel = unique("lobby")
    observer = subscribe_raw(pusher_clients, herald, channel)
    assert observer.wait_event(COUNT_EVENT, channel) == count_frame(channel, 1)

    sio = connect(herald, "websocket")
    sio.subscribe(channel)
    assert observer.wait_event(COUNT_EVENT, channel, count=2) == count_frame(channel, 2)

    second = pusher_clients.pysher(herald)
    second.subscribe(channel)
    assert observer.wait_event(COUNT_EVENT, channel, count=3) == count_frame(channel, 3)
    assert second.wait_event(COUNT_EVENT, channel) == count_frame(channel, 3)

    sio.close()
    assert observer.wait_event(COUNT_EVENT, channel, count=4) == count_frame(channel, 2)
    assert second.wait_event(COUNT_EVENT, channel, count=2) == count_frame(channel, 2)
    assert sio.received() == [], "Socket.IO clients never see subscription_count"

    # A burst of 41 changes from one connection is coalesced into at most two notices (one per
    # 100 ms window) carrying the final count.
    bursty = pusher_clients.raw(herald)
    for _ in range(20):
        bursty.send({"event": "pusher:subscribe", "data": {"channel": channel, "auth": ""}})
        bursty.send({"event": "pusher:unsubscribe", "data": {"channel": channel}})
    bursty.send({"event": "pusher:subscribe", "data": {"channel": channel, "auth": ""}})
    bursty.ping()
    observer.wait_for(lambda f: f == count_frame(channel, 3), message="the count after the burst")
    time.sleep(0.3)
    after_burst = observer.named(COUNT_EVENT, channel)[4:]
    assert 1 <= len(after_burst) <= 2, after_burst
    assert after_burst[-1] == count_frame(channel, 3)
    assert bursty.named(COUNT_EVENT, channel)[-1] == count_frame(channel, 3)

    # Presence channels get member events, never subscription_count.
    room = unique("presence-room")
    member = subscribe_raw(pusher_clients, herald, room, member={"user_id": "1"})
    other = subscribe_raw(pusher_clients, herald, room, member={"user_id": "2"})
    member.wait_event("pusher_internal:member_added", room)
    other.close()
    member.wait_event("pusher_internal:member_removed", room)
    time.sleep(0.3)
    assert member.named(COUNT_EVENT) == [] and other.named(COUNT_EVENT) == []
    herald.assert_healthy()


def test_subscription_count_is_off_by_default(herald_factory, redis_server, connect, pusher_clients):
    herald = start(herald_factory, redis_server)
    channel = unique("lobby")
    observer = subscribe_raw(pusher_clients, herald, channel)
    sio = connect(herald, "websocket")
    sio.subscribe(channel)
    subscribe_raw(pusher_clients, herald, channel)
    time.sleep(0.3)
    observer.ping(count=2)
    assert observer.named(COUNT_EVENT) == []
    herald.assert_healthy()
